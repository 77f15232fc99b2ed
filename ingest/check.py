"""``--check`` / ``--check --repair``: compare the manifest, the Chroma collection and the
BM25 side, and bring them back in step by difference.

What is compared (opening refuses a collection built with another embedding model): each
document's chunk
ids in the manifest against those stored (missing ones, and stored ones no document owns,
e.g. a Chroma folder restored from an older backup beside a newer manifest); an interrupted
run's journal; the BM25 side's generation and chunk ids. Repair deletes the unowned chunks,
re-reads only the documents with missing chunks (only those chunks are embedded again) and
brings the BM25 side up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import IngestSettings
from ingest.damage import guard
from ingest.discovery import Discovery, FoundFile
from ingest.lexical import LexicalIndex
from ingest.lock import write_lock
from ingest.manifest import DocRecord
from ingest.pipeline import IngestReport, apply_plan, sweep_orphans
from ingest.plan import make_plan
from ingest.splitter import TokenSplitter
from ingest.store import DocIndex

logger = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """What disagrees between the manifest, the collection and the BM25 side."""

    documents: int = 0
    chunks: int = 0
    model: str = ""  # why the check could not compare (opening refuses another model)
    missing: dict[str, list[str]] = field(default_factory=dict)  # document path -> ids
    unowned: list[str] = field(default_factory=list)
    pending: int = 0
    lexical: str = ""  # how the BM25 side disagrees; empty when it agrees

    @property
    def ok(self) -> bool:
        return not (self.model or self.missing or self.unowned or self.pending or self.lexical)

    def lines(self) -> list[str]:
        """One line per disagreement, or one saying all agree."""
        if self.ok:
            return [
                f"index ok: {self.documents} documents, {self.chunks} chunks; the manifest, "
                "the collection and the BM25 index agree"
            ]
        out = [self.model] if self.model else []
        for path, ids in sorted(self.missing.items()):
            out.append(f"{path}: {len(ids)} of its chunks are missing from the collection")
        if self.unowned:
            out.append(f"{len(self.unowned)} chunks in the collection belong to no document")
        if self.pending:
            out.append(f"an interrupted run left {self.pending} documents half written")
        if self.lexical:
            out.append(f"BM25 index: {self.lexical}")
        return out


def check_index(settings: IngestSettings) -> CheckReport:
    """Compare the three parts of the index (read-only)."""
    with guard(settings):
        index = DocIndex(settings, writable=False)
        try:
            return _compare(index)
        finally:
            index.close()


def _compare(index: DocIndex) -> CheckReport:
    if index.manifest is None:
        return CheckReport(model="no manifest in this index folder to compare with")
    records = index.manifest.documents()
    stored = index.all_ids()
    report = CheckReport(documents=len(records), chunks=len(stored))
    owned: set[str] = set()
    for record in records.values():
        owned.update(record.chunk_ids)
        gone = [i for i in record.chunk_ids if i not in stored]
        if gone:
            report.missing[str(Path(record.root) / record.source)] = gone
    report.unowned = sorted(stored - owned)
    report.pending = len(index.manifest.pending())
    saved = LexicalIndex.load(index.lexical_dir)
    if saved is None:
        report.lexical = "missing or unreadable"
    elif saved.generation != index.generation():
        report.lexical = f"at generation {saved.generation}, the manifest at {index.generation()}"
    elif saved.live_ids() != stored:
        live = saved.live_ids()
        report.lexical = f"{len(stored - live)} chunks missing, {len(live - stored)} extra"
    return report


def repair_index(settings: IngestSettings) -> tuple[CheckReport, IngestReport | None]:
    """Fix what ``check_index`` finds, by difference; returns the check made first and the
    report of the documents read again (None when none needed it)."""
    found = check_index(settings)
    if found.ok or found.model:
        return found, None
    with write_lock(settings.index_dir), guard(settings, writing=True):
        index = DocIndex(settings, writable=True)
        try:
            since = index.manifest.generation()
            report = None
            if found.unowned or found.pending:
                sweep_orphans(index)
            if found.missing:
                report = _rewrite(index, found.missing)
            if report is None or index.manifest.generation() == since:
                index.publish_generation()
                index.sync_lexical(base=LexicalIndex.load(index.lexical_dir))
        finally:
            index.close()
    return found, report


def _rewrite(index: DocIndex, missing: dict[str, list[str]]) -> IngestReport:
    """Read again the documents with missing chunks: their stored chunks are kept, only the
    missing ones are embedded (the pipeline skips chunk ids the collection holds)."""
    records = [
        r for r in index.manifest.documents().values() if str(Path(r.root) / r.source) in missing
    ]
    index.manifest.forget_content([r.doc_key for r in records])
    discovery = Discovery([], [], [], [])  # no roots: nothing is deleted
    discovery.files.extend(_found(r) for r in records)
    splitter = TokenSplitter(
        index.settings.embedding_model, index.settings.chunk_size, index.settings.chunk_overlap
    )
    plan = make_plan(discovery, index, splitter)
    for err in plan.failed:
        logger.warning("could not read again %s", err)
    return apply_plan(plan, index)


def _found(record: DocRecord) -> FoundFile:
    root = Path(record.root)
    return FoundFile(root, root / record.source)

"""Reingest by difference: apply a plan crash-safely, wave by wave.

Each wave's chunk ids are journalled in the manifest before Chroma is touched, so a killed
run is finished by the next one (see ``ingest.plan`` for how the plan is made).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings
from ingest.damage import ensure_space, guard
from ingest.discovery import discover
from ingest.embeddings import LazyEmbeddings
from ingest.layout import LayoutStore
from ingest.lock import write_lock
from ingest.manifest import DocRecord
from ingest.plan import Plan, Work, fingerprint, make_plan
from ingest.recovery import reset_index as reset_index  # re-exported: the public API's
from ingest.splitter import Chunk, TokenSplitter
from ingest.store import DocIndex
from ingest.writer import WRITE_QUEUE, BackgroundWriter

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_NOTHING_DONE = 1
EXIT_PARTIAL = 3
WAVE_CHUNKS = 256  # at least this many chunks are written and committed together
NEEDS_SWEEP = "needs_sweep"  # manifest meta: set while a dead run's orphans may remain
# A wave's documents and, when they were embedded elsewhere (a Ray cluster), their chunks'
# vectors by chunk id (chunks without one are embedded here).
Wave = tuple[list[Work], Mapping[str, Sequence[float]] | None]


@dataclass
class IngestReport:
    plan: Plan
    dry_run: bool = False
    chunks_written: int = 0
    chunks_embedded: int = 0
    chunks_removed: int = 0
    orphans_removed: int = 0
    chunks_total: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        p = self.plan
        line = (
            f"added {len(p.add)}, updated {len(p.update)}, deleted {len(p.delete)}, "
            f"unchanged {len(p.unchanged)}"
        )
        if p.failed:
            line += f", failed {len(p.failed)}"
        line += (
            f" (chunks: +{self.chunks_written} written, {self.chunks_embedded} embedded, "
            f"-{self.chunks_removed} removed, {self.chunks_total} in index)"
        )
        ocr_pages = sum(w.doc.ocr_pages for w in p.work)
        if ocr_pages:
            low = sum(w.doc.low_confidence for w in p.work)
            line += f"; OCR read {ocr_pages} pages ({low} low-confidence lines kept)"
        if self.orphans_removed:
            line += f"; cleaned {self.orphans_removed} chunks left by an interrupted run"
        return line

    @property
    def exit_code(self) -> int:
        p = self.plan
        if not p.failed:
            return EXIT_OK
        if not (p.add or p.update or p.delete or p.unchanged):
            return EXIT_NOTHING_DONE
        return EXIT_PARTIAL


# Keys only some chunks have. Readers rebuild a chunk's context line (title, publisher, date)
# from its metadata, so those keys must be exactly the document's.
OPTIONAL_META: dict[str, Any] = {
    "title_is_excerpt": None,
    "section": None,
    "date": None,
    "publisher": None,
    "author": None,
    "page": None,
    "page_end": None,
}


def chunk_metadata(work: Work, chunk: Chunk) -> dict[str, Any]:
    doc = work.doc
    meta: dict[str, Any] = {
        **work.metadata,
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
    }
    section = work.section(chunk)
    if section:
        meta["section"] = section
    page = doc.page_at(chunk.start)
    if page is not None:
        meta["page"] = page
        meta["page_end"] = doc.page_at(max(chunk.start, chunk.end - 1))
    return meta


def _waves(work: Sequence[Work], size: int) -> Iterable[list[Work]]:
    wave: list[Work] = []
    count = 0
    for item in work:
        wave.append(item)
        count += len(item.chunks)
        if count >= size:
            yield wave
            wave, count = [], 0
    if wave:
        yield wave


def apply_plan(
    plan: Plan,
    index: DocIndex,
    progress: Callable[[int], None] | None = None,
    *,
    waves: Iterable[Wave] | None = None,
) -> IngestReport:
    """Write the plan: journal → embed and upsert → drop replaced chunks → commit, per wave;
    then the BM25 side, by the same difference. ``waves``: the work in waves made elsewhere
    (``ingest.ray_ingest``), instead of ``plan.work`` embedded here."""
    report = IngestReport(plan)
    manifest = index.manifest
    since = manifest.generation()
    if manifest.pending():  # a run died mid-write: sweep its orphans once this one is done
        manifest.set_meta(NEEDS_SWEEP, "1")
    fp = fingerprint(index.settings, index.model)
    added: list[tuple[str, str]] = []
    removed: list[str] = []
    if waves is None:
        size = max(WAVE_CHUNKS, 4 * index.settings.batch_size)
        waves = ((wave, None) for wave in _waves(plan.work, size))
    for wave, vectors in waves:
        ensure_space(index.settings, [c.text for w in wave for c in w.chunks])
        written, replaced = _write_wave(wave, index, fp, report, progress, vectors)
        added.extend(written)
        removed.extend(replaced)
    removed.extend(_delete_documents(plan.delete, index, report))
    if manifest.get_meta(NEEDS_SWEEP):
        orphans = sweep_orphans(index)
        removed.extend(orphans)
        report.orphans_removed = len(orphans)
        manifest.set_meta(NEEDS_SWEEP, "")
    # After the chunks, before BM25: readers elsewhere rebuild theirs when this changes. Also
    # catches up a run that committed and was then killed before publishing.
    index.publish_generation()
    if manifest.generation() != since or report.orphans_removed:
        index.update_lexical(added, removed, since=since)
    report.chunks_total = index.count()
    return report


def _write_wave(
    wave: list[Work],
    index: DocIndex,
    fp: str,
    report: IngestReport,
    progress: Callable[[int], None] | None,
    vectors: Mapping[str, Sequence[float]] | None = None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Write one wave: journal its chunk ids, embed and upsert the chunks not stored yet,
    refresh the offsets of those kept, drop the ones replaced, commit. Returns the (chunk id,
    BM25 text) pairs written and the ids removed."""
    index.manifest.begin((w.key, w.ids) for w in wave)
    rows = [(i, c, w) for w in wave for i, c in zip(w.ids, w.chunks, strict=True)]
    have = index.existing([r[0] for r in rows])
    todo = sorted((r for r in rows if r[0] not in have), key=lambda r: len(r[1].text))
    if progress and len(todo) < len(rows):
        progress(len(rows) - len(todo))  # already written by an interrupted run
    _embed_and_upsert(todo, index, report, progress, vectors or {})
    kept = [r for r in rows if r[0] in have]  # same text: vector kept, offsets refreshed
    if kept:
        index.update_metadata(
            ids=[i for i, _, _ in kept],
            # Chroma merges metadata on update: None drops a key the new version lacks.
            metadatas=[{**OPTIONAL_META, **chunk_metadata(w, c)} for _, c, w in kept],
        )
    report.chunks_written += len(rows)
    replaced = [i for w in wave if w.old for i in set(w.old.chunk_ids) - set(w.ids)]
    if replaced:
        index.delete(replaced)
        report.chunks_removed += len(replaced)
    layouts = LayoutStore(index.settings.index_dir, index.settings.collection)
    for w in wave:  # before the commit: a run killed in between rewrites them
        layouts.save(w.key, w.doc.layout)
    index.manifest.commit(w.record(w.fingerprint or fp) for w in wave)
    return [(i, w.retrieval_text(c)) for i, c, w in rows], replaced


def _embed_and_upsert(
    todo: list[tuple[str, Chunk, Work]],
    index: DocIndex,
    report: IngestReport,
    progress: Callable[[int], None] | None,
    vectors: Mapping[str, Sequence[float]],
) -> None:
    """Embed batch by batch (the progress bar moves) while a writer thread upserts the
    batches already embedded (at most ``WRITE_QUEUE`` wait): Chroma's writes, ~1 ms a chunk,
    overlap the next batch's embedding instead of adding to it. Returns when every batch is
    stored (a failed write is raised here, before the wave commits). Chunks with a vector in
    ``vectors`` (embedded elsewhere) are only written."""
    batch = index.settings.batch_size
    todo = sorted(todo, key=lambda r: r[0] not in vectors)  # those embedded elsewhere first
    with BackgroundWriter(WRITE_QUEUE) as writer:
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            missing = [w.retrieval_text(c) for i, c, w in part if i not in vectors]
            computed = iter(index.embeddings.embed_documents(missing) if missing else ())
            report.chunks_embedded += len(part)
            writer.submit(
                index.upsert,
                [i for i, _, _ in part],
                [vectors[i] if i in vectors else next(computed) for i, _, _ in part],
                [c.text for _, c, _ in part],
                [chunk_metadata(w, c) for _, c, w in part],
            )
            if progress:
                progress(len(part))


def _delete_documents(records: list[DocRecord], index: DocIndex, report: IngestReport) -> list[str]:
    """Remove the chunks of documents gone from their folder, then forget the documents."""
    if not records:
        return []
    gone = [i for r in records for i in r.chunk_ids]
    if gone:
        index.delete(gone)
    report.chunks_removed += len(gone)
    index.manifest.commit([], deleted=[r.doc_key for r in records])
    layouts = LayoutStore(index.settings.index_dir, index.settings.collection)
    for r in records:
        layouts.remove(r.doc_key)
    return gone


def sweep_orphans(index: DocIndex) -> list[str]:
    """Delete chunks no committed document owns (left by a run killed mid-write).

    Lists every id in the collection (1 s at 100k chunks), so it runs only after a run that
    died: a run that finishes leaves nothing behind (its journal is emptied by its commits)."""
    orphans = sorted(index.all_ids() - index.manifest.all_chunk_ids())
    if orphans:
        logger.info("removing %d orphan chunks", len(orphans))
        for start in range(0, len(orphans), 5000):
            index.delete(orphans[start : start + 5000])
    index.manifest.clear_pending()
    return orphans


def ingest_paths(
    paths: Sequence[Path | str],
    settings: IngestSettings,
    *,
    dry_run: bool = False,
    embeddings: Embeddings | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> IngestReport:
    """Bring the index in step with ``paths`` (files or folders). The library's main entry."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    discovery = discover(Path(p) for p in paths)
    for notice in discovery.notices:
        logger.info("%s", notice)
    with write_lock(settings.index_dir), guard(settings, writing=True):
        index = DocIndex(settings, writable=True, embeddings=embeddings)
        try:
            splitter = TokenSplitter(
                settings.embedding_model, settings.chunk_size, settings.chunk_overlap
            )
            plan = make_plan(discovery, index, splitter, defer=bool(settings.ray_address))
            for err in plan.failed:
                logger.warning("skipped %s", err)
            if on_plan:
                on_plan(plan)
            if dry_run:
                report = IngestReport(plan, dry_run=True, chunks_total=index.count())
            elif plan.deferred:  # loaded, split and embedded on a Ray cluster
                from ingest.ray_ingest import ray_waves

                size = max(WAVE_CHUNKS, 4 * settings.batch_size)
                waves = ray_waves(plan, index, wave_chunks=size, progress=settings.progress)
                report = apply_plan(plan, index, waves=waves)
            else:
                total = sum(len(w.chunks) for w in plan.work)
                if total and isinstance(index.embeddings, LazyEmbeddings):
                    index.embeddings.loaded  # noqa: B018 (a first ONNX export logs its lines here)
                disable = None if settings.progress else True
                with tqdm(total=total, unit="chunk", desc="embedding", disable=disable) as bar:
                    report = apply_plan(plan, index, progress=bar.update)
        finally:
            index.close()
    report.seconds = time.perf_counter() - started
    return report

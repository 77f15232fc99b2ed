"""Build (or reuse) the eval index for a docs folder and run the chatbot over an eval set.

The index is a throwaway one under ``EvalSettings.cache_dir``, named by a hash of the docs
folder and the index settings, so the user's own index is never touched. ``ingest_paths``
brings it in step with the folder by difference: an unchanged folder costs a ``stat`` per
file; a changed one reingests only what changed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from chatbot import Answer, Chatbot, ChatSettings, QuestionError
from eval.config import EvalSettings
from eval.dataset import EvalCase
from eval.metrics import doc_stem
from ingest import (
    EXIT_NOTHING_DONE,
    DocRecord,
    IndexDamagedError,
    IngestError,
    IngestSettings,
    ingest_paths,
    reset_index,
)

logger = logging.getLogger(__name__)


class EvalError(RuntimeError):
    """The run cannot go on (no documents, an unusable index); the message says why."""


@dataclass
class IndexInfo:
    index_dir: Path
    documents: int
    chunks: int
    bytes: int
    ingest_summary: str
    doc_stems: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, object]:
        return {
            "index_dir": str(self.index_dir),
            "documents": self.documents,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "ingest": self.ingest_summary,
        }


@dataclass
class Outcome:
    """One question's result: the chatbot's answer (or the error that stopped it), the
    seconds it took, and for a question declined at the off-topic floor (``min_dense``)
    what the chatbot answers without that floor, for the refusal-threshold curve."""

    case: EvalCase
    answer: Answer | None
    latency_ms: float
    error: str = ""
    unfloored: Answer | None = None


def index_dir_for(docs: Path, index: IngestSettings, cache_dir: Path) -> Path:
    """The cache folder for ``docs`` under these index settings."""
    key = "|".join(
        [
            str(docs.resolve()),
            index.embedding_model,
            str(index.chunk_size),
            str(index.chunk_overlap),
            index.collection,
        ]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", docs.resolve().name).strip("-") or "docs"
    return cache_dir / f"{slug}-{digest}"


def prepare_index(
    docs: Path, index: IngestSettings, settings: EvalSettings, *, fresh: bool = False
) -> tuple[IngestSettings, IndexInfo]:
    """Ingest ``docs`` into its cached eval index (only what changed) and describe it."""

    if not docs.is_dir():
        raise EvalError(f"--docs {docs}: not a folder")
    index = index.replace(index_dir=index_dir_for(docs, index, settings.cache_dir))
    if index.chroma_host:
        # On a shared server, a collection of its own (named by the cache key), never the
        # collection the chat uses: --fresh resets only this one.
        index = index.replace(collection=f"eval-{index.index_dir.name}"[:60])
    index.index_dir.mkdir(parents=True, exist_ok=True)
    if fresh:
        reset_index(index)
    logger.info("eval index %s", index.index_dir)
    try:
        report = ingest_paths([docs], index)
    except IndexDamagedError as exc:
        raise EvalError(
            f"the eval index at {exc.path} is damaged ({exc.reason}): run again with --fresh "
            "to rebuild it (the damaged files are kept aside)"
        ) from None
    except IngestError as exc:
        raise EvalError(f"could not ingest {docs}: {exc}") from None
    if report.exit_code == EXIT_NOTHING_DONE:
        raise EvalError(f"could not ingest any file of {docs}: {report.summary()}")
    if report.plan.failed:
        logger.warning("some files of %s were skipped: %s", docs, report.summary())
    records, chunks = _contents(index)
    if chunks == 0:
        raise EvalError(f"{docs} holds no document the ingester reads (.txt .md .html .pdf .docx)")
    size = sum(f.stat().st_size for f in index.index_dir.rglob("*") if f.is_file())
    stems = {doc_stem(r.source) for r in records}
    info = IndexInfo(index.index_dir, len(records), chunks, size, report.summary(), stems)
    return index, info


def existing_index(index: IngestSettings) -> tuple[IngestSettings, IndexInfo]:
    """Describe the collection ``index`` names as it is, to evaluate without building a
    throwaway index (nothing is ingested); an ``EvalError`` when it cannot be read."""
    from ingest.manifest import manifest_path

    try:
        records, chunks = _contents(index)
    except IngestError as exc:
        raise EvalError(f"--collection {index.collection}: {exc}") from None
    if chunks == 0:
        raise EvalError(
            f"--collection {index.collection}: the collection in {index.chroma_location} "
            "holds no documents"
        )
    local = [manifest_path(index.index_dir, index.collection)]
    local += list((index.index_dir / "bm25" / index.collection).rglob("*"))
    size = sum(f.stat().st_size for f in local if f.is_file())
    stems = {doc_stem(r.source) for r in records}
    summary = f"existing collection {index.collection!r}, not reingested"
    return index, IndexInfo(index.index_dir, len(records), chunks, size, summary, stems)


def _contents(index: IngestSettings) -> tuple[list[DocRecord], int]:
    """The documents and the number of chunks of the collection ``index`` names."""
    from ingest import open_index

    opened = open_index(index)
    try:
        return opened.documents(), opened.count()
    finally:
        opened.close()


def unknown_evidence_docs(cases: list[EvalCase], stems: set[str]) -> dict[str, list[str]]:
    """Evidence document ids (per question id) that name no ingested document."""
    out: dict[str, list[str]] = {}
    for case in cases:
        missing = [d for d in case.evidence_doc_ids if doc_stem(d) not in stems]
        if missing:
            out[case.id] = missing
    return out


def run_cases(bot: Chatbot, cases: list[EvalCase], settings: EvalSettings) -> list[Outcome]:
    """Every case through ``Chatbot.answer_batch``, ``settings.batch_size`` at a time,
    with a progress bar. The first question is asked once before timing, so the latency
    figures do not include loading the model."""
    from tqdm.auto import tqdm

    if cases:
        _ask(bot, cases[0])  # warm-up: model, BM25 index and caches loaded
    outcomes: list[Outcome] = []
    disable = None if settings.progress else True
    with tqdm(total=len(cases), unit="q", desc="questions", disable=disable) as bar:
        for start in range(0, len(cases), settings.batch_size):
            batch = cases[start : start + settings.batch_size]
            outcomes.extend(_run_batch(bot, batch))
            bar.update(len(batch))
    return outcomes


def floor_rerun(bot: Chatbot, outcomes: list[Outcome], settings: ChatSettings) -> int:
    """For the refusal-threshold curve: ask again, with the off-topic floor off, the
    questions the extractive answerer declined because no passage reached ``min_dense``.

    The floor is a pure gate in front of the other checks, so "answered at threshold t" is
    exactly "answered without the floor, and best similarity >= t". The second chatbot shares
    the first one's index and model. Returns how many questions were asked again.
    """
    if settings.answerer != "extractive":
        return 0
    todo = [o for o in outcomes if o.answer is not None and _below_floor(o.answer, settings)]
    if not todo:
        return 0
    unfloored = Chatbot(settings.replace(min_dense=-1.0), index=bot.index)
    for o in todo:
        o.unfloored = _ask(unfloored, o.case)[0]
    logger.info("asked %d floor-declined questions again without the floor", len(todo))
    return len(todo)


def _below_floor(answer: Answer, settings: ChatSettings) -> bool:
    best = best_dense(answer)
    return answer.declined and best is not None and best < settings.min_dense


def best_dense(answer: Answer) -> float | None:
    """The best dense similarity among the answer's retrieved passages (what ``min_dense``
    is compared with); ``None`` when no passage has a dense score."""
    scores = [p.dense_score for p in answer.trace.passages if p.dense_score is not None]
    return max(scores) if scores else None


def _items(cases: list[EvalCase]) -> list[dict]:
    return [{"question": c.question, "history": [dict(t) for t in c.history]} for c in cases]


def _ask(bot: Chatbot, case: EvalCase) -> tuple[Answer | None, str]:
    try:
        return bot.answer_batch(_items([case]))[0], ""
    except QuestionError as exc:
        return None, str(exc)


def _run_batch(bot: Chatbot, batch: list[EvalCase]) -> list[Outcome]:
    t = time.perf_counter()
    try:
        answers = bot.answer_batch(_items(batch))
    except QuestionError:
        return [_run_one(bot, c) for c in batch]  # find the one it refused
    wall = (time.perf_counter() - t) * 1000 / len(batch)
    return [
        Outcome(c, a, float(a.trace.timings_ms.get("total", wall)))
        for c, a in zip(batch, answers, strict=True)
    ]


def _run_one(bot: Chatbot, case: EvalCase) -> Outcome:
    t = time.perf_counter()
    answer, error = _ask(bot, case)
    if error:
        logger.warning(
            "%s (line %d): the chatbot refused the question: %s", case.id, case.line, error
        )
    ms = (time.perf_counter() - t) * 1000
    total = answer.trace.timings_ms.get("total", ms) if answer else ms
    return Outcome(case, answer, float(total), error)

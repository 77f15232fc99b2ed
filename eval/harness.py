"""One eval run, start to end: load the set, build the index, ask, score, assemble."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatbot import Chatbot, ChatSettings
from eval.config import EvalSettings
from eval.dataset import EvalCase, corpora, load_set, select_corpus
from eval.runner import (
    EvalError,
    existing_index,
    floor_rerun,
    prepare_index,
    run_cases,
    unknown_evidence_docs,
)
from eval.scoring import ScoreOptions, score_outcome
from eval.summary import summarize, summarize_by_type, threshold_curve

logger = logging.getLogger(__name__)

# Chat settings copied into the report (the API key never is).
_REPORTED = (
    "k",
    "fetch_k",
    "per_doc_cap",
    "rrf_k",
    "dense_weight",
    "bm25_weight",
    "answerer",
    "min_dense",
    "min_support",
    "type_check",
    "negation_check",
    "contrast_check",
    "entity_check",
    "neighbour_weight",
    "context_weight",
    "rerank_weight",
    "max_sentences",
    "support_threshold",
)


def evaluate(
    docs: Path | None,
    set_path: Path,
    settings: EvalSettings,
    chat: ChatSettings,
    *,
    fresh: bool = False,
    corpus: str | None = None,
    existing: bool = False,
) -> dict[str, Any]:
    """Run every question of ``set_path`` against ``docs`` and return the report: ``meta``,
    ``metrics``, ``by_type`` (the main metrics per question type), ``curve`` (refusal
    threshold) and ``rows`` (one per question).

    ``chat`` gives every chatbot knob but the index folder, which is the eval cache's;
    with ``existing`` (``docs`` None) the collection ``chat.index`` names is evaluated as it
    is, nothing ingested.
    ``corpus``: ask only the questions of that corpus (and those naming none); the others
    are left out and counted in ``meta["left_out"]``. Raises ``DatasetError`` for a bad set
    and ``EvalError`` for unusable docs or a corpus that leaves no question.
    """
    cases = load_set(set_path)
    left_out = 0
    if corpus is not None:
        cases, left_out = filter_corpus(cases, corpus, set_path)
    if existing:
        index, info = existing_index(chat.index)
        where = f"collection {index.collection!r}"
    elif docs is None:
        raise EvalError("give the documents folder (--docs) or an existing --collection")
    else:
        index, info = prepare_index(docs, chat.index, settings, fresh=fresh)
        where = str(docs)
    for qid, missing in unknown_evidence_docs(cases, info.doc_stems).items():
        logger.warning("%s: evidence_doc_ids %s name no document in %s", qid, missing, where)
    chat = chat.replace(index=index, k=settings.k, fetch_k=max(chat.fetch_k, settings.k))
    bot = Chatbot(chat)
    try:
        outcomes = run_cases(bot, cases, settings)
        floor_rerun(bot, outcomes, chat)
    finally:
        bot.index.close()
    opts = ScoreOptions(k=settings.k, min_overlap=settings.evidence_overlap)
    rows = [score_outcome(o, opts) for o in outcomes]
    if left_out:
        logger.info("%d question(s) of other corpora left out (--corpus %s)", left_out, corpus)
    index_meta = info.to_dict()
    index_meta.pop("index_dir")  # machine-specific; the terminal names it
    return {
        "version": 1,
        "meta": {
            "set": str(set_path),
            "docs": str(docs) if docs is not None else "",
            "collection": index.collection if existing else "",
            "corpus": corpus or "",
            "left_out": left_out,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "answerer": chat.answerer,
            "k": settings.k,
            "min_dense": chat.min_dense,
            "embedding_model": index.embedding_model,
            "chunk_size": index.chunk_size,
            "chunk_overlap": index.chunk_overlap,
            "evidence_overlap": settings.evidence_overlap,
            "chat_settings": {name: getattr(chat, name) for name in _REPORTED},
            "index": index_meta,
        },
        "metrics": summarize(rows, settings.k),
        "by_type": summarize_by_type(rows),
        "curve": threshold_curve(rows, chat.min_dense, settings.curve_points),
        "rows": rows,
    }


def filter_corpus(cases: list[EvalCase], corpus: str, set_path: Path) -> tuple[list[EvalCase], int]:
    """The cases of ``corpus`` (and those naming none), and how many were left out; an
    ``EvalError`` naming the set's corpora when none is left."""
    if not corpus.strip():
        raise EvalError(f"--corpus {corpus!r}: give a corpus name")
    named = corpora(cases)
    kept, left_out = select_corpus(cases, corpus)
    if not kept:
        raise EvalError(
            f"--corpus {corpus}: no question of {set_path} is in that corpus "
            f"(its corpora: {', '.join(named)})"
        )
    if corpus not in named:
        logger.warning(
            "--corpus %s: no question of %s names that corpus (its corpora: %s); asking "
            "the %d without a corpus",
            corpus,
            set_path,
            ", ".join(named) or "none",
            len(kept),
        )
    return kept, left_out

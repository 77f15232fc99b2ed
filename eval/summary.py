"""The report's figures over the scored rows (``eval.scoring``): the summary metrics, the
per-type summary and the refusal-threshold curve."""

from __future__ import annotations

from typing import Any

from eval import metrics as m
from eval.scoring import HITS_AT, rounded


def summarize(rows: list[dict[str, Any]], k: int) -> dict[str, float | int | None]:
    """The report's metrics over all rows (``None`` where nothing could be scored)."""

    def col(name: str) -> list[float | None]:
        return [r["scores"].get(name) for r in rows]

    out: dict[str, float | int | None] = {}
    for prefix in ("", "shown_"):
        for j in HITS_AT:
            out[f"{prefix}hits@{j}"] = m.mean(col(f"{prefix}hits@{j}"))
        out[f"{prefix}mrr@10"] = m.mean(col(f"{prefix}mrr@10"))
        out[f"{prefix}evidence_recall"] = m.mean(col(f"{prefix}evidence_recall"))
    out["answer_contains"] = m.mean(col("answer_contains"))
    out["answer_f1"] = m.mean(col("answer_f1"))
    out["short_em"] = m.mean(col("short_em"))
    out["short_f1"] = m.mean(col("short_f1"))
    out["answer_contains_when_answered"] = m.mean(
        r["scores"]["answer_contains"] for r in rows if not r["declined"]
    )
    out["evidence_docs_cited"] = m.mean(col("evidence_docs_cited"))
    out["citation_precision"] = m.mean(col("citation_precision"))
    out["citation_supported"] = m.mean(col("citation_supported"))
    refusals = m.refusal_stats((r["gold"]["answerable"], r["declined"]) for r in rows)
    out["refusal_recall"] = refusals.recall
    out["answered_when_answerable"] = refusals.answered_when_answerable
    out["decline_precision"] = refusals.precision
    out.update(reader_shares(rows))
    latencies = [r["latency_ms"] for r in rows if not r["error"]]
    out["latency_p50_ms"] = rounded(m.percentile(latencies, 50), 1)
    out["latency_p95_ms"] = rounded(m.percentile(latencies, 95), 1)
    out["n_questions"] = len(rows)
    out["n_answerable"] = refusals.answerable
    out["n_unanswerable"] = refusals.unanswerable
    out["n_retrieval_scored"] = sum(1 for r in rows if r["scores"]["hits@1"] is not None)
    out["n_declined"] = refusals.declined
    out["n_errors"] = sum(1 for r in rows if r["error"])
    out["k"] = k
    return {key: rounded(v) if isinstance(v, float) else v for key, v in out.items()}


def reader_shares(rows: list[dict[str, Any]]) -> dict[str, float | int | None]:
    """The reader model's no-answer decisions, over the rows it decided
    (``reader_declined`` not None): the share of unanswerable questions it declined
    (``reader_declined_unanswerable``, higher is better) and of answerable ones
    (``reader_declined_answerable``, lower is better), with how many it decided
    (``n_reader``). Empty when no row has reader data (the rules answerer)."""
    decided = [r for r in rows if r.get("reader_declined") is not None]
    if not decided:
        return {}
    stats = m.refusal_stats((r["gold"]["answerable"], r["reader_declined"]) for r in decided)
    return {
        "reader_declined_unanswerable": stats.recall,
        "reader_declined_answerable": stats.declined_when_answerable,
        "n_reader": len(decided),
    }


# The per-type summary's columns, in order; the reader's when a row has reader data.
BY_TYPE_METRICS = (
    "answered_when_answerable",
    "answer_contains",
    "short_em",
    "short_f1",
    "evidence_docs_cited",
    "refusal_recall",
)
BY_TYPE_READER_METRICS = ("reader_declined_unanswerable", "reader_declined_answerable")
NO_TYPE = "(no type)"


def summarize_by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """For each distinct question ``type`` (in first-seen order; ``NO_TYPE`` for rows
    without one): n, answered when answerable, contains a gold answer, short-answer exact
    match and F1, every evidence document cited, declined when unanswerable
    (``refusal_recall``), and when any row has reader data, the reader's shares
    (``reader_shares``; ``None`` for a type it decided none of)."""
    with_reader = any(r.get("reader_declined") is not None for r in rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r.get("type") or NO_TYPE, []).append(r)
    out: dict[str, dict[str, float | int | None]] = {}
    for kind, group in groups.items():
        refusals = m.refusal_stats((r["gold"]["answerable"], r["declined"]) for r in group)
        values: dict[str, float | int | None] = {
            "n": len(group),
            "n_answerable": refusals.answerable,
            "n_unanswerable": refusals.unanswerable,
            "answered_when_answerable": refusals.answered_when_answerable,
            "answer_contains": m.mean(r["scores"].get("answer_contains") for r in group),
            "short_em": m.mean(r["scores"].get("short_em") for r in group),
            "short_f1": m.mean(r["scores"].get("short_f1") for r in group),
            "evidence_docs_cited": m.mean(r["scores"].get("evidence_docs_cited") for r in group),
            "refusal_recall": refusals.recall,
        }
        if with_reader:
            shares = reader_shares(group)
            values.update({k: shares.get(k) for k in BY_TYPE_READER_METRICS})
            values["n_reader"] = shares.get("n_reader", 0)
        out[kind] = {k: rounded(v) if isinstance(v, float) else v for k, v in values.items()}
    return out


def threshold_curve(rows: list[dict[str, Any]], current: float, points: int) -> dict[str, Any]:
    """Answered-correct (share of answerable questions) and wrongly-answered-unanswerable
    (share of unanswerable ones) as the off-topic floor moves over the best dense
    similarity of each question's passages; ``current`` is today's ``min_dense``."""
    scored = [r["best_dense"] for r in rows if r["best_dense"] is not None]
    lo = min([*scored, current]) - 0.05
    hi = max([*scored, current]) + 0.05
    lo, hi = max(-1.0, lo), min(1.0, hi)
    thresholds = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    answerable = [r for r in rows if r["gold"]["answerable"]]
    unanswerable = [r for r in rows if not r["gold"]["answerable"]]

    def passes(r: dict[str, Any], t: float) -> bool:
        return r["best_dense"] is None or r["best_dense"] >= t

    correct, wrong = [], []
    for t in thresholds:
        good = sum(1 for r in answerable if r["threshold"]["correct"] and passes(r, t))
        bad = sum(1 for r in unanswerable if r["threshold"]["answered"] and passes(r, t))
        correct.append(rounded(good / len(answerable)) if answerable else None)
        wrong.append(rounded(bad / len(unanswerable)) if unanswerable else None)
    return {
        "scalar": "best dense similarity of the retrieved passages (the min_dense floor)",
        "current": current,
        "thresholds": [round(t, 4) for t in thresholds],
        "answered_correct": correct,
        "wrong_unanswerable": wrong,
    }

"""The report's tables as cells, shared by every format (terminal, report.md, report.html):
the summary (each metric with its n and, given a baseline, the change), the per-type table,
the header lines and the outcome counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eval.config import PRIMARY_METRICS
from eval.scoring import FAILURES, OK
from eval.summary import BY_TYPE_METRICS, BY_TYPE_READER_METRICS

# (section, metric key, label); the order of the summary table.
TABLE: tuple[tuple[str, str, str], ...] = (
    ("retrieval", "hits@1", "hits@1"),
    ("retrieval", "hits@3", "hits@3"),
    ("retrieval", "hits@5", "hits@5"),
    ("retrieval", "hits@10", "hits@10"),
    ("retrieval", "mrr@10", "MRR@10"),
    ("retrieval", "evidence_recall", "evidence recall@k"),
    ("shown", "shown_hits@1", "hits@1, shown [n] order"),
    ("shown", "shown_hits@5", "hits@5, shown [n] order"),
    ("shown", "shown_mrr@10", "MRR@10, shown [n] order"),
    ("answers", "answer_contains", "contains a gold answer"),
    ("answers", "answer_contains_when_answered", "contains gold, when answered"),
    ("answers", "answer_f1", "token F1"),
    ("answers", "short_em", "short answer EM"),
    ("answers", "short_f1", "short answer F1"),
    ("citations", "evidence_docs_cited", "every evidence doc cited"),
    ("citations", "citation_precision", "citation precision"),
    ("citations", "citation_supported", "sentences supported"),
    ("refusals", "refusal_recall", "declined when unanswerable"),
    ("refusals", "answered_when_answerable", "answered when answerable"),
    ("refusals", "decline_precision", "decline precision"),
    ("reader", "reader_declined_unanswerable", "reader declined when unanswerable"),
    ("reader", "reader_declined_answerable", "reader declined when answerable"),
    ("latency", "latency_p50_ms", "p50 ms per question"),
    ("latency", "latency_p95_ms", "p95 ms per question"),
)
# Shown only when the report has them (the reader model ran).
OPTIONAL = frozenset({"reader_declined_unanswerable", "reader_declined_answerable"})


def metric_n(report: Mapping[str, Any], key: str) -> int | None:
    """How many questions a metric is computed over."""
    metrics, rows = report["metrics"], report.get("rows", [])
    if key == "refusal_recall":
        return metrics.get("n_unanswerable")
    if key == "answered_when_answerable":
        return metrics.get("n_answerable")
    if key == "decline_precision":
        return metrics.get("n_declined")
    if key.startswith("latency"):
        return sum(1 for r in rows if not r.get("error"))
    if key in ("reader_declined_unanswerable", "reader_declined_answerable"):
        answerable = key == "reader_declined_answerable"
        return sum(
            1
            for r in rows
            if r.get("reader_declined") is not None and r["gold"]["answerable"] == answerable
        )
    if key == "answer_contains_when_answered":
        return sum(
            1 for r in rows if not r["declined"] and r["scores"]["answer_contains"] is not None
        )
    return sum(1 for r in rows if r["scores"].get(key) is not None)


def fmt(value: Any, key: str = "") -> str:
    """A metric's value as shown: 3 decimals, whole milliseconds, "n/a" for None."""
    if value is None:
        return "n/a"
    if key.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def delta(now: Any, before: Any, key: str = "") -> str:
    if not isinstance(now, int | float) or not isinstance(before, int | float):
        return ""
    return f"{now - before:+.0f}" if key.startswith("latency") else f"{now - before:+.3f}"


def summary_rows(
    report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None
) -> list[list[str]]:
    """The summary table's cells: section, metric (``*`` = gated), value, n, and with a
    baseline, its value and the change."""
    out = []
    for section, key, label in TABLE:
        if key in OPTIONAL and key not in report["metrics"]:
            continue
        depth = key.removeprefix("shown_")
        if depth.startswith("hits@") and report["metrics"].get(key) is None:
            if int(depth[5:]) > report["meta"]["k"]:
                continue  # not retrieved that deep
        gated = "*" if key in PRIMARY_METRICS else ""
        cells = [
            section,
            f"{label}{gated}",
            fmt(report["metrics"].get(key), key),
            fmt(metric_n(report, key)),
        ]
        if baseline is not None:
            before = baseline.get(key)
            cells += [fmt(before, key), delta(report["metrics"].get(key), before, key)]
        out.append(cells)
    return out


def header_lines(report: Mapping[str, Any]) -> list[str]:
    """What was evaluated, how, and in which order retrieval is scored."""
    meta, met = report["meta"], report["metrics"]
    idx = meta["index"]
    lines = [
        f"set {meta['set']}: {met['n_questions']} questions ({met['n_answerable']} answerable, "
        f"{met['n_unanswerable']} unanswerable)",
    ]
    if meta.get("corpus"):
        lines.append(
            f"corpus {meta['corpus']}: {meta.get('left_out', 0)} question(s) of other corpora "
            "left out"
        )
    lines += [
        f"{_source(meta)}: {idx['documents']} documents, {idx['chunks']} chunks, "
        f"index {idx['bytes'] / 1e6:.1f} MB",
        f"answerer {meta['answerer']}, k={meta['k']}, min_dense={meta['min_dense']}",
        "retrieval metrics in retriever order (fused score); shown_* in the answer's [n] order",
    ]
    return lines


BY_TYPE_LABELS = {
    "answered_when_answerable": "answered when answerable",
    "answer_contains": "contains gold",
    "short_em": "short EM",
    "short_f1": "short F1",
    "evidence_docs_cited": "evidence docs cited",
    "refusal_recall": "declined when unanswerable",
    "reader_declined_unanswerable": "reader declined unans.",
    "reader_declined_answerable": "reader declined ans.",
}


def by_type_metrics(report: Mapping[str, Any]) -> tuple[str, ...]:
    """The per-type table's metric columns: ``BY_TYPE_METRICS``, then the reader's when the
    per-type summary has them."""
    types = (report.get("by_type") or {}).values()
    with_reader = any(k in values for values in types for k in BY_TYPE_READER_METRICS)
    return BY_TYPE_METRICS + (BY_TYPE_READER_METRICS if with_reader else ())


def by_type_head(report: Mapping[str, Any]) -> list[str]:
    """The per-type table's header: type, n, then each metric column's label."""
    return ["type", "n", *(BY_TYPE_LABELS[k] for k in by_type_metrics(report))]


def by_type_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The per-type table's cells: type, n, then ``by_type_metrics`` ("n/a" where a type
    has no question the metric applies to)."""
    columns = by_type_metrics(report)
    out = []
    for kind, values in (report.get("by_type") or {}).items():
        out.append([kind, str(values["n"]), *(fmt(values.get(k)) for k in columns)])
    return out


def count_outcomes(rows: list[dict[str, Any]]) -> dict[str, int]:
    """How many rows had each outcome, ``OK`` first, then ``FAILURES`` worst first."""
    counts = {OK: 0, **{f: 0 for f in FAILURES}}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return counts


def _source(meta: dict) -> str:
    """What was evaluated: the docs folder, or the existing collection (``--collection``)."""
    if meta.get("collection"):
        return f"collection {meta['collection']} (as it is)"
    return f"docs {meta['docs']}"

"""The report: ``report.json`` (metrics + per-question rows), ``report.md`` (summary and
failures), ``report.html`` (summary, plots, per-question drill-down) and the terminal table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path
from typing import Any

from eval import plots
from eval.config import PRIMARY_METRICS
from eval.scoring import FAILURES, OK
from eval.summary import BY_TYPE_METRICS

REPORT_VERSION = 1

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
    ("citations", "evidence_docs_cited", "every evidence doc cited"),
    ("citations", "citation_precision", "citation precision"),
    ("citations", "citation_supported", "sentences supported"),
    ("refusals", "refusal_recall", "declined when unanswerable"),
    ("refusals", "answered_when_answerable", "answered when answerable"),
    ("refusals", "decline_precision", "decline precision"),
    ("latency", "latency_p50_ms", "p50 ms per question"),
    ("latency", "latency_p95_ms", "p95 ms per question"),
)


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
    if key == "answer_contains_when_answered":
        return sum(
            1 for r in rows if not r["declined"] and r["scores"]["answer_contains"] is not None
        )
    return sum(1 for r in rows if r["scores"].get(key) is not None)


def _fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "n/a"
    if key.startswith("latency"):
        return f"{value:.0f}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _delta(now: Any, before: Any, key: str = "") -> str:
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
        depth = key.removeprefix("shown_")
        if depth.startswith("hits@") and report["metrics"].get(key) is None:
            if int(depth[5:]) > report["meta"]["k"]:
                continue  # not retrieved that deep
        gated = "*" if key in PRIMARY_METRICS else ""
        cells = [
            section,
            f"{label}{gated}",
            _fmt(report["metrics"].get(key), key),
            _fmt(metric_n(report, key)),
        ]
        if baseline is not None:
            before = baseline.get(key)
            cells += [_fmt(before, key), _delta(report["metrics"].get(key), before, key)]
        out.append(cells)
    return out


def _header(report: Mapping[str, Any]) -> list[str]:
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
        f"docs {meta['docs']}: {idx['documents']} documents, {idx['chunks']} chunks, "
        f"index {idx['bytes'] / 1e6:.1f} MB",
        f"answerer {meta['answerer']}, k={meta['k']}, min_dense={meta['min_dense']}",
        "retrieval metrics in retriever order (fused score); shown_* in the answer's [n] order",
    ]
    return lines


BY_TYPE_LABELS = {
    "answered_when_answerable": "answered when answerable",
    "answer_contains": "contains gold",
    "evidence_docs_cited": "evidence docs cited",
    "refusal_recall": "declined when unanswerable",
}


def by_type_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """The per-type table's cells: type, n, then ``BY_TYPE_METRICS`` ("n/a" where a type
    has no question the metric applies to)."""
    out = []
    for kind, values in (report.get("by_type") or {}).items():
        out.append([kind, str(values["n"]), *(_fmt(values.get(k)) for k in BY_TYPE_METRICS)])
    return out


def terminal_table(report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """The summary as a plain-text table (``*`` marks the metrics the gate watches)."""
    head = ["", "metric", "value", "n"] + (["baseline", "change"] if baseline else [])
    rows = [head, *summary_rows(report, baseline)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = list(_header(report))
    lines.append("")
    for i, r in enumerate(rows):
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    types = by_type_rows(report)
    if len(types) > 1:
        lines.append("")
        lines.append(_plain_table(["type", "n", *BY_TYPE_LABELS.values()], types))
    failures = _count_outcomes(report["rows"])
    lines.append("")
    lines.append(
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in failures.items() if v) + "  (* gated)"
    )
    return "\n".join(lines) + "\n"


def _plain_table(head: list[str], rows: list[list[str]]) -> str:
    """Columns padded to width: the first left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = []
    for i, r in enumerate([head, *rows]):
        cells = [
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _count_outcomes(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {OK: 0, **{f: 0 for f in FAILURES}}
    for r in rows:
        counts[r["outcome"]] = counts.get(r["outcome"], 0) + 1
    return counts


# ---- report.json


def json_report(report: Mapping[str, Any]) -> dict[str, Any]:
    """The report as written to report.json: retrieved passages keep their ids, offsets and
    scores but not their text (it is in the documents), to keep the file small."""
    out = dict(report)
    out["rows"] = [
        {**r, "retrieved": [{k: v for k, v in p.items() if k != "text"} for p in r["retrieved"]]}
        for r in report["rows"]
    ]
    return out


def dump_json(report: Mapping[str, Any]) -> str:
    """Pretty JSON with one line per question row (small, and diffs line up by question)."""
    head = {k: v for k, v in report.items() if k != "rows"}
    text = json.dumps(head, indent=1, ensure_ascii=False)
    rows = ",\n".join("  " + json.dumps(r, ensure_ascii=False) for r in report.get("rows", []))
    return text[:-2] + f',\n "rows": [\n{rows}\n ]\n}}\n'


# ---- report.md


def _md_cell(text: Any, limit: int = 160) -> str:
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def markdown_report(
    report: Mapping[str, Any], baseline: Mapping[str, Any] | None, max_failures: int
) -> str:
    lines = ["# Eval report", ""]
    lines += [f"- {h}" for h in _header(report)]
    lines.append(f"- created {report['meta']['created']}")
    lines += ["", "## Summary", ""]
    head = ["", "metric", "value", "n"] + (["baseline", "change"] if baseline else [])
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" for _ in head) + "|")
    for r in summary_rows(report, baseline):
        lines.append("| " + " | ".join(r) + " |")
    lines += ["", "`*` = watched by the regression gate.", ""]
    types = by_type_rows(report)
    if types:
        head = ["type", "n", *(BY_TYPE_LABELS[k] for k in BY_TYPE_METRICS)]
        lines += ["## By type", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "|".join("---" for _ in head) + "|")
        lines += ["| " + " | ".join(_md_cell(c, 60) for c in r) + " |" for r in types]
        lines.append("")
    curve = report.get("curve")
    if curve:
        lines.append(f"Refusal-threshold curve over {curve['scalar']}; see report.html.")
        lines.append("")
    failed = [r for r in report["rows"] if r["outcome"] != OK]
    order = {name: i for i, name in enumerate(FAILURES)}
    failed.sort(key=lambda r: (order.get(r["outcome"], 99), r["line"]))
    lines.append(f"## Failures ({len(failed)} of {len(report['rows'])})")
    lines.append("")
    if not failed:
        lines.append("None.")
        return "\n".join(lines) + "\n"
    lines.append("| id | outcome | question | gold | answer |")
    lines.append("|---|---|---|---|---|")
    for r in failed[:max_failures]:
        gold = " / ".join(r["gold"]["answers"]) or "(unanswerable)"
        answer = r["error"] or r["answer"]["text"]
        question = r["question"] + (" (follow-up)" if r["history"] else "")
        lines.append(
            f"| {_md_cell(r['id'], 40)} | {r['outcome']} | {_md_cell(question)} | "
            f"{_md_cell(gold, 80)} | {_md_cell(answer, 200)} |"
        )
    if len(failed) > max_failures:
        lines.append("")
        lines.append(f"… and {len(failed) - max_failures} more (all in report.json).")
    return "\n".join(lines) + "\n"


# ---- report.html

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:left;vertical-align:top}td.num{text-align:right}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}
details{border:1px solid #ddd;margin:4px 0;padding:4px 8px}summary{cursor:pointer}
.ok{color:#2a7a3b}.bad{color:#b33a3a}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px}
.rel{background:#e7f5ea}.small{color:#666;font-size:90%}
"""

_JS = """
function filt(){const v=document.getElementById('f').value;
for(const d of document.querySelectorAll('details.q')){
d.style.display=(v==='all'||(v==='fail'&&d.dataset.o!=='ok')||d.dataset.o===v)?'':'none';}}
"""


def _plots(report: Mapping[str, Any]) -> list[str]:
    rows = report["rows"]
    f1 = [r["scores"]["answer_f1"] for r in rows if r["scores"]["answer_f1"] is not None]
    out = [
        plots.histogram(
            [("answerable", f1)], title="Token F1 (answerable)", xlabel="F1", lo=0, hi=1
        )
    ]
    ans = [r["best_dense"] for r in rows if r["gold"]["answerable"] and r["best_dense"] is not None]
    un = [
        r["best_dense"] for r in rows if not r["gold"]["answerable"] and r["best_dense"] is not None
    ]
    out.append(
        plots.histogram(
            [("answerable", ans), ("unanswerable", un)],
            title="Best dense similarity per question",
            xlabel="cosine similarity",
            bins=12,
        )
    )
    lat = [r["latency_ms"] for r in rows if not r["error"]]
    out.append(plots.histogram([("all", lat)], title="Latency per question", xlabel="ms", lo=0))
    curve = report.get("curve")
    if curve:
        out.append(
            plots.line_chart(
                curve["thresholds"],
                [
                    ("answered correctly", curve["answered_correct"]),
                    ("answered unanswerable", curve["wrong_unanswerable"]),
                ],
                title="Refusal threshold (min_dense)",
                xlabel="threshold on best dense similarity",
                ylabel="share of questions",
                marker=curve["current"],
                marker_label=f"now {curve['current']:g}",
            )
        )
    return out


def _question_html(r: Mapping[str, Any]) -> str:
    e = escape
    cls = "ok" if r["outcome"] == OK else "bad"
    parts = [
        f'<details class="q" data-o="{e(r["outcome"])}" id="q-{e(r["id"])}">',
        f'<summary><b>{e(r["id"])}</b> <span class="{cls}">{e(r["outcome"])}</span> '
        f"— {e(r['question'])}</summary>",
    ]
    if r["history"]:
        turns = "".join(f"<li><b>{e(t['role'])}</b>: {e(t['content'])}</li>" for t in r["history"])
        parts.append(f"<p>History:</p><ul>{turns}</ul>")
    if r["answer"]["standalone_query"] and r["answer"]["standalone_query"] != r["question"]:
        parts.append(f"<p class=small>Standalone query: {e(r['answer']['standalone_query'])}</p>")
    gold = r["gold"]
    parts.append(
        "<p>Gold: "
        + (e(" / ".join(gold["answers"])) if gold["answers"] else "<i>unanswerable</i>")
        + "</p>"
    )
    if gold["evidence"]:
        parts.append("<p class=small>Evidence: " + e(" … ".join(gold["evidence"])) + "</p>")
    if gold["evidence_doc_ids"]:
        parts.append("<p class=small>Evidence docs: " + e(", ".join(gold["evidence_doc_ids"])))
    label = "declined" if r["declined"] else "answered"
    parts.append(f"<p>Answer ({label}, {r['latency_ms']:.0f} ms):</p>")
    parts.append(f"<pre>{e(r['error'] or r['answer']['text'])}</pre>")
    names = "".join(f"<th>{e(k)}</th>" for k in r["scores"])
    values = "".join(f"<td class=num>{_fmt(v)}</td>" for v in r["scores"].values())
    parts.append(f"<table><tr>{names}</tr><tr>{values}</tr></table>")
    if r["citations"]:
        items = "".join(
            f"<li>[{c['n']}] {e(c['source'])} chars {c['start']}-{c['end']}, support "
            f"{c['support']:.2f}{'' if c['supported'] else ' (unsupported)'}"
            f"{'' if c['relevant'] is None else (', gold' if c['relevant'] else ', not gold')}"
            f"<br><q>{e(c['quote'])}</q></li>"
            for c in r["citations"]
        )
        parts.append(f"<p>Citations:</p><ol>{items}</ol>")
    if r["retrieved"]:
        trs = "".join(
            f'<tr class="{"rel" if p["relevant"] else ""}"><td>{p["rank"]}</td><td>[{p["n"]}]'
            f"</td><td>{e(p['source'])} {p['start']}-{p['end']}</td>"
            f"<td class=num>{_fmt(p['dense_score'])}</td><td class=num>{_fmt(p['fused_score'])}"
            f"</td><td>{'gold' if p['relevant'] else ''}</td>"
            f"<td class=small>{e(p.get('text', ''))}</td></tr>"
            for p in r["retrieved"]
        )
        parts.append(
            "<p>Retrieved (retriever order):</p><table><tr><th>rank</th><th>n</th>"
            "<th>where</th><th>dense</th><th>fused</th><th></th><th>text</th></tr>"
            f"{trs}</table>"
        )
    parts.append("</details>")
    return "\n".join(parts)


def _by_type_html(report: Mapping[str, Any]) -> str:
    types = by_type_rows(report)
    if not types:
        return ""
    e = escape
    head = ["type", "n", *(BY_TYPE_LABELS[k] for k in BY_TYPE_METRICS)]
    trs = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i else ''}>{e(c)}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in types
    )
    ths = "".join(f"<th>{e(h)}</th>" for h in head)
    return f"<h2>By type</h2><table><tr>{ths}</tr>{trs}</table>"


def html_report(report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    e = escape
    head = ["", "metric", "value", "n"] + (["baseline", "change"] if baseline else [])
    table = "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
    for cells in summary_rows(report, baseline):
        table += (
            "<tr>"
            + "".join(
                f"<td{' class=num' if i >= 2 else ''}>{e(c)}</td>" for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    counts = _count_outcomes(report["rows"])
    options = '<option value="all">all</option><option value="fail">failures</option>' + "".join(
        f'<option value="{e(k)}">{e(k)} ({v})</option>' for k, v in counts.items() if v
    )
    curve = report.get("curve") or {}
    note = (
        f"<p class=small>The refusal-threshold curve moves the off-topic floor over "
        f"{e(curve.get('scalar', ''))}: the chatbot exposes no single answer confidence, and "
        "the floor is a pure gate in front of its other checks, so questions it declined at "
        "the floor were asked again with the floor off to place them on the curve.</p>"
        if curve
        else ""
    )
    body = [
        "<!doctype html><html><head><meta charset=utf-8><title>Eval report</title>",
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>",
        "<h1>Eval report</h1>",
        "<ul>" + "".join(f"<li>{e(h)}</li>" for h in _header(report)) + "</ul>",
        f"<p class=small>created {e(report['meta']['created'])}; * = gated metric</p>",
        f"<table>{table}</table>",
        _by_type_html(report),
        "<h2>Plots</h2>",
        '<div class="plots">' + "".join(f"<figure>{s}</figure>" for s in _plots(report)) + "</div>",
        note,
        "<h2>Questions</h2>",
        f'<p>Show <select id="f" onchange="filt()">{options}</select></p>',
        *(_question_html(r) for r in report["rows"]),
        "</body></html>",
    ]
    return "\n".join(body) + "\n"


def write_reports(
    report: Mapping[str, Any],
    out_dir: Path,
    baseline: Mapping[str, Any] | None = None,
    max_failures: int = 50,
    *,
    html: bool = True,
) -> list[Path]:
    """Write report.json, report.md and (unless ``html`` is false) report.html into
    ``out_dir``; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "report.json", out_dir / "report.md"]
    paths[0].write_text(dump_json(json_report(report)), encoding="utf-8")
    paths[1].write_text(markdown_report(report, baseline, max_failures), encoding="utf-8")
    if html:
        paths.append(out_dir / "report.html")
        paths[2].write_text(html_report(report, baseline), encoding="utf-8")
    return paths

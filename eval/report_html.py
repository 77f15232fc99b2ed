"""``report.html``: the summary, the per-type table, SVG plots (F1, best dense similarity,
latency, the refusal-threshold curve) and a drill-down per question, filterable by outcome.
Every string from the set, the documents or the answers is escaped."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from eval import plots
from eval.scoring import OK
from eval.tables import (
    by_type_head,
    by_type_rows,
    count_outcomes,
    fmt,
    header_lines,
    summary_rows,
)

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
    if r["answer"].get("short_text"):
        parts.append(f"<p class=small>Short answer scored: {e(r['answer']['short_text'])}</p>")
    if r.get("reader_declined") is not None:
        verdict = "declined" if r["reader_declined"] else "answered"
        parts.append(f"<p class=small>Reader: {verdict}, margin {fmt(r.get('reader_margin'))}</p>")
    names = "".join(f"<th>{e(k)}</th>" for k in r["scores"])
    values = "".join(f"<td class=num>{fmt(v)}</td>" for v in r["scores"].values())
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
            f"<td class=num>{fmt(p['dense_score'])}</td><td class=num>{fmt(p['fused_score'])}"
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
    head = by_type_head(report)
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
    counts = count_outcomes(report["rows"])
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
        "<ul>" + "".join(f"<li>{e(h)}</li>" for h in header_lines(report)) + "</ul>",
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

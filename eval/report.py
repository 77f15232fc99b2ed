"""The report: ``report.json`` (metrics + per-question rows), ``report.md`` (summary and
failures), ``report.html`` (``eval.report_html``) and the terminal table."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from eval.report_html import html_report
from eval.scoring import FAILURES, OK
from eval.tables import (
    by_type_head,
    by_type_rows,
    count_outcomes,
    header_lines,
    summary_rows,
)

REPORT_VERSION = 1


def terminal_table(report: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> str:
    """The summary as a plain-text table (``*`` marks the metrics the gate watches)."""
    head = ["", "metric", "value", "n"] + (["baseline", "change"] if baseline else [])
    rows = [head, *summary_rows(report, baseline)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = list(header_lines(report))
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
        lines.append(_plain_table(by_type_head(report), types))
    failures = count_outcomes(report["rows"])
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
    lines += [f"- {h}" for h in header_lines(report)]
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
        head = by_type_head(report)
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

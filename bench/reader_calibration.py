"""Calibrate the reader's threshold on the mixture of sets, and compare it with the rules.

One pass through ``Chatbot.answer`` with the reader answering everything (thresholds -1e9)
records each question's best margin (span score minus no-answer score); a threshold t then
answers exactly the questions whose margin is at least t, so every t's figures come from that
one pass. The threshold chosen maximises the mean over sets of each set's balanced score:
(right answers among answerable + declines among unanswerable) / 2 (off-topic: declines).
A pass of the rules answerer then gives the curve of the two thresholds the chatbot uses
(decline below LOW, the reader answers from HIGH, the rules decide in between); ``--rules``
adds a pass at the thresholds in reader.json, printed beside the rules' figures.

    python bench/reader_calibration.py [--sets all] [--rules] [--reader DIR] [--json F]

A benchmark, not a test: it prints tables and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import answer_quality as aq  # noqa: E402

from ingest.config import IngestSettings, set_offline_env  # noqa: E402

GRID = [x / 4 for x in range(-16, 41)]  # -4.0 .. 10.0


def figures_at(rows: list[dict[str, Any]], t: float) -> dict[str, float | None]:
    """Answered/right/declined shares when only margins >= t are answered; a question the
    reader left to the rules (compound, or too long to read whole: no margin) keeps the
    rules' outcome."""
    answerable = [r for r in rows if r["gold"]["answerable"]]
    unanswerable = [r for r in rows if not r["gold"]["answerable"]]

    def answered(r: dict[str, Any]) -> bool:
        margin = r.get("reader_margin")
        if margin is None:
            return not r["declined"] and not r["error"]
        return margin >= t and not r["error"]

    def right(r: dict[str, Any]) -> bool:
        return answered(r) and bool(r["scores"].get("answer_contains"))

    out: dict[str, float | None] = {
        "answered": _share(sum(map(answered, answerable)), len(answerable)),
        "right": _share(sum(map(right, answerable)), len(answerable)),
        "declined": _share(sum(not answered(r) for r in unanswerable), len(unanswerable)),
    }
    parts = [v for v in (out["right"], out["declined"]) if v is not None]
    out["balanced"] = sum(parts) / len(parts) if parts else None
    return out


def hybrid_at(
    rows: list[dict[str, Any]], rules: list[dict[str, Any]], low: float, high: float
) -> dict[str, float | None]:
    """Figures when margins below ``low`` decline, from ``high`` the reader's answer stands,
    and in between the rules' answer or decline does."""
    by_id = {_key(r): r for r in rules}
    answerable = [r for r in rows if r["gold"]["answerable"]]
    unanswerable = [r for r in rows if not r["gold"]["answerable"]]

    def outcome(r: dict[str, Any]) -> tuple[bool, bool]:
        margin, rule = r.get("reader_margin"), by_id[_key(r)]
        if margin is None or low <= margin < high:
            return not rule["declined"], bool(rule["scores"].get("answer_contains"))
        return margin >= high, bool(r["scores"].get("answer_contains"))

    out: dict[str, float | None] = {
        "answered": _share(sum(outcome(r)[0] for r in answerable), len(answerable)),
        "right": _share(sum(all(outcome(r)) for r in answerable), len(answerable)),
        "declined": _share(sum(not outcome(r)[0] for r in unanswerable), len(unanswerable)),
    }
    parts = [v for v in (out["right"], out["declined"]) if v is not None]
    out["balanced"] = sum(parts) / len(parts) if parts else None
    return out


def _key(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (row["group"], row.get("asked_corpus") or "", str(row["id"]), str(row["line"]))


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def main(argv: list[str] | None = None) -> int:
    import logging

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", default="all")
    ap.add_argument("--shared", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=aq.DEFAULT_CACHE)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--reader", default="packaged", help="the reader setting to calibrate")
    ap.add_argument("--rules", action="store_true", help="also run the rules answerer")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    set_offline_env()
    from chatbot import ChatSettings

    names = list(aq.SET_NAMES) if args.sets == "all" else args.sets.split(",")
    settings = ChatSettings.from_env(index=IngestSettings.from_env(progress=False))
    shared = aq.shared_dir(args.shared)
    asks, notes = aq.load_asks(names, shared, args.limit)
    needed = [c for c in aq.CORPUS_LABELS if any(a.corpus == c for a in asks)]
    corpora = aq.open_corpora(needed, shared, settings.index, args.cache, False)
    for note in notes:
        print(f"note: {note}")
    reader = settings.replace(reader=args.reader, reader_threshold="-1e9", reader_confident="-1e9")
    aq.warm_up(corpora, reader)
    open_pass = aq.run_pass(asks, corpora, reader, "reader, threshold -inf")
    groups = sorted({r["set"] for rows in open_pass.rows.values() for r in rows})
    by_set = {g: open_pass.by_set(g) for g in groups}
    curve = []
    for t in GRID:
        per = {g: figures_at(rows, t) for g, rows in by_set.items()}
        scores = [f["balanced"] for f in per.values() if f["balanced"] is not None]
        curve.append((t, sum(scores) / len(scores), per))
    best_t, best_score, best_per = max(curve, key=lambda c: c[1])
    print(f"\n== threshold curve (mean balanced score over {', '.join(groups)})")
    head = ["t", "mean", *(f"{g} ans/right/decl" for g in groups)]
    lines = []
    for t, score, per in curve:
        if t * 2 != int(t * 2):
            continue
        cells = [
            "/".join(f"{per[g][k] or 0:.2f}" for k in ("answered", "right", "declined"))
            for g in groups
        ]
        lines.append([f"{t:+.2f}", f"{score:.3f}", *cells])
    print(aq.table(head, lines))
    print(f"\nchosen threshold {best_t:+.2f} (mean balanced {best_score:.3f})")
    payload: dict[str, Any] = {
        "threshold": best_t,
        "mean_balanced": best_score,
        "per_set_at_threshold": best_per,
        "curve": [(t, s) for t, s, _ in curve],
    }
    payload["rows"] = aq._rows_for_json(open_pass)
    rules_pass = aq.run_pass(asks, corpora, settings.replace(reader="rules"), "rules")
    pairs = []
    for low in [x / 2 for x in range(-12, 1)]:
        for high in [x / 2 for x in range(0, 13)]:
            per = {g: hybrid_at(by_set[g], rules_pass.by_set(g), low, high) for g in groups}
            scores = [f["balanced"] for f in per.values() if f["balanced"] is not None]
            pairs.append((sum(scores) / len(scores), low, high, per))
    pairs.sort(key=lambda p: -p[0])
    print("\n== reader and rules together: decline below LOW, the reader answers from HIGH, the")
    print("   rules decide in between (the 10 best pairs; ans/right/decl per set)")
    lines = [
        [
            f"{low:+.1f}",
            f"{high:+.1f}",
            f"{score:.3f}",
            *(
                "/".join(f"{per[g][k] or 0:.2f}" for k in ("answered", "right", "declined"))
                for g in groups
            ),
        ]
        for score, low, high, per in pairs[:10]
    ]
    print(aq.table(["low", "high", "mean", *groups], lines))
    payload["hybrid_best"] = pairs[0][:3]
    payload["rules_rows"] = aq._rows_for_json(rules_pass)
    if args.rules:
        chosen = aq.run_pass(asks, corpora, settings.replace(reader=args.reader), "reader")
        print("\n== rules answerer")
        payload["rules"] = aq.print_sets(rules_pass, groups, settings.k)
        print("\n== reader, at the thresholds in its reader.json (or DOCQA_READER_* settings)")
        payload["reader"] = aq.print_sets(chosen, groups, settings.k)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    for c in corpora.values():
        c.opened.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m eval --docs DIR --set FILE [--corpus NAME] [--k 10] [--out DIR]
[--baseline FILE] [--answerer NAME]``: score the chatbot on an eval set; optionally gate on
a baseline. ``--collection NAME [--index-dir DIR]`` instead of ``--docs`` scores an existing
collection as it is. ``python -m eval feedback --out FILE [--db PATH] [--collection NAME]``:
export the judged chat turns as an eval set."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from ingest import IngestSettings, set_offline_env
from ingest.logs import configure_logging

EXIT_OK = 0
EXIT_BAD_INPUT = 1
EXIT_REGRESSION = 4

logger = logging.getLogger("eval")


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 with one line, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see python -m eval --help)\n")
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m eval",
        description="Ingest DOCS into a throwaway index, ask every question of SET through "
        "the chatbot, and score retrieval, answers, citations, refusals and latency. Writes "
        "report.json, report.md and report.html to --out and prints the summary.",
        epilog=f"Exit codes: {EXIT_OK} done (and the gate passed); {EXIT_BAD_INPUT} bad input "
        f"(a flag, the set, the docs, the baseline), named on stderr; {EXIT_REGRESSION} the "
        "gate failed: a primary metric dropped more than the tolerance below --baseline (each "
        "named on stderr). Settings: DOCQA_EVAL_<NAME> (eval), DOCQA_<NAME> (chatbot, index).",
    )
    parser.add_argument(
        "--docs", type=Path, help="folder of documents (required unless --collection)"
    )
    parser.add_argument(
        "--collection",
        metavar="NAME",
        help="evaluate this existing collection of the index (--index-dir) as it is, "
        "without building a throwaway index from --docs",
    )
    parser.add_argument(
        "--index-dir", type=Path, help="with --collection: the index holding it (default .index/)"
    )
    parser.add_argument(
        "--set",
        type=Path,
        required=True,
        dest="set_path",
        metavar="FILE",
        help="eval set (.jsonl, one question a line)",
    )
    parser.add_argument(
        "--corpus",
        metavar="NAME",
        help="ask only the questions of this corpus (a case's 'corpus' field, e.g. seeds, "
        "squad_v2, multihop_rag); cases naming no corpus are always asked",
    )
    parser.add_argument("--k", type=int, help="passages retrieved per question (default 10)")
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for report.json/.md/.html (default: CACHE_DIR/reports/<set name>)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="an earlier report.json: exit 4 if a primary metric drops",
    )
    parser.add_argument(
        "--tolerance", type=float, help="allowed drop of a primary metric (absolute; default 0.02)"
    )
    parser.add_argument("--answerer", help="'extractive' (default), 'provider:model' or 'fake'")
    parser.add_argument("--cache-dir", type=Path, help="where eval indexes live (.index/eval)")
    parser.add_argument(
        "--no-html", action="store_true", help="write report.json and report.md only"
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the eval index")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return parser


def build_feedback_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m eval feedback",
        description="Export the chat answers judged in the web app (thumbs up, or thumbs "
        "down with the right answer or 'the documents don't say') as eval-set lines.",
    )
    parser.add_argument("--out", type=Path, required=True, help="eval set to write (.jsonl)")
    parser.add_argument(
        "--db",
        type=Path,
        help="conversations database (default: DOCQA_CONVERSATIONS_DB, else "
        "INDEX_DIR/conversations.sqlite3)",
    )
    parser.add_argument(
        "--collection", metavar="NAME", help="export only the conversations of this collection"
    )
    return parser


def feedback_main(argv: list[str]) -> int:
    """``python -m eval feedback``: write the judged turns to ``--out``."""
    try:
        args = build_feedback_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    configure_logging(logging.WARNING)
    from chatbot.conversations import default_path
    from eval.feedback import export_feedback
    from ingest import SettingsError

    try:
        db = args.db or default_path(
            IngestSettings.from_env().index_dir, os.environ.get("DOCQA_CONVERSATIONS_DB", "")
        )
        written, skipped = export_feedback(db, args.out, args.collection)
    except (SettingsError, OSError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    note = f" ({skipped} thumbs-down without a right answer left out)" if skipped else ""
    _out(f"wrote {written} eval case{'s' if written != 1 else ''} to {args.out}{note}\n")
    return EXIT_OK


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["feedback"]:
        return feedback_main(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (1), already written
        return int(exc.code or 0)
    if args.collection is None and args.docs is None:
        sys.stderr.write(
            "error: give --docs DIR (or --collection NAME to evaluate an existing collection) "
            "(see python -m eval --help)\n"
        )
        return EXIT_BAD_INPUT
    if args.collection is not None and (args.docs is not None or args.fresh):
        sys.stderr.write(
            "error: --collection evaluates an existing collection as it is: it takes no "
            "--docs or --fresh (see python -m eval --help)\n"
        )
        return EXIT_BAD_INPUT
    if args.index_dir is not None and args.collection is None:
        sys.stderr.write("error: --index-dir goes with --collection (see python -m eval --help)\n")
        return EXIT_BAD_INPUT
    configure_logging(logging.INFO if args.verbose else logging.WARNING)

    from chatbot import ChatSettings
    from chatbot.llm_errors import LLMError
    from eval.config import EvalSettings
    from eval.dataset import DatasetError
    from eval.gate import BaselineError, load_baseline
    from eval.harness import evaluate
    from eval.report import terminal_table, write_reports
    from eval.runner import EvalError
    from ingest import IngestError, SettingsError

    try:
        settings = EvalSettings.from_env(
            k=args.k,
            tolerance=args.tolerance,
            cache_dir=args.cache_dir,
            progress=False if args.quiet else None,
        )
        chat = ChatSettings.from_env(
            index=IngestSettings.from_env(
                progress=False if args.quiet else None,
                index_dir=args.index_dir,
                collection=args.collection,
            ),
            answerer=args.answerer,
        )
        baseline_report = load_baseline(args.baseline) if args.baseline else None
        baseline = baseline_report["metrics"] if baseline_report else None
        report = evaluate(
            args.docs,
            args.set_path,
            settings,
            chat,
            fresh=args.fresh,
            corpus=args.corpus,
            existing=args.collection is not None,
        )
        out_dir = args.out or settings.cache_dir / "reports" / args.set_path.stem
        paths = write_reports(
            report, out_dir, baseline, settings.max_failures, html=not args.no_html
        )
    except (
        DatasetError,
        EvalError,
        BaselineError,
        SettingsError,
        IngestError,
        LLMError,
        OSError,
    ) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    _out(terminal_table(report, baseline))
    _out(f"reports: {', '.join(str(p) for p in paths)}\n")
    if baseline_report is None:
        return EXIT_OK
    return _gate(report, baseline_report, args.baseline, settings.tolerance)


def _gate(
    report: dict[str, Any], baseline_report: dict[str, Any], path: Path, tolerance: float
) -> int:
    """Compare the run with the baseline report at ``path``: each regression named on
    stderr and exit 4, or a line saying the gate passed."""
    from eval.gate import compare, mismatch

    differs = mismatch(report, baseline_report)
    if differs:
        logger.warning("the baseline was made differently: %s", differs)
    regressions = compare(report["metrics"], baseline_report["metrics"], tolerance)
    if regressions:
        for r in regressions:
            sys.stderr.write(f"regression: {r.describe()}\n")
        names = ", ".join(r.metric for r in regressions)
        sys.stderr.write(f"gate failed against {path}: {names}\n")
        return EXIT_REGRESSION
    _out(f"gate passed against {path} (tolerance {tolerance:g})\n")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

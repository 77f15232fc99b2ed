"""``python -m ingest PATH... [--index-dir DIR] [--dry-run] [--reset]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest.config import IngestSettings, SettingsError, set_offline_env
from ingest.logs import configure_logging
from ingest.pipeline import EXIT_NOTHING_DONE, EXIT_OK, EXIT_PARTIAL, Plan

logger = logging.getLogger("ingest")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Chunk, embed and store documents (.txt .md .html .pdf .docx, page images "
        ".png .jpg .tif read by OCR) in the "
        "Chroma index (embedded, or on a Chroma server with --chroma-host). Re-running "
        "applies only what changed.",
        epilog=f"Exit codes: {EXIT_OK} all files ingested or unchanged; {EXIT_PARTIAL} some "
        f"files were skipped (each named on stderr); {EXIT_NOTHING_DONE} nothing could be done. "
        "Every setting can also be set as DOCQA_<NAME> in the environment.",
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="files or folders (folders are walked recursively)",
    )
    parser.add_argument("--index-dir", type=Path, help="index directory (default .index/)")
    parser.add_argument("--collection", help="Chroma collection name")
    parser.add_argument(
        "--embedding-model",
        help="'all-MiniLM-L6-v2', a local model folder, or 'fake'; prefix 'onnx-int8:' or "
        "'onnx:' to run it on ONNX Runtime",
    )
    parser.add_argument("--chunk-size", type=int, help="max chunk length in tokens")
    parser.add_argument("--chunk-overlap", type=int, help="chunk overlap in tokens")
    parser.add_argument("--batch-size", type=int, help="chunks embedded per batch")
    parser.add_argument("--max-file-mb", type=float, help="skip files larger than this")
    parser.add_argument(
        "--chroma-host", help="Chroma server host (default: the embedded index in --index-dir)"
    )
    parser.add_argument("--chroma-port", type=int, help="Chroma server port (default 8000)")
    parser.add_argument(
        "--ocr",
        choices=("off", "auto", "force"),
        help="OCR of scanned PDF pages and images: auto (default), force (every PDF page), off",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--reset", action="store_true", help="drop the collection first and rebuild it from PATH"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notices")
    return parser


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    args = build_parser().parse_args(argv)
    configure_logging(logging.WARNING if args.quiet else logging.INFO, fmt="%(message)s")

    from ingest.pipeline import ingest_paths, reset_index
    from ingest.store import IngestError

    try:
        settings = IngestSettings.from_env(
            index_dir=args.index_dir,
            collection=args.collection,
            embedding_model=args.embedding_model,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            batch_size=args.batch_size,
            max_file_mb=args.max_file_mb,
            chroma_host=args.chroma_host,
            chroma_port=args.chroma_port,
            ocr=args.ocr,
            progress=False if args.quiet else None,
        )
        if args.reset and not args.dry_run:
            reset_index(settings)
            _out(f"reset collection {settings.collection!r} in {settings.chroma_location}")

        def show_plan(plan: Plan) -> None:
            _out(plan.describe())

        report = ingest_paths(args.paths, settings, dry_run=args.dry_run, on_plan=show_plan)
    except (SettingsError, IngestError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_NOTHING_DONE
    if not args.dry_run:
        _out(report.summary())
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ingest PATH... [--index-dir DIR] [--collection NAME] [--dry-run] [--reset]
[--watch]``, ``python -m ingest --check [--repair]``, ``python -m ingest --list-collections``
and ``python -m ingest --collection NAME --delete-collection [--yes]``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest.config import IngestSettings, SettingsError, set_offline_env
from ingest.logs import configure_logging
from ingest.pipeline import EXIT_NOTHING_DONE, EXIT_OK, EXIT_PARTIAL, Plan

logger = logging.getLogger("ingest")
EXIT_CHECK_FAILED = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Chunk, embed and store documents (.txt .md .html .pdf .docx, page images "
        ".png .jpg .tif read by OCR) in the "
        "Chroma index (embedded, or on a Chroma server with --chroma-host). Re-running "
        "applies only what changed.",
        epilog=f"Exit codes: {EXIT_OK} all files ingested or unchanged; {EXIT_PARTIAL} some "
        f"files were skipped (each named on stderr); {EXIT_NOTHING_DONE} nothing could be done "
        "(a damaged index: rebuild it with --reset); with --check, "
        f"{EXIT_CHECK_FAILED} the index disagrees with itself (--repair fixes it). "
        "Every setting can also be set as DOCQA_<NAME> in the environment.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders (folders are walked recursively); none with --check",
    )
    parser.add_argument("--index-dir", type=Path, help="index directory (default .index/)")
    parser.add_argument(
        "--collection",
        help="collection to ingest into (default 'docs'): each is a separate set of documents",
    )
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
        "--ray",
        dest="ray_address",
        metavar="ADDRESS",
        help="load, split and embed the changed documents on a Ray cluster: 'auto', "
        "'host:port' or 'ray://host:port' (pip install -e '.[ray]')",
    )
    parser.add_argument("--ray-workers", type=int, help="embedding actors on the cluster")
    parser.add_argument(
        "--ocr",
        choices=("off", "auto", "force"),
        help="OCR of scanned PDF pages and images: auto (default), force (every PDF page), off",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="drop the collection first and rebuild it from PATH (damaged index files are "
        "moved aside, never deleted)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the manifest, the collection and the BM25 index; print what disagrees",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="with --check: fix what disagrees by difference (re-embeds only missing chunks)",
    )
    parser.add_argument(
        "--watch",
        action="store_true",
        help="after ingesting, keep PATH in the index: reingest each settled batch of file "
        "changes until Ctrl-C",
    )
    parser.add_argument(
        "--list-collections",
        action="store_true",
        help="list the collections of the index with their document and chunk counts",
    )
    parser.add_argument(
        "--delete-collection",
        action="store_true",
        help="delete the collection named by --collection (its chunks, reingest state, BM25 "
        "index; never the documents); asks to type its name, or needs --yes",
    )
    parser.add_argument(
        "--yes", action="store_true", help="with --delete-collection: do not ask to confirm"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notices")
    return parser


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repair and not args.check:
        parser.error("--repair goes with --check")
    listing = args.list_collections or args.delete_collection
    if listing and (args.paths or args.check or args.reset or args.watch or args.dry_run):
        parser.error("--list-collections and --delete-collection take no PATH or other action")
    if args.delete_collection and not args.collection:
        parser.error("--delete-collection needs --collection NAME")
    if not args.paths and not args.check and not listing:
        parser.error("give at least one PATH (or --check)")
    if args.watch and args.dry_run:
        parser.error("--watch cannot be combined with --dry-run")
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
            ray_address=args.ray_address,
            ray_workers=args.ray_workers,
            ocr=args.ocr,
            progress=False if args.quiet else None,
        )
        if args.list_collections:
            return _list(settings)
        if args.delete_collection:
            return _delete(settings, yes=args.yes)
        if args.check:
            return _check(settings, repair=args.repair)
        if args.reset and not args.dry_run:
            moved = reset_index(settings)
            aside = "; ".join(f"{a} -> {b.name}" for a, b in moved)
            _out(
                f"reset collection {settings.collection!r} in {settings.chroma_location}"
                + (f" (damaged files moved aside: {aside})" if moved else "")
            )

        def show_plan(plan: Plan) -> None:
            _out(plan.describe())

        if args.watch:
            from ingest.watch import run_watch

            return run_watch(args.paths, settings, on_plan=show_plan, out=_out)
        report = ingest_paths(args.paths, settings, dry_run=args.dry_run, on_plan=show_plan)
    except (SettingsError, IngestError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_NOTHING_DONE
    if not args.dry_run:
        _out(report.summary())
    return report.exit_code


def _list(settings: IngestSettings) -> int:
    from ingest.catalog import list_collections

    found = list_collections(settings)
    if not found:
        _out(f"no collections in {settings.chroma_location}")
    for info in found:
        _out(info.describe())
    return EXIT_OK


def _delete(settings: IngestSettings, *, yes: bool) -> int:
    """Delete the collection after the user typed its name (or with ``yes``)."""
    from ingest.catalog import delete_collection

    name = settings.collection
    if not yes:
        if not sys.stdin.isatty():
            sys.stderr.write(
                f"error: not deleting collection {name!r} without confirmation: pass --yes "
                "when not on a terminal\n"
            )
            return EXIT_NOTHING_DONE
        sys.stderr.write(
            f"This deletes collection {name!r} in {settings.chroma_location} (its chunks, "
            "reingest state and BM25 index; the documents are kept).\n"
        )
        if input(f"Type {name} to delete it: ").strip() != name:
            sys.stderr.write(f"error: not deleted: the name typed was not {name!r}\n")
            return EXIT_NOTHING_DONE
    delete_collection(settings)
    _out(f"deleted collection {name!r} from {settings.chroma_location}")
    return EXIT_OK


def _check(settings: IngestSettings, *, repair: bool) -> int:
    from ingest.check import check_index, repair_index

    if not repair:
        report = check_index(settings)
        for line in report.lines():
            _out(line)
        return EXIT_OK if report.ok else EXIT_CHECK_FAILED
    found, rewritten = repair_index(settings)
    for line in found.lines():
        _out(line)
    if found.ok:
        return EXIT_OK
    if rewritten is not None:
        _out(f"repaired: {rewritten.summary()}")
    after = check_index(settings)
    _out("after repair: " + "; ".join(after.lines()))
    return EXIT_OK if after.ok else EXIT_CHECK_FAILED


if __name__ == "__main__":
    sys.exit(main())

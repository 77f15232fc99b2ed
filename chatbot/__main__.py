"""``python -m chatbot [--host H] [--port P] [--collection NAME]``: the web app; ``ask
QUESTION``, ``ask --batch FILE`` and ``chat`` (a terminal chat) answer without it, from the
collection ``--collection`` names (default 'docs'); ``adduser``, ``apikey`` and ``deluser``
manage the users file (``chatbot.accounts_cli``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ingest import IngestSettings, set_offline_env
from ingest.logs import configure_logging

if TYPE_CHECKING:
    from chatbot.types import Answer
    from chatbot.web.config import WebSettings


def _common_options(*, in_subcommand: bool) -> argparse.ArgumentParser:
    """The options every command takes. A subcommand's copy leaves an option it was not
    given unset (``SUPPRESS``), so ``python -m chatbot --index-dir X ask Q`` keeps X."""
    common = argparse.ArgumentParser(
        add_help=False, argument_default=argparse.SUPPRESS if in_subcommand else None
    )
    common.add_argument("--index-dir", type=Path, help="index directory (default .index/)")
    common.add_argument(
        "--collection",
        help="collection to answer from (default 'docs'; the web app opens on it and can "
        "switch to the others)",
    )
    common.add_argument("--chroma-host", help="Chroma server host (default: embedded index)")
    common.add_argument("--chroma-port", type=int, help="Chroma server port (default 8000)")
    common.add_argument("--k", type=int, help="passages to answer from")
    common.add_argument("--answerer", help="'extractive' (default) or 'provider:model'")
    common.add_argument("--llm-base-url", help="OpenAI-compatible server URL")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(in_subcommand=True)
    parser = argparse.ArgumentParser(
        prog="python -m chatbot",
        parents=[_common_options(in_subcommand=False)],
        description="Ask questions about the ingested documents; answers cite their sources.",
    )
    parser.add_argument("--host", help="web app address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="web app port (default 7860)")
    sub = parser.add_subparsers(dest="command")
    ask = sub.add_parser("ask", parents=[common], help="answer one question (or a batch)")
    ask.add_argument("question", nargs="?", help="the question")
    ask.add_argument("--json", action="store_true", help="print the Answer as JSON")
    ask.add_argument(
        "--batch",
        type=Path,
        metavar="FILE.jsonl",
        help='lines {"id", "question", "history"}; writes one JSON Answer a line',
    )
    sub.add_parser("chat", parents=[common], help="a chat in the terminal")
    backup = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the conversations, feedback, users file and manifests into DIR (safe while "
        "the app runs)",
    )
    backup.add_argument("dir", type=Path, help="a new or empty folder")
    restore = sub.add_parser(
        "restore", parents=[common], help="put a backup back (the index is rebuilt by ingest)"
    )
    restore.add_argument("dir", type=Path, help="a folder written by backup")
    restore.add_argument("--force", action="store_true", help="overwrite files already there")
    from chatbot.accounts_cli import add_commands

    add_commands(sub)
    return parser


def format_answer(answer: Answer) -> str:
    """An answer for the terminal: its text, then each source with its quote."""
    lines = [answer.text]
    if answer.citations and not answer.declined:
        lines.append("")
        lines.append("Sources:")
        for c in answer.citations:
            where = f"{c.source}, chars {c.start}-{c.end}" + (f", page {c.page}" if c.page else "")
            date = f", {c.date}" if c.date else ""
            flag = "" if c.supported else "  (weak support)"
            lines.append(f"[{c.n}] {c.title}{date} ({where}){flag}")
            lines.append(f"    “{c.quote.strip()}”")
    if answer.unsupported_sentences:
        lines.append("")
        lines.append("Not supported by the cited passages:")
        lines.extend(f"  - {s}" for s in answer.unsupported_sentences)
    return "\n".join(lines)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    args = build_parser().parse_args(argv)
    level = logging.INFO if args.verbose else logging.WARNING
    configure_logging(level, libraries=level)
    from chatbot.accounts import AccountsError
    from chatbot.accounts_cli import COMMANDS
    from chatbot.chain import Chatbot, QuestionError
    from chatbot.config import ChatSettings
    from chatbot.llm_errors import LLMError
    from chatbot.web.config import WebSettings
    from ingest import IngestError, SettingsError

    if args.command in COMMANDS:
        from chatbot.accounts_cli import run

        try:
            return run(args, WebSettings.from_env().users_file)
        except (AccountsError, SettingsError, OSError) as exc:
            sys.stderr.write(f"error: {exc}\n")
            return 1
    try:
        settings = ChatSettings.from_env(
            index=IngestSettings.from_env(
                index_dir=args.index_dir,
                collection=args.collection,
                chroma_host=args.chroma_host,
                chroma_port=args.chroma_port,
                progress=False,
            ),
            k=args.k,
            answerer=args.answerer,
            llm_base_url=args.llm_base_url,
        )
        web = WebSettings.from_env(
            chat=settings, host=getattr(args, "host", None), port=getattr(args, "port", None)
        )
        if args.command is None:
            return _serve(web)
        if args.command in ("backup", "restore"):
            return _backup_or_restore(args, web)
        bot = Chatbot(settings)
        if args.command == "ask":
            if args.batch:
                return _batch(bot, args.batch)
            if not args.question:
                sys.stderr.write("error: give a QUESTION or --batch FILE\n")
                return 2
            answer = bot.answer(args.question)
            _out(
                json.dumps(answer.to_dict(), ensure_ascii=False)
                if args.json
                else format_answer(answer)
            )
            return 0
        return _chat(bot)
    except (IngestError, SettingsError, AccountsError, QuestionError, LLMError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


def _backup_or_restore(args: argparse.Namespace, settings: WebSettings) -> int:
    from chatbot.web.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            record = backup(settings, args.dir)
            for name, size in record["files"].items():
                _out(f"{args.dir / name}  {size} bytes")
            _out(f"backed up {len(record['files'])} files into {args.dir}")
            return 0
        done = restore(settings, args.dir, force=args.force)
    except BackupError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    for path in done.written:
        _out(f"restored {path}")
    if done.rebuild:
        _out("rebuild the index from the documents:")
        for command in done.rebuild:
            _out(f"  {command}")
    return 0


def _serve(settings: WebSettings) -> int:
    """The web app, until interrupted. It logs at INFO (what it serves and reingests); the
    libraries only with ``-v``."""
    logging.getLogger().setLevel(logging.INFO)
    from chatbot.web.app import launch
    from chatbot.web.service import seeds_for

    seeds = seeds_for(settings.chat.index)
    if seeds is None:
        logging.getLogger(__name__).info(
            "not syncing seeds/ into %s: it is not the default index and was not built with them",
            settings.chat.index.index_dir,
        )
    launch(settings, seeds_dir=seeds)
    return 0


def _batch(bot, path: Path) -> int:
    from chatbot.chain import QuestionError

    failures = 0
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                question = item["question"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                sys.stderr.write(f"error: {path}:{lineno}: not a question line ({exc})\n")
                failures += 1
                continue
            try:
                row = bot.answer(question, item.get("history")).to_dict()
            except QuestionError as exc:
                row = {"error": str(exc)}
                failures += 1
            row["id"] = item.get("id", lineno)
            _out(json.dumps(row, ensure_ascii=False))
    return 0 if not failures else 3


def _chat(bot) -> int:
    from chatbot.chain import QuestionError

    history: list[dict] = []
    interactive = sys.stdin.isatty()
    if interactive:
        _out("Ask about your documents (Ctrl-D to quit).")
    while True:
        try:
            question = input("> " if interactive else "")
        except EOFError:
            return 0
        if not question.strip():
            continue
        try:
            answer = bot.answer(question, history)
        except QuestionError as exc:
            _out(f"error: {exc}")
            continue
        _out(format_answer(answer) + "\n")
        history += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer.text},
        ]


if __name__ == "__main__":
    sys.exit(main())

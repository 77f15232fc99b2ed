"""Feedback round trip: answers judged in the web app's handlers (thumbs down with the right
answer, thumbs up, thumbs down 'the documents don't say') -> ``python -m eval feedback`` ->
the harness runs the exported set. Fake embedding."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import gradio as gr

from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp
from chatbot.web.config import WebSettings
from chatbot.web.service import ChatService
from eval.__main__ import EXIT_BAD_INPUT, EXIT_OK, main
from eval.dataset import load_set
from ingest import IngestSettings, ingest_paths
from tests.conftest import ROOT, subprocess_env

SEEDS = ROOT / "seeds"
QUESTION = "Who told federal prosecutors to seek the death penalty in drug cases?"
FOLLOW_UP = "What did he say about business as usual?"
NOWHERE = "Who won the 2019 Wimbledon men's singles title?"


def judge(app: ChatApp, chat: list, session: dict, liked: bool, **fields) -> str:
    index = len(chat) - 1  # the last (assistant) message
    picked = app.saved.pick(
        chat, session, gr.LikeData(None, {"index": index, "value": "", "liked": liked})
    )[1]
    return app.saved.save(
        picked,
        fields.get("comment", ""),
        fields.get("correction", ""),
        fields.get("nowhere", False),
    )


def ask(app: ChatApp, chat: list, session: dict | None, question: str) -> tuple[list, dict]:
    *_, (message, _, _, _, session) = app.chat(question, chat, 5, "extractive", session)
    return [
        *chat,
        {"role": "user", "content": question},
        {"role": "assistant", "content": message},
    ], session


def run_main(*args) -> int:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return main([str(a) for a in args])
    finally:  # main() configures logging: undo it
        for h in root.handlers:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def test_thumbs_down_with_a_correction_exports_and_the_harness_runs_it(
    tmp_path: Path, fake_settings: IngestSettings, monkeypatch
):
    assert ingest_paths([SEEDS], fake_settings).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=fake_settings, min_dense=-1.0),
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
        conversations_db=str(tmp_path / "talk.sqlite3"),
        watch_documents=False,
    )
    app = ChatApp(ChatService(settings, seeds_dir=SEEDS))
    chat, session = ask(app, [], None, QUESTION)
    assert "appended" in judge(app, chat, session, False, correction="Jeff Sessions")
    chat, session = ask(app, chat, session, FOLLOW_UP)
    assert "appended" in judge(app, chat, session, True, comment="good")
    other, other_session = ask(app, [], None, NOWHERE)
    assert "appended" in judge(app, other, other_session, False, nowhere=True)
    lonely, lonely_session = ask(app, [], None, "What is a pardon?")
    assert "type the right answer" in judge(app, lonely, lonely_session, False)
    app.close()

    out = tmp_path / "sets" / "feedback.jsonl"
    env = {**subprocess_env(), "DOCQA_CONVERSATIONS_DB": settings.conversations_db}
    done = subprocess.run(
        [sys.executable, "-m", "eval", "feedback", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert "wrote 3 eval cases" in done.stdout and "1 thumbs-down" in done.stdout
    corrected, kept, unanswerable = load_set(out)
    assert corrected.question == QUESTION and corrected.answers == ("Jeff Sessions",)
    assert corrected.type == "chat-corrected" and corrected.history == ()
    assert kept.question == FOLLOW_UP and kept.answerable and kept.type == "chat"
    assert [t["role"] for t in kept.history] == ["user", "assistant"]
    assert kept.history[0]["content"] == QUESTION
    assert unanswerable.question == NOWHERE and not unanswerable.answerable
    # The same lines went to the eval-cases file as each feedback was saved.
    appended = [json.loads(line) for line in settings.eval_cases_file.read_text().splitlines()]
    assert [c["id"] for c in appended] == [corrected.id, kept.id, unanswerable.id]
    # Exporting again gives the same ids: the file can be regenerated, not duplicated.
    assert run_main("feedback", "--out", out, "--db", settings.conversations_db) == EXIT_OK
    assert [c.id for c in load_set(out)] == [corrected.id, kept.id, unanswerable.id]

    monkeypatch.setenv("DOCQA_EMBEDDING_MODEL", "fake")
    report_dir = tmp_path / "report"
    code = run_main(
        "--docs",
        SEEDS,
        "--set",
        out,
        "--cache-dir",
        tmp_path / "cache",
        "-q",
        "--out",
        report_dir,
        "--no-html",
    )
    assert code == EXIT_OK
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert len(report["rows"]) == 3 and set(report["by_type"]) == {"chat", "chat-corrected"}


def test_feedback_export_errors_name_the_file(tmp_path: Path, capsys):
    missing = tmp_path / "none.sqlite3"
    assert run_main("feedback", "--out", tmp_path / "o.jsonl", "--db", missing) == EXIT_BAD_INPUT
    assert f"no conversations database at {missing}" in capsys.readouterr().err
    assert run_main("feedback") == EXIT_BAD_INPUT
    assert "--out" in capsys.readouterr().err

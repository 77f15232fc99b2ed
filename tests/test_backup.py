"""``python -m chatbot backup|restore``: a consistent copy of the conversations (with feedback),
the users file, the chat's eval cases and the manifests while conversations are written;
restore into a fresh folder brings every turn and judgement back; a SIGKILL in the middle of
conversation writes loses at most the answer being written."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from chatbot.accounts import read_or_empty, save_users, set_user
from chatbot.config import ChatSettings
from chatbot.conversations import DOWN, UP, ConversationStore
from chatbot.web.backup import BackupError, backup, restore
from chatbot.web.config import WebSettings
from ingest import IngestSettings, ingest_paths
from tests.conftest import ROOT, subprocess_env, write


def web_settings(base: Path) -> WebSettings:
    index = IngestSettings(index_dir=base / "index", embedding_model="fake", progress=False)
    return WebSettings(
        chat=ChatSettings(index=index),
        docs_dir=base / "documents",
        eval_cases_file=base / "cases.jsonl",
        users_file=str(base / "users"),
        watch_documents=False,
    )


def converse(store: ConversationStore, n: int) -> list[int]:
    """``n`` answered turns, every other one judged; their ids."""
    ids = []
    for i in range(n):
        cid = store.create(f"question {i}?", "docs")
        turn = store.ask(cid, f"question {i}?")
        store.answer(turn, {"text": f"answer {i} [1]", "citations": [], "trace": {"i": i}})
        if i % 2 == 0:
            store.judge(turn, UP if i % 4 == 0 else DOWN, comment=f"c{i}", correction=f"r{i}")
        ids.append(turn)
    return ids


def snapshot(path: Path) -> dict[int, tuple]:
    store = ConversationStore(path)
    try:
        return {
            t.id: (t.question, t.answer_text, t.rating, t.comment, t.correction)
            for c in store.list(limit=100_000)
            for t in store.turns(c.id)
        }
    finally:
        store.close()


@pytest.fixture
def state(tmp_path: Path) -> WebSettings:
    """An app's state: an index built from a folder, conversations, users, eval cases."""
    settings = web_settings(tmp_path / "live")
    write(tmp_path / "handbook" / "leave.md", "# Leave\n\nEveryone gets 20 days of vacation.")
    assert ingest_paths([tmp_path / "handbook"], settings.chat.index).exit_code == 0
    users = set_user(read_or_empty(Path(settings.users_file)), "ann", "editor", "a long secret")
    save_users(Path(settings.users_file), users)
    write(settings.eval_cases_file, '{"id": "feedback-1", "question": "q"}\n')
    store = ConversationStore(settings.conversations_path)
    converse(store, 20)
    store.close()
    return settings


def test_a_backup_taken_while_conversations_are_written_is_consistent(state, tmp_path):
    store = ConversationStore(state.conversations_path)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            written.extend(converse(store, 1))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:  # the writes are flowing
            stop.wait(0.01)
        before = set(snapshot(state.conversations_path))
        record = backup(state, tmp_path / "bk")
    finally:
        stop.set()
        thread.join(30)
        store.close()
    copy = tmp_path / "bk" / "conversations.sqlite3"
    db = sqlite3.connect(copy)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    saved = snapshot(copy)
    assert before <= set(saved)  # everything written before the backup began is in it
    texts = [text for _, text, *_ in saved.values()]
    assert all(t.startswith("answer ") for t in texts if t)  # whole answers, none half
    assert sum(not t for t in texts) <= 1  # at most the turn asked as the copy was taken
    assert set(record["files"]) == {
        "conversations.sqlite3",
        "users",
        "eval-cases.jsonl",
        "manifests/docs.sqlite3",
    }
    with pytest.raises(BackupError, match="is not empty"):
        backup(state, tmp_path / "bk")


def test_restore_into_a_fresh_folder_brings_every_turn_and_judgement_back(state, tmp_path):
    backup(state, tmp_path / "bk")
    fresh = web_settings(tmp_path / "fresh")
    done = restore(fresh, tmp_path / "bk")
    assert snapshot(fresh.conversations_path) == snapshot(state.conversations_path)
    assert Path(fresh.users_file).read_bytes() == Path(state.users_file).read_bytes()
    assert read_or_empty(Path(fresh.users_file)).get("ann").role == "editor"
    assert fresh.eval_cases_file.read_text() == state.eval_cases_file.read_text()
    handbook = str((tmp_path / "handbook").resolve())
    assert done.rebuild == [f"python -m ingest {handbook}"]
    # the manifest is kept aside: the fresh index is empty, and the next ingest fills it
    assert not (fresh.chat.index.index_dir / "manifest.sqlite3").exists()
    with pytest.raises(BackupError, match="exists: move it away first"):
        restore(fresh, tmp_path / "bk")
    restore(fresh, tmp_path / "bk", force=True)
    with pytest.raises(BackupError, match="not a docqa backup"):
        restore(fresh, tmp_path)


WRITER = """
import sys
from chatbot.conversations import ConversationStore
store = ConversationStore(sys.argv[1])
cid = store.create("q", "docs")
while True:
    turn = store.ask(cid, "q")
    store.answer(turn, {"text": "x" * 20000, "citations": [], "trace": {}})
    print(turn, flush=True)
"""


def test_sigkill_during_conversation_writes_loses_at_most_the_answer_being_written(tmp_path):
    db = tmp_path / "conversations.sqlite3"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=ROOT,
    )
    acked = [int(proc.stdout.readline()) for _ in range(50)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    store = ConversationStore(db)
    try:
        (conversation,) = store.list()
        turns = store.turns(conversation.id)
    finally:
        store.close()
    answered = {t.id for t in turns if t.answer}
    assert set(acked) <= answered  # every answer reported written is there
    assert len([t for t in turns if not t.answer]) <= 1  # at most the one in flight


def test_the_cli_backs_up_and_restores(state, tmp_path):
    def run(*args: str, base: Path) -> subprocess.CompletedProcess:
        env = {
            **subprocess_env(),
            "DOCQA_USERS_FILE": str(base / "users"),
            "DOCQA_EVAL_CASES_FILE": str(base / "cases.jsonl"),
        }
        cmd = [sys.executable, "-m", "chatbot", "--index-dir", str(base / "index"), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT, timeout=120)

    done = run("backup", str(tmp_path / "bk"), base=tmp_path / "live")
    assert done.returncode == 0, done.stderr
    assert "backed up 4 files" in done.stdout
    done = run("restore", str(tmp_path / "bk"), base=tmp_path / "new")
    assert done.returncode == 0, done.stderr
    assert "rebuild the index from the documents:" in done.stdout
    assert snapshot(tmp_path / "new" / "index" / "conversations.sqlite3") == snapshot(
        state.conversations_path
    )
    again = run("restore", str(tmp_path / "bk"), base=tmp_path / "new")
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert len(again.stderr.strip().splitlines()) == 1

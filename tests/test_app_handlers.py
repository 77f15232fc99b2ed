"""The web app's handlers and shared service, without a server: streaming answers with the
panels, errors, eval cases, upload/remove with a background reingest that chat keeps
answering through, the no-index start, and the launch safety checks. Fake embedding."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import gradio as gr
import pytest
from langchain_core.embeddings import Embeddings

from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp, build_app, is_loopback, launch, login
from chatbot.web.config import WebSettings
from chatbot.web.service import ChatService, ReadWriteLock
from chatbot.web.ui import history_for_chain, plain_text
from ingest import IngestSettings, ingest_paths
from tests.conftest import ROOT, write

SEEDS = ROOT / "seeds"
QUESTION = "Who told federal prosecutors to seek the death penalty in drug cases?"
ZORBLAT = (
    "The Zorblat Festival\n\nThe Zorblat festival is held every year in June in the Breton "
    "town of Quimper. It was founded in 1987 by the baker Annick Le Goff.\n"
)


def chat_settings(tmp_path: Path, index: IngestSettings) -> WebSettings:
    # The fake embedding's similarities are noise: don't decline on them.
    return WebSettings(
        chat=ChatSettings(index=index, min_dense=-1.0),
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
        watch_documents=False,  # the tests reingest on their own clicks
    )


@pytest.fixture
def app(tmp_path: Path, fake_settings: IngestSettings) -> ChatApp:
    assert ingest_paths([SEEDS], fake_settings).exit_code == 0
    return ChatApp(ChatService(chat_settings(tmp_path, fake_settings), seeds_dir=SEEDS))


def final(outputs: list[tuple]) -> tuple:
    assert outputs, "the handler yielded nothing"
    return outputs[-1]


def test_chat_streams_then_gives_the_cited_answer_and_panels(app: ChatApp):
    outputs = list(app.chat(QUESTION, [], 5, "extractive"))
    assert len(outputs) > 2  # streamed in pieces
    first = outputs[0]
    assert "docqa-sources" in first[1] and first[2] == gr.skip()
    message, sources, trace, answer, session = final(outputs)
    assert "Jeff Sessions" in message and "&#91;1&#93;" in message
    assert '<span class="docqa-n">[1]</span>' in sources and "000_762628c52ecf43e6.txt" in sources
    assert '<mark class="docqa-quote">' in sources
    assert "Standalone query" in trace and "dense" in trace
    assert answer["declined"] is False and answer["citations"]
    # The conversation is saved: the question, then the answer with its citations and trace.
    (saved,) = app.saved.store.turns(session["id"])
    assert session["turns"] == [saved.id] and saved.question == QUESTION
    assert saved.answer == answer and saved.answered_at >= saved.asked_at
    (listed,) = app.saved.store.list()
    assert listed.title == QUESTION and listed.collection == app.settings.chat.index.collection


def test_chat_follow_up_uses_the_gradio_history(app: ChatApp):
    *_, (message, _, _, _, session) = app.chat(QUESTION, [], 5, "extractive")
    history = [
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        {"role": "assistant", "content": [{"type": "text", "text": message}]},
    ]
    follow_up = "What did he say about business as usual?"
    *_, (_, _, _, answer, session) = app.chat(follow_up, history, 5, "", session)
    assert "Sessions" in answer["trace"]["standalone_query"]
    turns = history_for_chain(history)
    assert turns[1]["content"].startswith("**Jeff Sessions** [1]")
    assert "<mark" not in turns[1]["content"]
    first, second = app.saved.store.turns(session["id"])
    assert session["turns"] == [first.id, second.id] and second.question == follow_up
    assert len(app.saved.store.list()) == 1


def test_chat_k_setting_limits_the_passages(app: ChatApp):
    *_, (_, _, _, answer, _) = app.chat(QUESTION, [], 2, "extractive")
    assert len(answer["trace"]["passages"]) == 2


@pytest.mark.parametrize(
    ("question", "backend", "expected"),
    [
        ("   ", "extractive", "the question is empty"),
        ("x" * 2001, "extractive", "the limit is 2000"),
        (QUESTION, "openai:nope", "unknown backend 'openai:nope'"),
    ],
)
def test_chat_errors_are_shown_in_the_chat(app: ChatApp, question, backend, expected):
    message, sources, _, answer, session = final(list(app.chat(question, [], 5, backend)))
    assert "docqa-error" in message and expected in plain_text(message)
    assert "Ask a question" in sources and answer is None
    assert session == {"id": None, "turns": [None]} and app.saved.store.list() == []


def like(index: int, liked: bool | None) -> gr.LikeData:
    return gr.LikeData(None, {"index": index, "value": "", "liked": liked})


def test_feedback_is_stored_with_the_turn_and_appends_an_eval_case(app: ChatApp):
    cases, saved = app.settings.eval_cases_file, app.saved
    assert "Click 👍 or 👎" in saved.save(None, "", "", False)
    *_, (message, _, _, _, session) = app.chat(QUESTION, [], 5, "extractive")
    chat = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": message}]
    note, picked = saved.pick(chat, session, like(1, True))
    assert "Answer 1: 👍 saved" in note
    assert saved.store.turn(session["turns"][0]).rating == 1  # stored at the click
    assert "goes with a 👎" in saved.save(picked, "", "Sessions", False)
    status = saved.save(picked, "spot on", "", False)
    assert "eval case feedback-" in status and "gold: Jeff Sessions" in status
    note, picked = saved.pick(chat, session, like(1, False))
    assert "👎 saved" in note
    assert "type the right answer" in saved.save(picked, "", "", False)  # no gold yet
    saved.save(picked, "too long", "Jeff Sessions", False)
    turn = saved.store.turn(session["turns"][0])
    assert (turn.rating, turn.comment, turn.correction) == (-1, "too long", "Jeff Sessions")
    right, wrong = (json.loads(line) for line in cases.read_text().splitlines())
    assert right["question"] == QUESTION and right["answerable"] is True
    assert right["answers"] == ["Jeff Sessions"]
    assert right["evidence_doc_ids"] == ["000_762628c52ecf43e6"] and right["evidence"]
    assert wrong["answers"] == ["Jeff Sessions"] and wrong["type"] == "chat-corrected"
    assert saved.pick(chat, session, like(1, None))[1] is None  # un-judged
    assert saved.store.turn(session["turns"][0]).rating is None
    assert saved.pick(chat, {"id": None, "turns": [None]}, like(1, False))[1] is None


def test_conversations_reopen_rename_and_delete(app: ChatApp):
    *_, (message, _, _, _, session) = app.chat(QUESTION, [], 5, "extractive")
    *_, (_, _, _, _, other) = app.chat("When is the Zorblat festival?", [], 5, "extractive")
    assert [c for _, c in app.saved.choices()] == [other["id"], session["id"]]  # newest first
    chat, state, sources, trace, answer, reopened, title, note = app.saved.open(session["id"])
    assert chat == state and [m["role"] for m in chat] == ["user", "assistant"]
    assert chat[0]["content"] == QUESTION and chat[1]["content"] == message
    assert "000_762628c52ecf43e6.txt" in sources and "Standalone query" in trace
    assert reopened == session and title == QUESTION and "Reopened" in note
    follow_up = "What did he say about business as usual?"
    *_, (_, _, _, answer, after) = app.chat(follow_up, chat, 5, "", reopened)
    assert "Sessions" in answer["trace"]["standalone_query"]  # the history came back
    assert after["id"] == session["id"] and len(after["turns"]) == 2
    assert app.saved.choices()[0] == (f"{QUESTION} · docs", session["id"])  # used last: first
    listing, note = app.saved.rename(after, "  Sessions and  the death penalty ")
    assert (
        note == "Renamed."
        and ("Sessions and the death penalty · docs", session["id"]) in listing["choices"]
    )
    assert "must not be empty" in app.saved.rename(after, "  ")[1]
    *_, fresh, listing, note = app.saved.delete(after)
    assert note == "Deleted." and fresh == {"id": None, "turns": []}
    assert [c for _, c in listing["choices"]] == [other["id"]]
    assert app.saved.store.turns(session["id"]) == []
    assert "no conversation" in app.saved.open(session["id"])[-1]


def test_new_conversation_clears_everything(app: ChatApp):
    chat, state, sources, trace, answer, session, saved = app.new_conversation()
    assert chat == [] and state == [] and answer is None and saved == ""
    assert session == {"id": None, "turns": []}
    assert "Ask a question" in sources and "No question" in trace


def test_documents_view_lists_seeds_as_not_removable(app: ChatApp):
    rows, dropdown, header = app.documents_view()
    assert len(rows) == 1 and rows[0][2] == "000_762628c52ecf43e6.txt"
    assert rows[0][3].startswith("seeds") and rows[0][4] == 4
    assert dropdown["choices"] == [] and "1 document" in header


def test_upload_reingests_in_the_background_while_chat_keeps_answering(
    app: ChatApp, tmp_path: Path
):
    """Embedding the upload is held until released: chat answers meanwhile (without the
    new document), and sees it once the reingest completes."""
    service = app.service
    shared = service._embeddings()
    started, release = threading.Event(), threading.Event()

    class Held(Embeddings):  # the shared model, paused on the upload's batch
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            started.set()
            assert release.wait(30)
            return shared.embed_documents(texts)

        def embed_query(self, text: str) -> list[float]:
            return shared.embed_query(text)

    service._embeddings = Held  # type: ignore[method-assign]
    upload = write(tmp_path / "incoming" / "Zorblat <fest>.txt", ZORBLAT)
    updates: list[tuple] = []

    def follow() -> None:
        for update in app.upload([str(upload)]):
            updates.append(update)

    worker = threading.Thread(target=follow)
    worker.start()
    assert started.wait(30)
    assert service.status().running
    *_, (_, sources, _, answer, _) = app.chat(QUESTION, [], 5, "extractive")
    assert answer["citations"] and "Zorblat" not in sources
    deadline = time.monotonic() + 10
    while not updates and time.monotonic() < deadline:  # progress shows while it runs
        time.sleep(0.05)
    assert "working: plan: add 1" in updates[0][0]
    release.set()
    worker.join(30)
    assert not worker.is_alive()
    status, rows, dropdown, header, files = updates[-1]
    assert "done: added 1, updated 0, deleted 0, unchanged 1" in status
    assert "saved Zorblat_fest.txt" in status and files is None
    assert (service.docs.folder / "Zorblat_fest.txt").exists()
    assert sorted(r[2] for r in rows) == ["000_762628c52ecf43e6.txt", "Zorblat_fest.txt"]
    assert dropdown["choices"] == ["Zorblat_fest.txt"] and "2 documents" in header
    *_, (message, sources, _, answer, _) = app.chat("When is the Zorblat festival held?", [], 5, "")
    assert "June" in message and answer["citations"][0]["source"] == "Zorblat_fest.txt"

    updates = list(app.remove("Zorblat_fest.txt"))
    assert "done: added 0, updated 0, deleted 1" in updates[-1][0]
    assert not (service.docs.folder / "Zorblat_fest.txt").exists()
    assert [r[2] for r in updates[-1][1]] == ["000_762628c52ecf43e6.txt"]


def test_upload_and_remove_refuse_bad_input(app: ChatApp, tmp_path: Path):
    bad = write(tmp_path / "incoming" / "run.sh", "echo hi")
    status, *_ = final(list(app.upload([str(bad)])))
    assert status.startswith("Nothing added") and "unsupported file type '.sh'" in status
    assert "Choose a document" in final(list(app.remove(None)))[0]
    assert "not in the documents folder" in final(list(app.remove("../cases.jsonl")))[0]
    assert "no such file" in final(list(app.remove("000_762628c52ecf43e6.txt")))[0]
    assert (SEEDS / "000_762628c52ecf43e6.txt").exists()


def test_no_index_starts_with_a_message_and_an_upload_builds_it(
    tmp_path: Path, fake_settings: IngestSettings
):
    app = ChatApp(ChatService(chat_settings(tmp_path, fake_settings), seeds_dir=None))
    header = plain_text(app.header())
    assert "No index yet" in header and "python -m ingest seeds/" in header
    message, *_ = final(list(app.chat(QUESTION, [], 5, "extractive")))
    assert "docqa-error" in message and "no index" in plain_text(message)
    assert app.documents_view()[0] == []
    demo = app.build()  # the page builds with no index and no documents
    assert isinstance(demo, gr.Blocks)
    upload = write(tmp_path / "incoming" / "zorblat.txt", ZORBLAT)
    assert "done: added 1" in final(list(app.upload([str(upload)])))[0]
    *_, (message, *_rest) = app.chat("When is the Zorblat festival held?", [], 5, "")
    assert "June" in message


class CountedCondition(threading.Condition):
    """A Condition that counts its waits: a thread blocked in the lock releases ``waits``."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.release()
        return super().wait(timeout)


def test_read_write_lock_waits_for_readers_and_keeps_new_ones_out():
    lock = ReadWriteLock()
    lock._cond = CountedCondition()  # to see each thread block, instead of sleeping
    events: list[str] = []

    def writer() -> None:
        with lock.writing():
            events.append("write")

    def late_reader() -> None:
        with lock.reading():
            events.append("late read")

    with lock.reading():
        t = threading.Thread(target=writer)
        t.start()
        assert lock._cond.waits.acquire(timeout=30), "the writer never blocked"
        assert events == []  # the writer waits for the reader
        r = threading.Thread(target=late_reader)
        r.start()
        assert lock._cond.waits.acquire(timeout=30), "the late reader never blocked"
        assert events == []  # the late reader waits behind the waiting writer
        events.append("read done")
    t.join(30)
    r.join(30)
    assert not t.is_alive() and not r.is_alive()
    assert events == ["read done", "write", "late read"]


def test_backends_offer_extractive_beside_a_chat_model(tmp_path: Path, fake_settings):
    ingest_paths([SEEDS], fake_settings)
    web = chat_settings(tmp_path, fake_settings)
    settings = web.replace(chat=web.chat.replace(answerer="fake"))
    service = ChatService(settings, seeds_dir=SEEDS)
    assert service.backends == ["fake", "extractive"]
    with service.answering("extractive") as bot:
        assert bot.backend == "extractive"
    service.refresh()
    with service.answering("extractive") as bot:
        assert bot.index is service._bots["fake"].index


def test_login_and_loopback_checks(tmp_path: Path, fake_settings, caplog, monkeypatch):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    assert login(WebSettings()) is None
    assert login(WebSettings(login_user="a", login_password="b")) == ("a", "b")
    ingest_paths([SEEDS], fake_settings)
    launched = {}

    def fake_launch(self, **kwargs):
        launched.update(kwargs)
        return None, "http://x", None

    monkeypatch.setattr(gr.Blocks, "launch", fake_launch)
    settings = chat_settings(tmp_path, fake_settings).replace(host="0.0.0.0", port=9000)
    with caplog.at_level(logging.WARNING, logger="chatbot.web.app"):
        launch(settings, seeds_dir=SEEDS, block=False)
    assert "binding to 0.0.0.0 without a login" in caplog.text
    assert launched["server_name"] == "0.0.0.0" and launched["server_port"] == 9000
    assert launched["auth"] is None and launched["max_file_size"] == 20 * 1024 * 1024
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="chatbot.web.app"):
        launch(settings.replace(login_user="u", login_password="p"), seeds_dir=SEEDS, block=False)
    assert "without a login" not in caplog.text and launched["auth"] == ("u", "p")


def test_the_chat_endpoint_is_the_only_public_api(tmp_path: Path, fake_settings):
    ingest_paths([SEEDS], fake_settings)
    demo, _ = build_app(chat_settings(tmp_path, fake_settings), seeds_dir=SEEDS)
    info = demo.get_api_info()
    assert list(info["named_endpoints"]) == ["/chat"]
    params = [p["parameter_name"] for p in info["named_endpoints"]["/chat"]["parameters"]]
    assert params == ["message", "k", "backend", "collection"]

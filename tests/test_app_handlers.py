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
from chatbot.web.ui import plain_text
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
    message, sources, trace, answer, turn = final(outputs)
    assert "Jeff Sessions" in message and "&#91;1&#93;" in message
    assert '<span class="docqa-n">[1]</span>' in sources and "000_762628c52ecf43e6.txt" in sources
    assert '<mark class="docqa-quote">' in sources
    assert "Standalone query" in trace and "dense" in trace
    assert answer["declined"] is False and answer["citations"]
    assert turn["question"] == QUESTION and turn["history"] == []


def test_chat_follow_up_uses_the_gradio_history(app: ChatApp):
    *_, (message, _, _, _, _) = app.chat(QUESTION, [], 5, "extractive")
    history = [
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        {"role": "assistant", "content": [{"type": "text", "text": message}]},
    ]
    follow_up = "What did he say about business as usual?"
    *_, (_, _, _, answer, turn) = app.chat(follow_up, history, 5, "")
    assert "Sessions" in answer["trace"]["standalone_query"]
    assert turn["history"][1]["content"].startswith("U.S. Attorney General Jeff Sessions [1].")
    assert "<mark" not in turn["history"][1]["content"]


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
    message, sources, _, answer, turn = final(list(app.chat(question, [], 5, backend)))
    assert "docqa-error" in message and expected in plain_text(message)
    assert "Ask a question" in sources and answer is None and turn is None


def test_save_case_needs_a_turn_and_a_verdict_then_appends_a_line(app: ChatApp):
    cases = app.settings.eval_cases_file
    assert "Ask a question first" in app.save_case("Right", "", None)
    *_, (_, _, _, _, turn) = app.chat(QUESTION, [], 5, "extractive")
    assert "right or wrong" in app.save_case(None, "", turn)
    assert not cases.exists()
    status = app.save_case("Right", "", turn)
    assert status.startswith("Saved chat-")
    app.save_case("Wrong", "Sessions", turn)
    right, wrong = (json.loads(line) for line in cases.read_text().splitlines())
    assert right["question"] == QUESTION and right["answerable"] is True
    assert right["answers"] == ["U.S. Attorney General Jeff Sessions"]
    assert right["evidence_doc_ids"] == ["000_762628c52ecf43e6"] and right["evidence"]
    assert wrong["answers"] == ["Sessions"] and wrong["type"] == "chat-corrected"


def test_new_conversation_clears_everything(app: ChatApp):
    chat, state, sources, trace, answer, turn, saved = app.new_conversation()
    assert chat == [] and state == [] and answer is None and turn is None and saved == ""
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
    assert params == ["message", "k", "backend"]

"""Collections in the web app, without a browser: two collections with different documents,
a question answered only from the selected one (handlers and the HTTP API's ``model``), a
conversation tied to its collection, a new collection that starts empty, and deletion after
a confirmation that names it. Fake embedding, real Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp
from chatbot.web.collections import NO_DOCUMENTS
from chatbot.web.config import WebSettings
from chatbot.web.library import Library, documents_folder
from chatbot.web.openai_api import ApiKeys, api_routes
from chatbot.web.ui import plain_text
from ingest import IngestSettings, ingest_paths, list_collections
from tests.conftest import ROOT, write

SEEDS = ROOT / "seeds"
SEED = "000_762628c52ecf43e6.txt"
SEEDS_QUESTION = "Who told federal prosecutors to seek the death penalty in drug cases?"
ZORBLAT_QUESTION = "When is the Zorblat festival held?"
ZORBLAT = (
    "The Zorblat Festival\n\nThe Zorblat festival is held every year in June in the Breton "
    "town of Quimper. It was founded in 1987 by the baker Annick Le Goff.\n"
)


@pytest.fixture
def app(tmp_path: Path, fake_settings: IngestSettings) -> ChatApp:
    """The seeds in the default collection; 'festivals' created in the page, with one
    uploaded document."""
    assert ingest_paths([SEEDS], fake_settings).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=fake_settings, min_dense=-1.0),  # fake similarities: noise
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
        watch_documents=False,
    )
    app = ChatApp(library=Library(settings, seeds_dir=SEEDS))
    selector, name_box, note, *_ = app.collections.create("festivals")
    assert selector["value"] == "festivals" and name_box == ""
    assert "Created collection **festivals**" in note
    upload = write(tmp_path / "incoming" / "zorblat.txt", ZORBLAT)
    *_, (status, rows, removable, header, _) = app.upload([str(upload)], "festivals")
    assert "done: added 1" in status, status
    assert [r[2] for r in rows] == ["zorblat.txt"] and removable["choices"] == ["zorblat.txt"]
    assert "1 document" in header
    yield app
    app.close()


def sources_of(answer: dict | None) -> set[str]:
    assert answer is not None
    return {c["source"] for c in answer["citations"]}


def test_a_question_is_answered_only_from_the_selected_collection(app: ChatApp, tmp_path):
    *_, (message, _, _, answer, _) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "festivals")
    assert "June" in message and sources_of(answer) == {"zorblat.txt"}
    *_, (_, _, _, answer, _) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "docs")
    assert "zorblat.txt" not in sources_of(answer) | {p["source"] for p in _passages(answer)}
    *_, (message, _, _, answer, _) = app.chat(SEEDS_QUESTION, [], 5, "", None, "docs")
    assert "Sessions" in message and sources_of(answer) == {SEED}
    *_, (_, _, _, answer, _) = app.chat(SEEDS_QUESTION, [], 5, "", None, "festivals")
    assert SEED not in sources_of(answer) | {p["source"] for p in _passages(answer)}

    # Each collection's documents folder is its own; the default one keeps docs_dir.
    assert (tmp_path / "documents-festivals" / "zorblat.txt").is_file()
    assert not (tmp_path / "documents" / "zorblat.txt").exists()
    assert documents_folder(tmp_path / "documents", "docs") == tmp_path / "documents"
    rows, _, _ = app.documents_view("docs")
    assert [r[2] for r in rows] == [SEED]

    # One embedding model for every collection.
    default, other = app.library.service("docs"), app.library.service("festivals")
    with default.answering() as a, other.answering() as b:
        assert a.index.embeddings is b.index.embeddings is app.library.embeddings


def _passages(answer: dict) -> list[dict]:
    """Every passage the answer was drawn from (cited or listed as closest)."""
    passages = answer["trace"]["passages"]
    assert passages, "retrieval found nothing at all"
    return passages


def test_the_api_answers_from_the_collection_named_by_model(app: ChatApp):
    client = TestClient(FastAPI(routes=api_routes(app.library, ApiKeys.parse(""))))
    models = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in models] == ["docs", "festivals"]

    asked = {"messages": [{"role": "user", "content": ZORBLAT_QUESTION}]}
    reply = client.post("/v1/chat/completions", json={**asked, "model": "festivals"}).json()
    assert reply["model"] == "festivals" and "June" in reply["choices"][0]["message"]["content"]
    assert {c["source"] for c in reply["docqa"]["citations"]} == {"zorblat.txt"}
    default = client.post("/v1/chat/completions", json=asked).json()  # no model: 'docs'
    assert default["model"] == "docs"
    assert "zorblat.txt" not in {c["source"] for c in default["docqa"]["citations"]}

    plain = client.post(
        "/api/answer", json={"question": SEEDS_QUESTION, "model": "festivals"}
    ).json()
    assert SEED not in {c["source"] for c in plain["citations"]}
    plain = client.post("/api/answer", json={"question": SEEDS_QUESTION, "model": "docs"}).json()
    assert {c["source"] for c in plain["citations"]} == {SEED}

    unknown = client.post("/v1/chat/completions", json={**asked, "model": "nope"})
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "model_not_found" and "'nope'" in error["message"]
    assert client.post("/api/answer", json={"question": "x", "model": "nope"}).status_code == 404


def test_a_conversation_belongs_to_its_collection(app: ChatApp):
    *_, (_, _, _, _, session) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "festivals")
    assert app.saved.store.get(session["id"]).collection == "festivals"
    assert (f"{ZORBLAT_QUESTION} · festivals", session["id"]) in app.saved.choices()

    note, chat, _, _, _, _, fresh, _, *view = app.collections.switch("docs")
    assert chat == [] and fresh["id"] is None and "docs" in note
    assert [r[2] for r in view[0]] == [SEED]

    chat, _, _, _, _, reopened, title, status, selector, rows, *_ = app.collections.open(
        session["id"]
    )
    assert selector["value"] == "festivals" and reopened["id"] == session["id"]
    assert title == ZORBLAT_QUESTION and [r[2] for r in rows] == ["zorblat.txt"]
    follow_up = "Who founded it?"
    *_, (_, _, _, answer, after) = app.chat(follow_up, chat, 5, "", reopened, "festivals")
    assert after["id"] == session["id"] and sources_of(answer) == {"zorblat.txt"}


def test_a_new_collection_starts_empty_and_names_are_checked(app: ChatApp):
    selector, _, note, *_ = app.collections.create("empty-one")
    assert selector["value"] == "empty-one" and "empty-one" in selector["choices"]
    service = app.library.service("empty-one")
    service.wait(service.request_reingest(), timeout=30)
    assert app.header("empty-one") == NO_DOCUMENTS
    *_, (message, _, _, answer, _) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "empty-one")
    assert answer is not None and answer["declined"] and answer["citations"] == [], message

    for bad, words in (("festivals", "exists already"), ("a b", "letters, digits")):
        _, _, refused, *rest = app.collections.create(bad)
        assert refused.startswith("Not created: ") and words in refused
    *_, (message, *_rest) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "gone")
    assert "no collection 'gone'; the collections are: docs, empty-one" in plain_text(message)


def test_deleting_a_collection_asks_first_and_keeps_the_others(app: ChatApp, tmp_path):
    *_, (_, _, _, _, session) = app.chat(ZORBLAT_QUESTION, [], 5, "", None, "festivals")
    confirm, text, note = app.collections.ask_delete("docs")
    assert confirm["visible"] is False and "Not deleted:" in note and "'docs'" in note

    confirm, text, note = app.collections.ask_delete("festivals")
    assert confirm["visible"] is True and note == ""
    assert "**festivals**" in text and str(tmp_path / "documents-festivals") in text
    hidden, note = app.collections.cancel()
    assert hidden["visible"] is False and "festivals" in app.library.names()

    selector, hidden, note, *switched = app.collections.delete("festivals")
    assert selector["value"] == "docs" and selector["choices"] == ["docs"]
    assert "Deleted collection **festivals**" in note
    assert [r[2] for r in switched[7]] == [SEED]
    index = app.settings.chat.index
    assert [c.name for c in list_collections(index)] == ["docs"]
    assert not (tmp_path / "documents-festivals").exists()
    # Conversations are kept; reopening one of the deleted collection starts anew on a question.
    assert app.saved.store.get(session["id"]).collection == "festivals"
    *_, reopened, _, status, selector, _, _, _, _ = app.collections.open(session["id"])
    assert reopened["id"] is None and "was deleted" in status
    *_, (message, _, _, answer, _) = app.chat(SEEDS_QUESTION, [], 5, "", None, "docs")
    assert "Sessions" in message and sources_of(answer) == {SEED}


def test_with_accounts_only_editors_create_or_delete_collections(app: ChatApp, tmp_path):
    """A reader's calls to the collection box are refused on the server (the page also
    hides it from them); an editor's go through."""
    from chatbot.accounts import Users, UsersFile, save_users, set_user
    from chatbot.web.access import Access

    class Req:  # what the handlers read of a gr.Request
        def __init__(self, username: str) -> None:
            self.username = username

    users = Users()
    for name, role in (("ann", "editor"), ("bob", "reader")):
        users = set_user(users, name, role, f"harbour-pass-{role}-9")
    save_users(tmp_path / "users", users)
    app.access = Access(UsersFile(tmp_path / "users"))
    refused = "Refused: only editors can change documents or collections; bob is a reader."
    _, _, note, *_ = app.collections.create("minutes", Req("bob"))
    assert note == refused and "minutes" not in app.library.names()
    confirm, _, note = app.collections.ask_delete("festivals", Req("bob"))
    assert note == refused and confirm["visible"] is False
    _, _, note, *_ = app.collections.delete("festivals", Req("bob"))
    assert note == refused and "festivals" in app.library.names()
    _, _, note, *_ = app.collections.create("minutes", Req("ann"))
    assert "Created collection **minutes**" in note and "minutes" in app.library.names()
    _, _, note, *_ = app.collections.delete("festivals", Req("ann"))
    assert "Deleted collection **festivals**" in note and "festivals" not in app.library.names()

"""The example questions under the chat come from the selected collection's own documents:
headings, titles and repeated phrases of a handbook for a collection holding only that, the
seed article's for the default one; recomputed when the collection changes and when its
documents are uploaded or removed; none for an empty collection. Handlers without a browser;
fake embedding, real Chroma."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp
from chatbot.web.config import WebSettings
from chatbot.web.examples import DocSample, example_questions, headings, repeated_phrases
from chatbot.web.library import Library
from ingest import IngestSettings, ingest_paths
from tests.conftest import ROOT, write

SEEDS = ROOT / "seeds"
HANDBOOK = """# Acme Employee Handbook

Welcome to Acme. This handbook explains how we work together.

## Sick leave

You get ten paid sick days a year. Tell your manager before 9 am on the day.

## Parental Leave

Parents get sixteen weeks of paid leave, to be taken within a year of the birth.

## 3. Remote work:

You may work from home two days a week, agreed with your team.

## How do I claim expenses?

Submit receipts through the portal within 30 days.
"""
POLICY = (
    "<html><head><title>Travel policy</title></head><body>"
    "<p>Booking</p><p>Book flights through the travel portal at least two weeks ahead.</p>"
    "<p>Per diem</p><p>Travellers get 50 euros a day for meals.</p></body></html>"
)
# Words of the seed article: none may appear in a handbook collection's examples.
SEED_WORDS = ("death penalty", "prosecutors", "sessions", "opioid", "attorney", "execution")


@pytest.fixture
def app(tmp_path: Path, fake_settings: IngestSettings) -> ChatApp:
    """The seed article in the default collection 'docs'; 'people' created in the page, empty."""
    assert ingest_paths([SEEDS], fake_settings).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=fake_settings),
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
        watch_documents=False,
    )
    app = ChatApp(library=Library(settings, seeds_dir=SEEDS))
    selector, *_ = app.collections.create("people")
    assert selector["value"] == "people"
    yield app
    app.close()


def upload(app: ChatApp, tmp_path: Path, name: str, text: str, collection: str) -> None:
    path = write(tmp_path / "incoming" / name, text)
    *_, (status, *_) = app.upload([str(path)], collection)
    # Ingested by this upload, or already by a background reingest of the folder that raced it.
    assert "done: added 1" in status or "unchanged 1" in status, status


def remove(app: ChatApp, source: str, collection: str) -> None:
    *_, (status, *_) = app.remove(source, collection)
    assert "done:" in status and "FAILED" not in status, status


def shown(app: ChatApp, collection: str) -> list[str]:
    update, questions = app.example_view(collection)
    assert update["samples"] == [[q] for q in questions]
    assert update["visible"] is bool(questions)
    return questions


def test_a_handbook_collection_asks_about_the_handbook_not_the_seed(app: ChatApp, tmp_path):
    assert shown(app, "people") == []  # no documents, no examples (and the box hidden)
    upload(app, tmp_path, "handbook.md", HANDBOOK, "people")

    people = shown(app, "people")
    assert 3 <= len(people) <= 4
    assert "What does the handbook say about sick leave?" in people
    assert "Summarise “Acme Employee Handbook”." in people
    assert not [q for q in people if any(w in q.lower() for w in SEED_WORDS)], people

    # Another collection selected: its own documents' questions.
    docs = shown(app, "docs")
    assert any("death penalty" in q for q in docs), docs
    assert not set(docs) & set(people) and not any("handbook" in q.lower() for q in docs)
    assert shown(app, "people") == people  # and back


def test_the_examples_follow_uploads_and_removals(app: ChatApp, tmp_path):
    upload(app, tmp_path, "handbook.md", HANDBOOK, "people")
    before = shown(app, "people")
    # What the page shows already is not sent again.
    assert app.example_view("people", before) == (gr.skip(), before)

    upload(app, tmp_path, "travel.html", POLICY, "people")
    both, questions = app.example_view("people", before)
    assert both != gr.skip() and questions != before
    # One from each document in turn (the newest first; two uploads in one clock tick tie,
    # so the order is not asserted): both documents are asked about.
    assert "What does the policy say about booking?" in questions, questions
    assert any("handbook" in q for q in questions) and any("policy" in q for q in questions)

    remove(app, "handbook.md", "people")
    after = shown(app, "people")
    assert after and not any("handbook" in q.lower() or "leave" in q for q in after), after


def test_example_questions_from_headings_titles_and_repeated_phrases():
    handbook = DocSample("handbook.md", "Acme Employee Handbook", "", HANDBOOK)
    assert headings(HANDBOOK, handbook.title) == [
        "sick leave",
        "parental leave",
        "remote work",
        "How do I claim expenses?",
    ]
    assert example_questions([handbook]) == [
        "What does the handbook say about sick leave?",
        "Summarise “Acme Employee Handbook”.",
        "What does the handbook say about parental leave?",
        "What does the handbook say about remote work?",
    ]
    # A document without a title (its title is its opening words): a phrase it repeats.
    seed = (SEEDS / "000_762628c52ecf43e6.txt").read_text(encoding="utf-8")
    assert repeated_phrases(seed)[0] == "the death penalty"
    untitled = DocSample("seed.txt", "", "U.S. Attorney General Jeff Sessions instructed", seed)
    alone = example_questions([untitled])
    assert alone[:2] == [
        "What does the document say about the death penalty?",
        "Summarise the document.",
    ]
    beside = example_questions([handbook, untitled], limit=3)
    assert beside == [
        "What does the handbook say about sick leave?",
        "What do the documents say about the death penalty?",
        "Summarise “Acme Employee Handbook”.",
    ]
    assert example_questions([]) == []

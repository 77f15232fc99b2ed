"""The conversation store (SQLite): what is written when, reopening after a restart or a
crash mid-answer, feedback, and errors that name the bad value. No model, no web."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chatbot.conversations import (
    DOWN,
    UP,
    ConversationError,
    ConversationStore,
    default_path,
    title_for,
)
from chatbot.types import Answer, Citation, Passage, Trace


def answer(text: str = "Tuesday [1].") -> Answer:
    p = Passage("c1", "They met on Tuesday.", "council.txt", "Council", 0, 20, n=1)
    c = Citation(1, "council.txt", "Council", None, "c1", "They met on Tuesday.", 0, 20)
    trace = Trace(standalone_query="When did they meet?", passages=[p], timings_ms={"x": 1.0})
    return Answer(text=text, declined=False, citations=[c], short_answer="Tuesday", trace=trace)


def test_answer_round_trips_through_a_dict():
    a = answer()
    assert Answer.from_dict(a.to_dict()) == a


def test_turns_survive_a_restart_and_a_crash_loses_only_the_unfinished_answer(tmp_path: Path):
    db = tmp_path / "index" / "conversations.sqlite3"
    store = ConversationStore(db)
    cid = store.create("When did  the council\nmeet?", "docs")
    first = store.ask(cid, "When did the council meet?")
    store.answer(first, answer().to_dict())
    second = store.ask(cid, "And where?")  # the app dies before this answer completes
    # A second connection (the restarted app) sees everything committed so far.
    again = ConversationStore(db)
    (conv,) = again.list()
    assert (conv.id, conv.collection, conv.turns) == (cid, "docs", 2)
    assert conv.title == "When did the council meet?"
    done, unfinished = again.turns(cid)
    assert done.id == first and Answer.from_dict(done.answer) == answer()
    assert unfinished.id == second and unfinished.answer is None
    assert [t.id for t in again.turns(cid, answered=True)] == [first]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = raw.execute("SELECT answer, citations, trace FROM turns WHERE id = ?", (first,))
        text, citations, trace = row.fetchone()
    assert text == "Tuesday [1]." and '"quote"' in citations and "standalone_query" in trace
    store.close()
    again.close()


def test_list_is_newest_first_and_rename_delete_work(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3")
    old = store.create("Old question?", "docs")
    new = store.create("New question?", "docs")
    assert [c.id for c in store.list()] == [new, old]
    store.ask(old, "Back to the old one?")
    assert [c.id for c in store.list()] == [old, new]
    store.rename(old, "  Renamed  ")
    assert store.get(old).title == "Renamed"
    store.delete(old)
    assert [c.id for c in store.list()] == [new]
    with pytest.raises(ConversationError, match=f"no conversation '{old}'"):
        store.rename(old, "x")
    with pytest.raises(ConversationError, match="must not be empty, got ''"):
        store.rename(new, "   ")
    with pytest.raises(ConversationError, match="no conversation 'nope'"):
        store.ask("nope", "Q?")


def test_feedback_is_stored_with_an_answered_turn_only(tmp_path: Path):
    store = ConversationStore(tmp_path / "c.sqlite3")
    cid = store.create("Q1?", "docs")
    t1 = store.ask(cid, "Q1?")
    store.answer(t1, answer().to_dict())
    t2 = store.ask(cid, "Q2?")
    store.answer(t2, answer("Monday [1].").to_dict())
    unanswered = store.ask(cid, "Q3?")
    with pytest.raises(ConversationError, match=f"no answered turn {unanswered}"):
        store.judge(unanswered, UP)
    with pytest.raises(ConversationError, match="rating must be 1, -1 or None, got 5"):
        store.judge(t1, 5)
    store.judge(t1, UP, comment=" good ")
    store.judge(t2, DOWN, correction=" on   Tuesday ")
    judged = store.judged()
    assert [(t.id, [b.id for b in before]) for t, before in judged] == [(t1, []), (t2, [t1])]
    assert judged[0][0].comment == "good" and judged[1][0].correction == "on Tuesday"
    store.judge(t1, None)
    assert [t.id for t, _ in store.judged()] == [t2]


def test_title_and_default_path(tmp_path: Path):
    assert title_for(" a\n b ") == "a b"
    long = title_for("word " * 40)
    assert len(long) == 80 and long.endswith("…")
    assert default_path(tmp_path) == tmp_path / "conversations.sqlite3"
    assert default_path(tmp_path, tmp_path / "x.db") == tmp_path / "x.db"

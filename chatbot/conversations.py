"""Saved conversations: an SQLite file (WAL) of conversations and their turns, each turn's
question, answer (text, citations, trace as JSON), timestamps and feedback.

A turn's question is written when it is asked and its answer when the answer completes, so
a crash mid-answer loses only that answer. Pure storage: no web code, so ``eval`` reads it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DB_NAME = "conversations.sqlite3"
TITLE_CHARS = 80
UP, DOWN = 1, -1

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    collection TEXT NOT NULL,
    user TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    asked_at REAL NOT NULL,
    answer TEXT,
    citations TEXT,
    trace TEXT,
    answer_json TEXT,
    answered_at REAL,
    rating INTEGER,
    comment TEXT NOT NULL DEFAULT '',
    correction TEXT NOT NULL DEFAULT '',
    not_in_documents INTEGER NOT NULL DEFAULT 0,
    judged_at REAL
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation_id, id);
"""


class ConversationError(ValueError):
    """A conversation or turn that does not exist, or a bad value; the message names it."""


def default_path(index_dir: Path, override: str | Path = "") -> Path:
    """Where the conversations live: ``override`` when set, else beside the index."""
    return Path(override).expanduser() if str(override) else Path(index_dir) / DB_NAME


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    collection: str
    created_at: float
    updated_at: float
    turns: int = 0


@dataclass(frozen=True)
class Turn:
    id: int
    conversation_id: str
    question: str
    asked_at: float
    answer: dict[str, Any] | None = None  # ``Answer.to_dict()``; None: never answered
    answered_at: float | None = None
    rating: int | None = None  # UP, DOWN or None
    comment: str = ""
    correction: str = ""
    not_in_documents: bool = False

    @property
    def answer_text(self) -> str:
        return self.answer["text"] if self.answer else ""


def title_for(question: str) -> str:
    """A conversation's title: its first question on one line, cut to ``TITLE_CHARS``."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


class ConversationStore:
    """Conversations in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ---- conversations
    def create(self, question: str, collection: str, user: str | None = None) -> str:
        """A new conversation titled by its first question; returns its id."""
        cid, now = uuid.uuid4().hex, time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                (cid, title_for(question), collection, user, now, now),
            )
        return cid

    def list(self, limit: int = 200, user: str | None = None) -> list[Conversation]:
        """Conversations, the most recently used first (only ``user``'s when given)."""
        mine = "" if user is None else "WHERE c.user = ? "
        rows = self._query(
            "SELECT c.*, (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS n "
            f"FROM conversations c {mine}ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
            (limit,) if user is None else (user, limit),
        )
        return [
            Conversation(
                r["id"], r["title"], r["collection"], r["created_at"], r["updated_at"], r["n"]
            )
            for r in rows
        ]

    def get(self, cid: str) -> Conversation:
        for r in self._query("SELECT * FROM conversations WHERE id = ?", (cid,)):
            n = self._query("SELECT COUNT(*) FROM turns WHERE conversation_id = ?", (cid,))
            return Conversation(
                r["id"], r["title"], r["collection"], r["created_at"], r["updated_at"], n[0][0]
            )
        raise ConversationError(f"no conversation {cid!r}")

    def owner(self, cid: str) -> str | None:
        """The user a conversation belongs to (None: saved without accounts)."""
        for r in self._query("SELECT user FROM conversations WHERE id = ?", (cid,)):
            return r["user"]
        raise ConversationError(f"no conversation {cid!r}")

    def rename(self, cid: str, title: str) -> None:
        title = " ".join(title.split())
        if not title:
            raise ConversationError(f"a title must not be empty, got {title!r}")
        with self._tx() as db:
            if not db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, cid)
            ).rowcount:
                raise ConversationError(f"no conversation {cid!r}")

    def delete(self, cid: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (cid,))
            if not db.execute("DELETE FROM conversations WHERE id = ?", (cid,)).rowcount:
                raise ConversationError(f"no conversation {cid!r}")

    # ---- turns
    def ask(self, cid: str, question: str) -> int:
        """Record a question before it is answered; returns the turn's id."""
        now = time.time()
        with self._tx() as db:
            if not db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, cid)
            ).rowcount:
                raise ConversationError(f"no conversation {cid!r}")
            cur = db.execute(
                "INSERT INTO turns (conversation_id, question, asked_at) VALUES (?, ?, ?)",
                (cid, question, now),
            )
            return int(cur.lastrowid or 0)

    def answer(self, turn_id: int, answer: dict[str, Any]) -> None:
        """Record a turn's completed answer (``Answer.to_dict()``)."""
        with self._tx() as db:
            done = db.execute(
                "UPDATE turns SET answer = ?, citations = ?, trace = ?, answer_json = ?, "
                "answered_at = ? WHERE id = ?",
                (
                    answer["text"],
                    json.dumps(answer.get("citations", []), ensure_ascii=False),
                    json.dumps(answer.get("trace", {}), ensure_ascii=False),
                    json.dumps(answer, ensure_ascii=False),
                    time.time(),
                    turn_id,
                ),
            ).rowcount
            if not done:
                raise ConversationError(f"no turn {turn_id!r}")

    def turns(self, cid: str, *, answered: bool = False) -> list[Turn]:
        """A conversation's turns in order (only the answered ones when ``answered``)."""
        sql = "SELECT * FROM turns WHERE conversation_id = ?"
        if answered:
            sql += " AND answer_json IS NOT NULL"
        return [_turn(r) for r in self._query(sql + " ORDER BY id", (cid,))]

    def turn(self, turn_id: int) -> Turn:
        rows = self._query("SELECT * FROM turns WHERE id = ?", (turn_id,))
        if not rows:
            raise ConversationError(f"no turn {turn_id!r}")
        return _turn(rows[0])

    # ---- feedback
    def judge(
        self,
        turn_id: int,
        rating: int | None,
        *,
        comment: str = "",
        correction: str = "",
        not_in_documents: bool = False,
    ) -> None:
        """Store feedback on an answered turn: thumbs ``UP``/``DOWN`` (None clears it), a
        comment, and on a thumbs-down the right answer or that the documents don't say."""
        if rating not in (UP, DOWN, None):
            raise ConversationError(f"rating must be {UP}, {DOWN} or None, got {rating!r}")
        with self._tx() as db:
            done = db.execute(
                "UPDATE turns SET rating = ?, comment = ?, correction = ?, "
                "not_in_documents = ?, judged_at = ? WHERE id = ? AND answer_json IS NOT NULL",
                (
                    rating,
                    comment.strip(),
                    " ".join(correction.split()),
                    int(not_in_documents),
                    time.time(),
                    turn_id,
                ),
            ).rowcount
            if not done:
                raise ConversationError(f"no answered turn {turn_id!r}")

    def judged(self) -> list[tuple[Turn, list[Turn]]]:
        """Every judged turn, oldest first, with the answered turns before it."""
        out = []
        rows = self._query("SELECT * FROM turns WHERE rating IS NOT NULL ORDER BY id")
        for r in rows:
            turn = _turn(r)
            before = [t for t in self.turns(turn.conversation_id, answered=True) if t.id < turn.id]
            out.append((turn, before))
        return out


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(
        id=r["id"],
        conversation_id=r["conversation_id"],
        question=r["question"],
        asked_at=r["asked_at"],
        answer=json.loads(r["answer_json"]) if r["answer_json"] else None,
        answered_at=r["answered_at"],
        rating=r["rating"],
        comment=r["comment"],
        correction=r["correction"],
        not_in_documents=bool(r["not_in_documents"]),
    )

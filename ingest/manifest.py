"""The reingest state: which documents are in the index, with what content and which chunk ids.

A small SQLite file beside the Chroma data. Writes go through a journal (``pending``) so a run
killed at any point can be finished by the next one without duplicates or orphans.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# The default collection: its manifest stays at the index root, where every index built
# before collections has it (ingest.config's default collection name, defined here because
# the config imports this module).
DEFAULT_COLLECTION = "docs"
FILENAME = "manifest.sqlite3"
COLLECTIONS_DIR = "collections"  # in index_dir: the manifest of every other collection

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_key TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    source TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    title TEXT NOT NULL,
    date TEXT,
    chunk_ids TEXT NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (doc_key TEXT PRIMARY KEY, chunk_ids TEXT NOT NULL);
"""


@dataclass(frozen=True)
class DocRecord:
    """One ingested document as the manifest knows it."""

    doc_key: str
    root: str
    source: str
    content_hash: str
    fingerprint: str
    size: int
    mtime_ns: int
    title: str
    date: str | None
    chunk_ids: tuple[str, ...]
    ingested_at: float

    @property
    def n_chunks(self) -> int:
        return len(self.chunk_ids)


def manifest_path(index_dir: Path, collection: str) -> Path:
    """Where the manifest of ``collection`` lives: ``INDEX_DIR/manifest.sqlite3`` for the
    default collection (so indexes built before collections read as they are), else
    ``INDEX_DIR/collections/NAME/manifest.sqlite3``. Every use of the path goes through here."""
    if collection == DEFAULT_COLLECTION:
        return Path(index_dir) / FILENAME
    return Path(index_dir) / COLLECTIONS_DIR / collection / FILENAME


def doc_key(root: str, source: str) -> str:
    return f"{root}\x00{source}"


class Manifest:
    """SQLite-backed record of documents and in-flight writes."""

    def __init__(self, index_dir: Path, collection: str, *, read_only: bool = False) -> None:
        path = manifest_path(index_dir, collection)
        if read_only:
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            # Read the schema now: a damaged file fails here, not mid-answer.
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            self._db.commit()
        self.path = path

    @staticmethod
    def exists(index_dir: Path, collection: str) -> bool:
        return manifest_path(index_dir, collection).exists()

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._db:
            yield self._db

    # ---- meta
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def generation(self) -> int:
        """A counter bumped by every run that changed the index (for caches built on it)."""
        return int(self.get_meta("generation") or 0)

    # ---- documents
    def documents(self, root: str | None = None) -> dict[str, DocRecord]:
        sql = "SELECT * FROM documents" + (" WHERE root=?" if root is not None else "")
        rows = self._db.execute(sql, (root,) if root is not None else ())
        return {r[0]: _record(r) for r in rows}

    def all_chunk_ids(self) -> set[str]:
        ids: set[str] = set()
        for (raw,) in self._db.execute("SELECT chunk_ids FROM documents"):
            ids.update(json.loads(raw))
        return ids

    def touch(self, key: str, size: int, mtime_ns: int) -> None:
        with self._db:
            self._db.execute(
                "UPDATE documents SET size=?, mtime_ns=? WHERE doc_key=?", (size, mtime_ns, key)
            )

    def forget_content(self, keys: Iterable[str]) -> None:
        """Make the next plan read these documents again (their chunks and ids are kept)."""
        with self._db:
            self._db.executemany(
                "UPDATE documents SET content_hash='', size=-1 WHERE doc_key=?",
                [(k,) for k in keys],
            )

    # ---- journal
    def begin(self, entries: Iterable[tuple[str, list[str]]]) -> None:
        """Record the chunk ids about to be written, before touching Chroma."""
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO pending VALUES (?, ?)",
                [(key, json.dumps(ids)) for key, ids in entries],
            )

    def pending(self) -> dict[str, list[str]]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT * FROM pending")}

    def commit(self, records: Iterable[DocRecord], deleted: Iterable[str] = ()) -> None:
        """Make written documents current and forget deleted ones, in one transaction."""
        records = list(records)
        deleted = list(deleted)
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO documents VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.doc_key,
                        r.root,
                        r.source,
                        r.content_hash,
                        r.fingerprint,
                        r.size,
                        r.mtime_ns,
                        r.title,
                        r.date,
                        json.dumps(list(r.chunk_ids)),
                        r.ingested_at,
                    )
                    for r in records
                ],
            )
            keys = [r.doc_key for r in records] + deleted
            self._db.executemany("DELETE FROM pending WHERE doc_key=?", [(k,) for k in keys])
            self._db.executemany("DELETE FROM documents WHERE doc_key=?", [(k,) for k in deleted])
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('generation', "
                "COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key='generation'), 0) + 1)"
            )

    def clear_pending(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM pending")


def _record(row: tuple) -> DocRecord:
    return DocRecord(
        doc_key=row[0],
        root=row[1],
        source=row[2],
        content_hash=row[3],
        fingerprint=row[4],
        size=row[5],
        mtime_ns=row[6],
        title=row[7],
        date=row[8],
        chunk_ids=tuple(json.loads(row[9])),
        ingested_at=row[10],
    )


def now() -> float:
    return time.time()

"""``--reset``: drop the collection and the manifest to rebuild them from the documents, even
when they cannot be opened: a damaged file is moved aside (``NAME.damaged-YYYYmmdd-HHMMSS``),
never deleted, and the documents are never touched."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

from ingest.collection import CHROMA_SUBDIR, chroma_client
from ingest.config import IngestSettings
from ingest.damage import CHROMA_DB, forget_client, guard, kind, reason_of
from ingest.errors import IndexDamagedError
from ingest.layout import LayoutStore
from ingest.lock import write_lock
from ingest.manifest import manifest_path

logger = logging.getLogger(__name__)

SIDECARS = ("-wal", "-shm", "-journal")  # SQLite's files beside a database


def sqlite_damage(path: Path) -> str | None:
    """Why the SQLite database at ``path`` cannot be read (its quick check, read-only), or
    None when it reads whole."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = [r[0] for r in db.execute("PRAGMA quick_check")]
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        return reason_of(exc) if kind(exc) in ("damaged", "full") else None
    return None if rows == ["ok"] else "; ".join(map(str, rows[:3]))


def move_aside(path: Path) -> list[tuple[Path, Path]]:
    """Rename ``path`` (a folder, or a file with its SQLite sidecars) to
    ``path.damaged-STAMP``; returns the (from, to) pairs."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
        n += 1
    moved = [(path, target)]
    if path.is_file():
        moved += [
            (Path(f"{path}{s}"), Path(f"{target}{s}"))
            for s in SIDECARS
            if Path(f"{path}{s}").exists()
        ]
    for source, dest in moved:
        os.replace(source, dest)
        logger.warning("moved the damaged %s aside to %s", source, dest)
    return moved


def reset_index(settings: IngestSettings) -> list[tuple[Path, Path]]:
    """Drop the collection (embedded, or on the Chroma server) and the local manifest (other
    collections are kept). A damaged embedded Chroma store or manifest is moved aside
    instead; returns what was moved, as (from, to) pairs."""
    with write_lock(settings.index_dir):
        return drop_index(settings)


def drop_index(settings: IngestSettings) -> list[tuple[Path, Path]]:
    """``reset_index``'s work, for a caller that holds the write lock already."""
    moved: list[tuple[Path, Path]] = []
    chroma_dir = settings.index_dir / CHROMA_SUBDIR
    damaged = not settings.uses_server and (chroma_dir / CHROMA_DB).exists()
    damaged = damaged and sqlite_damage(chroma_dir / CHROMA_DB) is not None
    if not damaged:
        try:
            _drop_collection(settings)
        except IndexDamagedError:
            if settings.uses_server:
                raise
            damaged = True
    if damaged:
        forget_client(settings)
        moved += move_aside(chroma_dir)
    manifest = manifest_path(settings.index_dir, settings.collection)
    if manifest.exists() and sqlite_damage(manifest) is not None:
        moved += move_aside(manifest)
    elif manifest.exists():
        manifest.unlink()
        for extra in SIDECARS:
            Path(f"{manifest}{extra}").unlink(missing_ok=True)
    LayoutStore(settings.index_dir, settings.collection).clear()
    return moved


def _drop_collection(settings: IngestSettings) -> None:
    with guard(settings):
        client = chroma_client(settings)
        try:
            client.delete_collection(settings.collection)
        except Exception as exc:
            if kind(exc) is not None:  # damage: guard names it
                raise
            logger.debug("no collection %s to delete", settings.collection)

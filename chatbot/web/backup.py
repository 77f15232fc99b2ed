"""``python -m chatbot backup DIR`` / ``restore DIR``: the state that cannot be rebuilt from the
documents, copied while the app runs.

What is copied: the conversations with their feedback (SQLite), the users file, the eval cases
saved from the chat, and each collection's manifest (which documents, from which folders, it
was built from). SQLite files are copied with SQLite's online backup API, so a copy taken while
the app writes is a consistent snapshot (a write in flight is in it or not, never half). The
index itself is not copied: it is rebuilt from the documents (``python -m ingest FOLDER``).

Restore puts the conversations, the users file and the eval cases back where the settings say,
refusing to overwrite what is there unless forced. A manifest says which documents an index
holds; put back beside an index that lacks them it would make the next ingest skip them, so
restore writes the manifests under ``INDEX_DIR/restored-manifests/`` and prints the ingest
commands that rebuild each collection from its folders.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from chatbot.web.config import WebSettings
from ingest import manifest_files
from ingest.config import DEFAULT_COLLECTION

__all__ = ["BackupError", "Restored", "backup", "restore"]

MANIFEST = "backup.json"
CONVERSATIONS = "conversations.sqlite3"
USERS = "users"
EVAL_CASES = "eval-cases.jsonl"
MANIFESTS = "manifests"
RESTORED_MANIFESTS = "restored-manifests"
FORMAT = 1


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message names the file or folder."""


@dataclass
class Restored:
    written: list[Path] = field(default_factory=list)
    rebuild: list[str] = field(default_factory=list)  # ingest commands, one per collection


def _copy_sqlite(src: Path, dst: Path) -> int:
    """Copy the SQLite file ``src`` to ``dst`` with the online backup API (a consistent
    snapshot while other connections write); returns the copy's size in bytes."""
    tmp = dst.with_name(dst.name + ".part")
    tmp.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    try:
        target = sqlite3.connect(tmp)
        try:
            source.backup(target)
            check = target.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy of {src} failed its integrity check: {check}")
        finally:
            target.close()
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"cannot copy {src}: {exc}") from exc
    finally:
        source.close()
    tmp.replace(dst)
    return dst.stat().st_size


def backup(settings: WebSettings, out: Path) -> dict:
    """Copy the state that cannot be rebuilt into the folder ``out`` (new or empty); returns
    what ``out/backup.json`` records."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"backup folder {out} is not empty: name a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    record: dict = {"format": FORMAT, "created_at": time.time(), "files": {}}
    conversations = settings.conversations_path
    if conversations.is_file():
        record["files"][CONVERSATIONS] = _copy_sqlite(conversations, out / CONVERSATIONS)
    if settings.users_file and Path(settings.users_file).is_file():
        shutil.copy2(settings.users_file, out / USERS)  # written atomically: always whole
        (out / USERS).chmod(0o600)
        record["files"][USERS] = (out / USERS).stat().st_size
    if settings.eval_cases_file.is_file():
        shutil.copy2(settings.eval_cases_file, out / EVAL_CASES)
        record["files"][EVAL_CASES] = (out / EVAL_CASES).stat().st_size
    manifests = manifest_files(settings.chat.index.index_dir)
    if manifests:
        (out / MANIFESTS).mkdir()
    for name, path in manifests.items():
        record["files"][f"{MANIFESTS}/{name}.sqlite3"] = _copy_sqlite(
            path, out / MANIFESTS / f"{name}.sqlite3"
        )
    (out / MANIFEST).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def restore(settings: WebSettings, src: Path, *, force: bool = False) -> Restored:
    """Put a backup made by ``backup`` back where ``settings`` keep each file."""
    src = Path(src)
    try:
        record = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupError(f"not a docqa backup: {src / MANIFEST} is missing") from exc
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read {src / MANIFEST}: {exc}") from exc
    if record.get("format") != FORMAT:
        raise BackupError(f"{src / MANIFEST} has format {record.get('format')!r}, not {FORMAT}")
    files = record.get("files", {})
    targets: list[tuple[Path, Path, bool]] = []  # (from, to, sqlite)
    if CONVERSATIONS in files:
        targets.append((src / CONVERSATIONS, settings.conversations_path, True))
    if USERS in files:
        if not settings.users_file:
            raise BackupError(f"{src / USERS} holds users: set DOCQA_USERS_FILE to where they go")
        targets.append((src / USERS, Path(settings.users_file), False))
    if EVAL_CASES in files:
        targets.append((src / EVAL_CASES, settings.eval_cases_file, False))
    index_dir = Path(settings.chat.index.index_dir)
    names = [k.split("/", 1)[1].removesuffix(".sqlite3") for k in files if k.startswith(MANIFESTS)]
    for name in names:
        to = index_dir / RESTORED_MANIFESTS / f"{name}.sqlite3"
        targets.append((src / MANIFESTS / f"{name}.sqlite3", to, True))
    for origin, to, _ in targets:
        if not origin.is_file():
            raise BackupError(f"the backup lacks {origin}")
        if to.exists() and not force:
            raise BackupError(f"{to} exists: move it away first, or restore with --force")
    done = Restored()
    for origin, to, is_sqlite in targets:
        to.parent.mkdir(parents=True, exist_ok=True)
        if is_sqlite:
            for stale in (to.with_name(to.name + "-wal"), to.with_name(to.name + "-shm")):
                stale.unlink(missing_ok=True)
            _copy_sqlite(origin, to)
        else:
            shutil.copy2(origin, to)
        done.written.append(to)
    for name in names:
        done.rebuild.extend(
            _rebuild_commands(index_dir / RESTORED_MANIFESTS / f"{name}.sqlite3", name)
        )
    return done


def _rebuild_commands(manifest: Path, collection: str) -> list[str]:
    db = sqlite3.connect(f"file:{manifest}?mode=ro", uri=True)
    try:
        roots = sorted({row[0] for row in db.execute("SELECT DISTINCT root FROM documents")})
    except sqlite3.Error:
        return []
    finally:
        db.close()
    flag = "" if collection == DEFAULT_COLLECTION else f" --collection {collection}"
    return [f"python -m ingest {root}{flag}" for root in roots]

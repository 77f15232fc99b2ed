"""A damaged or unwritable index, told in one line: database errors from Chroma's
``chroma.sqlite3`` or the manifest become ``IndexDamagedError`` (a file that cannot be read,
with the ``--reset`` remedy) or ``IndexWriteError`` (a write that failed: a full disk),
naming the file and what to do.

``guard`` does the translation; ``DocIndex``, the ingest pipeline and the recovery commands
run their database calls under it, so every entry point only catches ``IngestError``.
"""

from __future__ import annotations

import errno
import functools
import inspect
import logging
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from ingest.config import PROJECT_ROOT, IngestSettings
from ingest.errors import (
    IndexDamagedError,
    IndexMissingError,
    IndexUnavailableError,
    IndexWriteError,
    IngestError,
)
from ingest.manifest import manifest_path

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

CHROMA_DB = "chroma.sqlite3"
# SQLite primary result codes (https://sqlite.org/rescode.html)
SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 10, 11, 13, 14, 26
DAMAGED_CODES = {SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_CANTOPEN, SQLITE_NOTADB}
DAMAGED_WORDS = ("not a database", "malformed", "corrupt", "unable to open database", "hnsw")
FULL_WORDS = ("disk is full", "no space left")
FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# Disk a chunk takes in Chroma (vector in the log and the HNSW index, text, metadata, full-text
# index): ~6.5 KB measured at 10k-100k chunks (README), so 16 KB plus its text is ample.
CHUNK_BYTES = 16 * 1024
FULL_FREE_BYTES = 64 * 2**20  # below this, a Chroma failure without a reason is a full disk
_CODE = re.compile(r"\(code: (\d+)\)")
_PREFIXES = ("Database error: ", "error returned from database: ")


def reset_remedy(index_dir: Path) -> str:
    """How to rebuild the index at ``index_dir`` from the documents."""
    default = Path(PROJECT_ROOT / ".index").resolve()
    flag = "" if Path(index_dir).resolve() == default else f" --index-dir {index_dir}"
    return (
        f"run 'python -m ingest DIR{flag} --reset' to rebuild it from the documents "
        "(the damaged files are kept aside)"
    )


def reason_of(exc: BaseException) -> str:
    """The database's own words, on one line, without Chroma's wrapping."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    for prefix in _PREFIXES:
        text = text.removeprefix(prefix)
    return _CODE.sub("", text).strip() or type(exc).__name__


def _sqlite_code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        found = _CODE.search(str(exc))
        code = int(found.group(1)) if found else None
    return None if code is None else code & 0xFF


def _is_chroma_error(exc: BaseException) -> bool:
    from chromadb.errors import InternalError

    return isinstance(exc, InternalError)


def kind(exc: BaseException) -> str | None:
    """'full' (no space to write), 'damaged' (a file that cannot be read), 'failed' (Chroma
    failed without saying why) or None: not a problem of the index files."""
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        if exc.errno in FULL_ERRNOS:
            return "full"
        return "damaged" if exc.errno == errno.EIO else None
    if not (isinstance(exc, sqlite3.DatabaseError) or _is_chroma_error(exc)):
        return None
    text, code = str(exc).lower(), _sqlite_code(exc)
    if code == SQLITE_FULL or any(w in text for w in FULL_WORDS):
        return "full"
    if code in DAMAGED_CODES or any(w in text for w in DAMAGED_WORDS):
        return "damaged"
    return "failed" if _is_chroma_error(exc) else None  # "database is locked" is not damage


def _unreachable(exc: BaseException) -> bool:
    """A connection to the Chroma server failed (refused, reset, timed out)."""
    import httpx

    if isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError):
        return True
    return "could not connect to a chroma server" in str(exc).lower()


def _collection_missing(exc: BaseException) -> bool:
    from chromadb.errors import NotFoundError

    text = str(exc).lower()
    return isinstance(exc, NotFoundError) or ("collection" in text and "does not exist" in text)


def server_error(exc: BaseException, settings: IngestSettings) -> IngestError | None:
    """The one-line error for a Chroma server that cannot be reached, or that lost the
    collection (it came back empty); None for anything else."""
    where = f"{settings.chroma_host}:{settings.chroma_port}"
    if _unreachable(exc):
        return IndexUnavailableError(
            f"the index server at {where} is unreachable: answers resume when it is back"
        )
    if _collection_missing(exc):
        flag = f" --collection {settings.collection}" if settings.collection != "docs" else ""
        return IndexMissingError(
            f"collection {settings.collection!r} is missing on the index server at {where}: "
            f"run python -m ingest DIR --chroma-host {settings.chroma_host} --chroma-port "
            f"{settings.chroma_port}{flag} to rebuild it"
        )
    return None


def _free_bytes(path: Path) -> int:
    for folder in (path, *path.parents):
        if folder.exists():
            return shutil.disk_usage(folder).free
    return 0


def _free(path: Path) -> str:
    return f"{_free_bytes(path) / 2**20:.1f} MB free there"


def index_error(
    exc: BaseException, settings: IngestSettings, *, writing: bool = False
) -> IngestError | None:
    """The one-line error for ``exc`` raised by the index of ``settings``, or None when it
    is not about the index files (a Chroma error from a server is left as it is)."""
    if settings.uses_server:
        server = server_error(exc, settings)
        if server is not None:
            return server
    found = kind(exc)
    if found is None:
        return None
    if isinstance(exc, sqlite3.Error):
        path = manifest_path(settings.index_dir, settings.collection)
    elif isinstance(exc, OSError):
        path = Path(exc.filename) if exc.filename else settings.index_dir
    elif settings.uses_server:
        return None
    else:
        path = settings.index_dir / "chroma" / CHROMA_DB
    reason = reason_of(exc)
    if found == "failed" and _free_bytes(path) < FULL_FREE_BYTES:
        found = "full"  # Chroma says "Failed to apply logs" when SQLite could not write
    if found == "damaged" or (found == "failed" and not writing):
        return IndexDamagedError(path, reason, reset_remedy(settings.index_dir))
    if not writing:
        return IndexWriteError(
            f"the disk holding the index at {path} is full ({reason}; {_free(path)}): free "
            "some space, then run the ingest again to finish its last run"
        )
    what = "the disk is full" if found == "full" else "the write failed"
    return disk_full(path, f"{what} ({reason}; {_free(path)})")


def disk_full(path: Path, why: str) -> IndexWriteError:
    return IndexWriteError(
        f"could not write to the index at {path}: {why}: free some space and run the ingest "
        "again; the index still serves what it served before this run"
    )


def ensure_space(settings: IngestSettings, texts: list[str]) -> None:
    """Refuse to write a wave of chunks (``texts``) the disk has no room for, before any of
    it is written: a write that fails half way leaves Chroma's log unapplied, and Chroma
    then cannot even be read until space is freed."""
    if settings.uses_server:
        return
    need = len(texts) * CHUNK_BYTES + 4 * sum(len(t.encode()) for t in texts)
    free = _free_bytes(settings.index_dir)
    if free < need:
        raise disk_full(
            settings.index_dir,
            f"the disk is full ({free / 2**20:.1f} MB free there, the next {len(texts)} "
            f"chunks need about {need / 2**20:.1f} MB)",
        )


@contextmanager
def guard(settings: IngestSettings, *, writing: bool = False) -> Iterator[None]:
    """Run database calls of the index of ``settings``; their damage and disk-full errors
    leave as ``IndexDamagedError`` / ``IndexWriteError`` (others pass unchanged)."""
    try:
        yield
    except IngestError:
        raise
    except Exception as exc:
        error = index_error(exc, settings, writing=writing)
        if error is None:
            raise
        logger.debug("index error", exc_info=True)
        if isinstance(error, IndexWriteError) and not settings.uses_server:
            forget_client(settings)  # a failed Chroma write can wedge the cached client
        raise error from exc


def forget_client(settings: IngestSettings) -> None:
    """Drop Chroma's cached client of the embedded index, so the next one opens the files
    afresh (after they were moved aside, or a write failed)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient._identifier_to_system.pop(str(settings.index_dir / "chroma"), None)


def guarded(*, writing: bool = False) -> Callable[[F], F]:
    """Decorate a method of an object with ``settings`` (or a constructor taking them
    first) to run it under ``guard``; a generator is guarded while it is iterated."""

    def wrap(method: F) -> F:
        if inspect.isgeneratorfunction(method):

            @functools.wraps(method)
            def iterate(self: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
                with guard(self.settings, writing=writing):
                    yield from method(self, *args, **kwargs)

            return cast(F, iterate)

        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            # A constructor has no ``self.settings`` yet: its first argument is them.
            settings = self.settings if hasattr(self, "settings") else args[0]
            with guard(settings, writing=writing):
                return method(self, *args, **kwargs)

        return cast(F, call)

    return wrap

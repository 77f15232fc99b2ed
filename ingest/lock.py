"""The write lock of an index folder: one ingest run writes to it at a time.

An ``flock`` on ``index_dir/ingest.lock``, held exclusively by the writer for its whole run.
Readers only probe it (``ingest_running``), with a shared lock held for microseconds, so the
writer retries briefly before it gives up: only another writer makes it fail.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingest.errors import IngestError

WRITE_LOCK = "ingest.lock"  # in index_dir: held (flock) by the ingest run writing to it
RETRY_S = 0.5  # how long a writer retries while readers probe the lock


class WriteLockBusy(IngestError):
    """Another ingest run holds the write lock (a watcher retries later)."""


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Held (flock) by the ingest run writing to ``index_dir``: one writer at a time.

    Raises WriteLockBusy (an IngestError) when another writer holds it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / WRITE_LOCK, "w") as fh:
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WriteLockBusy(
                        f"another ingest is writing to {index_dir}; try again when it ends"
                    ) from None
                time.sleep(0.01)
        yield


def ingest_running(index_dir: Path) -> bool:
    """Whether an ingest run holds ``index_dir``'s ``write_lock`` (any process)."""
    try:
        with open(index_dir / WRITE_LOCK, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh, fcntl.LOCK_UN)
            return False
    except OSError:
        return False

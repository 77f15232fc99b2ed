"""A background writer: runs write calls in order on one thread, at most ``depth`` waiting,
so the database writes of one batch overlap the embedding of the next."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

WRITE_QUEUE = 2  # batches embedded and waiting for the writer, at most


class BackgroundWriter:
    """``submit`` queues a call (blocking while ``depth`` wait); ``close`` waits for every
    call to finish and raises the first one's error, after which the rest were skipped.
    Used as a context manager, leaving the block with an error stops the writer without
    running what is still queued."""

    def __init__(self, depth: int = WRITE_QUEUE, name: str = "ingest-writer") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            maxsize=depth
        )
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._stop:
                continue  # drain: the caller learns of an error at its next submit or close
            fn, args = item
            try:
                fn(*args)
            except BaseException as exc:  # handed to the caller's thread
                self._error = exc

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._queue.put((fn, args))

    def close(self) -> None:
        """Wait for the queued calls; raise the first error one of them raised."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        self._stop = True  # the block failed: run nothing more, but let the thread finish
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

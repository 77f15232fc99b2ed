"""The errors ``ingest`` raises for the user to fix: ``str()`` is one line naming the bad value."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """Something the user must fix; ``str()`` is one line naming the bad value."""


class IndexMissingError(IngestError):
    pass


class IndexMismatchError(IngestError):
    pass


class IndexUnavailableError(IngestError):
    """The Chroma server holding the index cannot be reached now; the request can be retried
    once it is back (nothing is wrong with the index)."""


class LoadError(Exception):
    """A file that cannot be ingested; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        reason = " ".join(str(reason).split())  # library messages can span lines
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class IndexDamagedError(IngestError):
    """A file of the index cannot be read (damaged by a disk error, a full disk, a bad copy).

    ``path`` is the file, ``reason`` what the database said; ``str()`` is one line naming
    both and the remedy."""

    def __init__(self, path: Path | str, reason: str, remedy: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"the index at {self.path} is damaged ({self.reason}): {remedy}")


class IndexWriteError(IngestError):
    """A write to the index failed (a full disk, an I/O error); the run stopped, the index
    still serves what it served before it (see ``ingest.damage``)."""

"""The errors ``ingest`` raises for the user to fix: ``str()`` is one line naming the bad value."""

from __future__ import annotations

from pathlib import Path


class IngestError(Exception):
    """Something the user must fix; ``str()`` is one line naming the bad value."""


class IndexMissingError(IngestError):
    pass


class IndexMismatchError(IngestError):
    pass


class LoadError(Exception):
    """A file that cannot be ingested; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        reason = " ".join(str(reason).split())  # library messages can span lines
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

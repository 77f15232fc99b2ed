"""The documents folder the web app writes to: safe names for uploads, saving and removing."""

from __future__ import annotations

import logging
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ingest import SUPPORTED_EXTENSIONS

logger = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._ -]+")


class UploadError(ValueError):
    """A file the documents folder will not take; ``str()`` names it and says why."""


def safe_name(name: str) -> str:
    """A file name that is only a name: no folders, no hidden or odd characters, a supported
    extension kept. Raises ``UploadError`` when nothing usable is left."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = unicodedata.normalize("NFKC", base)
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    ext = "." + ext.lower() if ext else ""
    if ext not in SUPPORTED_EXTENSIONS:
        raise UploadError(
            f"{name!r}: unsupported file type {ext or '(none)'!r} "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})"
        )
    stem = _UNSAFE_RE.sub("_", stem)
    stem = re.sub(r"\s*_+\s*", "_", re.sub(r"\s+", " ", stem)).strip(" ._-")
    stem = stem[: MAX_NAME_CHARS - len(ext)].rstrip(" ._-")
    if not stem:
        stem = "document"
    return stem + ext


def inside(folder: Path, path: Path) -> bool:
    """Whether ``path`` resolves to somewhere inside ``folder`` (links followed)."""
    return path.resolve().is_relative_to(folder.resolve())


@dataclass
class SaveResult:
    saved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def describe(self) -> str:
        parts = []
        if self.saved:
            parts.append("saved " + ", ".join(self.saved))
        if self.rejected:
            parts.append("rejected " + "; ".join(self.rejected))
        return "; ".join(parts) or "no files"


class DocumentsFolder:
    """The folder uploads are saved to; nothing is ever written or removed outside it."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.max_bytes = max_bytes

    def ensure(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def target(self, name: str) -> Path:
        path = self.folder / safe_name(name)
        if not inside(self.folder, path) or path.parent.resolve() != self.folder:
            raise UploadError(f"{name!r}: would be written outside {self.folder}")
        return path

    def save(self, uploads: list[tuple[str, Path]]) -> SaveResult:
        """Copy each ``(original name, temporary file)`` into the folder under a safe name
        (a file of the same name is replaced: the reingest then updates it)."""
        self.ensure()
        result = SaveResult()
        for name, temp in uploads:
            try:
                size = Path(temp).stat().st_size
                if size > self.max_bytes:
                    raise UploadError(
                        f"{name!r}: {size / 1e6:.1f} MB is over the upload limit of "
                        f"{self.max_bytes / 1e6:.1f} MB"
                    )
                path = self.target(name)
                if path.is_symlink():
                    path.unlink()
                shutil.copyfile(temp, path)
            except UploadError as exc:
                result.rejected.append(str(exc))
                continue
            except OSError as exc:
                result.rejected.append(f"{name!r}: cannot save ({exc.strerror or exc})")
                continue
            logger.info("saved upload %r as %s", name, path)
            result.saved.append(path.name)
        return result

    def remove(self, source: str) -> Path:
        """Delete the document ``source`` (a path relative to the folder)."""
        path = self.folder / source
        if not inside(self.folder, path) or path.resolve() == self.folder:
            raise UploadError(f"{source!r} is not in the documents folder {self.folder}")
        if not path.is_file():
            raise UploadError(f"{source!r}: no such file in {self.folder}")
        path.unlink()
        logger.info("removed %s", path)
        return path

"""Find the files to ingest: walk the folders given (recursively, sorted), skip hidden and
unsupported entries with a notice, and report paths that cannot be used."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import LoadError
from ingest.formats import SUPPORTED_EXTENSIONS


@dataclass(frozen=True)
class FoundFile:
    """A file to ingest: its ingest root (a folder) and its path relative to that root."""

    root: Path
    path: Path

    @property
    def source(self) -> str:
        return self.path.relative_to(self.root).as_posix()


@dataclass
class Discovery:
    files: list[FoundFile]
    roots: list[Path]  # folders walked whole: documents missing from them are deleted
    errors: list[LoadError]  # named paths that do not exist or cannot be used
    notices: list[str]  # skipped hidden/unsupported entries


def discover(paths: Iterable[Path]) -> Discovery:
    """Expand files and folders (recursively, sorted) into supported files."""
    out = Discovery([], [], [], [])
    seen: set[Path] = set()
    for given in paths:
        given = Path(given).expanduser()
        if not given.exists():
            out.errors.append(LoadError(given, "no such file or directory"))
            continue
        if given.is_file():
            if given.suffix.lower() not in SUPPORTED_EXTENSIONS:
                out.errors.append(
                    LoadError(
                        given,
                        f"unsupported file type {given.suffix or '(none)'!r} "
                        f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
                    )
                )
                continue
            found = FoundFile(given.resolve().parent, given.resolve())
            if found.path not in seen:
                seen.add(found.path)
                out.files.append(found)
            continue
        root = given.resolve()
        out.roots.append(root)
        _walk(root, out, seen)
    return out


def _walk(root: Path, out: Discovery, seen: set[Path]) -> None:
    def onerror(exc: OSError) -> None:
        out.errors.append(LoadError(exc.filename, f"cannot list folder: {exc.strerror}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=onerror, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames):
            if name.startswith("."):
                out.notices.append(f"{here / name}: skipped hidden folder")
            elif (here / name).is_symlink():
                out.notices.append(f"{here / name}: skipped symbolic link to a folder")
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (here / d).is_symlink()
        )
        for name in sorted(filenames):
            path = here / name
            if name.startswith("."):
                out.notices.append(f"{path}: skipped hidden file")
            elif path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                out.notices.append(f"{path}: skipped unsupported file type")
            elif path.is_symlink() and not path.exists():
                out.errors.append(LoadError(path, "broken symbolic link"))
            elif not path.is_file():  # a FIFO would block the reader forever
                out.notices.append(f"{path}: skipped, not a regular file")
            elif path not in seen:
                seen.add(path)
                out.files.append(FoundFile(root, path))

"""Load one source file (.txt, .md, .html, .pdf, .docx, or a page image): read its bytes, parse
them by type and give the document its text, title and provenance."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import LoadError
from ingest.formats import PAGE_PARSERS, PARSERS, SUPPORTED_EXTENSIONS
from ingest.header import heading_line, title_from_text
from ingest.layout import DocLayout


@dataclass(frozen=True)
class LoadedDocument:
    """One document's body text and where it came from.

    Chunk offsets index into ``text``; for PDFs ``page_starts[i]`` is the offset where
    page ``i + 1`` begins.
    """

    source: str
    path: Path
    text: str
    title: str
    date: str | None
    content_hash: str
    page_starts: tuple[int, ...] = ()
    publisher: str | None = None  # the publication ("source:" / "publisher:" in a header)
    author: str | None = None
    # No title given and no heading line: ``title`` is the text's first sentence (or the
    # file name), fit to show but not to stand for the document in retrieval.
    title_is_excerpt: bool = False
    # PDFs and images: where each stored line lies on its page, and what OCR read.
    layout: DocLayout | None = None
    ocr_pages: int = 0
    low_confidence: int = 0

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` (PDFs and images only)."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, or a LoadError for a file that is too big or unreadable."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(path, f"cannot stat: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise LoadError(
            path, f"file is {size / 2**20:.2f} MB, over the {max_bytes / 2**20:.2f} MB limit"
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # a file growing as it is read stops at the limit
    except PermissionError:
        raise LoadError(path, "cannot read: permission denied") from None
    except OSError as exc:
        raise LoadError(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise LoadError(
            path, f"file grew past the {max_bytes / 2**20:.2f} MB limit while it was read"
        )
    return data


def load_document(
    path: Path,
    source: str | None = None,
    *,
    max_bytes: int = 50 * 1024 * 1024,
    max_text_bytes: int = 8 * 1024 * 1024,
    data: bytes | None = None,
    ocr: str = "auto",
    progress: bool = False,
) -> LoadedDocument:
    """Load one supported file. Raises LoadError with a one-line reason.

    ``ocr``: "auto" reads scanned PDF pages and images by OCR, "force" every PDF page too,
    "off" none; ``progress`` shows a bar of the pages OCR reads."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in PARSERS and ext not in PAGE_PARSERS:
        raise LoadError(
            path,
            f"unsupported file type {ext or '(none)'!r} "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
        )
    if data is None:
        data = read_file(path, max_bytes)
    if not data.strip():
        raise LoadError(path, "file is empty")
    if ext in PAGE_PARSERS:
        parsed = PAGE_PARSERS[ext](path, data, ocr, progress)
    else:
        parsed = PARSERS[ext](path, data)
    text = parsed.text
    if not text.strip():
        raise LoadError(path, "no text found in the file")
    size = len(text.encode("utf-8"))
    if size > max_text_bytes:
        raise LoadError(
            path,
            f"holds {size / 2**20:.2f} MB of text, over the {max_text_bytes / 2**20:.2f} MB "
            "limit (DOCQA_MAX_TEXT_MB)",
        )
    title = parsed.title or heading_line(text)
    content_hash = file_hash(data)
    return LoadedDocument(
        source=source if source is not None else path.name,
        path=path,
        text=text,
        title=title or title_from_text(text) or path.stem,
        date=parsed.date,
        content_hash=content_hash,
        page_starts=parsed.page_starts,
        publisher=parsed.publisher,
        author=parsed.author,
        title_is_excerpt=title is None,
        layout=DocLayout(content_hash, parsed.pages) if parsed.pages else None,
        ocr_pages=parsed.ocr_pages,
        low_confidence=parsed.low_confidence,
    )

"""Where a document's text lies on its pages: the boxes of its lines, kept per document in a
sidecar file beside the index so a citation can be drawn on the page it quotes.

Chunk metadata is size-limited and per chunk; a page's boxes belong to the document, so they
live in ``<index_dir>/layout/<collection>/<hash of the document key>.json``, written with the
document's chunks and removed with them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.manifest import doc_key

LAYOUT_VERSION = 1
# x0, y0, x1, y1 as fractions of the page's width and height, origin at the top left.
Box = tuple[float, float, float, float]
# (start, end) character offsets into the stored document text, then the box they occupy.
Span = tuple[int, int, float, float, float, float]


@dataclass(frozen=True)
class Segment:
    """A run of text on one visual line of a page, with its box (None: not known) and, for
    OCR, the recogniser's confidence."""

    text: str
    box: Box | None = None
    score: float | None = None


@dataclass
class RawPage:
    """A page as read, before it becomes document text: its lines, each a list of segments
    (table cells of one row are segments of one line), and its size (PDF points or pixels)."""

    lines: list[list[Segment]]
    width: float
    height: float
    ocr: bool = False


@dataclass(frozen=True)
class PageLayout:
    """One page: its size, whether its text came from OCR, and where each stored line is."""

    number: int  # 1-based
    width: float
    height: float
    ocr: bool
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class DocLayout:
    """The page layouts of one document, for the bytes with ``content_hash``."""

    content_hash: str
    pages: tuple[PageLayout, ...]

    def highlight(self, start: int, end: int) -> tuple[int, list[Box]] | None:
        """The page holding document offset ``start`` and the boxes that cover the text
        ``[start, end)`` on it (a part of a line is cut in proportion to its characters), or
        None when no stored line overlaps it."""
        for page in self.pages:
            boxes = [
                _part(span, start, end)
                for span in page.spans
                if span[0] < end and span[1] > start and span[1] > span[0]
            ]
            if boxes:
                return page.number, boxes
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LAYOUT_VERSION,
            "content_hash": self.content_hash,
            "pages": [
                {
                    "n": p.number,
                    "w": round(p.width, 2),
                    "h": round(p.height, 2),
                    "ocr": p.ocr,
                    "spans": [[s, e, *(round(v, 5) for v in box)] for s, e, *box in p.spans],
                }
                for p in self.pages
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DocLayout:
        if data.get("version") != LAYOUT_VERSION:
            raise ValueError(f"layout version {data.get('version')!r}, not {LAYOUT_VERSION}")
        return cls(
            content_hash=str(data["content_hash"]),
            pages=tuple(
                PageLayout(
                    number=int(p["n"]),
                    width=float(p["w"]),
                    height=float(p["h"]),
                    ocr=bool(p["ocr"]),
                    spans=tuple(
                        (int(s[0]), int(s[1]), *(float(v) for v in s[2:6]))  # type: ignore[misc]
                        for s in p["spans"]
                    ),
                )
                for p in data["pages"]
            ),
        )


def _part(span: Span, start: int, end: int) -> Box:
    s, e, x0, y0, x1, y1 = span
    a = (max(s, start) - s) / (e - s)
    b = (min(e, end) - s) / (e - s)
    return (x0 + a * (x1 - x0), y0, x0 + b * (x1 - x0), y1)


class LayoutStore:
    """The layout sidecars of one collection: one JSON file per document."""

    def __init__(self, index_dir: Path, collection: str) -> None:
        self.folder = Path(index_dir) / "layout" / collection

    def path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.json"

    def save(self, key: str, layout: DocLayout | None) -> None:
        """Write ``layout`` for document ``key`` (atomically); None removes any old one."""
        if layout is None:
            self.remove(key)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path(key)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(layout.to_json(), separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, target)

    def load(self, key: str) -> DocLayout | None:
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
            return DocLayout.from_json(data)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def clear(self) -> None:
        if self.folder.is_dir():
            for path in self.folder.glob("*.json"):
                path.unlink(missing_ok=True)


def read_layout(index_dir: Path, collection: str, root: str, source: str) -> DocLayout | None:
    """The stored page layout of the document ``source`` ingested from folder ``root``."""
    return LayoutStore(index_dir, collection).load(doc_key(root, source))

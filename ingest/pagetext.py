"""Pages of positioned lines → one document text, with the box of every stored line.

Running headers and footers (the same line at the top or bottom of most pages, page numbers
aside) and bare page numbers are left out; a word hyphenated across a line end is joined; the
cells of a table row stay on one line as ``a | b | c`` (a line's segments are its cells).
Chunk offsets index into the text returned, so they point at what is stored.
"""

from __future__ import annotations

import re
from collections import Counter

from ingest.layout import PageLayout, RawPage, Segment, Span

CELL_SEPARATOR = " | "
PAGE_SEPARATOR = "\n\n"
ZONE_LINES = 2  # lines at the top and at the bottom of a page that may be running heads
MARGIN = 0.12  # ... and only within this share of the page's height from its edge (when known)
MIN_PAGES_FOR_RUNNING = 3
SOFT_HYPHENS = ("\x02", "\xad")  # pdfium marks a hyphen it saw at a line end with \x02
_PAGE_NUMBER_RE = re.compile(
    r"^(?:page\s+)?[-–—(\[]?\s*\d{1,4}\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE
)
_HYPHEN_END_RE = re.compile(r"[^\W\d_]-$")


def line_text(line: list[Segment]) -> str:
    return CELL_SEPARATOR.join(s.text for s in line)


def _key(text: str) -> str:
    """A line as compared across pages: case, spacing and numbers (page 3 of 9) ignored."""
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def _zone(page: RawPage) -> list[int]:
    """The lines of ``page`` that may be running heads or page numbers: the first and last
    ``ZONE_LINES``, those with a box only within ``MARGIN`` of the top or bottom edge."""
    n = len(page.lines)
    candidates = sorted(set(range(min(ZONE_LINES, n))) | set(range(max(0, n - ZONE_LINES), n)))
    out = []
    for i in candidates:
        boxes = [s.box for s in page.lines[i] if s.box is not None]
        top = min((b[1] for b in boxes), default=0.0)
        bottom = max((b[3] for b in boxes), default=1.0)
        if not boxes or top <= MARGIN or bottom >= 1 - MARGIN:
            out.append(i)
    return out


def running_lines(pages: list[RawPage]) -> list[set[int]]:
    """Per page, the indices of the lines to leave out: running headers/footers (a line at
    a page's top or bottom, see ``_zone``, that recurs there on more than half the pages, at
    least ``MIN_PAGES_FOR_RUNNING`` of them) and bare page numbers there; none on a page
    that holds nothing else."""
    zones = [{i: line_text(p.lines[i]).strip() for i in _zone(p)} for p in pages]
    seen: Counter[str] = Counter()
    for zone in zones:
        seen.update({_key(t) for t in zone.values() if t})
    need = max(MIN_PAGES_FOR_RUNNING, len(pages) // 2 + 1)
    running = {k for k, n in seen.items() if n >= need}
    out = []
    for page, zone in zip(pages, zones, strict=True):
        drop = {
            i for i, t in zone.items() if t and (_key(t) in running or _PAGE_NUMBER_RE.match(t))
        }
        kept = [i for i, line in enumerate(page.lines) if i not in drop and line_text(line).strip()]
        out.append(drop if kept else set())  # a page of nothing else: that line is its text
    return out


def _joins(line: list[Segment], following: list[Segment] | None) -> bool:
    """Whether ``line`` ends in a word hyphenated onto ``following``."""
    last = line[-1].text
    if last.endswith(SOFT_HYPHENS):
        return True
    if following is None or not _HYPHEN_END_RE.search(last):
        return False
    head = following[0].text[:1]
    return head.isalpha() and head.islower()


def assemble(pages: list[RawPage]) -> tuple[str, tuple[int, ...], tuple[PageLayout, ...]]:
    """The document text, where each page starts in it, and each page's line boxes."""
    dropped = running_lines(pages)
    out: list[str] = []
    pos = 0
    starts: list[int] = []
    layouts: list[PageLayout] = []

    def put(text: str) -> tuple[int, int]:
        nonlocal pos
        out.append(text)
        pos += len(text)
        return pos - len(text), pos

    for number, page in enumerate(pages, start=1):
        if number > 1:
            put(PAGE_SEPARATOR)
        starts.append(pos)
        lines = [
            [s for s in line if s.text.strip()]
            for i, line in enumerate(page.lines)
            if i not in dropped[number - 1]
        ]
        lines = [line for line in lines if line]
        spans: list[Span] = []
        for j, line in enumerate(lines):
            following = lines[j + 1] if j + 1 < len(lines) else None
            joined = _joins(line, following)
            for k, seg in enumerate(line):
                if k:
                    put(CELL_SEPARATOR)
                text = seg.text.strip()
                if joined and k == len(line) - 1:
                    text = text[:-1]
                a, b = put(text)
                if seg.box is not None and b > a:
                    spans.append((a, b, *seg.box))
            if following is not None and not joined:
                put("\n")
        layouts.append(PageLayout(number, page.width, page.height, page.ocr, tuple(spans)))
    return "".join(out), tuple(starts), tuple(layouts)

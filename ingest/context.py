"""A document's context line (title | publisher | date), given to retrieval with every chunk.

A chunk of a Markdown document also carries the headings it sits under, after the title
("Time off › Parental leave | …"): a handbook section's later chunks rarely repeat the
section's subject ("you can take up to 12 weeks off on full pay"), so without its heading a
question about "parental leave" does not find them.

The line is prepended to the text each chunk is embedded with and indexed under by BM25 (the
stored chunk text, its offsets and quotes stay the body slice), so a question naming the
publisher or the month ("the TechCrunch article from October 2023") can match any chunk of
the document, not only the first. Readers rebuild the BM25 text from the chunk metadata with
the same function, so it must depend on nothing but its arguments.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

# Recorded in the index fingerprint and each chunk id: bump it when ``document_context``
# renders the same document differently, so a reingest re-embeds every document once.
CONTEXT_VERSION = "2"  # 2: the Markdown headings a chunk sits under
SEPARATOR = " | "
SECTION_SEPARATOR = " › "
# Each chunk is embedded with the line in front of it, inside the model's 256-token window:
# a runaway title must not push the chunk's own text out of it.
MAX_PART_CHARS = 200

# Fixed English names: ``strftime("%B")`` would follow the process locale.
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_ISO_DATE_RE = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})\Z")


def document_context(title: str | None, publisher: str | None, date: str | None) -> str:
    """One line naming the document: ``title | publisher | Month D, YYYY``.

    Missing (None or blank) parts are left out; all missing gives ``""``. Whitespace inside a
    part (line breaks included) collapses to one space, and a part longer than
    ``MAX_PART_CHARS`` is cut at a word and ends with "…". ``date`` is ISO ``YYYY-MM-DD``,
    written with the month's name so a question saying "September 2023" matches lexically;
    a value that is not a valid ISO date is kept as given.
    """
    parts = [_one_line(title), _one_line(publisher), _spelled_date(_one_line(date))]
    return SEPARATOR.join(p for p in parts if p)


def stored_context(metadata: dict[str, Any]) -> str:
    """A chunk's context line from its metadata: the writer renders it from the metadata it
    stores, readers from the metadata they read, so both get the same line. A title that is
    only the text's first sentence (``title_is_excerpt``) is left out; the chunk's section
    (``section``: the headings it sits under) follows the title."""
    title = None if metadata.get("title_is_excerpt") else metadata.get("title")
    title = titled(title, metadata.get("section"))
    return document_context(title, metadata.get("publisher"), metadata.get("date"))


def titled(title: str | None, section: str | None) -> str | None:
    """``title › section``, without the section's first heading when it repeats the title
    ("Side gigs" › "Side gigs › Managing time" -> "Side gigs › Managing time")."""
    if not section:
        return title
    if not title:
        return section
    first, _, rest = section.partition(SECTION_SEPARATOR)
    if first.strip().lower() == title.strip().lower():
        return f"{title}{SECTION_SEPARATOR}{rest}" if rest else title
    return f"{title}{SECTION_SEPARATOR}{section}"


_HEADING_RE = re.compile(r"(#{1,6})[ \t]+(.*?)[ \t#]*")
_FENCE_RE = re.compile(r"\s{0,3}(```|~~~)")


def markdown_sections(text: str) -> list[tuple[int, str]]:
    """``(offset, path)`` for each Markdown heading of ``text`` (``#`` to ``######`` at the
    start of a line, outside fenced code): the path of headings it sits under, itself last
    ("Time off › Parental leave"). Headings are kept as one line, each cut like a title."""
    out: list[tuple[int, str]] = []
    stack: list[tuple[int, str]] = []
    fenced = False
    offset = 0
    for line in text.splitlines(keepends=True):
        if _FENCE_RE.match(line):
            fenced = not fenced
        elif not fenced:
            m = _HEADING_RE.fullmatch(line.rstrip("\r\n"))
            if m and m.group(2).strip():
                level = len(m.group(1))
                stack = [h for h in stack if h[0] < level] + [(level, _one_line(m.group(2)))]
                out.append((offset, SECTION_SEPARATOR.join(h for _, h in stack)))
        offset += len(line)
    return out


def section_at(sections: list[tuple[int, str]], offset: int) -> str:
    """The section (``markdown_sections``) that character ``offset`` falls in: the path of
    the last heading at or before it; "" before the first heading."""
    i = bisect.bisect_right(sections, offset, key=lambda s: s[0])
    return sections[i - 1][1] if i else ""


def retrieval_text(context: str, text: str) -> str:
    """What a chunk is embedded as and BM25-indexed under: its document's context line, then
    its text (the stored text stays the body slice). The writer and the readers both use it."""
    return f"{context}\n{text}" if context else text


def _one_line(value: str | None) -> str:
    line = " ".join(str(value).split()) if value else ""
    if len(line) <= MAX_PART_CHARS:
        return line
    cut = line[:MAX_PART_CHARS].rsplit(" ", 1)[0] or line[:MAX_PART_CHARS]
    return cut.rstrip(",;:|") + "…"


def _spelled_date(iso: str) -> str:
    m = _ISO_DATE_RE.match(iso)
    if not m:
        return iso
    year, month, day = (int(g) for g in m.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return iso
    return f"{_MONTHS[month - 1]} {day}, {year}"

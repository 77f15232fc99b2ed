"""A document's context line (title | publisher | date), given to retrieval with every chunk.

The line is prepended to the text each chunk is embedded with and indexed under by BM25 (the
stored chunk text, its offsets and quotes stay the body slice), so a question naming the
publisher or the month ("the TechCrunch article from October 2023") can match any chunk of
the document, not only the first. Readers rebuild the BM25 text from the chunk metadata with
the same function, so it must depend on nothing but its arguments.
"""

from __future__ import annotations

import re
from typing import Any

# Recorded in the index fingerprint and each chunk id: bump it when ``document_context``
# renders the same document differently, so a reingest re-embeds every document once.
CONTEXT_VERSION = "1"
SEPARATOR = " | "
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
    only the text's first sentence (``title_is_excerpt``) is left out."""
    title = None if metadata.get("title_is_excerpt") else metadata.get("title")
    return document_context(title, metadata.get("publisher"), metadata.get("date"))


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

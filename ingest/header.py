"""What a text says about itself: its metadata header (front matter, a leading ``key: value``
block, a leading date) and a title read off its first line or sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import first_sentence

_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
# "date 2018-03-22 ..." or "Date: 2018-03-22" opening the text: metadata, not body.
_LEADING_DATE_RE = re.compile(r"\A\s*date\s*:?\s*(\d{4}-\d{2}-\d{2})\b[ \t]*(?:\r?\n)?", re.I)
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)
# Metadata keys of a leading header block (and read from front matter); "source" and
# "publisher" name the publication, the date keys are tried in _DATE_KEYS order.
HEADER_KEYS = frozenset(
    {
        "title",
        "source",
        "publisher",
        "published_at",
        "published",
        "date",
        "author",
        "category",
        "url",
    }
)
_DATE_KEYS = ("published_at", "published", "date")
_HEADER_LINE_RE = re.compile(r"[ \t]*([A-Za-z][A-Za-z_ \t-]{0,30}?)[ \t]*:(.*)\Z")
_MAX_HEADER_LINES = 20


def normalise_date(raw: str | None) -> str | None:
    """The first ISO date (YYYY-MM-DD) in ``raw``, if any."""
    if not raw:
        return None
    m = _DATE_RE.search(raw)
    return "-".join(m.groups()) if m else None


@dataclass(frozen=True)
class Header:
    """A text's body and what its metadata header said (None: not given)."""

    body: str
    title: str | None = None
    date: str | None = None  # ISO YYYY-MM-DD
    publisher: str | None = None
    author: str | None = None


def parse_header(text: str) -> Header:
    """Remove a metadata header from ``text`` and read it.

    Recognised, in this order: YAML front matter (``---`` lines); a leading block of at
    least two ``key: value`` lines with distinct keys from ``HEADER_KEYS`` (any case), every
    line of it one of those, ended by a blank line (news exports: ``title:``, ``source:``,
    ``published_at:``...); a leading ``date YYYY-MM-DD``. A block that does not qualify
    ("Note: ..." then prose) stays body text. The first value given for a key wins.
    """
    fields: dict[str, str] = {}
    m = _FRONT_MATTER_RE.match(text)
    if m:
        for line in m.group(1).splitlines():
            parsed = _header_line(line, yaml=True)
            if parsed is not None and parsed[1]:
                fields.setdefault(*parsed)
        text = text[m.end() :]
    block = _header_block(text)
    if block is not None:
        lines, end = block
        for key, value in lines:
            if value:
                fields.setdefault(key, value)
        text = text[end:]
    date = next(
        (d for d in (normalise_date(fields.get(k)) for k in _DATE_KEYS) if d is not None), None
    )
    m = _LEADING_DATE_RE.match(text)
    if m:
        date = date or m.group(1)
        text = text[m.end() :]
    source = fields.get("source")
    if source and "://" in source:  # a link to where it came from, not a publication's name
        source = None
    return Header(
        body=text.strip(),
        title=fields.get("title") or None,
        date=date,
        publisher=fields.get("publisher") or source or None,
        author=fields.get("author") or None,
    )


def split_header(text: str) -> tuple[str, str | None, str | None]:
    """``parse_header`` as (body, title, date)."""
    header = parse_header(text)
    return header.body, header.title, header.date


def _header_line(line: str, *, yaml: bool = False) -> tuple[str, str] | None:
    """(canonical key, value) for a ``key: value`` line whose key is in HEADER_KEYS; ``yaml``
    (front matter): quotes around the value are syntax, dropped. In a plain header block a
    quoted title is the title."""
    m = _HEADER_LINE_RE.match(line)
    if not m:
        return None
    key = re.sub(r"[\s-]+", "_", m.group(1).strip().lower())
    if key not in HEADER_KEYS:
        return None
    value = m.group(2).strip()
    if yaml and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return key, value


def _header_block(text: str) -> tuple[list[tuple[str, str]], int] | None:
    """The leading ``key: value`` block's lines and the offset after its blank line, if
    ``text`` opens with one that qualifies (see ``parse_header``)."""
    pos = len(text) - len(text.lstrip())
    pos = text.rfind("\n", 0, pos) + 1  # back to the start of the first non-blank line
    lines: list[tuple[str, str]] = []
    while True:
        nl = text.find("\n", pos)
        if nl < 0:
            return None  # no blank line after it: the whole text, not a header
        line = text[pos:nl]
        pos = nl + 1
        if not line.strip():
            break
        parsed = _header_line(line)
        if parsed is None or len(lines) >= _MAX_HEADER_LINES:
            return None
        lines.append(parsed)
    if len({key for key, _ in lines}) < 2:
        return None
    return lines, pos


def heading_line(text: str) -> str | None:
    """The text's first line if it reads as a heading (short, no closing punctuation)."""
    first_line = text.strip().split("\n", 1)[0].strip().lstrip("#").strip()
    if first_line and len(first_line) <= 100 and first_line[-1] not in ".!?,;:":
        return first_line
    return None


def title_from_text(text: str, limit: int = 80) -> str:
    """A short title: a heading-like first line, else the start of the first sentence."""
    heading = heading_line(text)
    if heading is not None:
        return heading
    sentence = first_sentence(text.strip()[: limit * 4]).strip()
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"

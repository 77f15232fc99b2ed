"""Read source files (.txt, .md, .html, .pdf, .docx) into plain text with provenance metadata."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.text import first_sentence

if TYPE_CHECKING:
    from docx.table import Table

logger = logging.getLogger(__name__)

TEXT_EXTENSIONS = (".txt", ".md", ".markdown")
HTML_EXTENSIONS = (".html", ".htm")
SUPPORTED_EXTENSIONS = (*TEXT_EXTENSIONS, *HTML_EXTENSIONS, ".pdf", ".docx")


class LoadError(Exception):
    """A file that cannot be ingested; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        reason = " ".join(str(reason).split())  # library messages can span lines
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


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

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding character ``offset`` (PDFs only)."""
        if not self.page_starts:
            return None
        return max(1, bisect_right(self.page_starts, offset))


@dataclass(frozen=True)
class _Parsed:
    text: str
    title: str | None = None
    date: str | None = None
    page_starts: tuple[int, ...] = ()
    publisher: str | None = None
    author: str | None = None


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
        return path.read_bytes()
    except PermissionError:
        raise LoadError(path, "cannot read: permission denied") from None
    except OSError as exc:
        raise LoadError(path, f"cannot read: {exc.strerror or exc}") from None


def load_document(
    path: Path,
    source: str | None = None,
    *,
    max_bytes: int = 50 * 1024 * 1024,
    data: bytes | None = None,
) -> LoadedDocument:
    """Load one supported file. Raises LoadError with a one-line reason."""
    path = Path(path)
    ext = path.suffix.lower()
    parser = _PARSERS.get(ext)
    if parser is None:
        raise LoadError(
            path,
            f"unsupported file type {ext or '(none)'!r} "
            f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})",
        )
    if data is None:
        data = read_file(path, max_bytes)
    if not data.strip():
        raise LoadError(path, "file is empty")
    parsed = parser(path, data)
    text = parsed.text
    if not text.strip():
        raise LoadError(path, "no text found in the file")
    title = parsed.title or heading_line(text)
    return LoadedDocument(
        source=source if source is not None else path.name,
        path=path,
        text=text,
        title=title or title_from_text(text) or path.stem,
        date=parsed.date,
        content_hash=file_hash(data),
        page_starts=parsed.page_starts,
        publisher=parsed.publisher,
        author=parsed.author,
        title_is_excerpt=title is None,
    )


# ---------------------------------------------------------------- text helpers

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


def decode_text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise LoadError(path, "looks like a binary file (contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            path, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- parsers


def _parse_text(path: Path, data: bytes) -> _Parsed:
    header = parse_header(decode_text(path, data))
    title = header.title
    if title is None and path.suffix.lower() in (".md", ".markdown"):
        m = re.search(r"^#\s+(.+)$", header.body, re.M)
        title = m.group(1).strip() if m else None
    return _Parsed(header.body, title, header.date, (), header.publisher, header.author)


_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "svg",
    "iframe",
    "button",
    "menu",
)
_BLOCK_TAGS = (
    "p",
    "div",
    "section",
    "article",
    "main",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "table",
    "tr",
    "br",
    "hr",
    "figcaption",
    "address",
    "details",
    "summary",
)
_PRE_TAGS = ("pre", "textarea")
_CELL_TAGS = ("td", "th")
_DATE_META = (
    "date",
    "dc.date",
    "dcterms.date",
    "article:published_time",
    "pubdate",
    "publish-date",
    "datepublished",
)


def _parse_html(path: Path, data: bytes) -> _Parsed:
    from bs4 import BeautifulSoup, NavigableString

    raw = decode_text(path, data)
    soup = BeautifulSoup(raw, "html.parser")
    title = None
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    date = None
    for meta in soup.find_all("meta"):
        key = (meta.get("name") or meta.get("property") or meta.get("itemprop") or "").lower()
        if key in _DATE_META:
            date = normalise_date(meta.get("content"))
            if date:
                break
    if date is None:
        time_tag = soup.find("time", attrs={"datetime": True})
        date = normalise_date(time_tag["datetime"]) if time_tag else None
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    if title is None:
        h1 = root.find("h1")
        title = h1.get_text(" ", strip=True) if h1 else None
    # Whitespace in HTML source, line breaks included, renders as one space (except in
    # <pre>); only block elements start new lines.
    for node in root.find_all(string=True):
        if type(node) is NavigableString and node.find_parent(_PRE_TAGS) is None:
            collapsed = re.sub(r"\s+", " ", node)
            if collapsed != node:
                node.replace_with(NavigableString(collapsed))
    for tag in root.find_all(_BLOCK_TAGS):
        tag.insert_before(NavigableString("\n\n"))
        tag.insert_after(NavigableString("\n\n"))
    for tag in root.find_all(_CELL_TAGS):  # keep "<td>a</td><td>b</td>" apart
        tag.insert_after(NavigableString(" "))
    text = root.get_text()
    text = re.sub(r"[ \t\f\v\xa0]+", " ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    head = parse_header(text)
    return _Parsed(
        head.body, title or head.title, date or head.date, (), head.publisher, head.author
    )


def _parse_pdf(path: Path, data: bytes) -> _Parsed:
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError(path, "PDF is encrypted with a password")
        page_texts = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    except LoadError:
        raise
    except Exception as exc:  # damaged files raise all sorts (NotImplementedError, zlib...)
        raise LoadError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for text in page_texts:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        starts.append(pos)
        parts.append(text)
        pos += len(text) + 2
    body = "\n\n".join(parts)
    title = str(meta_title).strip() if meta_title and str(meta_title).strip() else None
    return _Parsed(body, title, None, tuple(starts))


def _parse_docx(path: Path, data: bytes) -> _Parsed:
    import docx
    from docx.table import Table

    paragraphs: list[str] = []
    try:
        document = docx.Document(io.BytesIO(data))
        title = (document.core_properties.title or "").strip() or None
        for block in document.iter_inner_content():  # paragraphs and tables in reading order
            if isinstance(block, Table):
                paragraphs.extend(_table_rows(block))
                continue
            text = block.text.strip()
            if not text:
                continue
            style = (block.style.name if block.style is not None else "") or ""
            if title is None and style in ("Title", "Heading 1"):
                title = text
            paragraphs.append(text)
    except Exception as exc:  # BadZipFile, KeyError, lxml's XMLSyntaxError, ...
        raise LoadError(path, f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    head = parse_header("\n\n".join(paragraphs))
    return _Parsed(head.body, title or head.title, head.date, (), head.publisher, head.author)


def _table_rows(table: Table) -> list[str]:
    """One "a | b | c" line per table row; a merged cell is listed once."""
    rows: list[str] = []
    for row in table.rows:
        seen: list[object] = []
        cells: list[str] = []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):
                continue
            seen.append(cell._tc)
            text = " ".join(cell.text.split())
            if text:
                cells.append(text)
        if cells:
            rows.append(" | ".join(cells))
    return rows


_PARSERS: dict[str, Callable[[Path, bytes], _Parsed]] = {
    **{ext: _parse_text for ext in TEXT_EXTENSIONS},
    **{ext: _parse_html for ext in HTML_EXTENSIONS},
    ".pdf": _parse_pdf,
    ".docx": _parse_docx,
}


# ---------------------------------------------------------------- discovery


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
    import os

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

"""The supported file types and their parsers: a file's bytes to plain text, with what its
format says about the title, date and publication; for PDFs and images, also where each line
lies on its page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import LoadError
from ingest.header import normalise_date, parse_header
from ingest.images import IMAGE_EXTENSIONS, read_image_pages, render_image_page
from ingest.layout import PageLayout
from ingest.pagetext import assemble
from ingest.pdf import read_pdf, render_pdf_page

if TYPE_CHECKING:
    from docx.table import Table
    from PIL.Image import Image

TEXT_EXTENSIONS = (".txt", ".md", ".markdown")
HTML_EXTENSIONS = (".html", ".htm")
SUPPORTED_EXTENSIONS = (*TEXT_EXTENSIONS, *HTML_EXTENSIONS, ".pdf", ".docx", *IMAGE_EXTENSIONS)
# Recorded in the fingerprint of the documents of these types only (with the OCR setting):
# bump one when that type's text would come out differently, so just those are reingested.
# "pdf2": pypdfium2 text with line boxes, scans read by OCR, running heads dropped.
LOADER_VERSIONS = {".pdf": "pdf2", **dict.fromkeys(IMAGE_EXTENSIONS, "img1")}


@dataclass(frozen=True)
class Parsed:
    """A parser's result: the body text and what the file said about itself."""

    text: str
    title: str | None = None
    date: str | None = None
    page_starts: tuple[int, ...] = ()
    publisher: str | None = None
    author: str | None = None
    pages: tuple[PageLayout, ...] = ()  # where each stored line lies (PDFs and images)
    ocr_pages: int = 0
    low_confidence: int = 0  # OCR lines recognised with a low score (kept)


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


def _parse_text(path: Path, data: bytes) -> Parsed:
    header = parse_header(decode_text(path, data))
    title = header.title
    if title is None and path.suffix.lower() in (".md", ".markdown"):
        m = re.search(r"^#\s+(.+)$", header.body, re.M)
        title = m.group(1).strip() if m else None
    return Parsed(header.body, title, header.date, (), header.publisher, header.author)


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


def _parse_html(path: Path, data: bytes) -> Parsed:
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
    return Parsed(
        head.body, title or head.title, date or head.date, (), head.publisher, head.author
    )


def _parse_pdf(path: Path, data: bytes, ocr: str = "auto", progress: bool = False) -> Parsed:
    pages, title, low = read_pdf(path, data, ocr, progress)
    text, starts, layout = assemble(pages)
    if not text.strip():
        why = "and OCR is off" if ocr == "off" else "nor a scanned page OCR could read"
        raise LoadError(path, f"no text found in the PDF (no text layer {why})")
    return Parsed(
        text, title, None, starts, pages=layout, ocr_pages=_ocr_pages(layout), low_confidence=low
    )


def _parse_image(path: Path, data: bytes, ocr: str = "auto", progress: bool = False) -> Parsed:
    pages, low = read_image_pages(path, data, ocr, progress)
    text, starts, layout = assemble(pages)
    return Parsed(text, None, None, starts, pages=layout, ocr_pages=len(layout), low_confidence=low)


def _ocr_pages(layout: tuple[PageLayout, ...]) -> int:
    return sum(1 for p in layout if p.ocr)


# A DOCX is a zip: its parts, unpacked, may hold at most this much (a zip bomb of a few KB
# can unpack to gigabytes of XML, which the parser would hold in memory whole).
MAX_DOCX_UNPACKED_BYTES = 256 * 2**20


def _check_unpacked_size(path: Path, data: bytes) -> None:
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoadError(path, f"not a readable DOCX ({type(exc).__name__}: {exc})") from None
    if unpacked > MAX_DOCX_UNPACKED_BYTES:
        raise LoadError(
            path,
            f"unpacks to {unpacked / 2**20:.0f} MB; the limit for a DOCX is "
            f"{MAX_DOCX_UNPACKED_BYTES / 2**20:.0f} MB (a zip bomb?)",
        )


def _parse_docx(path: Path, data: bytes) -> Parsed:
    import docx
    from docx.table import Table

    _check_unpacked_size(path, data)
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
    return Parsed(head.body, title or head.title, head.date, (), head.publisher, head.author)


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


PARSERS: dict[str, Callable[[Path, bytes], Parsed]] = {
    **{ext: _parse_text for ext in TEXT_EXTENSIONS},
    **{ext: _parse_html for ext in HTML_EXTENSIONS},
    ".docx": _parse_docx,
}
# Types with pages: (path, bytes, OCR mode, show progress) → text and line boxes.
PAGE_PARSERS: dict[str, Callable[[Path, bytes, str, bool], Parsed]] = {
    ".pdf": _parse_pdf,
    **{ext: _parse_image for ext in IMAGE_EXTENSIONS},
}


def render_page(path: Path, number: int, width: int) -> Image:
    """Page ``number`` (1-based) of a PDF or image file, ``width`` pixels wide."""
    if Path(path).suffix.lower() == ".pdf":
        return render_pdf_page(Path(path), number, width)
    return render_image_page(Path(path), number, width)

"""PDF pages → lines of text with their boxes, read from the text layer with pypdfium2; a page
whose text layer is empty or too thin to be real text (a scan) is rendered and read by OCR.
Also renders a page as an image, to show a citation on it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import LoadError
from ingest.layout import RawPage, Segment
from ingest.ocr import RENDER_DPI, check_mode

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

# PDFium is not thread-safe: every call into it holds this lock (ingest runs beside the chat).
PDFIUM_LOCK = threading.RLock()
MIN_TEXT_CHARS = 20  # a page with fewer letters and digits than this has no real text layer
CELL_GAP_EM = 2.0  # a gap wider than this many character heights separates table cells
_SOFT_HYPHEN = "\x02"


def _open(path: Path, data: bytes | Path) -> Any:
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise LoadError(path, "PDF is encrypted with a password") from None
        raise LoadError(path, f"not a readable PDF (PdfiumError: {exc})") from None


# Bounded OCR work (README, "Scans and images"): a document needing OCR on more pages than
# this is refused in one line; a page is rendered for OCR at RENDER_DPI, or smaller when that
# would pass MAX_RENDER_PIXELS (a page the size of a wall holding one huge image).
MAX_OCR_PAGES = 300
MAX_RENDER_PIXELS = 60_000_000


def render_scale(width_pt: float, height_pt: float) -> float:
    """The scale (pixels per point) a page of this size is rendered at for OCR."""
    scale = RENDER_DPI / 72
    area = max(width_pt * height_pt, 1.0)
    return min(scale, (MAX_RENDER_PIXELS / area) ** 0.5)


def read_pdf(
    path: Path, data: bytes, ocr: str = "auto", progress: bool = False
) -> tuple[list[RawPage], str | None, int]:
    """The pages of a PDF as lines with boxes, its metadata title, and how many
    low-confidence OCR lines they hold. ``ocr``: "auto" reads scanned pages by OCR, "force"
    every page, "off" none."""
    from tqdm.auto import tqdm

    from ingest.ocr import read_image

    check_mode(ocr)
    started = time.perf_counter()
    with PDFIUM_LOCK:
        pdf = _open(path, data)
    try:
        with PDFIUM_LOCK:
            title = (pdf.get_metadata_dict(skip_empty=True).get("Title") or "").strip() or None
            pages = [_text_page(pdf[i]) for i in range(len(pdf))]
            scans = [i for i, p in enumerate(pages) if p.ocr]  # thin pages with an image
        todo = list(range(len(pages))) if ocr == "force" else scans if ocr == "auto" else []
        if ocr == "off" and scans:
            logger.warning("%s: %d scanned pages left unread (OCR is off)", path, len(scans))
        if len(todo) > MAX_OCR_PAGES:
            raise LoadError(
                path,
                f"needs OCR on {len(todo)} pages; the limit is {MAX_OCR_PAGES} pages a "
                "document (split it, or ingest with --ocr off to keep only its text layer)",
            )
        low = 0
        bar = tqdm(
            total=len(todo),
            desc=f"OCR {path.name}",
            unit="page",
            disable=None if progress and todo else True,
            leave=False,
        )
        with bar:
            for i in todo:
                with PDFIUM_LOCK:
                    page = pdf[i]
                    width, height = page.get_size()
                    image = page.render(scale=render_scale(width, height)).to_pil()
                result = read_image(image)
                if result.lines or ocr == "force":
                    pages[i] = RawPage(result.lines, width, height, ocr=True)
                    low += result.low_confidence
                else:
                    pages[i].ocr = False
                bar.update(1)
        for i in set(range(len(pages))) - set(todo):
            pages[i].ocr = False
    except LoadError:
        raise
    except Exception as exc:  # damaged files raise all sorts
        raise LoadError(path, f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    finally:
        with PDFIUM_LOCK:
            pdf.close()
    if todo:
        logger.info(
            "%s: read %d pages by OCR in %.1f s (%d low-confidence lines)",
            path.name,
            len(todo),
            time.perf_counter() - started,
            low,
        )
    return pages, title, low


def _text_page(page: Any) -> RawPage:
    """A page's text layer as visual lines of cells; ``ocr`` is set when the text is too thin
    to be real and the page holds an image (a scan). Call with ``PDFIUM_LOCK`` held."""
    import pypdfium2.raw as pdfium_c

    width, height = page.get_size()
    flat = page.get_rotation() == 0  # boxes of rotated pages are not kept
    textpage = page.get_textpage()
    lines: list[list[Segment]] = []
    current: list[tuple[str, tuple[float, float, float, float] | None]] = []
    low = None  # the current line's lowest bottom

    def flush() -> None:
        nonlocal current, low
        if current:
            lines.append(_cells(current, width, height) if flat else _plain(current))
        current, low = [], None

    try:
        for i in range(textpage.count_chars()):
            ch = chr(pdfium_c.FPDFText_GetUnicode(textpage.raw, i))
            if ch == "\r":
                continue
            if ch == "\n":
                flush()
                continue
            box = None if ch.isspace() else textpage.get_charbox(i)
            if box is not None and low is not None and box[3] < low:  # below the line
                flush()
            current.append((ch, box))
            if box is not None:
                low = box[1] if low is None else min(low, box[1])
            if ch == _SOFT_HYPHEN:
                flush()
        flush()
        letters = sum(ch.isalnum() for line in lines for s in line for ch in s.text)
        scan = letters < MIN_TEXT_CHARS and any(
            True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3)
        )
    finally:
        textpage.close()
    return RawPage(lines, width, height, ocr=scan)


def _plain(chars: list[tuple[str, Any]]) -> list[Segment]:
    return [Segment("".join(c for c, _ in chars).strip())]


def _cells(chars: list[tuple[str, Any]], width: float, height: float) -> list[Segment]:
    """One line's characters as segments, split where a gap is wider than ``CELL_GAP_EM``
    character heights (table cells); each segment's box in page fractions."""
    tall = max((b[3] - b[1] for _, b in chars if b is not None), default=0.0)
    runs: list[list[tuple[str, Any]]] = [[]]
    right = None
    for ch, box in chars:
        if box is not None:
            if right is not None and box[0] - right > CELL_GAP_EM * tall > 0:
                runs.append([])
            right = box[2]
        runs[-1].append((ch, box))
    out = []
    for run in runs:
        text = "".join(c for c, _ in run).strip()
        boxes = [b for _, b in run if b is not None]
        if not text or not boxes:
            continue
        left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
        right_, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
        box = (left / width, (height - top) / height, right_ / width, (height - bottom) / height)
        out.append(Segment(text, box))
    return out


def render_pdf_page(path: Path, number: int, width: int) -> Image:
    """Page ``number`` (1-based) of the PDF at ``path``, rendered ``width`` pixels wide."""
    with PDFIUM_LOCK:
        pdf = _open(path, str(path))  # type: ignore[arg-type]
        try:
            page = pdf[number - 1]
            scale = width / page.get_size()[0]
            return page.render(scale=scale).to_pil()
        finally:
            pdf.close()

"""Images of pages (.png, .jpg, .tif: a multi-page TIFF is one page per frame) → lines of
text with their boxes, read by OCR. Also renders a page, to show a citation on it."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.errors import LoadError
from ingest.layout import RawPage
from ingest.ocr import check_mode

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
MAX_FRAMES = 500


def read_image_pages(
    path: Path, data: bytes, ocr: str = "auto", progress: bool = False
) -> tuple[list[RawPage], int]:
    """Each frame of the image as a page read by OCR, and the low-confidence lines."""
    from PIL import Image, ImageSequence, UnidentifiedImageError
    from tqdm.auto import tqdm

    from ingest.ocr import read_image

    if check_mode(ocr) == "off":
        raise LoadError(path, "an image is read by OCR, and OCR is off (DOCQA_OCR=off)")
    from ingest.pdf import MAX_OCR_PAGES

    started = time.perf_counter()
    bad = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, EOFError)
    try:
        image = Image.open(io.BytesIO(data))
        count = min(int(getattr(image, "n_frames", 1)), MAX_FRAMES)
    except bad as exc:
        raise LoadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None
    if count > MAX_OCR_PAGES:
        raise LoadError(
            path,
            f"needs OCR on {count} pages; the limit is {MAX_OCR_PAGES} pages a document (split it)",
        )
    pages: list[RawPage] = []
    low = 0
    disable = None if progress else True
    with tqdm(total=count, desc=f"OCR {path.name}", unit="page", disable=disable) as bar:
        for number, frame in enumerate(ImageSequence.Iterator(image)):
            if number >= count:
                break
            try:  # one frame in memory at a time
                page = frame.copy()
            except bad as exc:
                raise LoadError(
                    path, f"not a readable image ({type(exc).__name__}: {exc})"
                ) from None
            result = read_image(page)
            pages.append(RawPage(result.lines, page.width, page.height, ocr=True))
            low += result.low_confidence
            del page
            bar.update(1)
    logger.info(
        "%s: read %d pages by OCR in %.1f s (%d low-confidence lines)",
        path.name,
        len(pages),
        time.perf_counter() - started,
        low,
    )
    return pages, low


def render_image_page(path: Path, number: int, width: int) -> Image:
    """Frame ``number`` (1-based) of the image at ``path``, scaled to ``width`` pixels."""
    from PIL import Image

    with Image.open(path) as image:
        image.seek(number - 1)
        frame = image.convert("RGB")
    height = max(1, round(frame.height * width / frame.width))
    return frame.resize((width, height))

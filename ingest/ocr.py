"""OCR on this machine, offline: RapidOCR's PP-OCRv4 detection and recognition models (ONNX
files inside the ``rapidocr-onnxruntime`` wheel, no download) on ONNX Runtime.

The engine is loaded once per process, on the first page that needs it; only ingest calls
this module (the chat path never loads it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ingest.layout import Segment

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)

OCR_MODES = ("off", "auto", "force")
LOW_CONFIDENCE = 0.8  # a recognised line scoring below this is kept, and counted
RENDER_DPI = 200  # scanned PDF pages are rendered at this resolution for OCR
# The recogniser's (Chinese-trained) model often rates the gap between two Latin words as
# "nothing" just above "space", gluing the words ("theharbour"). A step where space scores
# at least this is read as a space (0.05: every gap restored on our test pages, none added).
SPACE_PROB = 0.05
CELL_GAP = 1.5  # boxes on one row further apart than this many line heights are table cells
# RapidOCR scales a page whose longer side passes 2000 px down to 2000 px: on a huge scan
# (13000 px wide) the text shrinks past reading. A page whose longer side passes TILE_ABOVE is
# read in tiles of TILE px instead, each at full resolution, neighbours sharing TILE_OVERLAP px
# so a line cut by one tile's edge is whole in the other; a line is kept from the tile whose
# core (the tile less half the overlap on each shared side) holds its middle. Work grows with
# the page's area, memory with one tile; Pillow's bomb limit (MAX_IMAGE_PIXELS) bounds pages.
TILE = 2000
TILE_OVERLAP = 400
TILE_ABOVE = 4000

_engine: Any = None
_load_lock = threading.Lock()
_run_lock = threading.Lock()


def check_mode(mode: str) -> str:
    if mode not in OCR_MODES:
        raise ValueError(f"ocr must be one of {', '.join(OCR_MODES)}, got {mode!r}")
    return mode


def engine() -> Any:
    """The process's one RapidOCR engine (models loaded on first use)."""
    global _engine
    with _load_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            # text_score 0: keep every recognised line; low scores are counted, not dropped.
            # No direction classifier: its (Chinese) model turns long Latin lines upside down
            # and they come out as garbage; rendered PDF pages are upright already.
            _engine = RapidOCR(text_score=0.0, print_verbose=False, use_cls=False)
            _keep_spaces(_engine)
            logger.debug("loaded the RapidOCR models")
    return _engine


class _SpaceKeepingDecode:
    """RapidOCR's CTC decoder, reading a blank step where "space" scores ``SPACE_PROB`` or
    more as a space."""

    def __init__(self, inner: Any, space: int) -> None:
        self.inner = inner
        self.space = space

    def __call__(self, preds: Any, *args: Any, **kwargs: Any) -> Any:
        import numpy as np

        blank = preds.argmax(axis=2) == 0
        spaced = preds.copy()
        spaced[:, :, self.space] = np.where(
            blank & (preds[:, :, self.space] >= SPACE_PROB), 1.0, preds[:, :, self.space]
        )
        return self.inner(spaced, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _keep_spaces(ocr: Any) -> None:
    rec = getattr(ocr, "text_rec", None)
    decode = getattr(rec, "postprocess_op", None)
    characters = getattr(decode, "character", None)
    if not characters or characters[-1] != " ":
        logger.warning("RapidOCR's decoder is not the one expected: words may run together")
        return
    rec.postprocess_op = _SpaceKeepingDecode(decode, len(characters) - 1)  # type: ignore[union-attr]


@dataclass
class OcrResult:
    """A page read by OCR: its lines (each a list of cells), top to bottom."""

    lines: list[list[Segment]]
    low_confidence: int


def read_image(image: Image) -> OcrResult:
    """Recognise the text of a page image: lines in reading order, boxes as page fractions.
    A huge page (longer side past ``TILE_ABOVE``) is read in tiles at full resolution."""
    width, height = image.size
    items = []
    for (x0, y0, x1, y1), core in _tiles(width, height):
        tile = image if (x1 - x0, y1 - y0) == (width, height) else image.crop((x0, y0, x1, y1))
        for (bx0, by0, bx1, by1), text, score in _recognise(tile):
            middle = (x0 + (bx0 + bx1) / 2, y0 + (by0 + by1) / 2)
            if not (core[0] <= middle[0] < core[2] and core[1] <= middle[1] < core[3]):
                continue  # a neighbouring tile reads it whole
            box = ((x0 + bx0) / width, (y0 + by0) / height, (x0 + bx1) / width, (y0 + by1) / height)
            items.append((box, text, score))
    lines = [_cells(row, width / height) for row in _rows(items)]
    low = sum(1 for _, _, score in items if score < LOW_CONFIDENCE)
    return OcrResult(lines, low)


def _tiles(width: int, height: int) -> list[tuple[tuple[int, int, int, int], tuple[float, ...]]]:
    """``(crop box, core box)`` of each tile in pixels; the whole page when it is not huge."""
    if max(width, height) <= TILE_ABOVE:
        return [((0, 0, width, height), (0.0, 0.0, float(width), float(height)))]
    step = TILE - TILE_OVERLAP

    def starts(size: int) -> list[int]:
        out = list(range(0, max(1, size - TILE_OVERLAP), step))
        return [min(a, max(0, size - TILE)) for a in out] if size > TILE else [0]

    xs, ys = sorted(set(starts(width))), sorted(set(starts(height)))
    tiles = []
    for j, y0 in enumerate(ys):
        for i, x0 in enumerate(xs):
            x1, y1 = min(width, x0 + TILE), min(height, y0 + TILE)
            core = (
                (x0 + xs[i - 1] + TILE) / 2 if i else 0.0,  # halfway into the shared band
                (y0 + ys[j - 1] + TILE) / 2 if j else 0.0,
                (x1 + xs[i + 1]) / 2 if i + 1 < len(xs) else float(width),
                (y1 + ys[j + 1]) / 2 if j + 1 < len(ys) else float(height),
            )
            tiles.append(((x0, y0, x1, y1), core))
    return tiles


def _recognise(image: Image) -> list[tuple[tuple[float, float, float, float], str, float]]:
    """RapidOCR on one image: (pixel box, text, score) of each line it reads."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR reads OpenCV's BGR order
    with _run_lock:
        found, _ = engine()(pixels)
    out = []
    for points, text, score in found or []:
        text = " ".join(str(text).split())
        if not text:
            continue
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        out.append(((min(xs), min(ys), max(xs), max(ys)), text, float(score)))
    return out


_Item = tuple[tuple[float, float, float, float], str, float]


def _rows(items: list[_Item]) -> list[list[_Item]]:
    """Group recognised boxes into rows (a box joins a row whose middle it overlaps)."""
    rows: list[list[_Item]] = []
    for item in sorted(items, key=lambda i: (i[0][1] + i[0][3]) / 2):
        (_, y0, _, y1), middle = item[0], (item[0][1] + item[0][3]) / 2
        for row in rows:
            ry0 = sum(i[0][1] for i in row) / len(row)
            ry1 = sum(i[0][3] for i in row) / len(row)
            if ry0 <= middle <= ry1 and y0 <= (ry0 + ry1) / 2 <= y1:
                row.append(item)
                break
        else:
            rows.append([item])
    return [sorted(row, key=lambda i: i[0][0]) for row in rows]


def _cells(row: list[_Item], aspect: float) -> list[Segment]:
    """A row's boxes as segments: neighbours closer than ``CELL_GAP`` line heights are one
    run of text; wider gaps separate table cells (``aspect``: the page's width / height)."""
    out: list[Segment] = []
    cur_box, cur_text, cur_score = row[0]
    for box, text, score in row[1:]:
        line_height = max(cur_box[3] - cur_box[1], box[3] - box[1])
        if (box[0] - cur_box[2]) * aspect <= CELL_GAP * line_height:
            cur_box = (
                min(cur_box[0], box[0]),
                min(cur_box[1], box[1]),
                max(cur_box[2], box[2]),
                max(cur_box[3], box[3]),
            )
            cur_text, cur_score = f"{cur_text} {text}", min(cur_score, score)
            continue
        out.append(Segment(cur_text, cur_box, cur_score))
        cur_box, cur_text, cur_score = box, text, score
    out.append(Segment(cur_text, cur_box, cur_score))
    return out

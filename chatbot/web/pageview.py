"""A citation shown on its page: the PDF page or page image, rendered on demand and cached,
with the boxes of the cited sentence's lines laid over it (from the layout ingest stored:
pypdfium2's text boxes, or OCR's). No OCR here: only rendering."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import threading
from collections import OrderedDict
from pathlib import Path

from chatbot.types import Citation, Passage
from chatbot.web.ui import esc
from ingest import DocLayout, read_layout, render_page
from ingest.formats import LOADER_VERSIONS

logger = logging.getLogger(__name__)

PAGE_WIDTH = 900  # pixels of a rendered page
CACHE_PAGES = 32  # rendered pages kept (about 100 KB each)
PAD = 0.004  # page fraction added around each highlighted box


class PageViews:
    """``views(citation, passage)``: the HTML of the cited page with the quote highlighted,
    or "" when the citation is not into a PDF or image whose layout is stored and current."""

    def __init__(self, index_dir: Path, collection: str, width: int = PAGE_WIDTH) -> None:
        self.index_dir = Path(index_dir)
        self.collection = collection
        self.width = width
        self._pages: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self._hashes: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def __call__(self, citation: Citation, passage: Passage | None) -> str:
        if passage is None or not passage.root:
            return ""
        if Path(citation.source).suffix.lower() not in LOADER_VERSIONS:
            return ""
        try:
            layout = read_layout(self.index_dir, self.collection, passage.root, citation.source)
            if layout is None:
                return ""
            return self._view(Path(passage.root) / citation.source, layout, citation)
        except Exception:  # a page that cannot be shown must not cost the answer
            logger.exception("cannot show the page of %s", citation.source)
            return ""

    def _view(self, path: Path, layout: DocLayout, citation: Citation) -> str:
        hit = layout.highlight(citation.start, citation.end)
        if hit is None:
            return ""
        number, boxes = hit
        uri = self.page_image(path, layout.content_hash, number)
        if uri is None:
            return ""
        page = next(p for p in layout.pages if p.number == number)
        marks = "".join(
            '<span class="docqa-page-hl" style="'
            f"left:{100 * max(0.0, x0 - PAD):.2f}%;top:{100 * max(0.0, y0 - PAD):.2f}%;"
            f"width:{100 * (x1 - x0 + 2 * PAD):.2f}%;height:{100 * (y1 - y0 + 2 * PAD):.2f}%"
            '"></span>'
            for x0, y0, x1, y1 in boxes
        )
        how = "read by OCR" if page.ocr else "text layer"
        return (
            f'<figure class="docqa-pageview" data-page="{number}">'
            f'<div class="docqa-page-frame"><img class="docqa-page-img" src="{uri}" '
            f'alt="page {number} of {esc(citation.source)}">{marks}</div>'
            f"<figcaption>page {number} ({how}), the cited sentence highlighted</figcaption>"
            "</figure>"
        )

    def page_image(self, path: Path, content_hash: str, number: int) -> str | None:
        """Page ``number`` of ``path`` as a JPEG data URI, when the file still has the bytes
        the layout was made from (cached)."""
        key = (str(path), content_hash, number)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        if self._hash(path) != content_hash:
            return None
        image = render_page(path, number, self.width).convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=80)
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        with self._lock:
            self._pages[key] = uri
            while len(self._pages) > CACHE_PAGES:
                self._pages.popitem(last=False)
        return uri

    def _hash(self, path: Path) -> str | None:
        try:
            st = path.stat()
        except OSError:
            return None
        key = (str(path), st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._hashes[key]

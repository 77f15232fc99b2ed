"""Scanned pages and page images read by OCR (RapidOCR, offline), PDF text cleaned of running
heads and line-end hyphens, and the page layouts kept so a citation can be drawn on its page.

The files are made here: text drawn into images, images into a PDF with no text layer; a text
PDF with a running header, page-number footers, a hyphenated line break and a table row."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from ingest import IngestSettings, LoadError, SettingsError, ingest_paths, load_document
from ingest.layout import RawPage, Segment
from ingest.pagetext import assemble
from tests.conftest import (
    HANDBOOK_PAGES,
    LINE_STEP,
    LINE_TOP,
    PAGE_PX,
    RUNNING_HEADER,
    headed_pdf_bytes,
    page_font,
    png_bytes,
    scanned_pdf_bytes,
    stored,
    write,
)

SCAN_PAGES = [
    [
        "Harbour Safety Rules",
        "Every visitor must sign the harbour register before boarding.",
        "The Quimper lighthouse keeper logged seventeen storms in 1911.",
    ],
    [
        "Refunds are paid within thirty days of a written request.",
        "The ferry to Glenan leaves at nine every morning in summer.",
    ],
]
PNG_LINES = [
    "Museum Opening Hours",
    "The maritime museum of Concarneau opens at ten on Sundays.",
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def word_accuracy(expected: str, got: str) -> float:
    """The share of the expected words that OCR read, in order (difflib's matching blocks)."""
    want, have = words(expected), words(got)
    matcher = difflib.SequenceMatcher(a=want, b=have, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / len(want)


# ---------------------------------------------------------------- text assembly (fast)


def _line(*cells: str, y: float = 0.5) -> list[Segment]:
    return [Segment(c, (0.1 + 0.3 * i, y, 0.3 + 0.3 * i, y + 0.02)) for i, c in enumerate(cells)]


def test_assemble_drops_running_heads_joins_hyphens_and_keeps_table_rows():
    pages = [
        RawPage(
            [
                _line("ACME Handbook", y=0.02),
                _line(f"Body text of page {n} talks about the extraordi-", y=0.3),
                _line("nary budget.", y=0.32),
                _line("Region", "Sales", "Year", y=0.4),
                _line(f"- {n} -", y=0.95),
            ],
            600,
            800,
        )
        for n in (1, 2, 3)
    ]
    text, starts, layout = assemble(pages)
    assert "ACME" not in text and "- 2 -" not in text
    assert text.count("extraordinary budget.") == 3 and "-\n" not in text
    assert text.count("Region | Sales | Year") == 3
    assert starts[0] == 0 and text[starts[1] :].startswith("Body text of page 2")
    for page in layout:  # every stored span is its own line's text, and has its box
        for start, end, *box in page.spans:
            assert 0 <= start < end <= len(text) and "\n" not in text[start:end]
            assert all(0 <= v <= 1 for v in box)
    first = layout[0]
    assert [text[s:e] for s, e, *_ in first.spans][:2] == [
        "Body text of page 1 talks about the extraordi",
        "nary budget.",
    ]


def test_a_page_of_only_a_repeated_line_keeps_it():
    pages = [RawPage([_line("Same boilerplate on every page.", y=0.05)], 1, 1) for _ in range(4)]
    assert assemble(pages)[0] == "\n\n".join(["Same boilerplate on every page."] * 4)


def test_two_page_documents_keep_their_first_lines():
    pages = [RawPage([_line("Same title"), _line(f"Text {n}.")], 1, 1) for n in (1, 2)]
    text, _, _ = assemble(pages)
    assert text.count("Same title") == 2  # too few pages to call it a running header


# ---------------------------------------------------------------- text PDFs


def test_text_pdf_without_running_header_page_numbers_or_line_end_hyphens(tmp_path: Path):
    path = write(tmp_path / "docs" / "handbook.pdf", headed_pdf_bytes(HANDBOOK_PAGES))
    doc = load_document(path)
    assert RUNNING_HEADER not in doc.text and "Page 2 of 3" not in doc.text
    assert "extraordinary budget" in doc.text and "extraordi-" not in doc.text
    assert "\nRegion | Boats | Crew\n" in doc.text
    assert doc.ocr_pages == 0 and doc.layout is not None
    fourteen = doc.text.index("fourteen nights")
    assert doc.page_at(fourteen) == 2
    # The joined word's two halves keep their own lines' boxes on page 1.
    at = doc.text.index("extraordinary budget")
    page, boxes = doc.layout.highlight(at, at + len("extraordinary budget"))
    assert page == 1 and len(boxes) == 2 and boxes[0][1] < boxes[1][1]

    settings = IngestSettings(index_dir=tmp_path / "index", embedding_model="fake", progress=False)
    assert ingest_paths([tmp_path / "docs"], settings).exit_code == 0
    chunks = stored(settings)
    assert chunks
    for chunk in chunks:
        assert RUNNING_HEADER not in chunk.text and not re.search(r"Page \d of", chunk.text)
        assert doc.text[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
    assert any("extraordinary budget" in c.text for c in chunks)


def test_ocr_setting_is_checked():
    with pytest.raises(SettingsError, match="ocr must be one of off, auto, force, got 'maybe'"):
        IngestSettings.from_env({"DOCQA_OCR": "maybe"})
    assert IngestSettings.from_env({"DOCQA_OCR": "force"}).ocr == "force"


def test_ocr_off_skips_scans_and_images(tmp_path: Path):
    scan = write(tmp_path / "scan.pdf", scanned_pdf_bytes(SCAN_PAGES[:1]))
    png = write(tmp_path / "page.png", png_bytes(PNG_LINES))
    with pytest.raises(LoadError, match="no text found in the PDF.*OCR is off"):
        load_document(scan, ocr="off")
    with pytest.raises(LoadError, match="OCR is off"):
        load_document(png, ocr="off")
    with pytest.raises(LoadError, match="not a readable image"):
        load_document(write(tmp_path / "bad.png", b"\x89PNG\r\n\x1a\n broken"))


# ---------------------------------------------------------------- OCR (slow: seconds a page)


@pytest.mark.slow
def test_scanned_pdf_and_png_are_read_by_ocr_with_line_boxes(tmp_path: Path):
    scan = load_document(write(tmp_path / "scan.pdf", scanned_pdf_bytes(SCAN_PAGES)))
    png = load_document(write(tmp_path / "page.png", png_bytes(PNG_LINES)))
    expected = "\n".join(line for page in SCAN_PAGES for line in page)
    accuracy = word_accuracy(expected, scan.text)
    png_accuracy = word_accuracy("\n".join(PNG_LINES), png.text)
    print(f"OCR word accuracy: scanned PDF {accuracy:.3f}, PNG {png_accuracy:.3f}")
    assert accuracy >= 0.9 and png_accuracy >= 0.9, (scan.text, png.text)
    assert scan.ocr_pages == 2 and png.ocr_pages == 1 and len(scan.page_starts) == 2
    assert scan.page_at(scan.text.index("ferry")) == 2
    assert png.page_starts == (0,) and png.page_at(png.text.index("museum")) == 1
    # Each drawn line's box lies where it was drawn (within a fraction of a line).
    for page_no, lines in enumerate(SCAN_PAGES, start=1):
        for row, line in enumerate(lines):
            word = max(line.rstrip(".").split(), key=len)  # the longest: found once
            at = scan.text.index(word, scan.page_starts[page_no - 1])
            page, boxes = scan.layout.highlight(at, at + len(word))
            top = LINE_TOP + row * LINE_STEP
            assert page == page_no
            assert abs(boxes[0][1] - top / PAGE_PX[1]) < 0.5 * LINE_STEP / PAGE_PX[1], line
    # OCR off the direction classifier: nothing is read upside down.
    assert "Harbour Safety Rules" in scan.text and scan.title == "Harbour Safety Rules"


@pytest.mark.slow
@pytest.mark.model
def test_scans_are_ingested_once_answered_with_their_page_and_shown(tmp_path, monkeypatch):
    from chatbot import Chatbot, ChatSettings
    from chatbot.web.pageview import PageViews
    from chatbot.web.ui import passage_for
    from ingest.layout import LayoutStore
    from ingest.manifest import doc_key

    docs = tmp_path / "docs"
    write(docs / "rules.pdf", scanned_pdf_bytes(SCAN_PAGES))
    write(docs / "museum.png", png_bytes(PNG_LINES))
    write(docs / "notes.txt", "The harbour office closes at noon on Saturdays.")
    settings = IngestSettings(index_dir=tmp_path / "index", progress=False)
    report = ingest_paths([docs], settings)
    assert report.exit_code == 0, report.plan.failed
    assert "OCR read 3 pages" in report.summary()
    layouts = LayoutStore(settings.index_dir, settings.collection)
    root = str(docs.resolve())
    assert layouts.load(doc_key(root, "rules.pdf")) is not None
    assert layouts.load(doc_key(root, "notes.txt")) is None

    bot = Chatbot(ChatSettings(index=settings))
    answer = bot.answer("Which ferry leaves every morning in summer?")
    assert not answer.declined, answer.text
    cited = [c for c in answer.citations if "ferry" in c.quote]
    assert cited and cited[0].source == "rules.pdf" and cited[0].page == 2
    museum = bot.answer("Which museum opens on Sundays?")
    assert any(c.source == "museum.png" and c.page == 1 for c in museum.citations), museum

    views = PageViews(settings.index_dir, settings.collection)
    html = views(cited[0], passage_for(cited[0], answer.trace.passages))
    assert 'data-page="2"' in html and "data:image/jpeg;base64," in html
    assert html.count('class="docqa-page-hl"') == 1

    # Unchanged files are not read again, let alone OCR'd.
    def no_ocr(image):
        raise AssertionError("OCR ran on an unchanged file")

    monkeypatch.setattr("ingest.ocr.read_image", no_ocr)
    again = ingest_paths([docs], settings)
    assert again.summary().startswith("added 0, updated 0, deleted 0, unchanged 3")
    assert layouts.load(doc_key(root, "rules.pdf")) is not None  # kept by reingest

    (docs / "museum.png").unlink()
    gone = ingest_paths([docs], settings)
    assert "deleted 1" in gone.summary()
    assert not layouts.path(doc_key(root, "museum.png")).exists()
    # A changed file no longer matches its layout: no page is shown for it.
    (docs / "rules.pdf").write_bytes(scanned_pdf_bytes(SCAN_PAGES[:1]))
    fresh = PageViews(settings.index_dir, settings.collection)
    assert fresh(cited[0], passage_for(cited[0], answer.trace.passages)) == ""


def test_a_huge_scan_is_read_in_tiles_at_full_resolution(monkeypatch):
    """A 9000-px-wide scan: read whole, RapidOCR would shrink it 4.5 times and lose the
    30-px text; in tiles each line is read, one from each end of the page and one across a
    tile's edge, with boxes as fractions of the whole page."""
    from PIL import Image, ImageDraw

    from ingest.ocr import TILE, TILE_OVERLAP, read_image

    image = Image.new("L", (9000, 400), 255)
    draw = ImageDraw.Draw(image)
    font = page_font(30)
    lines = {
        120: "The harbour office opens at nine.",
        8400 - 500: "Ferries leave every hour.",
        TILE - TILE_OVERLAP - 150: "Tickets are sold on board.",  # across the first edge
    }
    for x, text in lines.items():
        draw.text((x, 180), text, fill=0, font=font)
    result = read_image(image)
    found = [seg for line in result.lines for seg in line]
    text = " ".join(seg.text for seg in found)
    for expected in lines.values():
        assert word_accuracy(expected, text) >= 0.75, (expected, text)
    assert len(found) == len(lines)  # the line across an edge is read once
    left = min(found, key=lambda s: s.box[0])
    assert left.box[0] < 120 / 9000 + 0.002 and 0.4 < left.box[1] < 0.5
    # read whole, as before tiles, the shrunken text is lost
    monkeypatch.setattr("ingest.ocr.TILE_ABOVE", 10**9)
    whole = " ".join(seg.text for line in read_image(image).lines for seg in line)
    assert all(word_accuracy(expected, whole) < 0.5 for expected in lines.values()), whole


def test_ocr_work_is_bounded_per_document_and_per_page(tmp_path, monkeypatch):
    import io

    from PIL import Image

    import ingest.ocr
    import ingest.pdf

    monkeypatch.setattr(ingest.pdf, "MAX_OCR_PAGES", 2)
    path = write(tmp_path / "scan.pdf", scanned_pdf_bytes([["one"], ["two"], ["three"]]))
    with pytest.raises(LoadError) as err:
        load_document(path)
    assert str(err.value).startswith(
        f"{path}: needs OCR on 3 pages; the limit is 2 pages a document"
    )
    # a wall-sized page (200 inches a side) holding one image: rendered within the budget
    monkeypatch.setattr(ingest.pdf, "MAX_RENDER_PIXELS", 4_000_000)
    rendered: list[tuple[int, int]] = []

    def record(image):
        rendered.append(image.size)
        return ingest.ocr.OcrResult([], 0)

    monkeypatch.setattr(ingest.ocr, "read_image", record)
    buf = io.BytesIO()
    Image.new("L", (2000, 2000), 200).save(buf, "PDF", resolution=10)
    with pytest.raises(LoadError, match="no text found"):  # a blank page: nothing to read
        load_document(write(tmp_path / "wall.pdf", buf.getvalue()), ocr="force")
    ((w, h),) = rendered
    assert w * h <= 4_000_000 * 1.01 and w > 1500  # not 40000 x 40000 pixels at 200 dpi

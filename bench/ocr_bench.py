"""OCR benchmark: pages/s of RapidOCR on this machine, and the end-to-end ingest of a 20-page
scanned PDF (render, OCR, split, embed, store) with the default embedding model.

    .venv/bin/python bench/ocr_bench.py [--pages 20] [--ocr-pages 5]

The PDF is made here: A4 pages at 150 dpi, each with 30 lines of prose drawn in a TrueType
font of this machine, no text layer (as a scanner makes). Pages/s is measured on pages
rendered at the DPI ingest uses, after one warm-up page (the models load once per process).
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest import IngestSettings, ingest_paths, set_offline_env  # noqa: E402

set_offline_env()

WORDS = (
    "the harbour council reviewed mooring fees and approved a budget for dredging the outer "
    "basin while visiting yachts may stay fourteen nights and fuel is sold at the north "
    "pontoon from april to october every visitor must sign the register before boarding"
).split()


def font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        for path in sorted(Path("/usr/share/fonts").rglob(name)):
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def page(n: int, lines: int = 30):
    from PIL import Image, ImageDraw

    image = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(image)
    face = font(26)
    for i in range(lines):
        words = [WORDS[(n * 7 + i * 11 + j) % len(WORDS)] for j in range(10)]
        draw.text((110, 120 + i * 50), " ".join(words).capitalize() + ".", fill=0, font=face)
    return image


def scanned_pdf(pages: int) -> bytes:
    images = [page(n) for n in range(pages)]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20, help="pages of the scanned PDF")
    parser.add_argument("--ocr-pages", type=int, default=5, help="pages timed for pages/s")
    args = parser.parse_args()

    import pypdfium2 as pdfium

    from ingest.ocr import RENDER_DPI, engine, read_image

    data = scanned_pdf(args.pages)
    document = pdfium.PdfDocument(data)
    images = [document[i].render(scale=RENDER_DPI / 72).to_pil() for i in range(args.ocr_pages + 1)]
    document.close()
    started = time.perf_counter()
    engine()
    load_s = time.perf_counter() - started
    read_image(images[0])  # warm-up
    started = time.perf_counter()
    lines = sum(len(read_image(image).lines) for image in images[1:])
    ocr_s = time.perf_counter() - started
    print(f"RapidOCR models loaded in {load_s:.2f} s")
    print(
        f"OCR: {args.ocr_pages} pages ({lines} lines) in {ocr_s:.1f} s = "
        f"{args.ocr_pages / ocr_s:.2f} pages/s ({ocr_s / args.ocr_pages:.2f} s a page, "
        f"{RENDER_DPI} dpi)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        pdf = folder / "scanned.pdf"
        pdf.write_bytes(data)
        settings = IngestSettings(index_dir=Path(tmp) / "index", progress=False)
        started = time.perf_counter()
        report = ingest_paths([folder], settings)
        total = time.perf_counter() - started
        print(
            f"ingest of a {args.pages}-page scanned PDF: {total:.1f} s end to end "
            f"({args.pages / total:.2f} pages/s); {report.summary()}"
        )
        started = time.perf_counter()
        again = ingest_paths([folder], settings)
        print(f"reingest, unchanged: {time.perf_counter() - started:.2f} s; {again.summary()}")


if __name__ == "__main__":
    main()

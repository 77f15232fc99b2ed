"""Hostile and huge documents: what ``python -m ingest`` does with each, and its peak RSS.

Each case is one folder holding a normal document and one hostile file; the ingest runs in a
fresh process (the real embedding model) and its peak RSS (``ru_maxrss`` of that child) is
printed with the outcome: the hostile file refused in one line or read within bounds, and the
normal document ingested either way. Target: peak RSS <= 1.5 GB on every case.

    python bench/hostile_bench.py [--cases bomb,scan150,...] [--keep DIR]

A benchmark, not a test: it prints a table and exits 0.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

NORMAL = "# Harbour\n\nThe harbour office opens at nine in the morning on weekdays.\n"
LINE = "The ferry to the island leaves from pier four every hour."


def _font(size: int):
    from tests.conftest import page_font

    return page_font(size)


def bomb_png(folder: Path) -> None:
    """400 megapixels of one colour: a few hundred KB, 400 MB once decoded."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # to make it; the ingest keeps Pillow's limit
    Image.new("1", (20000, 20000), 1).save(folder / "bomb.png", optimize=True)


def scan150_png(folder: Path) -> None:
    """A 150-megapixel scan (12500 x 12000) with lines of 40-px text across it."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (12500, 12000), 255)
    draw = ImageDraw.Draw(image)
    font = _font(40)
    for y in range(500, 12000, 2500):
        for x in range(300, 12500, 4000):
            draw.text((x, y), LINE, fill=0, font=font)
    image.save(folder / "scan150.png", optimize=True)


def scan500_pdf(folder: Path) -> None:
    """A 500-page scanned PDF (image-only pages)."""
    from PIL import Image, ImageDraw

    pages = []
    for i in range(500):
        page = Image.new("L", (620, 877), 255)
        ImageDraw.Draw(page).text((60, 80), f"Page {i + 1}. {LINE}", fill=0, font=_font(14))
        pages.append(page)
    pages[0].save(folder / "scan500.pdf", "PDF", save_all=True, append_images=pages[1:])


def wall_pdf(folder: Path) -> None:
    """One PDF page 120 inches a side holding one image (at 200 dpi: 576 megapixels)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (3000, 3000), 255)
    ImageDraw.Draw(image).text((200, 1400), LINE, fill=0, font=_font(60))
    image.save(folder / "wall.pdf", "PDF", resolution=25)


def bomb_docx(folder: Path) -> None:
    """A DOCX whose parts unpack to 1 GB of zeros."""
    from tests.conftest import docx_bytes

    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(docx_bytes())) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with dst.open("word/media/padding.bin", "w") as part:
            for _ in range(1024):
                part.write(b"\0" * 2**20)
    (folder / "bomb.docx").write_bytes(out.getvalue())


def huge_txt(folder: Path) -> None:
    """A 2 GB text file (sparse: it takes no disk)."""
    with (folder / "huge.txt").open("wb") as fh:
        fh.truncate(2 * 2**30)


def binary_md(folder: Path) -> None:
    """Random bytes named .md."""
    import os

    (folder / "binary.md").write_bytes(os.urandom(5 * 2**20))


def growing_txt(folder: Path) -> Callable[[], None]:
    """A text file that keeps growing while the ingest runs (1 MB every 0.1 s)."""
    path = folder / "growing.txt"
    path.write_text(LINE + "\n", encoding="utf-8")
    stop = threading.Event()

    def grow() -> None:
        with path.open("a", encoding="utf-8") as fh:
            while not stop.wait(0.1):
                fh.write((LINE + "\n") * 17000)
                fh.flush()

    threading.Thread(target=grow, daemon=True).start()
    return stop.set


CASES: dict[str, Callable[[Path], Callable[[], None] | None]] = {
    "bomb_png": bomb_png,
    "scan150_png": scan150_png,
    "scan500_pdf": scan500_pdf,
    "wall_pdf": wall_pdf,
    "bomb_docx": bomb_docx,
    "huge_txt": huge_txt,
    "binary_md": binary_md,
    "growing_txt": growing_txt,
}

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"{done.returncode}\\t{peak}")
sys.stdout.write(done.stderr + done.stdout)
"""


def run_case(name: str, base: Path) -> dict:
    folder = base / name / "docs"
    folder.mkdir(parents=True)
    (folder / "normal.md").write_text(NORMAL, encoding="utf-8")
    stop = CASES[name](folder)
    cmd = [sys.executable, "-m", "ingest", str(folder), "--index-dir", str(base / name / "idx")]
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, cwd=ROOT
        ).stdout
    finally:
        if stop:
            stop()
    seconds = time.perf_counter() - started
    head, _, log = out.partition("\n")
    code, peak_kb = (int(x) for x in head.split("\t"))
    lines = [ln for ln in log.splitlines() if ln.strip()]
    said = [ln for ln in lines if name.split("_")[0] in ln and ("skipped" in ln or ":" in ln)]
    summary = next((ln for ln in lines if ln.startswith("added ")), "")
    return {
        "case": name,
        "exit": code,
        "peak_rss_mb": peak_kb / 1024,
        "seconds": seconds,
        "said": said[0] if said else "",
        "normal_ingested": "added 2" in summary or "added 1" in summary,
        "summary": summary,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--keep", type=Path, default=None, help="build the cases here and keep them")
    args = ap.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="docqa-hostile-"))
    rows = []
    try:
        for name in args.cases.split(","):
            row = run_case(name, base)
            rows.append(row)
            print(
                f"{row['case']:<12} exit {row['exit']}  peak RSS {row['peak_rss_mb']:7.0f} MB  "
                f"{row['seconds']:6.1f} s  normal doc ingested: {row['normal_ingested']}\n"
                f"             {row['said'][:150]}\n             {row['summary'][:150]}",
                flush=True,
            )
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    worst = max(r["peak_rss_mb"] for r in rows)
    print(f"\nworst peak RSS {worst:.0f} MB (target <= 1536 MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared fixtures and helpers: settings for throwaway indexes, file builders, the index
contract's corpus, a Chroma server, the seed app, and what a cited seed answer must satisfy.
Test modules import helpers from here, never from each other."""

from __future__ import annotations

import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from ingest.config import set_offline_env

if TYPE_CHECKING:
    from chatbot import Answer
    from chatbot.accounts import Users
    from ingest import IngestSettings

set_offline_env()

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_762628c52ecf43e6.txt"
START_TIMEOUT_S = 30.0
_names = itertools.count()


@pytest.fixture
def fake_settings(request: pytest.FixtureRequest, tmp_path: Path) -> IngestSettings:
    """Settings for a throwaway index with the deterministic fake embedding: embedded under
    ``tmp_path``, or a fresh collection on the test Chroma server when a test is
    parametrized with ``indirect`` "server" (see ``BACKENDS`` in test_index_contract)."""
    from ingest import IngestSettings

    if getattr(request, "param", "embedded") == "server":
        return server_settings(tmp_path / "index", request.getfixturevalue("chroma_server"))
    return IngestSettings(index_dir=tmp_path / "index", embedding_model="fake", progress=False)


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8, line endings as given) to ``path``, making folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- document builders


def pdf_bytes(pages: list[str], title: str | None = None) -> bytes:
    """A real PDF with one page per entry (Helvetica, so plain ASCII text)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    if title:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


PDF_PAGES = [
    "Apples grow on trees in the orchard. The apple harvest starts in September.",
    "Bananas ripen in warm climates. A banana plant is really a giant herb.",
    "Cherries are small stone fruits. Cherry blossoms open in spring.",
]


FONT_CANDIDATES = (
    "DejaVuSans.ttf",
    "LiberationSans-Regular.ttf",
    "Arial.ttf",
    "FreeSans.ttf",
    "NotoSans-Regular.ttf",
)


def page_font(size: int):
    """A scalable sans-serif font for drawing test pages: a TrueType font of this machine
    (searched under the usual font folders), else Pillow's own scalable default."""
    from PIL import ImageFont

    for folder in (
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        Path.home() / ".fonts",
    ):
        for name in FONT_CANDIDATES:
            for path in sorted(folder.rglob(name)) if folder.is_dir() else []:
                return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)  # Pillow >= 10.1


PAGE_PX = (1240, 1754)  # A4 at 150 dpi
LINE_TOP, LINE_STEP, LEFT = 150, 64, 120


def page_image(lines: list[str], font_size: int = 30):
    """A white A4 page (150 dpi) with ``lines`` drawn in black, one per row from the top:
    row ``i`` starts at y = LINE_TOP + i * LINE_STEP pixels."""
    from PIL import Image, ImageDraw

    image = Image.new("L", PAGE_PX, 255)
    draw = ImageDraw.Draw(image)
    font = page_font(font_size)
    for i, line in enumerate(lines):
        draw.text((LEFT, LINE_TOP + i * LINE_STEP), line, fill=0, font=font)
    return image


def scanned_pdf_bytes(pages: list[list[str]]) -> bytes:
    """A PDF of page images only (no text layer), as a scanner makes."""
    images = [page_image(lines) for lines in pages]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=150)
    return buf.getvalue()


def png_bytes(lines: list[str]) -> bytes:
    buf = io.BytesIO()
    page_image(lines).save(buf, "PNG")
    return buf.getvalue()


RUNNING_HEADER = "Harbour Authority Handbook - Internal"


def headed_pdf_bytes(pages: list[list[str | tuple[str, ...]]]) -> bytes:
    """A text PDF whose pages carry a running header and a "Page N of M" footer; each entry
    of ``pages`` is that page's lines, drawn one per row as given (so a line may end in a
    hyphenated word; a tuple is a table row of cells)."""
    from fpdf import FPDF

    class Headed(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, RUNNING_HEADER, new_x="LMARGIN", new_y="NEXT")
            self.ln(6)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = Headed()
    for lines in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        for line in lines:
            if isinstance(line, tuple):  # a table row: one 45 mm cell each
                for cell in line:
                    pdf.cell(45, 7, cell)
                pdf.ln(7)
            else:
                pdf.cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


HANDBOOK_PAGES: list[list[str | tuple[str, ...]]] = [
    [
        "Mooring fees are reviewed by the harbour council every spring.",
        "The committee approved the extraordi-",
        "nary budget for dredging the outer basin.",
        ("Region", "Boats", "Crew"),
    ],
    ["Visiting yachts may stay for fourteen nights at most."],
    ["Fuel is sold at the north pontoon from April to October."],
]


def docx_bytes(*, core_title: str | None = None) -> bytes:
    """Title paragraph, body paragraphs, a table (one merged cell), an empty paragraph."""
    import docx

    document = docx.Document()
    if core_title:
        document.core_properties.title = core_title
    document.add_paragraph("Quarterly Sales Report", style="Title")
    document.add_paragraph("Revenue rose in every region during the third quarter.")
    document.add_paragraph("")
    table = document.add_table(rows=3, cols=2)
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "Sales"
    table.cell(1, 0).text = "North"
    table.cell(1, 1).text = "42"
    merged = table.cell(2, 0).merge(table.cell(2, 1))
    merged.text = "Totals pending"
    document.add_paragraph("The closing paragraph comes after the table.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


HTML_PAGE = """<!DOCTYPE html>
<html>
<head>
  <title>Garden Notes</title>
  <meta name="date" content="2020-05-17">
  <style>.x { color: red } STYLE_SECRET</style>
  <script>var SCRIPT_SECRET = 1;</script>
</head>
<body>
  <header><div>HEADER_SECRET site banner</div></header>
  <nav><a href="/">NAV_SECRET home</a> <a href="/b">blog</a></nav>
  <main>
    <h1>Growing tomatoes</h1>
    <p>Tomatoes need <b>plenty</b> of sun and a
       <a href="/water">regular watering</a> schedule to thrive.</p>
    <p>Prune the side shoots weekly.</p>
    <ul><li>Stake the plants early.</li><li>Mulch the soil.</li></ul>
    <table><tr><th>Variety</th><th>Days</th></tr><tr><td>Roma</td><td>75</td></tr></table>
    <!-- COMMENT_SECRET -->
    <pre>line one
  line two</pre>
  </main>
  <aside>ASIDE_SECRET related posts</aside>
  <footer>FOOTER_SECRET copyright</footer>
  <script>console.log("SCRIPT2_SECRET")</script>
</body>
</html>
"""


# ---------------------------------------------------------------- the index contract's corpus


PARA = (
    "The council voted on the new water policy after a long debate about costs. "
    "Members who opposed it said the plan would raise bills for older residents. "
)


class CountingEmbedding(DeterministicFakeEmbedding):
    """The fake embedding, counting how many texts it was asked to embed."""

    calls: int = 0
    texts: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        self.texts += len(texts)
        return super().embed_documents(texts)


def corpus(root: Path) -> Path:
    """Three documents under ``root``: a.txt (dated), sub/b.md and c.html."""
    write(root / "a.txt", "date 2020-01-02 Alpha report.\n\n" + PARA * 20)
    write(root / "sub" / "b.md", "# Beta notes\n\n" + PARA * 8 + "\n\nThe beta ends here.")
    write(root / "c.html", f"<html><title>Gamma</title><body><p>{PARA * 3}</p></body></html>")
    return root


def stored(settings: IngestSettings):
    """Every chunk in the index ``settings`` name."""
    from ingest import open_index

    index = open_index(settings)
    try:
        return list(index.iter_chunks())
    finally:
        index.close()


# ---------------------------------------------------------------- a Chroma server


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """A ``chroma run`` server on 127.0.0.1 and a free port; (host, port)."""
    import httpx

    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.exists():
        pytest.fail(f"no chroma executable at {chroma} (pip install chromadb in this venv)")
    base = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log_path = base / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(chroma), "run", "--path", str(base / "data"), "--host", "127.0.0.1"]
            + ["--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"chroma run exited with {proc.returncode} before answering on port "
                    f"{port}: {log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"chroma run (pid {proc.pid}) did not answer on port {port} within "
                        f"{START_TIMEOUT_S:.0f} s: {log_path.read_text(errors='replace')[-2000:]}"
                    )
                time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def server_settings(index_dir: Path, server: tuple[str, int], **changes) -> IngestSettings:
    """Fake-embedding settings for a new collection on ``server`` (host, port), with the
    manifest and BM25 side in ``index_dir``."""
    from ingest import IngestSettings

    host, port = server
    return IngestSettings(
        index_dir=index_dir,
        embedding_model="fake",
        progress=False,
        chroma_host=host,
        chroma_port=port,
        collection=f"t{next(_names)}-{uuid.uuid4().hex[:8]}",
    ).replace(**changes)


# ---------------------------------------------------------------- the seed article and app


def seed_body() -> str:
    """The seed article's text as ingested (header removed)."""
    from ingest import load_document

    return load_document(SEED).text


def assert_cited(answer: Answer, expected: str) -> None:
    """The answer states ``expected`` and a citation quotes a sentence of the article that
    contains it, at the offsets it claims."""
    body = seed_body()
    assert not answer.declined, answer.text
    assert expected.lower() in answer.text.lower(), answer.text
    assert re.search(r"\[\d+\]", answer.text)
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert numbers == {c.n for c in answer.citations}
    for c in answer.citations:
        assert body[c.start : c.end] == c.quote
        assert c.source == SEED.name and c.date == "2018-03-22"
    assert any(expected.lower() in c.quote.lower() for c in answer.citations)


def serve_seed_app(base: Path, **changes):
    """Ingest seeds/ into ``base``/index with the real model and launch the web app on a free
    port (``changes``: other ``WebSettings``). Returns (demo, url, settings, handlers); the
    caller closes ``demo``."""
    from chatbot.config import ChatSettings
    from chatbot.web.app import launch
    from chatbot.web.config import WebSettings
    from ingest import IngestSettings, ingest_paths

    index = IngestSettings(index_dir=base / "index", progress=False)
    assert ingest_paths([ROOT / "seeds"], index).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=index),
        port=free_port(),
        docs_dir=base / "documents",
        eval_cases_file=base / "cases.jsonl",
        watch_documents=False,  # the tests reingest on their own clicks
        **changes,
    )
    demo, handlers, url = launch(settings, seeds_dir=ROOT / "seeds", block=False, quiet=True)
    return demo, url, settings, handlers


def run_eval(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``python -m eval ARGS`` in this process: (exit code, stdout, stderr)."""
    import logging

    from eval.__main__ import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = main([str(a) for a in args])
    finally:  # main() configures logging onto the captured stderr: undo it
        for h in root.handlers:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    out = capsys.readouterr()
    return code, out.out, out.err


def serve_accounts_app(base: Path, users: Users, **changes):
    """Ingest seeds/ into ``base``/index with the fake model and launch the web app with
    ``users`` (a ``chatbot.accounts.Users``) as its users file (``changes``: other
    ``WebSettings``). Returns (demo, url, settings, handlers); the caller closes ``demo``
    and the handlers."""
    from chatbot.accounts import save_users
    from chatbot.config import ChatSettings
    from chatbot.web.app import launch
    from chatbot.web.config import WebSettings
    from ingest import IngestSettings, ingest_paths

    save_users(base / "users", users)
    index = IngestSettings(index_dir=base / "index", embedding_model="fake", progress=False)
    assert ingest_paths([ROOT / "seeds"], index).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=index, min_dense=-1.0),  # fake similarities: noise
        port=free_port(),
        docs_dir=base / "documents",
        eval_cases_file=base / "cases.jsonl",
        watch_documents=False,
        users_file=str(base / "users"),
        **changes,
    )
    demo, handlers, url = launch(settings, seeds_dir=ROOT / "seeds", block=False, quiet=True)
    return demo, url, settings, handlers


# ---------------------------------------------------------------- the browser

CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "no system Chromium: run `apt-get install -y chromium` (make test installs it); "
            "Playwright's own browser download is not used"
        )
    return path

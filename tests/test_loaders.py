"""ingest.loaders, formats, header, discovery: reading .txt/.md/.html/.pdf/.docx into text +
metadata, and finding the files to read."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import sys
import zipfile

import pytest

from ingest.discovery import discover
from ingest.errors import LoadError
from ingest.formats import SUPPORTED_EXTENSIONS
from ingest.header import split_header, title_from_text
from ingest.loaders import load_document
from tests.conftest import HTML_PAGE, PDF_PAGES, SEED, docx_bytes, pdf_bytes, write


@pytest.fixture(autouse=True)
def _quiet_pypdf():
    """pypdf logs a warning per damaged object; the corrupt-PDF cases would flood the log."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


# ---------------------------------------------------------------- text and markdown


def test_seed_article_date_header_is_metadata_not_text(tmp_path):
    path = write(tmp_path / "seed.txt", SEED.read_bytes())
    doc = load_document(path)
    assert doc.date == "2018-03-22"
    assert doc.text.startswith("U.S. Attorney General Jeff Sessions instructed")
    assert "2018-03-22" not in doc.text
    assert not doc.text.lower().startswith("date")
    # "U.S." must not end the first sentence: the title is the article's opening words.
    assert doc.title.startswith("U.S. Attorney General Jeff Sessions")
    assert len(doc.title) <= 81
    assert doc.source == "seed.txt" and doc.path == path
    assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert doc.page_starts == () and doc.page_at(0) is None


def test_source_argument_overrides_name(tmp_path):
    path = write(tmp_path / "a" / "b.txt", "Some body text.")
    assert load_document(path, "a/b.txt").source == "a/b.txt"


@pytest.mark.parametrize(
    "raw",
    [
        "date 2018-03-22 The body starts on the same line.",
        " date 2018-03-22 The body starts on the same line.",
        "Date: 2018-03-22\nThe body starts on the same line.",
        "DATE 2018-03-22\r\n\r\nThe body starts on the same line.",
    ],
)
def test_leading_date_header_variants(tmp_path, raw):
    doc = load_document(write(tmp_path / "d.txt", raw))
    assert doc.date == "2018-03-22"
    assert doc.text == "The body starts on the same line."


@pytest.mark.parametrize(
    "raw",
    [
        "The date 2018-03-22 was chosen for the launch.",
        "Date palms grow in the desert.\n\n2018-03-22 is not a header here.",
        "dates 2018-03-22 and 2018-04-01 are listed below.",
    ],
)
def test_date_in_body_is_left_alone(tmp_path, raw):
    doc = load_document(write(tmp_path / "d.txt", raw))
    assert doc.date is None
    assert doc.text == raw


def test_markdown_front_matter_title_and_date(tmp_path):
    raw = (
        "---\n"
        'title: "Release notes: version 2"\n'
        "date: 2021-05-06T10:00:00Z\n"
        "tags: [a, b]\n"
        "---\n"
        "# Heading that is not the title\n\n"
        "The body text.\n"
    )
    doc = load_document(write(tmp_path / "notes.md", raw))
    assert doc.title == "Release notes: version 2"
    assert doc.date == "2021-05-06"
    assert doc.text == "# Heading that is not the title\n\nThe body text."
    assert "---" not in doc.text and "tags:" not in doc.text


def test_markdown_heading_is_title(tmp_path):
    raw = "Some introductory sentence before the heading.\n\n# Getting Started\n\nInstall it.\n"
    doc = load_document(write(tmp_path / "guide.markdown", raw))
    assert doc.title == "Getting Started"
    assert doc.date is None


def test_txt_does_not_use_markdown_heading_rule(tmp_path):
    raw = "A plain first sentence here. More text.\n\n# not a heading in a .txt\n"
    doc = load_document(write(tmp_path / "plain.txt", raw))
    assert doc.title == "A plain first sentence here."


def test_crlf_and_lone_cr_are_normalised(tmp_path):
    raw = b"First line\r\n\r\nSecond paragraph.\r\nThird line.\rFourth line."
    doc = load_document(write(tmp_path / "crlf.txt", raw))
    assert "\r" not in doc.text
    assert doc.text == "First line\n\nSecond paragraph.\nThird line.\nFourth line."
    assert doc.title == "First line"


def test_utf8_bom_is_dropped(tmp_path):
    raw = "\ufeffdate 2019-01-02\nCafé crème — naïve résumé.".encode()
    doc = load_document(write(tmp_path / "bom.txt", raw))
    assert doc.date == "2019-01-02"
    assert doc.text == "Café crème — naïve résumé."
    assert "\ufeff" not in doc.text and "\ufeff" not in doc.title


def test_title_falls_back_to_file_stem_never_empty(tmp_path):
    doc = load_document(write(tmp_path / "dots.txt", "..."))
    assert doc.title


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Short heading\n\nBody text follows here.", "Short heading"),
        ("## Sub heading\n\nBody.", "Sub heading"),
        ("This is a sentence. And another one.", "This is a sentence."),
        ("Mr. Smith went to Washington. He stayed.", "Mr. Smith went to Washington."),
        ("The U.S. economy grew. Then it shrank.", "The U.S. economy grew."),
        ('He said "stop." Then left.', 'He said "stop."'),
        ("Is this a question? Yes it is.", "Is this a question?"),
    ],
)
def test_title_from_text(text, title):
    assert title_from_text(text) == title


def test_title_from_long_sentence_is_cut_at_a_word():
    text = " ".join(["word"] * 60) + "."
    title = title_from_text(text)
    assert title.endswith("…")
    assert len(title) <= 81
    assert title[:-1].split(" ") == ["word"] * len(title[:-1].split(" "))


def test_split_header_front_matter_then_date_line():
    body, title, date = split_header("---\ntitle: T\n---\ndate 2001-02-03\nBody.\n")
    assert (body, title, date) == ("Body.", "T", "2001-02-03")


def test_split_header_without_header_only_strips():
    assert split_header("  plain text \n") == ("plain text", None, None)


# ---------------------------------------------------------------- HTML


def test_html_drops_boilerplate_and_keeps_paragraphs(tmp_path):
    doc = load_document(write(tmp_path / "page.html", HTML_PAGE))
    for secret in (
        "STYLE_SECRET",
        "SCRIPT_SECRET",
        "SCRIPT2_SECRET",
        "HEADER_SECRET",
        "NAV_SECRET",
        "ASIDE_SECRET",
        "FOOTER_SECRET",
        "COMMENT_SECRET",
        "color: red",
        "console.log",
    ):
        assert secret not in doc.text
    paragraphs = doc.text.split("\n\n")
    # Inline tags and line breaks in the source do not split the sentence.
    assert "Tomatoes need plenty of sun and a regular watering schedule to thrive." in paragraphs
    assert "Prune the side shoots weekly." in paragraphs
    assert "Stake the plants early." in paragraphs and "Mulch the soil." in paragraphs
    assert paragraphs[0] == "Growing tomatoes"
    assert "line one\nline two" in doc.text  # <pre> keeps its lines
    assert "\n\n\n" not in doc.text and doc.text == doc.text.strip()
    assert doc.title == "Garden Notes"
    assert doc.date == "2020-05-17"


def test_html_inline_tags_do_not_split_words(tmp_path):
    html = "<p>Un<b>believ</b>able <i>re</i>sult, <a href='#'>click</a>able.</p>"
    doc = load_document(write(tmp_path / "inline.htm", html))
    assert doc.text == "Unbelievable result, clickable."


def test_html_table_cells_stay_apart(tmp_path):
    html = "<table><tr><td>Name</td><td>Age</td></tr><tr><td>Ada</td><td>36</td></tr></table>"
    doc = load_document(write(tmp_path / "table.html", html))
    assert "NameAge" not in doc.text and "Ada36" not in doc.text
    assert doc.text.split("\n\n") == ["Name Age", "Ada 36"]


def test_html_date_from_time_datetime_and_title_from_h1(tmp_path):
    html = (
        "<html><body><article><h1>Launch <em>day</em></h1>"
        '<p>Posted <time datetime="2019-07-04T12:00:00Z">July 4th</time>.</p>'
        "</article></body></html>"
    )
    doc = load_document(write(tmp_path / "post.html", html))
    assert doc.date == "2019-07-04"
    assert doc.title == "Launch day"
    assert "Posted July 4th." in doc.text.split("\n\n")


@pytest.mark.parametrize(
    "meta",
    [
        '<meta property="article:published_time" content="2022-11-30T08:00:00+00:00">',
        '<meta name="DC.date" content="2022-11-30">',
        '<meta itemprop="datePublished" content="2022-11-30">',
    ],
)
def test_html_date_meta_variants(tmp_path, meta):
    html = f"<html><head>{meta}</head><body><p>Body.</p></body></html>"
    assert load_document(write(tmp_path / "m.html", html)).date == "2022-11-30"


def test_html_main_is_preferred_over_the_rest_of_body(tmp_path):
    html = (
        "<body><div>OUTSIDE_MAIN sidebar text</div>"
        "<main><p>Inside main.</p></main><div>ALSO_OUTSIDE</div></body>"
    )
    doc = load_document(write(tmp_path / "main.html", html))
    assert doc.text == "Inside main."


def test_html_entities_and_nbsp(tmp_path):
    html = "<p>Fish&nbsp;&amp;&nbsp;chips &lt;3 &eacute;t&eacute;</p>"
    doc = load_document(write(tmp_path / "e.html", html))
    assert doc.text == "Fish & chips <3 été"


# ---------------------------------------------------------------- PDF


def test_pdf_pages_and_page_at(tmp_path):
    doc = load_document(write(tmp_path / "fruit.pdf", pdf_bytes(PDF_PAGES)))
    assert len(doc.page_starts) == 3 and doc.page_starts[0] == 0
    for number, page in enumerate(PDF_PAGES, start=1):
        first = page.split(". ")[0]
        offset = doc.text.index(first)
        assert doc.text.count(first) == 1
        assert doc.page_at(offset) == number
        assert doc.page_at(offset + len(first) - 1) == number
        assert doc.text[doc.page_starts[number - 1] :].startswith(first)
    assert doc.page_at(len(doc.text) - 1) == 3
    assert doc.title.startswith("Apples grow on trees")
    assert doc.date is None


def test_pdf_title_from_metadata(tmp_path):
    doc = load_document(write(tmp_path / "t.pdf", pdf_bytes(PDF_PAGES[:2], title="Fruit Guide")))
    assert doc.title == "Fruit Guide"


def test_pdf_blank_page_is_kept_in_page_numbering(tmp_path):
    doc = load_document(write(tmp_path / "gap.pdf", pdf_bytes([PDF_PAGES[0], "", PDF_PAGES[2]])))
    assert len(doc.page_starts) == 3
    assert doc.page_at(doc.text.index("Cherries")) == 3


# ---------------------------------------------------------------- DOCX


def test_docx_text_title_and_table_in_reading_order(tmp_path):
    doc = load_document(write(tmp_path / "report.docx", docx_bytes()))
    assert doc.title == "Quarterly Sales Report"
    paragraphs = doc.text.split("\n\n")
    assert paragraphs == [
        "Quarterly Sales Report",
        "Revenue rose in every region during the third quarter.",
        "Region | Sales",
        "North | 42",
        "Totals pending",  # a merged cell is listed once
        "The closing paragraph comes after the table.",
    ]


def test_docx_core_properties_title_wins(tmp_path):
    doc = load_document(write(tmp_path / "r.docx", docx_bytes(core_title="Official Title")))
    assert doc.title == "Official Title"


# ---------------------------------------------------------------- bad input


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _docx_with_broken_xml() -> bytes:
    original = zipfile.ZipFile(io.BytesIO(docx_bytes()))
    entries = {name: original.read(name) for name in original.namelist()}
    entries["word/document.xml"] = entries["word/document.xml"][:80]
    return _zip(entries)


def _real_pdf() -> bytes:
    return pdf_bytes(PDF_PAGES)


BAD_INPUTS = {
    "binary.txt": (lambda: b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "binary"),
    "empty.txt": (lambda: b"", "empty"),
    "blank.md": (lambda: b"  \n\t \r\n\n   ", "empty"),
    "latin1.txt": (lambda: "café au lait".encode("latin-1"), "UTF-8"),
    "latin1.html": (lambda: "<p>café</p>".encode("latin-1"), "UTF-8"),
    "only-script.html": (lambda: b"<script>var a = 1;</script><nav>menu</nav>", "no text"),
    "half.pdf": (lambda: _real_pdf()[: len(_real_pdf()) // 2], "PDF"),
    "random.pdf": (lambda: random.Random(7).randbytes(4096), "PDF"),
    "textual.pdf": (lambda: b"just some text pretending to be a pdf\n", "PDF"),
    # pypdf raises NotImplementedError for an unknown stream filter.
    "badfilter.pdf": (lambda: _real_pdf().replace(b"/FlateDecode", b"/FlateDecodX"), "PDF"),
    "blank-page.pdf": (lambda: pdf_bytes([""]), "no text"),
    "random.docx": (lambda: random.Random(8).randbytes(4096), "DOCX"),
    "half.docx": (lambda: docx_bytes()[: len(docx_bytes()) // 2], "DOCX"),
    "plainzip.docx": (lambda: _zip({"hello.txt": b"hi"}), "DOCX"),
    "brokenxml.docx": (_docx_with_broken_xml, "DOCX"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_is_a_one_line_load_error(tmp_path, name):
    make, reason = BAD_INPUTS[name]
    path = write(tmp_path / name, make())
    with pytest.raises(LoadError) as info:
        load_document(path)
    err = info.value
    message = str(err)
    assert "\n" not in message and "\r" not in message
    assert message == f"{path}: {err.reason}"
    assert err.path == str(path)
    assert reason.lower() in err.reason.lower()


def test_file_over_max_bytes(tmp_path):
    path = write(tmp_path / "big.txt", "x" * 5000)
    with pytest.raises(LoadError) as info:
        load_document(path, max_bytes=1000)
    assert str(info.value).startswith(f"{path}: ")
    assert "limit" in info.value.reason and "\n" not in str(info.value)
    assert load_document(path, max_bytes=5000).text == "x" * 5000


@pytest.mark.parametrize("name", ["notes.rtf", "image.HEIC", "README"])
def test_unsupported_extension(tmp_path, name):
    path = write(tmp_path / name, "text")
    with pytest.raises(LoadError) as info:
        load_document(path)
    assert str(info.value).startswith(f"{path}: unsupported file type")
    assert ".pdf" in info.value.reason  # names what is supported


def test_extension_is_case_insensitive(tmp_path):
    assert load_document(write(tmp_path / "LOUD.TXT", "Hello.")).text == "Hello."


def test_missing_file_and_folder_named_like_a_file(tmp_path):
    with pytest.raises(LoadError, match="cannot stat"):
        load_document(tmp_path / "missing.txt")
    (tmp_path / "folder.txt").mkdir()
    with pytest.raises(LoadError, match="cannot read"):
        load_document(tmp_path / "folder.txt")


def test_load_error_message_is_always_one_line():
    err = LoadError("some/file.pdf", "bad thing\non two lines\r\n  and more")
    assert str(err) == "some/file.pdf: bad thing on two lines and more"


# ---------------------------------------------------------------- discover


def _sources(discovery) -> list[str]:
    return [found.source for found in discovery.files]


def test_discover_walks_recursively_in_sorted_order(tmp_path):
    docs = tmp_path / "docs"
    for name in ["z/e.docx", "sub/deeper/d.pdf", "sub/c.html", "b.txt", "a.md", "sub/B.txt"]:
        write(docs / name, "x")
    found = discover([docs])
    assert _sources(found) == [
        "a.md",
        "b.txt",
        "sub/B.txt",
        "sub/c.html",
        "sub/deeper/d.pdf",
        "z/e.docx",
    ]
    assert found.roots == [docs.resolve()]
    assert all(f.root == docs.resolve() for f in found.files)
    assert all(f.path == docs.resolve() / f.source for f in found.files)
    assert found.errors == [] and found.notices == []


def test_discover_skips_hidden_with_notice(tmp_path):
    write(tmp_path / "visible.txt", "x")
    write(tmp_path / ".secret.txt", "x")
    write(tmp_path / ".git" / "notes.md", "x")
    write(tmp_path / "sub" / ".cache" / "deep.txt", "x")
    found = discover([tmp_path])
    assert _sources(found) == ["visible.txt"]
    notices = "\n".join(found.notices)
    assert ".secret.txt: skipped hidden file" in notices
    assert ".git: skipped hidden folder" in notices
    assert ".cache: skipped hidden folder" in notices
    assert "notes.md" not in notices and "deep.txt" not in notices


def test_discover_skips_unsupported_with_notice(tmp_path):
    write(tmp_path / "keep.pdf", b"%PDF")
    write(tmp_path / "photo.heic", b"\x00\x00")
    write(tmp_path / "Makefile", "all:")
    found = discover([tmp_path])
    assert _sources(found) == ["keep.pdf"]
    assert sorted(found.notices) == [
        f"{tmp_path.resolve() / 'Makefile'}: skipped unsupported file type",
        f"{tmp_path.resolve() / 'photo.heic'}: skipped unsupported file type",
    ]
    assert found.errors == []
    assert {ext for ext in SUPPORTED_EXTENSIONS} >= {".txt", ".md", ".html", ".pdf", ".docx"}


def test_discover_missing_path_is_an_error(tmp_path):
    write(tmp_path / "real.txt", "x")
    missing = tmp_path / "nope" / "gone.md"
    found = discover([missing, tmp_path / "real.txt"])
    assert len(found.errors) == 1
    assert str(found.errors[0]) == f"{missing}: no such file or directory"
    assert _sources(found) == ["real.txt"]


def test_discover_named_file_has_its_folder_as_root(tmp_path):
    path = write(tmp_path / "sub" / "one.txt", "x")
    found = discover([path])
    assert found.roots == []  # a named file is not a walked folder: nothing gets deleted
    assert len(found.files) == 1
    assert found.files[0].root == (tmp_path / "sub").resolve()
    assert found.files[0].source == "one.txt"


def test_discover_named_unsupported_file_is_an_error(tmp_path):
    path = write(tmp_path / "slides.pptx", b"PK")
    found = discover([path])
    assert found.files == [] and len(found.errors) == 1
    assert str(found.errors[0]).startswith(f"{path}: unsupported file type '.pptx'")


def test_discover_does_not_duplicate(tmp_path):
    path = write(tmp_path / "one.txt", "x")
    write(tmp_path / "two.md", "x")
    found = discover([tmp_path, path, tmp_path])
    assert sorted(str(f.path) for f in found.files) == sorted(
        str(tmp_path.resolve() / n) for n in ("one.txt", "two.md")
    )


def test_discover_symlink_loop_does_not_hang_or_duplicate(tmp_path):
    docs = tmp_path / "docs"
    write(docs / "a.txt", "x")
    write(docs / "inner" / "b.txt", "x")
    os.symlink(docs, docs / "inner" / "loop")  # inner/loop -> docs: a cycle
    os.symlink(docs / "inner", docs / "again")
    found = discover([docs])
    assert _sources(found) == ["a.txt", "inner/b.txt"]
    assert any("loop: skipped symbolic link to a folder" in n for n in found.notices)
    assert found.errors == []


def test_discover_reports_broken_symlink(tmp_path):
    write(tmp_path / "ok.txt", "x")
    os.symlink(tmp_path / "deleted.txt", tmp_path / "dangling.txt")
    os.symlink("self.md", tmp_path / "self.md")  # a link to itself never resolves
    found = discover([tmp_path])
    assert _sources(found) == ["ok.txt"]
    errors = sorted(str(e) for e in found.errors)
    base = tmp_path.resolve()
    assert errors == [
        f"{base / 'dangling.txt'}: broken symbolic link",
        f"{base / 'self.md'}: broken symbolic link",
    ]


def test_discover_follows_symlinked_files(tmp_path):
    target = write(tmp_path / "elsewhere" / "real.txt", "x")
    write(tmp_path / "docs" / "plain.txt", "x")
    os.symlink(target, tmp_path / "docs" / "link.txt")
    found = discover([tmp_path / "docs"])
    assert _sources(found) == ["link.txt", "plain.txt"]
    assert load_document(found.files[0].path).text == "x"


@pytest.mark.skipif(not hasattr(os, "mkfifo") or sys.platform == "win32", reason="needs FIFOs")
def test_discover_skips_fifo_instead_of_blocking_on_it(tmp_path):
    write(tmp_path / "ok.txt", "x")
    os.mkfifo(tmp_path / "pipe.txt")
    found = discover([tmp_path])
    assert _sources(found) == ["ok.txt"]
    assert any("pipe.txt: skipped, not a regular file" in n for n in found.notices)


def test_discovered_files_all_load(tmp_path):
    write(tmp_path / "a.txt", SEED.read_bytes())
    write(tmp_path / "b" / "page.html", HTML_PAGE)
    write(tmp_path / "b" / "fruit.pdf", pdf_bytes(PDF_PAGES))
    write(tmp_path / "c" / "report.docx", docx_bytes())
    found = discover([tmp_path])
    assert _sources(found) == ["a.txt", "b/fruit.pdf", "b/page.html", "c/report.docx"]
    docs = [load_document(f.path, f.source) for f in found.files]
    assert [d.source for d in docs] == _sources(found)
    assert all(d.text.strip() and d.title for d in docs)


def test_a_docx_zip_bomb_is_refused_in_one_line_before_it_is_unpacked(tmp_path):
    import io
    import zipfile

    from ingest.formats import MAX_DOCX_UNPACKED_BYTES

    good = docx_bytes()
    bomb = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(good)) as src,
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out,
    ):
        for info in src.infolist():
            out.writestr(info, src.read(info))
        # a part of zeros that unpacks past the limit: a few hundred KB packed
        with out.open("word/media/padding.bin", "w") as part:
            block = b"\0" * 2**20
            for _ in range(MAX_DOCX_UNPACKED_BYTES // 2**20 + 1):
                part.write(block)
    assert len(bomb.getvalue()) < 2 * 2**20
    path = write(tmp_path / "bomb.docx", bomb.getvalue())
    with pytest.raises(LoadError) as err:
        load_document(path)
    message = str(err.value)
    assert message.startswith(f"{path}: unpacks to 258 MB; the limit for a DOCX is 256 MB")
    assert "\n" not in message


def test_a_document_with_more_text_than_the_limit_is_refused_in_one_line(tmp_path):
    path = write(tmp_path / "book.txt", "The ferry leaves every hour. " * 40000)  # 1.1 MB
    with pytest.raises(LoadError) as err:
        load_document(path, max_text_bytes=2**20)
    assert str(err.value) == (
        f"{path}: holds 1.11 MB of text, over the 1.00 MB limit (DOCQA_MAX_TEXT_MB)"
    )
    assert load_document(path, max_text_bytes=2 * 2**20).text.startswith("The ferry")


def test_a_file_growing_while_it_is_read_stops_at_the_limit(tmp_path, monkeypatch):
    from pathlib import Path

    from ingest.loaders import read_file

    path = write(tmp_path / "log.txt", "line\n" * 100)
    real_stat = Path.stat

    def stat_before_growth(self, *args, **kwargs):  # the size seen before the file grew
        result = real_stat(self, *args, **kwargs)
        if self == path:
            with open(path, "a") as fh:
                fh.write("more\n" * 1000)
        return result

    monkeypatch.setattr(Path, "stat", stat_before_growth)
    with pytest.raises(LoadError, match="grew past the 0.00 MB limit while it was read"):
        read_file(path, 1000)

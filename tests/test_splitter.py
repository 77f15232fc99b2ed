"""ingest.splitter: token-bounded chunks whose offsets point back into the text."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from ingest.config import MODEL_WINDOW_TOKENS
from ingest.loaders import load_document
from ingest.splitter import Chunk, TokenSplitter
from tests.conftest import HTML_PAGE, PDF_PAGES, SEED, docx_bytes, pdf_bytes, write

SIZES = [(200, 40), (64, 16), (16, 4), (254, 0)]


@pytest.fixture(scope="module")
def splitters() -> dict[tuple[int, int], TokenSplitter]:
    return {(size, overlap): TokenSplitter("fake", size, overlap) for size, overlap in SIZES}


@pytest.fixture(scope="module")
def splitter() -> TokenSplitter:
    return TokenSplitter("fake", 200, 40)


def check_chunks(splitter: TokenSplitter, text: str) -> list[Chunk]:
    """Split ``text`` and assert what must hold for any text."""
    chunks = splitter.split(text)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
        tokens = splitter.count_tokens(c.text)
        assert tokens <= splitter.chunk_size and tokens <= MODEL_WINDOW_TOKENS
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start > prev.start and nxt.end > prev.end
        # Nothing but whitespace is ever skipped between chunks.
        assert not text[prev.end : nxt.start].strip()
        if splitter.chunk_overlap == 0:
            assert nxt.start >= prev.end
    if chunks:
        assert not text[: chunks[0].start].strip()
        assert not text[chunks[-1].end :].strip()
    else:
        assert not text.strip()
    return chunks


def prose(n_sentences: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = (
        "river mountain harvest lantern copper quiet meadow signal orchard voyage "
        "thunder pepper marble window garden silver bridge candle forest harbor"
    ).split()
    sentences = []
    for _ in range(n_sentences):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))
        sentences.append(sentence.capitalize() + ".")
    return " ".join(sentences)


TRICKY = {
    "repeated paragraphs": "\n\n".join(["The quick brown fox jumps over the lazy dog."] * 80),
    "repeated lines": "\n".join(["Page header: ACME Corp confidential"] * 300),
    "long word": "x" * 3000,
    "long word in prose": prose(10) + " " + "ab" * 1500 + " " + prose(10, seed=1),
    "unicode": "Ünïcödé naïve café — 日本語のテキストです。 Привет мир! 😀🎉 مرحبا بالعالم. " * 60,
    "short lines": "\n".join(f"item {i}: ok" for i in range(1500)),
    "one long paragraph": prose(150),
    "whitespace soup": "  \n\n \t word \n\n\n\n  another\t\tword  \n \n" * 200,
    "punctuation only": "... !!! ??? ;;; ,,, " * 300,
    "no separators but spaces": " ".join(["token"] * 2000),
    "mixed": "# Title\n\n" + "\n\n".join(prose(8, seed=s) for s in range(12)),
}


@pytest.mark.parametrize("name", sorted(TRICKY))
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_invariants_on_tricky_text(splitters, name, size):
    text = TRICKY[name]
    chunks = check_chunks(splitters[size], text)
    assert chunks


def test_invariants_on_loaded_documents(tmp_path, splitters):
    paths = [
        write(tmp_path / "seed.txt", SEED.read_bytes()),
        write(tmp_path / "page.html", HTML_PAGE),
        write(tmp_path / "fruit.pdf", pdf_bytes(PDF_PAGES * 4)),
        write(tmp_path / "report.docx", docx_bytes()),
    ]
    for path in paths:
        doc = load_document(path)
        for splitter in splitters.values():
            check_chunks(splitter, doc.text)


def test_seed_article_chunks(splitter):
    text = load_document(SEED).text
    chunks = check_chunks(splitter, text)
    assert len(chunks) >= 2
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_repeated_paragraphs_get_their_own_offsets(splitter):
    """Searching for each chunk's text would find an earlier copy: offsets must advance."""
    paragraph = "The quick brown fox jumps over the lazy dog."
    text = "\n\n".join([paragraph] * 80)
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 3
    assert chunks[-1].end == len(text)
    step = len(paragraph) + 2
    assert all(c.start % step == 0 for c in chunks)  # whole paragraphs, at their own place
    assert len({c.start for c in chunks}) == len(chunks)


def test_long_word_is_covered_to_the_end(splitter):
    text = "x" * 3000
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 1
    assert chunks[0].start == 0 and chunks[-1].end == 3000


def test_repeated_pdf_pages_map_to_every_page(tmp_path, splitter):
    """The same boilerplate on every page: chunk offsets must reach the last page."""
    page = "The same boilerplate sentence is printed on every page."
    doc = load_document(write(tmp_path / "same.pdf", pdf_bytes([page] * 12)))
    assert doc.text == "\n\n".join([page] * 12)
    chunks = check_chunks(TokenSplitter("fake", 32, 8), doc.text)
    pages = [doc.page_at(c.start) for c in chunks]
    assert pages == sorted(pages) and len(set(pages)) == len(pages)
    assert pages[0] == 1 and doc.page_at(chunks[-1].end - 1) == 12
    assert max(pages) >= 10


def test_consecutive_chunks_overlap_in_running_prose():
    splitter = TokenSplitter("fake", 64, 16)
    text = prose(120)
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 5
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert nxt.start < prev.end
        shared = text[nxt.start : prev.end]
        assert 0 < splitter.count_tokens(shared) <= splitter.chunk_overlap


def test_no_overlap_when_overlap_is_zero():
    splitter = TokenSplitter("fake", 64, 0)
    text = prose(120)
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 5
    assert "".join(c.text for c in chunks).replace(" ", "") == text.replace(" ", "")


def test_chunks_prefer_paragraph_boundaries(splitter):
    rng = random.Random(3)
    paragraphs = [prose(rng.randint(1, 3), seed=i) for i in range(60)]
    assert all(splitter.count_tokens(p) < 60 for p in paragraphs)
    text = "\n\n".join(paragraphs)
    chunks = check_chunks(splitter, text)
    starts = {0} | {m.end() for m in re.finditer("\n\n", text)}
    ends = {len(text)} | {m.start() for m in re.finditer("\n\n", text)}
    for c in chunks:
        assert c.start in starts, f"chunk {c.index} starts mid-paragraph"
        assert c.end in ends, f"chunk {c.index} ends mid-paragraph"
    # Paragraphs are packed together, not one chunk each.
    assert len(chunks) < len(paragraphs) / 2


def test_long_paragraph_splits_at_sentence_ends():
    splitter = TokenSplitter("fake", 64, 0)
    text = prose(60)
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 3
    for c in chunks:
        assert c.text.endswith(".") and c.text[0].isupper()


def test_short_lines_split_at_line_ends():
    splitter = TokenSplitter("fake", 32, 0)
    text = "\n".join(f"line number {i} says hello" for i in range(200))
    chunks = check_chunks(splitter, text)
    for c in chunks:
        assert c.start == 0 or text[c.start - 1] == "\n"
        assert c.end == len(text) or text[c.end] == "\n"


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \n"])
def test_empty_or_blank_text_gives_no_chunks(splitter, text):
    assert splitter.split(text) == []


def test_short_text_is_one_stripped_chunk(splitter):
    text = "\n\n   Just one small paragraph.  \n"
    assert splitter.split(text) == [Chunk(0, "Just one small paragraph.", 5, 30)]


def test_chunk_size_over_the_model_window_is_capped():
    splitter = TokenSplitter("fake", 400, 0)
    chunks = check_chunks(splitter, " ".join(["word"] * 3000))
    assert max(splitter.count_tokens(c.text) for c in chunks) <= MODEL_WINDOW_TOKENS


def test_split_is_deterministic(splitter):
    text = prose(200)
    chunks = check_chunks(splitter, text)
    assert len(chunks) > 1 and chunks[0].start == 0 and chunks[-1].end == len(text.rstrip())
    assert splitter.split(text) == chunks  # the same call again
    assert TokenSplitter("fake", 200, 40).split(text) == chunks  # another splitter


def test_count_tokens_uses_the_minilm_tokenizer(splitter):
    assert splitter.count_tokens("") == 0
    assert splitter.count_tokens("hello world") == 2
    assert splitter.count_tokens("Hello, World!") == 4  # uncased, punctuation separate
    real = TokenSplitter("all-MiniLM-L6-v2", 200, 40)
    text = Path(SEED).read_text(encoding="utf-8")
    assert real.count_tokens(text) == splitter.count_tokens(text)
    assert real.split(text) == splitter.split(text)


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 11), (10, -1)])
def test_bad_sizes_are_rejected(size, overlap):
    with pytest.raises(ValueError):
        TokenSplitter("fake", size, overlap)


@pytest.mark.parametrize(("size", "overlap"), [(128, 24), (64, 16), (200, 0)])
def test_same_chunks_as_langchains_recursive_splitter(size, overlap):
    """The splitter is LangChain's RecursiveCharacterTextSplitter run on offsets: on text
    without repeats the chunk texts must be exactly LangChain's."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from ingest.splitter import SEPARATORS

    ours = TokenSplitter("fake", size, overlap)
    theirs = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        length_function=ours.count_tokens,
        separators=SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    rng = random.Random(size)
    words = SEED.read_text(encoding="utf-8").split()
    for _ in range(5):
        paras = [" ".join(rng.sample(words, rng.randint(5, 120))) for _ in range(12)]
        text = "\n\n".join(paras)
        assert [c.text for c in ours.split(text)] == theirs.split_text(text)


class _SpanBySpan(TokenSplitter):
    """Counts every span by tokenising it alone (the splitter before document offsets)."""

    def _count(self, text: str, start: int, end: int) -> int:
        return self.count_tokens(text[start:end])


ODD = list("abcdefgh ijklmnop\n\n. , ; : ! ? éüñ 中文字 😀 \t\u00ad\u200b ABC-'\"()[]") + [
    "unbrokenword" * 30,
    "\n\n",
    ". ",
]


@pytest.mark.parametrize(("size", "overlap"), [(128, 24), (16, 4), (254, 0)])
def test_counting_from_document_offsets_changes_no_chunk(size, overlap):
    rng = random.Random(size)
    texts = [SEED.read_text(encoding="utf-8")] + [
        "".join(rng.choice(ODD) for _ in range(rng.randint(0, 2500))) for _ in range(40)
    ]
    fast, direct = TokenSplitter("fake", size, overlap), _SpanBySpan("fake", size, overlap)
    for text in texts:
        assert fast.split(text) == direct.split(text)

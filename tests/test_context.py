"""Document context (title | publisher | date): header parsing, rendering, and its use in
retrieval (embedded and BM25-indexed with every chunk, never stored in the chunk text)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

import ingest.plan
from chatbot.types import Passage
from ingest import IngestSettings, ingest_paths, load_document, open_index
from ingest.context import (
    MAX_PART_CHARS,
    document_context,
    markdown_sections,
    section_at,
    titled,
)
from ingest.header import parse_header
from tests.conftest import SEED, write

TITLE = "Rates hold steady as lenders brace for a slower winter"
PUBLISHER = "TechCrunch"
HEADER = (
    f"title: {TITLE}\n"
    f"source: {PUBLISHER}\n"
    "published_at: 2023-10-05 14:02:11\n"
    "author: Jane Doe\n"
    "category: business\n"
    "url: https://example.com/rates?ref=rss\n"
    "\n"
)
# Long enough for several chunks; the publisher's name never appears in the body.
BODY = "\n\n".join(
    f"Paragraph {i}: the central bank kept its benchmark rate at {i + 4} per cent while "
    f"analysts expected the {name} sector to slow, and lenders tightened credit for "
    f"{i * 3 + 10} thousand small firms across the region."
    for i, name in enumerate(["housing", "retail", "farming", "mining", "shipping"] * 4)
)
OTHER = (
    "The council voted on the new water policy after a long debate about costs. "
    "Members who opposed it said the plan would raise bills for older residents. "
) * 10
CONTEXT = f"{TITLE} | {PUBLISHER} | October 5, 2023"


class SpyEmbedding(DeterministicFakeEmbedding):
    """The fake embedding, keeping every text it was asked to embed."""

    seen: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.seen.extend(texts)
        return super().embed_documents(texts)


def news_corpus(root: Path) -> Path:
    write(root / "news.txt", HEADER + BODY + "\n")
    write(root / "other.txt", OTHER)
    return root


def stored(settings: IngestSettings, source: str | None = None):
    index = open_index(settings)
    try:
        chunks = [c for c in index.iter_chunks() if source in (None, c.metadata["source"])]
    finally:
        index.close()
    return sorted(chunks, key=lambda c: c.metadata["chunk_index"])


# ---------------------------------------------------------------- header parsing


def test_news_header_is_metadata_not_body(tmp_path):
    doc = load_document(write(tmp_path / "mh.txt", HEADER + BODY + "\n"))
    assert doc.text == BODY
    assert (doc.title, doc.publisher, doc.date, doc.author) == (
        TITLE,
        PUBLISHER,
        "2023-10-05",
        "Jane Doe",
    )


def test_header_keys_are_case_insensitive_and_empty_values_are_none(tmp_path):
    text = "Title: Budget day\nSOURCE: The Age\nPublished: 2022-03-29\nAuthor:\n\nThe body.\n"
    doc = load_document(write(tmp_path / "x.md", "# Heading\n" + text))
    assert doc.text.startswith("# Heading")  # the block must open the file
    doc = load_document(write(tmp_path / "y.md", text + "# Heading\n"))
    assert (doc.title, doc.publisher, doc.date, doc.author) == (
        "Budget day",  # the header's title wins over the markdown heading
        "The Age",
        "2022-03-29",
        None,
    )
    assert doc.text == "The body.\n# Heading"


@pytest.mark.parametrize(
    "text",
    [
        "Note: the figures below are provisional.\n\nRevenue rose by a tenth in the year.",
        "Note: provisional.\nTitle: Revenue\n\nRevenue rose by a tenth in the year.",  # unknown key
        "Title: Revenue\nTitle: Again\n\nRevenue rose by a tenth in the year.",  # one key twice
        "Title: Revenue\nSource: Finance desk\nRevenue rose by a tenth in the year.",  # no blank
        "Title: Revenue\nSource: Finance desk",  # nothing after it: the whole file
    ],
)
def test_text_that_only_looks_like_a_header_keeps_its_text(tmp_path, text):
    doc = load_document(write(tmp_path / "note.txt", text))
    assert doc.text == text
    assert (doc.publisher, doc.author, doc.date) == (None, None, None)


def test_front_matter_publisher_source_and_author():
    front = (
        '---\ntitle: "Quoted title"\nsource: https://example.com/feed\npublisher: Reuters\n'
        "author: 'A. Writer'\ndate: 2019-07-01\ntags:\n  - a\n---\nBody text.\n"
    )
    header = parse_header(front)
    assert header.body == "Body text."
    assert (header.title, header.publisher, header.author, header.date) == (
        "Quoted title",
        "Reuters",
        "A. Writer",
        "2019-07-01",
    )
    # a source that is a link is not a publisher; "source" names one otherwise
    assert parse_header("---\nsource: https://x.org/a\n---\nB").publisher is None
    assert parse_header("---\nsource: The Verge\n---\nB").publisher == "The Verge"


def test_quotes_in_a_plain_header_title_are_the_title():
    header = parse_header("title: \"No sacred numbers\"\nsource: Globes\n\nBody 'quoted'\n")
    assert header.title == '"No sacred numbers"' and header.body == "Body 'quoted'"


def test_seed_date_line_still_parsed():
    doc = load_document(SEED)
    assert doc.date == "2018-03-22" and not doc.text.startswith("date")
    assert (doc.publisher, doc.author) == (None, None)


# ---------------------------------------------------------------- rendering


@pytest.mark.parametrize(
    ("title", "publisher", "date", "line"),
    [
        (
            "ASX set to drop as Wall Street’s September slump deepens",
            "The Sydney Morning Herald",
            "2023-09-26",
            "ASX set to drop as Wall Street’s September slump deepens | "
            "The Sydney Morning Herald | September 26, 2023",
        ),
        ("T", None, "2023-01-02", "T | January 2, 2023"),
        (None, "TechCrunch", None, "TechCrunch"),
        ("", "  ", "", ""),
        (None, None, None, ""),
        ("Two\n  lines", "P", "2023-13-40", "Two lines | P | 2023-13-40"),  # bad date kept
    ],
)
def test_document_context(title, publisher, date, line):
    assert document_context(title, publisher, date) == line


def test_document_context_cuts_a_runaway_title():
    line = document_context("word " * 100, "P", None)
    title = line.split(" | ")[0]
    assert title.endswith("…") and len(title) <= MAX_PART_CHARS + 1 and line.endswith(" | P")


def test_passage_reads_publisher_and_author_and_renders_context():
    meta = {
        "source": "news.txt",
        "title": TITLE,
        "publisher": PUBLISHER,
        "author": "Jane Doe",
        "date": "2023-10-05",
        "start": 0,
        "end": 4,
    }
    passage = Passage.from_chunk("c1", "Body", meta)
    assert (passage.publisher, passage.author) == (PUBLISHER, "Jane Doe")
    assert passage.context() == CONTEXT
    bare = Passage.from_chunk("c2", "Body", {"source": "a.txt", "title": ""})
    assert bare.publisher is None and bare.context() == ""


# ---------------------------------------------------------------- retrieval


def test_every_chunk_carries_the_context_metadata_and_stores_the_body_slice(
    tmp_path, fake_settings
):
    docs = news_corpus(tmp_path / "docs")
    spy = SpyEmbedding(size=384, seen=[])
    report = ingest_paths([docs], fake_settings, embeddings=spy)
    assert report.exit_code == 0
    doc = load_document(docs / "news.txt", "news.txt")
    chunks = stored(fake_settings, "news.txt")
    assert len(chunks) >= 3
    for chunk in chunks:
        meta = chunk.metadata
        assert (meta["title"], meta["publisher"], meta["date"], meta["author"]) == (
            TITLE,
            PUBLISHER,
            "2023-10-05",
            "Jane Doe",
        )
        assert doc.text[meta["start"] : meta["end"]] == chunk.text  # quotes stay body slices
        assert CONTEXT not in chunk.text and "published_at" not in chunk.text
    assert {c.metadata.get("publisher") for c in stored(fake_settings, "other.txt")} == {None}
    # the embedding saw the context line in front of each chunk's text
    for chunk in chunks:
        assert f"{CONTEXT}\n{chunk.text}" in spy.seen
    # no header, no heading: the title is the first sentence, shown but not a context
    other = stored(fake_settings, "other.txt")
    assert all(c.metadata["title_is_excerpt"] is True for c in other)
    assert all(c.text in spy.seen for c in other)
    assert len(spy.seen) == report.chunks_embedded


def test_an_excerpt_title_is_not_context_a_heading_is(tmp_path, fake_settings):
    docs = tmp_path / "docs"
    write(docs / "seed.txt", SEED.read_text(encoding="utf-8"))
    write(docs / "notes.txt", "Council water notes\n\n" + OTHER)
    write(docs / "plain.txt", OTHER)
    spy = SpyEmbedding(size=384, seen=[])
    ingest_paths([docs], fake_settings, embeddings=spy)
    by_source: dict[str, list] = {}
    for chunk in stored(fake_settings):
        by_source.setdefault(chunk.metadata["source"], []).append(chunk)
    seed = by_source["seed.txt"]
    assert seed[0].metadata["title"].startswith("U.S. Attorney General Jeff Sessions")
    assert all(f"March 22, 2018\n{c.text}" in spy.seen for c in seed)  # the date alone
    notes = by_source["notes.txt"]
    assert all(f"Council water notes\n{c.text}" in spy.seen for c in notes)
    assert all("title_is_excerpt" not in c.metadata for c in notes)
    assert all(c.text in spy.seen for c in by_source["plain.txt"])
    index = open_index(fake_settings)
    try:  # a reader's BM25 rebuild follows the same rule
        written = dict(index.lexical_search("Council water notes March 2018", 50))
        index.rebuild_lexical()
        assert dict(index.lexical_search("Council water notes March 2018", 50)) == pytest.approx(
            written
        )
    finally:
        index.close()


def test_bm25_finds_every_chunk_by_publisher_and_month(tmp_path, fake_settings):
    docs = news_corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    news = {c.id: c.metadata["chunk_index"] for c in stored(fake_settings, "news.txt")}
    index = open_index(fake_settings)
    try:
        for query in (PUBLISHER, "October 2023"):
            hits = {i for i, _ in index.lexical_search(query, 50)}
            assert hits == set(news), query  # every chunk, not only the first
            assert any(news[i] > 0 for i in hits)
        # a reader rebuilding BM25 from the stored chunks gets the same texts as the writer
        written = dict(index.lexical_search(PUBLISHER, 50))
        index.rebuild_lexical()
        assert dict(index.lexical_search(PUBLISHER, 50)) == pytest.approx(written)
    finally:
        index.close()


def test_a_new_context_scheme_reembeds_every_document_once(tmp_path, fake_settings, monkeypatch):
    docs = news_corpus(tmp_path / "docs")
    first = ingest_paths([docs], fake_settings)
    before = {c.id for c in stored(fake_settings)}
    monkeypatch.setattr(ingest.plan, "CONTEXT_VERSION", "test-next")
    spy = SpyEmbedding(size=384, seen=[])
    report = ingest_paths([docs], fake_settings, embeddings=spy)
    assert sorted(w.found.source for w in report.plan.update) == ["news.txt", "other.txt"]
    assert report.chunks_embedded == len(spy.seen) == first.chunks_total == report.chunks_total
    assert not before & {c.id for c in stored(fake_settings)}
    again = ingest_paths([docs], fake_settings, embeddings=SpyEmbedding(size=384, seen=[]))
    assert len(again.plan.unchanged) == 2 and again.chunks_embedded == 0


def test_a_new_date_reembeds_all_chunks_a_dropped_author_none(tmp_path, fake_settings):
    docs = news_corpus(tmp_path / "docs")
    path = docs / "news.txt"
    first = ingest_paths([docs], fake_settings)
    n = len(stored(fake_settings, "news.txt"))
    assert n >= 3 and first.chunks_total > n

    # author is not in the context: same ids and vectors, the stale key dropped
    path.write_text(HEADER.replace("author: Jane Doe\n", "") + BODY + "\n", encoding="utf-8")
    spy = SpyEmbedding(size=384, seen=[])
    report = ingest_paths([docs], fake_settings, embeddings=spy)
    assert [w.found.source for w in report.plan.update] == ["news.txt"] and spy.seen == []
    assert all("author" not in c.metadata for c in stored(fake_settings, "news.txt"))
    assert {c.metadata["publisher"] for c in stored(fake_settings, "news.txt")} == {PUBLISHER}

    # the date is: every chunk of the document is embedded again, under the new line
    path.write_text(HEADER.replace("2023-10-05", "2023-11-06") + BODY + "\n", encoding="utf-8")
    spy = SpyEmbedding(size=384, seen=[])
    report = ingest_paths([docs], fake_settings, embeddings=spy)
    assert len(spy.seen) == n == report.chunks_embedded
    assert all(text.startswith(f"{TITLE} | {PUBLISHER} | November 6, 2023\n") for text in spy.seen)
    chunks = stored(fake_settings, "news.txt")
    assert {c.metadata["date"] for c in chunks} == {"2023-11-06"}
    assert {c.metadata["author"] for c in chunks} == {"Jane Doe"}


HANDBOOK = (
    "# Time off\n\n"
    "We offer unlimited time off, with at least 25 days a year expected.\n\n"
    "## Parental leave\n\n"
    "Parental leave is exceptional as it needs to be longer than a vacation.\n\n"
    + "If you have been with us for over a year, you can take up to 12 weeks off on full pay. "
    * 12
    + "\n\n```\n# not a heading: code\n```\n\n"
    "## Sick leave\n\n"
    "Tell your manager on the first morning you are sick.\n"
)


def test_markdown_sections_follow_the_heading_levels_outside_code():
    sections = markdown_sections(HANDBOOK)
    assert [path for _, path in sections] == [
        "Time off",
        "Time off › Parental leave",
        "Time off › Sick leave",
    ]
    assert section_at(sections, 0) == "Time off"
    assert section_at(sections, HANDBOOK.index("12 weeks")) == "Time off › Parental leave"
    assert section_at(sections, HANDBOOK.index("not a heading")) == "Time off › Parental leave"
    assert section_at(markdown_sections("no headings here"), 5) == ""
    assert titled("Time off", "Time off › Parental leave") == "Time off › Parental leave"
    assert titled("Handbook", "Time off › Sick leave") == "Handbook › Time off › Sick leave"
    assert titled(None, "Sick leave") == "Sick leave" and titled("T", "") == "T"


def test_a_chunk_is_found_by_the_heading_it_sits_under(tmp_path, fake_settings):
    """The later chunks of a section never name its subject; its heading, in their context
    line, lets BM25 (and the embedding) find them by it."""
    docs = tmp_path / "docs"
    write(docs / "time-off.md", HANDBOOK)
    spy = SpyEmbedding(size=384, seen=[])
    ingest_paths([docs], fake_settings, embeddings=spy)
    chunks = stored(fake_settings, "time-off.md")
    weeks = [c for c in chunks if "12 weeks" in c.text and "Parental" not in c.text]
    assert weeks, [c.text[:60] for c in chunks]
    for chunk in weeks:
        assert chunk.metadata["section"] == "Time off › Parental leave"
        assert f"Time off › Parental leave\n{chunk.text}" in spy.seen
        assert Passage.from_chunk(chunk.id, chunk.text, chunk.metadata).context() == (
            "Time off › Parental leave"
        )
    index = open_index(fake_settings)
    try:
        hits = {i for i, _ in index.lexical_search("parental leave", 50)}
        assert {c.id for c in weeks} <= hits
    finally:
        index.close()
    # renaming a heading re-embeds only the chunks that hold it or sit under it
    (docs / "time-off.md").write_text(HANDBOOK.replace("## Sick leave", "## Illness"))
    spy = SpyEmbedding(size=384, seen=[])
    report = ingest_paths([docs], fake_settings, embeddings=spy)
    assert spy.seen and all("Illness" in s for s in spy.seen)
    assert report.chunks_embedded < len(chunks)

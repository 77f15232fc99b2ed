"""The values that flow through the chain and out of the public API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.context import document_context, titled
from ingest.pagetext import PAGE_SEPARATOR


@dataclass
class Passage:
    """A retrieved chunk with its provenance and retrieval scores. ``n`` is its [n] number."""

    chunk_id: str
    text: str
    source: str
    title: str
    start: int
    end: int
    date: str | None = None
    page: int | None = None
    doc_id: str = ""
    n: int = 0
    dense_score: float | None = None
    dense_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None
    fused_score: float = 0.0
    publisher: str | None = None
    author: str | None = None
    root: str = ""  # the folder the document was ingested from
    title_is_excerpt: bool = False  # the title is only the text's opening words
    page_end: int | None = None  # the page the passage ends on (PDFs and images)
    section: str = ""  # the Markdown headings the passage sits under

    @classmethod
    def from_chunk(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> Passage:
        return cls(
            chunk_id=chunk_id,
            text=text,
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            start=int(meta.get("start", 0)),
            end=int(meta.get("end", len(text))),
            date=meta.get("date"),
            page=meta.get("page"),
            doc_id=str(meta.get("doc_id", "")),
            publisher=meta.get("publisher"),
            author=meta.get("author"),
            root=str(meta.get("root", "")),
            title_is_excerpt=bool(meta.get("title_is_excerpt")),
            page_end=meta.get("page_end"),
            section=str(meta.get("section") or ""),
        )

    def page_of(self, offset: int) -> int | None:
        """The page of character ``offset`` of the passage text: the passage's first page
        plus the page breaks before it (pages are joined by a blank line, which a PDF's or
        image's text has nowhere else), never past its last page."""
        if self.page is None:
            return None
        page = self.page + self.text[:offset].count(PAGE_SEPARATOR)
        return min(page, self.page_end) if self.page_end else page

    def context(self) -> str:
        """The document's context line: ``title | publisher | Month D, YYYY``, parts missing
        left out. (Retrieval's line leaves out a title that is only the text's first
        sentence; this one, for showing, keeps it.)"""
        return document_context(titled(self.title, self.section), self.publisher, self.date)

    def location(self) -> str:
        where = f"{self.source}, chars {self.start}-{self.end}"
        return f"{where}, page {self.page}" if self.page else where


@dataclass
class Citation:
    """What ``[n]`` in an answer points to: the quoted sentence, its passage and place."""

    n: int
    source: str
    title: str
    date: str | None
    chunk_id: str
    quote: str
    start: int  # character offsets of ``quote`` in the source document's text
    end: int
    supported: bool = True
    support: float = 1.0
    page: int | None = None
    passage: str = ""

    @classmethod
    def from_passage(
        cls,
        passage: Passage,
        n: int,
        span: tuple[int, int] | None = None,
        *,
        support: float = 1.0,
        supported: bool = True,
    ) -> Citation:
        """``[n]`` pointing into ``passage``: the quote is ``passage.text[a:b]`` for ``span``
        ``(a, b)`` (offsets in the passage text), or the whole passage without one."""
        if span is None:
            quote, start, end = passage.text, passage.start, passage.end
        else:
            a, b = span
            quote, start, end = passage.text[a:b], passage.start + a, passage.start + b
        page = passage.page if span is None else passage.page_of(span[0])
        return cls(
            n=n,
            source=passage.source,
            title=passage.title,
            date=passage.date,
            chunk_id=passage.chunk_id,
            quote=quote,
            start=start,
            end=end,
            supported=supported,
            support=support,
            page=page,
            passage=passage.text,
        )


@dataclass
class Trace:
    standalone_query: str = ""
    passages: list[Passage] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The reader model's decision, when it answered: its best span, that span's score, the
    # no-answer score, their margin and the threshold ("declined" when the margin fell short).
    reader: dict[str, Any] | None = None


@dataclass
class Answer:
    text: str
    declined: bool
    citations: list[Citation] = field(default_factory=list)
    short_answer: str | None = None
    unsupported_sentences: list[str] = field(default_factory=list)
    trace: Trace = field(default_factory=Trace)
    backend: str = "extractive"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of ``to_dict`` (e.g. an answer read back from saved conversations)."""
        trace = dict(data.get("trace") or {})
        trace["passages"] = [Passage(**p) for p in trace.get("passages", [])]
        fields = {**data, "trace": Trace(**trace)}
        fields["citations"] = [Citation(**c) for c in data.get("citations", [])]
        return cls(**fields)

"""The answering chain (LCEL): condense → retrieve → answer → cite, and the Chatbot facade."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from langchain_core.runnables import Runnable, RunnableLambda

from chatbot.answer_text import (
    PARTS_FRAMING,
    YES_NO_FRAMING,
    closest_citation,
    decline_note,
    decline_text,
    document_name,
    source_label,
    word_chunks,
)
from chatbot.cite import check_citations
from chatbot.condense import Condensed, condense
from chatbot.config import ChatSettings
from chatbot.extractive import Selection
from chatbot.question import QuestionShape
from chatbot.question import shape as question_shape
from chatbot.reader.model_dir import reader_folder
from chatbot.relevance import CorpusStats
from chatbot.sentences import content_terms
from chatbot.similarity import SentenceSimilarity
from chatbot.types import Answer, Passage, Trace

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from chatbot.reader.onnx_reader import OnnxReader
    from ingest import DocIndex

logger = logging.getLogger(__name__)

_CONTROL_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QuestionError(ValueError):
    """A question we cannot take; the message says why in one line."""


def clean_question(question: str, limit: int) -> str:
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    if len(question) > limit:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is {limit}"
        )
    cleaned = _CONTROL_RE.sub(" ", question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise QuestionError("the question is empty")
    return cleaned


@dataclass
class Turn:
    """One question's way through the chain: what each stage reads and writes.

    ``answer()``, ``stream()`` and the LCEL ``chain`` run the same stages on this one state,
    so what the eval measures is what the chat page shows."""

    question: str
    history: list[dict[str, str]]
    k: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    condensed: Condensed | None = None
    passages: list[Passage] = field(default_factory=list)
    selection: Selection | None = None
    raw_text: str = ""  # the answer before the citation check
    declined: bool = False
    reason: str = ""
    cite_passages: list[Passage] | None = None  # the passages [n] refers to, when renumbered
    quotes: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    short_answer: str | None = None
    shape: QuestionShape | None = None
    stats: CorpusStats | None = None
    mended: dict[str, str] = field(default_factory=dict)  # misspelt term -> index term
    framing: list[str] = field(default_factory=list)  # the answerer's own lines, not claims
    reader: dict | None = None  # the reader model's decision, for the trace
    answer: Answer | None = None

    @property
    def query(self) -> str:
        return self.condensed.query if self.condensed else self.question


class Chatbot:
    """Answers questions about the indexed documents, with checked citations.

    One instance holds the loaded index and models; it is safe to share between threads for
    reading. ``refresh()`` picks up a reingest.
    """

    def __init__(
        self,
        settings: ChatSettings,
        index: DocIndex | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        from chatbot.retrieve import HybridRetriever
        from ingest import open_index
        from ingest.embeddings import limit_threads

        self.settings = settings
        limit_threads(settings.index.embedding_model, settings.torch_threads)
        self.index = index or open_index(settings.index)
        self.retriever = HybridRetriever(self.index, settings)
        self._similarity = SentenceSimilarity(self.index.embeddings)
        self.backend = settings.answerer
        self._reader_dir = reader_folder(settings.reader) if self.backend == "extractive" else None
        self._reader: OnnxReader | None = None
        self._chat_model = chat_model
        if chat_model is None and self.backend != "extractive":
            from chatbot.generative import make_chat_model

            self._chat_model = make_chat_model(
                self.backend,
                base_url=settings.llm_base_url or None,
                api_key=settings.llm_api_key or None,
                timeout=settings.llm_timeout,
            )
        self.chain: Runnable = build_chain(self)

    @property
    def reader(self) -> OnnxReader:
        """The reader model, loaded on first use (one per process and folder)."""
        if self._reader is None:
            from chatbot.reader.onnx_reader import get_reader

            assert self._reader_dir is not None
            self._reader = get_reader(self._reader_dir, threads=self.settings.reader_threads)
        return self._reader

    @property
    def reader_thresholds(self) -> tuple[float, float]:
        """(decline below, answer from): the settings', else the model's calibrated pair."""
        config = self.reader.config
        low = self.settings.reader_threshold.strip() or config.get("threshold", 0.0)
        high = self.settings.reader_confident.strip() or config.get("confident", low)
        return float(low), max(float(low), float(high))

    # ---- stages: each reads and writes the one ``Turn``
    def _condense(self, turn: Turn) -> Turn:
        t = time.perf_counter()
        if self._chat_model is not None and turn.history:
            from chatbot.generative import generate
            from chatbot.prompts import build_condense_messages

            query = (
                generate(
                    self._chat_model, build_condense_messages(turn.question, turn.history)
                ).strip()
                or turn.question
            )
            turn.condensed = Condensed(query, "", query != turn.question)
        else:
            turn.condensed = condense(turn.question, turn.history)
        turn.shape = question_shape(turn.question)
        turn.timings["condense"] = _ms(t)
        return turn

    def _retrieve(self, turn: Turn) -> Turn:
        """Search for the standalone query (for a summary request, for the words that name
        the document), with misspelt words mended against the index's vocabulary, and for
        each part of a compound question."""
        t = time.perf_counter()
        shape = turn.shape
        query = turn.query
        if shape is not None and shape.summary and shape.focus:
            query = shape.focus
        turn.stats = CorpusStats(
            self.index.lexical() if self.settings.bm25_weight > 0 else None,
            publishers=self.index.publishers(),
        )
        mended = turn.stats.corrections(content_terms(query))
        turn.mended = mended
        if mended:
            turn.notes.append(
                "searched for " + ", ".join(f"{a!r} as {b!r}" for a, b in mended.items())
            )
            query = f"{query} {' '.join(mended.values())}"
        parts = shape.parts if shape is not None and shape.multi_part else ()
        turn.passages = self.retriever.retrieve(query, turn.k, parts=parts)
        turn.timings["retrieve"] = _ms(t)
        return turn

    def _answer(self, turn: Turn) -> Iterator[str]:
        """Answer from the passages; a chat model's text deltas are yielded as they come."""
        t = time.perf_counter()
        if self._chat_model is None:
            self._answer_extractive(turn)
        else:
            yield from self._answer_generative(turn)
        turn.timings["answer"] = _ms(t)

    def _answer_extractive(self, turn: Turn) -> None:
        from chatbot.extractive import rerank

        condensed = turn.condensed or condense(turn.question, [])
        shape = turn.shape or question_shape(turn.question)
        if shape.summary and turn.passages:
            self._summarize(turn, shape)
            return
        passages = rerank(condensed.query, turn.passages, self.settings)
        turn.passages = passages
        if self._reader_dir is not None and self._answer_reader(turn, condensed, shape):
            return
        selection = self._select(turn, condensed, shape)
        turn.selection = selection
        if selection.declined:
            turn.declined = True
            turn.reason = selection.reason
            turn.raw_text = decline_text(selection.reason, passages)
            return
        by_n = {p.n: p for p in passages}
        quoted = [(by_n[s.n], s.start, s.end) for s in selection.sentences]
        _answer_with_quotes(turn, quoted, shape, selection.short_answer, "{} [1].")

    def _select(self, turn: Turn, condensed: Condensed, shape: QuestionShape) -> Selection:
        """The rules' choice of sentences from ``turn.passages``, or their refusal."""
        from chatbot.extractive import extract

        return extract(
            turn.question,
            turn.passages,
            self.settings,
            context=condensed.context,
            similarity=lambda _question, sentences: self._similarity(condensed.query, sentences),
            shape=shape,
            stats=turn.stats,
        )

    def _answer_reader(self, turn: Turn, condensed: Condensed, shape: QuestionShape) -> bool:
        """The reader model reads the question with every passage. Below the calibrated
        threshold it declines ("the documents don't say"); from the confident margin up it
        answers with its best span, bold, and the sentence that holds it, quoted and cited;
        in between it returns False and the rules answer or decline."""
        from chatbot.reader.answer import choose, mend_question

        question = condensed.query if condensed.rewritten else turn.question
        question = mend_question(question, turn.mended, turn.passages)
        threshold, confident = self.reader_thresholds
        choice = choose(self.reader, question, turn.passages, threshold, shape, confident)
        turn.reader = choice.decision
        if choice.deferred:
            return False
        if choice.declined:
            margin = choice.decision.get("margin")
            turn.declined = True
            turn.reason = "the reader model found no answer in the passages" + (
                f" (best margin {margin:.2f} < {threshold:.2f})" if margin is not None else ""
            )
            rules = self._select(turn, condensed, shape)
            if rules.declined:  # the rules' reason names what is missing ("never mention X")
                turn.reason = f"{rules.reason}; {turn.reason}"
            turn.raw_text = decline_text(turn.reason, turn.passages)
            return True
        quoted = [(q.passage, q.start, q.end) for q in choice.quotes]
        _answer_with_quotes(turn, quoted, shape, choice.short_answer, "**{}** [1]")
        return True

    def _summarize(self, turn: Turn, shape: QuestionShape) -> None:
        """Quote the most central sentences of the best-matching document, in order."""
        from chatbot.summary import summarize

        top = turn.passages[0]
        chunks = [
            Passage.from_chunk(c.id, c.text, c.metadata)
            for c in self.index.document_chunks(top.source, top.root or None)
        ] or [top]
        picked = summarize(
            chunks, self._similarity.vectors, self.settings.max_sentences, shape.focus
        )
        if not picked:
            turn.declined = True
            turn.reason = "the best-matching document has no sentences to summarise"
            turn.raw_text = decline_text(turn.reason, turn.passages)
            return
        framing = f"The gist of {document_name(top)}, in its own sentences:"
        _quote(turn, [(s.passage, s.start, s.end) for s in picked], [framing], labelled=False)

    def _answer_generative(self, turn: Turn) -> Iterator[str]:
        from chatbot.generative import stream as stream_model
        from chatbot.prompts import build_messages, is_refusal

        messages = build_messages(turn.question, turn.passages, turn.history)
        parts: list[str] = []
        for delta in stream_model(self._chat_model, messages):
            parts.append(delta)
            yield delta
        turn.raw_text = "".join(parts)
        turn.declined = is_refusal(turn.raw_text)
        if turn.declined:
            turn.reason = "the model found no support in the passages"

    def _cite(self, turn: Turn) -> Turn:
        from chatbot.extractive import split_sentences, support_score

        t = time.perf_counter()
        passages = turn.passages
        if turn.declined:
            turn.notes.append(decline_note(turn.reason))
            text = turn.raw_text
            if self._chat_model is not None:
                text = decline_text(turn.reason, passages)
            citations = [closest_citation(p) for p in passages[:3]]
            unsupported: list[str] = []
        else:
            checked = check_citations(
                turn.raw_text,
                turn.cite_passages if turn.cite_passages is not None else passages,
                support=support_score,
                split=split_sentences,
                threshold=self.settings.support_threshold,
                quotes=turn.quotes or None,
                framing=turn.framing,
            )
            text, citations, unsupported = checked.text, checked.citations, checked.unsupported
        turn.timings["cite"] = _ms(t)
        turn.answer = Answer(
            text=text,
            declined=turn.declined,
            citations=citations,
            short_answer=turn.short_answer,
            unsupported_sentences=unsupported,
            backend=self.backend,
            trace=Trace(
                standalone_query=turn.query,
                passages=passages,
                timings_ms=turn.timings,
                notes=turn.notes,
                reader=turn.reader,
            ),
        )
        return turn

    def _run(self, turn: Turn) -> Iterator[str]:
        """The one answering path: condense → retrieve → answer → cite. Yields the answer
        text as it is produced (a chat model's deltas, or the checked extractive answer in
        word groups); ``turn.answer`` holds the final ``Answer`` when it ends."""
        t = time.perf_counter()
        self._retrieve(self._condense(turn))
        yield from self._answer(turn)
        self._cite(turn)
        turn.timings["total"] = _ms(t)
        if self._chat_model is None and turn.answer is not None:
            yield from word_chunks(turn.answer.text)

    # ---- public API
    def _turn(self, question: str, history: list[dict] | None, k: int | None) -> Turn:
        notes = []
        cleaned = clean_question(question, self.settings.max_question_chars)
        if cleaned != question.strip():
            notes.append("control characters or extra whitespace removed from the question")
        return Turn(question=cleaned, history=_clean_history(history), k=k, notes=notes)

    def answer(
        self, question: str, history: list[dict] | None = None, k: int | None = None
    ) -> Answer:
        """Answer one question (``history``: earlier turns as {"role", "content"} dicts).

        The same path as ``stream()``, its text drained: the batch answer is the streamed one."""
        turn = self._turn(question, history, k)
        for _ in self._run(turn):
            pass
        assert turn.answer is not None
        return turn.answer

    def stream(
        self, question: str, history: list[dict] | None = None, k: int | None = None
    ) -> Iterator[str | Answer]:
        """Yield the answer text as it is produced, then the final checked ``Answer``."""
        turn = self._turn(question, history, k)
        yield from self._run(turn)
        assert turn.answer is not None
        yield turn.answer

    def answer_batch(self, items: list[dict]) -> list[Answer]:
        return [self.answer(i["question"], i.get("history")) for i in items]

    def refresh(self) -> None:
        """Reopen the index so a finished reingest becomes visible."""
        from chatbot.retrieve import HybridRetriever
        from ingest import open_index

        old = self.index
        self.index = open_index(self.settings.index, embeddings=old.embeddings)
        self.retriever = HybridRetriever(self.index, self.settings)
        old.close()


def build_chain(bot: Chatbot) -> Runnable:
    """condense → retrieve → answer → cite as LCEL runnables over a ``Turn`` (the stages
    ``Chatbot.answer`` and ``Chatbot.stream`` run), each one named for tracing."""

    def answer(turn: Turn) -> Turn:
        for _ in bot._answer(turn):
            pass
        return turn

    return (
        RunnableLambda(bot._condense).with_config(run_name="condense")
        | RunnableLambda(bot._retrieve).with_config(run_name="retrieve")
        | RunnableLambda(answer).with_config(run_name="answer")
        | RunnableLambda(bot._cite).with_config(run_name="cite")
    )


def _answer_with_quotes(
    turn: Turn,
    quoted: list[tuple[Passage, int, int]],
    shape: QuestionShape,
    short_answer: str | None,
    short_format: str,
) -> None:
    """The extractive answer (rules' or reader's): the quotes, labelled and framed when they
    come from several documents for a compound question, after the short answer written with
    ``short_format`` (its ``{}``) when there is one."""
    several = len({p.source for p, _, _ in quoted}) > 1
    lines = []
    if shape.multi_part and several:
        lines.append(YES_NO_FRAMING if shape.yes_no else PARTS_FRAMING)
    _quote(turn, quoted, lines, labelled=several)
    if short_answer:
        turn.raw_text = f"{short_format.format(short_answer)}\n\n{turn.raw_text}"
    turn.short_answer = short_answer


def _quote(
    turn: Turn, quoted: list[tuple[Passage, int, int]], framing: list[str], labelled: bool
) -> None:
    """Write the quotes into ``turn`` as the answer: one line each, each with its own
    number (so every [n] resolves to one quote; two sentences of one passage are two
    citations of it), after the answerer's ``framing`` lines. ``labelled``: each quote
    names its document's source and date (quotes from several documents)."""
    cited: list[Passage] = []
    lines = list(framing)
    for i, (p, a, b) in enumerate(quoted, start=1):
        cited.append(dataclasses.replace(p, n=i))
        turn.quotes[i] = [(a, b)]
        text = p.text[a:b].strip()
        label = source_label(p) if labelled else ""
        lines.append(f"> **{label}:** {text} [{i}]" if label else f"> {text} [{i}]")
    turn.framing = list(framing)
    turn.raw_text = "\n\n".join(lines)
    turn.cite_passages = cited
    turn.declined = False


def _clean_history(history: list[dict] | None) -> list[dict]:
    out = []
    for turn in history or []:
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant"):
            content = turn.get("content")
            if isinstance(content, str) and content.strip():
                out.append({"role": turn["role"], "content": content})
    return out[-8:]


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)

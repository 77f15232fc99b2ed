"""Answering with the reader: the best span across the retrieved passages, quoted in its
sentence, or a refusal when no span beats the no-answer score by the calibrated margin.

A compound question ("Did the TechCrunch article and the Verge report both ...") reads each
named part on its own and quotes the best span of each, one document each where another
serves; then other documents whose span clears the margin on the whole question."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from chatbot.question import QuestionShape
from chatbot.reader.onnx_reader import Span
from chatbot.sentences import split_sentences
from chatbot.types import Passage

__all__ = ["ReaderChoice", "ReaderQuote", "choose", "sentence_around"]

# A compound answer quotes at most this many passages, one per document.
COMPOUND_QUOTES = 5
# Passages come best first (the retriever's order, reranked); choosing the span to quote, each
# place down the list costs this much margin, so a close call goes to the better passage.
RANK_PENALTY = 1.0
# A second passage's span is quoted too when its margin clears the threshold and comes within
# this much of the chosen one (as the rules quote other sentences scoring nearly as high).
SECOND_QUOTE_GAP = 2.0
# Longer spans are quoted in their sentence but not repeated in bold as the short answer.
SHORT_ANSWER_WORDS = 12


class Reads(Protocol):
    def read(self, question: str, passages: list[str]) -> list[Span | None]: ...


@dataclass(frozen=True)
class ReaderQuote:
    passage: Passage
    start: int  # the quoted sentence(s), offsets in passage.text
    end: int
    span: Span


@dataclass
class ReaderChoice:
    declined: bool
    deferred: bool = False  # unsure: between the two thresholds, the rules decide
    quotes: list[ReaderQuote] = field(default_factory=list)
    short_answer: str | None = None
    decision: dict = field(default_factory=dict)  # for the trace


def sentence_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence(s) of ``text`` that hold ``[start, end)``."""
    spans = split_sentences(text) or [(0, len(text))]
    first = next((s for s in spans if s[0] <= start < s[1]), None)
    last = next((s for s in spans if s[0] < end <= s[1]), None)
    a = first[0] if first else min(start, spans[0][0])
    b = last[1] if last else max(end, spans[-1][1])
    return min(a, start), max(b, end)


def _clean_short(span: str) -> str | None:
    text = " ".join(span.split()).strip(" ,;:.")
    if not text or len(text.split()) > SHORT_ANSWER_WORDS:
        return None
    return text


def choose(
    reader: Reads,
    question: str,
    passages: list[Passage],
    threshold: float,
    shape: QuestionShape | None = None,
    confident: float | None = None,
) -> ReaderChoice:
    """Read ``question`` against every passage and pick what to quote, or decline: below
    ``threshold`` the best margin declines; from ``confident`` (default: ``threshold``) up
    the reader answers; in between the choice is ``deferred`` to the caller's rules."""
    confident = threshold if confident is None else max(confident, threshold)
    texts = [p.text for p in passages]
    spans = [s for s in reader.read(question, texts) if s is not None and s.text.strip()]
    if not spans:
        return ReaderChoice(True, decision={"declined": True, "threshold": threshold})
    ranked = sorted(spans, key=lambda s: -(s.margin - RANK_PENALTY * s.passage))
    best = ranked[0]
    top = max(s.margin for s in spans)
    decision = {
        "span": best.text,
        "passage": passages[best.passage].n,
        "span_score": round(best.span_score, 3),
        "null_score": round(best.null_score, 3),
        "margin": round(top, 3),  # the decision: the best margin of any passage
        "threshold": threshold,
        "span_margin": round(best.margin, 3),  # the quoted span's own
        "confident": confident,
        "declined": top < threshold,
        "deferred": threshold <= top < confident,
        "margins": [round(s.margin, 3) for s in ranked[:5]],
    }
    if top < threshold:
        return ReaderChoice(True, decision=decision)
    if top < confident:
        return ReaderChoice(False, deferred=True, decision=decision)
    chosen: list[Span] = [best]
    second = [
        s
        for s in ranked[1:]
        if s.passage != best.passage and s.margin >= max(threshold, best.margin - SECOND_QUOTE_GAP)
    ]
    chosen += second[:1]
    if shape is not None and shape.multi_part:
        chosen = _per_part(reader, shape, passages, texts, ranked, threshold)
        decision["parts"] = len(shape.parts)
    quotes = []
    for span in chosen:
        p = passages[span.passage]
        a, b = sentence_around(p.text, span.start, span.end)
        quotes.append(ReaderQuote(p, a, b, span))
    yes_no = shape is not None and shape.yes_no
    multi = shape is not None and shape.multi_part and len(quotes) > 1
    short = None if yes_no or multi else _clean_short(best.text)
    return ReaderChoice(False, quotes=quotes, short_answer=short, decision=decision)


def _per_part(
    reader: Reads,
    shape: QuestionShape,
    passages: list[Passage],
    texts: list[str],
    ranked: list[Span],
    threshold: float,
) -> list[Span]:
    """Each part's best span (from a document not quoted yet when one clears the margin),
    then the best span of other documents on the whole question."""
    picked: list[Span] = []
    used: set[str] = set()
    for part in shape.parts:
        part_spans = [s for s in reader.read(part, texts) if s is not None and s.text.strip()]
        cleared = sorted((s for s in part_spans if s.margin >= threshold), key=lambda s: -s.margin)
        fresh = [s for s in cleared if passages[s.passage].source not in used]
        pick = (fresh or cleared or [None])[0]
        if pick is not None and all(pick.passage != s.passage for s in picked):
            picked.append(pick)
            used.add(passages[pick.passage].source)
    for span in ranked:
        if len(picked) >= COMPOUND_QUOTES or span.margin < threshold:
            break
        if passages[span.passage].source not in used:
            picked.append(span)
            used.add(passages[span.passage].source)
    return picked or ranked[:1]

"""Answering with the reader: the best span across the retrieved passages, quoted in its
sentence, or a refusal when no span beats the no-answer score by the calibrated margin.

The reader judges questions of the kind it learnt from: one question, short enough to read
whole. A compound question (its parts may each be answered by a different document, and
none answers the whole), or one longer than the reader's question budget (it would read a
cut question), is left to the rules: on the MultiHop-RAG dev set the reader's veto declined a
quarter of such answerable questions. So is a request for what a document says on a topic
("what did Wired say about factories?"): it asks for passages, not for a span, and the source
it names is in the document's header, which the reader does not read."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from chatbot.question import QuestionShape
from chatbot.reader.onnx_reader import Span
from chatbot.sentences import split_sentences, stem, words
from chatbot.types import Passage

__all__ = ["ReaderChoice", "ReaderQuote", "choose", "mend_question", "sentence_around"]

# Passages come best first (the retriever's order, reranked); choosing the span to quote, each
# place down the list costs this much margin, so a close call goes to the better passage.
RANK_PENALTY = 1.0
# A second passage's span is quoted too when its margin clears the threshold and comes within
# this much of the chosen one (as the rules quote other sentences scoring nearly as high).
SECOND_QUOTE_GAP = 2.0
# "What did X say about Y", "tell me about Y", "what about Y": a topic, not one fact.
_TOPIC_RE = re.compile(
    r"\b(?:say|says|said|write|writes|wrote|report|reports|reported|mention|mentions|"
    r"mentioned)\b.*\babout\b|\btell me about\b|^\s*(?:and\s+)?what about\b",
    re.IGNORECASE,
)
# Longer spans are quoted in their sentence but not repeated in bold as the short answer...
SHORT_ANSWER_WORDS = 12
# ...unless the passage's best short span scores within this much of the long one: then it is
# ("Who wrote the memo?" -> "Sessions", not "Sessions said in a memo ... offices").
SHORT_SPAN_SLACK = 2.0


class Reads(Protocol):
    def read(self, question: str, passages: list[str]) -> list[Span | None]: ...

    def reads_whole(self, question: str) -> bool: ...


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


def mend_question(question: str, mended: dict[str, str], passages: list[Passage]) -> str:
    """The question with each word the search mended ('sesions', searched as 'session')
    written as the passages write it ('Sessions'): the reader reads the words of the
    question against the words of the passage, so a slip of the finger reads as a word
    the passage lacks."""
    if not mended:
        return question
    wanted = set(mended.values())
    surface: dict[str, str] = {}
    for p in passages:
        for _, _, w in words(p.text):
            term = stem(w.lower())
            if term in wanted and term not in surface:
                surface[term] = w
        if len(surface) == len(wanted):
            break

    def fix(m: re.Match[str]) -> str:
        to = mended.get(stem(m.group(0).lower()))
        return surface.get(to, to) if to else m.group(0)

    return re.sub(r"[^\W\d_]+", fix, question)


def left_to_rules(reader: Reads, question: str, shape: QuestionShape | None) -> str:
    """Why the reader does not judge ``question`` ("" when it does)."""
    if shape is not None and shape.multi_part:
        return "a compound question"
    if _TOPIC_RE.search(question):
        return "asks what the documents say on a topic"
    if not reader.reads_whole(question):
        return "longer than the reader reads"
    return ""


def _short_answer(span: Span) -> str | None:
    short = _clean_short(span.text)
    if short is None and span.short_text and span.short_score >= span.span_score - SHORT_SPAN_SLACK:
        short = _clean_short(span.short_text)
    return short


def _clean_short(span: str) -> str | None:
    """The span as a bold answer; None for one too long, or one running across lines (list
    items, table rows: "PostHog\n- Double trigger acceleration" is no answer)."""
    if "\n" in span.strip():
        return None
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
    why = left_to_rules(reader, question, shape)
    if why:
        return ReaderChoice(False, deferred=True, decision={"deferred": why})
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
    quotes = []
    for span in chosen:
        p = passages[span.passage]
        a, b = sentence_around(p.text, span.start, span.end)
        quotes.append(ReaderQuote(p, a, b, span))
    yes_no = shape is not None and shape.yes_no
    short = None if yes_no else _short_answer(best)
    return ReaderChoice(False, quotes=quotes, short_answer=short, decision=decision)

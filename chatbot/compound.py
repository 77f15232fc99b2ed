"""A compound question's answer: the best sentence for each of its parts, one per document."""

from __future__ import annotations

from chatbot.config import ChatSettings
from chatbot.relevance import same_source
from chatbot.sentence_scores import ScoredSentence, query_weights, scored_by
from chatbot.types import Passage

__all__ = ["per_part"]


# In a compound question's answer, a sentence from a document not quoted yet is preferred
# to a better one from a quoted document when it scores at least this share of it.
NEW_DOCUMENT_RATIO = 0.7


# A compound question's answer quotes at most this many sentences, one per document: its
# parts' best, then the best of other documents that score at least OTHER_DOCUMENT_RATIO of
# the best sentence (news questions of this kind draw on two to four articles).
COMPOUND_QUOTES = 5
OTHER_DOCUMENT_RATIO = 0.5


def per_part(
    question: str,
    parts: tuple[str, ...],
    sources: tuple[str, ...],
    per_passage: list[list[ScoredSentence]],
    passages: list[Passage],
    settings: ChatSettings,
    corrections: dict[str, str],
    context: str,
) -> list[ScoredSentence]:
    """The best sentence for each part of a compound question, each from another document
    where one serves nearly as well, in the parts' order; then the best sentence of each
    other document that matches the whole question nearly as well."""
    picked: list[ScoredSentence] = []
    used_docs: set[str] = set()
    seen: set[tuple[int, int]] = set()

    said: set[str] = set()

    def take(sent: ScoredSentence) -> None:
        picked.append(sent)
        seen.add((sent.passage, sent.index))
        used_docs.add(passages[sent.passage].source)
        said.add(" ".join(sent.text.split()))

    for part in parts:
        weights = query_weights(part, context, settings.context_weight, per_passage, corrections)
        scored = scored_by(weights, per_passage, settings.neighbour_weight, seen) if weights else []
        # A part that names a source ("the TechCrunch article ...") is answered from that
        # source's documents when any was found.
        named = [src for src in sources if src in part]
        own = [
            (score, sent)
            for score, sent in scored
            if any(same_source(src, passages[sent.passage].publisher) for src in named)
        ]
        scored = own or scored
        if not scored or scored[0][0] <= 0:
            continue
        top_score, choice = scored[0]
        for score, sent in scored:
            if score < NEW_DOCUMENT_RATIO * top_score:
                break
            if passages[sent.passage].source not in used_docs:
                choice = sent
                break
        take(choice)
    weights = query_weights(question, context, settings.context_weight, per_passage, corrections)
    scored = scored_by(weights, per_passage, settings.neighbour_weight, seen) if weights else []
    if scored and scored[0][0] > 0:
        floor = OTHER_DOCUMENT_RATIO * scored[0][0]
        for score, sent in scored:
            if len(picked) >= COMPOUND_QUOTES or score < floor:
                break
            if passages[sent.passage].source not in used_docs and (
                " ".join(sent.text.split()) not in said  # the same boilerplate elsewhere
            ):
                take(sent)
    return picked

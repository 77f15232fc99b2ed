"""How much of a question each sentence of the retrieved passages holds.

A sentence scores the share of the question's content words it contains (stemmed, weighted
by their IDF among the passages' sentences); words found only in the sentence before or
after count ``neighbour_weight`` as much. ``rerank`` orders passages by their best sentence,
``blend_semantic`` lets embedding similarity count where the words differ, and
``support_score`` checks a generated sentence against the passage it cites.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from chatbot.config import ChatSettings
from chatbot.relevance import META_TERMS
from chatbot.sentences import content_terms, split_sentences
from chatbot.types import Passage

__all__ = [
    "ScoredSentence",
    "Similarity",
    "blend_semantic",
    "cover",
    "flatten",
    "is_heading",
    "is_markdown_heading",
    "query_weights",
    "rerank",
    "score_all",
    "scored_by",
    "sentences_of",
    "support_score",
]


@dataclass
class ScoredSentence:
    passage: int  # index into the passages list
    index: int  # position within its passage
    start: int
    end: int
    text: str
    terms: frozenset[str]
    context: frozenset[str] = frozenset()  # terms of its document's title, source and date
    score: float = 0.0
    own: float = 0.0  # coverage by the sentence alone, without its neighbours
    semantic: float = 0.0  # embedding cosine between the question and the sentence


# (question, sentences) -> cosine similarity of the question to each sentence
Similarity = Callable[[str, list[str]], list[float]]


def blend_semantic(
    question: str, flat: list[ScoredSentence], similarity: Similarity, weight: float
) -> None:
    """Let meaning count where words differ: a sentence scores the larger of its word
    coverage and ``(1 - weight) * coverage + weight * cosine``. Paraphrased questions
    ("What can no longer go on?" for "we cannot continue with business as usual") share few
    words with their answer but sit close to it in embedding space."""
    if max(s.score for s in flat) >= LEXICAL_CONFIDENT:
        return  # the words already match: skip the cost of embedding the sentences
    # Only the top passages' sentences: embedding costs ~5 ms a sentence on one thread.
    near = [s for s in flat if s.passage < SEMANTIC_PASSAGES]
    sims = similarity(question, [s.text for s in near])
    for s, sim in zip(near, sims, strict=True):
        s.semantic = float(sim)
        s.score = max(s.score, (1 - weight) * s.score + weight * s.semantic)


# When some sentence already covers this much of the question, word coverage picks the
# sentence on its own: meaning only helps when the words do not match (measured: on the SQuAD
# sample, blending always cost 0.03 of answers containing the gold; on the paraphrased seeds
# set, blending below this level raised answered-when-answerable from 0.39 to 0.88).
LEXICAL_CONFIDENT = 0.5
# The semantic score is computed for the sentences of this many top (reranked) passages:
# one keeps the SQuAD p95 at 75 ms (two: 114 ms, for +0.03 answered on the paraphrased seeds).
SEMANTIC_PASSAGES = 1


def sentences_of(passages: list[Passage]) -> list[list[ScoredSentence]]:
    out = []
    for pi, p in enumerate(passages):
        sents = []
        context = frozenset(content_terms(p.context()))
        for si, (a, b) in enumerate(split_sentences(p.text)):
            text = p.text[a:b]
            sents.append(
                ScoredSentence(pi, si, a, b, text, frozenset(content_terms(text)), context)
            )
        out.append(sents)
    return out


def query_weights(
    question: str,
    context: str,
    context_weight: float,
    per_passage: list[list[ScoredSentence]],
    corrections: dict[str, str] | None = None,
) -> dict[str, float]:
    """Each query term's weight: its IDF over the passages' sentences (a term found nowhere
    weighs most), times 1 for question words or ``context_weight`` for earlier-turn words.
    A misspelt term counts as its ``corrections`` entry."""
    factors: dict[str, float] = {}
    fix = corrections or {}
    for source, factor in ((question, 1.0), (context, context_weight)):
        for t in content_terms(source):
            t = fix.get(t, t)
            if t not in factors and factor > 0:
                factors[t] = factor
    all_sents = flatten(per_passage)
    df: Counter[str] = Counter()
    for s in all_sents:
        df.update(t for t in s.terms if t in factors)
    n = max(len(all_sents), 1)
    # A word about the text itself ("mentioned", "described") that no sentence uses asks
    # for nothing the sentences could hold.
    return {
        t: f * math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5))
        for t, f in factors.items()
        if df[t] or t not in META_TERMS
    }


def score_all(
    per_passage: list[list[ScoredSentence]], weights: dict[str, float], neighbour_weight: float
) -> None:
    total = sum(weights.values())
    if total <= 0:
        return
    for sents in per_passage:
        for i, s in enumerate(sents):
            own, near = cover(sents, i, weights, with_context=False)
            s.own = own / total
            s.score = (own + neighbour_weight * near) / total * asking(s.text)


def cover(
    sents: list[ScoredSentence], i: int, weights: dict[str, float], with_context: bool
) -> tuple[float, float]:
    """The weight of the query terms sentence ``i`` holds, and of those only its
    neighbours (and, ``with_context``, its document's title, source and date) hold."""
    s = sents[i]
    around: set[str] = set(s.context) if with_context else set()
    if i > 0:
        around |= sents[i - 1].terms
    if i + 1 < len(sents):
        around |= sents[i + 1].terms
    own = sum(w for t, w in weights.items() if t in s.terms)
    near = sum(w for t, w in weights.items() if t not in s.terms and t in around)
    return own, near


# A sentence that asks a question ("Do you know more about X?") echoes the question's words
# without answering it: its score counts this much.
QUESTION_SENTENCE = 0.5


def asking(text: str) -> float:
    return QUESTION_SENTENCE if text.rstrip(" \"'”’)").endswith("?") else 1.0


def flatten(per_passage: list[list[ScoredSentence]]) -> list[ScoredSentence]:
    return [s for sents in per_passage for s in sents]


def rerank(
    question: str, passages: list[Passage], settings: ChatSettings, k: int | None = None
) -> list[Passage]:
    """Reorder passages by answer evidence, keep the best ``k`` (default: all) and renumber
    them [1]..[k]; the passages given are not modified.

    A passage scores ``(1 - w) * best_sentence + w * dense`` for ``w = rerank_weight``:
    its best sentence's question-word coverage (neighbours counted) blended with its dense
    similarity to the question (0 for a passage only BM25 found).
    """
    if not passages:
        return []
    per_passage = sentences_of(passages)
    weights = query_weights(question, "", 0.0, per_passage)
    score_all(per_passage, weights, settings.neighbour_weight)
    w = settings.rerank_weight
    scored = []
    for rank, (p, sents) in enumerate(zip(passages, per_passage, strict=True)):
        best = max((s.score for s in sents), default=0.0)
        scored.append(((1.0 - w) * best + w * (p.dense_score or 0.0), -rank, p))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    keep = scored if k is None else scored[:k]
    return [replace(p, n=n) for n, (_, _, p) in enumerate(keep, start=1)]


def is_markdown_heading(text: str) -> bool:
    """A Markdown heading line ("## Sick leave"): it names a topic, it answers nothing."""
    return re.match(r"#{1,6}\s", text.lstrip()) is not None


def is_heading(text: str) -> bool:
    """A title-like line: a few words without sentence-ending punctuation."""
    stripped = text.strip()
    return len(stripped.split()) <= 8 and not re.search(r"[.!?:;][\"'”’)]*$", stripped)


def support_score(sentence: str, passage_text: str) -> float:
    """0..1: the share of ``sentence``'s content words (stemmed) that ``passage_text``
    contains. 1.0 for a sentence quoted from the passage, near 0 for an unrelated one."""
    claim = set(content_terms(sentence))
    if not claim:
        return 1.0
    have = set(content_terms(passage_text))
    return len(claim & have) / len(claim)


def scored_by(
    weights: dict[str, float],
    per_passage: list[list[ScoredSentence]],
    neighbour_weight: float,
    skip: set[tuple[int, int]],
) -> list[tuple[float, ScoredSentence]]:
    """Every sentence's coverage of ``weights`` (its document's title, source and date
    count like a neighbour sentence), best first."""
    total = sum(weights.values())
    scored = []
    for sents in per_passage:
        for i, sent in enumerate(sents):
            if (sent.passage, sent.index) in skip or is_heading(sent.text):
                continue
            own, near = cover(sents, i, weights, with_context=True)
            scored.append(((own + neighbour_weight * near) / total * asking(sent.text), sent))
    scored.sort(key=lambda t: (-t[0], t[1].passage, t[1].index))
    return scored

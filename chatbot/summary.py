"""Extractive summaries: "Summarize the article", "What is this about?".

The document is the one the best passage comes from; its sentences are scored by how
central they are (cosine to the mean of all its sentence vectors), with a small lead bonus
(news puts the gist first) and, when the request names something ("Summarize the part on
the memo"), closeness to those words. The few best are quoted in document order, each with
its own citation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from chatbot.sentences import split_sentences
from chatbot.types import Passage

# Sentence vectors for a list of texts (unit length), e.g. ``SentenceSimilarity.vectors``.
Vectors = Callable[[list[str]], np.ndarray]

LEAD_BONUS = (0.08, 0.04)  # added to the first and second sentence's centrality
FOCUS_WEIGHT = 0.5  # weight of closeness to the request's own words, when it names some
REDUNDANT = 0.85  # a sentence this close to one already chosen is left out
MAX_SENTENCES = 60  # sentences considered, from the start of the document
MIN_WORDS = 5  # shorter lines (headings, bylines) are not summary sentences


@dataclass(frozen=True)
class SummarySentence:
    passage: Passage  # the chunk that holds the sentence
    start: int  # offsets within passage.text
    end: int
    text: str
    score: float


def document_sentences(chunks: list[Passage]) -> list[tuple[Passage, int, int]]:
    """The document's sentences, each once, as (chunk, start, end) within the first chunk
    (in document order) that holds it whole; ``chunks`` overlap and are sorted by start."""
    seen: set[int] = set()
    out = []
    for p in chunks:
        for a, b in split_sentences(p.text):
            where = p.start + a
            if where in seen:
                continue
            # A sentence cut by the chunk's end is taken from the next chunk instead.
            if b == len(p.text) and p is not chunks[-1] and p.text[b - 1] not in ".!?\"'”’)":
                continue
            seen.add(where)
            out.append((p, a, b))
    return out


def summarize(
    chunks: list[Passage], vectors: Vectors, n: int, focus: str = ""
) -> list[SummarySentence]:
    """The ``n`` most central sentences of the document made of ``chunks``, in order."""
    found = [
        (p, a, b) for p, a, b in document_sentences(chunks) if len(p.text[a:b].split()) >= MIN_WORDS
    ][:MAX_SENTENCES]
    if not found:
        return []
    texts = [p.text[a:b] for p, a, b in found]
    vecs = vectors(texts)
    centre = vecs.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    scores = vecs @ centre
    for i, bonus in enumerate(LEAD_BONUS[: len(scores)]):
        scores[i] += bonus
    if focus.strip():
        f = vectors([focus])[0]
        scores = (1 - FOCUS_WEIGHT) * scores + FOCUS_WEIGHT * (vecs @ f)
    chosen: list[int] = []
    for i in np.argsort(-scores, kind="stable").tolist():
        if len(chosen) >= n:
            break
        if any(float(vecs[i] @ vecs[j]) >= REDUNDANT for j in chosen):
            continue
        chosen.append(i)
    return [
        SummarySentence(found[i][0], found[i][1], found[i][2], texts[i], round(float(scores[i]), 4))
        for i in sorted(chosen)
    ]

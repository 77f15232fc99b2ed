"""Stemmed content words and negations: the word units the extractive answerer scores.

Sentence splitting, stopwords and the stemmer are ``ingest.text``'s; they are re-exported
here for the modules of ``chatbot`` that import them from this one.
"""

from __future__ import annotations

import re

from ingest.text import SENTENCE_OPENERS, STOPWORDS, split_sentences, stem

__all__ = [
    "NEGATIONS",
    "SENTENCE_OPENERS",
    "STOPWORDS",
    "content_terms",
    "has_negation",
    "split_sentences",
    "stem",
    "words",
]

NEGATIONS = frozenset("not no never none nothing nobody nowhere neither nor without cannot".split())

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


def words(text: str) -> list[tuple[int, int, str]]:
    """Word tokens as (start, end, word), with "n't" split off as "not"."""
    out: list[tuple[int, int, str]] = []
    for m in _WORD_RE.finditer(text):
        w = m.group(0)
        low = w.lower().replace("’", "'")
        if low.endswith("n't"):
            out.append((m.start(), m.end() - 3, w[:-3]))
            out.append((m.end() - 3, m.end(), "not"))
        elif "'" in low:
            cut = low.index("'")
            out.append((m.start(), m.start() + cut, w[:cut]))
        else:
            out.append((m.start(), m.end(), w))
    return out


def content_terms(text: str) -> list[str]:
    """Stemmed, lower-cased words of ``text`` without stopwords, in order."""
    terms = []
    for _, _, w in words(text):
        low = w.lower()
        if low not in STOPWORDS and not (len(low) == 1 and low.isalpha()):
            terms.append(stem(low))
    return terms


def has_negation(text: str) -> bool:
    return any(w.lower() in NEGATIONS for _, _, w in words(text))

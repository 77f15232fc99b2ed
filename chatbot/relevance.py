"""Is a question about the documents at all? Word evidence from the whole index.

A dense floor on whole chunks cannot tell a short on-topic question from an off-topic one
("What did Trump announce?" scores 0.13 against the 128-token chunk that answers it), while
the question's own words are right there. So the off-topic decision also asks how much of
the question's weight (IDF over the whole index: a word no chunk holds weighs most) one
passage and its document's context (title, source, date) hold, after mending misspelt
words against the index's vocabulary ("sesions" → "session").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from chatbot.sentences import content_terms, stem
from chatbot.types import Passage

if TYPE_CHECKING:
    from ingest.lexical import LexicalIndex

# A misspelt word (its stem) is mended by any one edit only when it is this long: shorter
# real words are too often one edit away from another word of the index ("hard" / "hand");
# from MIN_INSERT_LEN letters it may only double a letter ("jef" / "jeff", not "cat" /
# "coat"). Two edits are allowed from LONG_WORD letters on ("espresso" is not "express").
MIN_SPELL_LEN = 6
MIN_INSERT_LEN = 3
LONG_WORD = 9
# A name whose first letters (this many; fewer for a demonym) begin some index term may be
# of its family.
FAMILY_PREFIX = 5
DEMONYM_PREFIX = 4
DEMONYM_ENDINGS = ("ish", "ian", "ese", "an", "ic", "i")
# Words that ask about the text rather than name what it is about ("What epidemic is
# mentioned?"): left out of the word evidence.
META_TERMS = frozenset(
    content_terms(
        "mention mentioned mentions describe described discuss discussed explain explained "
        "talk talks talked state stated refer referred according article articles document "
        "documents text passage passages report reported write wrote written tell happen "
        "happened give given list show shows example kind sort thing things something"
    )
)


@dataclass
class CorpusStats:
    """Chunk counts of terms over the whole index (its BM25 side), and spelling repair."""

    lexical: LexicalIndex | None
    publishers: frozenset[str] = frozenset()  # the sources the documents' headers name
    _df: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.lexical.n_live if self.lexical is not None else 0

    def df(self, term: str) -> int:
        if self.lexical is None:
            return 0
        if term not in self._df:
            self._df[term] = self.lexical.document_frequency(term)
        return self._df[term]

    def idf(self, term: str) -> float:
        n, df = self.n, self.df(term)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def mentions(self, name: str) -> bool:
        """Whether some chunk holds the word ``name`` (a name from a question), or a word of
        its family ("British" / "Britain", "Victorian" / "Victoria"). True when there are
        no statistics to tell."""
        if self.lexical is None or not self.n:
            return True
        term = stem(name.lower())
        if self.df(term):
            return True
        # "Victorian" / "Victoria": a shared beginning; "British" / "Britain": a demonym's.
        size = DEMONYM_PREFIX if name.lower().endswith(DEMONYM_ENDINGS) else FAMILY_PREFIX
        head = term[:size]
        return len(head) == size and any(t.startswith(head) for t in self.lexical.vocabulary())

    def publishes(self, source: str) -> bool:
        """Whether ``source`` (a name from a question: "the Verge", "Cnbc") is one of the
        documents' publishers, compared without case, punctuation and "the". True when no
        document names its publisher."""
        if not self.publishers:
            return True
        return any(same_source(source, p) for p in self.publishers)

    def corrections(self, terms: Iterable[str]) -> dict[str, str]:
        """For each term no chunk holds, the most frequent index term one edit away (two
        for long words), if there is one: {"sesion": "session"}."""
        if self.lexical is None or not self.n:
            return {}
        out = {}
        for term in dict.fromkeys(terms):
            if len(term) < MIN_INSERT_LEN or not term.isalpha() or self.df(term):
                continue
            if len(term) < MIN_SPELL_LEN:
                best = _doubled(term, self.lexical.vocabulary(), self.df)
            else:
                best = _nearest(term, _by_shape(self.lexical.vocabulary()), self.df)
            if best:
                out[term] = best
        return out


def same_source(name: str, publisher: str | None) -> bool:
    """Whether a source named in a question ("the Verge", "Cnbc") is ``publisher``
    ("The Verge", "CNBC | World Business News Leader"): one holds the other, compared
    without case, punctuation and "the"."""
    a, b = _plain(name), _plain(publisher or "")
    return bool(a and b) and (f" {a} " in f" {b} " or f" {b} " in f" {a} ")


def _plain(name: str) -> str:
    words = re.findall(r"[a-z0-9]+", name.lower())
    return " ".join(w for w in words if w != "the")


@lru_cache(maxsize=4)
def _by_shape(vocabulary: frozenset[str]) -> dict[tuple[int, str], list[str]]:
    """The vocabulary's alphabetic terms keyed by (length, first letter)."""
    buckets: dict[tuple[int, str], list[str]] = {}
    for term in vocabulary:
        if term.isalpha():
            buckets.setdefault((len(term), term[0]), []).append(term)
    return buckets


def _doubled(term: str, vocabulary: frozenset[str], df: Callable[[str], int]) -> str | None:
    """The most frequent index term that is ``term`` with one letter doubled."""
    found = {term[: i + 1] + term[i:] for i in range(len(term))} & vocabulary
    return min(found, key=lambda t: (-df(t), t)) if found else None


def _nearest(term: str, buckets: dict[tuple[int, str], list[str]], df: object) -> str | None:
    limit = 2 if len(term) >= LONG_WORD else 1
    found: list[tuple[int, int, str]] = []
    for length in range(len(term) - limit, len(term) + limit + 1):
        # Misspellings rarely change the first letter; the second covers a swapped first pair.
        for first in {term[0], term[1] if len(term) > 1 else term[0]}:
            for other in buckets.get((length, first), ()):
                d = edit_distance(term, other, limit)
                if d <= limit:
                    found.append((d, -df(other), other))  # type: ignore[operator]
    return min(found)[2] if found else None


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance with adjacent swaps (optimal string alignment), or ``limit + 1``
    as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def query_terms(question: str, corrections: dict[str, str]) -> list[str]:
    """The question's content terms, misspelt ones replaced by their repair, without the
    words that ask about the text itself (``META_TERMS``)."""
    terms = (corrections.get(t, t) for t in content_terms(question))
    return list(dict.fromkeys(t for t in terms if t not in META_TERMS))


def passage_terms(passages: list[Passage]) -> list[frozenset[str]]:
    """Each passage's content terms with its document's context (title, source, date)."""
    return [frozenset(content_terms(p.context() + "\n" + p.text)) for p in passages]


def lexical_relevance(
    terms: list[str],
    passages: list[Passage],
    stats: CorpusStats,
    held: list[frozenset[str]] | None = None,
) -> tuple[float, int]:
    """The largest share of the terms' IDF weight that one passage with its document's
    context holds, and that passage's index (``-1`` when none holds any). ``held``: the
    passages' ``passage_terms``, when the caller asks about several term lists."""
    weights = {t: stats.idf(t) for t in terms}
    total = sum(weights.values())
    best, where = 0.0, -1
    if total <= 0:
        return best, where
    for i, have in enumerate(held if held is not None else passage_terms(passages)):
        share = sum(w for t, w in weights.items() if t in have) / total
        if share > best:
            best, where = share, i
    return best, where

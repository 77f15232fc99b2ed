"""Pure metric functions: answer matching (SQuAD's normalisation), short-answer exact match
and F1 (SQuAD 2.0's official normalisation), retrieval, citations, refusals and percentiles.
No I/O, no models; every function works on plain values.

A score that cannot be computed (no gold to compare with, nothing to average) is ``None``,
reported as "n/a", never 0.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from ingest.text import CITATION_RE
from ingest.text import answer_sentences as answer_sentences  # re-exported: scoring uses it

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPACE = re.compile(r"\s+")
_ASCII_PUNCTUATION = frozenset(string.punctuation)
# Markdown an answer may carry: a heading, list bullet or number at a line's start; a link
# ``[text](url)``; emphasis and code markers.
_MD_LINE_START = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+)")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]*\)")
_MD_EMPHASIS = re.compile(r"\*+|__+|`+")


def _without_articles(text: str) -> str:
    """The articles a/an/the dropped and whitespace collapsed (both normalisations end so)."""
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation, as "contains a gold answer" and token F1 use it: lower
    case, punctuation (every Unicode punctuation mark, so curly quotes too) turned into a
    space, the articles a/an/the dropped, whitespace collapsed. (The official script deletes
    ASCII punctuation instead: ``squad_normalize``.)"""
    text = text.lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return _without_articles(text)


def squad_normalize(text: str) -> str:
    """SQuAD 2.0's official normalisation (``normalize_answer`` of its evaluate-v2.0.py):
    lower case, every ASCII punctuation character (``string.punctuation``) deleted, so
    "1,000" is "1000" and "it's" is "its", the articles a/an/the dropped, whitespace
    collapsed. Other characters, curly quotes included, stay, as in the official script."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCTUATION)
    return _without_articles(text)


def answer_text(text: str) -> str:
    """An answer as prose: the ``[n]`` markers and the ``> `` quote markers removed."""
    text = CITATION_RE.sub(" ", text)
    lines = [ln[1:] if ln.lstrip().startswith(">") else ln for ln in text.splitlines()]
    return " ".join(" ".join(lines).split())


def is_cited(sentence: str) -> bool:
    return bool(CITATION_RE.search(sentence))


def without_markers(sentence: str) -> str:
    return " ".join(CITATION_RE.sub(" ", sentence).split())


def contains_gold(prediction: str, answers: Sequence[str]) -> float | None:
    """1.0 when the normalised prediction contains a normalised gold answer as a run of
    whole words, else 0.0; ``None`` without gold answers."""
    golds = [g for g in (normalize_answer(a) for a in answers) if g]
    if not golds:
        return None
    pred = f" {normalize_answer(prediction)} "
    return 1.0 if any(f" {g} " in pred for g in golds) else 0.0


def token_f1(prediction: str, answers: Sequence[str]) -> float | None:
    """SQuAD's token F1, the best over the gold answers; ``None`` without gold answers.
    An empty prediction scores 0 (against a non-empty gold)."""
    if not answers:
        return None
    pred = normalize_answer(prediction).split()
    return max(_f1(pred, normalize_answer(gold).split()) for gold in answers)


def _f1(pred: list[str], gold: list[str]) -> float:
    """The F1 of two token lists (SQuAD's ``compute_f1``); when either is empty, 1.0 if
    both are, else 0.0."""
    if not gold or not pred:
        return float(gold == pred)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def _official_golds(answers: Sequence[str]) -> list[str] | None:
    """The gold answers after ``squad_normalize``, as the official script takes them:
    those that normalise to nothing dropped, and ``[""]`` if all do; ``None`` without
    gold answers (an unanswerable question: not scored here)."""
    if not answers:
        return None
    return [g for g in map(squad_normalize, answers) if g] or [""]


def exact_match(prediction: str, answers: Sequence[str]) -> float | None:
    """SQuAD 2.0's exact match: 1.0 when the prediction equals one of the gold answers,
    both after ``squad_normalize``, else 0.0; ``None`` without gold answers."""
    golds = _official_golds(answers)
    if golds is None:
        return None
    return 1.0 if squad_normalize(prediction) in golds else 0.0


def squad_f1(prediction: str, answers: Sequence[str]) -> float | None:
    """SQuAD 2.0's token F1 after ``squad_normalize``, the best over the gold answers;
    ``None`` without gold answers."""
    golds = _official_golds(answers)
    if golds is None:
        return None
    pred = squad_normalize(prediction).split()
    return max(_f1(pred, gold.split()) for gold in golds)


def plain_answer_text(text: str) -> str:
    """An answer as plain prose: ``answer_text`` with Markdown removed too (headings, list
    bullets and numbers at a line's start, links kept as their text, emphasis and code
    markers)."""
    lines = [_MD_LINE_START.sub("", ln.lstrip().lstrip(">")) for ln in text.splitlines()]
    text = _MD_EMPHASIS.sub("", _MD_LINK.sub(r"\1", "\n".join(lines)))
    return answer_text(text)


def short_answer_text(short_answer: str | None, quotes: Sequence[str], text: str) -> str:
    """The short answer that exact match and ``short_f1`` compare, from an answer's fields:
    its ``short_answer`` when it has one, else the first citation's quote (``quotes`` in
    citation order), else the answer ``text`` without ``[n]`` markers and Markdown."""
    if short_answer and short_answer.strip():
        return " ".join(short_answer.split())
    for quote in quotes[:1]:
        if quote.strip():
            return " ".join(quote.split())
    return plain_answer_text(text)


def squash(text: str) -> str:
    """Whitespace collapsed and case folded: how passages and quotes are compared."""
    return _SPACE.sub(" ", text).strip().casefold()


def holds_quote(passage: str, quote: str, min_overlap: float = 0.6) -> bool:
    """Whether ``passage`` holds the evidence ``quote``, both compared after ``squash``:
    the passage contains the whole quote, or the longest piece of text they share is at
    least ``min_overlap`` of the quote (a quote cut by a chunk boundary counts for the chunk
    holding most of it) or of the passage (a passage lying inside a long quote)."""
    p, q = squash(passage), squash(quote)
    if not p or not q:
        return False
    if q in p:
        return True
    match = SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
    return match.size >= min_overlap * min(len(q), len(p))


def doc_stem(doc_id: str) -> str:
    """The file stem of a document id or source path ("sub/sq0001.txt" -> "sq0001")."""
    name = doc_id.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def is_relevant(
    passage: str,
    doc_ids: Iterable[str],
    evidence: Sequence[str],
    evidence_doc_ids: Sequence[str],
    min_overlap: float = 0.6,
) -> bool | None:
    """Whether a passage is gold support: it holds an evidence quote when the question has
    quotes (the stricter test), else it comes from an evidence document. ``doc_ids`` are the
    passage's document id and source; ``None`` when the question has no evidence at all."""
    if evidence:
        return any(holds_quote(passage, q, min_overlap) for q in evidence)
    if evidence_doc_ids:
        wanted = {doc_stem(d) for d in evidence_doc_ids}
        return any(doc_stem(d) in wanted for d in doc_ids if d)
    return None


def hits_at_k(relevant: Sequence[bool], k: int) -> float:
    """1.0 when one of the first ``k`` ranked passages is relevant, else 0.0."""
    return 1.0 if any(relevant[:k]) else 0.0


def reciprocal_rank(relevant: Sequence[bool], k: int = 10) -> float:
    """1/rank of the first relevant passage among the first ``k``; 0.0 when none is."""
    for rank, hit in enumerate(relevant[:k], start=1):
        if hit:
            return 1.0 / rank
    return 0.0


def evidence_recall(found: Sequence[set[str]], wanted: Iterable[str], k: int) -> float | None:
    """The share of ``wanted`` evidence units (documents, or quotes) that the first ``k``
    passages cover; ``found[i]`` is the set of units passage ``i`` covers. ``None`` when
    nothing is wanted."""
    want = set(wanted)
    if not want:
        return None
    got = set().union(*found[:k]) if found[:k] else set()
    return len(want & got) / len(want)


def citation_precision(cited_relevant: Sequence[bool]) -> float | None:
    """The share of cited passages that are gold support; ``None`` with no citations."""
    if not cited_relevant:
        return None
    return sum(cited_relevant) / len(cited_relevant)


def supported_share(n_sentences: int, n_unsupported: int) -> float | None:
    """The share of an answer's sentences the citation check marked supported."""
    if n_sentences <= 0:
        return None
    return max(0, n_sentences - n_unsupported) / n_sentences


@dataclass(frozen=True)
class RefusalStats:
    answerable: int
    unanswerable: int
    declined: int
    declined_unanswerable: int  # right refusals
    answered_answerable: int

    @property
    def recall(self) -> float | None:
        """Declined when unanswerable: right refusals / unanswerable questions."""
        return _ratio(self.declined_unanswerable, self.unanswerable)

    @property
    def answered_when_answerable(self) -> float | None:
        return _ratio(self.answered_answerable, self.answerable)

    @property
    def declined_when_answerable(self) -> float | None:
        """Wrong refusals: declined answerable questions / answerable questions."""
        return _ratio(self.answerable - self.answered_answerable, self.answerable)

    @property
    def precision(self) -> float | None:
        """Of the declines, the share that were right (the question was unanswerable)."""
        return _ratio(self.declined_unanswerable, self.declined)


def refusal_stats(outcomes: Iterable[tuple[bool, bool]]) -> RefusalStats:
    """From ``(answerable, declined)`` pairs, one per question."""
    pairs = list(outcomes)
    return RefusalStats(
        answerable=sum(1 for a, _ in pairs if a),
        unanswerable=sum(1 for a, _ in pairs if not a),
        declined=sum(1 for _, d in pairs if d),
        declined_unanswerable=sum(1 for a, d in pairs if not a and d),
        answered_answerable=sum(1 for a, d in pairs if a and not d),
    )


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the values that are not ``None``; ``None`` when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100), linearly interpolated; ``None`` for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(v for v in values if not math.isnan(v))
    if not ordered:
        return None
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None

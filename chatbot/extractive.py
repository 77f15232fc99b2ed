"""The offline answerer: quote the sentences that answer the question, or decline.

Each sentence of the retrieved passages is scored by the share of the question's content
words it contains (stemmed, weighted by their IDF among the passages' sentences), with words
found only in the sentence before or after counting ``neighbour_weight`` as much. The best
sentence is quoted with its passage's [n], with its neighbours when they share question
words, and a short answer (a date, number, name or place) is taken from it when the
question asks for one. The answer is declined when:

* no passage is about the question: best dense similarity below ``min_dense`` (off-topic);
* the evidence is too weak (``min_support``): the best sentence's coverage of the question,
  blended with the best dense similarity (``rerank_weight``);
* a when/how-many question finds no sentence with a date/number (``type_check``);
* the question is negated and the sentence is not, or the sentence negates a question word
  the question does not (``negation_check``);
* the question uses a contrasting word where the sentence uses another ("mild" vs
  "severe", ``contrast_check``);
* a name or number of the question is absent from the passage (``entity_check``).

The last four catch near misses: questions that reuse a passage's words but ask for
something it does not say (see ``chatbot.refusal``).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chatbot.answer_types import (
    DATE,
    DESCRIPTIONS,
    MONTH,
    NUMBER,
    YEAR,
    best_candidate,
    candidates,
    question_type,
)
from chatbot.config import ChatSettings
from chatbot.refusal import (
    contrast_swap,
    missing_entities,
    negation_mismatch,
    question_entities,
)
from chatbot.sentences import content_terms, split_sentences, stem, words
from chatbot.types import Passage

logger = logging.getLogger(__name__)

__all__ = [
    "SelectedSentence",
    "Selection",
    "extract",
    "rerank",
    "split_sentences",
    "support_score",
]


@dataclass
class SelectedSentence:
    n: int  # the passage's [n]
    start: int  # offsets of the sentence within passage.text
    end: int
    text: str
    score: float


@dataclass
class Selection:
    declined: bool
    reason: str  # one line: why it was declined, or "" when answered
    short_answer: str | None
    sentences: list[SelectedSentence]  # best first
    best_score: float
    features: dict[str, float] = field(default_factory=dict)


@dataclass
class _Sentence:
    passage: int  # index into the passages list
    index: int  # position within its passage
    start: int
    end: int
    text: str
    terms: frozenset[str]
    score: float = 0.0
    own: float = 0.0  # coverage by the sentence alone, without its neighbours
    semantic: float = 0.0  # embedding cosine between the question and the sentence


# (question, sentences) -> cosine similarity of the question to each sentence
Similarity = Callable[[str, list[str]], list[float]]


def _blend_semantic(
    question: str, flat: list[_Sentence], similarity: Similarity, weight: float
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


def _sentences(passages: list[Passage]) -> list[list[_Sentence]]:
    out = []
    for pi, p in enumerate(passages):
        sents = []
        for si, (a, b) in enumerate(split_sentences(p.text)):
            text = p.text[a:b]
            sents.append(_Sentence(pi, si, a, b, text, frozenset(content_terms(text))))
        out.append(sents)
    return out


def _query_weights(
    question: str, context: str, context_weight: float, per_passage: list[list[_Sentence]]
) -> dict[str, float]:
    """Each query term's weight: its IDF over the passages' sentences (a term found nowhere
    weighs most), times 1 for question words or ``context_weight`` for earlier-turn words."""
    factors: dict[str, float] = {}
    for source, factor in ((question, 1.0), (context, context_weight)):
        for t in content_terms(source):
            if t not in factors and factor > 0:
                factors[t] = factor
    all_sents = _flat(per_passage)
    df: Counter[str] = Counter()
    for s in all_sents:
        df.update(t for t in s.terms if t in factors)
    n = max(len(all_sents), 1)
    return {t: f * math.log(1.0 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t, f in factors.items()}


def _score_all(
    per_passage: list[list[_Sentence]], weights: dict[str, float], neighbour_weight: float
) -> None:
    total = sum(weights.values())
    if total <= 0:
        return
    for sents in per_passage:
        for i, s in enumerate(sents):
            around: set[str] = set()
            if i > 0:
                around |= sents[i - 1].terms
            if i + 1 < len(sents):
                around |= sents[i + 1].terms
            own = sum(w for t, w in weights.items() if t in s.terms)
            near = sum(w for t, w in weights.items() if t not in s.terms and t in around)
            s.own = own / total
            s.score = (own + neighbour_weight * near) / total


def _flat(per_passage: list[list[_Sentence]]) -> list[_Sentence]:
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
    per_passage = _sentences(passages)
    weights = _query_weights(question, "", 0.0, per_passage)
    _score_all(per_passage, weights, settings.neighbour_weight)
    w = settings.rerank_weight
    scored = []
    for rank, (p, sents) in enumerate(zip(passages, per_passage, strict=True)):
        best = max((s.score for s in sents), default=0.0)
        scored.append(((1.0 - w) * best + w * (p.dense_score or 0.0), -rank, p))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    keep = scored if k is None else scored[:k]
    return [replace(p, n=n) for n, (_, _, p) in enumerate(keep, start=1)]


# A sentence with the asked-for answer type may stand in for the best sentence when it
# covers at least this share of what the best one covers.
TYPE_RATIO = 0.75
# Types whose absence declines the answer (when type_check is on). Who/where answers are
# often common nouns ("the courts of member states", "mountainous areas"), so a missing
# capitalised name only steers the choice of sentence, it does not decline.
STRICT_TYPES = frozenset({DATE, YEAR, MONTH, NUMBER})


def _decline(reason: str, best: float, features: dict[str, float]) -> Selection:
    logger.debug("declined: %s", reason)
    return Selection(True, reason, None, [], best, features)


def _typed_sentence(
    kind: str,
    question: str,
    flat: list[_Sentence],
    passages: list[Passage],
    settings: ChatSettings,
) -> _Sentence | None:
    """The best sentence holding an answer of ``kind``: among those covering nearly as
    much as the best sentence, or else, for a date or number, one from the best sentence's
    document that names every name of the question ("Sessions ... on Wednesday" for "When
    did Sessions issue the memo?")."""
    best = flat[0]
    floor = max(settings.min_support, TYPE_RATIO * best.score)
    for s in flat:
        if s.score < floor:
            break
        if candidates(kind, s.text, question):
            return s
    if kind not in STRICT_TYPES or not question_entities(question):
        return None
    source = passages[best.passage].source
    for s in flat:
        if (
            s.score > 0
            and passages[s.passage].source == source
            and not missing_entities(question, s.text)
            and candidates(kind, s.text, question)
        ):
            return s
    return None


def extract(
    question: str,
    passages: list[Passage],
    settings: ChatSettings,
    context: str = "",
    similarity: Similarity | None = None,
) -> Selection:
    """Pick the sentence(s) that answer ``question`` from ``passages``, or decline.

    ``context`` holds words from earlier turns (for follow-ups); they count
    ``settings.context_weight`` as much as the question's own words.
    """
    features: dict[str, float] = {}
    if not passages:
        return _decline("no passages were retrieved", 0.0, features)
    dense = [p.dense_score for p in passages if p.dense_score is not None]
    if dense:
        features["best_dense"] = round(max(dense), 4)
    per_passage = _sentences(passages)
    flat = _flat(per_passage)
    weights = _query_weights(question, context, settings.context_weight, per_passage)
    _score_all(per_passage, weights, settings.neighbour_weight)
    flat.sort(key=lambda s: (-s.score, s.passage, s.index))  # ties: the higher passage
    best = flat[0] if flat else None
    best_score = best.score if best else 0.0
    features["coverage"] = round(best_score, 4)
    if dense and max(dense) < settings.min_dense:
        return _decline(
            f"no passage is about this (best similarity {max(dense):.2f} < "
            f"{settings.min_dense:.2f})",
            best_score,
            features,
        )
    if not weights:
        return _decline("the question has no content words to look for", 0.0, features)
    if similarity is not None and settings.semantic_weight > 0 and flat:
        _blend_semantic(question, flat, similarity, settings.semantic_weight)
        if any(s.semantic for s in flat):
            features["best_semantic"] = round(max(s.semantic for s in flat), 4)
    flat.sort(key=lambda s: (-s.score, s.passage, s.index))
    best = flat[0] if flat else None
    best_score = best.score if best else 0.0
    # The evidence: how much of the question the best sentence covers, blended (as in
    # rerank) with how close the closest passage is in meaning; coverage alone without
    # dense scores.
    w = settings.rerank_weight if dense else 0.0
    evidence = (1 - w) * best_score + w * (max(dense) if dense else 0.0)
    features["evidence"] = round(evidence, 4)
    if best is None or best_score <= 0 or evidence < settings.min_support:
        similarity = f", best similarity {max(dense):.2f}" if dense else ""
        return _decline(
            f"the passages barely match the question (evidence {evidence:.2f} < "
            f"{settings.min_support:.2f}: the best sentence covers {best_score:.2f} of its "
            f"words{similarity})",
            best_score,
            features,
        )
    chosen, short = best, None
    kind = question_type(question)
    if kind:
        typed = _typed_sentence(kind, question, flat, passages, settings)
        features["type_ok"] = float(typed is not None)
        if typed is not None:
            chosen = typed
            anchors = [a for a, _, w in words(chosen.text) if stem(w.lower()) in weights]
            cand = best_candidate(candidates(kind, chosen.text, question), anchors)
            short = cand.text if cand else None
        elif settings.type_check and kind in STRICT_TYPES:
            return _decline(
                f"the passages do not state {DESCRIPTIONS[kind]} for this", best_score, features
            )
    features["best_score"] = round(chosen.score, 4)
    why = ""
    if settings.negation_check:
        why = negation_mismatch(question, chosen.text, set(weights))
        features["negation_mismatch"] = float(bool(why))
    if not why and settings.contrast_check:
        why = contrast_swap(question, chosen.text)
        features["contrast_swap"] = float(bool(why))
    if not why and settings.entity_check:
        passage = passages[chosen.passage]
        missing = missing_entities(question, passage.title + "\n" + passage.text)
        features["missing_names"] = float(len(missing))
        if missing:
            why = f"the passages do not mention {', '.join(repr(m) for m in missing)}"
    if why:
        return _decline(why, chosen.score, features)
    picked = _supporting(chosen, best, per_passage[chosen.passage], flat, settings, passages)
    return Selection(
        declined=False,
        reason="",
        short_answer=short,
        sentences=[
            SelectedSentence(passages[s.passage].n, s.start, s.end, s.text, round(s.score, 4))
            for s in picked
        ],
        best_score=chosen.score,
        features=features,
    )


_ANAPHOR = re.compile(
    r"^[\"'“‘(]*(?:he|she|it|they|this|these|that|those|his|her|its|their)\b", re.IGNORECASE
)


def _supporting(
    chosen: _Sentence,
    best: _Sentence,
    sents: list[_Sentence],
    flat: list[_Sentence],
    settings: ChatSettings,
    passages: list[Passage],
) -> list[_Sentence]:
    """The chosen sentence, then (up to ``max_sentences``) the best-scoring sentence if
    another was chosen for its answer type, the neighbours that share question words or
    continue it ("She ..."), and other sentences scoring nearly as high."""
    picked = [chosen]
    if best is not chosen:
        picked.append(best)
    around = [sents[i] for i in (chosen.index - 1, chosen.index + 1) if 0 <= i < len(sents)]
    around = [
        s for s in around if s.own > 0 or (s.index == chosen.index + 1 and _ANAPHOR.match(s.text))
    ]
    around.sort(key=lambda s: -s.own)
    others = [s for s in flat if s.score >= 0.9 * chosen.score]

    def place(s: _Sentence) -> tuple[str, int]:  # where the sentence is in its document
        p = passages[s.passage]
        return (p.source, p.start + s.start)

    seen = {place(s) for s in picked}
    for s in around + others:
        if len(picked) >= settings.max_sentences:
            break
        # Overlapping chunks hold the same sentence twice; a heading is not a claim.
        if place(s) in seen or _is_heading(s.text):
            continue
        seen.add(place(s))
        picked.append(s)
    return picked


def _is_heading(text: str) -> bool:
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

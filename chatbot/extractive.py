"""The offline answerer: quote the sentences that answer the question, or decline.

Each sentence of the retrieved passages is scored by the share of the question's content
words it holds (``chatbot.sentence_scores``). The best sentence is quoted with its
passage's [n], with its neighbours when they share question words, and a short answer (a
date, number, name or place) is taken from it when the question asks for one; a compound
question quotes the best sentence of each part (``chatbot.compound``). The answer is
declined when:

* no passage is about the question (``chatbot.off_topic``: chunk similarity, question
  words in the index, sentence similarity all below their floors);
* the evidence is too weak (``min_support``): the best sentence's coverage of the question,
  blended with the best dense similarity (``rerank_weight``);
* a when/how-many question finds no sentence with a date/number (``type_check``);
* the question is negated and the sentence is not, or the sentence negates a question word
  the question does not (``negation_check``);
* the question uses a contrasting word where the sentence uses another ("mild" vs
  "severe", ``contrast_check``);
* a name of the question is in no document, or a plain question's names and numbers are
  absent from the chosen passage (``entity_check``).

The last four catch near misses: questions that reuse a passage's words but ask for
something it does not say (see ``chatbot.refusal``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

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
from chatbot.compound import per_part
from chatbot.config import ChatSettings
from chatbot.off_topic import off_topic_reason
from chatbot.question import QuestionShape
from chatbot.refusal import (
    contrast_swap,
    entity_mismatch,
    missing_entities,
    negation_mismatch,
    question_entities,
)
from chatbot.relevance import CorpusStats
from chatbot.sentence_scores import (
    ScoredSentence,
    Similarity,
    blend_semantic,
    flatten,
    is_heading,
    is_markdown_heading,
    query_weights,
    rerank,
    score_all,
    sentences_of,
    support_score,
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


# A sentence with the asked-for answer type may stand in for the best sentence when it
# covers at least this share of what the best one covers.
TYPE_RATIO = 0.75
# Types whose absence declines the answer (when type_check is on). Who/where answers are
# often common nouns ("the courts of member states", "mountainous areas"), so a missing
# capitalised name only steers the choice of sentence, it does not decline.
STRICT_TYPES = frozenset({DATE, YEAR, MONTH, NUMBER})


# A name or place is shown as the short answer only when the sentence holding it covers this
# much of the question by itself (its neighbours not counted): below it, the name is often
# another actor of the sentence ("who does Sessions blame" -> "President Donald Trump").
# Chosen on the mixture: on seeds, natural, SQuAD and off-topic, the shown names below 0.45
# were 9 wrong and 0 right; above it 33 right and 24 wrong (mostly SQuAD).
NAME_SHORT_OWN = 0.45


def _decline(reason: str, best: float, features: dict[str, float]) -> Selection:
    logger.debug("declined: %s", reason)
    return Selection(True, reason, None, [], best, features)


def _typed_sentence(
    kind: str,
    question: str,
    flat: list[ScoredSentence],
    passages: list[Passage],
    settings: ChatSettings,
) -> ScoredSentence | None:
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


@dataclass
class _Scoring:
    """The question's weighted terms and every sentence's score against them."""

    per_passage: list[list[ScoredSentence]]
    flat: list[ScoredSentence]  # every sentence, best first after ``rank``
    weights: dict[str, float]
    corrections: dict[str, str]  # misspelt question word -> the index's word
    dense: list[float]  # the passages' dense similarities, where known

    def rank(self) -> None:
        """Best first (ties: the higher passage); a Markdown heading, which matches the
        question's words without answering it, after every sentence."""
        self.flat.sort(key=lambda s: (is_markdown_heading(s.text), -s.score, s.passage, s.index))

    @property
    def best(self) -> ScoredSentence | None:
        return self.flat[0] if self.flat else None

    @property
    def best_score(self) -> float:
        return self.flat[0].score if self.flat else 0.0


def extract(
    question: str,
    passages: list[Passage],
    settings: ChatSettings,
    context: str = "",
    similarity: Similarity | None = None,
    *,
    shape: QuestionShape | None = None,
    stats: CorpusStats | None = None,
) -> Selection:
    """Pick the sentence(s) that answer ``question`` from ``passages``, or decline.

    ``context`` holds words from earlier turns (for follow-ups); they count
    ``settings.context_weight`` as much as the question's own words. ``shape`` (see
    ``chatbot.question``) marks a compound question: then the best sentence of each part
    is quoted. ``stats`` (the whole index's term counts) weighs the off-topic decision and
    mends misspelt words.
    """
    features: dict[str, float] = {}
    if not passages:
        return _decline("no passages were retrieved", 0.0, features)
    scoring = _score(question, passages, settings, context, stats, features)
    if not scoring.weights:
        return _decline("the question has no content words to look for", 0.0, features)
    # A follow-up ("why?") is about what the conversation was about: its carried words
    # count too, but never against a question that names its own topic.
    carried = stats.corrections(content_terms(context)) if stats else {}
    scoring.corrections = {**carried, **scoring.corrections}
    why = off_topic_reason(
        question, passages, scoring.flat, settings, features, similarity,
        shape, stats, scoring.corrections, context,
    )  # fmt: skip
    if why:
        return _decline(why, scoring.best_score, features)
    if similarity is not None and settings.semantic_weight > 0 and scoring.flat:
        blend_semantic(question, scoring.flat, similarity, settings.semantic_weight)
        if any(s.semantic for s in scoring.flat):
            features["best_semantic"] = round(max(s.semantic for s in scoring.flat), 4)
    scoring.rank()
    why = _weak_evidence(scoring, settings, features)
    if why:
        return _decline(why, scoring.best_score, features)
    chosen, short, why = _typed_choice(question, scoring, passages, settings, shape, features)
    if not why:
        why = _near_miss(question, chosen, scoring, passages, settings, shape, stats, features)
    if why:
        return _decline(why, chosen.score, features)
    picked = _pick(question, chosen, scoring, passages, settings, shape, context)
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


def _pick(
    question: str,
    chosen: ScoredSentence,
    scoring: _Scoring,
    passages: list[Passage],
    settings: ChatSettings,
    shape: QuestionShape | None,
    context: str,
) -> list[ScoredSentence]:
    """The sentences to quote: each part's best for a compound question, else the chosen
    sentence with its supporting neighbours."""
    if shape is not None and shape.multi_part:
        return per_part(
            question,
            shape.parts,
            shape.sources,
            scoring.per_passage,
            passages,
            settings,
            scoring.corrections,
            context,
        )
    best = scoring.best or chosen
    sents = scoring.per_passage[chosen.passage]
    return _supporting(chosen, best, sents, scoring.flat, settings, passages)


def _score(
    question: str,
    passages: list[Passage],
    settings: ChatSettings,
    context: str,
    stats: CorpusStats | None,
    features: dict[str, float],
) -> _Scoring:
    """Every sentence of ``passages`` scored by its coverage of the question's words (with
    misspelt words mended against the index), best first."""
    dense = [p.dense_score for p in passages if p.dense_score is not None]
    if dense:
        features["best_dense"] = round(max(dense), 4)
    corrections = stats.corrections(content_terms(question)) if stats is not None else {}
    per_passage = sentences_of(passages)
    weights = query_weights(question, context, settings.context_weight, per_passage, corrections)
    score_all(per_passage, weights, settings.neighbour_weight)
    scoring = _Scoring(per_passage, flatten(per_passage), weights, corrections, dense)
    scoring.rank()
    features["coverage"] = round(scoring.best_score, 4)
    return scoring


def _weak_evidence(scoring: _Scoring, settings: ChatSettings, features: dict[str, float]) -> str:
    """Why the evidence is too weak to answer, or "". The evidence: how much of the question
    the best sentence covers, blended (as in rerank) with how close the closest passage is
    in meaning; coverage alone without dense scores."""
    dense, best_score = scoring.dense, scoring.best_score
    w = settings.rerank_weight if dense else 0.0
    evidence = (1 - w) * best_score + w * (max(dense) if dense else 0.0)
    features["evidence"] = round(evidence, 4)
    if best_score > 0 and evidence >= settings.min_support:
        return ""
    similarity_note = f", best similarity {max(dense):.2f}" if dense else ""
    return (
        f"the passages barely match the question (evidence {evidence:.2f} < "
        f"{settings.min_support:.2f}: the best sentence covers {best_score:.2f} of its "
        f"words{similarity_note})"
    )


def _typed_choice(
    question: str,
    scoring: _Scoring,
    passages: list[Passage],
    settings: ChatSettings,
    shape: QuestionShape | None,
    features: dict[str, float],
) -> tuple[ScoredSentence, str | None, str]:
    """The sentence to answer from, the short answer in it (a date, number, name or place
    when the question asks for one), and why there is none when one is required."""
    best = scoring.flat[0]
    kind = question_type(question)
    if not kind or (shape is not None and shape.multi_part):
        return best, None, ""
    typed = _typed_sentence(kind, question, scoring.flat, passages, settings)
    features["type_ok"] = float(typed is not None)
    if typed is None:
        if settings.type_check and kind in STRICT_TYPES:
            return best, None, f"the passages do not state {DESCRIPTIONS[kind]} for this"
        return best, None, ""
    anchors = [a for a, _, w in words(typed.text) if stem(w.lower()) in scoring.weights]
    cand = best_candidate(candidates(kind, typed.text, question), anchors)
    short = cand.text if cand else None
    own = _own_coverage(question, typed, scoring)
    features["typed_own"] = round(own, 4)
    if kind not in STRICT_TYPES and own < NAME_SHORT_OWN:
        short = None  # the sentence is quoted; the name in it is not vouched for
    return typed, short, ""


def _own_coverage(question: str, sent: ScoredSentence, scoring: _Scoring) -> float:
    """The share of the question's own words' weight (not words carried from earlier turns)
    that ``sent`` holds by itself: "who is against this?" after an answer naming Trump is not
    answered "Trump" by a sentence that holds only the carried words."""
    fix = scoring.corrections
    asked = {fix.get(t, t) for t in content_terms(question)}
    weights = {t: w for t, w in scoring.weights.items() if t in asked}
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in sent.terms) / total if total else 0.0


def _near_miss(
    question: str,
    chosen: ScoredSentence,
    scoring: _Scoring,
    passages: list[Passage],
    settings: ChatSettings,
    shape: QuestionShape | None,
    stats: CorpusStats | None,
    features: dict[str, float],
) -> str:
    """Why the chosen sentence reuses the question's words without answering it, or ""."""
    features["best_score"] = round(chosen.score, 4)
    compound = shape is not None and (shape.multi_part or shape.comparison)
    why = ""
    # A negated compound question ("Does A ..., while B does not ...?") negates one part,
    # which the best sentence of the other part need not echo: checked on plain questions.
    # "Are dogs allowed?" is answered by "Dogs are not allowed": for a yes/no question a
    # negated sentence is the answer (no), not a near miss.
    yes_no = shape is not None and shape.yes_no
    if settings.negation_check and not compound and not yes_no:
        why = negation_mismatch(question, chosen.text, set(scoring.weights))
        features["negation_mismatch"] = float(bool(why))
    if not why and settings.contrast_check and not compound:
        why = contrast_swap(question, chosen.text)
        features["contrast_swap"] = float(bool(why))
    if not why and settings.entity_check:
        why = entity_mismatch(question, passages[chosen.passage], compound, stats, features, shape)
    return why


_ANAPHOR = re.compile(
    r"^[\"'“‘(]*(?:he|she|it|they|this|these|that|those|his|her|its|their)\b", re.IGNORECASE
)


def _supporting(
    chosen: ScoredSentence,
    best: ScoredSentence,
    sents: list[ScoredSentence],
    flat: list[ScoredSentence],
    settings: ChatSettings,
    passages: list[Passage],
) -> list[ScoredSentence]:
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

    def place(s: ScoredSentence) -> tuple[str, int]:  # where the sentence is in its document
        p = passages[s.passage]
        return (p.source, p.start + s.start)

    seen = {place(s) for s in picked}
    for s in around + others:
        if len(picked) >= settings.max_sentences:
            break
        # Overlapping chunks hold the same sentence twice; a heading is not a claim.
        if place(s) in seen or is_heading(s.text):
            continue
        seen.add(place(s))
        picked.append(s)
    return picked

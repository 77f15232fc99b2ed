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
from chatbot.question import QuestionShape
from chatbot.refusal import (
    contrast_swap,
    missing_entities,
    negation_mismatch,
    question_entities,
)
from chatbot.relevance import (
    META_TERMS,
    CorpusStats,
    lexical_relevance,
    passage_terms,
    query_terms,
    same_source,
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
    context: frozenset[str] = frozenset()  # terms of its document's title, source and date
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
        context = frozenset(content_terms(p.context()))
        for si, (a, b) in enumerate(split_sentences(p.text)):
            text = p.text[a:b]
            sents.append(_Sentence(pi, si, a, b, text, frozenset(content_terms(text)), context))
        out.append(sents)
    return out


def _query_weights(
    question: str,
    context: str,
    context_weight: float,
    per_passage: list[list[_Sentence]],
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
    all_sents = _flat(per_passage)
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


def _score_all(
    per_passage: list[list[_Sentence]], weights: dict[str, float], neighbour_weight: float
) -> None:
    total = sum(weights.values())
    if total <= 0:
        return
    for sents in per_passage:
        for i, s in enumerate(sents):
            own, near = _cover(sents, i, weights, with_context=False)
            s.own = own / total
            s.score = (own + neighbour_weight * near) / total * _asking(s.text)


def _cover(
    sents: list[_Sentence], i: int, weights: dict[str, float], with_context: bool
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


def _asking(text: str) -> float:
    return QUESTION_SENTENCE if text.rstrip(" \"'”’)").endswith("?") else 1.0


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


def _off_topic(
    question: str,
    passages: list[Passage],
    flat: list[_Sentence],
    settings: ChatSettings,
    features: dict[str, float],
    similarity: Similarity | None,
    shape: QuestionShape | None,
    stats: CorpusStats | None,
    corrections: dict[str, str],
    context: str = "",
) -> str:
    """Why no passage is about the question, or "" when one is. On topic when any of three
    signals says so: the closest chunk's dense similarity (``min_dense``), the question's
    words in one passage with its document context, IDF-weighted over the whole index
    (``min_lexical``; for a follow-up, its words with those carried from the conversation,
    ``context``, when they do better), or the closest single sentence's similarity
    (``min_sentence``, computed only when the other two fail)."""
    dense = [p.dense_score for p in passages if p.dense_score is not None]
    best_dense = max(dense) if dense else None
    if best_dense is not None and best_dense >= settings.min_dense:
        return ""
    lexical = None
    if stats is not None:
        parts = shape.parts if shape is not None and shape.multi_part else ()
        held = passage_terms(passages)  # once, for every term list asked about below

        def found(text: str) -> float:
            return lexical_relevance(query_terms(text, corrections), passages, stats, held)[0]

        lexical = max(found(a) for a in dict.fromkeys([question, f"{question} {context}".strip()]))
        if parts:  # a compound question: every part must find its words somewhere
            per_part = [found(p) for p in parts]
            lexical = max(lexical, min(per_part))
        features["lexical"] = round(lexical, 4)
        if lexical >= settings.min_lexical:
            return ""
    sentence = None
    if similarity is not None and flat:
        near = [s for s in flat if s.passage < RELEVANCE_PASSAGES]
        sims = similarity(question, [s.text for s in near])
        for s, sim in zip(near, sims, strict=True):
            s.semantic = float(sim)
        sentence = max(sims, default=0.0)
        features["best_sentence"] = round(sentence, 4)
        if sentence >= settings.min_sentence:
            return ""
    if best_dense is None and lexical is None and sentence is None:
        return ""  # nothing to judge by (a BM25-only setup without statistics)
    said = []
    if best_dense is not None:
        said.append(f"passage similarity {best_dense:.2f} < {settings.min_dense:.2f}")
    if sentence is not None:
        said.append(f"sentence similarity {sentence:.2f} < {settings.min_sentence:.2f}")
    if lexical is not None:
        said.append(f"question words found {lexical:.2f} < {settings.min_lexical:.2f}")
    return f"no passage is about this ({', '.join(said)})"


# The off-topic check embeds the sentences of this many top passages when the cheaper
# signals (chunk similarity, question words) both say "off topic".
RELEVANCE_PASSAGES = 3


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
    dense = [p.dense_score for p in passages if p.dense_score is not None]
    if dense:
        features["best_dense"] = round(max(dense), 4)
    corrections = stats.corrections(content_terms(question)) if stats is not None else {}
    per_passage = _sentences(passages)
    flat = _flat(per_passage)
    weights = _query_weights(question, context, settings.context_weight, per_passage, corrections)
    _score_all(per_passage, weights, settings.neighbour_weight)
    flat.sort(key=lambda s: (-s.score, s.passage, s.index))  # ties: the higher passage
    best = flat[0] if flat else None
    best_score = best.score if best else 0.0
    features["coverage"] = round(best_score, 4)
    if not weights:
        return _decline("the question has no content words to look for", 0.0, features)
    # A follow-up ("why?") is about what the conversation was about: its carried words
    # count too, but never against a question that names its own topic.
    corrections = {**(stats.corrections(content_terms(context)) if stats else {}), **corrections}
    why = _off_topic(
        question,
        passages,
        flat,
        settings,
        features,
        similarity,
        shape,
        stats,
        corrections,
        context,
    )
    if why:
        return _decline(why, best_score, features)
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
        similarity_note = f", best similarity {max(dense):.2f}" if dense else ""
        return _decline(
            f"the passages barely match the question (evidence {evidence:.2f} < "
            f"{settings.min_support:.2f}: the best sentence covers {best_score:.2f} of its "
            f"words{similarity_note})",
            best_score,
            features,
        )
    compound = shape is not None and (shape.multi_part or shape.comparison)
    chosen, short = best, None
    kind = question_type(question)
    if kind and not (shape is not None and shape.multi_part):
        typed = _typed_sentence(kind, question, flat, passages, settings)
        features["type_ok"] = float(typed is not None)
        if typed is not None:
            chosen = typed
            anchors = [a for a, _, w in words(chosen.text) if stem(w.lower()) in weights]
            cand = best_candidate(candidates(kind, chosen.text, question), anchors)
            short = cand.text if cand else None
            features["typed_own"] = round(chosen.own, 4)
            if kind not in STRICT_TYPES and chosen.own < NAME_SHORT_OWN:
                short = None  # the sentence is quoted; the name in it is not vouched for
        elif settings.type_check and kind in STRICT_TYPES:
            return _decline(
                f"the passages do not state {DESCRIPTIONS[kind]} for this", best_score, features
            )
    features["best_score"] = round(chosen.score, 4)
    why = ""
    # A negated compound question ("Does A ..., while B does not ...?") negates one part,
    # which the best sentence of the other part need not echo: checked on plain questions.
    if settings.negation_check and not compound:
        why = negation_mismatch(question, chosen.text, set(weights))
        features["negation_mismatch"] = float(bool(why))
    if not why and settings.contrast_check and not compound:
        why = contrast_swap(question, chosen.text)
        features["contrast_swap"] = float(bool(why))
    if not why and settings.entity_check:
        why = _entity_mismatch(question, passages[chosen.passage], compound, stats, features, shape)
    if why:
        return _decline(why, chosen.score, features)
    if shape is not None and shape.multi_part:
        picked = _per_part(
            question,
            shape.parts,
            shape.sources,
            per_passage,
            passages,
            settings,
            corrections,
            context,
        )
    else:
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


def _entity_mismatch(
    question: str,
    chosen: Passage,
    compound: bool,
    stats: CorpusStats | None,
    features: dict[str, float],
    shape: QuestionShape | None = None,
) -> str:
    """Why a name of the question is not in the documents, or "".

    A source the question attributes an article to ("the Bloomberg report") must be the
    publisher of some document, when the documents name their publishers.

    A name no chunk of the whole index holds (a source, person or place the documents never
    mention) declines any question. A plain question's names and numbers must also be in
    the passage chosen to answer it, with its document's title, source and date; a compound
    question's parts come from several documents, so for it only the whole index counts."""
    sources = shape.sources if shape is not None else ()
    foreign = [src for src in sources if stats is not None and not stats.publishes(src)]
    features["unknown_sources"] = float(len(foreign))
    if foreign:
        return f"the documents hold no article from {', '.join(repr(f) for f in foreign)}"
    names = [e for e in question_entities(question) if not e[0].isdigit()]
    unknown = [e for e in names if stats is not None and not stats.mentions(e)]
    features["unknown_names"] = float(len(unknown))
    if unknown:
        return f"the documents never mention {', '.join(repr(e) for e in unknown)}"
    if compound:
        return ""
    missing = missing_entities(question, chosen.context() + "\n" + chosen.text)
    features["missing_names"] = float(len(missing))
    if missing:
        return f"the passages do not mention {', '.join(repr(m) for m in missing)}"
    return ""


# In a compound question's answer, a sentence from a document not quoted yet is preferred
# to a better one from a quoted document when it scores at least this share of it.
NEW_DOCUMENT_RATIO = 0.7


# A compound question's answer quotes at most this many sentences, one per document: its
# parts' best, then the best of other documents that score at least OTHER_DOCUMENT_RATIO of
# the best sentence (news questions of this kind draw on two to four articles).
COMPOUND_QUOTES = 5
OTHER_DOCUMENT_RATIO = 0.5


def _scored(
    weights: dict[str, float],
    per_passage: list[list[_Sentence]],
    neighbour_weight: float,
    skip: set[tuple[int, int]],
) -> list[tuple[float, _Sentence]]:
    """Every sentence's coverage of ``weights`` (its document's title, source and date
    count like a neighbour sentence), best first."""
    total = sum(weights.values())
    scored = []
    for sents in per_passage:
        for i, sent in enumerate(sents):
            if (sent.passage, sent.index) in skip or _is_heading(sent.text):
                continue
            own, near = _cover(sents, i, weights, with_context=True)
            scored.append(((own + neighbour_weight * near) / total * _asking(sent.text), sent))
    scored.sort(key=lambda t: (-t[0], t[1].passage, t[1].index))
    return scored


def _per_part(
    question: str,
    parts: tuple[str, ...],
    sources: tuple[str, ...],
    per_passage: list[list[_Sentence]],
    passages: list[Passage],
    settings: ChatSettings,
    corrections: dict[str, str],
    context: str,
) -> list[_Sentence]:
    """The best sentence for each part of a compound question, each from another document
    where one serves nearly as well, in the parts' order; then the best sentence of each
    other document that matches the whole question nearly as well."""
    picked: list[_Sentence] = []
    used_docs: set[str] = set()
    seen: set[tuple[int, int]] = set()

    said: set[str] = set()

    def take(sent: _Sentence) -> None:
        picked.append(sent)
        seen.add((sent.passage, sent.index))
        used_docs.add(passages[sent.passage].source)
        said.add(" ".join(sent.text.split()))

    for part in parts:
        weights = _query_weights(part, context, settings.context_weight, per_passage, corrections)
        scored = _scored(weights, per_passage, settings.neighbour_weight, seen) if weights else []
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
    weights = _query_weights(question, context, settings.context_weight, per_passage, corrections)
    scored = _scored(weights, per_passage, settings.neighbour_weight, seen) if weights else []
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

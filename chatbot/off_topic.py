"""Whether any retrieved passage is about the question at all (the off-topic refusal)."""

from __future__ import annotations

from chatbot.config import ChatSettings
from chatbot.question import QuestionShape
from chatbot.relevance import CorpusStats, lexical_relevance, passage_terms, query_terms
from chatbot.sentence_scores import ScoredSentence, Similarity
from chatbot.types import Passage

__all__ = ["RELEVANCE_PASSAGES", "off_topic_reason"]


def off_topic_reason(
    question: str,
    passages: list[Passage],
    flat: list[ScoredSentence],
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

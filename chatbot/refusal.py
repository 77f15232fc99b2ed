"""Near-miss checks: a sentence that shares the question's words but not its claim.

SQuAD 2.0-style unanswerable questions reuse a passage's wording and change one thing: they
negate it ("what is *not* ..."), swap a word for its opposite ("*mild* drought" where the
passage says "severe"), or name something the passage never mentions. Each function here
finds one of those mismatches between a question and the sentence chosen to answer it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from chatbot.sentences import NEGATIONS, STOPWORDS, stem, words

if TYPE_CHECKING:
    from chatbot.question import QuestionShape
    from chatbot.relevance import CorpusStats
    from chatbot.types import Passage

# Words that contrast with the others in their group: a question using one where the
# sentence uses another asks about something else.
CONTRAST_GROUPS: tuple[frozenset[str], ...] = tuple(
    frozenset(g.split())
    for g in (
        "first second third fourth fifth sixth seventh eighth ninth tenth last final",
        "most least fewest",
        "more less fewer",
        "largest smallest biggest highest lowest greatest best worst oldest youngest longest "
        "shortest",
        "larger smaller bigger higher lower greater better worse older younger longer shorter",
        "north south east west northern southern eastern western northward southward eastward "
        "westward northerly southerly easterly westerly northeast northwest southeast southwest",
        "mild severe moderate extreme strong weak",
        "hot cold warm cool heat",
        "before after",
        "early late earlier later earliest latest",
        "increase decrease increased decreased rise fall rose fell",
        "upper lower inner outer",
        "minimum maximum",
        "win won lose lost",
        "victory defeat",
        "success failure successful unsuccessful",
        "positive negative",
        "public private",
        "ancient modern",
        "major minor",
    )
)
_CONTRAST = {w: g for g in CONTRAST_GROUPS for w in g}
_NAME_TOKEN = re.compile(r"^(?:[A-Z][A-Za-z'’-]*[A-Za-z]|\d[\d,.]*)$")
_NEGATING = NEGATIONS | {"non"}
_DEMONYM = ("ish", "ian", "ese", "an", "ic", "i")


def _lower_words(text: str) -> list[str]:
    return [w.lower() for _, _, w in words(text)]


def negation_mismatch(question: str, sentence: str, question_terms: set[str]) -> str:
    """Why the negation differs, or "".

    Either the question is negated ("not", "n't", "never", "non-") and the sentence is not,
    or the sentence puts a negation right next to one of the question's words (stems in
    ``question_terms``) and the question has none. "not X but Y" is a correction, not a
    negation, and is let through.
    """
    q_neg = [w for w in _lower_words(question) if w in _NEGATING]
    s_words = _lower_words(sentence)
    if q_neg and not any(w in _NEGATING for w in s_words):
        return f"the question asks about '{q_neg[0]}' but the passage states no negation"
    if q_neg:
        return ""
    for i, w in enumerate(s_words):
        if w not in NEGATIONS or "but" in s_words[i + 1 : i + 9]:
            continue
        neighbours = s_words[max(0, i - 1) : i] + s_words[i + 1 : i + 2]
        if any(stem(n) in question_terms for n in neighbours):
            return f"the passage says '{w}' where the question does not"
    return ""


def contrast_swap(question: str, sentence: str) -> str:
    """A question word whose contrasting word the sentence uses instead ("mild" where the
    sentence says "severe", "second" where it says "first"), as a reason, or ""."""
    s_words = set(_lower_words(sentence))
    q_words = _lower_words(question)
    for w in q_words:
        group = _CONTRAST.get(w)
        if group is None or w in s_words:
            continue
        # "more or less": a question using both words asks which, it contrasts nothing
        other = sorted((group - {w}) & s_words - set(q_words))
        if other:
            return f"the question says '{w}' where the passage says '{other[0]}'"
    return ""


def question_entities(question: str) -> list[str]:
    """Names and numbers in the question: capitalised words after the first, and digits
    ("Japan", "1974"). Two-letter acronyms are left out (passages often spell them out)."""
    found = []
    for i, (_, _, w) in enumerate(words(question)):
        if i == 0 or not _NAME_TOKEN.match(w) or w.lower() in STOPWORDS:
            continue
        if w.isupper() and len(w) <= 2:
            continue
        found.append(w)
    return list(dict.fromkeys(found))


# Small counts are written either way ("4 circumstances" / "four limited circumstances").
_NUMBER_NAMES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def _mentions(entity: str, stems: set[str]) -> bool:
    s = stem(entity.lower())
    if s in stems:
        return True
    if entity.isdigit() and int(entity) < len(_NUMBER_NAMES):
        return stem(_NUMBER_NAMES[int(entity)]) in stems
    for other in stems:
        short, long_ = (s, other) if len(s) <= len(other) else (other, s)
        if len(short) >= 4 and long_.startswith(short):
            return True  # "Victoria" / "Victorian"
        if entity.lower().endswith(_DEMONYM) and len(short) >= 4 and short[:4] == long_[:4]:
            return True  # "English" / "England", "British" / "Britain"
    return False


def missing_entities(question: str, text: str) -> list[str]:
    """The question's names and numbers that ``text`` does not mention."""
    stems = {stem(w) for w in _lower_words(text)}
    return [e for e in question_entities(question) if not _mentions(e, stems)]


def entity_mismatch(
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

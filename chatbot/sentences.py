"""Sentence spans and stemmed content words: the text units the extractive answerer scores."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# Words that end with a period without ending the sentence (lower-cased, no period).
ABBREVIATIONS = frozenset(
    """
    mr mrs ms dr prof sr jr st mt ft lt sgt capt cmdr adm gov sen rep rev hon pres supt insp
    messrs mme mlle jan feb mar apr jun jul aug sep sept oct nov dec no nos vol vols figs eq eqs
    para pp ca cf vs etc al approx dept univ inc ltd corp bros assn ave blvd hwy
    """.split()
)
# Capitalised words that usually open a sentence; after an initialism ("U.S.") they mean a
# new sentence started, otherwise "U.S. Attorney" stays one sentence.
SENTENCE_OPENERS = frozenset(
    """
    the a an in on at it its he she they we i this that these those there his her their our
    but and however although though while when after before since as if for to during from
    by with some many most one two three four five six seven eight nine ten several such
    """.split()
)
STOPWORDS = frozenset(
    """
    a an the and or but nor so yet of to in on at by for with from into onto upon about above
    below over under between among through during before after since until till than as
    is are was were be been being am do does did done doing have has had having will would
    shall should can could may might must ought i me my mine we us our ours you your yours he
    him his she her hers it its they them their theirs this that these those there here
    what which who whom whose when where why how whatever whichever whoever whenever
    s t d ll m o re ve y not no nor own same too very just also then once again
    all any both each some such if because while whether either neither
    up down out off further per via
    become becomes became becoming get gets got getting make makes made making
    say says said saying tell tells told telling try tries tried trying
    """.split()
)
NEGATIONS = frozenset("not no never none nothing nobody nowhere neither nor without cannot".split())

_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")
# A candidate sentence end: terminal punctuation, then closing quotes/brackets, then space.
_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n\s*")
_OPENING = "\"'“‘([" + "0123456789"


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of a lower-cased word (the same stemmer as the BM25 index)."""
    return _stemmer().stemWord(word)


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


def _is_boundary(text: str, end_start: int, end_stop: int) -> bool:
    """Whether the punctuation run text[end_start:end_stop] really ends a sentence."""
    rest = text[end_stop:].lstrip()
    if not rest:
        return True
    nxt = rest[0]
    if not (nxt.isupper() or nxt in _OPENING):
        return False
    if text[end_start] != ".":
        return True
    m = re.search(r"([A-Za-z.]+)\.$", text[max(0, end_start - 20) : end_start + 1])
    token = m.group(1).lower() if m else ""
    next_word = re.match(r"[\"'“‘(\[]*([A-Za-z]+)", rest)
    opener = bool(next_word) and next_word.group(1).lower() in SENTENCE_OPENERS
    if token in ABBREVIATIONS and "." not in token and token not in {"etc", "al", "no"}:
        return False  # "Dr. Smith", "Rep. Joe Barton", "c. 1,300,000"
    if "." in token or len(token) == 1 or token in ABBREVIATIONS:
        # an initialism ("U.S.", "J.") or "etc.": a sentence end only before an opener
        return opener
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) of ``text``, whitespace trimmed, in order.

    Blank lines always end a sentence; a period after an abbreviation or initialism
    ("Dr.", "U.S.") does not unless the next word usually opens a sentence; a closing quote
    after the period stays with its sentence.
    """
    spans: list[tuple[int, int]] = []
    block_start = 0
    blocks = []
    for m in _BLANK_LINE_RE.finditer(text):
        blocks.append((block_start, m.start()))
        block_start = m.end()
    blocks.append((block_start, len(text)))
    for b_start, b_end in blocks:
        block = text[b_start:b_end]
        start = 0
        for m in _END_RE.finditer(block):
            if _is_boundary(block, m.start(), m.end()):
                spans.append((b_start + start, b_start + m.end()))
                start = m.end()
        spans.append((b_start + start, b_end))
    out = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append((a, b))
    return out

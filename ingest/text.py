"""Text utilities every package shares: the stemmer, stopwords, sentence splitting and the
``[n]`` citation markers. One owner, so ``ingest``, ``chatbot`` and ``eval`` cannot drift.

Three sentence splitters live here on purpose, each with its own rules, because changing any
of them changes a stored title, a quoted span or an eval figure:

- ``split_sentences``: spans of document passages (what the answerer quotes and cites);
  abbreviation- and initialism-aware, blank lines always end a sentence.
- ``first_sentence``: a document's first sentence (a title when it has none); a shorter
  abbreviation list, no look at the next word.
- ``answer_sentences``: an answer's sentences, line by line, keeping the ``[n]`` markers that
  follow a full stop; only one-letter abbreviations ("U.S.") hold a sentence together.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

# ---------------------------------------------------------------- stemming and stopwords


# Irregular forms the Snowball stemmer leaves as they are ("paid" stays "paid", so "Is overtime
# paid?" matched "paid vacation" and missed "pay overtime"): each is mapped to its base word
# before stemming, in the BM25 analyser and the answerer alike. Forms that are just as often
# another word (left, found, saw, rose, felt, lay, fed as in "the Fed", shot, sat, lit, bound)
# are left out. Changing this table changes the BM25 terms: bump ``ingest.lexical.FORMAT``.
IRREGULAR_FORMS = {
    form: base
    for base, forms in {
        "arise": "arose arisen",
        "become": "became",
        "begin": "began begun",
        "bend": "bent",
        "break": "broke broken",
        "bring": "brought",
        "build": "built",
        "buy": "bought",
        "catch": "caught",
        "choose": "chose chosen",
        "come": "came",
        "deal": "dealt",
        "dig": "dug",
        "draw": "drew drawn",
        "drive": "drove driven",
        "eat": "ate eaten",
        "fall": "fell fallen",
        "fight": "fought",
        "flee": "fled",
        "fly": "flew flown",
        "forget": "forgot forgotten",
        "forgive": "forgave forgiven",
        "freeze": "froze frozen",
        "give": "gave given",
        "go": "went gone",
        "grow": "grew grown",
        "hang": "hung",
        "hear": "heard",
        "hide": "hid hidden",
        "hold": "held",
        "keep": "kept",
        "know": "knew known",
        "lay": "laid",
        "lead": "led",
        "lend": "lent",
        "lose": "lost",
        "make": "made",
        "mean": "meant",
        "meet": "met",
        "overcome": "overcame",
        "pay": "paid",
        "ride": "rode ridden",
        "run": "ran",
        "say": "said",
        "seek": "sought",
        "sell": "sold",
        "send": "sent",
        "shake": "shook shaken",
        "sing": "sang sung",
        "sink": "sank sunk",
        "sleep": "slept",
        "speak": "spoke spoken",
        "spend": "spent",
        "stand": "stood",
        "steal": "stole stolen",
        "strike": "struck stricken",
        "swim": "swam swum",
        "take": "took taken",
        "teach": "taught",
        "tear": "tore torn",
        "tell": "told",
        "think": "thought",
        "throw": "threw thrown",
        "understand": "understood",
        "undertake": "undertook undertaken",
        "wear": "wore worn",
        "weep": "wept",
        "win": "won",
        "withdraw": "withdrew withdrawn",
        "write": "wrote written",
        "child": "children",
        "foot": "feet",
        "man": "men",
        "mouse": "mice",
        "tooth": "teeth",
        "woman": "women",
    }.items()
    for form in forms.split()
}


class _Stemmer:
    """PyStemmer's Snowball stemmer, after ``IRREGULAR_FORMS``; the two methods bm25s calls."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def stemWord(self, word: str) -> str:  # noqa: N802 - PyStemmer's name, which bm25s calls
        return self._inner.stemWord(IRREGULAR_FORMS.get(word, word))

    def stemWords(self, words: list[str]) -> list[str]:  # noqa: N802
        return self._inner.stemWords([IRREGULAR_FORMS.get(w, w) for w in words])


@lru_cache(maxsize=1)
def stemmer() -> Any:
    """The Snowball English stemmer (PyStemmer) after ``IRREGULAR_FORMS``, loaded once and
    shared: the BM25 analyser and the answerer's content words stem alike. It keeps the GIL
    while it stems, so threads never run it concurrently."""
    import Stemmer

    return _Stemmer(Stemmer.Stemmer("english"))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of a lower-cased word (the same stemmer as the BM25 index)."""
    return stemmer().stemWord(word)


# The BM25 analyser's stopword list: bm25s's English one, by the name bm25s knows it by.
BM25_STOPWORDS = "en"
# Words that carry no content for the answerer's word matching.
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
# The shorter list that decides whether a question has content words of its own or follows
# up on the conversation (``chatbot.condense`` keeps a copy of it until it imports this one).
QUESTION_STOPWORDS = frozenset(
    """
    a about an and are as at be by can could did do does for from had has have how i in is it
    me of on or said say should tell that the this to was we were what when where which who
    whom why will with would you
    """.split()
)

# ---------------------------------------------------------------- passage sentences

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
# A candidate sentence end: terminal punctuation, then closing quotes/brackets, then space.
_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n\s*")
_OPENING = "\"'“‘([" + "0123456789"


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


# ---------------------------------------------------------------- a document's first sentence

_FIRST_END_RE = re.compile(r"[.!?][\"'”’)\]]*\s")
# A full stop after these ends an abbreviation ("U.S. Attorney", "Mr. Smith"), not a sentence.
_TITLE_ABBREVIATION_RE = re.compile(
    r"(?:\b[A-Za-z]\.)+\Z|\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Mt|Gen|Gov|Sen|Rep|Rev|Capt|Col|Lt"
    r"|Inc|Ltd|Co|Corp|vs|etc|approx|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.\Z"
)


def first_sentence(text: str) -> str:
    """``text`` up to the end of its first sentence (with the space after it), or all of it."""
    for m in _FIRST_END_RE.finditer(text):
        dot = m.start()
        if text[dot] == "." and _TITLE_ABBREVIATION_RE.search(text, max(0, dot - 12), dot + 1):
            continue
        return text[: m.end()]
    return text


# ---------------------------------------------------------------- citation markers

# One marker, "[3]"; group 1 is the passage number.
CITATION_RE = re.compile(r"\[(\d+)\]")
# A marker with the one space written before it ("... people [1]"), removed together.
SPACED_CITATION_RE = re.compile(r"\s?\[(\d+)\]")
# A piece of text that is only markers and punctuation (". [2][3]").
MARKERS_ONLY_RE = re.compile(r"^[\s.,;:!?]*(\[\d+\][\s.,;:!?]*)+$")
# A marker listing several numbers ("[1, 2]", "[1-3]"), with the spaces before it.
CITATION_LIST_RE = re.compile(r"\s*\[\d+(?:\s*[,;-]\s*\d+)*\]")

# ---------------------------------------------------------------- an answer's sentences

# A candidate sentence end: stops, closing quotes or brackets, then any [n] markers.
_ANSWER_STOP_RE = re.compile(r"[.!?]+[\"'”’)]*(?:\s*\[\d+\])*")


def _is_initial(line: str, stop: int) -> bool:
    """A full stop ending a one-letter abbreviation ("U.S.", "J.")."""
    return (
        line[stop] == "."
        and stop >= 1
        and line[stop - 1].isupper()
        and (stop == 1 or line[stop - 2] in ' .(“"')
    )


def answer_sentences(text: str) -> list[str]:
    """An answer's sentences, line by line, ``> `` quote markers removed. A sentence ends
    at . ! or ? (with its closing quotes and any ``[n]`` markers after it: "... people.
    [1]") before a space, but not at a one-letter abbreviation ("U.S. law")."""
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip().lstrip(">").strip()
        begin = 0
        for match in _ANSWER_STOP_RE.finditer(line):
            end = match.end()
            if end < len(line) and not line[end].isspace():
                continue
            if _is_initial(line, match.start()) and not CITATION_RE.search(match.group()):
                continue
            out.append(line[begin:end].strip())
            begin = end
        if line[begin:].strip():
            out.append(line[begin:].strip())
    return [s for s in out if s]

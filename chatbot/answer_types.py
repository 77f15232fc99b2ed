"""What kind of answer a question asks for, and where a sentence holds one.

A "when" question needs a date, "how many"/"how much" a number, "who" a name and "where" a
place: ``question_type`` reads that off the wh-word, ``candidates`` finds the spans of that
kind in a sentence that the question does not already contain, and the best one becomes the
short answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.sentences import SENTENCE_OPENERS, STOPWORDS, content_terms

DATE = "date"
YEAR = "year"
MONTH = "month"
NUMBER = "number"
PERSON = "person"
PLACE = "place"

DESCRIPTIONS = {
    DATE: "a date",
    YEAR: "a year",
    MONTH: "a month",
    NUMBER: "a number",
    PERSON: "a name",
    PLACE: "a place",
}

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
)
_FULL_MONTHS = _MONTHS.split("|Jan|")[0]
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_ORDINAL_WORDS = (
    "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    "thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    "twenty-first"
)
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred|thousand|million|billion|trillion|dozen|dozens|hundreds|thousands|"
    "millions|half|quarter"
)
_SCALE = r"(?:\s+(?:hundred|thousand|million|billion|trillion)|\s*(?:%|percent|per\s+cent))?"

_DATE_RE = re.compile(
    rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{3,4}}"  # 1 September 1939
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{3,4}}"  # March 17, 1752
    rf"|(?:early|mid|late)?-?\s?(?:{_MONTHS})\.?,?\s+\d{{3,4}}"  # July 1944
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})\b"  # 17th of March
    rf"|(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b"  # March 17
    r"|\d{4}-\d{2}-\d{2}"  # 2018-03-22
    rf"|(?:the\s+)?(?:(?:early|mid|late)-?\s?)?(?:\d{{1,2}}(?:st|nd|rd|th)|{_ORDINAL_WORDS})"
    r"[\s-]+(?:century|centuries|millennium)(?:\s+(?:BC|BCE|AD|CE))?"
    r"|(?:the\s+)?(?:early\s+|mid-|late\s+)?\d{2,4}0s"  # the 1960s
    r"|\d{1,4}\s*(?:BC|BCE|AD|CE)\b|(?:AD|CE)\s+\d{1,4}"
    r"|(?:1[0-9]{3}|20[0-9]{2})(?:[–-](?:1[0-9]{3}|20[0-9]{2}|[0-9]{2}))?"  # 1757, 1402–1405
    rf"|(?-i:{_WEEKDAYS}|{_FULL_MONTHS})"
    r"|(?:yesterday|today|tonight|tomorrow|noon|midnight)"
    r"|(?:earlier|later)\s+(?:this|that|last)\s+(?:week|month|year)"  # earlier this week
    r"|(?:last|next)\s+(?:week|month|year|weekend)"
    r"|(?:a|one|two|three|four|five|six|\d+)\s+(?:days?|weeks?|months?|years?)\s+(?:ago|earlier|later)"
    # when a rule says it happens: "within 30 days", "after three months", "in two weeks"
    r"|(?:within|after|in)\s+(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|twelve|"
    r"\d{1,3})\s+(?:(?:working|calendar|business)\s+)?(?:hours?|days?|weeks?|months?|years?)"
    r"|\d{1,2}(?::\d{2})?\s*(?:am|pm|a\.m|p\.m)"  # 5 pm
    r"|(?:\d{1,2}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"
    r"\s+(?:o['’]clock|in\s+the\s+(?:morning|afternoon|evening))"  # nine in the morning
    r"|(?:[01]?\d|2[0-3]):[0-5]\d"  # 17:30
    r")\b",
    re.IGNORECASE,
)
_UNITS = (
    "years|months|weeks|days|hours|minutes|seconds|miles|kilometres|kilometers|metres|meters|"
    "feet|foot|inches|acres|hectares|tons|tonnes|pounds|kilograms|dollars|euros|degrees|"
    "percent|times|people|members|seats|students|km|mi|m|cm|mm|ft|kg|lb|ha|GHz|MHz|Da|"
    r"m3/s|km2|sq\s+mi|°C|°F"
)
_NUMBER_RE = re.compile(
    r"(?:[$£€¥<>~≈]\s?)?\b(?:\d[\d,]*(?:\.\d+)?"
    + _SCALE
    + rf"|(?:(?:{_NUMBER_WORDS})(?:[\s-]+(?:and\s+)?(?:{_NUMBER_WORDS}))*)"
    + _SCALE
    + r")\b"
    rf"(?:\s*%|\s?(?:{_UNITS})(?![\w/]))?",
    re.IGNORECASE,
)
# Runs of capitalised words, allowing lower-case particles inside ("Ludwig von Nassau").
_NAME_RE = re.compile(
    r"(?:[A-Z][\w’'.-]*[\w.]|[A-Z])"
    r"(?:\s+(?:(?:of|de|da|di|del|der|van|von|la|le|al|bin|ibn|du|y|and|the)\s+)*"
    r"(?:[A-Z][\w’'.-]*[\w.]|[A-Z]))*"
)
_POSSESSIVE = re.compile(r"[’']s?$")
_LOWER_NEXT = re.compile(r"\s+[a-z]")
_DATE_WORDS = re.compile(rf"^(?:{_MONTHS}|{_WEEKDAYS})$", re.IGNORECASE)

_WH_RE = re.compile(r"\b(when|who|whom|whose|where|what|which|how|why)\b", re.IGNORECASE)
_DATE_Q = re.compile(
    r"\b(?:what|which)\s+(?:year|years|month|day|date|century|decade|era|time\s+period)\b"
    r"|\bwhat\s+time\b|\bhow\s+long\s+ago\b|\bsince\s+when\b",
    re.IGNORECASE,
)
_NUMBER_Q = re.compile(
    r"\bhow\s+(?:many|much|old|long|far|large|big|tall|high|deep|wide|heavy|fast)\b"
    r"|\bwhat\s+(?:number|percentage|percent|proportion|amount|population|size|height|"
    r"length|distance|temperature|speed|age|fraction)\b",
    re.IGNORECASE,
)
_PLACE_Q = re.compile(
    r"\b(?:what|which)\s+(?:city|cities|country|countries|state|region|place|town|county|"
    r"province|continent|island|river|nation)\b",
    re.IGNORECASE,
)
_YEAR_Q = re.compile(r"\b(?:what|which)\s+(?:year|years|century|decade)\b", re.IGNORECASE)
_MONTH_Q = re.compile(r"\b(?:what|which)\s+month\b", re.IGNORECASE)
_YEARISH = re.compile(r"\d{3,4}|centur|millenn", re.IGNORECASE)
_MONTHISH = re.compile(rf"\b(?:{_MONTHS})\b", re.IGNORECASE)


_HOW_MANY = re.compile(r"\bhow\s+many\s+([a-z][\w-]*)", re.IGNORECASE)
_MONEY_Q = re.compile(
    r"\bhow\s+much\b.*\b(?:cost|costs|pay|paid|pays|price|priced|spend|spent|worth|charge|"
    r"charges|raise|raised|earn|earned|sell|sold|fund|funding|valued|valuation|revenue)\b"
    r"|\bhow\s+much\s+(?:money|cash|revenue|funding|profit)\b",
    re.IGNORECASE,
)
_MONEY_RE = re.compile(
    r"[$£€¥]|\b(?:dollars?|euros?|pounds?|yen|cents?|usd|eur|gbp|billion|million|"
    r"trillion|thousand|bn|m)\b",
    re.IGNORECASE,
)


def _counted_noun(question: str) -> str | None:
    """The stem of what "how many ..." counts ("players"), if the question asks so."""
    m = _HOW_MANY.search(question)
    terms = content_terms(m.group(1)) if m else []
    return terms[0] if terms else None


def question_type(question: str) -> str | None:
    """YEAR, MONTH, DATE, NUMBER, PERSON, PLACE or None (other what/which/why/how)."""
    if _YEAR_Q.search(question):
        return YEAR
    if _MONTH_Q.search(question):
        return MONTH
    if _DATE_Q.search(question):
        return DATE
    if _NUMBER_Q.search(question):
        return NUMBER
    if _PLACE_Q.search(question):
        return PLACE
    m = _WH_RE.search(question)
    if not m:
        return None
    wh = m.group(1).lower()
    if wh == "when":
        return DATE
    if wh in ("who", "whom", "whose"):
        return PERSON
    if wh == "where":
        return PLACE
    return None


@dataclass(frozen=True)
class Candidate:
    start: int
    end: int
    text: str


def _in_question(span: str, question_terms: set[str]) -> bool:
    """Whether every word of ``span`` is a question word (or of its family: "Victorian")."""
    terms = content_terms(span)
    return bool(terms) and all(
        t in question_terms or any(_same_family(t, q) for q in question_terms) for t in terms
    )


def _same_family(a: str, b: str) -> bool:
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= 4 and long_.startswith(short)


def candidates(kind: str, sentence: str, question: str) -> list[Candidate]:
    """Spans of ``kind`` in ``sentence`` that are not just words of the question."""
    q_terms = set(content_terms(question))
    out: list[Candidate] = []
    if kind in (DATE, YEAR, MONTH):
        unit = {YEAR: _YEARISH, MONTH: _MONTHISH}.get(kind)
        for m in _DATE_RE.finditer(sentence):
            text = m.group(0)
            if _in_question(text, q_terms) or text.lower() in question.lower():
                continue
            if unit is None or unit.search(text):
                out.append(Candidate(m.start(), m.end(), text))
    elif kind == NUMBER:
        counted = _counted_noun(question)
        money = bool(_MONEY_Q.search(question))
        of_it: list[Candidate] = []
        for m in _NUMBER_RE.finditer(sentence):
            text = m.group(0).strip()
            if text.lower() in question.lower() or not text:
                continue
            after = sentence[m.start() + len(text) : m.start() + len(text) + 40]
            if money and not _MONEY_RE.search(" ".join([text, *after.split()[:2]])):
                continue  # "How much does it cost": an amount of money
            cand = Candidate(m.start(), m.start() + len(text), text)
            out.append(cand)
            if counted and counted in content_terms(after)[:2]:
                of_it.append(cand)  # "How many players": "five players" first
        out = of_it or out
    elif kind in (PERSON, PLACE):
        first_word = _first_word_start(sentence)
        for m in _NAME_RE.finditer(sentence):
            start, text = m.start(), m.group(0).rstrip(".")
            if start == first_word and _not_a_name(text.split()[0]):
                # "The Normans ...", "According to ...": drop the sentence's first word
                rest = text[len(text.split()[0]) :].lstrip()
                if not rest or not rest[0].isupper():
                    continue
                start, text = start + len(text) - len(rest), rest
            if start == first_word and " " not in text:
                continue  # a lone capitalised first word ("Drug traffickers ...") says nothing
            if all(_DATE_WORDS.match(w) for w in text.split()):
                continue
            if _POSSESSIVE.search(text) and _LOWER_NEXT.match(sentence, start + len(text)):
                continue  # "Binance’s former head": a name that qualifies a noun, not the answer
            if not _in_question(text, q_terms):
                out.append(Candidate(start, start + len(text), text))
    return out


def _not_a_name(word: str) -> bool:
    low = word.lower().strip("“\"'‘(")
    return low in SENTENCE_OPENERS or low in STOPWORDS or low.endswith(("ing", "ly", "ed"))


def _first_word_start(sentence: str) -> int:
    m = re.search(r"[A-Za-z0-9]", sentence)
    return m.start() if m else 0


def best_candidate(cands: list[Candidate], anchors: list[int]) -> Candidate | None:
    """The candidate closest to the sentence's question words (``anchors``: their offsets)."""
    if not cands:
        return None
    if not anchors:
        return cands[0]

    def distance(c: Candidate) -> int:
        return min(
            0 if c.start <= a < c.end else min(abs(a - c.start), abs(a - c.end)) for a in anchors
        )

    return min(cands, key=lambda c: (distance(c), c.start))

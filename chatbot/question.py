"""What a question asks for, read off its wording: a summary of a document, one fact, or
facts from several named parts (articles, sources, events) to set side by side.

Nothing here looks at the documents; ``chatbot.extractive`` and ``chatbot.retrieve`` use
the result to decide how to search and what to quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatbot.sentences import content_terms

# "Summarize ...", "what is this about", "give me an overview of ...", "tl;dr", "key points"
_SUMMARY_RE = re.compile(
    r"^\s*(?:(?:please|can\s+you|could\s+you|pls)\s+)*(?:"
    r"summari[sz]e|summary|sum\s+up|summ?ary\s+of|tl;?\s?dr|recap|overview|outline|gist"
    r"|give\s+(?:me\s+)?(?:an?\s+)?(?:summary|overview|recap|gist|rundown|brief)"
    r"|(?:what\s+are\s+)?the\s+(?:main|key)\s+(?:points|takeaways|ideas)"
    r"|what(?:['’]?s|\s+is|\s+are)\s+(?:it|(?:this|these|that|those|the)(?:\s+\w+){0,2})"
    r"\s+(?:all\s+)?about"
    r"|what\s+(?:is|are)\s+(?:the\s+)?(?:main\s+)?(?:point|points|topic|subject|gist)"
    r"|(?:what|whats|what's)\s+(?:does|do)\s+(?:this|it)\s+say"
    r"|what\s+happened"
    r")\b",
    re.IGNORECASE,
)
# Words of a summary request that say nothing about which document is meant.
_REQUEST_WORDS = frozenset(
    content_terms(
        "summarize summarise summary sum up tldr tl dr recap overview outline gist give "
        "please can could main key points takeaways ideas point topic subject about happened "
        "article document documents text story piece report memo file page whole brief "
        "rundown short quick whats"
    )
)
# Nouns that can name one document among many ("What is the memo about?").
_DOCUMENT_NOUNS = frozenset(content_terms("memo report paper letter speech statement"))

# Where a compound question divides into the parts it sets side by side.
_SPLIT_RE = re.compile(
    r",?\s+while\s+|,?\s+whereas\s+|,\s+but\s+|;\s+|,?\s+compared\s+(?:to|with)\s+"
    r"|,?\s+(?:versus|vs\.?)\s+|,?\s+and\s+(?=(?:the|a|an)\s+(?:[\"'‘“]|[A-Z]))"
    r"|,\s+and\s+|,?\s+(?:before|after)\s+(?=(?:the|a|an)\s+[\"'‘“]?[A-Z])"
    r"|,?\s+and\s+(?=(?:is|was|are|were|has|have|had|also|later|then)\b)",
)
_YES_NO_RE = re.compile(
    r"^\s*(?:do|does|did|is|are|am|was|were|has|have|had|can|could|would|will|should|may|"
    r"might|must|shall|isn't|aren't|don't|doesn't|didn't|can't|won't|shouldn't)(?=\s|$)",
    re.IGNORECASE,
)
_COMPARE_RE = re.compile(
    r"\b(?:both|while|whereas|compared?|comparison|versus|vs\.?|differ|difference|same|"
    r"consistent|inconsistent|inconsistency|change|changed|respectively|either)\b",
    re.IGNORECASE,
)
_TEMPORAL_RE = re.compile(
    r"\b(?:before|after|earlier|later|first|then|between|since|prior|subsequent|following)\b",
    re.IGNORECASE,
)
# A named source: "the TechCrunch article", "'The Verge' report", "an article by Wired".
_NAMED_RE = re.compile(
    r"(?:[\"'‘“]([^\"'’”]{2,60})[\"'’”]\s+(?:article|report|piece|story|coverage|post))"
    r"|(?:\b((?:[A-Z][\w.&-]*\s+){0,4}[A-Z][\w.&-]*)\s+(?:article|report|piece|story|"
    r"coverage|post)s?\b)"
    r"|(?:\b(?:article|report|piece|story|coverage)s?\s+(?:by|from|in)\s+"
    r"((?:[A-Z][\w.&-]*\s+){0,4}[A-Z][\w.&-]*))"
)
# "as reported by both TechCrunch and The Verge", "from Wired, Fortune and Polygon"
_NAME = r"(?:[A-Z][\w.&-]*)(?:\s+(?:[A-Z][\w.&-]*|of|and\s+(?=[A-Z][\w.&-]*\s*(?:,|and|$))))*"
_LISTED_RE = re.compile(
    r"\b(?:reported|covered|published|written|according)\s+(?:by|to|in|from)\s+(?:both\s+)?"
    rf"((?:the\s+)?{_NAME}(?:\s*,\s*(?:the\s+)?{_NAME})*(?:,?\s+and\s+(?:the\s+)?{_NAME}))"
)
_LEADING_STOP = re.compile(r"^(?:The|A|An|Does|Do|Did|Is|Was|Has|Have|Both|And)\s+")

MIN_PART_TERMS = 2
MAX_PARTS = 4  # sub-queries searched for one question


@dataclass(frozen=True)
class QuestionShape:
    """How a question is to be answered."""

    summary: bool  # asks for the gist of a document ("Summarize the memo")
    focus: str  # for a summary: the words that say which document ("the memo"), else ""
    parts: tuple[str, ...]  # for a compound question: its parts, each a sub-query
    sources: tuple[str, ...]  # source names the question mentions ("TechCrunch")
    yes_no: bool  # "Does ...?" / "Is ...?"
    comparison: bool  # sets things side by side ("both", "while", "compared to")
    temporal: bool  # asks about order in time ("before", "after", "between")

    @property
    def multi_part(self) -> bool:
        return len(self.parts) > 1


def named_sources(question: str) -> tuple[str, ...]:
    """Source names the question attributes articles to ("the TechCrunch article",
    "'The Verge' report", "an article by Wired")."""
    found = []
    for m in _NAMED_RE.finditer(question):
        name = next(g for g in m.groups() if g)
        name = _LEADING_STOP.sub("", name.strip()).strip()
        if name and name.lower() not in {"the", "this", "that", "an", "a"}:
            found.append(name)
    for m in _LISTED_RE.finditer(question):
        for name in re.split(r"\s*,\s*|,?\s+and\s+", m.group(1)):
            name = _LEADING_STOP.sub("", name.strip()).strip()
            if name:
                found.append(name)
    return tuple(dict.fromkeys(found))


def split_parts(question: str) -> tuple[str, ...]:
    """The parts of a compound question, each with enough words to search for on its own
    (at least ``MIN_PART_TERMS`` content words); one part when it does not divide."""
    pieces = [p.strip(" ,;?") for p in _SPLIT_RE.split(question)]
    parts = [p for p in pieces if len(set(content_terms(p))) >= MIN_PART_TERMS]
    return tuple(parts) if len(parts) > 1 else (question.strip(),)


def summary_focus(question: str) -> str | None:
    """For a request for a summary, the words that name what to summarise ("" when none:
    "What is this about?"); ``None`` when the question is not such a request."""
    if not _SUMMARY_RE.search(question):
        return None
    rest = [w for w in re.findall(r"[A-Za-z0-9][\w’'-]*", question)]
    kept = [w for w in rest if (t := content_terms(w)) and t[0] not in _REQUEST_WORDS]
    focus = " ".join(kept)
    # "What happened?" asks for the gist; "What happened to the memo?" for one fact.
    if re.match(r"^\s*what\s+happened\b", question, re.I) and focus:
        return None
    # "What is the memo about?" names a document by a noun the documents may use.
    nouns = [w for w in rest if (t := content_terms(w)) and t[0] in _DOCUMENT_NOUNS]
    if not kept and nouns:
        focus = " ".join(nouns)
    return focus


def shape(question: str) -> QuestionShape:
    """Read the question's shape off its wording."""
    focus = summary_focus(question)
    if focus is not None:
        return QuestionShape(True, focus, (question,), (), False, False, False)
    parts = split_parts(question)
    sources = named_sources(question)
    if len(sources) > 1:
        # "Which company, as reported by both TechCrunch and The Verge, ...": one search per
        # source too, led by the source's name (every chunk carries its document's source)
        # and the part that names it, or else the first part.
        named = [
            f"{source}: {next((p for p in parts if source in p), parts[0])}" for source in sources
        ]
        unnamed = [p for p in parts if not any(source in p for source in sources)]
        parts = tuple(dict.fromkeys([*named, *unnamed]))[:MAX_PARTS]
    comparison = bool(_COMPARE_RE.search(question)) or len(parts) > 1 or len(sources) > 1
    return QuestionShape(
        summary=False,
        focus="",
        parts=parts,
        sources=sources,
        yes_no=bool(_YES_NO_RE.match(question)),
        comparison=comparison,
        temporal=bool(_TEMPORAL_RE.search(question)) and (len(parts) > 1 or len(sources) > 1),
    )

"""Parse ``[n]`` citations back out of an answer, drop the invalid ones, and check support."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chatbot.types import Citation, Passage
from ingest.text import CITATION_RE, MARKERS_ONLY_RE
from ingest.text import SPACED_CITATION_RE as CITE_RE  # the name chatbot.eval_cases imports


@dataclass
class CheckedAnswer:
    text: str
    citations: list[Citation]
    unsupported: list[str]


def claim_units(
    text: str, split: Callable[[str], list[tuple[int, int]]]
) -> list[tuple[str, list[int]]]:
    """The answer's sentences with the citation numbers that back each one.

    Sentences come from ``split`` (abbreviation-aware), line by line; markers standing after
    a sentence's full stop ("... people. [1]") belong to that sentence, and a sentence with no
    marker of its own takes those of the next sentence on its line ("A. B [1]." cites both).
    """
    units: list[tuple[str, list[int]]] = []
    for line in text.split("\n"):
        line = line.strip().lstrip(">").strip()
        if not line:
            continue
        pieces: list[str] = []
        for a, b in split(line):
            piece = line[a:b]
            if pieces and MARKERS_ONLY_RE.match(piece):
                pieces[-1] += " " + piece
            else:
                pieces.append(piece)
        line_units = [(p, [int(n) for n in CITATION_RE.findall(p)]) for p in pieces]
        inherited: list[int] = []
        for i in range(len(line_units) - 1, -1, -1):
            piece, cited = line_units[i]
            if cited:
                inherited = cited
            else:
                line_units[i] = (piece, inherited)
        units.extend(line_units)
    return units


def best_quote(
    sentence: str,
    passage: Passage,
    support: Callable[[str, str], float],
    split: Callable[[str], list[tuple[int, int]]],
) -> tuple[int, int, float]:
    """The span of the passage sentence that best supports ``sentence``, with its score
    (the passage's document context, title | source | date, counts as support too)."""
    context = passage.context()
    best = (0, len(passage.text), support(sentence, f"{context}\n{passage.text}"))
    spans = split(passage.text)
    scored = [(a, b, support(sentence, f"{context}\n{passage.text[a:b]}")) for a, b in spans]
    if scored:
        a, b, s = max(scored, key=lambda t: t[2])
        best = (a, b, max(s, best[2]))
    return best


def best_quoted(
    sentence: str,
    passage: Passage,
    spans: list[tuple[int, int]],
    support: Callable[[str, str], float],
) -> tuple[int, int, float]:
    """Of the passage sentences the answerer quoted (``spans``), the one that best supports
    ``sentence``, with its score (the document context counts as support too)."""
    context = passage.context()
    return max(
        ((a, b, support(sentence, f"{context}\n{passage.text[a:b]}")) for a, b in spans),
        key=lambda t: t[2],
    )


def renumber_citations(text: str, known: set[int]) -> tuple[str, dict[int, int]]:
    """``text`` with the markers citing passages not in ``known`` removed and the others
    renumbered 1, 2, ... in order of first use; and the map from new number to old."""
    renumber: dict[int, int] = {}

    def fix(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if n not in known:
            return ""
        renumber.setdefault(n, len(renumber) + 1)
        return f" [{renumber[n]}]"

    clean = CITE_RE.sub(fix, text).strip()
    return clean, {new: old for old, new in renumber.items()}


def check_citations(
    text: str,
    passages: list[Passage],
    *,
    support: Callable[[str, str], float],
    split: Callable[[str], list[tuple[int, int]]],
    threshold: float,
    quotes: dict[int, list[tuple[int, int]]] | None = None,
    framing: list[str] | tuple[str, ...] = (),
) -> CheckedAnswer:
    """Resolve every ``[n]``: remove citations to passages that do not exist, renumber the
    rest in order of first use, score each answer sentence against what it cites.

    ``quotes`` maps a passage number to the exact sentence spans the answerer quoted from it
    (the extractive answerer knows them); otherwise the best-supporting sentence is found.
    ``framing`` lists lines the answerer wrote about its answer ("Here is what each source
    says:"): not claims from the documents, so not checked.
    """
    own_lines = {line.strip() for line in framing}
    by_n = {p.n: p for p in passages}
    clean, old_of = renumber_citations(text, set(by_n))
    citations: dict[int, Citation] = {}
    unsupported: list[str] = []
    body = "\n".join(line for line in clean.split("\n") if line.strip() not in own_lines)
    for sentence, cited in claim_units(body, split):
        plain = CITE_RE.sub("", sentence).strip()
        if not plain:
            continue
        if not cited:
            if len(plain.split()) > 3:
                unsupported.append(plain)
            continue
        scores = []
        for new_n in dict.fromkeys(cited):
            passage = by_n[old_of[new_n]]
            spans = (quotes or {}).get(old_of[new_n])
            if spans:
                a, b, score = best_quoted(plain, passage, spans, support)
            else:
                a, b, score = best_quote(plain, passage, support, split)
            scores.append(score)
            if new_n not in citations or score > citations[new_n].support:
                citations[new_n] = Citation.from_passage(
                    passage, new_n, (a, b), support=round(score, 3)
                )
        if max(scores) < threshold:
            unsupported.append(plain)
    for c in citations.values():
        c.supported = c.support >= threshold
    return CheckedAnswer(clean, [citations[n] for n in sorted(citations)], unsupported)

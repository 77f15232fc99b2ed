"""How an extractive answer is written out: framing lines, document labels, the decline text
with the closest passages, and the word chunks a streamed answer is sent in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from chatbot.types import Citation, Passage
from ingest.context import document_context

__all__ = [
    "DECLINED_NOTE",
    "DECLINE_PREFIX",
    "PARTS_FRAMING",
    "YES_NO_FRAMING",
    "closest_citation",
    "decline_note",
    "decline_reason",
    "decline_text",
    "document_name",
    "passage_label",
    "source_label",
    "word_chunks",
]

DECLINE_PREFIX = "The documents don't say"
# How the trace's notes record why an answer was declined ("declined: best similarity 0.18
# < 0.20"): the reason holds thresholds and scores, for the trace panel, not the answer.
DECLINED_NOTE = "declined: "
YES_NO_FRAMING = "Quoting alone cannot settle this question; here is what each source says:"
PARTS_FRAMING = "Here is what each source says:"


def document_name(p: Passage) -> str:
    """“Title” (source, date) — or the file name where the title is only the opening words."""
    title = p.title if p.title and not p.title_is_excerpt else p.source
    label = source_label(p, fallback="")
    return f"“{title}” ({label})" if label else f"“{title}”"


def source_label(p: Passage, fallback: str | None = None) -> str:
    """Who published the passage's document and when ("TechCrunch, October 5, 2023"), else
    its title."""
    label = document_context(None, p.publisher, p.date)
    if label:
        return label.replace(" | ", ", ")
    return p.title if fallback is None else fallback


def decline_text(reason: str, passages: list[Passage]) -> str:
    """What a declined answer says: "The documents don't say." and the closest passages.

    ``reason`` is not part of it (its thresholds and scores mean nothing to the reader): the
    trace keeps it, as the note ``decline_note(reason)``."""
    lines = [f"{DECLINE_PREFIX}."]
    if passages:
        lines.append("The closest passages are:")
        for p in passages[:3]:
            lines.append(f"- {passage_label(p)} ({p.location()})")
    return "\n".join(lines)


def decline_note(reason: str) -> str:
    """The trace note that says why an answer was declined."""
    return f"{DECLINED_NOTE}{reason}"


def decline_reason(notes: Iterable[str]) -> str | None:
    """Why the answer was declined, from its trace's ``notes`` (None when no note says)."""
    for note in notes:
        if note.startswith(DECLINED_NOTE):
            return note[len(DECLINED_NOTE) :].strip()
    return None


def passage_label(p: Passage, words: int = 10) -> str:
    """The document's title, or, where the title is only the text's opening words (every
    passage of the document would show the same ones), the passage's own opening words."""
    if p.title and not p.title_is_excerpt:
        return p.title
    head = p.text.split()
    return " ".join(head[:words]) + ("…" if len(head) > words else "") if head else p.title


def closest_citation(p: Passage) -> Citation:
    return Citation.from_passage(p, p.n, support=0.0, supported=False)


def word_chunks(text: str, size: int = 4) -> Iterator[str]:
    words = re.split(r"(\s+)", text)
    for i in range(0, len(words), size * 2):
        yield "".join(words[i : i + size * 2])

"""Turn a follow-up question into a standalone query using the conversation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import QUESTION_STOPWORDS

# Words that point back into the conversation.
_PRONOUNS = {
    "he": "",
    "she": "",
    "they": "",
    "him": "",
    "them": "",
    "his": "'s",
    "her": "'s",
    "their": "'s",
    "hers": "'s",
    "theirs": "'s",
}
_BACK_REFERENCES = {"it", "its", "this", "that", "these", "those", "there", "then", "so", "also"}
_FOLLOW_UP_OPENERS = ("and ", "what about", "how about", "why", "what else", "anything else")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'’.-]*")
_STOP = QUESTION_STOPWORDS


@dataclass(frozen=True)
class Condensed:
    query: str  # what retrieval searches for
    context: str  # words carried over from earlier turns (weighted lower when answering)
    rewritten: bool


def is_follow_up(question: str) -> bool:
    words = [w.lower() for w in _WORD_RE.findall(question)]
    if any(w in _PRONOUNS or w in _BACK_REFERENCES for w in words):
        return True
    content = [w for w in words if w not in _STOP]
    if len(content) <= 1:
        return True
    # "And the memo?", "Why the change?" lean on the conversation; "Why are death penalty
    # cases hard?" names its own topic, and carried words would only pull it elsewhere.
    opens = question.lower().lstrip().startswith(_FOLLOW_UP_OPENERS)
    return opens and len(content) <= OWN_TOPIC_WORDS - 1


# A question opening like a follow-up ("why", "and ...") with this many content words of its
# own names its topic and is answered as asked.
OWN_TOPIC_WORDS = 3


def short_answer_of(reply: str) -> str | None:
    """The short answer an extractive reply opens with ("Jeff Sessions [1]. ..."), if any."""
    head = reply.strip().split("\n", 1)[0]
    m = re.match(r"^\**([^\[\n*]{1,60}?)\**\s*\[\d+\]", head)
    return m.group(1).strip(" .") if m else None


def condense(question: str, history: list[dict] | None) -> Condensed:
    """Offline condensation: resolve pronouns to the previous short answer when it is a name,
    and carry the previous question's content words along as context."""
    turns = [t for t in (history or []) if t.get("content")]
    if not turns or not is_follow_up(question):
        return Condensed(question, "", False)
    last_user = next((t["content"] for t in reversed(turns) if t.get("role") == "user"), "")
    last_bot = next((t["content"] for t in reversed(turns) if t.get("role") == "assistant"), "")
    name = short_answer_of(last_bot)
    query = question
    if name and name[:1].isupper() and len(name.split()) <= 5:

        def swap(m: re.Match[str]) -> str:
            return name + _PRONOUNS[m.group(0).lower()]

        pattern = r"\b(" + "|".join(_PRONOUNS) + r")\b"
        query = re.sub(pattern, swap, question, flags=re.I)
    carried = [w for w in _WORD_RE.findall(last_user) if w.lower() not in _STOP]
    if name:
        carried.append(name)
    context = " ".join(dict.fromkeys(carried))
    if query == question and context:
        query = f"{question} ({context})"
    return Condensed(query, context, True)

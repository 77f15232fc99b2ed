"""Turn a judged chat answer into one line of the eval set (JSONL): from an answer marked
right or wrong (``make_case``) or a turn judged with thumbs up/down (``case_for_turn``)."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chatbot.cite import CITE_RE
from chatbot.conversations import UP, Turn
from chatbot.types import Answer

logger = logging.getLogger(__name__)

_APPEND_LOCK = threading.Lock()


class EvalCaseError(ValueError):
    """A case that cannot be saved; the message says what is missing."""


def strip_citations(text: str) -> str:
    """An answer's text without ``[n]`` markers or quote marks at line starts."""
    lines = [line.lstrip("> ").rstrip() for line in CITE_RE.sub("", text).splitlines()]
    return " ".join(line for line in lines if line).strip()


def gold_answer(answer: Answer) -> str:
    """What an answer marked right records as its gold answer."""
    return (answer.short_answer or strip_citations(answer.text)).strip()


def _evidence(answer: Answer, gold: str) -> tuple[str, list[Any]]:
    """A verbatim quote holding ``gold``, with what it came from: a cited sentence first,
    then a cited passage, then any retrieved passage; ``("", [])`` when none holds it."""
    needle = gold.lower()
    for c in answer.citations:
        if needle and needle in c.quote.lower():
            return c.quote, [c]
    for c in answer.citations:
        if needle and needle in c.passage.lower():
            return c.passage, [c]
    for p in answer.trace.passages:
        if needle and needle in p.text.lower():
            return p.text, [p]
    return "", []


def make_case(
    question: str,
    history: list[dict[str, str]],
    answer: Answer,
    *,
    right: bool,
    right_answer: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """One eval-set line. ``right``: the answer is kept as gold (a declined answer marked
    right is unanswerable). Wrong: ``right_answer`` is the gold answer, or, empty, the
    question is unanswerable from the documents."""
    if not question.strip():
        raise EvalCaseError("there is no question to save: ask one first")
    if right:
        answerable = not answer.declined
        gold = gold_answer(answer) if answerable else ""
    else:
        gold = " ".join(right_answer.split())
        answerable = bool(gold)
    case: dict[str, Any] = {"id": "", "question": question}
    case["answers"] = [gold] if answerable else []
    case["answerable"] = answerable
    if answerable:
        quote, used = _evidence(answer, gold)
        if not quote and right and answer.citations:
            quote, used = answer.citations[0].quote, [answer.citations[0]]
        if quote:
            case["evidence"] = quote
        case["evidence_doc_ids"] = list(dict.fromkeys(Path(u.source).stem for u in used))
    else:
        case["evidence_doc_ids"] = []
    if history:
        case["history"] = [{"role": t["role"], "content": t["content"]} for t in history]
    case["type"] = "chat" if right else "chat-corrected"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    case["id"] = f"chat-{stamp}-{secrets.token_hex(4)}"  # unique even when saved twice
    return case


def append_case(path: Path, case: dict[str, Any]) -> None:
    """Append ``case`` as one JSON line to ``path`` (created with its folder if missing)."""
    line = json.dumps(case, ensure_ascii=False)
    path = Path(path)
    with _APPEND_LOCK:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
    logger.info("saved eval case %s to %s", case["id"], path)


def case_for_turn(turn: Turn, before: list[Turn]) -> dict[str, Any] | None:
    """The eval-set line for a turn judged with thumbs (``before``: the answered turns of
    its conversation before it): thumbs-up keeps the answer as gold; thumbs-down gives the
    correction as gold, or unanswerable when the documents don't say; None when a
    thumbs-down says neither (there is no gold to score against)."""
    if turn.answer is None or turn.rating is None:
        return None
    right = turn.rating == UP
    if not right and not turn.correction and not turn.not_in_documents:
        return None
    history = []
    for t in before:
        history += [
            {"role": "user", "content": t.question},
            {"role": "assistant", "content": t.answer_text},
        ]
    case = make_case(
        turn.question,
        history,
        Answer.from_dict(turn.answer),
        right=right,
        right_answer="" if right or turn.not_in_documents else turn.correction,
        now=datetime.fromtimestamp(turn.asked_at, UTC),
    )
    case["id"] = f"feedback-{turn.conversation_id[:8]}-{turn.id}"  # the same in every export
    return case

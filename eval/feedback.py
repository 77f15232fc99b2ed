"""``python -m eval feedback``: the chat turns judged in the web app, as an eval set.

A thumbs-up answer becomes gold; a thumbs-down with the right answer becomes gold with that
answer; a thumbs-down saying the documents don't say becomes unanswerable. A thumbs-down with
neither is left out (there is no gold to score against)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from chatbot.conversations import ConversationStore
from chatbot.eval_cases import case_for_turn

logger = logging.getLogger(__name__)


def export_feedback(db: Path, out: Path, collection: str | None = None) -> tuple[int, int]:
    """Write every judged turn of the conversations in ``db`` (only those of ``collection``
    when given) that has a gold answer to ``out`` (JSONL, replaced); returns (lines
    written, judged turns left out)."""
    db = Path(db)
    if not db.is_file():
        raise FileNotFoundError(f"no conversations database at {db}")
    store = ConversationStore(db)
    try:
        judged = store.judged()
        if collection is not None:
            of = {c.id: c.collection for c in store.list(limit=-1)}
            judged = [(t, b) for t, b in judged if of.get(t.conversation_id) == collection]
    finally:
        store.close()
    cases = [c for c in (case_for_turn(t, b) for t, b in judged) if c is not None]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in cases), "utf-8")
    logger.info("exported %d judged turns to %s", len(cases), out)
    return len(cases), len(judged) - len(cases)

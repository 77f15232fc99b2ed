"""The web app's saved conversations and feedback: each session's conversation written to the
``ConversationStore`` as it goes, the list to reopen, rename and delete, and thumbs up/down
with a comment or the right answer (also appended to the eval-cases file, as before)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from chatbot.conversations import DOWN, UP, ConversationError, ConversationStore
from chatbot.eval_cases import EvalCaseError, append_case, case_for_turn
from chatbot.types import Answer
from chatbot.web.pageview import PageViews
from chatbot.web.ui import answer_markdown, sources_html, trace_html

logger = logging.getLogger(__name__)

# A session's conversation: {"id": conversation id or None (not saved yet), "turns": the
# turn id behind each assistant message of the chat, None for an error message}.
Session = dict[str, Any]
NO_PICK = "Click 👍 or 👎 under an answer to judge it."
Owner = Callable[[gr.Request | None], str | None]  # a request's user; None: no accounts


def _nobody(request: gr.Request | None) -> str | None:
    return None


def new_session() -> Session:
    return {"id": None, "turns": []}


def assistant_count(history: list[Any]) -> int:
    """How many assistant messages a Gradio chat history holds."""
    return sum(1 for m in history or [] if isinstance(m, dict) and m.get("role") == "assistant")


class SavedChats:
    """Handlers over one ``ConversationStore`` for every session of the app."""

    def __init__(
        self,
        store: ConversationStore,
        collection: str,
        page_views: PageViews,
        cases: Path,
        owner: Owner = _nobody,
    ) -> None:
        self.store = store
        self.collection = collection
        self.page_views = page_views
        self.cases = cases
        self.owner = owner

    def mine(self, cid: str, request: gr.Request | None) -> str:
        """``cid`` when the request's user owns it (anyone does without accounts); another
        user's conversation is "not found", as a missing one is."""
        user = self.owner(request)
        if user is not None and self.store.owner(cid) != user:
            raise ConversationError(f"no conversation {cid!r}")
        return cid

    # ---- written while chatting
    def ask(
        self,
        session: Session | None,
        question: str,
        position: int,
        collection: str = "",
        request: gr.Request | None = None,
    ) -> tuple[Session, int]:
        """Save a question about to be answered, as the ``position``-th answer of the
        session's conversation (a new conversation of the user's, of ``collection`` or else
        the default one, when it has none)."""
        session = dict(session or new_session())
        if not session["id"]:
            session["id"] = self.store.create(
                question, collection or self.collection, self.owner(request)
            )
        self.mine(session["id"], request)
        turn = self.store.ask(session["id"], question)
        session["turns"] = [*session["turns"][:position], turn]
        return session, turn

    def answered(self, turn: int, answer: Answer) -> None:
        self.store.answer(turn, answer.to_dict())

    @staticmethod
    def failed(session: Session | None, position: int) -> Session:
        """The session after an error message took the ``position``-th answer's place."""
        session = dict(session or new_session())
        session["turns"] = [*session["turns"][:position], None]
        return session

    # ---- the list
    def choices(self, request: gr.Request | None = None) -> list[tuple[str, str]]:
        """(label, id) of each of the user's conversations: its title and its collection."""
        return [
            (f"{c.title} · {c.collection}", c.id) for c in self.store.list(user=self.owner(request))
        ]

    def listing(self, session: Session | None, request: gr.Request | None = None) -> Any:
        """The user's conversations, newest first, the session's one selected."""
        return gr.update(choices=self.choices(request), value=(session or {}).get("id"))

    def open(self, cid: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Reopen a saved conversation: (chat, chat state, sources, trace, answer JSON,
        session, title, status)."""
        try:
            conversation = self.store.get(self.mine(cid or "", request))
        except ConversationError as exc:
            return (*([gr.skip()] * 7), str(exc))
        turns = self.store.turns(conversation.id, answered=True)
        messages: list[dict[str, str]] = []
        last: Answer | None = None
        for t in turns:
            last = Answer.from_dict(t.answer or {})
            messages += [
                {"role": "user", "content": t.question},
                {"role": "assistant", "content": answer_markdown(last)},
            ]
        session = {"id": conversation.id, "turns": [t.id for t in turns]}
        status = f"Reopened “{conversation.title}” ({len(turns)} answers)."
        return (
            messages,
            messages,
            sources_html(last, self._views(conversation.collection) if last else None),
            trace_html(last),
            last.to_dict() if last else None,
            session,
            conversation.title,
            status,
        )

    def _views(self, collection: str) -> PageViews:
        if collection == self.page_views.collection:
            return self.page_views
        return PageViews(self.page_views.index_dir, collection)

    def rename(
        self, session: Session | None, title: str, request: gr.Request | None = None
    ) -> tuple[Any, str]:
        cid = (session or {}).get("id")
        if not cid:
            return gr.skip(), "Ask a question or open a conversation first."
        try:
            self.store.rename(self.mine(cid, request), title or "")
        except ConversationError as exc:
            return gr.skip(), f"Not renamed: {exc}"
        return self.listing(session, request), "Renamed."

    def delete(self, session: Session | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Delete the session's conversation: (chat, chat state, session, list, status)."""
        cid = (session or {}).get("id")
        if not cid:
            return (*([gr.skip()] * 4), "Open a conversation first.")
        try:
            self.store.delete(self.mine(cid, request))
        except ConversationError as exc:
            return (*([gr.skip()] * 4), f"Not deleted: {exc}")
        fresh = new_session()
        return [], [], fresh, self.listing(fresh, request), "Deleted."

    # ---- feedback
    def pick(
        self,
        history: list[Any],
        session: Session | None,
        like: gr.LikeData,
        request: gr.Request | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """A thumbs click: store the rating with its turn at once; the note and the picked
        turn let a comment or the right answer follow."""
        index = like.index[0] if isinstance(like.index, tuple | list) else like.index
        position = assistant_count(list(history or [])[: int(index)])
        turns = (session or new_session())["turns"]
        turn = turns[position] if position < len(turns) else None
        try:
            if turn is not None:
                self.mine(self.store.turn(turn).conversation_id, request)
        except ConversationError:
            turn = None
        if turn is None:
            return "That message is not a saved answer.", None
        rating = UP if like.liked is True else DOWN if like.liked is False else None
        if rating is None:
            self.store.judge(turn, None)
            return f"Feedback on answer {position + 1} cleared.", None
        self.store.judge(turn, rating)
        if rating == UP:
            note = f"Answer {position + 1}: 👍 saved. Add a comment if you like, then save."
        else:
            note = (
                f"Answer {position + 1}: 👎 saved. Type the right answer (or tick "
                "'The documents don't say'), add a comment if you like, then save."
            )
        return note, {"turn": turn, "rating": rating, "position": position + 1}

    def save(
        self,
        picked: dict[str, Any] | None,
        comment: str,
        correction: str,
        nowhere: bool,
        request: gr.Request | None = None,
    ) -> str:
        """Store the comment and correction with the picked turn, and append the eval case
        it makes (when it makes one) to the eval-cases file."""
        if not picked:
            return NO_PICK
        correction = correction or ""
        if picked["rating"] == UP and (correction.strip() or nowhere):
            return "A right answer or 'the documents don't say' goes with a 👎, not a 👍."
        try:
            self.mine(self.store.turn(picked["turn"]).conversation_id, request)
            self.store.judge(
                picked["turn"],
                picked["rating"],
                comment=comment or "",
                correction=correction,
                not_in_documents=bool(nowhere),
            )
            turn = self.store.turn(picked["turn"])
            before = [
                t for t in self.store.turns(turn.conversation_id, answered=True) if t.id < turn.id
            ]
            case = case_for_turn(turn, before)
            if case is not None:
                append_case(self.cases, case)
        except (ConversationError, EvalCaseError, OSError) as exc:
            return f"Not saved: {exc}"
        saved = f"Saved feedback on answer {picked['position']}"
        if case is None:
            return f"{saved}; type the right answer to make it an eval case."
        gold = case["answers"][0] if case["answers"] else "unanswerable"
        return f"{saved}; eval case {case['id']} (gold: {gold}) appended to {self.cases}"

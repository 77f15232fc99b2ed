"""The page's collection box: choose the collection the chat and the Documents tab work on,
create a new (empty) one, delete one after a confirmation that names it, and reopen a saved
conversation in its own collection. A conversation belongs to one collection: choosing
another starts a new conversation.

Every handler returns the selector's update, then what ``CollectionHandlers.switched``
returns: the chat emptied (or the conversation reopened), the Documents tab's table,
removable documents and header, and its sync line, all of the collection now selected."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from chatbot.web.saved import new_session
from ingest import IngestError, SettingsError

if TYPE_CHECKING:
    from chatbot.web.app import ChatApp

NO_DOCUMENTS = "**No documents yet** in this collection: add some in the Documents tab."


class CollectionHandlers:
    """Handlers of the collection box, over the app's ``Library``."""

    def __init__(self, app: ChatApp) -> None:
        self.app = app
        self.library = app.library

    def selector(self, value: str | None = None) -> Any:
        """The selector's choices (every collection), ``value`` selected when given."""
        names = self.library.names()
        if value is None:
            return gr.update(choices=names)
        return gr.update(choices=names, value=value)

    def view(self, collection: str | None) -> tuple[Any, ...]:
        """The Documents tab of ``collection``: table, removable documents, header, sync line."""
        return (*self.app.documents_view(collection), self.app.sync_line(collection))

    def switched(self, collection: str | None) -> tuple[Any, ...]:
        """A new conversation in ``collection`` (chat, chat state, sources, trace, answer
        JSON, session, feedback status), then its Documents tab."""
        return (*self.app.new_conversation(), *self.view(collection))

    def switch(self, collection: str | None) -> tuple[Any, ...]:
        """The user chose another collection: the note, then ``switched``."""
        note = f"Asking collection **{collection}**; a new conversation started."
        return note, *self.switched(collection)

    def create(self, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Create the collection ``name`` and select it: (selector, name box, note,
        *switched). Editors only, when there are accounts."""
        if refused := self.app.access.refusal(request):
            return gr.skip(), gr.skip(), refused, *[gr.skip()] * 11
        name = (name or "").strip()
        try:
            self.library.create(name)
        except (SettingsError, IngestError) as exc:
            return gr.skip(), gr.skip(), f"Not created: {exc}", *[gr.skip()] * 11
        # (not "no documents yet": the note stays up after documents are added)
        note = f"Created collection **{name}**: add its documents in the Documents tab."
        return self.selector(name), "", note, *self.switched(name)

    def ask_delete(
        self, collection: str | None, request: gr.Request | None = None
    ) -> tuple[Any, Any, str]:
        """The confirmation step: (confirm box, its text, note); refused ones say why."""
        if refused := self.app.access.refusal(request):
            return gr.update(visible=False), "", refused
        name = collection or self.library.default
        refused = self.library.deletable(name)
        if refused:
            return gr.update(visible=False), "", f"Not deleted: {refused}."
        folder = self.library.settings_for(name).docs_dir
        text = (
            f"Delete collection **{name}**? This removes its index data (passages, reingest "
            f"state, search index) and the documents folder `{folder}` with every file "
            "uploaded to it. Conversations are kept. This cannot be undone."
        )
        return gr.update(visible=True), text, ""

    def delete(self, collection: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Delete the collection after the confirmation: (selector, confirm box, note,
        *switched) with the default collection selected. Editors only, when there are
        accounts."""
        if refused := self.app.access.refusal(request):
            return gr.skip(), gr.update(visible=False), refused, *[gr.skip()] * 11
        name = collection or self.library.default
        try:
            self.library.delete(name)
        except (IngestError, OSError) as exc:
            return gr.skip(), gr.update(visible=False), str(exc), *[gr.skip()] * 11
        default = self.library.default
        note = f"Deleted collection **{name}** and its documents folder; asking **{default}**."
        return self.selector(default), gr.update(visible=False), note, *self.switched(default)

    @staticmethod
    def cancel() -> tuple[Any, str]:
        return gr.update(visible=False), "Not deleted."

    def open(self, cid: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Reopen one of the user's saved conversations in its collection: (chat, chat
        state, sources, trace, answer JSON, session, title, status, selector, *Documents
        tab). One of a deleted collection is shown read only: a question starts a new
        conversation."""
        saved = self.app.saved
        opened = saved.open(cid, request)
        try:
            collection = saved.store.get(saved.mine(cid or "", request)).collection
        except Exception:  # noqa: BLE001 - saved.open already said why in its status
            return (*opened, gr.skip(), *[gr.skip()] * 4)
        if collection not in self.library.names():
            chat, state, sources, trace, answer, _, title, status = opened
            status = (
                f"{status} Its collection {collection!r} was deleted: a question starts a "
                "new conversation in the selected collection."
            )
            fresh = new_session()
            return chat, state, sources, trace, answer, fresh, title, status, *[gr.skip()] * 5
        return (*opened, self.selector(collection), *self.view(collection))

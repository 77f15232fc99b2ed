"""The page's layout: the Chat tab (saved conversations, chat with thumbs up/down and
feedback, example questions, sources panel, retrieval trace) and the Documents tab, wired to
the handlers of a ``ChatApp``. Components only; what they do is the handlers' job
(``chatbot.web.app``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

from chatbot.web.examples import MAX_EXAMPLES
from chatbot.web.saved import NO_PICK
from chatbot.web.ui import DOCUMENTS_HEADERS, md_escape, sources_html, trace_html
from ingest import SUPPORTED_EXTENSIONS

if TYPE_CHECKING:
    from chatbot.web.app import ChatApp

CHAT_CONCURRENCY = 4  # answers in flight at once; the model and index are shared
MAX_K = 10
SEEDS_NOTE = (
    "Documents from `seeds/` (and folders ingested with `python -m ingest`) cannot be "
    "removed here; only uploaded ones can."
)
READER_NOTE = "Your role is reader: you can ask; only editors add, remove or reingest documents."
SYNC_POLL_S = 2.0  # how often an open Documents tab looks for a finished (watched) sync
_REINGEST = {"api_visibility": "private", "concurrency_limit": 1, "concurrency_id": "reingest"}


@dataclass
class ChatParts:
    """The Chat tab's components that the collection box updates."""

    box: CollectionBox
    shown: list[Any]  # chat, chat state, sources, trace, answer JSON, session
    saved: gr.Textbox
    listing: gr.Radio
    title: gr.Textbox
    note: gr.Markdown
    examples: gr.Dataset  # example questions about the selected collection's documents
    shown_examples: gr.State  # the questions the examples show


def build_page(app: ChatApp) -> gr.Blocks:
    """The page: Chat (collection, conversations, chat, feedback, sources, trace) and
    Documents tabs."""
    with gr.Blocks(title="docqa — ask your documents", analytics_enabled=False) as demo:
        header = gr.Markdown(app.header(), elem_id="docqa-header")
        who = gr.Markdown(elem_id="docqa-user", visible=app.access.enabled)
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat = chat_tab(app, demo)
            with gr.Tab("Documents", id="documents"):
                view, editing, reader_note, changed = documents_tab(
                    app, demo, header, chat.box.selector
                )
        collection_events(app, demo, chat, view)
        example_events(app, demo, chat, changed)
        if app.access.enabled:  # who is logged in; the editing controls for editors only

            def page_view(request: gr.Request) -> tuple[Any, ...]:
                who_line, controls, note = app.access.page_view(request)
                return who_line, controls, note, controls

            demo.load(
                page_view,
                None,
                [who, editing, reader_note, chat.box.editing],
                api_visibility="private",
                queue=False,
            )
    return demo


# ---- the Chat tab


def chat_tab(app: ChatApp, demo: gr.Blocks) -> ChatParts:
    """The collection and the saved conversations on the left, the chat with its settings
    and feedback box in the middle, the sources panel and the retrieval trace on the
    right."""
    sources = gr.HTML(sources_html(None), elem_id="docqa-sources", render=False)
    trace = gr.HTML(trace_html(None), elem_id="docqa-trace", render=False)
    answer_json = gr.JSON(visible=False, render=False)
    session = gr.State(None)
    picked = gr.State(None)
    private = {"api_visibility": "private", "queue": False}
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=220):
            box = _collection_box(app)
            listing, title, rename, delete, note = _conversations_box()
            inputs = [*_answer_settings(app), session, box.selector]
        with gr.Column(scale=3, min_width=420):
            chat = _chat_interface(app, inputs, [sources, trace, answer_json, session])
            examples, shown_examples = _examples(app, chat.textbox)
            new = gr.Button("New conversation", elem_id="docqa-new", size="sm")
            judged, comment, correction, nowhere, save, saved = _feedback_box(app)
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### Sources")
            sources.render()
            with gr.Accordion("Retrieval trace", open=False, elem_id="docqa-trace-box"):
                trace.render()
            answer_json.render()
    shown = [chat.chatbot, chat.chatbot_state, sources, trace, answer_json, session]
    new.click(app.new_conversation, None, [*shown, saved], **private)
    chat.chatbot.clear(
        lambda: app.new_conversation()[2:6], None, [sources, trace, answer_json, session], **private
    )
    session.change(app.saved.listing, [session], [listing], **private)
    rename.click(app.saved.rename, [session, title], [listing, note], **private)
    cleared = [chat.chatbot, chat.chatbot_state, session, listing, note]
    delete.click(app.saved.delete, [session], cleared, **private)
    chat.chatbot.like(app.saved.pick, [chat.chatbot, session], [judged, picked], **private)
    save.click(app.saved.save, [picked, comment, correction, nowhere], [saved], **private)
    demo.load(app.saved.listing, [session], [listing], **private)
    return ChatParts(box, shown, saved, listing, title, note, examples, shown_examples)


def _examples(app: ChatApp, textbox: Any) -> tuple[gr.Dataset, gr.State]:
    """Example questions about the selected collection's documents (``example_events``
    keeps them so); a click puts one in the question box, to send or edit first."""
    update, questions = app.example_view()
    examples = gr.Dataset(
        components=[textbox],
        samples=update["samples"],
        visible=update["visible"],
        label="Example questions",
        samples_per_page=MAX_EXAMPLES,
        elem_id="docqa-examples",
    )
    examples.click(_example_text, [examples], [textbox], api_visibility="private", queue=False)
    return examples, gr.State(questions)


def _example_text(sample: list[Any] | None) -> Any:
    return str(sample[0]) if sample else gr.skip()


@dataclass
class CollectionBox:
    """The collection selector with 'New collection' and 'Delete collection' (which asks to
    confirm) beside it; ``collection_events`` wires them."""

    selector: gr.Dropdown
    editing: gr.Accordion  # creating and deleting: editors only, with accounts
    name: gr.Textbox
    create: gr.Button
    delete: gr.Button
    confirm: gr.Group
    question: gr.Markdown
    yes: gr.Button
    no: gr.Button
    note: gr.Markdown


def _collection_box(app: ChatApp) -> CollectionBox:
    gr.Markdown("### Collection")
    selector = gr.Dropdown(
        app.library.names(),
        value=app.library.default,
        show_label=False,
        container=False,
        elem_id="docqa-collection",
    )
    with gr.Accordion(
        "New or delete collection",
        open=False,
        visible=not app.access.enabled,  # with accounts the page load shows it to editors
        elem_id="docqa-collections-box",
    ) as editing:
        with gr.Row():
            name = gr.Textbox(
                placeholder="New collection name",
                show_label=False,
                container=False,
                scale=3,
                elem_id="docqa-new-collection",
            )
            create = gr.Button("Create", size="sm", scale=1, elem_id="docqa-create-collection")
        delete = gr.Button(
            "Delete collection…", size="sm", variant="stop", elem_id="docqa-delete-collection"
        )
        with gr.Group(visible=False, elem_id="docqa-confirm-delete") as confirm:
            question = gr.Markdown(elem_id="docqa-confirm-text")
            with gr.Row():
                yes = gr.Button(
                    "Yes, delete it", size="sm", variant="stop", elem_id="docqa-confirm-yes"
                )
                no = gr.Button("Cancel", size="sm", elem_id="docqa-confirm-no")
    note = gr.Markdown(elem_id="docqa-collection-note")
    return CollectionBox(selector, editing, name, create, delete, confirm, question, yes, no, note)


def collection_events(app: ChatApp, demo: gr.Blocks, chat: ChatParts, view: list[Any]) -> None:
    """Choosing, creating and deleting collections, and reopening a conversation in its
    collection: each updates the chat and the Documents tab (``view``: table, removable
    documents, header, sync line) to the collection then selected."""
    handlers, box = app.collections, chat.box
    private = {"api_visibility": "private", "queue": False}
    note, selector = box.note, box.selector
    switched = [*chat.shown, chat.saved, *view]
    selector.input(handlers.switch, [selector], [note, *switched], **private)
    created = [selector, box.name, note, *switched]
    box.create.click(handlers.create, [box.name], created, **private)
    box.name.submit(handlers.create, [box.name], created, **private)
    asked = [box.confirm, box.question, note]
    box.delete.click(handlers.ask_delete, [selector], asked, **private)
    box.no.click(handlers.cancel, None, [box.confirm, note], **private)
    deleted = [selector, box.confirm, note, *switched]
    box.yes.click(handlers.delete, [selector], deleted, **private)
    reopened = [*chat.shown, chat.title, chat.note, selector, *view]
    chat.listing.input(handlers.open, [chat.listing], reopened, **private)
    demo.load(handlers.selector, None, [selector], **private)  # made since the page was built


def example_events(app: ChatApp, demo: gr.Blocks, chat: ChatParts, changed: list[Any]) -> None:
    """Keep the example questions about the selected collection's documents: when the page
    loads, when another collection is selected, and after every event that can change its
    documents (``changed``: uploads, removals, reingests and the sync poll, which sees a
    watched folder's changes). Unchanged questions are not sent again."""
    quiet = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
    io = ([chat.box.selector, chat.shown_examples], [chat.examples, chat.shown_examples])
    demo.load(app.example_view, *io, **quiet)
    chat.box.selector.change(app.example_view, *io, **quiet)
    for event in changed:
        event.then(app.example_view, *io, **quiet)


def _answer_settings(app: ChatApp) -> list[Any]:
    """The chat's extra inputs (not rendered yet): passages to answer from, and the
    answering backend (shown only when there is a choice)."""
    k = app.settings.chat.k
    backends = app.service.backends
    return [
        gr.Slider(1, max(MAX_K, k), value=k, step=1, label="Passages to answer from", render=False),
        gr.Dropdown(
            backends,
            value=backends[0],
            label="Answering backend",
            visible=len(backends) > 1,
            render=False,
        ),
    ]


def _chat_interface(app: ChatApp, inputs: list[Any], outputs: list[Any]) -> gr.ChatInterface:
    """The chat, streaming ``app.chat``; the one public API endpoint, ``/chat``."""
    return gr.ChatInterface(
        app.chat,
        chatbot=gr.Chatbot(
            label="Chat",
            elem_id="docqa-chat",
            height=520,
            buttons=["copy", "copy_all"],
            feedback_options=("Like", "Dislike"),
            allow_tags=False,
            placeholder="Ask a question about your documents.",
        ),
        textbox=gr.Textbox(
            placeholder="Ask about the documents…",
            elem_id="docqa-question",
            show_label=False,
            submit_btn=True,
            stop_btn=True,
            autofocus=True,
        ),
        additional_inputs=inputs,
        additional_inputs_accordion=gr.Accordion("Settings", open=False, render=False),
        additional_outputs=outputs,
        api_name="chat",
        api_description="Ask a question; returns the answer with [n] markers, "
        "the sources panel, the retrieval trace and the answer as JSON.",
        concurrency_limit=CHAT_CONCURRENCY,
        fill_height=False,
        analytics_enabled=False,
    )


def _conversations_box() -> tuple[gr.Radio, gr.Textbox, gr.Button, gr.Button, gr.Markdown]:
    """The saved conversations, newest first, to reopen with a click, rename or delete:
    (list, title, rename button, delete button, status line)."""
    gr.Markdown("### Conversations")
    listing = gr.Radio([], show_label=False, container=False, elem_id="docqa-conversations")
    title = gr.Textbox(
        placeholder="Title of the open conversation",
        show_label=False,
        container=False,
        elem_id="docqa-title",
    )
    with gr.Row():
        rename = gr.Button("Rename", size="sm", elem_id="docqa-rename", min_width=60)
        delete = gr.Button(
            "Delete", size="sm", variant="stop", elem_id="docqa-delete", min_width=60
        )
    note = gr.Markdown(elem_id="docqa-conversation-note")
    return listing, title, rename, delete, note


def _feedback_box(
    app: ChatApp,
) -> tuple[gr.Markdown, gr.Textbox, gr.Textbox, gr.Checkbox, gr.Button, gr.Textbox]:
    """Feedback on the answer last judged with 👍/👎: (what was judged, comment, right
    answer, 'the documents don't say', save button, status line)."""
    with gr.Accordion("Feedback on an answer", open=True, elem_id="docqa-eval"):
        judged = gr.Markdown(NO_PICK, elem_id="docqa-judged")
        gr.Markdown(
            "Judged answers become eval cases: `python -m eval feedback --out FILE` "
            "exports them, and saving appends one line to "
            f"`{app.settings.eval_cases_file.name}` now."
        )
        with gr.Row():
            correction = gr.Textbox(
                placeholder="The right answer (after a 👎)",
                show_label=False,
                container=False,
                scale=3,
                elem_id="docqa-right-answer",
            )
            nowhere = gr.Checkbox(
                label="The documents don't say", scale=1, elem_id="docqa-not-in-docs"
            )
        with gr.Row():
            comment = gr.Textbox(
                placeholder="A comment (optional)",
                show_label=False,
                container=False,
                scale=3,
                elem_id="docqa-comment",
            )
            save = gr.Button(
                "Save feedback", elem_id="docqa-save", size="md", scale=1, min_width=150
            )
        saved = gr.Textbox(
            show_label=False,
            container=False,
            interactive=False,
            placeholder="Not saved yet.",
            elem_id="docqa-saved",
        )
    return judged, comment, correction, nowhere, save, saved


# ---- the Documents tab


def documents_tab(
    app: ChatApp, demo: gr.Blocks, header: gr.Markdown, collection: gr.Dropdown
) -> tuple[list[Any], gr.Column, gr.Markdown, list[Any]]:
    """The selected collection's documents, uploads, removal and a manual reingest; each
    change reingests in the background and refreshes the table, the removable list and the
    header. Returns ((table, removable documents, header, sync line), the editing controls,
    the note readers see instead, the events after which the documents may have changed):
    with accounts the controls and the note start hidden and the page load shows the one
    for the user's role."""
    rows, _, _ = app.documents_view()
    gr.Markdown(
        "The documents the chat answers from, in the collection chosen in the Chat tab. "
        "Added files are saved to its documents folder "
        f"({md_escape(str(app.service.docs.folder), False)} for the default one, "
        "`documents-NAME/` beside it for another) and reingested; the chat keeps answering "
        "meanwhile and sees them when the reingest completes."
    )
    table = gr.Dataframe(
        value=rows,
        headers=DOCUMENTS_HEADERS,
        interactive=False,
        wrap=True,
        column_widths=["34%", "10%", "20%", "16%", "8%", "12%"],
        latex_delimiters=[],
        label="Ingested documents",
        elem_id="docqa-documents",
    )
    reader_note = gr.Markdown(READER_NOTE, visible=False, elem_id="docqa-reader-note")
    with gr.Column(visible=not app.access.enabled, elem_id="docqa-editing") as editing:
        files, reingest, remove_choice, remove = _document_controls(app)
        status = gr.Textbox(
            label="Reingest", interactive=False, lines=3, elem_id="docqa-ingest-status"
        )
    view = [table, remove_choice, header]
    sync = gr.Markdown(app.sync_line(), elem_id="docqa-sync")
    seen = gr.State(None)
    polled = gr.Timer(SYNC_POLL_S).tick(
        app.sync_view,
        [seen, collection],
        [sync, *view, seen],
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    uploaded = files.upload(app.upload, [files, collection], [status, *view, files], **_REINGEST)
    removed = remove.click(app.remove, [remove_choice, collection], [status, *view], **_REINGEST)
    redone = reingest.click(app.reingest, [collection], [status, *view], **_REINGEST)
    demo.load(app.documents_view, [collection], view, api_visibility="private", queue=False)
    return [*view, sync], editing, reader_note, [uploaded, removed, redone, polled]


def _document_controls(app: ChatApp) -> tuple[gr.File, gr.Button, gr.Dropdown, gr.Button]:
    """(upload, reingest button, removable documents, remove button)."""
    supported = list(SUPPORTED_EXTENSIONS)
    with gr.Row():
        with gr.Column():
            files = gr.File(
                label="Add documents ("
                + " ".join(supported)
                + f"; up to {app.settings.max_upload_mb:g} MB each)",
                file_count="multiple",
                file_types=supported,
                elem_id="docqa-upload",
            )
            reingest = gr.Button("Reingest folders", size="sm")
        with gr.Column():
            removable = app.service.removable()
            remove_choice = gr.Dropdown(
                removable,
                value=removable[0] if removable else None,
                label="Uploaded document",
                elem_id="docqa-remove-choice",
            )
            remove = gr.Button("Remove and reingest", variant="stop", size="sm")
            gr.Markdown(SEEDS_NOTE)
    return files, reingest, remove_choice, remove

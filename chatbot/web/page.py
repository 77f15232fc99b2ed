"""The page's layout: the Chat tab (chat, sources panel, retrieval trace, eval-case saving)
and the Documents tab, wired to the handlers of a ``ChatApp``. Components only; what they do
is the handlers' job (``chatbot.web.app``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from chatbot.web.ui import DOCUMENTS_HEADERS, md_escape, sources_html, trace_html
from ingest import SUPPORTED_EXTENSIONS

if TYPE_CHECKING:
    from chatbot.web.app import ChatApp

CHAT_CONCURRENCY = 4  # answers in flight at once; the model and index are shared
MAX_K = 10
EXAMPLES = [
    "Who told federal prosecutors to seek the death penalty in drug cases?",
    "Why has use of the death penalty been declining?",
    "Which groups reacted against the call for more executions?",
]
RIGHT, WRONG = "Right", "Wrong"
SEEDS_NOTE = (
    "Documents from `seeds/` (and folders ingested with `python -m ingest`) cannot be "
    "removed here; only uploaded ones can."
)
SYNC_POLL_S = 2.0  # how often an open Documents tab looks for a finished (watched) sync
_REINGEST = {"api_visibility": "private", "concurrency_limit": 1, "concurrency_id": "reingest"}


def build_page(app: ChatApp) -> gr.Blocks:
    """The page: Chat (chat, sources panel, trace, eval-case saving) and Documents tabs."""
    with gr.Blocks(title="docqa — ask your documents", analytics_enabled=False) as demo:
        header = gr.Markdown(app.header(), elem_id="docqa-header")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chat_tab(app)
            with gr.Tab("Documents", id="documents"):
                documents_tab(app, demo, header)
    return demo


# ---- the Chat tab


def chat_tab(app: ChatApp) -> None:
    """The chat with its settings and eval-case box on the left, the sources panel and the
    retrieval trace on the right."""
    sources = gr.HTML(sources_html(None), elem_id="docqa-sources", render=False)
    trace = gr.HTML(trace_html(None), elem_id="docqa-trace", render=False)
    answer_json = gr.JSON(visible=False, render=False)
    turn = gr.State(None)
    inputs = _answer_settings(app)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=420):
            chat = _chat_interface(app, inputs, [sources, trace, answer_json, turn])
            new = gr.Button("New conversation", elem_id="docqa-new", size="sm")
            verdict, right_answer, save, saved = _eval_case_box(app)
        with gr.Column(scale=2, min_width=320):
            gr.Markdown("### Sources")
            sources.render()
            with gr.Accordion("Retrieval trace", open=False, elem_id="docqa-trace-box"):
                trace.render()
            answer_json.render()
    clear_outputs = [chat.chatbot, chat.chatbot_state, sources, trace, answer_json, turn]
    new.click(
        app.new_conversation,
        None,
        [*clear_outputs, saved],
        api_visibility="private",
        queue=False,
    )
    chat.chatbot.clear(
        lambda: app.new_conversation()[2:6],
        None,
        [sources, trace, answer_json, turn],
        api_visibility="private",
        queue=False,
    )
    save.click(app.save_case, [verdict, right_answer, turn], [saved], api_visibility="private")


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
            feedback_options=None,
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
        examples=[[q, None, None] for q in EXAMPLES],
        api_name="chat",
        api_description="Ask a question; returns the answer with [n] markers, "
        "the sources panel, the retrieval trace and the answer as JSON.",
        concurrency_limit=CHAT_CONCURRENCY,
        fill_height=False,
        analytics_enabled=False,
    )


def _eval_case_box(app: ChatApp) -> tuple[gr.Radio, gr.Textbox, gr.Button, gr.Textbox]:
    """Mark the latest answer right or wrong and save it: (verdict, right answer, save
    button, status line)."""
    with gr.Accordion("Save the latest answer as an eval case", open=True, elem_id="docqa-eval"):
        gr.Markdown(
            "Mark the answer right (it becomes the gold answer) or wrong (type "
            "the right one; leave it empty when the documents don't say), then "
            f"save: one line is appended to `{app.settings.eval_cases_file.name}`."
        )
        with gr.Row():
            verdict = gr.Radio(
                [RIGHT, WRONG],
                show_label=False,
                container=False,
                scale=1,
                min_width=200,
                elem_id="docqa-verdict",
            )
            right_answer = gr.Textbox(
                placeholder="The right answer (when wrong)",
                show_label=False,
                container=False,
                scale=3,
                elem_id="docqa-right-answer",
            )
            save = gr.Button(
                "Save as eval case", elem_id="docqa-save", size="md", scale=1, min_width=150
            )
        saved = gr.Textbox(
            show_label=False,
            container=False,
            interactive=False,
            placeholder="Not saved yet.",
            elem_id="docqa-saved",
        )
    return verdict, right_answer, save, saved


# ---- the Documents tab


def documents_tab(app: ChatApp, demo: gr.Blocks, header: gr.Markdown) -> None:
    """The ingested documents, uploads, removal and a manual reingest; each change reingests
    in the background and refreshes the table, the removable list and the header."""
    rows, _, _ = app.documents_view()
    gr.Markdown(
        "The documents the chat answers from. Added files are saved to "
        f"{md_escape(str(app.service.docs.folder), False)} and reingested; the chat "
        "keeps answering meanwhile and sees them when the reingest completes."
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
    files, reingest, remove_choice, remove = _document_controls(app)
    status = gr.Textbox(label="Reingest", interactive=False, lines=3, elem_id="docqa-ingest-status")
    view = [table, remove_choice, header]
    sync = gr.Markdown(app.sync_line(), elem_id="docqa-sync")
    seen = gr.State(None)
    gr.Timer(SYNC_POLL_S).tick(
        app.sync_view,
        [seen],
        [sync, *view, seen],
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    files.upload(app.upload, [files], [status, *view, files], **_REINGEST)
    remove.click(app.remove, [remove_choice], [status, *view], **_REINGEST)
    reingest.click(app.reingest, None, [status, *view], **_REINGEST)
    demo.load(app.documents_view, None, view, api_visibility="private", queue=False)


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

"""The web app: a thin Gradio layer over ``ChatService`` (chat, sources, trace, documents).

``python -m chatbot`` launches it. The handlers are methods of ``ChatApp`` so they can be
tested without a browser; ``build`` wires them to the page's components
(``chatbot.web.page``), ``launch`` serves them.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from chatbot.chain import QuestionError
from chatbot.conversations import ConversationStore
from chatbot.llm_errors import LLMError
from chatbot.types import Answer
from chatbot.web.access import Access, ClientAddress
from chatbot.web.collections import NO_DOCUMENTS, CollectionHandlers
from chatbot.web.config import WebSettings
from chatbot.web.documents import UploadError
from chatbot.web.library import Library
from chatbot.web.openai_api import ApiKeys, api_routes
from chatbot.web.page import CHAT_CONCURRENCY, build_page
from chatbot.web.pageview import PageViews
from chatbot.web.saved import SavedChats, Session, assistant_count, new_session
from chatbot.web.service import SEEDS_DIR, ChatService, NoIndexError
from chatbot.web.ui import (
    APP_CSS,
    answer_markdown,
    documents_rows,
    error_markdown,
    history_for_chain,
    md_escape,
    sources_html,
    streaming_markdown,
    trace_html,
    working_html,
)
from chatbot.web.watching import DocumentsWatch, sync_line
from ingest import IngestError

logger = logging.getLogger(__name__)

QUEUE_MAX = 64

ChatOutput = tuple[str, Any, Any, Any, Any]


class ChatApp:
    """The handlers of the web app, over the shared ``ChatService`` of each collection (a
    ``Library``; one given ``service`` makes a library of its collection alone). Handlers
    take the collection the page has selected (None: the default one)."""

    def __init__(
        self,
        service: ChatService | None = None,
        watch: DocumentsWatch | None = None,
        *,
        library: Library | None = None,
        access: Access | None = None,
    ) -> None:
        if library is None:
            if service is None:
                raise ValueError("ChatApp needs a service or a library, got neither")
            library = Library.of(service, watch)
        self.library = library
        self.settings = library.service().settings
        self.access = access or Access.from_settings(self.settings)
        index = self.settings.chat.index
        self.page_views = PageViews(index.index_dir, index.collection)
        store = ConversationStore(self.settings.conversations_path)
        self.saved = SavedChats(
            store,
            index.collection,
            self.page_views,
            self.settings.eval_cases_file,
            owner=self.access.user,
        )
        self.collections = CollectionHandlers(self)

    @property
    def service(self) -> ChatService:
        """The default collection's service."""
        return self.library.service()

    @property
    def watch(self) -> bool:
        return self.library.watching()

    # ---- chat
    def chat(
        self,
        message: str,
        history: list[dict[str, Any]],
        k: float | None = None,
        backend: str | None = None,
        session: Session | None = None,
        collection: str | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[ChatOutput]:
        """Stream an answer: yields (chat message, sources panel, trace, answer as a dict,
        the session's saved conversation); the last yield carries the checked answer. The
        question is saved once answering starts, the answer when it is complete."""
        question = message if isinstance(message, str) else str(message or "")
        turns = history_for_chain(history)
        position = assistant_count(history)
        final: Answer | None = None
        turn: int | None = None
        try:
            stream = self.library.service(collection).stream(
                question, turns, k=int(k) if k else None, backend=backend or None
            )
            with closing(stream):
                parts: list[str] = []
                for item in stream:
                    if turn is None:
                        session, turn = self.saved.ask(
                            session,
                            question,
                            position,
                            collection or self.library.default,
                            request,
                        )
                    if isinstance(item, Answer):
                        final = item
                        continue
                    parts.append(item)
                    pending = working_html("Answering…") if len(parts) == 1 else gr.skip()
                    yield (
                        streaming_markdown("".join(parts)),
                        pending,
                        gr.skip(),
                        gr.skip(),
                        gr.skip(),
                    )
        except (QuestionError, NoIndexError, LLMError, IngestError, ValueError) as exc:
            if isinstance(exc, IngestError):
                logger.warning("%s", exc)  # one line, no traceback: the page shows it too
            failed = self.saved.failed(session, position)
            yield error_markdown(str(exc)), sources_html(None), trace_html(None), None, failed
            return
        except Exception as exc:  # the page must say something, not spin forever
            logger.exception("answering %r failed", question)
            yield (
                error_markdown(f"internal error: {type(exc).__name__}: {exc}"),
                sources_html(None),
                trace_html(None),
                None,
                self.saved.failed(session, position),
            )
            return
        if final is None or turn is None:  # pragma: no cover - stream ends with the Answer
            return
        self.saved.answered(turn, final)
        sources = sources_html(final, self.views(collection))
        yield answer_markdown(final), sources, trace_html(final), final.to_dict(), session

    def new_conversation(self) -> tuple[list, list, str, str, None, Session, str]:
        """Empty chat and panels, a new (not yet saved) conversation."""
        return [], [], sources_html(None), trace_html(None), None, new_session(), ""

    def views(self, collection: str | None) -> PageViews:
        """The page views of ``collection``'s PDFs and images."""
        if not collection or collection == self.page_views.collection:
            return self.page_views
        return PageViews(self.page_views.index_dir, collection)

    # ---- documents
    def header(self, collection: str | None = None) -> str:
        try:
            service = self.library.service(collection)
        except IngestError as exc:
            return f"**No such collection.** {md_escape(str(exc), False)}"
        if service.damaged:
            return f"**The index is damaged.** {md_escape(service.damaged, False)}"
        if not service.ready and collection and self.library.is_new(collection):
            return NO_DOCUMENTS
        if not service.ready:
            return f"**No index yet.** {md_escape(service.missing, False)}"
        docs = service.documents()
        if not docs and collection and collection != self.library.default:
            return NO_DOCUMENTS
        chunks = sum(r.n_chunks for r in docs)
        return (
            f"Answers come from **{len(docs)} document{'s' if len(docs) != 1 else ''}** "
            f"({chunks} passages), each claim cited as `[n]`; the passages are on the right."
        )

    def documents_view(self, collection: str | None = None) -> tuple[list[list[Any]], Any, str]:
        """The documents table, the removable documents, the header line (of the selected
        collection)."""
        try:
            service = self.library.service(collection)
        except IngestError:
            return [], gr.update(choices=[], value=None), self.header(collection)
        rows = documents_rows(service.documents(), service.folder_names())
        removable = service.removable()
        return (
            rows,
            gr.update(choices=removable, value=removable[0] if removable else None),
            self.header(collection),
        )

    def example_view(
        self, collection: str | None = None, shown: list[str] | None = None
    ) -> tuple[Any, list[str]]:
        """The example questions under the chat, about the selected collection's documents:
        (the examples' update, hidden when there are none, or a skip when they are those
        ``shown`` already; the questions)."""
        try:
            questions = self.library.service(collection).examples()
        except IngestError:
            questions = []
        if shown is not None and list(shown) == questions:
            return gr.skip(), questions
        return gr.update(samples=[[q] for q in questions], visible=bool(questions)), questions

    def sync_line(self, collection: str | None = None) -> str:
        """Whether the documents folder is watched, when it was last synced, what changed."""
        try:
            service = self.library.service(collection)
        except IngestError as exc:
            return md_escape(str(exc), False)
        return sync_line(
            service.status(), service.docs.folder.name + "/", self.library.watching(collection)
        )

    def sync_view(
        self, seen: int | None, collection: str | None = None
    ) -> tuple[str, Any, Any, Any, int | None]:
        """The sync line, and the documents view when a reingest finished since ``seen``
        (the page polls this: a watched folder changes without a click)."""
        try:
            completed = self.library.service(collection).status().completed
        except IngestError:
            return self.sync_line(collection), gr.skip(), gr.skip(), gr.skip(), seen
        if completed == seen:
            return self.sync_line(collection), gr.skip(), gr.skip(), gr.skip(), completed
        return (self.sync_line(collection), *self.documents_view(collection), completed)

    def close(self) -> None:
        """Stop watching the documents folders; close the conversations database."""
        self.library.close()
        self.saved.store.close()

    def _follow(
        self, service: ChatService, ticket: int, prefix: str, collection: str | None
    ) -> Iterator[tuple[str, Any, Any, Any]]:
        """Yield the reingest's progress until request ``ticket`` is done, then its summary
        with the refreshed documents table."""
        while True:
            status = service.wait(ticket, timeout=0.5)
            if status.completed >= ticket:
                break
            yield f"{prefix}\nworking: {status.describe()}", gr.skip(), gr.skip(), gr.skip()
        done = f"FAILED: {status.describe()}" if status.error else f"done: {status.describe()}"
        yield (f"{prefix}\n{done}", *self.documents_view(collection))

    def upload(
        self,
        files: list[str] | None,
        collection: str | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[str, Any, Any, Any, Any]]:
        """Save uploaded files into the collection's documents folder and reingest (editors
        only)."""
        if refused := self.access.refusal(request):
            yield refused, gr.skip(), gr.skip(), gr.skip(), None
            return
        try:
            service = self.library.service(collection)
        except IngestError as exc:
            yield f"Nothing added: {exc}", gr.skip(), gr.skip(), gr.skip(), None
            return
        uploads = [(Path(f).name, Path(f)) for f in files or []]
        result = service.docs.save(uploads)
        if not result.saved:
            yield f"Nothing added: {result.describe()}", gr.skip(), gr.skip(), gr.skip(), None
            return
        ticket = service.request_reingest()
        for update in self._follow(service, ticket, result.describe(), collection):
            yield (*update, None)

    def remove(
        self,
        source: str | None,
        collection: str | None = None,
        request: gr.Request | None = None,
    ) -> Iterator[tuple[str, Any, Any, Any]]:
        """Delete an uploaded document from the collection's documents folder and reingest
        (editors only)."""
        if refused := self.access.refusal(request):
            yield refused, *([gr.skip()] * 3)
            return
        if not source:
            yield "Choose a document from the documents folder first.", *([gr.skip()] * 3)
            return
        try:
            service = self.library.service(collection)
            service.docs.remove(source)
        except (UploadError, IngestError) as exc:
            yield f"Not removed: {exc}", *([gr.skip()] * 3)
            return
        ticket = service.request_reingest()
        yield from self._follow(service, ticket, f"removed {source}", collection)

    def reingest(
        self, collection: str | None = None, request: gr.Request | None = None
    ) -> Iterator[tuple[str, Any, Any, Any]]:
        """Reingest the collection's folders (files copied in by hand; editors only)."""
        if refused := self.access.refusal(request):
            yield refused, *([gr.skip()] * 3)
            return
        try:
            service = self.library.service(collection)
        except IngestError as exc:
            yield f"Not reingested: {exc}", *([gr.skip()] * 3)
            return
        ticket = service.request_reingest()
        yield from self._follow(service, ticket, "reingest requested", collection)

    # ---- layout
    def build(self) -> gr.Blocks:
        """The page (``chatbot.web.page``) wired to these handlers."""
        return build_page(self)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def login(settings: WebSettings) -> tuple[str, str] | None:
    if settings.login_user:
        return (settings.login_user, settings.login_password)
    return None


def build_app(
    settings: WebSettings, *, seeds_dir: Path | None = SEEDS_DIR
) -> tuple[gr.Blocks, ChatApp]:
    """The page and its handlers, over a new ``Library`` of the index's collections (one
    embedding model, loaded once; the selected collection opened and warmed now)."""
    access = Access.from_settings(settings)  # a bad users file stops here, before the model
    library = Library(settings, seeds_dir=seeds_dir)
    library.service().warm()
    app = ChatApp(library=library, access=access)
    demo = app.build()
    demo.queue(default_concurrency_limit=CHAT_CONCURRENCY, max_size=QUEUE_MAX)
    return demo, app


def launch(
    settings: WebSettings,
    *,
    seeds_dir: Path | None = SEEDS_DIR,
    block: bool = True,
    quiet: bool = False,
) -> tuple[gr.Blocks, ChatApp, str]:
    """Serve the app on ``settings.host:settings.port``; returns (page, handlers, URL) when
    ``block`` is False (tests), else serves until interrupted."""
    if login(settings) is None and not settings.users_file and not is_loopback(settings.host):
        logger.warning(
            "binding to %s without a login: anyone who can reach this address can read "
            "the documents; set DOCQA_USERS_FILE (accounts) or DOCQA_LOGIN_USER and "
            "DOCQA_LOGIN_PASSWORD",
            settings.host,
        )
    demo, app = build_app(settings, seeds_dir=seeds_dir)
    routes = api_routes(app.library, ApiKeys.parse(settings.api_keys), app.access.users_file)
    auth = app.access.auth()
    # The HTTP API (chatbot.web.openai_api) on this server; the login sees client addresses.
    extra = {"middleware": [Middleware(ClientAddress)]} if app.access.enabled else {}
    _, url, _ = demo.launch(
        app_kwargs={"routes": routes, **extra},
        server_name=settings.host,
        server_port=settings.port,
        auth=auth,
        auth_message=app.access.auth_message(),
        max_file_size=settings.max_upload_bytes,
        prevent_thread_lock=not block,
        show_error=True,
        quiet=quiet,
        footer_links=["api"],
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        css=APP_CSS,
    )
    return demo, app, url

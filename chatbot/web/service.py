"""What the web app shares between sessions: the loaded chatbots (one per answering backend,
one embedding model), a reader/writer lock so a refresh never closes an index mid-answer,
and the background reingest of the seeds and the documents folder."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from chatbot.chain import Chatbot
from chatbot.types import Answer
from chatbot.web.config import WebSettings
from chatbot.web.documents import DocumentsFolder
from chatbot.web.examples import collection_examples
from ingest import (
    DocIndex,
    DocRecord,
    IndexDamagedError,
    IndexMissingError,
    IngestError,
    IngestSettings,
    Plan,
    indexed_folders,
    ingest_paths,
    open_index,
)
from ingest.config import PROJECT_ROOT
from ingest.lock import WriteLockBusy
from ingest.watch import describe_changes

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)

SEEDS_DIR = PROJECT_ROOT / "seeds"
DEFAULT_INDEX_DIR = PROJECT_ROOT / ".index"  # make run's index: the seeds go in
EXTRACTIVE = "extractive"


class NoIndexError(RuntimeError):
    """There is no index to answer from yet; the message says how to build one."""


class ReadWriteLock:
    """Many readers or one writer; a waiting writer keeps new readers out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            while self._writing:
                self._cond.wait()
            self._writing = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


@dataclass
class ReingestStatus:
    """Where the background reingest is; ``completed`` counts finished requests."""

    running: bool = False
    phase: str = ""
    done: int = 0
    total: int = 0
    summary: str = ""
    error: str = ""
    completed: int = 0
    finished_at: float = 0.0
    started_at: float = 0.0  # when the latest reingest began (wall clock)
    changes: str = ""  # the documents the latest reingest that changed any changed, by name
    changed_at: float = 0.0  # when that one finished
    busy: bool = False  # the latest one found another ingest writing (worth retrying)

    def describe(self) -> str:
        if self.running:
            if self.total:
                return f"{self.phase}: embedded {self.done}/{self.total} chunks"
            return self.phase or "reingesting…"
        if self.error:
            return f"reingest failed: {self.error}"
        return self.summary


class _CountingEmbeddings(Embeddings):
    """The shared embedding model, reporting how many chunks each batch embedded."""

    def __init__(self, inner: Embeddings, on_batch: Callable[[int], None]) -> None:
        self.inner = inner
        self.on_batch = on_batch

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.inner.embed_documents(texts)
        self.on_batch(len(texts))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)


def seeds_for(index: IngestSettings, seeds_dir: Path = SEEDS_DIR) -> Path | None:
    """Whether the app syncs ``seeds/`` into ``index`` at start: into the project's default
    index (``make run``) and into an index already built with them; never into a user's own
    index (``--index-dir MY_INDEX``, a Chroma server's collection), whose documents stay
    what the user ingested."""
    seeds = Path(seeds_dir).resolve()
    if not seeds.is_dir():
        return None
    if not index.uses_server and Path(index.index_dir).resolve() == DEFAULT_INDEX_DIR.resolve():
        return seeds
    return seeds if str(seeds) in indexed_folders(index) else None


class ChatService:
    """The chatbots and the index behind the web app, shared by every session."""

    def __init__(
        self,
        settings: WebSettings,
        *,
        seeds_dir: Path | None = SEEDS_DIR,
        chat_model: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
    ) -> None:
        """``embeddings``: an embedding model already loaded (the ``Library`` shares one
        between the services of its collections); None loads the configured one."""
        index = settings.chat.index.replace(progress=False)
        self.settings = settings.replace(chat=settings.chat.replace(index=index))
        self.seeds_dir = Path(seeds_dir).resolve() if seeds_dir else None
        self.docs = DocumentsFolder(settings.docs_dir, settings.max_upload_bytes)
        self._chat_model = chat_model
        self._shared_embeddings = embeddings
        self._lock = ReadWriteLock()
        self._create_lock = threading.Lock()
        self._bots: dict[str, Chatbot] = {}
        self.missing = ""
        self.damaged = ""  # the one-line error when the index cannot be read
        self._examples: tuple[DocIndex, int, list[str]] | None = None  # index, generation
        self._job_cond = threading.Condition()
        self._status = ReingestStatus()
        self._finished = ReingestStatus()  # as the latest reingest left it
        self._requested = 0
        self._worker_active = False
        self._open()

    # ---- the chatbots
    @property
    def backends(self) -> list[str]:
        """The answering backends on offer: the configured one, and the offline extractive
        one beside a chat model."""
        primary = self.settings.chat.answerer
        return [primary] if primary == EXTRACTIVE else [primary, EXTRACTIVE]

    @property
    def ready(self) -> bool:
        return bool(self._bots)

    def _open(self) -> None:
        try:
            index = None
            if self._shared_embeddings is not None:
                index = open_index(self.settings.chat.index, embeddings=self._shared_embeddings)
            bot = Chatbot(self.settings.chat, index=index, chat_model=self._chat_model)
        except IndexMissingError as exc:
            self.missing = f"{exc}. Or add documents in the Documents tab: they are ingested there."
            logger.warning("%s", self.missing)
            return
        except IndexDamagedError as exc:
            self._mark_damaged(exc)
            return
        self._bots = {self.settings.chat.answerer: bot}
        self.missing = self.damaged = ""

    def _mark_damaged(self, exc: IndexDamagedError) -> None:
        """Answer nothing from a damaged index; the page shows why and the remedy."""
        self.damaged = self.missing = str(exc)
        logger.error("%s", exc)

    def _bot(self, backend: str | None) -> Chatbot:
        backend = backend or self.settings.chat.answerer
        if backend not in self.backends:
            raise ValueError(f"unknown backend {backend!r}; choose one of {self.backends}")
        if backend not in self._bots:
            with self._create_lock:
                if backend not in self._bots:
                    primary = self._bots[self.settings.chat.answerer]
                    self._bots[backend] = Chatbot(
                        self.settings.chat.replace(answerer=backend), index=primary.index
                    )
        return self._bots[backend]

    @contextmanager
    def answering(self, backend: str | None = None) -> Iterator[Chatbot]:
        """A chatbot to answer with; its index is not swapped until the block ends."""
        with self._lock.reading():
            if not self._bots:
                raise NoIndexError(self.missing or "there is no index yet")
            yield self._bot(backend)

    def stream(
        self,
        question: str,
        history: list[dict[str, str]] | None = None,
        k: int | None = None,
        backend: str | None = None,
    ) -> Iterator[str | Answer]:
        """``Chatbot.stream`` on the chosen backend, under the read lock."""
        with self.answering(backend) as bot:
            yield from bot.stream(question, history, k=k)

    def refresh(self) -> None:
        """Make a finished reingest visible: reopen every chatbot's index (or open the
        first one), once no answer is using the old one."""
        with self._lock.writing():
            if not self._bots:
                self._open()
                return
            primary = self._bots[self.settings.chat.answerer]
            primary.refresh()
            for name, bot in list(self._bots.items()):
                if bot is not primary:
                    self._bots[name] = Chatbot(
                        self.settings.chat.replace(answerer=name), index=primary.index
                    )

    def close(self) -> None:
        """Close the index once no answer uses it; the service answers nothing after."""
        with self._lock.writing():
            primary = self._bots.get(self.settings.chat.answerer)
            self._bots = {}
            self.missing = "this collection was closed"
            if primary is not None:
                primary.index.close()

    def warm(self) -> None:
        """Load the embedding model and the BM25 index now, not on the first question."""
        t = time.perf_counter()
        try:
            with self.answering() as bot:
                bot.index.embeddings.embed_query("warm up")
                bot.index.lexical()
        except NoIndexError:
            return
        except IndexDamagedError as exc:
            with self._lock.writing():
                self._bots = {}
            self._mark_damaged(exc)
            return
        logger.info("model and index loaded in %.1f s", time.perf_counter() - t)

    def documents(self) -> list[DocRecord]:
        with self._lock.reading():
            if not self._bots:
                return []
            try:
                return self._bots[self.settings.chat.answerer].index.documents()
            except IndexDamagedError as exc:
                self._mark_damaged(exc)
                return []

    def examples(self) -> list[str]:
        """Example questions about the collection's documents (``chatbot.web.examples``),
        worked out again only when the index has changed."""
        with self._lock.reading():
            if not self._bots:
                return []
            index = self._bots[self.settings.chat.answerer].index
            try:
                generation = index.generation()
                cached = self._examples
                if cached is not None and cached[0] is index and cached[1] == generation:
                    return list(cached[2])
                questions = collection_examples(index)
            except IndexDamagedError as exc:
                self._mark_damaged(exc)
                return []
            self._examples = (index, generation, questions)
            return list(questions)

    def removable(self) -> list[str]:
        """Sources that can be removed in the app: those in the documents folder."""
        folder = str(self.docs.folder)
        return [r.source for r in self.documents() if r.root == folder]

    def folder_names(self) -> dict[str, str]:
        names = {str(self.docs.folder): f"documents ({self.docs.folder.name}/)"}
        if self.seeds_dir:
            names[str(self.seeds_dir)] = f"seeds ({self.seeds_dir.name}/)"
        return names

    # ---- the background reingest
    def reingest_paths(self) -> list[Path]:
        self.docs.ensure()
        paths = [self.seeds_dir] if self.seeds_dir and self.seeds_dir.is_dir() else []
        return [*paths, self.docs.folder]

    def status(self) -> ReingestStatus:
        with self._job_cond:
            return dataclasses.replace(self._status)

    def request_reingest(self) -> int:
        """Start (or queue one more) reingest of the seeds and the documents folder in the
        background; returns a ticket for ``wait``."""
        with self._job_cond:
            self._requested += 1
            ticket = self._requested
            if not self._worker_active:
                self._worker_active = True
                self._status.running = True
                self._status.phase = "starting"
                threading.Thread(
                    target=self._reingest_loop, name="docqa-reingest", daemon=True
                ).start()
        return ticket

    def wait(self, ticket: int, timeout: float | None = None) -> ReingestStatus:
        """Block until request ``ticket`` has finished (or ``timeout`` seconds passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._job_cond:
            while self._status.completed < ticket:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._job_cond.wait(left)
            if self._status.completed >= ticket:  # not a later request's run, just begun
                return dataclasses.replace(self._finished)
            return dataclasses.replace(self._status)

    def _update(self, **changes: object) -> None:
        with self._job_cond:
            for name, value in changes.items():
                setattr(self._status, name, value)
            self._job_cond.notify_all()

    def _add_done(self, n: int) -> None:
        with self._job_cond:
            self._status.done += n
            self._job_cond.notify_all()

    def _reingest_loop(self) -> None:
        while True:
            with self._job_cond:
                if self._status.completed >= self._requested:
                    self._status.running = False
                    self._worker_active = False
                    self._job_cond.notify_all()
                    return
                target = self._requested
                self._status.running = True
                self._status.started_at = time.time()
            summary, error = self._reingest_once()
            with self._job_cond:
                self._status.summary, self._status.error = summary, error
                self._status.completed, self._status.finished_at = target, time.time()
                self._status.phase = ""
                self._finished = dataclasses.replace(self._status, running=False)
                self._job_cond.notify_all()

    def _reingest_once(self) -> tuple[str, str]:
        paths = self.reingest_paths()
        self._update(phase="planning", done=0, total=0, summary="", error="", busy=False)
        logger.info("reingesting %s", ", ".join(map(str, paths)))

        def on_plan(plan: Plan) -> None:
            total = sum(len(w.chunks) for w in plan.work)
            self._update(phase=f"{plan.describe()}; embedding", total=total)

        try:
            embeddings = _CountingEmbeddings(self._embeddings(), self._add_done)
            report = ingest_paths(
                paths, self.settings.chat.index, embeddings=embeddings, on_plan=on_plan
            )
            self._update(phase="reopening the index", total=0)
            self.refresh()
        except (IngestError, OSError, ValueError) as exc:
            logger.warning("reingest failed: %s", exc)
            self._update(busy=isinstance(exc, WriteLockBusy))
            return "", str(exc)
        except Exception as exc:  # the worker must survive to serve the next request
            logger.exception("reingest failed")
            return "", f"{type(exc).__name__}: {exc}"
        plan = report.plan
        if plan.work or plan.delete or plan.failed:
            self._update(changes=describe_changes(plan), changed_at=time.time())
        summary = report.summary()
        if report.plan.failed:
            summary += "; skipped: " + "; ".join(str(e) for e in report.plan.failed)
        logger.info("%s", summary)
        return summary, ""

    def _embeddings(self) -> Embeddings:
        if self._shared_embeddings is not None:
            return self._shared_embeddings
        with self._lock.reading():
            if self._bots:
                return self._bots[self.settings.chat.answerer].index.embeddings
        from ingest.embeddings import LazyEmbeddings

        index = self.settings.chat.index
        return LazyEmbeddings(index.embedding_model, onnx_cache_dir=index.onnx_cache_dir)

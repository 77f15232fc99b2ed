"""The web app's collections: one ``ChatService`` per collection of the index, opened when
first asked for, all sharing one loaded embedding model; creating and deleting collections.

Each collection has its own documents folder, watched like the default one: the default
collection ("docs") keeps ``docs_dir`` and the seeds, another collection NAME uses the sibling
folder ``<docs_dir>-NAME`` and no seeds, so an ingest of one folder never picks up another
collection's files."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from chatbot.web.config import WebSettings
from chatbot.web.service import SEEDS_DIR, ChatService
from chatbot.web.watching import DocumentsWatch, start_watch
from ingest import (
    IngestError,
    IngestSettings,
    SettingsError,
    UnknownCollectionError,
    delete_collection,
)
from ingest.catalog import collection_models
from ingest.embeddings import LazyEmbeddings, model_identity, same_vectors
from ingest.manifest import DEFAULT_COLLECTION

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)


def documents_folder(docs_dir: Path, collection: str) -> Path:
    """Where the documents of ``collection`` are uploaded: ``docs_dir`` for the default
    collection, the sibling ``<docs_dir>-NAME`` for another."""
    if collection == DEFAULT_COLLECTION:
        return docs_dir
    return docs_dir.with_name(f"{docs_dir.name}-{collection}")


class Library:
    """The collections the app answers from, by name; ``default`` is the one a new page
    opens on (``settings.chat.index.collection``)."""

    def __init__(
        self,
        settings: WebSettings,
        *,
        seeds_dir: Path | None = SEEDS_DIR,
        chat_model: BaseChatModel | None = None,
        embeddings: Embeddings | None = None,
        watch: bool | None = None,
    ) -> None:
        index = settings.chat.index
        self.settings = settings
        self.default = index.collection
        self.seeds_dir = seeds_dir
        self.embeddings = embeddings or LazyEmbeddings(
            index.embedding_model, onnx_cache_dir=index.onnx_cache_dir
        )
        self._chat_model = chat_model
        self._watch = settings.watch_documents if watch is None else watch
        self._services: dict[str, ChatService] = {}
        self._watches: dict[str, DocumentsWatch | None] = {}
        self._created: set[str] = set()  # created here, maybe not ingested yet
        self._fixed = False  # only the services given (``of``): nothing to list or create
        self._lock = threading.RLock()

    @classmethod
    def of(cls, service: ChatService, watch: DocumentsWatch | None = None) -> Library:
        """A library of one collection: ``service`` (what a test builds by hand)."""
        library = cls(service.settings, seeds_dir=None, embeddings=_NotShared(), watch=False)
        name = service.settings.chat.index.collection
        library._services[name] = service
        library._watches[name] = watch
        library._fixed = True
        return library

    # ---- which collections
    def names(self) -> list[str]:
        """The collections to choose from: those built in the index with this embedding
        model, those created here, and the default one, by name."""
        with self._lock:
            names = set(self._services)
            if not self._fixed:
                names |= self._created | {self.default} | set(self._listed())
            return sorted(names)

    def _listed(self) -> list[str]:
        index = self.settings.chat.index
        model = model_identity(index.embedding_model)
        try:
            found = collection_models(index)
        except IngestError as exc:
            logger.warning("cannot list the collections: %s", exc)
            return []
        return [name for name, built in found.items() if same_vectors(built, model)]

    def is_new(self, name: str) -> bool:
        """Whether ``name`` was created in this app (and may have no documents yet)."""
        return name in self._created

    def service(self, name: str | None = None) -> ChatService:
        """The service of collection ``name`` (the default one when None), opened (and its
        folder watched) when first asked for. Raises ``UnknownCollectionError``."""
        name = name or self.default
        with self._lock:
            if name in self._services:
                return self._services[name]
            known = self.names()
            if name not in known:
                raise UnknownCollectionError(
                    f"no collection {name!r}; the collections are: {', '.join(known)}"
                )
            return self._open(name)

    def _open(self, name: str) -> ChatService:
        service = ChatService(
            self.settings_for(name),
            seeds_dir=self.seeds_dir if name == DEFAULT_COLLECTION else None,
            chat_model=self._chat_model,
            embeddings=self.embeddings,
        )
        self._services[name] = service
        self._watches[name] = start_watch(service) if self._watch else None
        logger.info("opened collection %s", name)
        return service

    def settings_for(self, name: str) -> WebSettings:
        """The app's settings with the index and documents folder of collection ``name``."""
        chat = self.settings.chat
        return self.settings.replace(
            chat=chat.replace(index=chat.index.replace(collection=name)),
            docs_dir=documents_folder(self.settings.docs_dir, name),
        )

    def watching(self, name: str | None = None) -> bool:
        return self._watches.get(name or self.default) is not None

    # ---- creating and deleting
    def create(self, name: str) -> ChatService:
        """A new, empty collection ``name``: its service, and a first reingest of its (empty)
        documents folder that makes the collection in the index. Raises ``SettingsError``
        for a bad or taken name."""
        name = (name or "").strip()
        if self._fixed:
            raise SettingsError("this app serves one collection; it cannot create another")
        IngestSettings(collection=name)  # the name's rules, one line naming it
        with self._lock:
            if name in self.names():
                raise SettingsError(f"a collection {name!r} exists already")
            self._created.add(name)
            service = self._open(name)
        service.request_reingest()
        return service

    def deletable(self, name: str) -> str:
        """Why collection ``name`` cannot be deleted here ("" when it can)."""
        if self._fixed or name == self.default:
            seeds = " (and holds its seeds)" if name == DEFAULT_COLLECTION else ""
            return (
                f"the collection {name!r} is the one the app starts on{seeds}: delete it "
                "with 'python -m ingest --collection NAME --delete-collection'"
            )
        if name not in self.names():
            return f"there is no collection {name!r}"
        service = self._services.get(name)
        if service is not None and service.status().running:
            return f"a reingest of {name!r} is running; try again when it ends"
        return ""

    def delete(self, name: str) -> None:
        """Delete collection ``name``: its index data (chunks, reingest state, BM25) and its
        documents folder with the files uploaded to it. Raises ``IngestError`` (why not)."""
        with self._lock:
            refused = self.deletable(name)
            if refused:
                raise IngestError(f"not deleted: {refused}")
            watch = self._watches.pop(name, None)
            if watch is not None:
                watch.close()
            service = self._services.pop(name, None)
            if service is not None:
                service.close()
            settings = self.settings_for(name)
            try:
                delete_collection(settings.chat.index)
            except UnknownCollectionError:
                if name not in self._created:  # created here and never ingested: no data
                    raise
            self._created.discard(name)
            shutil.rmtree(settings.docs_dir, ignore_errors=True)
        logger.info("deleted collection %s and its folder %s", name, settings.docs_dir)

    def close(self) -> None:
        """Stop watching every documents folder."""
        with self._lock:
            for watch in self._watches.values():
                if watch is not None:
                    watch.close()
            self._watches = {}


class _NotShared(Embeddings):
    """A library of one given service embeds nothing itself: its service has its model."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError("a fixed library opens no collection")

    def embed_query(self, text: str) -> list[float]:
        raise NotImplementedError("a fixed library opens no collection")

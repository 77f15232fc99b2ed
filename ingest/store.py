"""The index: a Chroma collection (via langchain-chroma) plus the manifest beside it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings
from ingest.embeddings import LazyEmbeddings, model_identity
from ingest.lexical import LexicalIndex
from ingest.manifest import DocRecord, Manifest

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)

CHROMA_SUBDIR = "chroma"


class IngestError(Exception):
    """Something the user must fix; ``str()`` is one line naming the bad value."""


class IndexMissingError(IngestError):
    pass


class IndexMismatchError(IngestError):
    pass


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored in the index."""

    id: str
    text: str
    metadata: dict[str, Any]


def lexical_text(chunk: StoredChunk) -> str:
    """What BM25 indexes for a chunk: its document title, then its text."""
    title = chunk.metadata.get("title", "")
    return f"{title}\n{chunk.text}" if title else chunk.text


def chroma_client(index_dir: Path) -> Any:
    """An embedded Chroma client with telemetry off."""
    import chromadb
    from chromadb.config import Settings

    return chromadb.PersistentClient(
        path=str(Path(index_dir) / CHROMA_SUBDIR),
        settings=Settings(anonymized_telemetry=False),
    )


def _collection_metadata(client: Any, name: str) -> dict[str, Any] | None:
    try:
        collection = client.get_collection(name)
    except Exception:  # chromadb raises NotFoundError (or ValueError in older releases)
        return None
    return dict(collection.metadata or {})


class DocIndex:
    """The Chroma collection and manifest of one index directory.

    ``open_index`` gives a reader (what the chatbot uses); the ingest pipeline opens it
    writable. Either way the collection always has our embedding function: Chroma's default
    one would try to download a model.
    """

    def __init__(
        self,
        settings: IngestSettings,
        *,
        writable: bool = False,
        embeddings: Embeddings | None = None,
    ) -> None:
        from langchain_chroma import Chroma

        self.settings = settings
        self.model = model_identity(settings.embedding_model)
        index_dir = settings.index_dir
        if not writable and not Manifest.exists(index_dir):
            raise IndexMissingError(
                f"no index at {index_dir}: run 'python -m ingest seeds/' "
                "(or 'make run') to build it"
            )
        self.client = chroma_client(index_dir)
        built = _collection_metadata(self.client, settings.collection)
        if built is not None and built.get("embedding_model") != self.model:
            raise IndexMismatchError(
                f"index {index_dir} (collection {settings.collection!r}) was built with "
                f"embedding model {built.get('embedding_model')!r}, but settings ask for "
                f"{self.model!r}: rebuild it with --reset or use another --index-dir"
            )
        if built is None and not writable:
            raise IndexMissingError(
                f"no collection {settings.collection!r} in {index_dir}: run "
                "'python -m ingest seeds/' to build it"
            )
        self.embeddings = embeddings or LazyEmbeddings(settings.embedding_model)
        self.vectorstore: Chroma = Chroma(
            client=self.client,
            collection_name=settings.collection,
            embedding_function=self.embeddings,
            collection_metadata={"embedding_model": self.model},
            collection_configuration={"hnsw": {"space": "cosine"}},
            create_collection_if_not_exists=writable,
        )
        self.manifest = Manifest(index_dir, read_only=not writable)
        self._lexical: LexicalIndex | None = None

    @property
    def lexical_dir(self) -> Path:
        return self.settings.index_dir / "bm25" / self.settings.collection

    def lexical(self) -> LexicalIndex:
        """The BM25 index, loaded once and rebuilt whenever the index has changed since."""
        generation = self.generation()
        if self._lexical is None or self._lexical.generation != generation:
            loaded = LexicalIndex.load(self.lexical_dir)
            if loaded is None or loaded.generation != generation:
                loaded = self.rebuild_lexical(generation)
            self._lexical = loaded
        return self._lexical

    def rebuild_lexical(self, generation: int | None = None) -> LexicalIndex:
        generation = self.generation() if generation is None else generation
        logger.info("building the BM25 index (generation %d)", generation)
        lexical = LexicalIndex.build(
            ((c.id, lexical_text(c)) for c in self.iter_chunks()), generation
        )
        try:
            lexical.save(self.lexical_dir)
        except OSError as exc:  # a read-only index folder: keep it in memory only
            logger.warning("could not save the BM25 index to %s: %s", self.lexical_dir, exc)
        self._lexical = lexical
        return lexical

    def lexical_search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.lexical().search(query, k)

    # ---- reading
    def count(self) -> int:
        return self.vectorstore._collection.count()

    def generation(self) -> int:
        return self.manifest.generation()

    def documents(self) -> list[DocRecord]:
        return sorted(self.manifest.documents().values(), key=lambda r: (r.root, r.source))

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        """Dense search: documents with cosine similarity (higher is closer)."""
        if self.count() == 0:
            return []
        hits = self.vectorstore.similarity_search_with_score(query, k=min(k, self.count()))
        return [(doc, 1.0 - float(dist)) for doc, dist in hits]

    def get(self, ids: list[str]) -> list[StoredChunk]:
        got = self.vectorstore.get(ids=ids, include=["documents", "metadatas"])
        by_id = {
            i: StoredChunk(i, d, m or {})
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def iter_chunks(self, page: int = 5000) -> Iterator[StoredChunk]:
        """Every chunk in the collection, a page at a time."""
        offset = 0
        while True:
            got = self.vectorstore.get(
                include=["documents", "metadatas"], limit=page, offset=offset
            )
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                yield StoredChunk(i, d, m or {})
            if len(got["ids"]) < page:
                return
            offset += page

    def all_ids(self, page: int = 20000) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            got = self.vectorstore.get(include=[], limit=page, offset=offset)
            ids.update(got["ids"])
            if len(got["ids"]) < page:
                return ids
            offset += page

    def close(self) -> None:
        self.manifest.close()


def open_index(settings: IngestSettings, embeddings: Embeddings | None = None) -> DocIndex:
    """Open an existing index for reading (raises IndexMissingError / IndexMismatchError)."""
    return DocIndex(settings, writable=False, embeddings=embeddings)

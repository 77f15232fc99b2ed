"""The index: a Chroma collection plus the manifest and the BM25 side beside it.

The collection is embedded in ``index_dir`` or, when ``chroma_host`` is set, on a Chroma
server. The manifest and the BM25 index always stay in the local ``index_dir``; the collection
metadata records which manifest maintains it and the generation of its last committing run.
Writes, counts and collection metadata go to the ``chromadb`` collection itself; dense search
goes through langchain-chroma's wrapper of the same collection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.collection import (
    GENERATION_KEY,
    chroma_client,
    claim,
    collection_configuration,
    create_collection,
    current_metadata,
    describes,
    get_collection,
    update_metadata,
)
from ingest.config import DEFAULT_COLLECTION, IngestSettings
from ingest.damage import forget_client, guarded
from ingest.embeddings import LazyEmbeddings, model_identity, same_vectors
from ingest.errors import IndexMismatchError, IndexMissingError
from ingest.errors import IngestError as IngestError  # re-exported: ingest.__main__ imports it
from ingest.lexical import LexicalIndex
from ingest.lexical_sync import LexicalSide
from ingest.lock import ingest_running
from ingest.manifest import DocRecord, Manifest, doc_key

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)

PAGE = 5000  # chunks read per call when listing the whole collection
# Ids per Chroma call that names ids: Chroma puts each in one SQL statement, and SQLite takes
# at most 32766 variables (a 40 MB text file has ~70k chunks).
ID_BATCH = 5000


def _batches(n: int) -> range:
    return range(0, n, ID_BATCH)


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as stored in the index."""

    id: str
    text: str
    metadata: dict[str, Any]


class DocIndex:
    """The Chroma collection, manifest and BM25 side of one index directory.

    ``open_index`` gives a reader (what the chatbot uses); the ingest pipeline opens it
    writable. Either way the collection always has our embedding function: Chroma's default
    one would try to download a model.
    """

    @guarded()
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
        if (
            not writable
            and not settings.uses_server
            and not Manifest.exists(settings.index_dir, settings.collection)
        ):
            raise IndexMissingError(missing_message(settings))
        self.client = chroma_client(settings)
        found = get_collection(self.client, settings.collection)
        self._check_built(None if found is None else dict(found.metadata or {}), writable)
        self.embeddings = embeddings or LazyEmbeddings(
            settings.embedding_model, onnx_cache_dir=settings.onnx_cache_dir
        )
        self.collection: Any = (
            create_collection(self.client, settings.collection, self.model) if writable else found
        )
        self.vectorstore: Chroma = Chroma(
            client=self.client,
            collection_name=settings.collection,
            embedding_function=self.embeddings,
            collection_metadata={"embedding_model": self.model},
            collection_configuration=collection_configuration(),
            create_collection_if_not_exists=writable,
        )
        self.manifest: Manifest | None = None
        if writable:  # a writer always has its manifest
            self.manifest = Manifest(settings.index_dir, settings.collection)
            claim(self.client, self.collection, self.manifest, settings)
        else:
            self.manifest = self._reader_manifest()
            if not settings.uses_server and self.collection.count() == 0:
                # Chroma's embedded client that met this collection empty keeps failing
                # dense search ("Nothing found on disk") after another process fills it, even
                # in a new client: the next open starts a fresh one (this one keeps its own).
                forget_client(settings)
        self.lexical_side = LexicalSide(self, self.lexical_dir)
        self._documents: tuple[int, list[DocRecord]] | None = None
        self._publishers: tuple[int, frozenset[str]] | None = None

    def _check_built(self, built: dict[str, Any] | None, writable: bool) -> None:
        """Refuse a collection built with another embedding model (torch and fp32 ONNX are
        one: ``same_vectors``), and a missing one to a reader (``built``: the collection's
        metadata, None when there is none)."""
        settings = self.settings
        where = settings.chroma_location
        recorded = None if built is None else built.get("embedding_model")
        if recorded is not None and same_vectors(str(recorded), self.model):
            self.model = str(recorded)  # what the collection and its chunk fingerprints say
        elif built is not None:
            raise IndexMismatchError(
                f"index {where} (collection {settings.collection!r}) was built with "
                f"embedding model {built.get('embedding_model')!r}, but settings ask for "
                f"{self.model!r}: set DOCQA_EMBEDDING_MODEL (--embedding-model) to the model "
                "that built it, rebuild it with --reset or use another --index-dir"
                + (" or --collection" if settings.uses_server else "")
            )
        if built is None and not writable:
            server_flags = (
                f"--chroma-host {settings.chroma_host} --chroma-port {settings.chroma_port} "
                if settings.uses_server
                else ""
            )
            raise IndexMissingError(
                f"no collection {settings.collection!r} in {where}: run "
                f"'python -m ingest {server_flags}seeds/' to build it"
            )

    def _reader_manifest(self) -> Manifest | None:
        """A reader's manifest. A reader of a server may have none here (the manifest lives
        on the machine that ingests), or one that describes another collection: then it
        reads what it needs from the collection itself."""
        settings = self.settings
        if not Manifest.exists(settings.index_dir, settings.collection):
            return None
        manifest = Manifest(settings.index_dir, settings.collection, read_only=True)
        if not self.settings.uses_server or describes(manifest, self.collection_id):
            return manifest
        manifest.close()
        return None

    @property
    def collection_id(self) -> str:
        return str(self.collection.id)

    @guarded()
    def published_generation(self) -> int | None:
        """The generation recorded in the collection by the last committing run."""
        value = current_metadata(self.client, self.settings.collection).get(GENERATION_KEY)
        return None if value is None else int(value)

    @guarded(writing=True)
    def publish_generation(self) -> None:
        """Record the manifest generation in the collection, so readers elsewhere (with
        another index_dir, or none) know when to rebuild their BM25 index."""
        assert self.manifest is not None, "only a writer publishes"
        generation = self.manifest.generation()
        if self.published_generation() != generation:
            update_metadata(self.client, self.collection, {GENERATION_KEY: generation})

    # ---- the BM25 side
    @property
    def lexical_dir(self) -> Path:
        base = self.settings.index_dir / "bm25" / self.settings.collection
        # On a server, a recreated collection restarts its generations: key by its id too.
        return base / self.collection_id if self.settings.uses_server else base

    @guarded()
    def lexical(self) -> LexicalIndex:
        """The BM25 index for the current generation (see ``LexicalSide.current``)."""
        return self.lexical_side.current()

    def ingest_running(self) -> bool:
        """Whether an ingest run holds this index folder's ``write_lock`` (any process)."""
        return ingest_running(self.settings.index_dir)

    @guarded()
    def sync_lexical(
        self, generation: int | None = None, base: LexicalIndex | None = None
    ) -> LexicalIndex:
        return self.lexical_side.sync(generation, base=base)

    @guarded(writing=True)
    def update_lexical(
        self, added: Iterable[tuple[str, str]], removed: Iterable[str], since: int
    ) -> LexicalIndex:
        """Apply a writer's own changes to the BM25 side (see ``LexicalSide.update``)."""
        return self.lexical_side.update(added, removed, since)

    @guarded()
    def rebuild_lexical(self, generation: int | None = None) -> LexicalIndex:
        return self.lexical_side.rebuild(generation)

    @guarded()
    def lexical_search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.lexical().search(query, k)

    # ---- writing
    @guarded(writing=True)
    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Write chunks whose vectors are already computed (the pipeline embeds them itself
        so it can batch the model and the database differently)."""
        self.collection.upsert(ids=ids, embeddings=embeddings, documents=texts, metadatas=metadatas)

    @guarded(writing=True)
    def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Replace the metadata of stored chunks, keeping their text and vectors."""
        for a in _batches(len(ids)):
            self.collection.update(ids=ids[a : a + ID_BATCH], metadatas=metadatas[a : a + ID_BATCH])

    @guarded(writing=True)
    def delete(self, ids: list[str]) -> None:
        for a in _batches(len(ids)):
            self.collection.delete(ids=ids[a : a + ID_BATCH])

    # ---- reading
    @guarded()
    def existing(self, ids: list[str]) -> set[str]:
        """Those of ``ids`` the collection holds."""
        found: set[str] = set()
        for a in _batches(len(ids)):
            found.update(self.collection.get(ids=ids[a : a + ID_BATCH], include=[])["ids"])
        return found

    @guarded()
    def count(self) -> int:
        return self.collection.count()

    @guarded()
    def generation(self) -> int:
        """A counter that changes whenever the indexed chunks change (BM25 is keyed on it).

        Embedded: the manifest's. Server: the one recorded in the collection, so a reader
        with another (or no) index_dir follows what the server holds."""
        if self.settings.uses_server:
            published = self.published_generation()
            if published is not None:
                return published
        return self.manifest.generation() if self.manifest is not None else 0

    @guarded()
    def documents(self) -> list[DocRecord]:
        if self.manifest is None:  # a reader of a server: from the chunks' metadata, once
            generation = self.generation()  # per generation (6 s at 100k chunks with texts)
            if self._documents is None or self._documents[0] != generation:
                found = documents_from_chunks(self.iter_chunks(text=False))
                self._documents = (generation, found)
            records = list(self._documents[1])
        else:
            records = list(self.manifest.documents().values())
        return sorted(records, key=lambda r: (r.root, r.source))

    @guarded()
    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        """Dense search: documents with cosine similarity (higher is closer)."""
        total = self.count()
        if total == 0:
            return []
        hits = self.vectorstore.similarity_search_with_score(query, k=min(k, total))
        return [(doc, 1.0 - float(dist)) for doc, dist in hits]

    @guarded()
    def get(self, ids: list[str]) -> list[StoredChunk]:
        by_id = {}
        for a in _batches(len(ids)):
            got = self.collection.get(ids=ids[a : a + ID_BATCH], include=["documents", "metadatas"])
            by_id.update(
                (i, StoredChunk(i, d, m or {}))
                for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            )
        return [by_id[i] for i in ids if i in by_id]

    @guarded()
    def publishers(self) -> frozenset[str]:
        """The sources named in the documents' headers ("TechCrunch"), read from each
        document's first chunk once per generation."""
        generation = self.generation()
        if self._publishers is None or self._publishers[0] != generation:
            got = self.collection.get(where={"chunk_index": 0}, include=["metadatas"])
            found = frozenset(
                str(m["publisher"]) for m in got["metadatas"] if m and m.get("publisher")
            )
            self._publishers = (generation, found)
        return self._publishers[1]

    @guarded()
    def document_chunks(self, source: str, root: str | None = None) -> list[StoredChunk]:
        """Every chunk of one document (``source`` as stored, under ``root`` when given), in
        document order."""
        where: dict[str, Any] = {"source": source}
        if root:
            where = {"$and": [{"source": source}, {"root": root}]}
        got = self.collection.get(where=where, include=["documents", "metadatas"])
        chunks = [
            StoredChunk(i, d, m or {})
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]
        return sorted(chunks, key=lambda c: int(c.metadata.get("start", 0)))

    @guarded()
    def iter_chunks(self, page: int = PAGE, *, text: bool = True) -> Iterator[StoredChunk]:
        """Every chunk in the collection, a page at a time (``text=False``: metadata only,
        the text left empty)."""
        offset = 0
        include = ["documents", "metadatas"] if text else ["metadatas"]
        while True:
            got = self.collection.get(include=include, limit=page, offset=offset)
            texts = got["documents"] if text else [""] * len(got["ids"])
            for i, d, m in zip(got["ids"], texts, got["metadatas"], strict=True):
                yield StoredChunk(i, d, m or {})
            if len(got["ids"]) < page:
                return
            offset += page

    @guarded()
    def all_ids(self, page: int = 20000) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)
            ids.update(got["ids"])
            if len(got["ids"]) < page:
                return ids
            offset += page

    def close(self) -> None:
        if self.manifest is not None:
            self.manifest.close()


def documents_from_chunks(chunks: Iterable[StoredChunk]) -> list[DocRecord]:
    """Documents as the chunk metadata describes them, for a reader without the manifest.

    Size, mtime, fingerprint and ingest time are not stored per chunk: they read 0 / ''."""
    grouped: dict[str, list[StoredChunk]] = {}
    for chunk in chunks:
        key = doc_key(str(chunk.metadata.get("root", "")), str(chunk.metadata.get("source", "")))
        grouped.setdefault(key, []).append(chunk)
    records = []
    for key, group in grouped.items():
        group.sort(key=lambda c: int(c.metadata.get("chunk_index", 0)))
        meta = group[0].metadata
        records.append(
            DocRecord(
                doc_key=key,
                root=str(meta.get("root", "")),
                source=str(meta.get("source", "")),
                content_hash=str(meta.get("content_hash", "")),
                fingerprint="",
                size=0,
                mtime_ns=0,
                title=str(meta.get("title", "")),
                date=meta.get("date"),
                chunk_ids=tuple(c.id for c in group),
                ingested_at=0.0,
            )
        )
    return records


def missing_message(settings: IngestSettings) -> str:
    """Why there is nothing to read at ``settings``' embedded index, and how to build it."""
    if settings.collection == DEFAULT_COLLECTION:
        return (
            f"no index at {settings.index_dir}: run 'python -m ingest seeds/' "
            "(or 'make run') to build it"
        )
    return (
        f"no collection {settings.collection!r} in {settings.index_dir}: run 'python -m "
        f"ingest --collection {settings.collection} DIR' to build it"
    )


def open_index(settings: IngestSettings, embeddings: Embeddings | None = None) -> DocIndex:
    """Open an existing index for reading (raises IndexMissingError / IndexMismatchError)."""
    return DocIndex(settings, writable=False, embeddings=embeddings)

"""The index: a Chroma collection (via langchain-chroma) plus the manifest beside it.

The collection is embedded in ``index_dir`` or, when ``chroma_host`` is set, on a Chroma
server. The manifest and the BM25 index always stay in the local ``index_dir``; the collection
metadata records which manifest maintains it and the generation of its last committing run.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings
from ingest.context import document_context
from ingest.embeddings import LazyEmbeddings, model_identity
from ingest.lexical import LexicalIndex
from ingest.manifest import DocRecord, Manifest, doc_key

if TYPE_CHECKING:
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)

CHROMA_SUBDIR = "chroma"
CONNECT_TIMEOUT_S = 5.0
# Keys of the collection metadata (besides "embedding_model") and of the manifest's meta table.
WRITE_LOCK = "ingest.lock"  # in index_dir: held (flock) by the ingest run writing to it
GENERATION_KEY = "docqa_generation"  # the manifest generation of the last committing run
OWNER_KEY = "docqa_manifest_id"  # the manifest (the ingesting index_dir) that maintains it
MANIFEST_ID = "manifest_id"
MANIFEST_COLLECTION = "collection_id"  # the Chroma collection id the manifest describes


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


def lexical_text(context: str, text: str) -> str:
    """What BM25 indexes for a chunk: its document's context line (``document_context``:
    title | publisher | date), then its text. The writer and the readers both use this."""
    return f"{context}\n{text}" if context else text


def stored_context(metadata: dict[str, Any]) -> str:
    """A chunk's context line from its metadata: the writer renders it from the metadata it
    stores, readers from the metadata they read, so both get the same line. A title that is
    only the text's first sentence (``title_is_excerpt``) is left out."""
    title = None if metadata.get("title_is_excerpt") else metadata.get("title")
    return document_context(title, metadata.get("publisher"), metadata.get("date"))


def _stored_lexical_text(chunk: StoredChunk) -> str:
    return lexical_text(stored_context(chunk.metadata), chunk.text)


@contextmanager
def write_lock(index_dir: Path) -> Iterator[None]:
    """Held (flock) by the ingest run writing to ``index_dir``: one writer at a time.

    Readers probe it with a shared lock held for microseconds (``DocIndex.ingest_running``):
    the writer retries briefly, so only another writer makes this fail."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / WRITE_LOCK, "w") as fh:
        deadline = time.monotonic() + 0.5
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IngestError(
                        f"another ingest is writing to {index_dir}; try again when it ends"
                    ) from None
                time.sleep(0.01)
        yield


def chroma_client(settings: IngestSettings) -> Any:
    """A Chroma client with telemetry off: embedded in ``index_dir``, or a server's when
    ``chroma_host`` is set (raises IngestError, one line naming host:port, if it does not
    answer)."""
    import chromadb
    from chromadb.config import Settings

    chroma_settings = Settings(anonymized_telemetry=False)
    if not settings.uses_server:
        return chromadb.PersistentClient(
            path=str(Path(settings.index_dir) / CHROMA_SUBDIR), settings=chroma_settings
        )
    where = settings.chroma_location
    # Chroma's HTTP client waits without a timeout: a plain connect with one fails fast.
    try:
        with socket.create_connection(
            (settings.chroma_host, settings.chroma_port), timeout=CONNECT_TIMEOUT_S
        ):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise IngestError(
            f"cannot reach the Chroma server at {where} ({reason}): start it with "
            f"'chroma run --path DIR --host {settings.chroma_host} --port "
            f"{settings.chroma_port}' or fix --chroma-host/--chroma-port"
        ) from None
    try:
        return chromadb.HttpClient(
            host=settings.chroma_host, port=settings.chroma_port, settings=chroma_settings
        )
    except Exception as exc:  # chromadb raises ValueError (or an HTTP error) here
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise IngestError(f"the Chroma server at {where} did not answer: {reason}") from None


def _get_collection(client: Any, name: str) -> Any | None:
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name)
    except (NotFoundError, ValueError):  # ValueError in older releases
        return None


def _collection_metadata(client: Any, name: str) -> dict[str, Any] | None:
    collection = _get_collection(client, name)
    return None if collection is None else dict(collection.metadata or {})


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
        where = settings.chroma_location
        if not writable and not settings.uses_server and not Manifest.exists(index_dir):
            raise IndexMissingError(
                f"no index at {index_dir}: run 'python -m ingest seeds/' "
                "(or 'make run') to build it"
            )
        self.client = chroma_client(settings)
        found = _get_collection(self.client, settings.collection)
        built = None if found is None else dict(found.metadata or {})
        if built is not None and built.get("embedding_model") != self.model:
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
        self.embeddings = embeddings or LazyEmbeddings(
            settings.embedding_model, onnx_cache_dir=settings.onnx_cache_dir
        )
        self.vectorstore: Chroma = Chroma(
            client=self.client,
            collection_name=settings.collection,
            embedding_function=self.embeddings,
            collection_metadata={"embedding_model": self.model},
            collection_configuration={"hnsw": {"space": "cosine"}},
            create_collection_if_not_exists=writable,
        )
        # A writer always has its manifest. A reader of a server may have none here (the
        # manifest lives on the machine that ingests), or one that describes another
        # collection: then it reads what it needs from the collection itself.
        self.manifest: Manifest | None = None
        if writable:
            self.manifest = Manifest(index_dir)
            self._claim()
        elif Manifest.exists(index_dir):
            manifest = Manifest(index_dir, read_only=True)
            if not settings.uses_server or self._describes_collection(manifest):
                self.manifest = manifest
            else:
                manifest.close()
        self._lexical: LexicalIndex | None = None
        self._documents: tuple[int, list[DocRecord]] | None = None
        self._publishers: tuple[int, frozenset[str]] | None = None

    @property
    def collection_id(self) -> str:
        return str(self.vectorstore._collection.id)

    def _describes_collection(self, manifest: Manifest) -> bool:
        return manifest.get_meta(MANIFEST_COLLECTION) == self.collection_id

    def _claim(self) -> None:
        """Tie the manifest and the collection to each other, refusing a manifest that
        describes another collection or a collection another manifest maintains: the
        orphan sweep would otherwise delete chunks this manifest does not know."""
        assert self.manifest is not None
        manifest, settings = self.manifest, self.settings
        where = f"collection {settings.collection!r} in {settings.chroma_location}"
        manifest_id = manifest.get_meta(MANIFEST_ID) or uuid.uuid4().hex
        described = manifest.get_meta(MANIFEST_COLLECTION)
        owner = self._collection_meta().get(OWNER_KEY)
        if owner is not None and owner != manifest_id:
            raise IndexMismatchError(
                f"{where} is maintained from another index dir (manifest {owner}), not "
                f"{settings.index_dir} (manifest {manifest_id}): ingest from that one, or "
                "take the collection over with --reset"
            )
        legacy = described is None and settings.uses_server and manifest.documents()
        if (described is not None and described != self.collection_id) or legacy:
            raise IndexMismatchError(
                f"the manifest in {settings.index_dir} describes another collection than "
                f"{where} (id {self.collection_id}): rebuild with --reset or use another "
                "--index-dir"
            )
        if described is None:
            manifest.set_meta(MANIFEST_ID, manifest_id)
            manifest.set_meta(MANIFEST_COLLECTION, self.collection_id)
        if owner is None:
            self._modify_metadata({OWNER_KEY: manifest_id})

    def _collection_meta(self) -> dict[str, Any]:
        """The collection's metadata as the store holds it now (not a cached copy)."""
        found = _get_collection(self.client, self.settings.collection)
        return {} if found is None else dict(found.metadata or {})

    def _modify_metadata(self, changes: dict[str, Any]) -> None:
        """Set some collection metadata keys, keeping the others (embedding_model...)."""
        metadata = {**self._collection_meta(), **changes}
        self.vectorstore._collection.modify(metadata=metadata)

    def published_generation(self) -> int | None:
        """The generation recorded in the collection by the last committing run."""
        value = self._collection_meta().get(GENERATION_KEY)
        return None if value is None else int(value)

    def publish_generation(self) -> None:
        """Record the manifest generation in the collection, so readers elsewhere (with
        another index_dir, or none) know when to rebuild their BM25 index."""
        assert self.manifest is not None, "only a writer publishes"
        generation = self.manifest.generation()
        if self.published_generation() != generation:
            self._modify_metadata({GENERATION_KEY: generation})

    @property
    def lexical_dir(self) -> Path:
        base = self.settings.index_dir / "bm25" / self.settings.collection
        # On a server, a recreated collection restarts its generations: key by its id too.
        return base / self.collection_id if self.settings.uses_server else base

    def lexical(self) -> LexicalIndex:
        """The BM25 index for the current generation: kept in memory, reloaded (new segments
        only) when a writer has saved a newer one, else brought up to date from the store."""
        generation = self.generation()
        current = self._lexical
        if current is None or current.generation != generation:
            loaded = LexicalIndex.load(self.lexical_dir, previous=current)
            if loaded is None or loaded.generation != generation:
                base = loaded or current
                if base is not None and self.ingest_running():
                    # An ingest here commits wave by wave and saves BM25 when it ends: keep
                    # the last state meanwhile instead of chasing each wave.
                    self._lexical = base
                    return base
                loaded = self.sync_lexical(generation, base=base)
            self._lexical = loaded
        return self._lexical

    def ingest_running(self) -> bool:
        """Whether an ingest run holds this index folder's ``write_lock`` (any process)."""
        try:
            with open(self.settings.index_dir / WRITE_LOCK, "a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(fh, fcntl.LOCK_UN)
                return False
        except OSError:
            return False

    def sync_lexical(
        self, generation: int | None = None, base: LexicalIndex | None = None
    ) -> LexicalIndex:
        """Bring ``base`` (any earlier state) in step with the collection by chunk-id
        difference: a chunk id names its text, so only the ids need listing and only new
        chunks reading. Without a base, or when most chunks changed, build it whole."""
        generation = self.generation() if generation is None else generation
        have = self.all_ids()
        live = base.live_ids() if base is not None else set()
        if base is None or len(have - live) > len(have) // 2:
            return self.rebuild_lexical(generation)
        new, gone = sorted(have - live), live - have
        logger.info(
            "updating the BM25 index to generation %d: +%d -%d chunks",
            generation,
            len(new),
            len(gone),
        )
        added = (
            (c.id, _stored_lexical_text(c))
            for start in range(0, len(new), 5000)
            for c in self.get(new[start : start + 5000])
        )
        return self._keep_lexical(base.updated(added, gone, generation))

    def update_lexical(
        self, added: Iterable[tuple[str, str]], removed: Iterable[str], since: int
    ) -> LexicalIndex:
        """Apply a writer's own changes (chunk id + BM25 text added, ids removed) to the BM25
        index it left at generation ``since``; any other starting point is synced instead."""
        generation = self.generation()
        base = self._lexical if self._lexical is not None else LexicalIndex.load(self.lexical_dir)
        if base is None and since == 0:
            base = LexicalIndex.build((), 0)
        if base is None or base.generation != since:
            return self.sync_lexical(generation, base=base)
        updated = base.updated(added, removed, generation)
        stored = self.count()
        if len(updated) != stored:
            logger.warning(
                "BM25 index holds %d chunks, the collection %d: resyncing", len(updated), stored
            )
            return self.sync_lexical(generation, base=updated)
        return self._keep_lexical(updated)

    def rebuild_lexical(self, generation: int | None = None) -> LexicalIndex:
        generation = self.generation() if generation is None else generation
        logger.info("building the BM25 index (generation %d)", generation)
        return self._keep_lexical(
            LexicalIndex.build(
                ((c.id, _stored_lexical_text(c)) for c in self.iter_chunks()), generation
            )
        )

    def _keep_lexical(self, lexical: LexicalIndex) -> LexicalIndex:
        try:
            lexical.save(self.lexical_dir)
        except OSError as exc:  # a read-only index folder: keep it in memory only
            logger.warning("could not save the BM25 index to %s: %s", self.lexical_dir, exc)
        self._lexical = lexical
        return lexical

    def lexical_search(self, query: str, k: int) -> list[tuple[str, float]]:
        return self.lexical().search(query, k)

    # ---- reading
    def upsert(
        self,
        ids: list[str],
        embeddings: list[list[float]],
        texts: list[str],
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Write chunks whose vectors are already computed (the pipeline embeds them itself
        so it can batch the model and the database differently)."""
        self.vectorstore._collection.upsert(
            ids=ids, embeddings=embeddings, documents=texts, metadatas=metadatas
        )

    def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        """Replace the metadata of stored chunks, keeping their text and vectors."""
        self.vectorstore._collection.update(ids=ids, metadatas=metadatas)

    def count(self) -> int:
        return self.vectorstore._collection.count()

    def generation(self) -> int:
        """A counter that changes whenever the indexed chunks change (BM25 is keyed on it).

        Embedded: the manifest's. Server: the one recorded in the collection, so a reader
        with another (or no) index_dir follows what the server holds."""
        if self.settings.uses_server:
            published = self.published_generation()
            if published is not None:
                return published
        return self.manifest.generation() if self.manifest is not None else 0

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

    def search(self, query: str, k: int) -> list[tuple[Document, float]]:
        """Dense search: documents with cosine similarity (higher is closer)."""
        total = self.count()
        if total == 0:
            return []
        hits = self.vectorstore.similarity_search_with_score(query, k=min(k, total))
        return [(doc, 1.0 - float(dist)) for doc, dist in hits]

    def get(self, ids: list[str]) -> list[StoredChunk]:
        got = self.vectorstore.get(ids=ids, include=["documents", "metadatas"])
        by_id = {
            i: StoredChunk(i, d, m or {})
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def publishers(self) -> frozenset[str]:
        """The sources named in the documents' headers ("TechCrunch"), read from each
        document's first chunk once per generation."""
        generation = self.generation()
        if self._publishers is None or self._publishers[0] != generation:
            got = self.vectorstore.get(where={"chunk_index": 0}, include=["metadatas"])
            found = frozenset(
                str(m["publisher"]) for m in got["metadatas"] if m and m.get("publisher")
            )
            self._publishers = (generation, found)
        return self._publishers[1]

    def document_chunks(self, source: str, root: str | None = None) -> list[StoredChunk]:
        """Every chunk of one document (``source`` as stored, under ``root`` when given), in
        document order."""
        where: dict[str, Any] = {"source": source}
        if root:
            where = {"$and": [{"source": source}, {"root": root}]}
        got = self.vectorstore.get(where=where, include=["documents", "metadatas"])
        chunks = [
            StoredChunk(i, d, m or {})
            for i, d, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]
        return sorted(chunks, key=lambda c: int(c.metadata.get("start", 0)))

    def iter_chunks(self, page: int = 5000, *, text: bool = True) -> Iterator[StoredChunk]:
        """Every chunk in the collection, a page at a time (``text=False``: metadata only,
        the text left empty)."""
        offset = 0
        include = ["documents", "metadatas"] if text else ["metadatas"]
        while True:
            got = self.vectorstore.get(include=include, limit=page, offset=offset)
            texts = got["documents"] if text else [""] * len(got["ids"])
            for i, d, m in zip(got["ids"], texts, got["metadatas"], strict=True):
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


def open_index(settings: IngestSettings, embeddings: Embeddings | None = None) -> DocIndex:
    """Open an existing index for reading (raises IndexMissingError / IndexMismatchError)."""
    return DocIndex(settings, writable=False, embeddings=embeddings)

"""The collections docqa built in an index (embedded, or on a Chroma server): list them with
their counts, and delete one with everything kept beside it (manifest, BM25, layouts)."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.collection import CHROMA_SUBDIR, chroma_client
from ingest.config import IngestSettings
from ingest.damage import CHROMA_DB, guard
from ingest.errors import IngestError
from ingest.lock import write_lock
from ingest.manifest import COLLECTIONS_DIR, DEFAULT_COLLECTION, Manifest, manifest_path
from ingest.recovery import drop_index

logger = logging.getLogger(__name__)

BUILT_KEY = "embedding_model"  # every collection docqa creates records its model under this


class UnknownCollectionError(IngestError):
    """A collection named that this index does not hold."""


@dataclass(frozen=True)
class CollectionInfo:
    """One collection of the index: its name, documents (None when this index dir holds no
    manifest of it, e.g. a server collection ingested elsewhere), chunks and model."""

    name: str
    documents: int | None
    chunks: int
    embedding_model: str

    def describe(self) -> str:
        docs = "? documents" if self.documents is None else _plural(self.documents, "document")
        return f"{self.name}: {docs}, {_plural(self.chunks, 'chunk')} ({self.embedding_model})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def collection_models(settings: IngestSettings) -> dict[str, str]:
    """The collections docqa built in ``settings``' index (those recording an embedding
    model) with that model, by name; empty when there is no index yet. Reads no counts."""
    return {name: str(metadata[BUILT_KEY]) for name, metadata, _ in _built(settings)}


def list_collections(settings: IngestSettings) -> list[CollectionInfo]:
    """The collections docqa built in ``settings``' index with their counts, by name; empty
    when there is no index yet. Only the index and collection fields of ``settings``
    matter."""
    with guard(settings):
        return [
            CollectionInfo(
                name=name,
                documents=_documents(settings.replace(collection=name)),
                chunks=collection.count(),
                embedding_model=str(metadata[BUILT_KEY]),
            )
            for name, metadata, collection in _built(settings)
        ]


def _built(settings: IngestSettings) -> list[tuple[str, dict[str, Any], Any]]:
    """(name, metadata, Chroma collection) of each collection docqa built, by name."""
    if not settings.uses_server and not (settings.index_dir / CHROMA_SUBDIR / CHROMA_DB).exists():
        return []
    with guard(settings):
        found = [
            (c.name, dict(c.metadata or {}), c) for c in chroma_client(settings).list_collections()
        ]
    return sorted((f for f in found if BUILT_KEY in f[1]), key=lambda f: f[0])


def manifest_files(index_dir: Path) -> dict[str, Path]:
    """Each collection's manifest file in ``index_dir`` (the record of which documents, from
    which folders, it holds), by collection name: what a backup copies."""
    found = {}
    if manifest_path(index_dir, DEFAULT_COLLECTION).is_file():
        found[DEFAULT_COLLECTION] = manifest_path(index_dir, DEFAULT_COLLECTION)
    base = Path(index_dir) / COLLECTIONS_DIR
    for folder in sorted(base.iterdir()) if base.is_dir() else ():
        if manifest_path(index_dir, folder.name).is_file():
            found[folder.name] = manifest_path(index_dir, folder.name)
    return found


def indexed_folders(settings: IngestSettings) -> set[str]:
    """The folders the documents of ``settings``' collection were ingested from (the roots
    its manifest records); empty when this index dir holds no readable manifest of it."""
    if not Manifest.exists(settings.index_dir, settings.collection):
        return set()
    try:
        manifest = Manifest(settings.index_dir, settings.collection, read_only=True)
        try:
            return {record.root for record in manifest.documents().values()}
        finally:
            manifest.close()
    except sqlite3.Error as exc:
        logger.debug("cannot read the folders of %s: %s", settings.collection, exc)
        return set()


def _documents(settings: IngestSettings) -> int | None:
    """How many documents the collection's manifest records; None when there is none here,
    or it cannot be read now (an ingest is creating it; a damaged one is --check's to say)."""
    if not Manifest.exists(settings.index_dir, settings.collection):
        return None
    try:
        manifest = Manifest(settings.index_dir, settings.collection, read_only=True)
        try:
            return len(manifest.documents())
        finally:
            manifest.close()
    except sqlite3.Error as exc:
        logger.debug("cannot count the documents of %s: %s", settings.collection, exc)
        return None


def delete_collection(settings: IngestSettings) -> None:
    """Drop the collection ``settings.collection``: its Chroma collection, manifest, BM25
    index and layouts, under the index's write lock. Other collections are untouched; the
    documents themselves are never touched. Raises ``UnknownCollectionError`` naming the
    collections there are when this index has no such collection."""
    name = settings.collection
    with write_lock(settings.index_dir):
        known = list(collection_models(settings))
        here = Manifest.exists(settings.index_dir, name)
        if name not in known and not here:
            raise UnknownCollectionError(
                f"no collection {name!r} in {settings.chroma_location}; the collections "
                f"are: {', '.join(known) or 'none'}"
            )
        drop_index(settings)
        shutil.rmtree(settings.index_dir / "bm25" / name, ignore_errors=True)
        shutil.rmtree(settings.index_dir / "layout" / name, ignore_errors=True)
        own = manifest_path(settings.index_dir, name).parent
        if own.parent.name == COLLECTIONS_DIR:
            try:
                own.rmdir()  # kept when a damaged manifest was moved aside in it
            except OSError:
                logger.debug("kept %s", own)
    logger.info("deleted collection %s from %s", name, settings.chroma_location)

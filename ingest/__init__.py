"""Ingest: documents → token-bounded chunks with provenance → embeddings → Chroma.

``ingest`` owns the index (embedding model, Chroma collection, reingest state); the chatbot
reads it through ``open_index``.
"""

from __future__ import annotations

from ingest.catalog import (
    CollectionInfo,
    UnknownCollectionError,
    delete_collection,
    indexed_folders,
    list_collections,
    manifest_files,
)
from ingest.config import IngestSettings, SettingsError, set_offline_env
from ingest.errors import (
    IndexDamagedError,
    IndexMismatchError,
    IndexMissingError,
    IndexUnavailableError,
    IndexWriteError,
    IngestError,
    LoadError,
)
from ingest.formats import SUPPORTED_EXTENSIONS, render_page
from ingest.layout import DocLayout, read_layout
from ingest.loaders import LoadedDocument, load_document
from ingest.manifest import DocRecord
from ingest.pipeline import (
    EXIT_NOTHING_DONE,
    EXIT_OK,
    EXIT_PARTIAL,
    IngestReport,
    ingest_paths,
    reset_index,
)
from ingest.plan import Plan
from ingest.store import DocIndex, StoredChunk, open_index

__all__ = [
    "EXIT_NOTHING_DONE",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "SUPPORTED_EXTENSIONS",
    "CollectionInfo",
    "DocIndex",
    "DocLayout",
    "DocRecord",
    "IndexDamagedError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexUnavailableError",
    "IndexWriteError",
    "IngestError",
    "IngestReport",
    "IngestSettings",
    "LoadError",
    "LoadedDocument",
    "Plan",
    "SettingsError",
    "StoredChunk",
    "UnknownCollectionError",
    "delete_collection",
    "indexed_folders",
    "ingest_paths",
    "list_collections",
    "load_document",
    "manifest_files",
    "open_index",
    "read_layout",
    "render_page",
    "reset_index",
    "set_offline_env",
]

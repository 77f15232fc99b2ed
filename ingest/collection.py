"""Chroma clients and collections: embedded in ``index_dir`` or on a Chroma server, with
telemetry off and cosine space; and what the collection metadata records besides the
embedding model: the manifest that maintains it and the generation of its last committing
run."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

from ingest.config import IngestSettings
from ingest.errors import IndexMismatchError, IngestError
from ingest.manifest import Manifest

CHROMA_SUBDIR = "chroma"
CONNECT_TIMEOUT_S = 5.0
# Keys of the collection metadata (besides "embedding_model") and of the manifest's meta table.
GENERATION_KEY = "docqa_generation"  # the manifest generation of the last committing run
OWNER_KEY = "docqa_manifest_id"  # the manifest (the ingesting index_dir) that maintains it
MANIFEST_ID = "manifest_id"
MANIFEST_COLLECTION = "collection_id"  # the Chroma collection id the manifest describes


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


def collection_configuration() -> dict[str, Any]:
    """How every collection is created: HNSW over cosine distance (a new dict each call)."""
    return {"hnsw": {"space": "cosine"}}


def get_collection(client: Any, name: str) -> Any | None:
    """The collection ``name``, or None when the store has none by that name."""
    from chromadb.errors import NotFoundError

    try:
        return client.get_collection(name)
    except (NotFoundError, ValueError):  # ValueError in older releases
        return None


def create_collection(client: Any, name: str, model: str) -> Any:
    """The collection ``name``, created (recording ``model``) when it does not exist yet.

    With no embedding function of Chroma's: we always give it vectors (Chroma's default one
    would try to download a model)."""
    return client.get_or_create_collection(
        name=name,
        embedding_function=None,
        metadata={"embedding_model": model},
        configuration=collection_configuration(),
    )


def current_metadata(client: Any, name: str) -> dict[str, Any]:
    """The collection's metadata as the store holds it now (not a cached copy)."""
    found = get_collection(client, name)
    return {} if found is None else dict(found.metadata or {})


def update_metadata(client: Any, collection: Any, changes: dict[str, Any]) -> None:
    """Set some collection metadata keys, keeping the others (embedding_model...)."""
    metadata = {**current_metadata(client, collection.name), **changes}
    collection.modify(metadata=metadata)


def describes(manifest: Manifest, collection_id: str) -> bool:
    """Whether ``manifest`` is the record of the collection ``collection_id``."""
    return manifest.get_meta(MANIFEST_COLLECTION) == collection_id


def claim(client: Any, collection: Any, manifest: Manifest, settings: IngestSettings) -> None:
    """Tie the manifest and the collection to each other, refusing a manifest that
    describes another collection or a collection another manifest maintains: the
    orphan sweep would otherwise delete chunks this manifest does not know."""
    collection_id = str(collection.id)
    where = f"collection {settings.collection!r} in {settings.chroma_location}"
    manifest_id = manifest.get_meta(MANIFEST_ID) or uuid.uuid4().hex
    described = manifest.get_meta(MANIFEST_COLLECTION)
    owner = current_metadata(client, settings.collection).get(OWNER_KEY)
    if owner is not None and owner != manifest_id:
        raise IndexMismatchError(
            f"{where} is maintained from another index dir (manifest {owner}), not "
            f"{settings.index_dir} (manifest {manifest_id}): ingest from that one, or "
            "take the collection over with --reset"
        )
    legacy = described is None and settings.uses_server and manifest.documents()
    if (described is not None and described != collection_id) or legacy:
        raise IndexMismatchError(
            f"the manifest in {settings.index_dir} describes another collection than "
            f"{where} (id {collection_id}): rebuild with --reset or use another "
            "--index-dir"
        )
    if described is None:
        manifest.set_meta(MANIFEST_ID, manifest_id)
        manifest.set_meta(MANIFEST_COLLECTION, collection_id)
    if owner is None:
        update_metadata(client, collection, {OWNER_KEY: manifest_id})

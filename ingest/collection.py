"""Chroma clients and collections: embedded in ``index_dir`` or on a Chroma server, with
telemetry off, cosine space and the embedding model recorded in the collection metadata."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from ingest.config import IngestSettings
from ingest.errors import IngestError

CHROMA_SUBDIR = "chroma"
CONNECT_TIMEOUT_S = 5.0


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

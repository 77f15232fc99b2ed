"""The one settings object for the index, built once at each entry point."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.manifest import DEFAULT_COLLECTION
from ingest.ocr import OCR_MODES
from ingest.settings import EnvSettings, SettingsError
from ingest.settings import described as _field

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Chroma's rule for collection names, kept to what is also a safe folder name (the manifest,
# BM25 and layouts of a collection live in folders named after it).
_COLLECTION_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_COLLECTION_SHAPE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_-]{1,61})[A-Za-z0-9]")
DEFAULT_MODEL = "all-MiniLM-L6-v2"
# all-MiniLM-L6-v2 reads 256 tokens; [CLS] and [SEP] take two of them.
MODEL_WINDOW_TOKENS = 254
# How the model runs, chosen by an "onnx-int8:" style prefix of embedding_model: torch
# (sentence-transformers), or ONNX Runtime on a local export of the same weights. Without a
# prefix: "onnx" (fp32, the same vectors as torch's, ~1.7x faster), falling back to torch
# when the export cannot be made.
ONNX_BACKENDS = ("onnx", "onnx-int8")
EMBEDDING_BACKENDS = ("torch", *ONNX_BACKENDS)
DEFAULT_BACKEND = "onnx"
ONNX_CACHE_DIR = PROJECT_ROOT / ".index" / "onnx"

# Variables that keep every library offline and quiet. A user's explicit setting wins.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def set_offline_env(environ: dict[str, str] | None = None) -> None:
    """Set the offline/telemetry variables unless the user already set them."""
    env = os.environ if environ is None else environ
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)


def split_backend(spec: str) -> tuple[str, str]:
    """``"onnx-int8:all-MiniLM-L6-v2"`` -> ``("onnx-int8", "all-MiniLM-L6-v2")``; a spec
    without a backend prefix runs on ``DEFAULT_BACKEND`` (the fake model: on nothing, read
    "torch"). A prefix with a path separator is part of a path (write ``./name:x`` for a
    local folder whose name has a colon)."""
    backend, sep, model = spec.partition(":")
    if not sep or "/" in backend or "\\" in backend or len(backend) == 1:  # 1: a drive "C:"
        return ("torch" if spec.startswith("fake") else DEFAULT_BACKEND), spec
    if backend not in EMBEDDING_BACKENDS:
        raise SettingsError(
            f"embedding_model {spec!r} names an unknown backend {backend!r} "
            f"(supported: {', '.join(EMBEDDING_BACKENDS)})"
        )
    if not model:
        raise SettingsError(f"embedding_model {spec!r} names no model after {backend + ':'!r}")
    if model.startswith("fake") and backend != "torch":
        raise SettingsError(
            f"embedding_model {spec!r}: the fake model has no {backend!r} backend, use 'fake'"
        )
    return backend, model


@dataclass(frozen=True)
class IngestSettings(EnvSettings):
    """Where the index lives and how documents become chunks in it.

    Every field can be overridden by an environment variable ``DOCQA_<FIELD>``
    (e.g. ``DOCQA_INDEX_DIR``) and by the CLI flag of the same name.
    """

    index_dir: Path = _field(PROJECT_ROOT / ".index", "Directory holding the Chroma index.")
    collection: str = _field(
        DEFAULT_COLLECTION,
        "Chroma collection name: each collection is a separate set of documents (with its "
        "own reingest state) in the same index.",
    )
    embedding_model: str = _field(
        DEFAULT_MODEL,
        "Embedding model: 'all-MiniLM-L6-v2' (packaged, offline), a local "
        "sentence-transformers folder, or 'fake' (deterministic, for tests). It runs on ONNX "
        "Runtime (fp32: the same vectors as torch's, ~1.7x faster) from a local export of the "
        "same weights, made once on first use and kept in onnx_cache_dir; torch when that "
        "export fails (one warning). Prefix 'torch:' to run it on torch, 'onnx-int8:' for "
        "int8 (~3x torch's speed; vectors differ slightly, so an index records it apart and "
        "only it reads that index). Torch and 'onnx:' indexes read each other.",
    )
    chunk_size: int = _field(
        128,
        "Maximum chunk length in embedding-model tokens (all-MiniLM-L6-v2 was trained on "
        "128-token inputs; its hard window is 256).",
    )
    chunk_overlap: int = _field(24, "Overlap between neighbouring chunks, in tokens.")
    batch_size: int = _field(64, "Chunks embedded and written per batch.")
    max_file_mb: float = _field(50.0, "Files larger than this (MB) are skipped.")
    max_text_mb: float = _field(
        8.0,
        "Documents whose text passes this (MB, as UTF-8) are skipped: a document is split and "
        "embedded in memory, ~150 MB of memory per MB of text (a 40 MB text file: 6 GB).",
    )
    progress: bool = _field(True, "Show progress bars (only on a terminal).")
    chroma_host: str = _field(
        "",
        "Chroma server host name or address; empty keeps the embedded index in index_dir. "
        "With a server, index_dir still holds the manifest and the BM25 index.",
    )
    chroma_port: int = _field(8000, "Chroma server HTTP port (used when chroma_host is set).")
    ray_address: str = _field(
        "",
        "Run the loading, splitting and embedding of changed documents on a Ray cluster: "
        "'auto' (the cluster this machine belongs to), 'host:port' (its head node's GCS "
        "address) or 'ray://host:port' (Ray Client). Empty: all of it runs here. The "
        "manifest, the plan and the writes stay on this machine either way.",
    )
    ray_workers: int = _field(
        0,
        "Embedding actors on the Ray cluster, one model each (0: one per GPU when the cluster "
        "has GPUs, else one per CPU).",
    )
    ocr: str = _field(
        "auto",
        "OCR of scanned PDF pages and page images (RapidOCR, offline): 'auto' reads a PDF "
        "page by OCR when its text layer is empty or too thin to be real text, 'force' reads "
        "every PDF page by OCR, 'off' never (images are then skipped).",
    )
    onnx_cache_dir: Path = _field(
        ONNX_CACHE_DIR,
        "Where the ONNX backends (the default, 'onnx-int8:') keep the model export they make "
        "on first use (shared by every index; ~90 MB fp32, ~110 MB with int8).",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "index_dir", Path(self.index_dir).expanduser())
        object.__setattr__(self, "onnx_cache_dir", Path(self.onnx_cache_dir).expanduser())
        split_backend(self.embedding_model)
        if self.chunk_size < 16:
            raise SettingsError(f"chunk_size must be at least 16 tokens, got {self.chunk_size}")
        if self.chunk_size > MODEL_WINDOW_TOKENS:
            raise SettingsError(
                f"chunk_size must be at most {MODEL_WINDOW_TOKENS} tokens (the model window "
                f"less its two special tokens), got {self.chunk_size}"
            )
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise SettingsError(
                f"chunk_overlap must be in [0, chunk_size={self.chunk_size}), "
                f"got {self.chunk_overlap}"
            )
        if self.ocr not in OCR_MODES:
            raise SettingsError(f"ocr must be one of {', '.join(OCR_MODES)}, got {self.ocr!r}")
        if self.batch_size < 1:
            raise SettingsError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_file_mb <= 0:
            raise SettingsError(f"max_file_mb must be positive, got {self.max_file_mb}")
        if self.max_text_mb <= 0:
            raise SettingsError(f"max_text_mb must be positive, got {self.max_text_mb}")
        if not _COLLECTION_CHARS.fullmatch(self.collection):
            raise SettingsError(
                f"collection must be letters, digits, '-' or '_', got {self.collection!r}"
            )
        if not _COLLECTION_SHAPE.fullmatch(self.collection):
            raise SettingsError(
                "collection must be 3 to 63 characters and start and end with a letter or "
                f"digit, got {self.collection!r}"
            )

        if self.ray_workers < 0:
            raise SettingsError(
                f"ray_workers must be 0 (automatic) or more, got {self.ray_workers}"
            )
        object.__setattr__(self, "ray_address", self.ray_address.strip())

        host = self.chroma_host.strip()
        object.__setattr__(self, "chroma_host", host)
        if "/" in host or any(c.isspace() for c in host):
            raise SettingsError(
                f"chroma_host must be a host name or address (no scheme, path or spaces), "
                f"got {self.chroma_host!r}"
            )
        if not 1 <= self.chroma_port <= 65535:
            raise SettingsError(f"chroma_port must be in 1..65535, got {self.chroma_port}")

    @property
    def uses_server(self) -> bool:
        """True when the index lives on a Chroma server, not embedded in index_dir."""
        return bool(self.chroma_host)

    @property
    def chroma_location(self) -> str:
        """Where the Chroma data lives, for messages: ``host:port`` or the embedded folder."""
        if self.uses_server:
            host = f"[{self.chroma_host}]" if ":" in self.chroma_host else self.chroma_host
            return f"{host}:{self.chroma_port}"
        return str(self.index_dir)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_text_bytes(self) -> int:
        return int(self.max_text_mb * 1024 * 1024)

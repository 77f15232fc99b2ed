"""ONNX Runtime embeddings: the model exported (and quantised) from its local weights on first
use, cached on disk, then mean-pooled and normalised as sentence-transformers does."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings

from ingest.config import ONNX_BACKENDS, ONNX_CACHE_DIR, SettingsError

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

# Bump when the recipe below would make a different file from the same weights.
EXPORT_VERSION = "1"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_MAX_TOKENS = 256


def check_model(model_dir: Path) -> None:
    """Refuse a sentence-transformers folder whose pooling is not a plain mean over tokens
    (what ``OnnxEmbeddings`` computes), naming the folder and its pooling."""
    pooling = model_dir / "1_Pooling" / "config.json"
    if not pooling.exists():
        return  # a bare transformers folder: sentence-transformers mean-pools it too
    config = json.loads(pooling.read_text(encoding="utf-8"))
    modes = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise SettingsError(
            f"the ONNX embedding backends support mean pooling only, but {model_dir} pools "
            f"with {modes or 'nothing'}: use the torch backend for it"
        )


def cache_key(model_dir: Path) -> str:
    """A short hash of what the exported files depend on: the recipe, the weights (by name,
    size and mtime) and config, and the versions of the libraries that make them."""
    h = hashlib.sha256(f"{EXPORT_VERSION}|{model_dir.resolve()}".encode())
    for path in sorted(model_dir.iterdir()):
        if path.suffix in (".safetensors", ".bin") or path.name == "config.json":
            stat = path.stat()
            h.update(f"|{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    for package in ("torch", "transformers", "onnx", "onnxruntime"):
        try:
            h.update(f"|{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"|{package}=none".encode())
    return h.hexdigest()[:16]


def _require_onnx(backend: str) -> None:
    try:
        import onnx  # noqa: F401  (torch.onnx.export and the quantiser need it)
    except ImportError:
        raise SettingsError(
            f"embedding backend {backend!r} needs the 'onnx' package to export the model "
            "(once): pip install onnx"
        ) from None


@contextmanager
def quiet_export() -> Iterator[None]:
    """Hide the exporter's tracer warnings and the optimizer's and quantiser's chatter (tens
    of INFO lines, some on the root logger, and advice that does not apply here)."""

    def keep(record: logging.LogRecord) -> bool:
        if record.name == __name__:
            return True
        advice = str(record.msg).startswith("Please consider to run pre-processing")
        return record.levelno >= logging.WARNING and not advice

    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(keep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for handler in handlers:
            handler.removeFilter(keep)


def export_model(model_dir: Path, target: Path, attention: str = "eager") -> None:
    """Export the transformer (token embeddings out) to ONNX, dynamic in batch and length.
    Eager attention exports a graph ONNX Runtime can fuse; SDPA's cannot be."""
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    model = transformers.AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation=attention
    ).eval()

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.full((2, 8), 1000, dtype=torch.int64)
    # A padded row, so the trace keeps the masking path (an all-ones mask may be skipped).
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            TokenEmbeddings(model),
            (ids, mask, torch.zeros_like(ids)),
            str(target),
            input_names=list(INPUTS),
            output_names=["token_embeddings"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*INPUTS, "token_embeddings"]},
            opset_version=17,
            dynamo=False,
        )


def fuse_model(source: Path, target: Path, model_dir: Path) -> None:
    """ONNX Runtime's offline BERT fusions: attention, embeddings + LayerNorm, bias + GELU."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model = optimize_model(
        str(source),
        model_type="bert",
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
    )
    logger.debug("fused operators: %s", model.get_fused_operator_statistics())
    model.save_model_to_file(str(target))


def quantize_model(
    source: Path,
    target: Path,
    *,
    weight_type: str = "QInt8",
    per_channel: bool = True,
    op_types: list[str] | None = None,
) -> None:
    """Dynamic quantisation: int8 weights, activations quantised on the fly."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType[weight_type],
        per_channel=per_channel,
        op_types_to_quantize=op_types,
        # The fused (com.microsoft) nodes have no inferred output types; they are float.
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def _remove_abandoned_exports(cache_dir: Path, older_than_s: float = 3600.0) -> None:
    """Work folders of exports killed midway (a running one is minutes old at most)."""
    import shutil

    for work in cache_dir.glob(".export-*"):
        try:
            if time.time() - work.stat().st_mtime > older_than_s:
                shutil.rmtree(work, ignore_errors=True)
        except FileNotFoundError:
            continue


def build_model(model_dir: Path, backend: str, cache_dir: Path) -> Path:
    """The ONNX file for ``backend`` ('onnx': fused fp32; 'onnx-int8': that, quantised per
    channel), made from ``model_dir`` into ``cache_dir`` unless it is there already. Making
    either keeps the fp32 file, so the other one costs at most a quantisation."""
    if backend not in ONNX_BACKENDS:
        raise SettingsError(
            f"ONNX embedding backend must be one of {', '.join(ONNX_BACKENDS)}, got {backend!r}"
        )
    key = cache_key(model_dir)
    fp32, target = cache_dir / f"onnx-{key}.onnx", cache_dir / f"{backend}-{key}.onnx"
    if target.exists():
        return target
    _require_onnx(backend)
    check_model(model_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_exports(cache_dir)
    started = time.perf_counter()
    logger.info(
        "exporting the embedding model to ONNX (%s; once, a few seconds) into %s",
        backend,
        cache_dir,
    )
    # Made in a private folder, then renamed: a concurrent process sees all of a file or none.
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp, quiet_export():
        work = Path(tmp)
        if not fp32.exists():
            export_model(model_dir, work / "eager.onnx")
            fuse_model(work / "eager.onnx", work / "fp32.onnx", model_dir)
            os.replace(work / "fp32.onnx", fp32)
        if backend == "onnx-int8":
            quantize_model(fp32, work / "int8.onnx")
            os.replace(work / "int8.onnx", target)
    logger.info("exported %s in %.1f s", target.name, time.perf_counter() - started)
    return target


def _threads() -> int:
    """Follow torch's thread count when torch is loaded (the chat process pins it), else
    ONNX Runtime's default (0: one thread per physical core)."""
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


class OnnxEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` running a sentence-transformers model (Transformer, mean
    pooling, normalised) with ONNX Runtime on the CPU; the file is made on first use."""

    def __init__(
        self,
        model_dir: Path,
        backend: str = "onnx-int8",
        *,
        cache_dir: Path = ONNX_CACHE_DIR,
        batch_size: int = 32,
        threads: int | None = None,
        model_file: Path | None = None,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if batch_size < 1:
            raise SettingsError(f"batch_size must be at least 1, got {batch_size}")
        self.model_dir = Path(model_dir)
        self.backend = backend
        self.batch_size = batch_size
        # model_file: run that export instead (the benchmark compares recipes).
        self.model_file = model_file or build_model(self.model_dir, backend, Path(cache_dir))
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads() if threads is None else threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.model_file), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        padding = self.tokenizer.padding or {}
        self.tokenizer.enable_truncation(_max_tokens(self.model_dir))
        self.tokenizer.enable_padding(
            pad_id=padding.get("pad_id", 0), pad_token=padding.get("pad_token", "[PAD]")
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit vectors, one row per text, in order."""
        import numpy as np

        vectors: np.ndarray | None = None
        # Longest first, like sentence-transformers, so each batch carries little padding.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            (tokens,) = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            weights = mask[..., None].astype(np.float32)
            pooled = (tokens * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            if vectors is None:
                vectors = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[rows] = pooled / norms
        return vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()


def _max_tokens(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if not config.exists():
        return DEFAULT_MAX_TOKENS
    value = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    return int(value or DEFAULT_MAX_TOKENS)

"""Scale-out ingest: load, split and embed a plan's changed documents on a Ray cluster.

The driver (the machine running ``python -m ingest --ray ADDRESS``) keeps everything that
makes an ingest exact and crash-safe: it plans by difference against its manifest, reads
the changed files, ships their **bytes** to the cluster, and journals, writes and commits
the chunks that come back, wave by wave, through ``ingest.pipeline.apply_plan``. The
cluster runs one Ray Data job per group of documents: a dataset of the documents →
``map_batches`` with an actor pool, one embedding model per actor (a GPU each when the
cluster has GPUs) → chunk ids, texts, offsets and vectors back to the driver.

Why bytes and not a shared path: workers on other machines rarely see the driver's disk,
and a path read twice can change in between; the bytes read once by the planner are the
ones whose hash the manifest records. Why the driver writes: its journal must name a
wave's chunk ids before anything is stored, or a killed run could leave chunks no journal
knows of (the orphan sweep only runs after a run that died with a journal); and on
loopback the driver's writes are not the bottleneck (``bench/ray_ingest_bench.py``).
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings, set_offline_env, split_backend
from ingest.discovery import FoundFile
from ingest.embeddings import LazyEmbeddings, limit_threads, make_embeddings, model_path
from ingest.errors import IngestError, LoadError
from ingest.loaders import LoadedDocument, load_document
from ingest.plan import Deferred, Plan, Work, fingerprint
from ingest.splitter import Chunk, TokenSplitter

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

    from ingest.pipeline import Wave
    from ingest.store import DocIndex

logger = logging.getLogger(__name__)

# Ray's own variables: no usage statistics leave the machine (a user's setting wins).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
SHIP_BYTES = 256 * 2**20  # document bytes one Ray Data job carries, at most
CONNECT_TIMEOUT_S = 5.0
EMBED_BATCH = 32  # what LazyEmbeddings asks make_embeddings for, so the vectors match


@dataclass(frozen=True)
class Task:
    """One document shipped to the cluster."""

    number: int  # its place in the driver's list
    root: str
    path: str  # the driver's path: names the document, never read on a worker
    source: str
    data: bytes
    skip: frozenset[str]  # chunk ids of the stored version: kept, so not embedded again
    fingerprint: str = ""  # the document's chunking fingerprint (``document_fingerprint``)


@dataclass
class Result:
    """What the cluster made of one document: its chunks and ids, and the vectors of those
    not in ``Task.skip``; or the reason it could not be loaded."""

    number: int
    doc: LoadedDocument | None = None
    chunks: list[Chunk] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    vectors: dict[str, list[float]] = field(default_factory=dict)
    error: str = ""


class ChunkEmbedder:
    """A Ray Data actor: loads, splits and embeds documents with one model, made once."""

    def __init__(
        self, settings: IngestSettings, model: str, embeddings: Embeddings | None = None
    ) -> None:
        set_offline_env()
        self.settings = settings
        self.fp = fingerprint(settings, model)
        self.splitter = TokenSplitter(
            settings.embedding_model, settings.chunk_size, settings.chunk_overlap
        )
        self.embeddings = embeddings or worker_embeddings(settings)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        return {"result": [pickle.dumps(self.run(pickle.loads(t))) for t in batch["task"]]}

    def run(self, task: Task) -> Result:
        try:
            doc = load_document(
                Path(task.path),
                task.source,
                data=task.data,
                ocr=self.settings.ocr,
                max_text_bytes=self.settings.max_text_bytes,
            )
        except LoadError as exc:
            return Result(task.number, error=exc.reason)
        work = Work(FoundFile(Path(task.root), Path(task.path)), doc, 0, 0, None)
        work.chunks = self.splitter.split(doc.text)
        fp = task.fingerprint or self.fp
        work.ids = work.chunk_ids(fp)
        todo = [(i, c) for i, c in zip(work.ids, work.chunks, strict=True) if i not in task.skip]
        vectors: dict[str, list[float]] = {}
        batch = self.settings.batch_size
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            got = self.embeddings.embed_documents([work.retrieval_text(c) for _, c in part])
            vectors.update((i, list(v)) for (i, _), v in zip(part, got, strict=True))
        return Result(task.number, doc, work.chunks, work.ids, vectors)


def worker_embeddings(settings: IngestSettings) -> Embeddings:
    """The model of an actor: on its GPU when Ray gave it one (torch; the fp32 vectors of
    the ONNX default, within float tolerance), else as a local ingest runs it, on the CPUs
    Ray gave the actor."""
    import ray

    backend, model = split_backend(settings.embedding_model)
    if ray.get_gpu_ids() and backend != "onnx-int8" and not model.startswith("fake"):
        from langchain_huggingface import HuggingFaceEmbeddings

        return HuggingFaceEmbeddings(
            model_name=str(model_path(model)),
            model_kwargs={"device": "cuda", "local_files_only": True},
            encode_kwargs={"normalize_embeddings": True, "batch_size": 256},
        )
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    limit_threads(settings.embedding_model, max(1, int(cpus)))
    return make_embeddings(settings.embedding_model, EMBED_BATCH, settings.onnx_cache_dir)


@contextmanager
def ray_session(address: str) -> Iterator[Any]:
    """Connected to the Ray cluster at ``address`` (disconnected after, unless this process
    was already connected); IngestError, one line naming it, when it cannot be reached."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    if ray.is_initialized():
        yield ray
        return
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as exc:  # ConnectionError, or Ray Client's own errors
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise IngestError(f"cannot connect to the Ray cluster at {address!r}: {reason}") from None
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # ours counts documents and chunks
        context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notices are not ours
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Ray waits a minute for a head that does not answer: a plain connect fails fast."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise IngestError(
            f"ray_address must be 'auto', 'host:port' or 'ray://host:port', got {address!r}"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise IngestError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it with "
            f"'ray start --head --port {port}' or fix --ray"
        ) from None


def pool_size(ray: Any, settings: IngestSettings, documents: int) -> tuple[int, float]:
    """(actors, GPUs per actor): ``ray_workers``, else one per GPU, else one per CPU."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    actors = settings.ray_workers or gpus or max(1, int(resources.get("CPU", 1)))
    return max(1, min(actors, documents)), (1.0 if gpus else 0.0)


def ray_waves(
    plan: Plan,
    index: DocIndex,
    *,
    wave_chunks: int,
    progress: bool = True,
) -> Iterator[Wave]:
    """The plan's deferred documents, loaded, split and embedded on the cluster, as waves
    for ``apply_plan`` (each document joins ``plan.add``/``update``, or ``plan.failed``,
    as it comes back). A failed Ray job is an IngestError: what was committed stays, and
    the next run finishes the job."""
    from tqdm.auto import tqdm

    settings = index.settings
    deferred, plan.deferred = plan.deferred, []
    embeddings = None if isinstance(index.embeddings, LazyEmbeddings) else index.embeddings
    started, chunks = time.perf_counter(), 0
    disable = None if progress else True  # as the local bar: shown on a terminal
    with (
        ray_session(settings.ray_address) as ray,
        tqdm(total=len(deferred), unit="doc", desc="embedding on ray", disable=disable) as bar,
    ):
        actors, gpus = pool_size(ray, settings, len(deferred))
        logger.info(
            "ray: %d documents to %d embedding actors%s",
            len(deferred),
            actors,
            " (a GPU each)" if gpus else "",
        )
        wave: list[Work] = []
        vectors: dict[str, list[float]] = {}
        for result in _results(ray, deferred, settings, index.model, embeddings, actors, gpus):
            item = deferred[result.number]
            bar.update(1)
            if result.doc is None:
                plan.failed.append(LoadError(item.found.path, result.error))
                logger.warning("skipped %s", plan.failed[-1])
                continue
            work = Work(
                item.found,
                result.doc,
                item.size,
                item.mtime_ns,
                item.old,
                fingerprint=item.fingerprint,
            )
            work.chunks, work.ids = result.chunks, result.ids
            (plan.update if item.old else plan.add).append(work)
            wave.append(work)
            vectors.update(result.vectors)
            chunks += len(result.ids)
            bar.set_postfix(chunks=chunks, per_s=round(chunks / (time.perf_counter() - started)))
            if sum(len(w.ids) for w in wave) >= wave_chunks:
                yield wave, vectors
                wave, vectors = [], {}
        if wave:
            yield wave, vectors
    seconds = time.perf_counter() - started
    logger.info(
        "ray: %d documents, %d chunks in %.1f s (%.0f chunks/s)",
        len(deferred),
        chunks,
        seconds,
        chunks / seconds if seconds else 0.0,
    )


def _results(
    ray: Any,
    deferred: Sequence[Deferred],
    settings: IngestSettings,
    model: str,
    embeddings: Embeddings | None,
    actors: int,
    gpus: float,
) -> Iterator[Result]:
    """Run the documents through the actor pool, one Ray Data job per ``SHIP_BYTES``."""
    for group in _groups(deferred, SHIP_BYTES):
        tasks = [
            pickle.dumps(
                Task(
                    number,
                    str(item.found.root),
                    str(item.found.path),
                    item.found.source,
                    item.data,
                    frozenset(item.old.chunk_ids if item.old else ()),
                    item.fingerprint,
                )
            )
            for number, item in group
        ]
        per_call = docs_per_call(settings, [len(item.data) for _, item in group], actors)
        dataset = ray.data.from_items(
            [{"task": t} for t in tasks], override_num_blocks=-(-len(tasks) // per_call)
        ).map_batches(
            ChunkEmbedder,
            fn_constructor_kwargs={"settings": settings, "model": model, "embeddings": embeddings},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=per_call,
            num_cpus=0 if gpus else 1,
            num_gpus=gpus or None,
        )
        try:
            for row in dataset.iter_rows():
                yield pickle.loads(row["result"])
        except Exception as exc:  # a Ray error, or a worker's, re-raised here
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise IngestError(
                f"the Ray job failed ({type(exc).__name__}: {reason}); what was written is "
                "kept: run the same command again to finish"
            ) from None


def _groups(deferred: Sequence[Deferred], limit: int) -> Iterator[list[tuple[int, Deferred]]]:
    group: list[tuple[int, Deferred]] = []
    size = 0
    for number, item in enumerate(deferred):
        if group and size + len(item.data) > limit:
            yield group
            group, size = [], 0
        group.append((number, item))
        size += len(item.data)
    if group:
        yield group


def docs_per_call(settings: IngestSettings, sizes: Sequence[int], actors: int) -> int:
    """Documents per actor call: about two embedding batches of chunks (a token is ~4 bytes
    of text), but at least two calls per actor so that every actor gets work."""
    stride_bytes = 4 * (settings.chunk_size - settings.chunk_overlap)
    mean = max(1.0, sum(sizes) / max(1, len(sizes)))
    wanted = round(2 * settings.batch_size * stride_bytes / mean)
    fair = -(-len(sizes) // (2 * actors))
    return max(1, min(wanted, fair, 64))

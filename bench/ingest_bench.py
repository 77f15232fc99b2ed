"""Ingest benchmark: each backend's raw encode vs the ingest pipeline, on the same chunks.

Usage::

    python bench/ingest_bench.py                    # torch, then ONNX; synthetic, >= 2000 chunks
    python bench/ingest_bench.py --model torch:all-MiniLM-L6-v2     # one backend
    python bench/ingest_bench.py --docs DIR         # any folder (copied first; never modified)
    python bench/ingest_bench.py --chunks 500 --json bench.json

One run prints, for the same chunks (those the pipeline's own loader and splitter make):

* raw encode throughput (chunks/s; torch's ``SentenceTransformer.encode`` or ONNX Runtime's
  ``OnnxEmbeddings.encode``, batch 32, normalised, the model the pipeline uses, loaded and
  warmed up first),
* pipeline ``ingest_paths`` throughput into a fresh index (chunks/s over the whole call:
  discover, load, split, embed, upsert, commit, BM25 side index),
* their ratio (target >= 0.95), three ways:
  - plain: the pipeline run against the mean of the raw runs before and after it;
  - paired: a second pipeline run in which each encode call is matched by a raw encode of
    the same texts right beside it; ratio = raw / (median per-pair pipeline/raw encode
    factor x raw + the pipeline's own non-encode time), the figure to trust when other
    processes share the CPUs;
  - estimate: raw / (raw + the pipeline's own time, measured with 'fake' embeddings),
* a reingest with nothing changed, as a fraction of the full ingest (target <= 0.02),
* a reingest after appending a paragraph to one file,
* peak RSS and the index size on disk,

plus where the pipeline's time goes (plan, encode, Chroma upsert, BM25, the rest), from thin
timers around the library calls, and how many CPUs other processes used during each timed
phase (a run is clean when those are ~0; ``--quiet-wait`` waits for a calm moment first).

It is a benchmark, not a test: it exits 0 whether or not the targets are met (``--strict``
makes a missed target exit 1). The model is the packaged all-MiniLM-L6-v2; nothing is
downloaded.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.config import IngestSettings, set_offline_env  # noqa: E402

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport

SEED_FILE = ROOT / "seeds" / "000_762628c52ecf43e6.txt"
RATIO_TARGET = 0.95
REINGEST_TARGET = 0.02
ENCODE_BATCH = 32  # what ingest.embeddings.LazyEmbeddings asks make_embeddings for
# Timed calls of the main thread that never nest in one another (encode runs inside
# embed_documents; upsert runs on the pipeline's writer thread, beside them).
OUTER_TIMERS = ("embed_documents", "update_lexical")

# ------------------------------------------------------------------ synthetic corpus
# Deterministic English prose from templates and word lists (no downloads, public domain).

TOPICS: dict[str, dict[str, list[str]]] = {
    "harbour": {
        "actors": [
            "the harbour authority",
            "dock workers",
            "the shipping union",
            "the port director",
            "fishing cooperatives",
            "coastal engineers",
        ],
        "things": [
            "the new container terminal",
            "the dredging contract",
            "night-time loading rules",
            "the breakwater repairs",
            "ferry timetables",
            "the cold-storage warehouse",
        ],
        "places": ["the north quay", "the old fish market", "the estuary", "the rail yard"],
    },
    "schools": {
        "actors": [
            "the school board",
            "parents",
            "the teachers' association",
            "the education minister",
            "head teachers",
            "district inspectors",
        ],
        "things": [
            "the reading programme",
            "class sizes",
            "the school meals budget",
            "the new curriculum",
            "exam results",
            "bus routes for rural pupils",
        ],
        "places": ["the eastern district", "the village schools", "the city centre"],
    },
    "health": {
        "actors": [
            "the regional hospital",
            "nurses",
            "the health department",
            "family doctors",
            "patient groups",
            "the medical council",
        ],
        "things": [
            "waiting lists",
            "the vaccination campaign",
            "the new maternity ward",
            "emergency response times",
            "prescription costs",
            "the mental health service",
        ],
        "places": ["the county", "the outpatient clinic", "the valley towns", "the capital"],
    },
    "farming": {
        "actors": [
            "grain farmers",
            "the agriculture ministry",
            "dairy cooperatives",
            "the weather service",
            "seed merchants",
            "the irrigation board",
        ],
        "things": [
            "the wheat harvest",
            "water allowances",
            "fertiliser prices",
            "the subsidy scheme",
            "the drought plan",
            "export quotas",
        ],
        "places": ["the plains", "the river delta", "the hill farms", "the southern province"],
    },
    "transport": {
        "actors": [
            "the transit agency",
            "commuters",
            "the railway company",
            "cyclists",
            "the road safety council",
            "the mayor",
        ],
        "things": [
            "the tram extension",
            "fare increases",
            "the bridge closure",
            "night bus services",
            "the parking levy",
            "signal upgrades",
        ],
        "places": ["the ring road", "the central station", "the suburbs", "the airport line"],
    },
    "science": {
        "actors": [
            "researchers at the institute",
            "the observatory",
            "a team of geologists",
            "the national laboratory",
            "graduate students",
            "the funding council",
        ],
        "things": [
            "the survey data",
            "the new telescope",
            "sediment samples",
            "the climate model",
            "the grant proposal",
            "the results of the field trial",
        ],
        "places": ["the glacier", "the coastal shelf", "the mountain station", "the lab"],
    },
}

VERBS = [
    "approved",
    "rejected",
    "reviewed",
    "questioned",
    "defended",
    "postponed",
    "welcomed",
    "criticised",
    "examined",
    "proposed changes to",
    "called for a review of",
    "raised concerns about",
    "published a report on",
    "set aside funds for",
]
OPENERS = [
    "On Tuesday,",
    "Last month,",
    "Earlier this year,",
    "After weeks of debate,",
    "In a statement,",
    "Meanwhile,",
    "However,",
    "At the same time,",
    "According to officials,",
    "In response,",
    "For now,",
    "Despite the delays,",
]
REASONS = [
    "because costs had risen sharply",
    "after a series of complaints",
    "citing safety concerns",
    "to meet the new regulations",
    "as demand continued to grow",
    "following an independent audit",
    "amid uncertainty over funding",
    "in order to reduce waiting times",
    "since the previous plan had stalled",
]
ADJECTIVES = [
    "modest",
    "significant",
    "unexpected",
    "long-awaited",
    "controversial",
    "temporary",
    "gradual",
    "sharp",
    "cautious",
    "ambitious",
]
NAMES = [
    "Maria Lopez",
    "James Okafor",
    "Anna Kowalski",
    "David Chen",
    "Fatima Rahman",
    "Peter Lindqvist",
    "Grace Mensah",
    "Tomás Herrera",
    "Helen Murphy",
    "Ravi Nair",
]
ROLES = ["a spokesperson for", "the chair of", "a senior adviser to", "an analyst who studies"]
QUOTES = [
    "We have listened carefully, and this is the responsible course",
    "Nobody expected the numbers to change this quickly",
    "It is too early to say whether the plan will work",
    "The people most affected were never properly consulted",
    "We will publish the full figures before the end of the year",
    "This is a first step, not the final answer",
]


def _sentence(rng: random.Random, topic: dict[str, list[str]]) -> str:
    kind = rng.random()
    actor = rng.choice(topic["actors"])
    thing = rng.choice(topic["things"])
    place = rng.choice(topic["places"])
    if kind < 0.35:
        s = f"{rng.choice(OPENERS)} {actor} {rng.choice(VERBS)} {thing} {rng.choice(REASONS)}."
    elif kind < 0.55:
        n = rng.randint(3, 97)
        s = (
            f"The {rng.choice(ADJECTIVES)} change in {thing} affected about {n} percent of "
            f"households in {place}, {rng.choice(REASONS)}."
        )
    elif kind < 0.7:
        s = (
            f"“{rng.choice(QUOTES)},” said {rng.choice(NAMES)}, {rng.choice(ROLES)} "
            f"{rng.choice(topic['actors'])}."
        )
    elif kind < 0.85:
        year = rng.randint(1995, 2023)
        s = (
            f"Since {year}, {actor} in {place} have argued that {thing} deserved "
            f"{rng.choice(['more', 'less', 'closer', 'independent'])} attention."
        )
    else:
        other = rng.choice(topic["things"])
        s = (
            f"Critics said {thing} and {other} were linked, while {actor} "
            f"{rng.choice(['insisted', 'argued', 'suggested', 'conceded'])} that the "
            f"{rng.choice(ADJECTIVES)} progress in {place} would continue."
        )
    return s[0].upper() + s[1:]


def synthetic_document(rng: random.Random, seed_paragraphs: list[str], words: int) -> str:
    """A news-like article of about ``words`` words; sometimes quotes the seed article."""
    name = rng.choice(sorted(TOPICS))
    topic = TOPICS[name]
    date = f"{rng.randint(2015, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    title = f"{rng.choice(topic['actors']).capitalize()} and {rng.choice(topic['things'])}"
    paragraphs: list[str] = []
    count = 0
    while count < words:
        if seed_paragraphs and rng.random() < 0.08:
            para = rng.choice(seed_paragraphs)
        else:
            para = " ".join(_sentence(rng, topic) for _ in range(rng.randint(2, 7)))
        paragraphs.append(para)
        count += len(para.split())
    return f"date {date}\n{title}\n\n" + "\n\n".join(paragraphs) + "\n"


def build_synthetic_corpus(
    folder: Path, min_chunks: int, settings: IngestSettings, seed: int = 1234
) -> int:
    """Write the seed article plus generated articles until they split into >= min_chunks."""
    from ingest.splitter import TokenSplitter

    splitter = TokenSplitter(settings.embedding_model, settings.chunk_size, settings.chunk_overlap)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seed_text = SEED_FILE.read_text(encoding="utf-8") if SEED_FILE.exists() else ""
    seed_paragraphs = [p.strip() for p in seed_text.split("\n\n")[1:] if p.strip()]
    total = 0
    n = 0
    if seed_text:
        shutil.copy2(SEED_FILE, folder / SEED_FILE.name)
        total += len(splitter.split(seed_text))
        n += 1
    while total < min_chunks:
        words = int(rng.choice([400, 900, 1500, 2500, 3500, 5000]) * rng.uniform(0.7, 1.3))
        text = synthetic_document(rng, seed_paragraphs, words)
        (folder / f"article_{n:04d}.txt").write_text(text, encoding="utf-8")
        total += len(splitter.split(text))
        n += 1
    return n


# ------------------------------------------------------------------ measurement helpers


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def current_rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def disk_usage_mb(path: Path) -> float:
    """Like ``du -s``: allocated blocks of every file under ``path``."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total / 2**20


class OtherLoad:
    """Average CPUs used by *other* processes between start() and stop(), from /proc.

    The benchmark shares its cores with whatever else runs; a ratio measured while another
    process took a core is not worth much, so every timed phase records this."""

    def __init__(self) -> None:
        self._start: tuple[int, int, float] | None = None

    @staticmethod
    def _ticks() -> tuple[int, int]:
        try:
            cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            me = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            return 0, 0
        busy = sum(cpu[:8]) - cpu[3] - cpu[4]  # all but idle and iowait (guest is in user)
        return busy, int(me[11]) + int(me[12])  # utime + stime

    def start(self) -> None:
        self._start = (*self._ticks(), time.perf_counter())

    def stop(self) -> float:
        if self._start is None:
            return float("nan")
        busy0, me0, t0 = self._start
        busy1, me1 = self._ticks()
        wall = time.perf_counter() - t0
        hz = os.sysconf("SC_CLK_TCK")
        return max(0.0, ((busy1 - busy0) - (me1 - me0)) / hz / wall) if wall > 0 else 0.0


def wait_quiet(max_wait: float, threshold: float = 0.1, window: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use under ``threshold`` CPUs for
    three windows in a row; returns the seconds waited. Cannot stop them starting later."""
    if max_wait <= 0:
        return 0.0
    t0 = time.perf_counter()
    calm = 0
    while calm < 3 and time.perf_counter() - t0 < max_wait:
        meter = OtherLoad()
        meter.start()
        time.sleep(window)
        calm = calm + 1 if meter.stop() < threshold else 0
    waited = time.perf_counter() - t0
    if calm < 3:
        log(f"machine still busy after {waited:.0f}s; measuring anyway")
    return waited


@dataclass
class Timers:
    """Seconds spent inside wrapped calls (and how many calls)."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed


def own_encode(model: Any, encode: Callable[..., Any] | None = None) -> Callable[[Any], Any]:
    """The backend's raw encode of a list of texts, as ingest's model calls it: torch's
    ``SentenceTransformer.encode`` (batch 32, normalised) or ``OnnxEmbeddings.encode`` (its
    batch of 32, normalised). ``encode``: the unbound method to call (default the class's)."""
    from ingest.onnx_backend import OnnxEmbeddings

    fn = encode or type(model).encode
    if isinstance(model, OnnxEmbeddings):
        return lambda texts: fn(model, list(texts))
    return lambda texts: fn(model, texts, batch_size=ENCODE_BATCH, normalize_embeddings=True)


@contextmanager
def instrumented(model: Any, timers: Timers) -> Iterator[None]:
    """Time the model's encode (this instance: SentenceTransformer's or OnnxEmbeddings'),
    embed_documents (HuggingFaceEmbeddings and OnnxEmbeddings), chromadb Collection.upsert
    and DocIndex.update_lexical (the BM25 side index, where the store has one) while the
    block runs."""
    from chromadb.api.models.Collection import Collection
    from langchain_huggingface import HuggingFaceEmbeddings

    from ingest.onnx_backend import OnnxEmbeddings
    from ingest.store import DocIndex

    patches: list[tuple[Any, str, Any]] = [
        (HuggingFaceEmbeddings, "embed_documents", HuggingFaceEmbeddings.embed_documents),
        (OnnxEmbeddings, "embed_documents", OnnxEmbeddings.embed_documents),
        (Collection, "upsert", Collection.upsert),
    ]
    if hasattr(DocIndex, "update_lexical"):
        patches.append((DocIndex, "update_lexical", DocIndex.update_lexical))
    model.encode = timers.wrap("encode", model.encode)  # instance attribute shadows the method
    for owner, name, orig in patches:
        setattr(owner, name, timers.wrap(name, orig))
    try:
        yield
    finally:
        del model.encode
        for owner, name, orig in patches:
            setattr(owner, name, orig)


def corpus_chunks(folder: Path, settings: IngestSettings) -> list[str]:
    """The chunk texts the pipeline will embed: same discovery, loader and splitter."""
    from ingest.discovery import discover
    from ingest.loaders import load_document
    from ingest.splitter import TokenSplitter

    splitter = TokenSplitter(settings.embedding_model, settings.chunk_size, settings.chunk_overlap)
    texts: list[str] = []
    for found in discover([folder]).files:
        doc = load_document(found.path, found.source, max_bytes=settings.max_file_bytes)
        texts.extend(c.text for c in splitter.split(doc.text))
    return texts


@dataclass
class PipelineRun:
    report: IngestReport
    timers: Timers
    plan_s: float  # from the call until the plan was made (discover, load, split)
    other_s: float  # the rest: neither planning, embed_documents, upsert nor BM25
    replay_s: float = 0.0  # paired runs: raw encodes of the same batches, not pipeline time
    pairs: list[tuple[float, float]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """The pipeline's own wall time (a paired run's raw replays taken out)."""
        return self.report.seconds - self.replay_s

    @property
    def encode_s(self) -> float:
        return self.timers.seconds.get("encode", 0.0) - self.replay_s

    @property
    def encode_vs_raw(self) -> float:
        """Median over the pairs of (pipeline's encode time / raw encode time, same texts)."""
        return statistics.median(a / b for a, b in self.pairs) if self.pairs else float("nan")

    @property
    def paired_ratio(self) -> float:
        """Raw throughput over pipeline throughput, from the pairs: the pipeline's encode is
        taken as ``encode_vs_raw`` times the raw time (a median, so batches where another
        process hit one side of a pair only do not sway it), plus its own non-encode time."""
        if not self.pairs:
            return float("nan")
        own = self.seconds - self.encode_s
        return self.replay_s / (self.encode_vs_raw * self.replay_s + own)


def pipeline_run(
    corpus: Path, settings: IngestSettings, model: Any, *, paired: bool = False
) -> PipelineRun:
    """One ``ingest_paths`` call into ``settings.index_dir``, with its time broken down.

    ``paired``: every encode call the pipeline makes is matched by a raw
    ``SentenceTransformer.encode`` of the same texts right before or after it (alternately),
    timed apart. Both sides then see the same machine speed to within a second or two, so
    their ratio survives other processes coming and going, which a comparison of two runs
    minutes apart does not.
    """
    from ingest.pipeline import ingest_paths

    timers = Timers()
    plan_at: list[float] = []
    pairs: list[tuple[float, float]] = []  # (pipeline encode s, raw replay s) per call
    if paired:
        encode = type(model).encode

        def encode_paired(texts: Any, *args: Any, **kwargs: Any) -> Any:
            def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
                t = time.perf_counter()
                out = fn()
                return out, time.perf_counter() - t

            def raw() -> Any:
                return own_encode(model, encode)(texts)

            def real() -> Any:
                return encode(model, texts, *args, **kwargs)

            if len(pairs) % 2:  # alternate which goes first
                out, t_real = timed(real)
                _, t_raw = timed(raw)
            else:
                _, t_raw = timed(raw)
                out, t_real = timed(real)
            pairs.append((t_real, t_raw))
            return out

        model.encode = encode_paired  # instrumented() wraps it and deletes it afterwards
    t0 = time.perf_counter()
    with instrumented(model, timers):
        report = ingest_paths(
            [corpus], settings, on_plan=lambda _p: plan_at.append(time.perf_counter())
        )
    wall = time.perf_counter() - t0
    plan_s = (plan_at[0] - t0) if plan_at else float("nan")
    other = wall - plan_s - sum(timers.seconds.get(k, 0.0) for k in OUTER_TIMERS)
    return PipelineRun(
        report, timers, plan_s, other, replay_s=sum(r for _, r in pairs), pairs=pairs
    )


# ------------------------------------------------------------------ the benchmark


@dataclass
class Results:
    corpus: str
    files: int
    chunks: int
    chunk_size: int
    chunk_overlap: int
    batch_size: int
    encode_batch: int
    torch_threads: int
    model_load_s: float
    split_s: float
    raw_s: float
    raw_chunks_per_s: float
    pipeline_s: float
    pipeline_chunks_embedded: int
    pipeline_chunks_per_s: float
    ratio: float
    ratio_pass: bool
    ratios: list[float]
    encode_share: float
    paired_raw_s: float
    paired_pipeline_s: float
    paired_encode_s: float
    ratio_paired: float
    paired_encode_vs_raw: float
    paired_pairs: int
    other_load_paired: float
    fake_pipeline_s: float
    ratio_estimate: float
    other_load_fake: float
    other_load_raw: list[float]
    other_load_pipeline: list[float]
    raw_runs_s: list[float]
    pipeline_runs_s: list[float]
    pipeline_plan_s: float
    pipeline_encode_s: float
    pipeline_embed_documents_s: float
    pipeline_upsert_s: float
    pipeline_bm25_s: float
    pipeline_other_s: float
    encode_calls: int
    upsert_calls: int
    reingest_s: float
    reingest_fraction: float
    reingest_pass: bool
    reingest_chunks_embedded: int
    changed_s: float
    changed_chunks_embedded: int
    changed_parts_s: dict[str, float]
    rss_after_model_mb: float
    peak_rss_after_raw_mb: float
    peak_rss_mb: float
    rss_end_mb: float
    index_mb: float
    warnings: list[str] = field(default_factory=list)
    model: str = ""


def run(args: argparse.Namespace) -> Results:
    import torch

    from ingest.embeddings import LazyEmbeddings, make_embeddings
    from ingest.pipeline import ingest_paths

    work = Path(tempfile.mkdtemp(prefix="ingest-bench-", dir=args.out_dir))
    warnings: list[str] = []
    try:
        corpus = work / "corpus"
        base = IngestSettings(
            index_dir=work / "index",
            embedding_model=args.model,
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            batch_size=args.batch_size,
            progress=False,
        )
        if args.docs:
            shutil.copytree(args.docs, corpus, symlinks=False)  # the change test edits a file
            label = str(Path(args.docs).resolve())
        else:
            t0 = time.perf_counter()
            n = build_synthetic_corpus(corpus, args.chunks, base, seed=args.seed)
            label = f"synthetic ({n} files, seed {args.seed})"
            log(f"generated {n} files in {time.perf_counter() - t0:.1f}s")

        t0 = time.perf_counter()
        texts = corpus_chunks(corpus, base)
        split_s = time.perf_counter() - t0
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        log(f"{len(texts)} chunks from {files} files (load+split {split_s:.1f}s)")
        if not texts:
            raise SystemExit("no chunks: nothing to benchmark")

        # One model, loaded before any timing, shared by both measurements. make_embeddings
        # is lru_cached on its *call signature*: call it exactly as LazyEmbeddings does.
        t0 = time.perf_counter()
        emb = make_embeddings(args.model, ENCODE_BATCH)
        model_load_s = time.perf_counter() - t0
        if LazyEmbeddings(args.model).loaded is not emb:
            warnings.append("pipeline would load a second model instance")
        model = getattr(emb, "_client", emb)  # torch: the SentenceTransformer; ONNX: itself
        encode_all = own_encode(model)
        rss_model = current_rss_mb()
        warm = texts[:8]

        loads: dict[str, list[float]] = {"raw": [], "pipeline": []}

        def raw_encode() -> float:
            wait_quiet(args.quiet_wait)
            meter = OtherLoad()
            meter.start()
            t0 = time.perf_counter()
            vectors = encode_all(texts)
            seconds = time.perf_counter() - t0
            loads["raw"].append(meter.stop())
            assert len(vectors) == len(texts)
            log(
                f"raw encode: {seconds:.1f}s, {len(texts) / seconds:.1f} chunks/s "
                f"(other processes: {loads['raw'][-1]:.2f} CPUs)"
            )
            return seconds

        # --- warm-up for both: a few texts through encode and through a throwaway index
        encode_all(warm)
        warm_dir = work / "warm"
        warm_dir.mkdir()
        (warm_dir / "warm.txt").write_text("\n\n".join(warm), encoding="utf-8")
        ingest_paths([warm_dir], base.replace(index_dir=work / "warm-index"))

        # --- raw, then (pipeline into a fresh index, raw) x repeats: each pipeline run is
        # compared with the mean of the raw runs either side of it, so drift in the machine's
        # speed (shared CPUs) hits both sides of the ratio alike.
        log(f"raw encode of {len(texts)} chunks, batch {ENCODE_BATCH} ...")
        raw_runs = [raw_encode()]
        rss_after_raw = peak_rss_mb()
        pipe_runs: list[PipelineRun] = []
        settings = base
        for i in range(args.repeats):
            if i:
                shutil.rmtree(settings.index_dir, ignore_errors=True)
            settings = base.replace(index_dir=work / f"index-{i}")
            log(f"pipeline ingest {i + 1}/{args.repeats} ...")
            wait_quiet(args.quiet_wait)
            meter = OtherLoad()
            meter.start()
            pipe_runs.append(pipeline_run(corpus, settings, model))
            loads["pipeline"].append(meter.stop())
            log(
                f"pipeline: {pipe_runs[-1].report.seconds:.1f}s "
                f"(other processes: {loads['pipeline'][-1]:.2f} CPUs; "
                f"{pipe_runs[-1].report.summary()})"
            )
            raw_runs.append(raw_encode())
        ratios = [
            (raw_runs[i] + raw_runs[i + 1]) / 2 / run.report.seconds
            for i, run in enumerate(pipe_runs)
        ]
        ratio = statistics.median(ratios)
        best = pipe_runs[ratios.index(statistics.median_low(ratios))]  # for the breakdown
        report = best.report
        if report.plan.failed:
            warnings.append(f"{len(report.plan.failed)} files failed to load")
        if report.chunks_embedded != len(texts):
            warnings.append(
                f"pipeline embedded {report.chunks_embedded} chunks, raw baseline {len(texts)}"
            )
        raw_s = statistics.median(raw_runs)
        pipe_s = statistics.median(r.report.seconds for r in pipe_runs)
        spread = (max(raw_runs) - min(raw_runs)) / raw_s
        if spread > 0.10:
            warnings.append(
                f"raw encode times vary by {spread:.0%} ({', '.join(f'{t:.1f}' for t in raw_runs)}"
                " s): the machine's speed drifted; trust the paired ratio over the plain one"
            )

        # --- paired: pipeline and raw encode interleaved batch by batch (drift-resistant)
        paired: PipelineRun | None = None
        if args.paired:
            log("paired run: pipeline with a raw encode beside each of its batches ...")
            wait_quiet(args.quiet_wait)
            meter = OtherLoad()
            meter.start()
            paired = pipeline_run(
                corpus, base.replace(index_dir=work / "index-paired"), model, paired=True
            )
            loads["paired"] = [meter.stop()]
            shutil.rmtree(work / "index-paired", ignore_errors=True)
            log(
                f"paired: pipeline {paired.seconds:.1f}s, raw {paired.replay_s:.1f}s "
                f"(other processes: {loads['paired'][0]:.2f} CPUs)"
            )

        # --- the pipeline without the model: 'fake' embeddings cost ~nothing, so this is the
        # pipeline's own time (plan, Chroma, manifest, BM25), short enough to catch a quiet
        # moment; with the raw encode time it estimates the ratio free of slow drift.
        wait_quiet(args.quiet_wait)
        meter = OtherLoad()
        meter.start()
        fake = ingest_paths(
            [corpus], base.replace(index_dir=work / "index-fake", embedding_model="fake")
        )
        loads["fake"] = [meter.stop()]
        log(f"pipeline, fake embeddings: {fake.seconds:.2f}s")
        ratio_est = raw_s / (raw_s + fake.seconds)
        shutil.rmtree(work / "index-fake", ignore_errors=True)

        busiest = max(x for v in loads.values() for x in v)
        if busiest > 0.15:
            warnings.append(
                f"other processes used up to {busiest:.2f} of {os.cpu_count()} CPUs while "
                "timing: throughputs and the ratio are disturbed"
            )

        # --- reingest, nothing changed (three times: it takes milliseconds)
        agains = [ingest_paths([corpus], settings) for _ in range(3)]
        for again in agains:
            if again.chunks_embedded != 0:
                warnings.append(f"unchanged reingest embedded {again.chunks_embedded} chunks")
        reingest_s = statistics.median(a.seconds for a in agains)
        log(f"reingest (unchanged): {reingest_s:.3f}s ({agains[-1].summary()})")

        # --- reingest after appending a paragraph to one file
        editable = sorted(
            (p for p in corpus.rglob("*") if p.suffix.lower() in (".txt", ".md", ".markdown")),
            key=lambda p: (p.stat().st_size, p.name),
        )
        victim = editable[len(editable) // 2 : len(editable) // 2 + 1]  # a median-size file
        changed_s = float("nan")
        changed_embedded = 0
        changed_parts: dict[str, float] = {}
        if victim:
            with open(victim[0], "a", encoding="utf-8") as fh:
                fh.write(
                    "\n\nA late addition: the council said on Friday that it would publish "
                    "the revised figures next week, after a final check by the auditors.\n"
                )
            changed_run = pipeline_run(corpus, settings, model)
            changed = changed_run.report
            changed_s, changed_embedded = changed.seconds, changed.chunks_embedded
            changed_parts = {
                k: changed_run.timers.seconds.get(k, 0.0)
                for k in ("encode", "upsert", "update_lexical")
            }
            log(f"reingest (1 file changed): {changed_s:.2f}s ({changed.summary()})")
        else:
            warnings.append("no text file to change: skipped the one-file reingest")

        raw_cps = len(texts) / raw_s
        pipe_cps = report.chunks_embedded / pipe_s if pipe_s > 0 else float("nan")
        fraction = reingest_s / pipe_s
        timers = best.timers
        return Results(
            corpus=label,
            files=files,
            chunks=len(texts),
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            batch_size=settings.batch_size,
            encode_batch=ENCODE_BATCH,
            torch_threads=torch.get_num_threads(),
            model_load_s=model_load_s,
            split_s=split_s,
            raw_s=raw_s,
            raw_chunks_per_s=raw_cps,
            pipeline_s=pipe_s,
            pipeline_chunks_embedded=report.chunks_embedded,
            pipeline_chunks_per_s=pipe_cps,
            ratio=ratio,
            ratio_pass=ratio >= RATIO_TARGET,
            ratios=ratios,
            encode_share=(timers.seconds.get("encode", 0.0) / best.report.seconds),
            paired_raw_s=paired.replay_s if paired else float("nan"),
            paired_pipeline_s=paired.seconds if paired else float("nan"),
            paired_encode_s=paired.encode_s if paired else float("nan"),
            ratio_paired=paired.paired_ratio if paired else float("nan"),
            paired_encode_vs_raw=paired.encode_vs_raw if paired else float("nan"),
            paired_pairs=len(paired.pairs) if paired else 0,
            other_load_paired=loads["paired"][0] if paired else float("nan"),
            fake_pipeline_s=fake.seconds,
            ratio_estimate=ratio_est,
            other_load_fake=loads["fake"][0],
            other_load_raw=loads["raw"],
            other_load_pipeline=loads["pipeline"],
            raw_runs_s=raw_runs,
            pipeline_runs_s=[r.report.seconds for r in pipe_runs],
            pipeline_plan_s=best.plan_s,
            pipeline_encode_s=timers.seconds.get("encode", 0.0),
            pipeline_embed_documents_s=timers.seconds.get("embed_documents", 0.0),
            pipeline_upsert_s=timers.seconds.get("upsert", 0.0),
            pipeline_bm25_s=timers.seconds.get("update_lexical", 0.0),
            pipeline_other_s=best.other_s,
            encode_calls=timers.calls.get("encode", 0),
            upsert_calls=timers.calls.get("upsert", 0),
            reingest_s=reingest_s,
            reingest_fraction=fraction,
            reingest_pass=fraction <= REINGEST_TARGET,
            reingest_chunks_embedded=max(a.chunks_embedded for a in agains),
            changed_s=changed_s,
            changed_chunks_embedded=changed_embedded,
            changed_parts_s=changed_parts,
            rss_after_model_mb=rss_model,
            peak_rss_after_raw_mb=rss_after_raw,
            peak_rss_mb=peak_rss_mb(),
            rss_end_mb=current_rss_mb(),
            index_mb=disk_usage_mb(settings.index_dir),
            warnings=warnings,
            model=args.model,
        )
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(r: Results) -> str:
    rows: list[tuple[str, str, str]] = [
        ("model", r.model, ""),
        ("corpus", r.corpus, ""),
        ("files / chunks", f"{r.files} / {r.chunks}", ""),
        (
            "chunk size / overlap / batch",
            f"{r.chunk_size} / {r.chunk_overlap} / {r.batch_size} (encode {r.encode_batch})",
            "",
        ),
        ("torch threads", str(r.torch_threads), ""),
        ("model load", f"{r.model_load_s:.2f} s", ""),
        (
            "other processes' CPU",
            "raw "
            + ", ".join(f"{x:.2f}" for x in r.other_load_raw)
            + "; pipeline "
            + ", ".join(f"{x:.2f}" for x in r.other_load_pipeline)
            + f"; paired {r.other_load_paired:.2f}; fake {r.other_load_fake:.2f}",
            "~0 for a clean run",
        ),
        ("load + split (outside raw)", f"{r.split_s:.2f} s", ""),
        ("raw encode", f"{r.raw_s:.2f} s  {r.raw_chunks_per_s:.2f} chunks/s", ""),
        ("  runs", ", ".join(f"{t:.2f}" for t in r.raw_runs_s) + " s", ""),
        ("pipeline ingest", f"{r.pipeline_s:.2f} s  {r.pipeline_chunks_per_s:.2f} chunks/s", ""),
        ("  runs", ", ".join(f"{t:.2f}" for t in r.pipeline_runs_s) + " s", ""),
        (
            "  encode share of pipeline",
            f"{r.encode_share:.3f}  (the ratio if its encode ran at raw speed)",
            "",
        ),
        ("  plan (discover+load+split)", f"{r.pipeline_plan_s:.2f} s", ""),
        (
            "  encode",
            f"{r.pipeline_encode_s:.2f} s  ({r.encode_calls} calls, "
            f"{r.pipeline_chunks_embedded / r.pipeline_encode_s:.2f} chunks/s)"
            if r.pipeline_encode_s
            else "-",
            "",
        ),
        (
            "  embed_documents overhead",
            f"{r.pipeline_embed_documents_s - r.pipeline_encode_s:.2f} s",
            "",
        ),
        (
            "  chroma upsert",
            f"{r.pipeline_upsert_s:.2f} s  ({r.upsert_calls} calls, on the writer thread)",
            "",
        ),
        ("  BM25 rebuild", f"{r.pipeline_bm25_s:.2f} s", ""),
        ("  other", f"{r.pipeline_other_s:.2f} s", ""),
        (
            "ratio pipeline / raw",
            f"{r.ratio:.3f}"
            + (f"  (runs {', '.join(f'{x:.3f}' for x in r.ratios)})" if len(r.ratios) > 1 else ""),
            f">= {RATIO_TARGET}  {verdict(r.ratio_pass)}",
        ),
        (
            "paired run: raw / pipeline",
            f"{r.paired_raw_s:.2f} s / {r.paired_pipeline_s:.2f} s  "
            f"(pipeline encode {r.paired_encode_s:.2f} s)",
            "",
        ),
        (
            "  encode, pipeline / raw",
            f"{r.paired_encode_vs_raw:.3f}  (median over {r.paired_pairs} batch pairs)",
            "",
        ),
        (
            "ratio, paired (drift-resistant)",
            f"{r.ratio_paired:.3f}",
            f">= {RATIO_TARGET}  {verdict(r.ratio_paired >= RATIO_TARGET)}",
        ),
        (
            "pipeline, 'fake' embeddings",
            f"{r.fake_pipeline_s:.2f} s  (the pipeline's own time, no model)",
            "",
        ),
        (
            "ratio estimate raw/(raw+own)",
            f"{r.ratio_estimate:.3f}",
            f">= {RATIO_TARGET}  {verdict(r.ratio_estimate >= RATIO_TARGET)}",
        ),
        (
            "reingest, unchanged",
            f"{r.reingest_s:.3f} s  = {r.reingest_fraction:.4f} of full "
            f"({r.reingest_chunks_embedded} embedded)",
            f"<= {REINGEST_TARGET}  {verdict(r.reingest_pass)}",
        ),
        (
            "reingest, 1 file changed",
            f"{r.changed_s:.2f} s  ({r.changed_chunks_embedded} embedded; "
            + ", ".join(
                f"{k.replace('update_lexical', 'BM25')} {v:.2f}"
                for k, v in r.changed_parts_s.items()
            )
            + ")",
            "",
        ),
        (
            "peak RSS",
            f"{r.peak_rss_mb:.0f} MB (model loaded {r.rss_after_model_mb:.0f}, "
            f"after raw {r.peak_rss_after_raw_mb:.0f})",
            "",
        ),
        ("RSS at end", f"{r.rss_end_mb:.0f} MB", ""),
        ("index on disk", f"{r.index_mb:.1f} MB", ""),
    ]
    w1 = max(len(a) for a, _, _ in rows)
    w2 = max(len(b) for _, b, _ in rows)
    lines = [f"{'measure':<{w1}}  {'value':<{w2}}  target", "-" * (w1 + w2 + 20)]
    lines += [f"{a:<{w1}}  {b:<{w2}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    d = IngestSettings()
    p = argparse.ArgumentParser(
        prog="python bench/ingest_bench.py",
        description="Benchmark ingest: raw encode vs pipeline throughput, reingest cost, RSS.",
    )
    p.add_argument("--docs", type=Path, help="folder to ingest (default: a synthetic corpus)")
    p.add_argument(
        "--chunks",
        type=int,
        default=2000,
        help="minimum chunks in the synthetic corpus (default 2000)",
    )
    p.add_argument("--out-dir", type=Path, help="where the temporary corpus and index go")
    p.add_argument("--keep", action="store_true", help="keep the temporary corpus and index")
    p.add_argument(
        "--model",
        default=f"torch:{d.embedding_model},{d.embedding_model}",
        help="embedding model spec, or several, comma-separated, measured in turn (default: "
        "torch, then the default backend, ONNX fp32)",
    )
    p.add_argument(
        "--chunk-size", type=int, default=d.chunk_size, help=f"tokens (default {d.chunk_size})"
    )
    p.add_argument(
        "--chunk-overlap",
        type=int,
        default=d.chunk_overlap,
        help=f"tokens (default {d.chunk_overlap})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help=f"chunks per add_texts call (default {d.batch_size})",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="pipeline runs, each between two raw runs (default 1: raw, pipeline, raw)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each timed phase wait up to this many seconds for other processes to "
        "go idle (default 60; 0: don't wait)",
    )
    p.add_argument(
        "--no-paired",
        dest="paired",
        action="store_false",
        help="skip the paired run (pipeline with a raw encode beside each batch)",
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--seed", type=int, default=1234, help="synthetic corpus RNG seed")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 when a target is missed (the paired ratio is judged, if run)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    set_offline_env()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    if args.docs and not Path(args.docs).is_dir():
        raise SystemExit(f"--docs {args.docs}: not a folder")
    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    if not models or any(m.startswith("fake") for m in models):
        raise SystemExit("--model: name real models ('fake' has no raw encode to compare with)")
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    every: list[Results] = []
    for model in models:
        log(f"=== {model}")
        results = run(argparse.Namespace(**{**vars(args), "model": model}))
        every.append(results)
        print(table(results))
        for w in results.warnings:
            print(f"WARNING: {w}")
        print()
    if len(every) > 1:
        print(backends_table(every))
    figures = [asdict(r) for r in every]
    print("JSON " + json.dumps(figures if len(figures) > 1 else figures[0], sort_keys=True))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    ok = all(
        (r.ratio_paired >= RATIO_TARGET if args.paired else r.ratio_pass) and r.reingest_pass
        for r in every
    )
    return 1 if args.strict and not ok else 0


def backends_table(every: list[Results]) -> str:
    """One line per model: raw encode and end-to-end chunks/s, their ratio, Chroma's time."""
    first = every[0]
    lines = [
        f"{'model':<28}{'raw chunks/s':>13}{'ingest chunks/s':>16}{'ratio':>7}{'paired':>8}"
        f"{'upsert s':>10}{'vs first':>9}",
    ]
    for r in every:
        lines.append(
            f"{r.model:<28}{r.raw_chunks_per_s:>13.1f}{r.pipeline_chunks_per_s:>16.1f}"
            f"{r.ratio:>7.3f}{r.ratio_paired:>8.3f}{r.pipeline_upsert_s:>10.2f}"
            f"{r.pipeline_chunks_per_s / first.pipeline_chunks_per_s:>8.2f}x"
        )
    lines.append(
        f"ratio = ingest / raw encode of the same chunks by the same backend (target >= "
        f"{RATIO_TARGET}); 'vs first': ingest chunks/s against the first model's, in this run"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

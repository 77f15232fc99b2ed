"""Scale benchmark: indexes of 10k and 100k chunks of synthetic news prose, and what grows.

    .venv/bin/python bench/scale_bench.py [--sizes 10000 100000] [--questions 60]

Prints, per size: ingest throughput (from the run that built it), index size on disk, answer
p50/p95 (``Chatbot.answer``, extractive) and the p95 ratio to the smallest size (target: p95 at
100k <= 2x p95 at 10k), BM25 build (whole, from the collection), load and query time, the cost
of reingesting after a one-file edit (and how much of it is the BM25 update), and peak RSS.
The indexes are the cache: each is built once under ``bench/out/scale-<size>`` (about 82
chunks/s on 2 idle cores here, so ~20 minutes for 100k) and reused by later runs, which only
reingest by difference (nothing).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import IngestSettings, ingest_paths, set_offline_env  # noqa: E402

set_offline_env()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def build(size: int, out: Path) -> dict:
    """The index for ``size`` chunks, built (and its build figures recorded) if missing."""
    from ingest_bench import build_synthetic_corpus

    index_dir = out / f"scale-{size}"
    corpus = out / f"scale-{size}-corpus"
    stats_file = index_dir / "build.json"
    settings = IngestSettings(index_dir=index_dir, progress=True)
    if not corpus.exists():
        build_synthetic_corpus(corpus, size, settings)
    t = time.perf_counter()
    report = ingest_paths([corpus], settings)
    seconds = time.perf_counter() - t
    if report.chunks_embedded:
        stats = {
            "chunks": report.chunks_total,
            "embedded": report.chunks_embedded,
            "seconds": round(seconds, 1),
            "chunks_per_s": round(report.chunks_embedded / seconds, 1),
        }
        stats_file.write_text(json.dumps(stats), encoding="utf-8")
    elif stats_file.exists() and json.loads(stats_file.read_text(encoding="utf-8"))["embedded"]:
        stats = json.loads(stats_file.read_text(encoding="utf-8"))
    else:  # built by another run (e.g. `python -m ingest`): no throughput on record
        stats = {"chunks": report.chunks_total, "chunks_per_s": "n/a"}
    stats["reingest_s"] = round(seconds, 2) if not report.chunks_embedded else None
    stats["index_dir"] = index_dir
    return stats


def edit_cycle(stats: dict, corpus: Path) -> dict:
    """Reingest after editing one file, then after putting it back: the one-file edit cost,
    and how much of it is the BM25 update (incremental since the segmented BM25 index)."""
    from ingest import open_index
    from ingest.store import DocIndex

    settings = IngestSettings(index_dir=stats["index_dir"], progress=False)
    warm = open_index(settings)
    warm.lexical()  # an index from before the segmented BM25 format is converted here, once
    warm.embeddings.embed_query("warm up")  # so the edit is not charged the model's loading
    warm.close()
    victim = sorted(p for p in corpus.rglob("*") if p.is_file())[0]
    original = victim.read_bytes()
    spent: list[float] = []
    real = DocIndex.update_lexical

    def timed(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return real(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t)

    DocIndex.update_lexical = timed
    try:
        victim.write_bytes(original + b"\n\nThe zeppelin hangar reopened on Tuesday.\n")
        t = time.perf_counter()
        edited = ingest_paths([corpus], settings)
        edit_s = time.perf_counter() - t
    finally:
        victim.write_bytes(original)
        t = time.perf_counter()
        ingest_paths([corpus], settings)
        revert_s = time.perf_counter() - t
        DocIndex.update_lexical = real
    return {
        "edit_s": edit_s,
        "revert_s": revert_s,
        "edit_chunks": edited.chunks_embedded,
        "edit_bm25_s": spent[0] if spent else float("nan"),
    }


def questions_for(index, n: int) -> list[str]:
    import random

    rng = random.Random(11)
    total = index.count()
    picks = sorted(rng.sample(range(total), min(n, total)))
    out = []
    for offset in picks:
        got = index.vectorstore.get(include=["documents"], limit=1, offset=offset)
        words = [w.strip(".,;:“”\"'") for w in got["documents"][0].split() if len(w) > 3]
        out.append(f"What does the report say about {' '.join(words[:7])}?")
    return out


def measure(stats: dict, n_questions: int) -> dict:
    from chatbot import Chatbot, ChatSettings

    bot = Chatbot(ChatSettings(index=IngestSettings(index_dir=stats["index_dir"], progress=False)))
    index = bot.index
    t = time.perf_counter()
    index.rebuild_lexical()
    bm25_build = time.perf_counter() - t
    from ingest.lexical import LexicalIndex

    t = time.perf_counter()
    LexicalIndex.load(index.lexical_dir)
    bm25_load = time.perf_counter() - t
    questions = questions_for(index, n_questions)
    bm25_times = []
    for q in questions:
        t = time.perf_counter()
        index.lexical_search(q, 30)
        bm25_times.append((time.perf_counter() - t) * 1000)
    bot.answer(questions[0])  # warm
    times = []
    for q in questions:
        t = time.perf_counter()
        bot.answer(q)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "p50": statistics.median(times),
        "p95": percentile(times, 0.95),
        "bm25_build_s": bm25_build,
        "bm25_load_s": bm25_load,
        "bm25_p50": statistics.median(bm25_times),
        "bm25_p95": percentile(bm25_times, 0.95),
        "disk_mb": disk_mb(stats["index_dir"]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    p.add_argument("--questions", type=int, default=60)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args(argv)
    # Build every index first: the chat process pins torch to one thread (DOCQA_TORCH_THREADS),
    # which would halve the embedding throughput of a build that came after a measurement.
    built = [(size, build(size, args.out)) for size in args.sizes]
    for size, stats in built:
        stats.update(edit_cycle(stats, args.out / f"scale-{size}-corpus"))
    rows = []
    for size, stats in built:
        rows.append((size, stats, measure(stats, args.questions)))
        print(
            f"measured {size}: peak RSS so far "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
            flush=True,
        )
    base = rows[0][2]["p95"]
    print()
    print(
        f"{'size':>8}{'chunks':>8}{'ingest c/s':>11}{'disk MB':>9}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p95 ratio':>10}{'bm25 build s':>13}{'bm25 p50/p95 ms':>17}"
    )
    for size, stats, m in rows:
        print(
            f"{size:>8}{stats['chunks']:>8}{stats['chunks_per_s']:>11}{m['disk_mb']:>9.0f}"
            f"{m['p50']:>8.1f}{m['p95']:>8.1f}{m['p95'] / base:>10.2f}{m['bm25_build_s']:>13.2f}"
            f"{m['bm25_p50']:>9.1f}/{m['bm25_p95']:.1f}"
        )
    print()
    print(
        f"{'size':>8}{'edit 1 file s':>14}{'chunks':>8}{'of it BM25 s':>13}{'revert s':>9}"
        f"{'unchanged s':>12}{'bm25 load s':>12}"
    )
    for size, stats, m in rows:
        print(
            f"{size:>8}{stats['edit_s']:>14.2f}{stats['edit_chunks']:>8}"
            f"{stats['edit_bm25_s']:>13.2f}{stats['revert_s']:>9.2f}"
            f"{stats['reingest_s'] if stats['reingest_s'] is not None else 'n/a':>12}"
            f"{m['bm25_load_s']:>12.2f}"
        )
    ratio = rows[-1][2]["p95"] / base
    print(
        f"p95 ratio largest/smallest {ratio:.2f} (target <= 2): {'PASS' if ratio <= 2 else 'MISS'}"
    )
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
        "(this process: building, then both indexes open in turn)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

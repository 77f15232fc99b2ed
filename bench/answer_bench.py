"""Answer latency benchmark: ``Chatbot.answer()`` p50/p95 on the seeds and on a synthetic
10k-chunk index, and the launched app's cold start (to the page, to the first answer), peak
RSS and whether it loaded torch; for each embedding backend in turn (default: torch, then
ONNX, the default), reading the same indexes. Prints figures; not a test.

    .venv/bin/python bench/answer_bench.py [--chunks 10000] [--index-10k DIR] [--repeat 5]
    .venv/bin/python bench/answer_bench.py --model all-MiniLM-L6-v2      # one backend

The 10k-chunk index is built once (about 6 minutes of embedding on 2 cores) and cached in
``bench/out/index-10k`` for re-runs; pass ``--rebuild`` to build it again.
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import IngestSettings, ingest_paths, set_offline_env  # noqa: E402
from ingest.config import DEFAULT_MODEL  # noqa: E402

set_offline_env()

SEED_QUESTIONS = [
    "Who told federal prosecutors to pursue the death penalty in drug cases?",
    "Why has use of the death penalty been declining?",
    "How many circumstances allow the death penalty in federal drug cases?",
    "Which groups reacted against the call for more executions?",
    "What did Sessions say they cannot continue with?",
    "Who announced a plan to execute opioid dealers?",
    "Why do critics think death penalty cases tie up resources?",
    "What is the capital of Australia?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_answers(bot, questions: list[str], repeat: int) -> list[float]:
    bot.answer(questions[0])  # warm-up: model, BM25 and caches loaded
    times = []
    for _ in range(repeat):
        for q in questions:
            t = time.perf_counter()
            bot.answer(q)
            times.append((time.perf_counter() - t) * 1000)
    return times


def corpus_questions(index_dir: Path, n: int, seed: int = 7) -> list[str]:
    """Questions made from random chunks: a few content words of a sentence, as a question."""
    from ingest import open_index

    index = open_index(IngestSettings(index_dir=index_dir))
    rng = random.Random(seed)
    chunks = list(index.iter_chunks())
    index.close()
    out = []
    for chunk in rng.sample(chunks, min(n, len(chunks))):
        words = [w.strip(".,;:“”\"'") for w in chunk.text.split() if len(w) > 3]
        pick = words[: rng.randint(5, 9)] if words else ["policy"]
        out.append(f"What does the report say about {' '.join(pick)}?")
    return out


def app_figures(index_dir: Path, questions: list[str], model: str) -> dict[str, float]:
    """Launch ``python -m chatbot`` (embedding with ``model``) on a free port, ask through
    gradio_client; the seconds from launch to the page answering and to the first answer,
    the app process's peak RSS (VmHWM) in MB and whether it mapped torch's library."""
    import os
    import socket
    import subprocess

    from gradio_client import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), DOCQA_EMBEDDING_MODEL=model)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatbot", "--port", str(port), "--index-dir", str(index_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the app did not start") from None
                time.sleep(0.1)
        page_s = time.monotonic() - started
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict(questions[0], api_name="/chat")
        first_s = time.monotonic() - started
        for q in questions[1:]:
            client.predict(q, api_name="/chat")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("VmHWM"))
        torch = "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text()
        return {
            "page_s": page_s,
            "first_answer_s": first_s,
            "peak_rss_mb": int(line.split()[1]) / 1024,
            "torch": float(torch),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--chunks", type=int, default=10000, help="size of the big index")
    p.add_argument("--index-10k", type=Path, default=ROOT / "bench" / "out" / "index-10k")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--repeat", type=int, default=5, help="passes over the seed questions")
    p.add_argument("--questions", type=int, default=60, help="questions on the big index")
    p.add_argument(
        "--model",
        default=f"torch:{DEFAULT_MODEL},{DEFAULT_MODEL}",
        help="embedding model(s) the chatbot reads with, comma-separated (default: torch, "
        "then the default backend, ONNX fp32); the indexes are built once, by the default",
    )
    args = p.parse_args(argv)
    models = [m.strip() for m in args.model.split(",") if m.strip()]

    from ingest_bench import build_synthetic_corpus

    from chatbot import Chatbot, ChatSettings

    big = IngestSettings(index_dir=args.index_10k, progress=True)
    corpus = args.index_10k.parent / "corpus-10k"
    if args.rebuild or not (args.index_10k / "manifest.sqlite3").exists():
        print(f"building a {args.chunks}-chunk corpus and index (cached in {args.index_10k})")
        build_synthetic_corpus(corpus, args.chunks, big)
        t = time.perf_counter()
        report = ingest_paths([corpus], big)
        print(f"  {report.summary()} in {time.perf_counter() - t:.0f} s")
    questions = SEED_QUESTIONS + corpus_questions(args.index_10k, args.questions)

    rows = []
    apps = []
    with tempfile.TemporaryDirectory() as tmp:
        seeds = IngestSettings(index_dir=Path(tmp) / "seeds", progress=False)
        ingest_paths([ROOT / "seeds"], seeds)
        for model in models:
            bot = Chatbot(ChatSettings(index=seeds.replace(embedding_model=model)))
            times = time_answers(bot, SEED_QUESTIONS, args.repeat)
            rows.append((model, "seeds", bot.index.count(), times))
            settings = big.replace(progress=False, embedding_model=model)
            bot = Chatbot(ChatSettings(index=settings))
            times = time_answers(bot, questions, 1)
            rows.append((model, f"synthetic {args.chunks // 1000}k", bot.index.count(), times))
    for model in models:
        apps.append((model, app_figures(args.index_10k, SEED_QUESTIONS, model)))

    print()
    print(
        f"{'model':<24}{'index':<16}{'chunks':>8}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'max ms':>9}  target"
    )
    for model, name, chunks, times in rows:
        p95 = percentile(times, 0.95)
        verdict = "PASS" if p95 <= 100 else "MISS"
        print(
            f"{model:<24}{name:<16}{chunks:>8}{len(times):>6}{statistics.median(times):>9.1f}"
            f"{p95:>9.1f}{max(times):>9.1f}  p95<=100 ms {verdict}"
        )
    print(
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
        "(every model + both indexes + chatbot, this process)"
    )
    print()
    print(f"the app (python -m chatbot) on the {args.chunks // 1000}k index:")
    print(f"{'model':<24}{'to page s':>10}{'to 1st answer s':>16}{'peak RSS MB':>12}  torch")
    for model, app in apps:
        print(
            f"{model:<24}{app['page_s']:>10.1f}{app['first_answer_s']:>16.1f}"
            f"{app['peak_rss_mb']:>12.0f}  {'loaded' if app['torch'] else 'not loaded'}"
        )
    print(f"(peak RSS after {len(SEED_QUESTIONS)} questions through gradio_client)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

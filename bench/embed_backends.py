"""Embedding backends for the packaged all-MiniLM-L6-v2: torch vs ONNX Runtime fp32 and int8.

Usage::

    python bench/embed_backends.py                  # SQuAD docs and questions from ../shared
    python bench/embed_backends.py --rounds 5 --json out.json
    python bench/embed_backends.py --variants fp32,int8-matmul

The ONNX models are exported here, from the packaged weights (``torch.onnx.export``; needs
the ``onnx`` package), fused and quantised with ONNX Runtime's tools, by the functions the
``onnx:`` / ``onnx-int8:`` embedding backends use (``ingest.onnx_backend``); they are cached
under ``bench/out/onnx/`` (``--fresh`` rebuilds them). Nothing is downloaded.

One run prints, for each backend (torch = sentence-transformers, what ingest uses):

* how long each file took to make, and its size;
* throughput in chunks/s on two chunk sets, in 64-chunk calls like ingest's: the chunks
  of the SQuAD docs (the ingest splitter at 128 tokens, overlap 24) and "packed" chunks
  (all the docs as one line of text, so each chunk is filled with sentences up to 128
  tokens). The backends are timed in turn, round after round (the order flips each
  round), in one process, and a backend's speed-up is the median over rounds of torch's
  time / its time in the same round, so a busy neighbour on this shared machine slows
  both sides of a ratio alike;
* the first load (torch: imports and model; ONNX: the session) and the median time to
  embed one question on one thread (as the chat process does);
* vector agreement: cosine of each chunk's and question's vector to torch's;
* dense retrieval: hits@1 and hits@5 of the gold document among the top chunks by cosine
  (all chunks of all docs, no BM25 or rerank) for the answerable questions, how many of
  them change their hits@5 outcome against torch, hits@5 over all questions (SQuAD's
  unanswerable ones were written on a paragraph too), and the mean overlap of each
  question's top 5 chunks with torch's.

The decision rule (issue "Embedding throughput"): a backend is worth offering when it is at
least 1.5x torch on the packed chunks and its hits@5 is at most 0.01 below torch's. It is a
benchmark, not a test: it exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.config import DEFAULT_MODEL, set_offline_env  # noqa: E402

SQUAD = ROOT.parent / "shared" / "eval-data" / "squad_v2"
OUT = ROOT / "bench" / "out" / "onnx"
BATCH = 64  # chunks per embed_documents call, as ingest's default batch_size
ENCODE_BATCH = 32  # what LazyEmbeddings asks make_embeddings for (torch's inner batch)
MAX_TOKENS = 256  # the model's max_seq_length
SPEEDUP_BAR = 1.5
HITS_TOLERANCE = 0.01


@dataclass(frozen=True)
class Variant:
    """How one ONNX file is made from the packaged weights.

    ``fused``: exported with eager attention, then ONNX Runtime's BERT optimizer fuses
    attention, embeddings + LayerNorm and bias + GELU (the default SDPA export does not fuse).
    ``quant``: ``quantize_model`` keyword arguments, or None for fp32. ONNX Runtime's
    default quantises MatMul, Attention and Gather (the word-embedding table); the "matmul"
    variants keep the embeddings in fp32.
    """

    fused: bool = False
    quant: dict[str, Any] | None = None

    @property
    def source(self) -> str:
        return "fp32-fused" if self.fused else "fp32"


PER_TENSOR: dict[str, Any] = {"weight_type": "QInt8", "per_channel": False}
PER_CHANNEL: dict[str, Any] = {"weight_type": "QInt8", "per_channel": True}
MATMUL: dict[str, Any] = {"op_types": ["MatMul"]}
VARIANTS: dict[str, Variant] = {
    "fp32": Variant(),
    "fp32-fused": Variant(fused=True),  # the "onnx:" backend
    "int8": Variant(quant=PER_TENSOR),
    "int8-pc": Variant(quant=PER_CHANNEL),
    "uint8": Variant(quant={**PER_TENSOR, "weight_type": "QUInt8"}),
    "int8-matmul": Variant(quant={**PER_TENSOR, **MATMUL}),
    "int8-pc-matmul": Variant(quant={**PER_CHANNEL, **MATMUL}),
    "int8-fused": Variant(fused=True, quant=PER_TENSOR),
    "int8-pc-fused": Variant(fused=True, quant=PER_CHANNEL),  # the "onnx-int8:" backend
    "uint8-pc-fused": Variant(fused=True, quant={**PER_CHANNEL, "weight_type": "QUInt8"}),
}


def build(name: str, out: Path, model_dir: Path, fresh: bool, made: dict[str, float]) -> Path:
    """The ONNX file of variant ``name`` under ``out`` (made, with its source, if missing or
    ``fresh``); the seconds each file took to make go into ``made``."""
    from ingest.onnx_backend import export_model, fuse_model, quantize_model, quiet_export

    target = out / f"{name}.onnx"
    if name in made or (target.exists() and not fresh):
        return target
    variant = VARIANTS[name]
    out.mkdir(parents=True, exist_ok=True)
    source = None if variant.quant is None else build(variant.source, out, model_dir, fresh, made)
    start = time.perf_counter()
    with quiet_export():
        if name == "fp32":
            export_model(model_dir, target, attention="sdpa")
        elif name == "fp32-fused":
            eager = out / "fp32-eager.onnx"
            export_model(model_dir, eager, attention="eager")
            fuse_model(eager, target, model_dir)
            eager.unlink()
        else:
            assert source is not None and variant.quant is not None
            quantize_model(source, target, **variant.quant)
    made[name] = time.perf_counter() - start
    return target


# ------------------------------------------------------------------ data


@dataclass
class Corpus:
    texts: list[str]  # the SQuAD docs' chunks, as ingest makes them
    doc_ids: list[str]  # each chunk's document (file stem)
    packed: list[str]  # the same text in sentence-filled 128-token chunks
    mean_tokens: dict[str, float]
    questions: list[dict[str, Any]] = field(default_factory=list)  # all with a gold doc


def load_corpus(squad: Path) -> Corpus:
    from ingest.loaders import load_document
    from ingest.splitter import TokenSplitter

    splitter = TokenSplitter(DEFAULT_MODEL, 128, 24)
    texts, doc_ids, bodies = [], [], []
    for path in sorted((squad / "docs").iterdir()):
        doc = load_document(path)
        bodies.append(doc.text)
        for chunk in splitter.split(doc.text):
            texts.append(chunk.text)
            doc_ids.append(path.stem)
    # One line of text: the splitter then fills each chunk with sentences up to 128 tokens.
    packed = [c.text for c in splitter.split(" ".join(" ".join(b.split()) for b in bodies))]
    tokens = {
        "squad": statistics.mean(splitter.count_tokens(t) for t in texts),
        "packed": statistics.mean(splitter.count_tokens(t) for t in packed),
    }
    with (squad / "questions.jsonl").open(encoding="utf-8") as f:
        questions = [json.loads(line) for line in f if line.strip()]
    return Corpus(texts, doc_ids, packed, tokens, [q for q in questions if q["evidence_doc_ids"]])


# ------------------------------------------------------------------ measurements


def in_batches(embed: Callable[[list[str]], Any], texts: list[str]) -> float:
    """Seconds to embed ``texts`` in BATCH-sized calls, as the ingest pipeline does."""
    start = time.perf_counter()
    for at in range(0, len(texts), BATCH):
        embed(texts[at : at + BATCH])
    return time.perf_counter() - start


def top5(chunks: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Per question, the indexes of its 5 nearest chunks by cosine, nearest first."""
    return np.argsort(-(queries @ chunks.T), axis=1, kind="stable")[:, :5]


def query_ms(embed_query: Callable[[str], Any], questions: list[str]) -> float:
    """Median milliseconds to embed one question (after one warm-up)."""
    embed_query("warm up")
    times = []
    for q in questions:
        start = time.perf_counter()
        embed_query(q)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--squad", type=Path, default=SQUAD, help="folder with docs/ and questions")
    ap.add_argument("--out", type=Path, default=OUT, help="where the ONNX files are cached")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (interleaved)")
    ap.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated ONNX variants ({', '.join(VARIANTS)})",
    )
    ap.add_argument("--fresh", action="store_true", help="re-export and re-quantise")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    set_offline_env()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")

    start = time.perf_counter()
    import torch

    from ingest.embeddings import make_embeddings, model_path
    from ingest.onnx_backend import OnnxEmbeddings

    model_dir = model_path(DEFAULT_MODEL)
    torch_emb = make_embeddings(DEFAULT_MODEL, ENCODE_BATCH)
    load_s = {"torch": time.perf_counter() - start}
    threads = torch.get_num_threads()

    made: dict[str, float] = {}
    for name in names:
        build(name, args.out, model_dir, args.fresh, made)
    print(f"\n== ONNX files in {args.out}")
    for name in names:
        size = (args.out / f"{name}.onnx").stat().st_size / 1e6
        how = f"made in {made[name]:.1f} s" if name in made else "cached"
        print(f"  {name:<16} {size:7.1f} MB  {how}")

    encoders: dict[str, OnnxEmbeddings] = {}
    for name in names:
        start = time.perf_counter()
        encoders[name] = OnnxEmbeddings(
            model_dir, threads=threads, model_file=args.out / f"{name}.onnx"
        )
        load_s[name] = time.perf_counter() - start
    embedders: dict[str, Callable[[list[str]], Any]] = {"torch": torch_emb.embed_documents}
    embedders.update({n: e.encode for n, e in encoders.items()})

    corpus = load_corpus(args.squad)
    n_ans = sum(1 for q in corpus.questions if q["answerable"])
    print(
        f"\n== data: {len(corpus.texts)} SQuAD chunks (mean "
        f"{corpus.mean_tokens['squad']:.0f} tokens), {len(corpus.packed)} packed chunks (mean "
        f"{corpus.mean_tokens['packed']:.0f} tokens), {len(corpus.questions)} questions "
        f"({n_ans} answerable); torch and ONNX Runtime on {threads} threads"
    )

    # Warm-up, then interleaved timing rounds (the order flips every round).
    for embed in embedders.values():
        embed(corpus.texts[:BATCH])
    sets = {"squad": corpus.texts, "packed": corpus.packed}
    times: dict[str, dict[str, list[float]]] = {s: {n: [] for n in embedders} for s in sets}
    for r in range(args.rounds):
        order = list(embedders) if r % 2 == 0 else list(reversed(embedders))
        for set_name, texts in sets.items():
            for name in order:
                times[set_name][name].append(in_batches(embedders[name], texts))
        print(f"  timing round {r + 1}/{args.rounds} done", flush=True)

    results: dict[str, dict[str, Any]] = {n: {"load_s": load_s[n]} for n in embedders}
    for set_name, texts in sets.items():
        base = times[set_name]["torch"]
        for name, secs in times[set_name].items():
            ratios = [b / t for b, t in zip(base, secs, strict=True)]
            results[name][f"{set_name}_chunks_per_s"] = len(texts) / statistics.median(secs)
            results[name][f"{set_name}_speedup"] = statistics.median(ratios)
            results[name][f"{set_name}_speedup_range"] = [min(ratios), max(ratios)]

    # Agreement with torch and dense retrieval.
    questions = [q["question"] for q in corpus.questions]
    gold = [set(q["evidence_doc_ids"]) for q in corpus.questions]
    answerable = np.array([bool(q["answerable"]) for q in corpus.questions])
    ref_top = ref_hit5 = ref_chunks = ref_queries = None
    for name, embed in embedders.items():
        # As the product embeds them: chunks in ingest's calls, questions one at a time (an
        # int8 vector depends a little on its batch: activations are quantised per call).
        chunks = np.concatenate(
            [
                np.asarray(embed(corpus.texts[at : at + BATCH]), dtype=np.float32)
                for at in range(0, len(corpus.texts), BATCH)
            ]
        )
        queries = np.concatenate([np.asarray(embed([q]), dtype=np.float32) for q in questions])
        if ref_chunks is None or ref_queries is None:
            ref_chunks, ref_queries = chunks, queries
        cos = (chunks * ref_chunks).sum(1)
        qcos = (queries * ref_queries).sum(1)
        top = top5(chunks, queries)
        ref_top = top if ref_top is None else ref_top
        hit1 = np.array([corpus.doc_ids[row[0]] in g for row, g in zip(top, gold, strict=True)])
        hit5 = np.array(
            [any(corpus.doc_ids[i] in g for i in row) for row, g in zip(top, gold, strict=True)]
        )
        ref_hit5 = hit5 if ref_hit5 is None else ref_hit5
        overlap = [len(set(a) & set(b)) / 5 for a, b in zip(top, ref_top, strict=True)]
        results[name].update(
            {
                "cos_min": float(cos.min()),
                "cos_mean": float(cos.mean()),
                "query_cos_min": float(qcos.min()),
                "hits@1": float(hit1[answerable].mean()),
                "hits@5": float(hit5[answerable].mean()),
                "hits@5_changed": int((hit5[answerable] != ref_hit5[answerable]).sum()),
                "hits@5_all": float(hit5.mean()),
                "top5_overlap": float(np.mean(overlap)),
            }
        )

    # One question at a time on one thread, as the chat process embeds them.
    torch.set_num_threads(1)
    results["torch"]["query_ms_1thread"] = query_ms(torch_emb.embed_query, questions)
    torch.set_num_threads(threads)
    for name in names:
        single = OnnxEmbeddings(model_dir, threads=1, model_file=args.out / f"{name}.onnx")
        results[name]["query_ms_1thread"] = query_ms(single.embed_query, questions)

    torch_h5 = results["torch"]["hits@5"]
    for name, r in results.items():
        misses = []
        if r["packed_speedup"] < SPEEDUP_BAR:
            misses.append(f"< {SPEEDUP_BAR}x")
        if r["hits@5"] < torch_h5 - HITS_TOLERANCE - 1e-9:
            misses.append(f"hits@5 more than {HITS_TOLERANCE} below torch")
        r["qualifies"] = name != "torch" and not misses
        r["verdict"] = "-" if name == "torch" else f"no ({', '.join(misses)})" if misses else "yes"

    print(
        f"\n== speed (chunks/s: median of {args.rounds} rounds, {BATCH}-chunk calls; speed-up: "
        "torch time / its time in the same round, median [min..max]; load: first load s; "
        "query: ms per single question, 1 thread, median)"
    )
    print(
        f"  {'backend':<16} {'squad ch/s':>10} {'speed-up':>20} {'packed ch/s':>11} "
        f"{'speed-up':>20} {'load s':>7} {'query ms':>8}"
    )
    for name, r in results.items():
        lo, hi = r["squad_speedup_range"]
        plo, phi = r["packed_speedup_range"]
        print(
            f"  {name:<16} {r['squad_chunks_per_s']:10.1f} "
            f"{r['squad_speedup']:6.2f}x [{lo:4.2f}..{hi:5.2f}] "
            f"{r['packed_chunks_per_s']:11.1f} "
            f"{r['packed_speedup']:6.2f}x [{plo:4.2f}..{phi:5.2f}] "
            f"{r['load_s']:7.2f} {r['query_ms_1thread']:8.1f}"
        )
    print(
        f"\n== quality (cosine to torch's vectors: SQuAD chunks min/mean, questions min; dense "
        f"hits@k of the gold doc over all {len(corpus.texts)} chunks: {n_ans} answerable "
        f"questions, and all {len(questions)}; top-5 overlap with torch's top 5, all questions)"
    )
    print(
        f"  {'backend':<16} {'cos min':>8} {'cos mean':>8} {'q cos min':>9} {'hits@1':>6} "
        f"{'hits@5':>6} {'h5 chg':>6} {'h5 all':>6} {'top5 ovl':>8}  qualifies (>= "
        f"{SPEEDUP_BAR}x packed, hits@5 at most {HITS_TOLERANCE} below torch)"
    )
    for name, r in results.items():
        print(
            f"  {name:<16} {r['cos_min']:8.4f} {r['cos_mean']:8.4f} {r['query_cos_min']:9.4f} "
            f"{r['hits@1']:6.3f} {r['hits@5']:6.3f} {r['hits@5_changed']:6d} "
            f"{r['hits@5_all']:6.3f} {r['top5_overlap']:8.3f}  {r['verdict']}"
        )

    if args.json:
        payload = {
            "threads": threads,
            "rounds": args.rounds,
            "chunks": {k: len(v) for k, v in sets.items()},
            "mean_tokens": corpus.mean_tokens,
            "questions": len(questions),
            "answerable": n_ans,
            "files": {
                n: {"bytes": (args.out / f"{n}.onnx").stat().st_size, "made_s": made.get(n)}
                for n in names
            },
            "times_s": times,
            "results": results,
        }
        args.json.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

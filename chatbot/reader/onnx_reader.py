"""The shipped reader at answer time: ONNX Runtime over question + passage windows, no torch.

For each passage it gives the best answer span (character offsets into the passage text) and
the passage's no-answer score; ``margin = span_score - null_score`` says how much the model
prefers that span to "this passage does not answer it"."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from chatbot.reader.features import MAX_TOKENS, STRIDE, Featurizer, Window, load_tokenizer

logger = logging.getLogger(__name__)

from chatbot.reader.model_dir import MODEL_DIR  # noqa: E402

MODEL_FILE = "reader-int8.onnx"
MAX_ANSWER_TOKENS = 30
TOP_N = 20
# A long best span ("Sessions said in a memo ... offices") keeps the best span this short too.
SHORT_TOKENS = 8
NO_SHORT = (float("-inf"), "")


class ReaderUnavailableError(RuntimeError):
    """The reader's files are missing or unreadable; the message names the path."""


@dataclass(frozen=True)
class Span:
    """A passage's best answer: ``text == passage[start:end]``."""

    passage: int
    start: int
    end: int
    text: str
    span_score: float
    null_score: float
    # the best span of at most SHORT_TOKENS tokens in the same passage, and its score
    short_text: str = ""
    short_score: float = float("-inf")

    @property
    def margin(self) -> float:
        return self.span_score - self.null_score


def model_config(model_dir: Path = MODEL_DIR) -> dict:
    """``reader.json``: windowing, the calibrated threshold and the run's provenance."""
    path = model_dir / "reader.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReaderUnavailableError(f"reader model not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ReaderUnavailableError(f"{path}: not JSON ({exc.msg})") from None


class OnnxReader:
    """Loads the ONNX file on construction; ``read`` is safe to call from several threads."""

    def __init__(
        self, model_dir: Path = MODEL_DIR, model_file: str | None = None, threads: int = 1
    ) -> None:
        import onnxruntime as ort

        model_dir = Path(model_dir)
        self.config = model_config(model_dir)
        path = model_dir / (model_file or self.config.get("file", MODEL_FILE))
        if not path.exists():
            raise ReaderUnavailableError(f"reader model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self.featurizer = Featurizer(
            load_tokenizer(model_dir / "tokenizer.json"),
            max_tokens=int(self.config.get("max_tokens", MAX_TOKENS)),
            stride=int(self.config.get("stride", STRIDE)),
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    def logits(self, windows: list[Window]):
        """Start and end logits, one row per window (padded columns are -inf)."""
        import numpy as np

        width = max(len(w.ids) for w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, w in enumerate(windows):
            ids[row, : len(w.ids)] = w.ids
            types[row, : len(w.ids)] = w.type_ids
            mask[row, : len(w.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        start, end = self.session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        start = np.where(mask > 0, start, -np.inf)
        end = np.where(mask > 0, end, -np.inf)
        return start, end

    def reads_whole(self, question: str) -> bool:
        return self.featurizer.reads_whole(question)

    def read(self, question: str, passages: list[str]) -> list[Span | None]:
        """Each passage's best span and no-answer score (None for an empty passage)."""
        import numpy as np

        if not passages:
            return []
        windows = [
            w
            for w in self.featurizer.featurize(question, passages)
            if w.context_start < len(w.ids) - 1
        ]
        best: list[Span | None] = [None] * len(passages)
        short: dict[int, tuple[float, str]] = {}
        if not windows:
            return best
        start, end = self.logits(windows)
        nulls: dict[int, float] = {}
        for row, w in enumerate(windows):
            null = float(start[row, 0] + end[row, 0])
            nulls[w.passage] = min(nulls.get(w.passage, null), null)
            first, last = w.context_start, len(w.ids) - 2
            s_cand = first + np.argsort(-start[row, first : last + 1])[:TOP_N]
            e_cand = first + np.argsort(-end[row, first : last + 1])[:TOP_N]
            for s in s_cand:
                for e in e_cand:
                    if e < s or e - s + 1 > MAX_ANSWER_TOKENS:
                        continue
                    score = float(start[row, s] + end[row, e])
                    current = best[w.passage]
                    is_short = e - s + 1 <= SHORT_TOKENS
                    if is_short and score > short.get(w.passage, NO_SHORT)[0]:
                        a, b = w.offsets[s][0], w.offsets[e][1]
                        short[w.passage] = (score, passages[w.passage][a:b])
                    if current is None or score > current.span_score:
                        a, b = w.offsets[s][0], w.offsets[e][1]
                        text = passages[w.passage][a:b]
                        best[w.passage] = Span(w.passage, a, b, text, score, 0.0)
        return [
            None
            if span is None
            else replace(
                span,
                null_score=nulls[span.passage],
                short_score=short.get(span.passage, NO_SHORT)[0],
                short_text=short.get(span.passage, NO_SHORT)[1],
            )
            for span in best
        ]


_readers: dict[tuple[str, str | None, int], OnnxReader] = {}
_lock = threading.Lock()


def get_reader(
    model_dir: Path = MODEL_DIR, model_file: str | None = None, threads: int = 1
) -> OnnxReader:
    """One loaded reader per (folder, file, threads) in the process, made on first use."""
    key = (str(Path(model_dir).resolve()), model_file, threads)
    with _lock:
        if key not in _readers:
            _readers[key] = OnnxReader(Path(model_dir), model_file, threads)
            logger.info("loaded the reader model %s", _readers[key].path)
        return _readers[key]

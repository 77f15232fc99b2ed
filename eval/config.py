"""The eval harness's one settings object, built once at the entry point."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ingest import SettingsError
from ingest.config import PROJECT_ROOT
from ingest.settings import EnvSettings
from ingest.settings import described as _field

ENV_PREFIX = "DOCQA_EVAL_"

# The metrics the regression gate watches. Latency is deliberately absent: it varies with
# the machine and its load, so it would make the gate flaky.
PRIMARY_METRICS: tuple[str, ...] = (
    "hits@5",
    "answer_contains",
    "refusal_recall",
    "answered_when_answerable",
    "citation_precision",
)


@dataclass(frozen=True)
class EvalSettings(EnvSettings):
    """Every knob of the harness; ``DOCQA_EVAL_<FIELD>`` overrides each one, flags win."""

    env_prefix: ClassVar[str] = ENV_PREFIX

    k: int = _field(10, "Passages retrieved per question (hits@j is reported for j <= k).")
    tolerance: float = _field(
        0.02, "The gate fails when a primary metric drops by more than this (absolute, 0..1)."
    )
    cache_dir: Path = _field(
        PROJECT_ROOT / ".index" / "eval",
        "Where the throwaway indexes live, one per docs folder and index settings.",
    )
    evidence_overlap: float = _field(
        0.6,
        "A passage holds an evidence quote when it contains the whole quote, or one unbroken "
        "piece of it at least this share of its characters long (a quote cut by a chunk "
        "boundary).",
    )
    batch_size: int = _field(8, "Questions given to Chatbot.answer_batch at a time.")
    curve_points: int = _field(41, "Thresholds sampled for the refusal-threshold curve.")
    max_failures: int = _field(50, "At most this many failures are listed in report.md.")
    progress: bool = _field(True, "Show a progress bar (only on a terminal).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser())
        for name in ("k", "batch_size", "max_failures"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.curve_points < 2:
            raise SettingsError(f"curve_points must be at least 2, got {self.curve_points}")
        for name in ("tolerance", "evidence_overlap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SettingsError(f"{name} must be between 0 and 1, got {value}")

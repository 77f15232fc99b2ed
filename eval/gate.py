"""The regression gate: compare a report's primary metrics with an earlier report's."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.config import PRIMARY_METRICS

logger = logging.getLogger(__name__)


class BaselineError(ValueError):
    """A baseline report we cannot read; the message names the file."""


@dataclass(frozen=True)
class Regression:
    metric: str
    baseline: float
    current: float | None
    tolerance: float

    def describe(self) -> str:
        now = "n/a" if self.current is None else f"{self.current:.3f}"
        return f"{self.metric} {now} < baseline {self.baseline:.3f} - tolerance {self.tolerance:g}"


def load_baseline(path: Path | str) -> dict[str, Any]:
    """The ``metrics`` of an earlier ``report.json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"--baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"--baseline {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise BaselineError(f"--baseline {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    metrics = data.get("metrics") if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        raise BaselineError(f"--baseline {path}: no 'metrics' object; is it a report.json?")
    return data


def compare(
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    tolerance: float,
    metrics: Sequence[str] = PRIMARY_METRICS,
) -> list[Regression]:
    """The primary metrics that dropped by more than ``tolerance`` (absolute). A metric the
    baseline could not score (``None``) is not gated; one that the baseline scored and the
    current run could not is a regression."""
    out = []
    for name in metrics:
        before = baseline.get(name)
        if not isinstance(before, int | float):
            logger.info("gate: %s has no baseline value; not gated", name)
            continue
        now = current.get(name)
        if not isinstance(now, int | float) or now < before - tolerance - 1e-9:
            out.append(Regression(name, float(before), _num(now), tolerance))
    return out


def mismatch(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> str:
    """Why two reports may not be comparable (another set, other questions, another
    answerer or k), as one line; "" when they match."""
    now, before = current.get("meta", {}), baseline.get("meta", {})
    diffs = [
        f"{key} {before.get(key)!r} -> {now.get(key)!r}"
        for key in ("answerer", "k", "embedding_model", "chunk_size", "chunk_overlap")
        if key in before and before.get(key) != now.get(key)
    ]
    ids_now = {r.get("id") for r in current.get("rows", [])}
    ids_before = {r.get("id") for r in baseline.get("rows", [])}
    if ids_before and ids_now != ids_before:
        diffs.append(
            f"questions differ ({len(ids_before - ids_now)} gone, {len(ids_now - ids_before)} new)"
        )
    return "; ".join(diffs)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None

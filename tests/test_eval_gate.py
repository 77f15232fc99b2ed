"""The regression gate's comparison and baseline loading."""

from __future__ import annotations

import json

import pytest

from eval.config import PRIMARY_METRICS, EvalSettings
from eval.gate import BaselineError, compare, load_baseline
from ingest import SettingsError
from tests.conftest import write

BASE = {
    "hits@5": 0.90,
    "answer_contains": 0.60,
    "refusal_recall": 0.75,
    "answered_when_answerable": 0.80,
    "citation_precision": None,  # the baseline could not score it
    "latency_p95_ms": 20.0,
}


def test_drops_beyond_the_tolerance_are_named():
    now = {**BASE, "hits@5": 0.85, "answer_contains": 0.59, "citation_precision": 0.1}
    regressions = compare(now, BASE, tolerance=0.02)
    assert [r.metric for r in regressions] == ["hits@5"]
    assert regressions[0].describe() == "hits@5 0.850 < baseline 0.900 - tolerance 0.02"


def test_equal_better_or_within_tolerance_passes():
    assert compare(BASE, BASE, 0.02) == []
    better = {**BASE, "refusal_recall": 1.0, "hits@5": 0.881}
    assert compare(better, BASE, 0.02) == []


def test_latency_is_never_gated():
    assert "latency_p95_ms" not in PRIMARY_METRICS
    assert compare({**BASE, "latency_p95_ms": 5000.0}, BASE, 0.0) == []


def test_a_metric_that_can_no_longer_be_scored_is_a_regression():
    regressions = compare({**BASE, "refusal_recall": None}, BASE, 0.02)
    assert [r.metric for r in regressions] == ["refusal_recall"]
    assert "refusal_recall n/a < baseline 0.750" in regressions[0].describe()


def test_load_baseline_errors(tmp_path):
    with pytest.raises(BaselineError, match="no such file"):
        load_baseline(tmp_path / "none.json")
    with pytest.raises(BaselineError, match="not JSON"):
        load_baseline(write(tmp_path / "bad.json", "{"))
    with pytest.raises(BaselineError, match="no 'metrics' object"):
        load_baseline(write(tmp_path / "other.json", json.dumps({"rows": []})))
    good = write(tmp_path / "report.json", json.dumps({"metrics": BASE}))
    assert load_baseline(good)["metrics"]["hits@5"] == 0.9


def test_settings_from_env_and_validation():
    s = EvalSettings.from_env({"DOCQA_EVAL_TOLERANCE": "0.05", "DOCQA_EVAL_K": "5"}, k=7)
    assert s.tolerance == 0.05 and s.k == 7  # flags win over the environment
    with pytest.raises(SettingsError, match="DOCQA_EVAL_K must be a int"):
        EvalSettings.from_env({"DOCQA_EVAL_K": "ten"})
    with pytest.raises(SettingsError, match="tolerance must be between 0 and 1, got 2"):
        EvalSettings(tolerance=2)


def test_mismatch_names_what_differs():
    from eval.gate import mismatch

    base = {"meta": {"answerer": "extractive", "k": 10}, "rows": [{"id": "a"}, {"id": "b"}]}
    assert mismatch(base, base) == ""
    now = {"meta": {"answerer": "extractive", "k": 5}, "rows": [{"id": "a"}, {"id": "c"}]}
    assert mismatch(now, base) == "k 10 -> 5; questions differ (1 gone, 1 new)"

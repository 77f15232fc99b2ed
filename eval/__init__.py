"""Eval harness: score the chatbot's retrieval, answers, citations and refusals on a
question set (``python -m eval``), and gate on a baseline report."""

from __future__ import annotations

from eval.config import PRIMARY_METRICS, EvalSettings
from eval.dataset import DatasetError, EvalCase, load_set
from eval.gate import BaselineError, Regression, compare, load_baseline
from eval.harness import evaluate
from eval.report import terminal_table, write_reports
from eval.runner import EvalError

__all__ = [
    "PRIMARY_METRICS",
    "BaselineError",
    "DatasetError",
    "EvalCase",
    "EvalError",
    "EvalSettings",
    "Regression",
    "compare",
    "evaluate",
    "load_baseline",
    "load_set",
    "terminal_table",
    "write_reports",
]

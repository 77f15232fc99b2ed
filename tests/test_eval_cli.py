"""``python -m eval`` as a user runs it: bad input, the reports, the regression gate, and
the seeds gate that CI runs with the real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eval import __all__ as eval_all
from eval.__main__ import EXIT_BAD_INPUT, EXIT_OK, EXIT_REGRESSION
from tests.conftest import ROOT, run_eval, subprocess_env, write

DOCS = {
    "volcano.txt": "Mount Etna is an active volcano on the east coast of Sicily. Its most "
    "recent large eruption began in 2021. The volcano is about 3,300 metres high.",
    "bees.txt": "Honey bees tell each other where flowers are with a waggle dance. A colony "
    "usually has one queen, who can lay up to 2,000 eggs a day.",
    "library.txt": "The city library opens at nine in the morning on weekdays. Members may "
    "borrow up to twelve books at a time.",
}
QUESTIONS = [
    {
        "id": "etna",
        "question": "On which island is Mount Etna?",
        "answers": ["Sicily"],
        "answerable": True,
        "evidence": "active volcano on the east coast of Sicily",
        "evidence_doc_ids": ["volcano"],
    },
    {
        "id": "eggs",
        "question": "How many eggs can a queen bee lay in a day?",
        "answers": ["2,000", "up to 2,000"],
        "answerable": True,
        "evidence": "who can lay up to 2,000 eggs a day",
        "type": "number",
    },
    {
        "id": "books",
        "question": "How many books can a member borrow at once?",
        "answers": ["twelve"],
        "answerable": True,
        "evidence_doc_ids": ["library"],
    },
    {
        "id": "height",
        "question": "How high is it?",
        "answers": ["3,300 metres"],
        "answerable": True,
        "evidence": "The volcano is about 3,300 metres high.",
        "history": [
            {"role": "user", "content": "Where is Mount Etna?"},
            {"role": "assistant", "content": "On the east coast of Sicily [1]."},
        ],
    },
    {
        "id": "tennis",
        "question": "Who won the men's singles title at Wimbledon in 2019?",
        "answers": [],
        "answerable": False,
    },
]


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, Path]:
    for name, text in DOCS.items():
        write(tmp_path / "docs" / name, text)
    qset = write(tmp_path / "set.jsonl", "".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return tmp_path / "docs", qset


def test_public_api_is_pinned():
    import eval

    assert sorted(eval_all) == sorted(
        [
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
    )
    for name in eval_all:
        assert hasattr(eval, name)


def test_bad_input_exits_1_with_one_line(tmp_path, tiny, capsys):
    docs, qset = tiny
    code, _, err = run_eval(capsys, "--docs", docs)
    assert code == EXIT_BAD_INPUT and "--set" in err and len(err.strip().splitlines()) == 1
    bad = write(tmp_path / "bad.jsonl", json.dumps(QUESTIONS[0]) + "\n{oops\n")
    code, _, err = run_eval(capsys, "--docs", docs, "--set", bad, "--out", tmp_path / "o")
    assert code == EXIT_BAD_INPUT and f"{bad}:2: not valid JSON" in err
    code, _, err = run_eval(capsys, "--docs", tmp_path / "nope", "--set", qset)
    assert code == EXIT_BAD_INPUT and "not a folder" in err
    code, _, err = run_eval(
        capsys, "--docs", docs, "--set", qset, "--baseline", tmp_path / "missing.json"
    )
    assert code == EXIT_BAD_INPUT and "missing.json: no such file" in err
    code, _, err = run_eval(capsys, "--docs", docs, "--set", qset, "--k", "0")
    assert code == EXIT_BAD_INPUT and "k must be at least 1, got 0" in err


def test_gate_fails_naming_the_metric_that_dropped(tmp_path, tiny, capsys, monkeypatch):
    """Fake embeddings (fast): the run, a gate that passes, and one that fails."""
    monkeypatch.setenv("DOCQA_EMBEDDING_MODEL", "fake")
    docs, qset = tiny
    common = ["--docs", docs, "--set", qset, "--cache-dir", tmp_path / "cache", "-q"]
    code, out, _ = run_eval(capsys, *common, "--out", tmp_path / "first")
    assert code == EXIT_OK, out
    report = json.loads((tmp_path / "first" / "report.json").read_text(encoding="utf-8"))
    assert report["metrics"]["n_questions"] == 5

    code, out, _ = run_eval(
        capsys,
        *common,
        "--out",
        tmp_path / "same",
        "--baseline",
        tmp_path / "first/report.json",
        "--no-html",
    )
    assert code == EXIT_OK and "gate passed" in out
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["report.json", "report.md"]

    worse = dict(report)
    now = report["metrics"]["hits@5"]
    worse["metrics"] = {**report["metrics"], "hits@5": now + 0.1}
    baseline = write(tmp_path / "baseline.json", json.dumps(worse))
    code, out, err = run_eval(capsys, *common, "--out", tmp_path / "gated", "--baseline", baseline)
    assert code == EXIT_REGRESSION
    assert f"regression: hits@5 {now:.3f} < baseline {now + 0.1:.3f} - tolerance 0.02" in err
    assert "gate failed" in err and "hits@5" in err.splitlines()[-1]
    assert "baseline" in out  # the table shows the comparison
    # a looser tolerance lets the same drop through
    code, _, _ = run_eval(
        capsys, *common, "--out", tmp_path / "loose", "--baseline", baseline, "--tolerance", "0.2"
    )
    assert code == EXIT_OK


def test_corpus_flag_asks_only_that_corpus(tmp_path, tiny, capsys, monkeypatch):
    """--corpus keeps the cases of that corpus and those naming none; the rest are left out
    and counted in the summary."""
    monkeypatch.setenv("DOCQA_EMBEDDING_MODEL", "fake")
    docs, _ = tiny
    corpus_of = {"etna": "volcanoes", "eggs": "bees", "height": "volcanoes", "tennis": "bees"}
    mixed = [{**q, "corpus": corpus_of[q["id"]]} if q["id"] in corpus_of else q for q in QUESTIONS]
    qset = write(tmp_path / "mixed.jsonl", "".join(json.dumps(q) + "\n" for q in mixed))
    common = ["--docs", docs, "--set", qset, "--cache-dir", tmp_path / "cache", "-q", "--no-html"]
    code, out, err = run_eval(capsys, *common, "--out", tmp_path / "bees", "--corpus", "bees")
    assert code == EXIT_OK, err
    assert "corpus bees: 2 question(s) of other corpora left out" in out
    report = json.loads((tmp_path / "bees" / "report.json").read_text(encoding="utf-8"))
    assert [r["id"] for r in report["rows"]] == ["eggs", "books", "tennis"]
    assert [r["corpus"] for r in report["rows"]] == ["bees", "", "bees"]
    assert report["meta"]["corpus"] == "bees" and report["meta"]["left_out"] == 2
    assert report["metrics"]["n_questions"] == 3 and report["metrics"]["n_unanswerable"] == 1
    assert set(report["by_type"]) == {"number", "(no type)"}
    # without --corpus every case is asked
    code, out, _ = run_eval(capsys, *common, "--out", tmp_path / "all")
    report = json.loads((tmp_path / "all" / "report.json").read_text(encoding="utf-8"))
    assert code == EXIT_OK and report["metrics"]["n_questions"] == 5 and "left out" not in out
    # a corpus no case names, in a set where every case names one: nothing left to ask
    only_named = write(
        tmp_path / "named.jsonl",
        "".join(json.dumps(q) + "\n" for q in mixed if q["id"] in corpus_of),
    )
    code, _, err = run_eval(
        capsys, "--docs", docs, "--set", only_named, "--corpus", "squad_v2", "-q"
    )
    assert code == EXIT_BAD_INPUT
    assert "--corpus squad_v2: no question of" in err and "bees, volcanoes" in err


@pytest.mark.model
def test_cli_end_to_end_with_the_real_model(tmp_path, tiny, capsys):
    docs, qset = tiny
    out_dir = tmp_path / "out"
    code, out, err = run_eval(
        capsys, "--docs", docs, "--set", qset, "--out", out_dir, "--cache-dir", tmp_path / "c"
    )
    assert code == EXIT_OK, err
    assert "hits@5*" in out and "declined when unanswerable*" in out
    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    met = report["metrics"]
    assert met["n_questions"] == 5 and met["n_answerable"] == 4 and met["n_unanswerable"] == 1
    # three one-chunk documents and k=10: every passage is retrieved
    assert met["hits@5"] == 1.0 and met["evidence_recall"] == 1.0
    assert report["meta"]["index"] == {**report["meta"]["index"], "documents": 3, "chunks": 3}
    for key in ("answer_contains", "answer_f1", "refusal_recall", "answered_when_answerable"):
        assert met[key] is not None and 0.0 <= met[key] <= 1.0
    assert met["latency_p50_ms"] > 0 and met["latency_p95_ms"] >= met["latency_p50_ms"]
    rows = {r["id"]: r for r in report["rows"]}
    assert list(rows) == [q["id"] for q in QUESTIONS]
    assert rows["height"]["history"] and rows["height"]["answer"]["standalone_query"]
    assert rows["tennis"]["scores"]["hits@1"] is None  # unanswerable: no retrieval score
    for r in rows.values():
        assert {"question", "answer", "citations", "gold", "scores", "outcome"} <= set(r)
    html = (out_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 4 and all(f'id="q-{q["id"]}"' in html for q in QUESTIONS)
    assert "## Summary" in (out_dir / "report.md").read_text(encoding="utf-8")

    # a second run reuses the index: nothing is embedded again
    code, _, _ = run_eval(
        capsys, "--docs", docs, "--set", qset, "--out", out_dir, "--cache-dir", tmp_path / "c"
    )
    again = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert code == EXIT_OK and "unchanged 3" in again["meta"]["index"]["ingest"]


@pytest.mark.model
@pytest.mark.parametrize(
    ("set_name", "corpus", "baseline"),
    [("seeds", None, "seeds"), ("natural", "seeds", "natural-seeds")],
)
def test_seeds_gate_against_the_committed_baseline(tmp_path, set_name, corpus, baseline):
    """What CI runs: the seeds set, and the natural set's questions about the seed article,
    with the real model, each gated on its committed baseline."""
    args = [
        sys.executable, "-m", "eval",
        "--docs", ROOT / "seeds",
        "--set", ROOT / "eval" / "sets" / f"{set_name}.jsonl",
        "--out", tmp_path / "out",
        "--cache-dir", tmp_path / "cache",
        "--baseline", ROOT / "eval" / "baselines" / baseline / "report.json",
        "-q",
    ]  # fmt: skip
    if corpus:
        args += ["--corpus", corpus]
    result = subprocess.run(
        args, env=subprocess_env(), capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == EXIT_OK, result.stderr + result.stdout
    assert "gate passed" in result.stdout

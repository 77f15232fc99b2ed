"""Collections through the entry points: ``python -m chatbot ask --collection``, ``python -m
eval --collection`` (an existing collection evaluated as it is, nothing built) and ``python
-m eval feedback --collection``. Fake embedding, real Chroma."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.conversations import DOWN, UP, ConversationStore
from chatbot.types import Answer, Citation
from eval.__main__ import EXIT_BAD_INPUT, EXIT_OK
from ingest import IngestSettings, ingest_paths
from ingest.manifest import Manifest
from tests.conftest import ROOT, run_eval, subprocess_env, write

SEED = "000_762628c52ecf43e6.txt"
ZORBLAT = (
    "The Zorblat Festival\n\nThe Zorblat festival is held every year in June in the Breton "
    "town of Quimper. It was founded in 1987 by the baker Annick Le Goff.\n"
)
QUESTION = "When is the Zorblat festival held?"


@pytest.fixture
def index(tmp_path: Path) -> Path:
    """An index with the seeds in 'docs' and one festival article in 'festivals'."""
    base = IngestSettings(index_dir=tmp_path / "idx", embedding_model="fake", progress=False)
    assert ingest_paths([ROOT / "seeds"], base).exit_code == 0
    folder = write(tmp_path / "fest" / "zorblat.txt", ZORBLAT).parent
    assert ingest_paths([folder], base.replace(collection="festivals")).exit_code == 0
    return base.index_dir


def ask(index: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**subprocess_env(), "DOCQA_EMBEDDING_MODEL": "fake", "DOCQA_MIN_DENSE": "-1"}
    return subprocess.run(
        [sys.executable, "-m", "chatbot", "ask", "--index-dir", str(index), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ask_answers_from_the_collection_named(index: Path):
    done = ask(index, "--collection", "festivals", "--json", QUESTION)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert "June" in answer["text"]
    assert {c["source"] for c in answer["citations"]} == {"zorblat.txt"}

    default = json.loads(ask(index, "--json", QUESTION).stdout)
    passages = {p["source"] for p in default["trace"]["passages"]}
    assert passages == {SEED}  # the default collection holds only the seeds

    missing = ask(index, "--collection", "nope", QUESTION)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: no collection 'nope' in {index}: run 'python -m ingest --collection nope "
        "DIR' to build it"
    )


def test_eval_scores_an_existing_collection_as_it_is(index: Path, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DOCQA_EMBEDDING_MODEL", "fake")
    monkeypatch.setenv("DOCQA_MIN_DENSE", "-1")
    case = {"id": "q1", "question": QUESTION, "answers": ["June"], "answerable": True}
    qset = write(tmp_path / "set.jsonl", json.dumps(case) + "\n")
    manifest = Manifest(index, "festivals", read_only=True)
    generation = manifest.generation()
    manifest.close()
    out, cache = tmp_path / "out", tmp_path / "cache"
    common = ["--set", qset, "--out", out, "--cache-dir", cache, "-q", "--no-html"]

    code, stdout, err = run_eval(capsys, "--collection", "festivals", "--index-dir", index, *common)
    assert code == EXIT_OK, err
    assert "collection festivals (as it is): 1 documents" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["meta"]["collection"] == "festivals" and report["meta"]["docs"] == ""
    assert report["meta"]["index"]["documents"] == 1
    (row,) = report["rows"]
    assert row["id"] == "q1" and "June" in row["answer"]["short_answer"]
    assert [r["source"] for r in row["retrieved"]] == ["zorblat.txt"]
    assert report["metrics"]["n_questions"] == 1 and report["metrics"]["answer_contains"] == 1
    assert not cache.exists()  # no throwaway index was built
    manifest = Manifest(index, "festivals", read_only=True)
    assert manifest.generation() == generation  # nothing was ingested
    manifest.close()

    code, _, err = run_eval(capsys, "--collection", "nope", "--index-dir", index, *common)
    assert code == EXIT_BAD_INPUT and err.startswith("error: --collection nope: no collection")
    code, _, err = run_eval(capsys, *common)
    assert code == EXIT_BAD_INPUT and err.startswith("error: give --docs DIR (or --collection")
    code, _, err = run_eval(capsys, "--collection", "festivals", "--docs", tmp_path, *common)
    assert code == EXIT_BAD_INPUT and "takes no --docs" in err


def _judged(store: ConversationStore, collection: str, question: str, rating: int) -> None:
    cid = store.create(question, collection)
    turn = store.ask(cid, question)
    citation = Citation(1, "a.txt", "A", None, "c1", "It is in June.", 0, 14)
    answer = Answer(text="It is in June [1].", declined=False, citations=[citation])
    store.answer(turn, answer.to_dict())
    store.judge(turn, rating, correction="" if rating == UP else "In July")


def test_feedback_export_of_one_collection(tmp_path: Path, capsys):
    db = tmp_path / "talk.sqlite3"
    store = ConversationStore(db)
    _judged(store, "docs", "Who said so?", UP)
    _judged(store, "festivals", QUESTION, UP)
    _judged(store, "festivals", "When was it founded?", DOWN)
    store.close()
    out = tmp_path / "fest.jsonl"
    code, stdout, err = run_eval(
        capsys, "feedback", "--out", out, "--db", db, "--collection", "festivals"
    )
    assert code == EXIT_OK, err
    assert stdout.startswith("wrote 2 eval cases")
    questions = [json.loads(line)["question"] for line in out.read_text().splitlines()]
    assert questions == [QUESTION, "When was it founded?"]
    code, stdout, _ = run_eval(capsys, "feedback", "--out", out, "--db", db)
    assert code == EXIT_OK and stdout.startswith("wrote 3 eval cases")

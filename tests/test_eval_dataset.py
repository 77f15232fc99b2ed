"""Loading eval sets: the shared SQuAD sample as is, and validation errors naming the line."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from eval.dataset import DatasetError, EvalCase, corpora, load_set, select_corpus
from tests.conftest import ROOT, write

SQUAD = ROOT.parent / "shared" / "eval-data" / "squad_v2" / "questions.jsonl"

GOOD = {
    "id": "q1",
    "question": "Who decided?",
    "answers": ["Jeff Sessions"],
    "answerable": True,
    "evidence": "Jeff Sessions instructed",
    "evidence_doc_ids": ["seed"],
}


def lines(path: Path, *objs) -> Path:
    return write(path, "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))


@pytest.mark.skipif(not SQUAD.exists(), reason="shared SQuAD sample not present")
def test_squad_sample_loads_as_is():
    cases = load_set(SQUAD)
    assert len(cases) == 124
    assert all(isinstance(c, EvalCase) for c in cases)
    unanswerable = [c for c in cases if not c.answerable]
    assert unanswerable and all(not c.answers for c in unanswerable)
    assert all(c.evidence_doc_ids and not c.evidence for c in cases)
    assert cases[0].line == 1 and cases[0].type == "answerable"


def test_shipped_sets_load():
    offtopic = load_set(ROOT / "eval" / "sets" / "offtopic.jsonl")
    assert offtopic and all(not c.answerable and not c.has_evidence for c in offtopic)
    seeds = load_set(ROOT / "eval" / "sets" / "seeds.jsonl")
    assert len(seeds) >= 30


def test_fields_are_normalised(tmp_path):
    path = lines(
        tmp_path / "s.jsonl",
        GOOD,
        "",  # blank lines are skipped, line numbers still count them
        {
            "id": 7,
            "question": "And then?",
            "answers": [],
            "answerable": False,
            "history": [
                {"role": "user", "content": "Who decided?"},
                {"role": "assistant", "content": "Sessions [1]."},
            ],
            "type": "followup",
        },
    )
    first, second = load_set(path)
    assert first.evidence == ("Jeff Sessions instructed",) and first.line == 1
    assert first.evidence_doc_ids == ("seed",) and first.has_evidence
    assert second.id == "7" and second.line == 3 and len(second.history) == 2
    assert not second.has_evidence and second.type == "followup"
    assert EvalCase(**{**first.__dict__}).to_dict()["evidence"] == "Jeff Sessions instructed"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ({**GOOD, "answers": "Jeff Sessions"}, "'answers' must be a list of strings"),
        ({**GOOD, "answers": [1]}, "'answers' must be a list of strings"),
        ({**GOOD, "answers": [" "]}, "'answers' has an empty string"),
        ({k: v for k, v in GOOD.items() if k != "answerable"}, "missing 'answerable'"),
        ({**GOOD, "answerable": "yes"}, "'answerable' must be true or false"),
        ({**GOOD, "answers": []}, "an answerable question needs at least one of 'answers'"),
        ({**GOOD, "answerable": False}, "an unanswerable question must have empty 'answers'"),
        ({**GOOD, "question": "  "}, "'question' must be a non-empty string"),
        ({**GOOD, "id": None}, "'id' must be a non-empty string"),
        ({**GOOD, "evidence": 3}, "'evidence' must be a quote or a list of quotes"),
        ({**GOOD, "evidence_doc_ids": "seed"}, "'evidence_doc_ids' must be a list of strings"),
        ({**GOOD, "history": [{"role": "bot", "content": "hi"}]}, "'history' turn 0"),
        ({**GOOD, "history": "hi"}, "'history' must be a list of turns"),
        ({**GOOD, "type": 3}, "'type' must be a string"),
        ({**GOOD, "corpus": ["seeds"]}, "'corpus' must be a corpus name"),
        ({**GOOD, "corpus": " seeds"}, "got ' seeds'"),
    ],
)
def test_errors_name_the_file_line_and_field(tmp_path, bad, message):
    path = lines(tmp_path / "set.jsonl", {**GOOD, "id": "ok"}, bad)
    with pytest.raises(DatasetError) as err:
        load_set(path)
    assert str(err.value).startswith(f"{path}:2: ")
    assert message in str(err.value)


def test_duplicate_ids_empty_and_missing_files(tmp_path):
    dup = lines(tmp_path / "dup.jsonl", GOOD, GOOD)
    with pytest.raises(DatasetError, match=r"dup.jsonl:2: duplicate id 'q1' \(first on line 1\)"):
        load_set(dup)
    with pytest.raises(DatasetError, match="no questions"):
        load_set(write(tmp_path / "empty.jsonl", "\n\n"))
    with pytest.raises(DatasetError, match="nope.jsonl: no such file"):
        load_set(tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="is a folder"):
        load_set(tmp_path)


def test_unknown_fields_are_warned_not_fatal(tmp_path, caplog):
    path = lines(tmp_path / "s.jsonl", {**GOOD, "context": "a paragraph"})
    with caplog.at_level(logging.WARNING, logger="eval.dataset"):
        assert len(load_set(path)) == 1
    assert "s.jsonl:1: ignoring unknown field(s) context" in caplog.text


def test_corpus_is_read_kept_and_selects_cases(tmp_path):
    path = lines(
        tmp_path / "mixed.jsonl",
        {**GOOD, "id": "s1", "corpus": "seeds"},
        {**GOOD, "id": "q1", "corpus": "squad_v2"},
        {**GOOD, "id": "m1", "corpus": "multihop_rag"},
        {**GOOD, "id": "any"},  # no corpus: asked whatever --corpus says
        {**GOOD, "id": "s2", "corpus": "seeds"},
    )
    cases = load_set(path)
    assert [c.corpus for c in cases] == ["seeds", "squad_v2", "multihop_rag", "", "seeds"]
    assert cases[0].to_dict()["corpus"] == "seeds"
    assert "corpus" not in cases[3].to_dict()
    assert load_set(lines(tmp_path / "again.jsonl", cases[1].to_dict()))[0].corpus == "squad_v2"
    assert corpora(cases) == ["multihop_rag", "seeds", "squad_v2"]
    kept, left_out = select_corpus(cases, "seeds")
    assert [c.id for c in kept] == ["s1", "any", "s2"] and left_out == 2
    kept, left_out = select_corpus(cases, "nowhere")
    assert [c.id for c in kept] == ["any"] and left_out == 4

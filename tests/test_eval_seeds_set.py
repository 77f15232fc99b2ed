"""The seeds eval set is honest: its quotes are the article's words and its answers are in
its quotes; it has enough questions of each kind."""

from __future__ import annotations

from eval.dataset import load_set
from ingest import load_document
from tests.conftest import ROOT, SEED

SET = ROOT / "eval" / "sets" / "seeds.jsonl"


def test_evidence_is_verbatim_and_holds_every_answer():
    text = load_document(SEED).text  # the loader drops the leading 'date ...' header
    cases = load_set(SET)
    for case in cases:
        for quote in case.evidence:
            assert quote in text, f"{case.id}: evidence not in the seed: {quote!r}"
        for answer in case.answers:
            assert any(answer in q for q in case.evidence), f"{case.id}: {answer!r} not in evidence"
        if case.answerable:
            assert case.evidence, f"{case.id}: an answerable question needs its evidence"
            assert case.evidence_doc_ids == (SEED.stem,)


def test_set_has_enough_of_each_kind():
    cases = load_set(SET)
    assert len(cases) >= 30
    assert sum(1 for c in cases if not c.answerable) >= 8
    assert sum(1 for c in cases if c.history) >= 4
    assert all(c.type for c in cases)


def test_questions_are_paraphrased_not_copied():
    """No question repeats a run of six words of the article."""
    words = load_document(SEED).text.lower().split()
    runs = {" ".join(words[i : i + 6]) for i in range(len(words) - 5)}
    for case in load_set(SET):
        q = case.question.lower().split()
        copied = [
            " ".join(q[i : i + 6]) for i in range(len(q) - 5) if " ".join(q[i : i + 6]) in runs
        ]
        assert not copied, f"{case.id} copies the article: {copied[0]!r}"

"""The natural eval set (questions as people type them) is honest: every quote is the words
of the document it names, every answer is in its quotes, and it holds enough of each kind.

Questions on the seed article are checked against ``seeds/``; those on the shared corpora
(multihop_rag, squad_v2) against the documents in the shared folder (``$DOCQA_SHARED_DIR``,
else ``../shared`` next to the repository), skipped when that folder is absent.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.dataset import EvalCase, load_set
from tests.conftest import ROOT, SEED

SET = ROOT / "eval" / "sets" / "natural.jsonl"
SHARED = Path(os.environ.get("DOCQA_SHARED_DIR") or ROOT.parent / "shared")
CORPORA = {
    "seeds": re.compile(re.escape(SEED.stem)),
    "multihop_rag": re.compile(r"mh\d{4}"),
    "squad_v2": re.compile(r"sq\d{4}"),
}
KINDS = {
    "keyword",
    "short",
    "vague",
    "misspelt",
    "followup",
    "summary",
    "who-is",
    "multi-doc",
    "temporal",
    "unanswerable",
}
REQUIRED_KINDS = {"keyword", "misspelt", "followup", "summary", "who-is", "unanswerable"}


def raw_lines() -> dict[str, dict]:
    """The set read as plain JSON, by id: the source of ``corpus`` whether or not the loader
    keeps that field."""
    rows = [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines() if line]
    return {str(row["id"]): row for row in rows}


def cases() -> list[tuple[EvalCase, str]]:
    """Each case with its corpus; the loader's ``corpus`` when it has one must agree."""
    raw = raw_lines()
    out = []
    for case in load_set(SET):
        corpus = raw[case.id].get("corpus")
        loaded = getattr(case, "corpus", None)
        if loaded:
            assert loaded == corpus, f"{case.id}: loader says {loaded!r}, file says {corpus!r}"
        out.append((case, corpus))
    return out


def check_quotes(case: EvalCase, texts: list[str]) -> None:
    """Quote i is verbatim in document i; every answer is (ignoring case) in a quote."""
    assert len(case.evidence) == len(case.evidence_doc_ids) == len(texts), (
        f"{case.id}: one quote per evidence document"
    )
    for quote, doc_id, text in zip(case.evidence, case.evidence_doc_ids, texts, strict=True):
        assert quote in text, f"{case.id}: quote not verbatim in {doc_id}: {quote!r}"
    for answer in case.answers:
        assert any(answer.lower() in q.lower() for q in case.evidence), (
            f"{case.id}: answer {answer!r} is in none of its quotes"
        )


def test_set_loads_and_has_enough_of_each_kind():
    loaded = cases()
    assert len(loaded) >= 60
    assert sum(1 for c, _ in loaded if not c.answerable) >= 15
    kinds = Counter(c.type for c, _ in loaded)
    assert set(kinds) <= KINDS, f"unknown type labels: {set(kinds) - KINDS}"
    assert REQUIRED_KINDS <= set(kinds), f"missing type labels: {REQUIRED_KINDS - set(kinds)}"
    per_corpus = Counter(corpus for _, corpus in loaded)
    assert set(per_corpus) <= set(CORPORA), f"unknown corpus: {set(per_corpus) - set(CORPORA)}"
    assert per_corpus["seeds"] >= 30 and per_corpus["multihop_rag"] >= 25


def test_every_case_is_well_formed():
    for case, corpus in cases():
        assert corpus in CORPORA, f"{case.id}: corpus {corpus!r}"
        if case.answerable:
            assert case.evidence and case.evidence_doc_ids, f"{case.id}: needs its evidence"
            assert len(case.evidence) == len(case.evidence_doc_ids), f"{case.id}: quote per doc"
        else:
            assert not case.evidence and not case.evidence_doc_ids, f"{case.id}: no evidence"
        for doc_id in case.evidence_doc_ids:
            assert CORPORA[corpus].fullmatch(doc_id), f"{case.id}: {doc_id!r} not in {corpus}"
        if case.type == "followup":
            assert case.history, f"{case.id}: a follow-up needs its history"
        if case.type == "multi-doc":
            assert len(set(case.evidence_doc_ids)) >= 2, f"{case.id}: multi-doc needs 2 docs"
        if case.history:
            assert case.history[-1]["role"] == "assistant", f"{case.id}: history ends on a reply"


def test_seed_quotes_are_verbatim_and_hold_the_answers():
    text = SEED.read_text(encoding="utf-8")
    seeds = [c for c, corpus in cases() if corpus == "seeds"]
    assert seeds
    for case in seeds:
        check_quotes(case, [text] * len(case.evidence_doc_ids))


@pytest.mark.parametrize("corpus", ["multihop_rag", "squad_v2"])
def test_shared_quotes_are_verbatim_and_hold_the_answers(corpus: str):
    chosen = [c for c, name in cases() if name == corpus]
    if not chosen:
        pytest.skip(f"no {corpus} questions in the set")
    docs = SHARED / "eval-data" / corpus / "docs"
    if not docs.is_dir():
        pytest.skip(f"shared documents not found: {docs} (set DOCQA_SHARED_DIR)")
    for case in chosen:
        texts = []
        for doc_id in case.evidence_doc_ids:
            path = docs / f"{doc_id}.txt"
            assert path.is_file(), f"{case.id}: no document {path}"
            texts.append(path.read_text(encoding="utf-8"))
        check_quotes(case, texts)

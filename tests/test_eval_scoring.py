"""Scoring hand-made answers: rows, summary metrics, the threshold curve and the reports
(no model, no index)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chatbot import Answer, Citation, Passage, Trace
from eval.dataset import EvalCase
from eval.report import dump_json, html_report, json_report, markdown_report, terminal_table
from eval.runner import Outcome
from eval.scoring import (
    ANSWERED_UNANSWERABLE,
    DECLINED_ANSWERABLE,
    OK,
    WRONG_ANSWER,
    ScoreOptions,
    claims,
    retriever_order,
    score_outcome,
    summarize,
    supported_share,
    threshold_curve,
)

OPTS = ScoreOptions(k=10, min_overlap=0.6)
SESSIONS = "Jeff Sessions instructed federal prosecutors on Wednesday to seek the death penalty."
TRUMP = "The plan was announced by President Donald Trump earlier this week."
OTHER = "Bread needs flour, water, salt and time."


def passage(text: str, source: str, n: int, dense: float, fused: float) -> Passage:
    return Passage(
        chunk_id=f"{source}-{n}",
        text=text,
        source=f"{source}.txt",
        title=source,
        start=0,
        end=len(text),
        doc_id=source,
        n=n,
        dense_score=dense,
        fused_score=fused,
    )


def cite(p: Passage, n: int, supported: bool = True) -> Citation:
    return Citation(
        n=n,
        source=p.source,
        title=p.title,
        date=None,
        chunk_id=p.chunk_id,
        quote=p.text,
        start=p.start,
        end=p.end,
        supported=supported,
        support=1.0 if supported else 0.1,
        passage=p.text,
    )


# The extractive answerer reorders passages: [1] is the reranked best, the retriever had it 2nd.
P_SESSIONS = passage(SESSIONS, "news", 1, 0.6, 0.030)
P_TRUMP = passage(TRUMP, "news2", 2, 0.5, 0.032)
P_OTHER = passage(OTHER, "bread", 3, 0.1, 0.010)
PASSAGES = [P_SESSIONS, P_TRUMP, P_OTHER]


def case(**kw) -> EvalCase:
    base = {
        "id": "q",
        "question": "Who told prosecutors to seek executions?",
        "answers": ("Jeff Sessions",),
        "answerable": True,
        "evidence": ("Jeff Sessions instructed federal prosecutors",),
        "evidence_doc_ids": ("news",),
        "line": 1,
    }
    base.update(kw)
    return EvalCase(**base)


def answered(text: str, citations: list[Citation], short: str | None = None, **kw) -> Answer:
    return Answer(
        text=text,
        declined=False,
        citations=citations,
        short_answer=short,
        trace=Trace(passages=list(PASSAGES), timings_ms={"total": 12.0}),
        **kw,
    )


def declined() -> Answer:
    return Answer(
        text="The documents don't say: no passage is about this.",
        declined=True,
        citations=[cite(P_SESSIONS, 1, supported=False)],
        trace=Trace(passages=list(PASSAGES), timings_ms={"total": 9.0}),
    )


def test_ranking_is_the_chains_order_then_fused_score():
    # The chain numbers passages after its rerank stage: [1] is its top passage.
    assert [p.n for p in retriever_order(PASSAGES)] == [1, 2, 3]
    unnumbered = [replace(p, n=0) for p in PASSAGES]
    assert [p.chunk_id for p in retriever_order(unnumbered)] == [
        p.chunk_id for p in sorted(PASSAGES, key=lambda p: -p.fused_score)
    ]


def test_correct_cited_answer():
    a = answered(f"Jeff Sessions [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)], "Jeff Sessions")
    row = score_outcome(Outcome(case(), a, 12.0), OPTS)
    s = row["scores"]
    assert (s["hits@1"], s["hits@3"], s["mrr@10"]) == (1.0, 1.0, 1.0)  # [1] holds the evidence
    assert s["evidence_recall"] == 1.0
    assert s["answer_contains"] == 1.0 and s["answer_f1"] == 1.0
    assert s["citation_precision"] == 1.0 and s["citation_supported"] == 1.0
    assert row["outcome"] == OK and row["best_dense"] == 0.6
    assert [p["relevant"] for p in row["retrieved"]] == [True, False, False]


def test_wrong_answer_with_a_bad_citation_and_an_unsupported_sentence():
    a = answered(
        f"> {TRUMP} [1]\n\nThis sentence cites nothing at all.",
        [cite(P_TRUMP, 1)],
        unsupported_sentences=["This sentence cites nothing at all."],
    )
    row = score_outcome(Outcome(case(), a, 10.0), OPTS)
    s = row["scores"]
    assert s["answer_contains"] == 0.0 and s["answer_f1"] == 0.0
    assert s["citation_precision"] == 0.0
    assert s["citation_supported"] == 0.5
    assert row["outcome"] == WRONG_ANSWER


def test_declined_answerable_scores_zero_and_no_citation_metrics():
    row = score_outcome(Outcome(case(), declined(), 9.0), OPTS)
    s = row["scores"]
    assert row["declined"] and row["outcome"] == DECLINED_ANSWERABLE
    assert s["answer_contains"] == 0.0 and s["answer_f1"] == 0.0
    assert s["citation_precision"] is None and s["citation_supported"] is None
    assert s["hits@3"] == 1.0  # retrieval is scored whatever the answerer did


def test_unanswerable_and_no_evidence_are_left_out_of_retrieval():
    u = case(id="u", answers=(), answerable=False, evidence=(), evidence_doc_ids=("news",))
    row = score_outcome(Outcome(u, answered(f"> {SESSIONS} [1]", [cite(P_SESSIONS, 1)]), 5.0), OPTS)
    assert row["outcome"] == ANSWERED_UNANSWERABLE
    assert all(row["scores"][k] is None for k in ("hits@1", "answer_f1", "citation_precision"))
    ok = score_outcome(Outcome(u, declined(), 5.0), OPTS)
    assert ok["outcome"] == OK
    bare = case(id="b", evidence=(), evidence_doc_ids=())
    row = score_outcome(Outcome(bare, declined(), 5.0), OPTS)
    assert row["scores"]["hits@1"] is None and row["scores"]["evidence_recall"] is None


def test_several_evidence_documents():
    multi = case(evidence=(), evidence_doc_ids=("news", "news2", "missing"))
    row = score_outcome(Outcome(multi, declined(), 5.0), OPTS)
    assert row["scores"]["evidence_recall"] == pytest.approx(2 / 3)
    assert row["scores"]["hits@1"] == 1.0  # by document, news2 (retriever's first) counts


def test_a_refused_question_counts_as_declined():
    row = score_outcome(Outcome(case(), None, 1.0, error="the question is empty"), OPTS)
    assert row["declined"] and row["outcome"] == "error"
    assert row["scores"]["hits@1"] is None and row["scores"]["answer_contains"] == 0.0


def test_claims_and_supported_share():
    text = "Jeff Sessions [1].\n\n> U.S. Attorney General Sessions did it. [1]\n\nSources:"
    assert claims(text) == ["Jeff Sessions .", "U.S. Attorney General Sessions did it."]
    assert claims("Sources:\nA long uncited sentence with words.") == [
        "A long uncited sentence with words."
    ]
    assert claims("") == []
    assert supported_share(text, []) == 1.0
    # the chatbot may split differently ("U.S." as a stop): overlap still finds the claim
    assert supported_share(text, ["Attorney General Sessions did it."]) == 0.5
    assert supported_share("", ["x"]) is None


def rows_for_summary() -> list[dict]:
    good = answered(
        f"Jeff Sessions [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)], "Jeff Sessions"
    )
    u = case(id="u", answers=(), answerable=False, evidence=(), evidence_doc_ids=())
    low = Answer(
        text="declined",
        declined=True,
        trace=Trace(passages=[passage(OTHER, "bread", 1, 0.1, 0.01)]),
    )
    floored = Outcome(case(id="f"), low, 30.0)
    floored.unfloored = good  # without the floor it answers right
    return [
        score_outcome(Outcome(case(id="a"), good, 10.0), OPTS),
        score_outcome(floored, OPTS),
        score_outcome(Outcome(u, answered(f"> {SESSIONS} [1]", [cite(P_SESSIONS, 1)]), 20.0), OPTS),
        score_outcome(Outcome(replace(u, id="u2"), declined(), 40.0), OPTS),
    ]


def test_summary_metrics():
    rows = rows_for_summary()
    met = summarize(rows, k=10)
    assert met["n_questions"] == 4 and met["n_answerable"] == 2 and met["n_unanswerable"] == 2
    assert met["answer_contains"] == 0.5
    assert met["refusal_recall"] == 0.5
    assert met["answered_when_answerable"] == 0.5
    assert met["decline_precision"] == 0.5
    assert met["citation_precision"] == 1.0
    assert met["latency_p50_ms"] == 25.0
    assert met["hits@10"] == 0.5  # the floored one only retrieved bread


def test_threshold_curve_uses_the_unfloored_answer():
    rows = rows_for_summary()
    curve = threshold_curve(rows, current=0.2, points=5)
    assert curve["current"] == 0.2 and len(curve["thresholds"]) == 5
    assert curve["thresholds"][0] < 0.1 < 0.6 < curve["thresholds"][-1]
    # lowest threshold: both answerable answered right (one only without the floor),
    # and the one unanswerable that was answered stays answered
    assert curve["answered_correct"][0] == 1.0 and curve["wrong_unanswerable"][0] == 0.5
    # highest threshold: nothing passes
    assert curve["answered_correct"][-1] == 0.0 and curve["wrong_unanswerable"][-1] == 0.0


def test_reports_render(tmp_path):
    rows = rows_for_summary()
    report = {
        "version": 1,
        "meta": {
            "set": "s.jsonl",
            "docs": "docs",
            "created": "now",
            "answerer": "extractive",
            "k": 10,
            "min_dense": 0.2,
            "index": {"documents": 2, "chunks": 3, "bytes": 1000},
        },
        "metrics": summarize(rows, 10),
        "curve": threshold_curve(rows, 0.2, 5),
        "rows": rows,
    }
    table = terminal_table(report, baseline={"hits@5": 1.0})
    assert "hits@5*" in table and "baseline" in table and "-0.500" in table
    md = markdown_report(report, None, max_failures=1)
    assert "## Failures (2 of 4)" in md and "… and 1 more" in md
    html = html_report(report)
    assert html.count("<svg") == 4 and 'id="q-u"' in html and "<script>" in html
    data = json.loads(dump_json(json_report(report)))
    assert data["metrics"] == report["metrics"]
    assert "text" not in data["rows"][0]["retrieved"][0]


def test_a_wrong_short_answer_is_labelled_even_when_the_quotes_hold_the_gold():
    a = answered(f"Donald Trump [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)], "Donald Trump")
    row = score_outcome(Outcome(case(), a, 12.0), OPTS)
    assert row["scores"]["answer_contains"] == 1.0 and row["scores"]["answer_f1"] == 0.0
    assert row["outcome"] == "wrong short answer"

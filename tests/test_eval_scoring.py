"""Scoring hand-made answers: rows, summary metrics, the threshold curve and the reports
(no model, no index)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chatbot import Answer, Citation, Passage, Trace
from eval.dataset import EvalCase
from eval.report import dump_json, json_report, markdown_report, terminal_table
from eval.report_html import html_report
from eval.runner import Outcome
from eval.scoring import (
    ANSWERED_UNANSWERABLE,
    DECLINED_ANSWERABLE,
    OK,
    WRONG_ANSWER,
    ScoreOptions,
    claims,
    evidence_docs_cited,
    retriever_order,
    score_outcome,
    shown_order,
    supported_share,
)
from eval.summary import summarize, summarize_by_type, threshold_curve

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


def test_retrieval_order_is_the_fused_score_and_shown_order_the_final_n():
    # The retriever ranked news2 first (higher fused score); the rerank showed news as [1].
    assert [p.source for p in retriever_order(PASSAGES)] == ["news2.txt", "news.txt", "bread.txt"]
    assert [p.n for p in shown_order(PASSAGES)] == [1, 2, 3]
    # ties on the fused score go by chunk id, as rrf_fuse breaks them
    tied = [replace(P_TRUMP, fused_score=0.03), P_SESSIONS]
    assert [p.chunk_id for p in retriever_order(tied)] == ["news-1", "news2-2"]
    # without fused scores: the dense rank, then [n]
    bare = [
        replace(P_SESSIONS, fused_score=0.0, dense_rank=2),
        replace(P_TRUMP, fused_score=0.0, dense_rank=1),
        replace(P_OTHER, fused_score=0.0, dense_rank=None),
    ]
    assert [p.source for p in retriever_order(bare)] == ["news2.txt", "news.txt", "bread.txt"]
    # unnumbered passages are shown in retrieval order
    unnumbered = [replace(p, n=0) for p in PASSAGES]
    assert [p.source for p in shown_order(unnumbered)] == ["news2.txt", "news.txt", "bread.txt"]


def test_correct_cited_answer():
    a = answered(f"Jeff Sessions [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)], "Jeff Sessions")
    row = score_outcome(Outcome(case(), a, 12.0), OPTS)
    s = row["scores"]
    # the retriever had the evidence 2nd; the answer shows it as [1]
    assert (s["hits@1"], s["hits@3"], s["mrr@10"]) == (0.0, 1.0, 0.5)
    assert (s["shown_hits@1"], s["shown_hits@3"], s["shown_mrr@10"]) == (1.0, 1.0, 1.0)
    assert s["evidence_recall"] == 1.0 and s["shown_evidence_recall"] == 1.0
    assert s["answer_contains"] == 1.0 and s["answer_f1"] == 1.0
    assert s["citation_precision"] == 1.0 and s["citation_supported"] == 1.0
    assert s["evidence_docs_cited"] == 1.0
    assert row["outcome"] == OK and row["best_dense"] == 0.6
    # rows list the passages in retrieval order, with the [n] the answer showed
    assert [(p["rank"], p["n"]) for p in row["retrieved"]] == [(1, 2), (2, 1), (3, 3)]
    assert [p["relevant"] for p in row["retrieved"]] == [False, True, False]


def test_retrieval_scores_do_not_depend_on_the_answerers_order():
    """Two answerers over the same retrieval: one shows the evidence [1], one [3]."""
    c = case(evidence=(), evidence_doc_ids=("news",))
    first = answered("x", [])
    last = answered("x", [])
    last.trace.passages = [
        replace(P_SESSIONS, n=3),
        replace(P_TRUMP, n=1),
        replace(P_OTHER, n=2),
    ]
    a = score_outcome(Outcome(c, first, 1.0), OPTS)["scores"]
    b = score_outcome(Outcome(c, last, 1.0), OPTS)["scores"]
    for key in ("hits@1", "hits@3", "mrr@10", "evidence_recall"):
        assert a[key] == b[key], key
    assert a["mrr@10"] == 0.5
    assert (a["shown_hits@1"], b["shown_hits@1"]) == (1.0, 0.0)
    assert (a["shown_mrr@10"], b["shown_mrr@10"]) == (1.0, pytest.approx(1 / 3))
    assert (a["shown_hits@3"], b["shown_hits@3"]) == (1.0, 1.0)


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


def test_every_evidence_document_must_be_cited():
    two = case(evidence=(), evidence_doc_ids=("news", "news2"))
    # citing only one of the two evidence documents scores 0
    one = answered(f"> {SESSIONS} [1]", [cite(P_SESSIONS, 1)])
    row = score_outcome(Outcome(two, one, 5.0), OPTS)
    assert row["scores"]["evidence_docs_cited"] == 0.0
    # both (a source given as a path, an id with an extension: compared by file stem)
    both = answered(
        f"> {SESSIONS} [1]\n\n> {TRUMP} [2]",
        [cite(P_SESSIONS, 1), cite(replace(P_TRUMP, source="sub/news2.txt"), 2)],
    )
    assert evidence_docs_cited(replace(two, evidence_doc_ids=("news.txt", "news2")), both) == 1.0
    row = score_outcome(Outcome(two, both, 5.0), OPTS)
    assert row["scores"]["evidence_docs_cited"] == 1.0
    # a decline scores 0 although it lists the closest passages as citations
    assert score_outcome(Outcome(two, declined(), 5.0), OPTS)["scores"]["evidence_docs_cited"] == 0
    assert evidence_docs_cited(two, None) == 0.0
    # not scored: unanswerable, or no evidence documents (quotes only)
    u = case(answers=(), answerable=False, evidence_doc_ids=("news",))
    assert evidence_docs_cited(u, one) is None
    assert evidence_docs_cited(case(evidence_doc_ids=()), one) is None
    rows = [
        score_outcome(Outcome(replace(two, id="a"), one, 5.0), OPTS),
        score_outcome(Outcome(replace(two, id="b"), both, 5.0), OPTS),
        score_outcome(Outcome(replace(two, id="c"), both, 5.0), OPTS),
        score_outcome(Outcome(replace(u, id="d"), one, 5.0), OPTS),
    ]
    assert summarize(rows, k=10)["evidence_docs_cited"] == pytest.approx(2 / 3, abs=1e-4)


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
    assert met["hits@1"] == 0.0 and met["shown_hits@1"] == 0.5  # news2 was retrieved first
    assert met["evidence_docs_cited"] == 0.5


def test_summary_by_type():
    good = answered(f"Jeff Sessions [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)])
    u = case(answers=(), answerable=False, evidence=(), evidence_doc_ids=(), type="null_query")
    rows = [
        score_outcome(Outcome(case(id="a", type="inference_query"), good, 1.0), OPTS),
        score_outcome(Outcome(case(id="b", type="inference_query"), declined(), 1.0), OPTS),
        score_outcome(Outcome(case(id="c", type="comparison_query"), good, 1.0), OPTS),
        score_outcome(Outcome(replace(u, id="d"), declined(), 1.0), OPTS),
        score_outcome(Outcome(replace(u, id="e"), good, 1.0), OPTS),
        score_outcome(Outcome(replace(u, id="f"), declined(), 1.0), OPTS),
        score_outcome(Outcome(case(id="g"), good, 1.0), OPTS),
    ]
    by = summarize_by_type(rows)
    assert list(by) == ["inference_query", "comparison_query", "null_query", "(no type)"]
    inf = by["inference_query"]
    assert inf["n"] == 2 and inf["answered_when_answerable"] == 0.5
    assert inf["answer_contains"] == 0.5 and inf["evidence_docs_cited"] == 0.5
    assert inf["refusal_recall"] is None
    null = by["null_query"]
    assert null["n"] == 3 and null["refusal_recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert null["answered_when_answerable"] is None and null["answer_contains"] is None
    assert by["comparison_query"]["answer_contains"] == 1.0 and by["(no type)"]["n"] == 1


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
        "by_type": summarize_by_type(rows),
        "curve": threshold_curve(rows, 0.2, 5),
        "rows": rows,
    }
    table = terminal_table(report, baseline={"hits@5": 1.0})
    assert "hits@5*" in table and "baseline" in table and "-0.500" in table
    assert "hits@5, shown [n] order" in table and "every evidence doc cited" in table
    md = markdown_report(report, None, max_failures=1)
    assert "## Failures (2 of 4)" in md and "… and 1 more" in md
    # answered, contains gold, short EM, short F1, evidence docs cited, declined when unanswerable
    assert "## By type" in md
    assert "| (no type) | 4 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 |" in md
    html = html_report(report)
    assert html.count("<svg") == 4 and 'id="q-u"' in html and "<script>" in html
    assert "<h2>By type</h2>" in html
    data = json.loads(dump_json(json_report(report)))
    assert data["metrics"] == report["metrics"]
    assert "text" not in data["rows"][0]["retrieved"][0]


def test_a_wrong_short_answer_is_labelled_even_when_the_quotes_hold_the_gold():
    a = answered(f"Donald Trump [1].\n\n> {SESSIONS} [1]", [cite(P_SESSIONS, 1)], "Donald Trump")
    row = score_outcome(Outcome(case(), a, 12.0), OPTS)
    assert row["scores"]["answer_contains"] == 1.0 and row["scores"]["answer_f1"] == 0.0
    assert row["outcome"] == "wrong short answer"

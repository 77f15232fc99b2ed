"""Short-answer exact match and F1 (SQuAD 2.0's official normalisation) and the reader
model's no-answer decision: the metric functions against hand-computed values, the scored
rows, the summary per set and per type, and the reports (no model, no index)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chatbot import Answer, Trace
from eval import metrics as m
from eval.config import PRIMARY_METRICS
from eval.gate import compare, load_baseline
from eval.report import markdown_report, terminal_table
from eval.report_html import html_report
from eval.runner import Outcome
from eval.scoring import reader_decision, score_outcome, short_text
from eval.summary import summarize, summarize_by_type, threshold_curve
from tests.test_eval_scoring import OPTS, case, cite, passage

ROOT = Path(__file__).resolve().parents[1]
VACATION = "Full-time employees get 20 days of paid vacation a year."
P_VACATION = passage(VACATION, "handbook", 1, 0.7, 0.03)
READER_KEYS = ("reader_declined_unanswerable", "reader_declined_answerable")


# ---- the metric functions


def test_squad_normalize_is_the_official_one():
    # ASCII punctuation is deleted, not spaced (unlike normalize_answer, kept as it was)
    assert m.squad_normalize("The  Cat's hat!") == "cats hat"
    assert m.normalize_answer("The  Cat's hat!") == "cat s hat"
    assert m.squad_normalize("1,000 $") == "1000"
    assert m.squad_normalize("An apple, a pear and THE plum.") == "apple pear and plum"
    assert m.squad_normalize("theatre another") == "theatre another"  # whole words only
    # the official script strips string.punctuation only: curly quotes stay
    assert m.squad_normalize("“appropriate”") == "“appropriate”"
    assert m.squad_normalize("") == ""


def test_exact_match_hand_computed():
    assert m.exact_match("The 20 days.", ["20 days"]) == 1.0
    assert m.exact_match("about 20 days of vacation", ["20 days"]) == 0.0
    assert m.exact_match("an Apple, a pear!", ["apple pear"]) == 1.0  # articles, punctuation
    assert m.exact_match("20-days", ["20 days"]) == 0.0  # "-" is deleted: "20days"
    assert m.exact_match("1,000", ["1000"]) == 1.0
    # the max over several golds
    assert m.exact_match("Jeff Sessions", ["Donald Trump", "jeff sessions."]) == 1.0
    assert m.exact_match("Jeff", ["Donald Trump", "Jeff Sessions"]) == 0.0
    # no gold: not scored
    assert m.exact_match("anything", []) is None
    # a gold that normalises to nothing is dropped (the official rule), unless all do
    assert m.exact_match("", ["the", "20 days"]) == 0.0
    assert m.exact_match("", ["the"]) == 1.0


def test_squad_f1_hand_computed():
    assert m.squad_f1("The 20 days.", ["20 days"]) == 1.0
    # 2 of the 5 predicted tokens are gold, both gold tokens found:
    # P = 2/5, R = 1, F1 = 2 * (2/5 * 1) / (2/5 + 1) = 0.5714...
    assert m.squad_f1("about 20 days of vacation", ["20 days"]) == pytest.approx(4 / 7)
    assert m.squad_f1("about 20 days of vacation", ["20 days"]) == pytest.approx(0.571428, 1e-5)
    # articles do not count as tokens: "the attorney general jeff sessions" -> 4 tokens,
    # 2 shared with the 2 gold tokens: P = 1/2, R = 1, F1 = 2/3
    assert m.squad_f1("the Attorney General, Jeff Sessions", ["Jeff Sessions"]) == pytest.approx(
        2 / 3
    )
    # the max over golds: "Sessions" vs "Jeff Sessions": P = 1, R = 1/2, F1 = 2/3
    assert m.squad_f1("Sessions", ["Donald Trump", "Jeff Sessions"]) == pytest.approx(2 / 3)
    # a repeated token counts once per gold occurrence: P = 1/3, R = 1, F1 = 1/2
    assert m.squad_f1("days days days", ["days"]) == pytest.approx(0.5)
    assert m.squad_f1("", ["20 days"]) == 0.0
    assert m.squad_f1("Reuters", ["20 days"]) == 0.0
    assert m.squad_f1("20 days", []) is None
    assert m.squad_f1("", ["the", "20 days"]) == 0.0  # "the" is dropped as a gold


def test_short_answer_text_fallbacks():
    text = "## Vacation\n\n- **Employees** get 20 days [1].\n\n> Full-time employees... [1]"
    # the short answer when there is one (whitespace collapsed)
    assert m.short_answer_text(" 20  days ", [VACATION], text) == "20 days"
    # else the first citation's quote
    assert m.short_answer_text(None, ["First quote.", "Second."], text) == "First quote."
    assert m.short_answer_text("  ", ["First quote."], text) == "First quote."
    # else the answer without [n] markers and Markdown
    assert (
        m.short_answer_text(None, [], text)
        == "Vacation Employees get 20 days . Full-time employees..."
    )
    assert m.plain_answer_text("1. see [the policy](https://x.org/p) and `code`") == (
        "see the policy and code"
    )
    assert m.short_answer_text(None, [], "") == ""


# ---- scored rows


def vacation_case(**kw):
    base = {
        "id": "v",
        "question": "How many vacation days do I get?",
        "answers": ("20 days", "twenty days"),
        "evidence": (VACATION,),
        "evidence_doc_ids": ("handbook",),
    }
    return case(**{**base, **kw})


def reader_trace(margin: float, threshold: float = 2.0, **kw) -> Trace:
    reader = {
        "span": "20 days",
        "span_score": margin + 1.0,
        "null_score": 1.0,
        "margin": margin,
        "threshold": threshold,
        "declined": margin < threshold,
        **kw,
    }
    return Trace(passages=[P_VACATION], reader=reader)


def vacation_answer(short: str | None, *, margin: float | None = 5.9, text: str = "") -> Answer:
    return Answer(
        text=text or f"{short or 'Employees get 20 days'} [1].\n\n> {VACATION} [1]",
        declined=False,
        citations=[cite(P_VACATION, 1)],
        short_answer=short,
        trace=reader_trace(margin) if margin is not None else Trace(passages=[P_VACATION]),
    )


def declined_answer(*, margin: float | None = 0.5) -> Answer:
    return Answer(
        text="The documents don't say.",
        declined=True,
        citations=[cite(P_VACATION, 1, supported=False)],
        trace=reader_trace(margin) if margin is not None else Trace(passages=[P_VACATION]),
    )


def test_a_row_scores_the_short_answer_and_records_the_reader():
    row = score_outcome(Outcome(vacation_case(), vacation_answer("The 20 days."), 5.0), OPTS)
    s = row["scores"]
    assert s["short_em"] == 1.0 and s["short_f1"] == 1.0
    assert row["answer"]["short_text"] == "The 20 days."
    assert row["reader_declined"] is False and row["reader_margin"] == 5.9
    # the existing answer metrics are as before
    assert s["answer_contains"] == 1.0 and s["answer_f1"] == 1.0

    wordy = score_outcome(
        Outcome(vacation_case(), vacation_answer("about 20 days of vacation"), 5.0), OPTS
    )["scores"]
    assert wordy["short_em"] == 0.0 and wordy["short_f1"] == pytest.approx(4 / 7, abs=1e-4)


def test_a_row_without_a_short_answer_scores_the_first_quote():
    a = vacation_answer(None, margin=None)
    assert short_text(a) == VACATION
    row = score_outcome(Outcome(vacation_case(), a, 5.0), OPTS)
    # the quote normalises to 9 tokens, 2 of them gold
    tokens = m.squad_normalize(VACATION).split()
    assert tokens == [
        "fulltime",
        "employees",
        "get",
        "20",
        "days",
        "of",
        "paid",
        "vacation",
        "year",
    ]
    # P = 2/9, R = 2/2, F1 = 2 * (2/9) / (2/9 + 1) = 4/11
    assert row["scores"]["short_em"] == 0.0
    assert row["scores"]["short_f1"] == pytest.approx(4 / 11, abs=1e-4)
    # the rules answerer leaves no reader trace
    assert row["reader_declined"] is None and row["reader_margin"] is None


def test_declined_and_unanswerable_rows():
    declined = score_outcome(Outcome(vacation_case(), declined_answer(), 5.0), OPTS)
    assert declined["scores"]["short_em"] == 0.0 and declined["scores"]["short_f1"] == 0.0
    assert declined["answer"]["short_text"] == ""
    assert declined["reader_declined"] is True and declined["reader_margin"] == 0.5
    # declined scores 0 even against a gold that normalises to nothing
    empty_gold = vacation_case(answers=("the",))
    row = score_outcome(Outcome(empty_gold, declined_answer(), 5.0), OPTS)
    assert row["scores"]["short_em"] == 0.0
    # unanswerable: not scored on short answers
    u = vacation_case(answers=(), answerable=False, evidence=(), evidence_doc_ids=())
    row = score_outcome(Outcome(u, vacation_answer("20 days"), 5.0), OPTS)
    assert row["scores"]["short_em"] is None and row["scores"]["short_f1"] is None
    # an error: no answer, no reader decision, scored 0 as a decline
    row = score_outcome(Outcome(vacation_case(), None, 1.0, error="boom"), OPTS)
    assert row["scores"]["short_em"] == 0.0 and row["reader_declined"] is None


def test_reader_decision_without_a_declined_flag_reads_the_margin():
    a = vacation_answer("20 days")
    a.trace.reader = {"margin": 1.5, "threshold": 2.0}
    assert reader_decision(a) == (True, 1.5)
    a.trace.reader = {"margin": 3}
    assert reader_decision(a) == (None, 3.0)
    assert reader_decision(None) == (None, None)


# ---- the summary and the reports


def fake_rows() -> list[dict]:
    """Six questions over two types; the reader decided five of them (one rules answer):

    ============  ==========  ===========  ===============  ========  ========
    id            type        answerable   reader           short_em  short_f1
    ============  ==========  ===========  ===============  ========  ========
    a             policy      yes          answered         1         1
    b             policy      yes          answered         0         4/7
    c             policy      yes          declined         0         0
    d             policy      yes          (rules answer)   0         4/11
    u1            trap        no           declined         n/a       n/a
    u2            trap        no           answered         n/a       n/a
    ============  ==========  ===========  ===============  ========  ========
    """
    u = vacation_case(answers=(), answerable=False, evidence=(), evidence_doc_ids=(), type="trap")
    outcomes = [
        Outcome(vacation_case(id="a", type="policy"), vacation_answer("the 20 days"), 10.0),
        Outcome(
            vacation_case(id="b", type="policy"), vacation_answer("about 20 days of vacation"), 20.0
        ),
        Outcome(vacation_case(id="c", type="policy"), declined_answer(), 30.0),
        Outcome(vacation_case(id="d", type="policy"), vacation_answer(None, margin=None), 40.0),
        Outcome(replace(u, id="u1"), declined_answer(margin=-1.0), 50.0),
        Outcome(replace(u, id="u2"), vacation_answer("20 days", margin=3.0), 60.0),
    ]
    return [score_outcome(o, OPTS) for o in outcomes]


def test_summary_short_answers_and_reader_shares():
    met = summarize(fake_rows(), k=10)
    # (1 + 0 + 0 + 0) / 4 and (1 + 4/7 + 0 + 4/11) / 4
    assert met["short_em"] == 0.25
    assert met["short_f1"] == pytest.approx((1 + 4 / 7 + 4 / 11) / 4, abs=1e-4)
    # the reader decided a, b, c (answerable: declined c) and u1, u2 (declined u1)
    assert met["reader_declined_unanswerable"] == 0.5
    assert met["reader_declined_answerable"] == pytest.approx(1 / 3, abs=1e-4)
    assert met["n_reader"] == 5
    # the existing metrics are still there and unchanged in meaning
    assert met["answer_contains"] == 0.75 and met["refusal_recall"] == 0.5


def test_summary_by_type_short_answers_and_reader_shares():
    by = summarize_by_type(fake_rows())
    policy, trap = by["policy"], by["trap"]
    assert policy["short_em"] == 0.25
    assert policy["short_f1"] == pytest.approx((1 + 4 / 7 + 4 / 11) / 4, abs=1e-4)
    assert policy["reader_declined_answerable"] == pytest.approx(1 / 3, abs=1e-4)
    assert policy["reader_declined_unanswerable"] is None and policy["n_reader"] == 3
    assert trap["short_em"] is None and trap["short_f1"] is None
    assert trap["reader_declined_unanswerable"] == 0.5 and trap["n_reader"] == 2
    assert trap["reader_declined_answerable"] is None


def test_without_reader_data_no_reader_metrics():
    rows = [r for r in fake_rows() if r["reader_declined"] is None]
    assert not any(k in summarize(rows, k=10) for k in (*READER_KEYS, "n_reader"))
    assert not any(k in summarize_by_type(rows)["policy"] for k in READER_KEYS)


def report_of(rows: list[dict]) -> dict:
    return {
        "version": 1,
        "meta": {
            "set": "s.jsonl",
            "docs": "docs",
            "created": "now",
            "answerer": "extractive",
            "k": 10,
            "min_dense": 0.2,
            "index": {"documents": 1, "chunks": 1, "bytes": 1000},
        },
        "metrics": summarize(rows, 10),
        "by_type": summarize_by_type(rows),
        "curve": threshold_curve(rows, 0.2, 5),
        "rows": rows,
    }


def test_reports_show_short_answers_and_the_reader():
    report = report_of(fake_rows())
    table = terminal_table(report)
    assert "short answer EM" in table and "short answer F1" in table
    assert "reader declined when unanswerable" in table and "reader declined unans." in table
    line = next(ln for ln in table.splitlines() if "reader declined when answerable" in ln)
    assert line.split()[-2:] == ["0.333", "3"]  # value and n (answerable questions decided)
    md = markdown_report(report, None, max_failures=10)
    assert "| answers | short answer EM | 0.250 | 4 |" in md
    assert "| reader | reader declined when unanswerable | 0.500 | 2 |" in md
    # by type: type, n, answered, contains, short EM, short F1, docs cited, declined, reader
    assert "| trap | 2 | n/a | n/a | n/a | n/a | n/a | 0.500 | 0.500 | n/a |" in md
    html = html_report(report)
    assert "short answer EM" in html and "Reader: declined, margin 0.500" in html
    assert "Short answer scored: about 20 days of vacation" in html
    # without reader data, no reader rows or columns
    plain = report_of([r for r in fake_rows() if r["reader_declined"] is None])
    assert "reader" not in terminal_table(plain) and "reader" not in markdown_report(plain, None, 5)


def test_the_gate_and_the_baselines_still_read():
    assert not {"short_em", "short_f1", *READER_KEYS} & set(PRIMARY_METRICS)
    report = report_of(fake_rows())
    for name in ("seeds", "natural-seeds"):
        baseline = load_baseline(ROOT / "eval" / "baselines" / name / "report.json")
        compare(report["metrics"], baseline["metrics"], 0.02)  # no error on the new keys
        table = terminal_table(report, baseline["metrics"])
        short = next(ln for ln in table.splitlines() if "short answer EM" in ln)
        old = baseline["metrics"].get("short_em")  # baselines from before it: n/a
        assert short.split()[-1] == "n/a" if old is None else short.split()[-2] == f"{old:.3f}"

"""The eval metric functions on hand-made cases, edge cases included."""

from __future__ import annotations

import pytest

from eval import metrics as m


def test_normalize_answer_follows_squad():
    assert m.normalize_answer("The  Cat's hat!") == "cat s hat"
    assert m.normalize_answer("“Appropriate,”") == "appropriate"
    assert m.normalize_answer("An apple, a pear and THE plum") == "apple pear and plum"
    assert m.normalize_answer("") == ""


def test_answer_text_drops_citation_and_quote_markers():
    text = "Jeff Sessions [1].\n\n> Sessions instructed prosecutors. [1]\n\n> Trump planned it. [2]"
    assert (
        m.answer_text(text) == "Jeff Sessions . Sessions instructed prosecutors. Trump planned it."
    )


def test_contains_gold_matches_whole_words_after_normalising():
    assert m.contains_gold("It was Jeff Sessions, on Wednesday.", ["jeff sessions"]) == 1.0
    assert m.contains_gold("There are fourteen of them.", ["four"]) == 0.0
    assert m.contains_gold("the most heinous crimes", ["The most heinous crimes."]) == 1.0
    assert m.contains_gold("", ["four"]) == 0.0  # empty (declined) answer
    assert m.contains_gold("anything", []) is None  # unanswerable: nothing to contain
    assert m.contains_gold("anything", ["the", "!"]) is None  # gold normalises to nothing


def test_token_f1():
    assert m.token_f1("Jeff Sessions", ["Jeff Sessions"]) == 1.0
    assert m.token_f1("the Attorney General Jeff Sessions", ["Jeff Sessions"]) == pytest.approx(
        2 * (2 / 4) * 1.0 / (2 / 4 + 1.0)
    )
    assert m.token_f1("Sessions", ["Donald Trump", "Jeff Sessions"]) == pytest.approx(2 / 3)
    assert m.token_f1("", ["four"]) == 0.0  # empty answer
    assert m.token_f1("four", []) is None  # unanswerable
    assert m.token_f1("", ["the"]) == 1.0  # both normalise to nothing (SQuAD's rule)
    assert m.token_f1("Reuters", ["four"]) == 0.0


def test_holds_quote_whole_cut_and_inside():
    passage = "First sentence here.\n  The Justice   Department must boost efforts. Last one."
    assert m.holds_quote(passage, "the justice department must boost efforts.")
    assert not m.holds_quote(passage, "Something else entirely, never said.")
    # a quote cut by a chunk boundary: only 9 of its 63 characters are in this passage
    cut = "Last one. And then the quote goes on into the next chunk a bit."
    assert not m.holds_quote(passage, cut)
    # ... and the next chunk holds the rest (54 of 63 >= 0.6)
    assert m.holds_quote(" And then the quote goes on into the next chunk a bit. More.", cut)
    longer = " And then the quote goes on into the next chunk; then other words, many of them."
    assert m.holds_quote(longer, cut, 0.6)
    assert not m.holds_quote(longer, cut, 0.9)
    # a short passage lying entirely inside a long quote
    assert m.holds_quote("boost efforts.", passage)
    assert not m.holds_quote("", "x") and not m.holds_quote("x", "")


def test_doc_stem():
    assert m.doc_stem("sq0001") == "sq0001"
    assert m.doc_stem("sub/dir/sq0001.txt") == "sq0001"
    assert m.doc_stem("a\\b\\c.md") == "c"


def test_is_relevant_prefers_quotes_then_documents():
    text = "Sessions instructed federal prosecutors on Wednesday."
    # with a quote, the document alone is not enough
    assert m.is_relevant(text, ["doc1"], ["on Wednesday"], ["doc1"]) is True
    assert m.is_relevant(text, ["doc1"], ["on Thursday at noon"], ["doc1"]) is False
    # documents only: by file stem, from the doc id or the source path
    assert m.is_relevant(text, ["sub/doc2", "sub/doc2.txt"], [], ["doc2", "doc3"]) is True
    assert m.is_relevant(text, ["doc1", "doc1.txt"], [], ["doc2", "doc3"]) is False
    # no evidence at all: cannot say
    assert m.is_relevant(text, ["doc1"], [], []) is None


def test_hits_and_reciprocal_rank():
    ranked = [False, False, True, False]
    assert m.hits_at_k(ranked, 1) == 0.0
    assert m.hits_at_k(ranked, 3) == 1.0
    assert m.hits_at_k([], 5) == 0.0
    assert m.reciprocal_rank(ranked) == pytest.approx(1 / 3)
    assert m.reciprocal_rank(ranked, k=2) == 0.0
    assert m.reciprocal_rank([False] * 12 + [True]) == 0.0  # beyond rank 10
    assert m.reciprocal_rank([True, True]) == 1.0


def test_evidence_recall_over_several_documents():
    found = [{"d1"}, set(), {"d3"}, {"d1"}]
    assert m.evidence_recall(found, ["d1", "d2", "d3"], k=10) == pytest.approx(2 / 3)
    assert m.evidence_recall(found, ["d1", "d2", "d3"], k=2) == pytest.approx(1 / 3)
    assert m.evidence_recall(found, ["d2"], k=10) == 0.0
    assert m.evidence_recall(found, [], k=10) is None  # no evidence
    assert m.evidence_recall([], ["d1"], k=10) == 0.0  # nothing retrieved


def test_citation_precision_and_supported_share():
    assert m.citation_precision([True, False, True, True]) == 0.75
    assert m.citation_precision([]) is None  # no citations: n/a, not 0
    assert m.supported_share(4, 1) == 0.75
    assert m.supported_share(2, 5) == 0.0
    assert m.supported_share(0, 0) is None  # empty answer


def test_refusal_stats():
    # (answerable, declined)
    s = m.refusal_stats([(True, False), (True, True), (False, True), (False, False), (False, True)])
    assert (s.answerable, s.unanswerable, s.declined) == (2, 3, 3)
    assert s.recall == pytest.approx(2 / 3)
    assert s.answered_when_answerable == 0.5
    assert s.precision == pytest.approx(2 / 3)
    only_answerable = m.refusal_stats([(True, False), (True, False)])
    assert only_answerable.recall is None and only_answerable.precision is None
    assert only_answerable.answered_when_answerable == 1.0
    assert m.refusal_stats([]).recall is None


def test_mean_and_percentile():
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None
    values = [10.0, 20.0, 30.0, 40.0, 1000.0]
    assert m.percentile(values, 50) == 30.0
    assert m.percentile(values, 95) == pytest.approx(40 + 0.8 * 960)
    assert m.percentile([7.0], 95) == 7.0
    assert m.percentile([], 50) is None
    with pytest.raises(ValueError, match="150"):
        m.percentile(values, 150)


def test_answer_sentences_keep_markers_and_abbreviations():
    text = (
        "Wednesday [1].\n\n> U.S. Attorney General Jeff Sessions said it. [1]\n\n"
        "> “They take a long time.” [2] Then more! And J. Smith came? [3]"
    )
    assert m.answer_sentences(text) == [
        "Wednesday [1].",
        "U.S. Attorney General Jeff Sessions said it. [1]",
        "“They take a long time.” [2]",
        "Then more!",
        "And J. Smith came? [3]",
    ]
    assert m.is_cited("x [2]") and not m.is_cited("x")
    assert m.without_markers("Said it. [1] [2]") == "Said it."

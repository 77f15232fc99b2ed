"""Fusion, diversification, condensation and the citation check, on hand-made values."""

from __future__ import annotations

import pytest

from chatbot.cite import check_citations
from chatbot.condense import condense, is_follow_up, short_answer_of
from chatbot.retrieve import diversify, rrf_fuse
from chatbot.types import Citation, Passage


def passage(n: int, text: str, source: str = "a.txt", start: int = 0) -> Passage:
    return Passage(
        chunk_id=f"c{n}",
        text=text,
        source=source,
        title=source,
        start=start,
        end=start + len(text),
        n=n,
    )


def test_rrf_rewards_agreement_and_respects_weights():
    fused = dict(rrf_fuse([(["a", "b", "c"], 1.0), (["c", "b", "d"], 1.0)], rrf_k=60))
    assert fused["b"] == pytest.approx(2 / 62) and fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert min(fused["b"], fused["c"]) > fused["a"] > fused["d"]  # agreement beats one list
    dense_only = rrf_fuse([(["a", "b"], 1.0), (["b", "a"], 0.0)], rrf_k=60)
    assert [i for i, _ in dense_only] == ["a", "b"]


def test_diversify_caps_per_document_then_backfills():
    ps = [passage(i, f"t{i}", source="long.txt") for i in range(5)]
    ps.insert(3, passage(9, "other", source="short.txt"))
    top = diversify(ps, k=3, per_doc_cap=1)
    assert [p.source for p in top] == ["long.txt", "long.txt", "short.txt"]
    assert [p.chunk_id for p in top] == ["c0", "c1", "c9"]  # kept in fused order
    single = diversify([passage(i, "t", source="one.txt") for i in range(4)], 3, 1)
    assert len(single) == 3  # one document still fills every slot


def test_follow_up_detection():
    assert is_follow_up("What did he say about business as usual?")
    assert is_follow_up("And why?")
    assert not is_follow_up("Who is the Attorney General of the United States?")
    assert is_follow_up("Why the change?")
    # Opening like a follow-up but naming its own topic: answered as asked.
    assert not is_follow_up("why are death penalty cases hard")


def test_condense_resolves_pronoun_to_previous_short_answer():
    history = [
        {"role": "user", "content": "Who told prosecutors to seek the death penalty?"},
        {"role": "assistant", "content": "Jeff Sessions [1].\n\n“U.S. Attorney ...” [1]"},
    ]
    assert short_answer_of(history[1]["content"]) == "Jeff Sessions"
    c = condense("What did he say about business as usual?", history)
    assert c.rewritten and c.query == "What did Jeff Sessions say about business as usual?"
    assert "prosecutors" in c.context and "Jeff Sessions" in c.context
    plain = condense("What is the opioid epidemic?", history)
    assert not plain.rewritten and plain.query == "What is the opioid epidemic?"


def test_condense_carries_context_when_no_name():
    history = [
        {"role": "user", "content": "What limits apply to federal death penalty cases?"},
        {"role": "assistant", "content": "The documents don't say."},
    ]
    c = condense("Why is that?", history)
    assert c.query.startswith("Why is that? (") and "federal" in c.query


def overlap(sentence: str, text: str) -> float:
    a, b = set(sentence.lower().split()), set(text.lower().split())
    return len(a & b) / max(1, len(a))


def spans(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for part in text.split(". "):
        out.append((pos, pos + len(part)))
        pos += len(part) + 2
    return out


def test_citation_check_drops_invalid_renumbers_and_flags():
    ps = [
        passage(1, "cats sleep all day. dogs bark at night", start=100),
        passage(2, "the moon orbits the earth", source="b.txt"),
    ]
    text = "the moon orbits the earth [2] [7]. dogs bark at night [1]. pigs fly high today [1]."
    checked = check_citations(text, ps, support=overlap, split=spans, threshold=0.5)
    # [7] does not exist: removed; [2] is cited first, so it becomes [1] and [1] becomes [2]
    assert checked.text == (
        "the moon orbits the earth [1]. dogs bark at night [2]. pigs fly high today [2]."
    )
    assert [c.source for c in checked.citations] == ["b.txt", "a.txt"]
    assert checked.unsupported == ["pigs fly high today."]
    moon, dogs = checked.citations
    assert moon.quote == "the moon orbits the earth" and moon.supported
    assert dogs.quote == "dogs bark at night" and dogs.supported
    assert (dogs.start, dogs.end) == (120, 138)  # offsets into the document, not the passage


def test_uncited_claim_is_flagged():
    ps = [passage(1, "water is wet")]
    checked = check_citations(
        "Water is wet [1]. Fire is also very cold indeed.",
        ps,
        support=overlap,
        split=spans,
        threshold=0.5,
    )
    assert checked.unsupported == ["Fire is also very cold indeed."]
    assert checked.citations[0].supported


def test_terminal_escape_sequences_are_removed_whole():
    from chatbot.chain import QuestionError, clean_question

    assert clean_question("Who\x1b[31m wrote\x1b[0m it?\x07", 100) == "Who wrote it?"
    with pytest.raises(QuestionError, match="the question is empty"):
        clean_question("\x00\x1b[2J\x07", 100)


def test_a_citation_points_into_its_passage():
    p = passage(2, "One. Two three.", source="doc.txt", start=100)
    c = Citation.from_passage(p, 1, (5, 15), support=0.7)
    assert (c.n, c.quote, c.start, c.end, c.chunk_id) == (1, "Two three.", 105, 115, "c2")
    assert (c.source, c.passage, c.support, c.supported) == ("doc.txt", p.text, 0.7, True)
    whole = Citation.from_passage(p, 2, support=0.0, supported=False)
    assert (whole.quote, whole.start, whole.end, whole.supported) == (p.text, 100, 115, False)

"""How the reader's spans become an answer (``chatbot.reader.answer.choose``), with a scripted
reader standing in for the model: the best margin wins, below the threshold it declines, the
quote is the span's sentence, a compound question quotes one span per document."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatbot.question import shape
from chatbot.reader.answer import choose, mend_question, sentence_around
from chatbot.reader.model_dir import reader_folder
from chatbot.reader.onnx_reader import Span
from chatbot.types import Passage
from ingest import SettingsError


def passage(n: int, text: str, source: str) -> Passage:
    return Passage(
        chunk_id=f"c{n}", text=text, source=source, title=source, start=0, end=len(text), n=n
    )


class Scripted:
    """Returns, for each passage, the span and margin its script names for the question."""

    def __init__(self, script: dict[str, dict[int, tuple[str, float]]], words: int = 30) -> None:
        self.script = script
        self.words = words  # the longest question it reads whole
        self.asked: list[str] = []

    def reads_whole(self, question: str) -> bool:
        return len(question.split()) <= self.words

    def read(self, question: str, passages: list[str]) -> list[Span | None]:
        self.asked.append(question)
        out: list[Span | None] = []
        for i, text in enumerate(passages):
            found = self.script.get(question, {}).get(i)
            if found is None:
                out.append(Span(i, 0, 4, text[:4], 0.0, 5.0))
                continue
            span, margin = found
            a = text.index(span)
            out.append(Span(i, a, a + len(span), span, margin + 1.0, 1.0))
        return out


HANDBOOK = [
    passage(
        1,
        "Vacation. Every employee gets 20 days of vacation a year. Unused days roll "
        "over up to a cap of 27 days.",
        "leave.md",
    ),
    passage(
        2,
        "Expenses are paid back within 30 days. Receipts are needed for all claims.",
        "expenses.md",
    ),
]


def test_the_best_margin_is_answered_in_bold_with_its_sentence() -> None:
    q = "how much vacation do I get?"
    reader = Scripted({q: {0: ("20 days", 6.0), 1: ("30 days", 2.0)}})
    choice = choose(reader, q, HANDBOOK, threshold=1.5)
    assert not choice.declined and choice.short_answer == "20 days"
    (quote,) = choice.quotes
    assert quote.passage.source == "leave.md"
    assert quote.passage.text[quote.start : quote.end] == (
        "Every employee gets 20 days of vacation a year."
    )
    assert choice.decision["margin"] == 6.0 and choice.decision["declined"] is False


def test_no_span_above_the_threshold_declines_with_the_margin_in_the_decision() -> None:
    q = "Is there a gym membership reimbursement?"
    reader = Scripted({q: {1: ("paid back", 0.4)}})
    choice = choose(reader, q, HANDBOOK, threshold=1.5)
    assert choice.declined and not choice.quotes
    assert choice.decision["declined"] is True and choice.decision["margin"] == 0.4


def test_a_yes_no_question_quotes_without_a_bold_span() -> None:
    q = "Are expenses paid back?"
    reader = Scripted({q: {1: ("within 30 days", 4.0)}})
    choice = choose(reader, q, HANDBOOK, threshold=1.0, shape=shape(q))
    assert not choice.declined and choice.short_answer is None
    assert choice.quotes[0].passage.source == "expenses.md"


def test_compound_and_overlong_questions_are_left_to_the_rules() -> None:
    """The reader learnt from single questions it reads whole: it neither answers nor
    vetoes a compound question, nor one longer than it reads."""
    q = "How many vacation days do I get, and how fast are expenses paid back?"
    s = shape(q)
    assert s.multi_part
    reader = Scripted({q: {0: ("20 days", -9.0), 1: ("within 30 days", -9.0)}})
    choice = choose(reader, q, HANDBOOK, threshold=1.5, shape=s)
    assert choice.deferred and not choice.declined and reader.asked == []
    assert choice.decision == {"deferred": "a compound question"}
    long_q = "how much vacation do I get"
    reader = Scripted({long_q: {0: ("20 days", -9.0)}}, words=4)
    choice = choose(reader, long_q, HANDBOOK, threshold=1.5, shape=shape(long_q))
    assert choice.deferred and choice.decision == {"deferred": "longer than the reader reads"}
    # read whole, the same question is vetoed
    reader.words = 30
    assert choose(reader, long_q, HANDBOOK, threshold=1.5, shape=shape(long_q)).declined


def test_the_reader_reads_misspelt_words_as_the_passages_write_them() -> None:
    news = [passage(1, "U.S. Attorney General Jeff Sessions instructed prosecutors.", "n.txt")]
    mended = {"jef": "jeff", "sesion": "session"}
    assert mend_question("who is jef sesions", mended, news) == "who is Jeff Sessions"
    # a term the passages lack is written as the index term; no mending: as asked
    assert mend_question("what did sesions say", mended, HANDBOOK) == "what did session say"
    assert mend_question("who is jef sesions", {}, news) == "who is jef sesions"


def test_sentence_around_a_span_crossing_sentences() -> None:
    text = "First one. Second has 20 days. Third."
    a = text.index("20")
    assert text[slice(*sentence_around(text, a, a + 7))] == "Second has 20 days."
    b = text.index("Third")
    assert text[slice(*sentence_around(text, a, b + 5))] == "Second has 20 days. Third."


def test_the_reader_setting_names_a_missing_folder(tmp_path: Path) -> None:
    assert reader_folder("rules") is None
    with pytest.raises(SettingsError, match="no reader.json in .*nowhere"):
        reader_folder(str(tmp_path / "nowhere"))


def test_between_the_thresholds_the_choice_is_deferred_to_the_rules() -> None:
    q = "how much vacation do I get?"
    reader = Scripted({q: {0: ("20 days", 2.0)}})
    unsure = choose(reader, q, HANDBOOK, threshold=-3.0, confident=4.0)
    assert unsure.deferred and not unsure.declined and not unsure.quotes
    assert unsure.decision["deferred"] is True and unsure.decision["declined"] is False
    sure = choose(reader, q, HANDBOOK, threshold=-3.0, confident=1.5)
    assert not sure.deferred and sure.short_answer == "20 days"
    no = choose(Scripted({}), q, HANDBOOK, threshold=-3.0, confident=4.0)
    assert no.declined and no.decision["margin"] == -5.0


def test_a_request_for_what_a_document_says_is_left_to_the_rules() -> None:
    for q in ("what did wired say about factories?", "tell me about expenses", "what about gyms"):
        reader = Scripted({q: {0: ("20 days", -9.0)}})
        choice = choose(reader, q, HANDBOOK, threshold=1.5, shape=shape(q))
        assert choice.deferred and reader.asked == [], q
        assert choice.decision["deferred"] == "asks what the documents say on a topic"


class LongSpan:
    """Its best span is a long clause; the best short span inside scores ``short_score``."""

    def __init__(self, short_score: float) -> None:
        self.short_score = short_score

    def reads_whole(self, question: str) -> bool:
        return True

    def read(self, question: str, passages: list[str]) -> list[Span | None]:
        text = passages[0]
        long = "Sessions said in a memo on countering the opioid epidemic sent to the offices"
        a = text.index(long)
        span = Span(0, a, a + len(long), long, 9.0, 1.0, "Sessions", self.short_score)
        return [span] + [None] * (len(passages) - 1)


def test_a_long_span_is_answered_in_bold_by_its_best_short_span_when_close() -> None:
    memo = [
        passage(
            1,
            "“We cannot continue with business as usual,” Sessions said in a memo on "
            "countering the opioid epidemic sent to the offices.",
            "memo.txt",
        )
    ]
    q = "Who wrote the memo?"
    close = choose(LongSpan(short_score=8.0), q, memo, threshold=1.0, shape=shape(q))
    assert close.short_answer == "Sessions"
    assert close.quotes[0].passage.text[close.quotes[0].start :].startswith("“We cannot")
    far = choose(LongSpan(short_score=5.0), q, memo, threshold=1.0, shape=shape(q))
    assert not far.declined and far.short_answer is None  # quoted, with no bold answer


def test_a_span_running_across_list_items_is_quoted_without_a_bold_answer() -> None:
    options = [
        passage(
            1,
            "Compensation:\n- 10 years to exercise your options if you leave PostHog\n"
            "- Double trigger acceleration on an acquisition.",
            "comp.md",
        )
    ]
    q = "what happens to my options if i leave"
    reader = Scripted({q: {0: ("PostHog\n- Double trigger acceleration", 6.0)}})
    choice = choose(reader, q, options, threshold=1.0, shape=shape(q))
    assert not choice.declined and choice.short_answer is None and choice.quotes

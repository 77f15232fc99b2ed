"""Questions that span documents, summaries and word-level relevance, on a small news corpus
with header lines (title, source, published_at) and the real embedding model."""

from __future__ import annotations

import pytest

from chatbot import Answer, Chatbot, ChatSettings
from chatbot.answer_text import DECLINE_PREFIX, YES_NO_FRAMING, decline_reason
from ingest import IngestSettings, ingest_paths
from tests.conftest import write

pytestmark = pytest.mark.model

ARTICLES = {
    "tc.txt": (
        "title: Startup payments platform raises new funding\n"
        "source: TechCrunch\n"
        "published_at: 2023-10-05 10:00:00\n"
        "author: Ann Writer\n\n"
        "Paylane, a payments startup for software companies, raised $40 million on Tuesday. "
        "The company said merchants want to accept payments inside the apps they already use.\n\n"
        "Its chief executive, Maria Lopez, said revenue tripled over the past year as more "
        "software vendors added payment processing. The round was led by Index Ventures.\n\n"
        "Paylane plans to hire fifty engineers in Lisbon next year."
    ),
    "verge.txt": (
        "title: The newspaper that grew its subscriptions\n"
        "source: The Verge\n"
        "published_at: 2023-11-20 08:30:00\n\n"
        "The Daily Ledger reported $76 million in subscription revenue in 2022, up from "
        "$7 million in 2019. Its editors credit a paywall introduced during the pandemic.\n\n"
        "The paper now employs more than three hundred reporters across four countries. "
        "Critics say its coverage has become more partisan as subscriptions grew."
    ),
    "wired.txt": (
        "title: Heat pumps sell out across Europe\n"
        "source: Wired\n"
        "published_at: 2023-09-02 12:00:00\n\n"
        "Heat pump sales in Europe rose 38 percent in 2022 as gas prices soared. "
        "Installers in Germany report waiting lists of six months.\n\n"
        "Manufacturers are building new factories in Poland to meet demand, and prices "
        "are expected to fall by 2025."
    ),
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory) -> Chatbot:
    base = tmp_path_factory.mktemp("news")
    for name, text in ARTICLES.items():
        write(base / "docs" / name, text)
    index = IngestSettings(index_dir=base / "idx", progress=False)
    assert ingest_paths([base / "docs"], index).exit_code == 0
    return Chatbot(ChatSettings(index=index))


def cited_sources(answer: Answer) -> set[str]:
    return {c.source for c in answer.citations}


def test_a_comparison_of_two_named_articles_quotes_each(bot):
    answer = bot.answer(
        "Does the TechCrunch article on the payments startup report growing revenue, while "
        "The Verge article says the newspaper's subscription revenue increased?"
    )
    assert not answer.declined, answer.text
    assert {"tc.txt", "verge.txt"} <= cited_sources(answer)
    assert answer.text.startswith(YES_NO_FRAMING)
    # each quote names its source and date, and the framing line is not a claim to check
    assert "**TechCrunch, October 5, 2023:**" in answer.text
    assert "**The Verge, November 20, 2023:**" in answer.text
    assert not answer.unsupported_sentences
    for c in answer.citations:
        assert c.supported and c.quote in c.passage


def test_a_source_named_only_in_the_header_matches_every_chunk(bot):
    answer = bot.answer("what did wired say about factories?")
    assert not answer.declined, answer.text
    assert cited_sources(answer) == {"wired.txt"}
    assert "Poland" in answer.text


def test_a_source_or_name_the_documents_lack_is_declined(bot):
    """The answer says only that the documents don't say; why is in the trace."""
    answer = bot.answer("What did the Bloomberg article say about heat pump sales in Germany?")
    assert answer.declined and answer.text.startswith(f"{DECLINE_PREFIX}.\n")
    assert "Bloomberg" not in answer.text
    assert "the documents hold no article from 'Bloomberg'" in decline_reason(answer.trace.notes)
    answer = bot.answer("What did Paylane say about hiring engineers in Barcelona?")
    assert answer.declined
    assert "never mention 'Barcelona'" in decline_reason(answer.trace.notes)
    # the same question about a place the article names is answered
    answer = bot.answer("What did Paylane say about hiring engineers in Lisbon?")
    assert not answer.declined and "fifty engineers" in answer.text


def test_a_summary_quotes_central_sentences_of_the_best_document(bot):
    answer = bot.answer("Summarize the article about heat pumps")
    assert not answer.declined, answer.text
    assert answer.text.startswith("The gist of “Heat pumps sell out across Europe” (Wired")
    assert cited_sources(answer) == {"wired.txt"}
    starts = [c.start for c in answer.citations]
    assert len(starts) >= 2 and starts == sorted(starts)  # in document order
    assert not answer.unsupported_sentences


def test_streamed_answers_equal_batch_answers(bot):
    for question in (
        "how much did paylane raise",
        "Summarize the article about heat pumps",
        "Does the TechCrunch article report growing revenue, while The Verge article says "
        "subscriptions grew?",
        "Who won the World Cup in 1998?",
    ):
        batch = bot.answer(question)
        parts = list(bot.stream(question))
        final = parts[-1]
        assert isinstance(final, Answer)
        assert "".join(parts[:-1]) == final.text == batch.text
        assert final.declined == batch.declined
        assert [c.quote for c in final.citations] == [c.quote for c in batch.citations]

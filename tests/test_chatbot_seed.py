"""The chatbot on the seed article with the real model: answers, citations, refusals,
follow-ups, the LLM path (fake model and a local OpenAI-compatible stub), and the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from chatbot import Answer, Chatbot, ChatSettings, QuestionError
from ingest import IndexMismatchError, IndexMissingError, IngestSettings, ingest_paths
from tests.conftest import ROOT, SEED, assert_cited, seed_body, subprocess_env

pytestmark = pytest.mark.model
SEED_TEXT = None


@pytest.fixture(scope="module")
def seed_settings(tmp_path_factory) -> ChatSettings:
    index = IngestSettings(index_dir=tmp_path_factory.mktemp("seedbot") / "idx", progress=False)
    assert ingest_paths([ROOT / "seeds"], index).exit_code == 0
    return ChatSettings(index=index)


@pytest.fixture(scope="module")
def bot(seed_settings) -> Chatbot:
    return Chatbot(seed_settings)


QUESTIONS = [
    ("Who told federal prosecutors to pursue the death penalty in drug cases?", "Jeff Sessions"),
    ("What kind of abuse epidemic was the Justice Department trying to counter?", "opioid"),
    ("Who announced a plan to execute opioid dealers?", "Donald Trump"),
    ("Which groups reacted against the call for more executions?", "criminal justice reform"),
    ("Why has use of the death penalty been declining?", "lack of access to drugs"),
    ("How many circumstances allow the death penalty in federal drug cases?", "four"),
    ("What did Sessions say they cannot continue with?", "business as usual"),
    ("Who did Sessions say contribute to this scourge?", "transnational criminal organizations"),
    ("Why do critics think death penalty cases tie up resources?", "more complex"),
    ("Who did the former federal prosecutor talk to?", "Reuters"),
    (
        "In federal cases, for which crimes is the death penalty generally handed down?",
        "most heinous crimes",
    ),
    ("Which cases involving a firearm qualify for the death penalty?", "resulting in death"),
]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_answers_are_cited_from_the_text(bot, question, expected):
    assert_cited(bot.answer(question), expected)


# What a newcomer types first: short, keyword-only, misspelt; each answered in the article.
NEWCOMER = [
    ("What did Trump announce?", "executing opioid dealers"),
    ("Who sent the memo?", "Sessions"),
    ("What does the memo say?", "business as usual"),
    ("How did reform groups react?", "wrong response"),
    ("opioid epidemic", "opioid"),
    ("who is jef sesions", "Attorney General"),
    ("oppioid epidemc", "opioid"),
    ("What epidemic is mentioned?", "opioid"),
]


@pytest.mark.parametrize(("question", "expected"), NEWCOMER)
def test_short_natural_questions_get_cited_answers(bot, question, expected):
    assert_cited(bot.answer(question), expected)


def test_a_conversation_neither_loses_nor_drowns_a_question(bot):
    """A bare follow-up ("why?") is judged with the conversation's words; a new question
    typed mid-conversation ("what does the memo say") is judged on its own words too."""

    def after(first: str) -> list[dict]:
        return [
            {"role": "user", "content": first},
            {"role": "assistant", "content": bot.answer(first).text},
        ]

    assert_cited(bot.answer("why?", after("What did Trump announce?")), "Trump")
    memo = bot.answer("what does the memo say", after("How did reform groups react?"))
    assert_cited(memo, "business as usual")
    hard = bot.answer("why are death penalty cases hard", after("When did Sessions send the memo?"))
    assert_cited(hard, "extremely difficult")


def test_a_follow_up_is_not_answered_with_the_name_it_carries(bot):
    """After "Trump [1]", "who is against this?" must not be answered "Trump": the sentence
    naming him holds only the carried words, none of the question's own."""
    first = "Who announced the plan?"
    answer = bot.answer(first)
    assert answer.short_answer == "President Donald Trump"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": answer.text}]
    against = bot.answer("who is against this", history)
    assert against.short_answer is None


def test_misspelt_words_are_searched_as_the_words_of_the_article(bot):
    answer = bot.answer("who is jef sesions")
    assert "searched for 'jef' as 'jeff', 'sesion' as 'session'" in answer.trace.notes


@pytest.mark.parametrize(
    "question",
    ["Summarize the article", "What is this about?", "what is this article about", "tl;dr"],
)
def test_summary_requests_quote_the_central_sentences(bot, question):
    answer = bot.answer(question)
    assert not answer.declined, answer.text
    assert answer.text.startswith("The gist of ")
    assert 2 <= len(answer.citations) <= 3
    body = seed_body()
    for c in answer.citations:
        assert body[c.start : c.end] == c.quote and c.supported
    assert [c.start for c in answer.citations] == sorted(c.start for c in answer.citations)
    assert "Sessions" in answer.text and "death penalty" in answer.text


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of Australia?",
        "How do I bake sourdough bread?",
        "What is the boiling point of mercury in kelvin?",
        "When was the death penalty abolished in Canada?",
    ],
)
def test_unanswerable_questions_are_declined(bot, question):
    answer = bot.answer(question)
    assert answer.declined, answer.text
    assert answer.text.startswith("The documents don't say")
    assert "[" not in answer.text.split("\n", 1)[0]


def test_a_decline_names_each_closest_passage_by_its_own_words(bot):
    """The seed's title is only its opening words: the closest passages are listed by their
    own opening words, not three times by the same title."""
    answer = bot.answer("Who won the World Cup in 2018?")
    assert answer.declined
    listed = [line for line in answer.text.splitlines() if line.startswith("- ")]
    assert len(listed) == 3
    assert len({line.split(" (")[0] for line in listed}) == 3, listed


def test_follow_up_uses_the_conversation(bot):
    first = bot.answer("Who wrote the memo on countering the opioid epidemic?")
    assert_cited(first, "Sessions")
    history = [
        {"role": "user", "content": "Who wrote the memo on countering the opioid epidemic?"},
        {"role": "assistant", "content": first.text},
    ]
    follow = bot.answer("What did he say about business as usual?", history)
    assert "Sessions" in follow.trace.standalone_query
    assert_cited(follow, "business as usual")


def test_follow_up_with_only_a_pronoun_topic(bot):
    history = [
        {
            "role": "user",
            "content": "How many circumstances allow the death penalty in federal drug cases?",
        },
        {"role": "assistant", "content": "four [1]."},
    ]
    follow = bot.answer("What are those circumstances?", history)
    assert_cited(follow, "racketeering")


def test_trace_has_scores_ranks_and_timings(bot):
    answer = bot.answer("Why has use of the death penalty been declining?")
    trace = answer.trace
    assert trace.standalone_query.startswith("Why has use")
    assert trace.passages and all(p.fused_score > 0 for p in trace.passages)
    assert any(p.dense_rank == 1 for p in trace.passages)
    assert any(p.bm25_rank == 1 for p in trace.passages)
    assert {"condense", "retrieve", "answer", "cite", "total"} <= set(trace.timings_ms)


def test_stream_yields_text_then_the_answer(bot):
    parts = list(bot.stream("Who announced a plan to execute opioid dealers?"))
    final = parts[-1]
    assert isinstance(final, Answer) and len(parts) > 2
    assert "".join(p for p in parts[:-1]) == final.text


@pytest.mark.parametrize(
    "question",
    [
        "Who announced a plan to execute opioid dealers?",
        "What did Trump announce?",
        "summarize the article",
        "oppioid epidemc",
        "How many executions were there last year?",
        "What is the capital of Australia?",
    ],
)
def test_the_streamed_answer_is_the_batch_answer(bot, question):
    """The chat page streams, the CLI and the eval ask in batch: one path, one answer."""
    *text, final = list(bot.stream(question))
    batch = bot.answer(question)
    chained = bot.chain.invoke(bot._turn(question, None, None)).answer
    for other in (batch, chained):
        assert final.text == other.text and final.declined == other.declined
        assert [(c.n, c.quote, c.start) for c in final.citations] == [
            (c.n, c.quote, c.start) for c in other.citations
        ]
    assert "".join(text) == final.text


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "the question is empty"),
        ("  \n\t ", "the question is empty"),
        ("x" * 2001, "the question is 2001 characters long; the limit is 2000"),
    ],
)
def test_bad_questions_get_a_clear_message(bot, question, message):
    with pytest.raises(QuestionError, match=re.escape(message)):
        bot.answer(question)


def test_control_characters_are_removed(bot):
    answer = bot.answer("Who announced\x00 a plan\x1b to execute opioid dealers?")
    assert_cited(answer, "Trump")
    assert answer.trace.notes


def test_no_index_and_other_model_index_are_clear(tmp_path, seed_settings):
    with pytest.raises(IndexMissingError, match="python -m ingest"):
        Chatbot(ChatSettings(index=IngestSettings(index_dir=tmp_path / "none")))
    other = seed_settings.replace(index=seed_settings.index.replace(embedding_model="fake"))
    with pytest.raises(IndexMismatchError, match="rebuild it with --reset"):
        Chatbot(other)


def test_llm_path_with_a_fake_model(seed_settings, bot):
    from chatbot.generative import make_chat_model

    reply = (
        "Jeff Sessions instructed federal prosecutors to seek the death penalty [1]. "
        "He also likes ice cream [9]."
    )
    llm_bot = Chatbot(
        seed_settings.replace(answerer="fake"),
        index=bot.index,
        chat_model=make_chat_model(f"fake:{reply}"),
    )
    answer = llm_bot.answer("Who instructed prosecutors?")
    assert "[9]" not in answer.text and answer.text.count("[1]") == 1
    assert answer.citations[0].supported
    assert "Jeff Sessions" in answer.citations[0].quote
    assert answer.unsupported_sentences == ["He also likes ice cream."]
    parts = list(llm_bot.stream("Who instructed prosecutors?"))
    assert isinstance(parts[-1], Answer) and len(parts) > 3


def test_llm_refusal_is_declined(seed_settings, bot):
    from chatbot.generative import make_chat_model

    llm_bot = Chatbot(
        seed_settings.replace(answerer="fake"), index=bot.index, chat_model=make_chat_model("fake")
    )
    answer = llm_bot.answer("What is the capital of Australia?")
    assert answer.declined and answer.text.startswith("The documents don't say")


def test_llm_path_through_the_local_stub_server(seed_settings, bot):
    from tests.stub_openai import StubOpenAI

    def reply(messages):
        system = messages[0]["content"]
        assert '<passage n="1"' in system and "[n]" in system
        return "Donald Trump announced the plan earlier this week [1]."

    with StubOpenAI(reply=reply) as stub:
        settings = seed_settings.replace(
            answerer="openai:stub", llm_base_url=stub.base_url, llm_timeout=5.0
        )
        llm_bot = Chatbot(settings, index=bot.index)
        answer = llm_bot.answer("Who announced a plan to execute opioid dealers?")
        assert stub.chat_requests, "the real OpenAI client must have called the stub"
    assert answer.backend == "openai:stub" and not answer.declined
    assert "Donald Trump" in answer.citations[0].quote and answer.citations[0].supported


def test_unreachable_llm_is_a_clear_error(seed_settings, bot):
    import socket

    from chatbot.llm_errors import LLMError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = seed_settings.replace(
        answerer="openai:none", llm_base_url=f"http://127.0.0.1:{port}/v1", llm_timeout=2.0
    )
    llm_bot = Chatbot(settings, index=bot.index)
    with pytest.raises(LLMError, match=f"127.0.0.1:{port}"):
        llm_bot.answer("Who announced the plan?")


def run_cli(*args: str, input: str | None = None, index_dir=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args, "--index-dir", str(index_dir)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=180,
        input=input,
    )


def test_cli_ask_json_and_batch(seed_settings, tmp_path):
    idx = seed_settings.index.index_dir
    plain = run_cli("ask", "Who announced a plan to execute opioid dealers?", index_dir=idx)
    assert plain.returncode == 0, plain.stderr
    assert "Donald Trump" in plain.stdout and "Sources:" in plain.stdout
    assert "[1] " in plain.stdout

    js = run_cli(
        "ask",
        "How many circumstances allow the death penalty in federal drug cases?",
        "--json",
        index_dir=idx,
    )
    data = json.loads(js.stdout)
    assert data["declined"] is False and data["citations"][0]["source"] == SEED.name
    assert "four" in data["text"]

    batch = tmp_path / "q.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"id": "a", "question": "Who wrote the memo on countering the opioid epidemic?"},
                {
                    "id": "b",
                    "question": "What did he say about business as usual?",
                    "history": [
                        {"role": "user", "content": "Who wrote the memo?"},
                        {"role": "assistant", "content": "Jeff Sessions [1]."},
                    ],
                },
                {"id": "c", "question": "What is the capital of Australia?"},
                {"id": "d", "question": ""},
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = run_cli("ask", "--batch", str(batch), index_dir=idx)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert "business as usual" in rows[1]["text"] and rows[2]["declined"] is True
    assert rows[3] == {"error": "the question is empty", "id": "d"}
    assert out.returncode == 3

    missing = run_cli("ask", "anything", index_dir=tmp_path / "none")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no index at") and "Traceback" not in missing.stderr


def test_cli_terminal_chat_keeps_history(seed_settings):
    out = run_cli(
        "chat",
        input="Who wrote the memo on countering the opioid epidemic?\n"
        "What did he say about business as usual?\n",
        index_dir=seed_settings.index.index_dir,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Sources:") == 2 and "business as usual" in out.stdout

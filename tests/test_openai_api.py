"""The HTTP API on the launched app, through the official ``openai`` client: a plain and a
streamed answer carry the citations in the ``docqa`` field, the history is used, the
collection is the one model, and a wrong or missing key is a 401. ``/api/answer`` returns
the Answer as plain JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import serve_seed_app

pytestmark = pytest.mark.model

KEY = "sk-docqa-test"
SEED_FILE = "000_762628c52ecf43e6.txt"
QUESTION = "Who told federal prosecutors to seek the death penalty in drug cases?"
CITATION_FIELDS = {"n", "source", "title", "quote", "start", "end", "supported"}


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("openai-api")
    demo, local_url, _, _ = serve_seed_app(base, api_keys=f"other-key, {KEY}")
    try:
        yield local_url.rstrip("/")
    finally:
        demo.close()


def client(url: str, key: str = KEY):
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def assert_cites_the_seed(text: str, docqa: dict) -> None:
    assert "Jeff Sessions" in text and "[1]" in text and "&#" not in text
    assert docqa["declined"] is False and docqa["text"] == text
    cited = docqa["citations"][0]
    assert CITATION_FIELDS <= set(cited) and cited["n"] == 1 and cited["supported"] is True
    assert cited["source"] == SEED_FILE and "Jeff Sessions" in cited["quote"]
    assert cited["end"] - cited["start"] == len(cited["quote"])
    assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} == {c["n"] for c in docqa["citations"]}


def test_completion_answers_with_citations_in_the_extra_field(url: str):
    response = client(url).chat.completions.create(
        model="docs",
        messages=[
            {"role": "system", "content": "You are a pirate."},  # ignored
            {"role": "user", "content": QUESTION},
        ],
    )
    assert response.object == "chat.completion" and response.model == "docs"
    choice = response.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert_cites_the_seed(choice.message.content, response.model_extra["docqa"])


def test_streamed_completion_uses_the_history_and_ends_with_the_citations(url: str):
    first = client(url).chat.completions.create(
        model="docs", messages=[{"role": "user", "content": QUESTION}]
    )
    stream = client(url).chat.completions.create(
        model="docs",
        stream=True,
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": first.choices[0].message.content},
            {"role": "user", "content": "What did he say about business as usual?"},
        ],
    )
    chunks = list(stream)
    assert len(chunks) > 3 and all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all((c.model_extra or {}).get("docqa") is None for c in chunks[:-1])
    docqa = last.model_extra["docqa"]
    assert "business as usual" in text and docqa["text"] == text
    assert docqa["citations"] and CITATION_FIELDS <= set(docqa["citations"][0])


def test_models_are_the_collections_and_an_unknown_one_is_404(url: str):
    import openai

    assert [m.id for m in client(url).models.list()] == ["docs"]
    with pytest.raises(openai.NotFoundError) as missing:
        client(url).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": QUESTION}]
        )
    assert missing.value.code == "model_not_found" and "'docs'" in missing.value.message


def test_a_wrong_or_missing_key_is_401(url: str):
    import openai

    with pytest.raises(openai.AuthenticationError) as wrong:
        client(url, "sk-wrong").chat.completions.create(
            model="docs", messages=[{"role": "user", "content": QUESTION}]
        )
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client(url, "sk-wrong").models.list()
    bare = httpx.post(f"{url}/api/answer", json={"question": QUESTION})
    assert bare.status_code == 401 and bare.json()["error"]["code"] == "invalid_api_key"


def test_plain_endpoint_returns_the_answer_json(url: str):
    response = httpx.post(
        f"{url}/api/answer",
        json={"question": QUESTION, "history": []},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) >= {"text", "declined", "citations", "short_answer", "trace"}
    assert_cites_the_seed(answer["text"], {**answer, "text": answer["text"]})
    empty = httpx.post(
        f"{url}/api/answer", json={"question": "  "}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert empty.status_code == 400 and empty.json()["error"]["message"]

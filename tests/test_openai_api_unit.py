"""The HTTP API's pieces without a model: messages become (question, history), keys are
compared as digests, an open API answers without a key, a login closes it, and the
answering errors are OpenAI-style errors."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chatbot.chain import QuestionError
from chatbot.types import Answer, Citation
from chatbot.web.config import WebSettings
from chatbot.web.openai_api import ApiError, ApiKeys, api_routes, turn_from_messages
from chatbot.web.service import NoIndexError

ANSWER = Answer(
    text="Sessions said so [1].",
    declined=False,
    citations=[Citation(1, "a.txt", "A", None, "c1", "Sessions said so.", 10, 27)],
)


class FakeService:
    def __init__(self, error: Exception | None = None, **settings) -> None:
        self.settings = WebSettings(**settings)
        self.error = error
        self.questions: list[tuple[str, list]] = []

    @contextmanager
    def answering(self):
        if self.error:
            raise self.error
        yield SimpleNamespace(answer=self._answer)

    def _answer(self, question, history):
        if not question.strip():
            raise QuestionError("the question is empty")
        self.questions.append((question, history))
        return ANSWER

    def stream(self, question, history):
        with self.answering():
            self.questions.append((question, history))
            yield "Sessions said "
            yield "so [1]."
            yield ANSWER


def serve(service: FakeService, keys: str = "") -> TestClient:
    return TestClient(FastAPI(routes=api_routes(service, ApiKeys.parse(keys))))


def test_messages_are_the_last_question_and_the_history_without_system_messages():
    question, history = turn_from_messages(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "Who?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Sessions [1]."}]},
            {"role": "user", "content": "Why?"},
        ]
    )
    assert question == "Why?"
    assert history == [
        {"role": "user", "content": "Who?"},
        {"role": "assistant", "content": "Sessions [1]."},
    ]
    for bad in ([], [{"role": "assistant", "content": "hi"}], [{"role": "user", "content": 3}]):
        with pytest.raises(ApiError) as refused:
            turn_from_messages(bad)
        assert refused.value.status == 400


def test_keys_are_a_comma_list_compared_as_digests():
    keys = ApiKeys.parse(" k1 ,k2,, ")
    assert keys and keys.allows("k1") and keys.allows("k2")
    assert not keys.allows("k3") and not keys.allows("") and not ApiKeys.parse(" , ")
    assert "k1" not in repr(vars(keys))


def test_an_open_api_answers_plain_and_streamed_without_a_key():
    service = FakeService()
    http = serve(service)
    body = {"model": "docs", "messages": [{"role": "user", "content": "Who?"}]}
    plain = http.post("/v1/chat/completions", json=body).json()
    assert plain["choices"][0]["message"]["content"] == ANSWER.text
    assert plain["docqa"]["citations"][0]["quote"] == "Sessions said so."
    streamed = http.post("/v1/chat/completions", json={**body, "stream": True})
    events = [line for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and '"docqa"' in events[-2] and len(events) == 5
    answer = http.post("/api/answer", json={"question": "Who?"}).json()
    assert answer["text"] == ANSWER.text and answer["citations"][0]["start"] == 10
    assert service.questions == [("Who?", [])] * 3


def test_a_login_without_keys_closes_the_api():
    http = serve(FakeService(login_user="ann", login_password="pw"))
    refused = http.get("/v1/models")
    assert refused.status_code == 401 and "DOCQA_API_KEYS" in refused.json()["error"]["message"]
    opened = serve(FakeService(login_user="ann", login_password="pw"), keys="k")
    assert opened.get("/v1/models", headers={"Authorization": "Bearer k"}).status_code == 200


@pytest.mark.parametrize(
    ("error", "status"), [(NoIndexError("no index yet"), 503), (RuntimeError("boom"), 500)]
)
def test_answering_errors_are_openai_errors(error: Exception, status: int):
    http = serve(FakeService(error))
    body = {"messages": [{"role": "user", "content": "Who?"}]}
    for stream in (False, True):
        response = http.post("/v1/chat/completions", json={**body, "stream": stream})
        assert response.status_code == status
        assert response.json()["error"]["type"] in ("server_error", "api_error")
    empty = serve(FakeService()).post("/api/answer", json={"question": " "})
    assert empty.status_code == 400 and empty.json()["error"]["message"] == "the question is empty"


def test_a_body_or_history_past_its_limit_is_one_line_413_or_400():
    from chatbot.web.openai_api import MAX_BODY_BYTES, MAX_HISTORY_CHARS, MAX_HISTORY_MESSAGES

    service = FakeService()
    http = serve(service)
    big = {"question": "Who?", "pad": "x" * MAX_BODY_BYTES}
    refused = http.post("/api/answer", json=big)
    assert refused.status_code == 413
    message = refused.json()["error"]["message"]
    assert message.endswith(f"the limit is {MAX_BODY_BYTES}") and "\n" not in message

    def chunks():  # no Content-Length: refused once the body passes the limit
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    assert http.post("/api/answer", content=chunks()).status_code == 413
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    many = turns * (MAX_HISTORY_MESSAGES // 2 + 1)
    refused = http.post("/api/answer", json={"question": "Who?", "history": many})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        f"the history has {len(many)} messages; the limit is {MAX_HISTORY_MESSAGES}"
    )
    long = [{"role": "user", "content": "y" * (MAX_HISTORY_CHARS + 1)}]
    body = {"model": "docs", "messages": [*long, {"role": "user", "content": "Who?"}]}
    refused = http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 400 and "characters; the limit is" in refused.text
    assert service.questions == []  # nothing past a limit was answered
    ok = http.post("/api/answer", json={"question": "Who?", "history": turns})
    assert ok.status_code == 200 and service.questions == [("Who?", turns)]


@pytest.mark.parametrize(
    "model",
    ["../../etc/passwd", "<script>alert(1)</script>", "docs\x1b[31m\r\nFAKE LOG", "x" * 10_000],
)
def test_a_hostile_model_name_is_a_short_one_line_404_that_shows_it_escaped(model):
    http = serve(FakeService())
    body = {"model": model, "messages": [{"role": "user", "content": "Who?"}]}
    refused = http.post("/v1/chat/completions", json=body)
    assert refused.status_code == 404
    message = refused.json()["error"]["message"]
    assert message.startswith("the model ") and message.endswith("the models are ['docs']")
    assert len(message) < 200 and message.isprintable()  # no raw control characters
    assert "\x1b" not in message and "\n" not in message

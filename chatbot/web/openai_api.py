"""The HTTP API beside the page: an OpenAI-compatible ``/v1/chat/completions`` (and
``/v1/models``, one model per collection) and ``/api/answer``, the ``Answer`` as plain JSON.

Both answer through the page's ``ChatService`` of the collection named by ``model`` (its
loaded chatbot, its read lock; no ``model``: the default collection) with at most
``CHAT_CONCURRENCY`` API answers in flight. The citations travel in an extra top-level
``docqa`` field that OpenAI clients ignore. With ``api_keys`` set, or accounts on (a users
file), every route needs ``Authorization: Bearer KEY``: a user's own key (the request then
runs as that user) or one of ``api_keys`` (no user); keys are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute

from chatbot.accounts import UsersFile
from chatbot.chain import QuestionError
from chatbot.llm_errors import LLMError
from chatbot.types import Answer
from chatbot.web.library import Library
from chatbot.web.page import CHAT_CONCURRENCY
from chatbot.web.service import ChatService, NoIndexError
from ingest import IndexUnavailableError, IngestError

logger = logging.getLogger(__name__)

OWNER = "docqa"
RETRY_AFTER_S = 5  # what a 503 for an unreachable index server asks clients to wait
# Limits of a request (README, API): beyond them a one-line 413 (body) or 400 (history).
MAX_BODY_BYTES = 1024 * 1024
MAX_HISTORY_MESSAGES = 200  # user and assistant messages before the question
MAX_HISTORY_CHARS = 200_000  # their text, all together


class ApiError(Exception):
    """A request the API refuses, as an OpenAI-style error with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str,
        code: str | None = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        body = {"message": self.message, "type": self.kind, "param": None, "code": self.code}
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """The keys that may call the API, as digests; empty means the API is open."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = [_digest(k) for k in keys]

    @classmethod
    def parse(cls, value: str) -> ApiKeys:
        """A comma-separated list of keys (spaces around each are dropped)."""
        return cls(k.strip() for k in value.split(",") if k.strip())

    def __bool__(self) -> bool:
        return bool(self._digests)

    def allows(self, key: str) -> bool:
        """Whether ``key`` is one of the keys, compared in constant time against each."""
        given = _digest(key)
        return any([hmac.compare_digest(given, d) for d in self._digests])


def turn_from_messages(messages: Any) -> tuple[str, list[dict[str, str]]]:
    """OpenAI ``messages`` as (question, history): the last message, a user's, is the
    question; earlier user and assistant messages are the history; system messages (and any
    other role) are ignored. Content is a string or a list of ``{"type": "text"}`` parts."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list", "invalid_request_error")
    turns = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{i}] must be an object", "invalid_request_error")
        if message.get("role") in ("user", "assistant"):
            turns.append({"role": message["role"], "content": _text(message.get("content"), i)})
    if not turns or turns[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's", "invalid_request_error")
    history = [t for t in turns[:-1] if t["content"].strip()]
    if len(history) > MAX_HISTORY_MESSAGES:
        raise ApiError(
            400,
            f"the history has {len(history)} messages; the limit is {MAX_HISTORY_MESSAGES}",
            "invalid_request_error",
        )
    chars = sum(len(t["content"]) for t in history)
    if chars > MAX_HISTORY_CHARS:
        raise ApiError(
            400,
            f"the history has {chars} characters; the limit is {MAX_HISTORY_CHARS}",
            "invalid_request_error",
        )
    return turns[-1]["content"], history


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        if all(isinstance(p, str) for p in parts):
            return "".join(parts)
    raise ApiError(
        400, f"messages[{i}].content must be text, got {content!r:.80}", "invalid_request_error"
    )


def docqa_field(answer: Answer) -> dict[str, Any]:
    """The extra ``docqa`` field: the checked answer text, whether it declined, the short
    answer and the citations (n, source, title, quote, start/end offsets, supported, ...)."""
    return {
        "text": answer.text,
        "declined": answer.declined,
        "short_answer": answer.short_answer,
        "citations": [asdict(c) for c in answer.citations],
        "backend": answer.backend,
    }


def completion(answer: Answer, model: str) -> dict[str, Any]:
    """A ``chat.completion`` object for ``answer`` (tokens are not counted: usage is zeros)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        OWNER: docqa_field(answer),
    }


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"


class Api:
    """The API's handlers over the shared services, one model per collection."""

    def __init__(self, library: Library, keys: ApiKeys, users: UsersFile | None = None) -> None:
        self.library = library
        self.keys = keys
        self.users = users
        self.locked = bool(library.settings.login_user) and not keys
        self._slots = threading.BoundedSemaphore(CHAT_CONCURRENCY)

    @property
    def models(self) -> list[str]:
        """The model ids: the collections' names."""
        return self.library.names()

    def check(self, request: Request) -> str | None:
        """The caller: the user whose key the ``Authorization: Bearer`` key is, or None (an
        ``api_keys`` key, or an open API). Refuses (401) a request without a valid key when
        keys are set or accounts are on, and every request when the page has a shared login
        but no API keys are set."""
        if self.locked:
            raise ApiError(
                401,
                "the page has a login, so the API needs keys: set DOCQA_API_KEYS",
                "invalid_request_error",
                "invalid_api_key",
            )
        if not self.keys and self.users is None:
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() == "bearer" and key:
            user = self.users.users().by_api_key(key) if self.users is not None else None
            if user is not None:
                return user.name
            if self.keys and self.keys.allows(key):
                return None
        raise ApiError(
            401, "incorrect or missing API key", "invalid_request_error", "invalid_api_key"
        )

    def model_for(self, body: dict[str, Any]) -> str:
        model = body.get("model") or self.library.default
        if not isinstance(model, str) or model not in self.models:
            raise ApiError(
                404,
                f"the model {model!r:.80} does not exist; the models are {self.models}",
                "invalid_request_error",
                "model_not_found",
            )
        return model

    def answer(self, question: str, history: list[dict[str, str]], model: str) -> Answer:
        """The answer from collection ``model``."""
        with self._slots, _errors(), self.library.service(model).answering() as bot:
            return bot.answer(question, history)

    def open_stream(
        self, question: str, history: list[dict[str, str]], model: str
    ) -> tuple[Iterator[str | Answer], str | Answer]:
        """Take a slot, start the answer and wait for its first part (so a bad question is
        a 400, not a broken stream); the caller closes the stream and releases the slot."""
        self._slots.acquire()
        try:
            with _errors():
                stream = self.library.service(model).stream(question, history)
            try:
                with _errors():
                    return stream, next(stream)
            except BaseException:
                stream.close()
                raise
        except BaseException:
            self._slots.release()
            raise

    def events(
        self, stream: Iterator[str | Answer], first: str | Answer, model: str
    ) -> Iterator[str]:
        """The answer as ``chat.completion.chunk`` events: the role, the text deltas, a
        last chunk with ``finish_reason`` and the ``docqa`` field, then ``[DONE]``."""
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            return {**base, "choices": [choice]}

        try:
            yield _event(chunk({"role": "assistant", "content": ""}))
            item = first
            while not isinstance(item, Answer):
                yield _event(chunk({"content": item}))
                item = next(stream)
            yield _event({**chunk({}, "stop"), OWNER: docqa_field(item)})
            yield "data: [DONE]\n\n"
        except Exception as exc:  # the status is sent: say it in the stream
            logger.exception("streaming an answer failed")
            error = {"message": f"{type(exc).__name__}: {exc}", "type": "api_error"}
            yield _event({"error": error})
        finally:
            stream.close()
            self._slots.release()


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the answering path's errors into ``ApiError``\\ s."""
    try:
        yield
    except ApiError:
        raise
    except IndexUnavailableError as exc:
        logger.warning("%s", exc)  # one line a failure: the server is known to be away
        raise ApiError(503, str(exc), "server_error", retry_after=RETRY_AFTER_S) from exc
    except (NoIndexError, IngestError) as exc:
        logger.warning("%s", exc)
        raise ApiError(503, str(exc), "server_error") from exc
    except LLMError as exc:
        raise ApiError(502, str(exc), "api_error") from exc
    except (QuestionError, ValueError) as exc:
        raise ApiError(400, str(exc), "invalid_request_error") from exc
    except Exception as exc:
        logger.exception("answering failed")
        raise ApiError(500, f"internal error: {type(exc).__name__}", "server_error") from exc


def _too_large(size: int) -> ApiError:
    return ApiError(
        413,
        f"the request body is {size} bytes; the limit is {MAX_BODY_BYTES}",
        "invalid_request_error",
    )


async def _json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(int(declared))  # refused before it is read
    raw = bytearray()
    async for part in request.stream():
        raw += part
        if len(raw) > MAX_BODY_BYTES:
            raise _too_large(len(raw))  # no length given: refused once past the limit
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"the body is not JSON: {exc}", "invalid_request_error") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "invalid_request_error")
    return body


def api_routes(
    source: Library | ChatService, keys: ApiKeys, users: UsersFile | None = None
) -> list[BaseRoute]:
    """The API's routes over the collections of ``source`` (one service: its collection
    alone), to serve on the page's server (``launch`` passes them to Gradio's FastAPI app);
    ``users``: the accounts whose keys also open it."""
    library = source if isinstance(source, Library) else Library.of(source)
    api = Api(library, keys, users)
    router = APIRouter()

    @router.get("/v1/models")
    async def list_models(request: Request) -> Any:
        try:
            api.check(request)
        except ApiError as exc:
            return exc.response()
        data = [{"id": m, "object": "model", "created": 0, "owned_by": OWNER} for m in api.models]
        return JSONResponse({"object": "list", "data": data})

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            caller = api.check(request)
            body = await _json_body(request)
            model = api.model_for(body)
            logger.info("chat completion for %s", caller or "an API key without a user")
            question, history = turn_from_messages(body.get("messages"))
            if body.get("stream"):
                stream, first = await run_in_threadpool(api.open_stream, question, history, model)
                return StreamingResponse(
                    api.events(stream, first, model), media_type="text/event-stream"
                )
            answer = await run_in_threadpool(api.answer, question, history, model)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(completion(answer, model))

    @router.post("/api/answer")
    async def plain_answer(request: Request) -> Any:
        try:
            caller = api.check(request)
            body = await _json_body(request)
            logger.info("plain answer for %s", caller or "an API key without a user")
            question = body.get("question")
            if not isinstance(question, str):
                raise ApiError(400, "question must be a string", "invalid_request_error")
            messages = [*(body.get("history") or []), {"role": "user", "content": question}]
            _, history = turn_from_messages(messages)
            model = api.model_for(body)
            answer = await run_in_threadpool(api.answer, question, history, model)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(answer.to_dict())

    return list(router.routes)

"""A tiny OpenAI-compatible chat server for tests: stdlib only, bound to 127.0.0.1.

It answers ``POST /v1/chat/completions`` (plain JSON, or SSE chunks when ``"stream": true``)
and ``GET /v1/models``, records every request it receives, and can be told to fail:
``status=500`` (or 401, 404, ...) answers with that HTTP error, ``hang=<seconds>`` sleeps
before answering (longer than a client's timeout), ``hang_mid_stream=<seconds>`` sends the
first delta of a stream and then stalls.

    with StubOpenAI(reply="Paris [1].") as stub:
        model = make_chat_model("openai:stub-model", base_url=stub.base_url)
        ...
        assert stub.requests[-1].body["messages"][0]["role"] == "system"
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

logger = logging.getLogger(__name__)

Reply = str | Callable[[list[dict[str, Any]]], str]

_ERROR_BODIES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


@dataclass
class RecordedRequest:
    """One request as the stub received it: ``headers`` with lower-case names, ``body`` the
    parsed JSON (None for a GET)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages", []))


def split_deltas(text: str) -> list[str]:
    """The stream's content deltas: one word (with its trailing space) each."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


@dataclass
class StubOpenAI:
    """An OpenAI-compatible stub server; use as a context manager or ``start()``/``stop()``."""

    reply: Reply = "Stub answer [1]."
    status: int | None = None
    hang: float = 0.0
    hang_mid_stream: float = 0.0
    models: list[str] = field(default_factory=lambda: ["stub-model"])
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> StubOpenAI:
        if self._server is not None:
            raise RuntimeError(f"stub already running on port {self.port}")
        self._release.clear()
        server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        logger.debug("stub OpenAI server on %s", self.base_url)
        return self

    def stop(self) -> None:
        self._release.set()  # wake any handler that is hanging on purpose
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> StubOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- accessors ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stub is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def last_body(self) -> dict[str, Any]:
        chats = self.chat_requests
        if not chats:
            raise AssertionError("the stub received no chat completion request")
        return chats[-1].body

    # -- internals used by the handler -----------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _answer_text(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._release.wait(seconds)


class _QuietServer(ThreadingHTTPServer):
    """Handler threads are daemons; a client that hung up (timeout) is not an error."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            logger.debug("stub: client %s hung up", client_address)
        else:
            logger.exception("stub: error while answering %s", client_address)


def _make_handler(stub: StubOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "StubOpenAI/1.0"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("stub: " + format, *args)

        def _record(self, body: Any) -> None:
            stub._record(
                RecordedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )

        def _send_json(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_error(self, status: int, message: str) -> None:
            kind, code = _ERROR_BODIES.get(status, ("server_error", None))
            error = {"message": message, "type": kind, "param": None, "code": code}
            self._send_json(status, {"error": error})

        def do_GET(self) -> None:
            self._record(None)
            if self.path.rstrip("/").endswith("/models"):
                data = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "stub"}
                    for m in stub.models
                ]
                self._send_json(200, {"object": "list", "data": data})
            else:
                self._send_error(404, f"no route GET {self.path}")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                body = raw.decode("utf-8", "replace")
            self._record(body)
            stub._sleep(stub.hang)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send_error(404, f"no route POST {self.path}")
                return
            if not isinstance(body, dict):
                self._send_error(400, "request body is not a JSON object")
                return
            if stub.status is not None and stub.status >= 400:
                model = body.get("model")
                message = (
                    f"The model `{model}` does not exist"
                    if stub.status == 404
                    else f"stub failure (HTTP {stub.status})"
                )
                self._send_error(stub.status, message)
                return
            text = stub._answer_text(list(body.get("messages", [])))
            model = str(body.get("model", "stub-model"))
            if body.get("stream"):
                self._stream(model, text, body)
            else:
                self._send_json(200, _completion(model, text, body))

        def _stream(self, model: str, text: str, body: dict[str, Any]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            cid = f"chatcmpl-stub-{len(stub.requests)}"
            self._event(_chunk(cid, model, {"role": "assistant", "content": ""}))
            for i, delta in enumerate(split_deltas(text)):
                self._event(_chunk(cid, model, {"content": delta}))
                if i == 0:
                    stub._sleep(stub.hang_mid_stream)
            self._event(_chunk(cid, model, {}, finish_reason="stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage_chunk = _chunk(cid, model, {})
                usage_chunk["choices"] = []
                usage_chunk["usage"] = _usage(body, text)
                self._event(usage_chunk)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, payload: dict[str, Any]) -> None:
            self.wfile.write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")
            self.wfile.flush()

    return Handler


def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    completion = len(text.split())
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(model: str, text: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(body, text),
    }


def _chunk(
    cid: str, model: str, delta: dict[str, Any], finish_reason: str | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
    }


@pytest.fixture
def stub_openai() -> Iterator[StubOpenAI]:
    """A running stub for one test (import this fixture into a test module to use it)."""
    with StubOpenAI() as stub:
        yield stub

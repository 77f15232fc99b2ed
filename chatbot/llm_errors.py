"""Chat-model failures as one-line ``LLMError``\\ s: which exceptions are the client's
(connection, timeout, auth, HTTP), told apart by their classes, and the message for each.

The classes come from the client packages that are installed (``openai``, ``httpx`` and the
``httpx2`` that openai>=3 runs on, ``ollama``, LangChain's typed ``ModelError``\\ s), each
imported lazily and optionally, so a missing extra never breaks the import of this module.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

logger = logging.getLogger(__name__)

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
OLLAMA_DEFAULT_URL = "http://localhost:11434"

# (module, class, kind). An exception of one of these classes is the client's failure, not a
# bug of ours; the kind, where one is given, is what it means (HTTP statuses are read from
# ``status_code`` first). Modules that are not installed are skipped.
_HTTPX_ROOTS = ("HTTPError", "InvalidURL", "CookieConflict", "StreamError")
CLIENT_ERRORS: tuple[tuple[str, str, str | None], ...] = (
    ("openai", "OpenAIError", None),
    ("openai", "APITimeoutError", "timeout"),
    ("openai", "AuthenticationError", "auth"),
    ("openai", "PermissionDeniedError", "auth"),
    ("openai", "NotFoundError", "not_found"),
    ("openai", "RateLimitError", "rate_limit"),
    ("openai", "APIConnectionError", "connection"),
    *((httpx, name, None) for httpx in ("httpx", "httpx2") for name in _HTTPX_ROOTS),
    *((httpx, "TimeoutException", "timeout") for httpx in ("httpx", "httpx2")),
    *((httpx, "ConnectError", "connection") for httpx in ("httpx", "httpx2")),
    ("ollama", "ResponseError", None),
    ("ollama", "RequestError", None),
    ("langchain_core.exceptions", "ModelError", None),
    ("langchain_core.exceptions", "ModelTimeoutError", "timeout"),
    ("langchain_core.exceptions", "ModelAuthenticationError", "auth"),
    ("langchain_core.exceptions", "ModelPermissionDeniedError", "auth"),
    ("langchain_core.exceptions", "ModelNotFoundError", "not_found"),
    ("langchain_core.exceptions", "ModelRateLimitError", "rate_limit"),
    ("langchain_core.exceptions", "ModelConnectionError", "connection"),
)


class LLMError(Exception):
    """A chat-model call failed; ``str(err)`` is one line naming the backend and the cause.

    ``kind`` is one of ``connection``, ``timeout``, ``auth``, ``not_found``, ``rate_limit``,
    ``http``, ``missing_package`` or ``error``; ``status`` the HTTP status when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "error",
        backend: str = "",
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.backend = backend
        self.url = url
        self.status = status


class MissingBackendError(LLMError, ImportError):
    """The provider's integration package is not installed."""


@functools.cache
def _classes(kind: str | None) -> tuple[type[BaseException], ...]:
    """The installed client exception classes of ``CLIENT_ERRORS`` with this ``kind``
    (``None``: every client exception class)."""
    found: list[type[BaseException]] = []
    for module_name, name, k in CLIENT_ERRORS:
        if kind is not None and k != kind:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def is_client_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from the model client (network, HTTP, provider SDK) rather
    than from a bug in our code: an ``OSError``/``TimeoutError`` or a client class."""
    return isinstance(exc, (OSError, TimeoutError, *_classes(None)))


def classify(exc: BaseException) -> tuple[str, int | None]:
    """(kind, HTTP status or None) of a client failure: ``connection``, ``timeout``,
    ``auth``, ``not_found``, ``rate_limit``, ``http`` or ``error``."""
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    message = str(exc).lower()
    if isinstance(exc, (TimeoutError, *_classes("timeout"))):
        return "timeout", status
    if status in (401, 403) or isinstance(exc, _classes("auth")):
        return "auth", status
    if "missing credentials" in message or "api_key client option" in message:
        return "auth", status
    if status == 404 or isinstance(exc, _classes("not_found")):
        return "not_found", status
    if status == 429 or isinstance(exc, _classes("rate_limit")):
        return "rate_limit", status
    if status is not None:
        return "http", status
    if isinstance(exc, (ConnectionError, OSError, *_classes("connection"))):
        return "connection", status
    return "error", status


def describe_backend(model: BaseChatModel) -> tuple[str, str | None]:
    """("provider:model", base URL or None) for messages and logs."""
    cls = type(model).__name__
    name = getattr(model, "model_name", None) or getattr(model, "model", None)
    if cls in ("ChatOpenAI", "AzureChatOpenAI") or hasattr(model, "openai_api_base"):
        client = getattr(model, "root_client", None)
        url = str(getattr(client, "base_url", "") or "") or (
            getattr(model, "openai_api_base", None)
            or os.environ.get("OPENAI_BASE_URL")
            or OPENAI_DEFAULT_URL
        )
        return f"openai:{name}", url.rstrip("/")
    if cls == "ChatOllama":
        url = getattr(model, "base_url", None) or os.environ.get("OLLAMA_HOST")
        return f"ollama:{name}", url or OLLAMA_DEFAULT_URL
    if "fake" in str(getattr(model, "_llm_type", "")):
        return "fake", None
    url = getattr(model, "base_url", None)
    return (f"{cls}:{name}" if name else cls), (str(url) if url else None)


def _timeout_of(model: BaseChatModel) -> float | None:
    value = getattr(model, "request_timeout", None)
    if value is None:
        value = (getattr(model, "client_kwargs", None) or {}).get("timeout")
    return value if isinstance(value, (int, float)) else None


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cause(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    inner = exc.__cause__ or exc.__context__
    if inner is not None and str(inner) and str(inner) not in text:
        # e.g. "Connection error." caused by "[Errno 111] Connection refused"
        text = f"{text} ({inner})"
    return _one_line(text)


def as_llm_error(model: BaseChatModel, exc: Exception, *, after: int = 0) -> LLMError | None:
    """``exc`` as a one-line ``LLMError``, or None when it is not the client's failure.
    ``after``: how many chunks a stream had delivered before it failed."""
    if isinstance(exc, LLMError) or not is_client_error(exc):
        return None
    backend, url = describe_backend(model)
    return llm_error(backend, url, exc, timeout=_timeout_of(model), after=after)


def llm_error(
    backend: str,
    url: str | None,
    exc: BaseException,
    *,
    timeout: float | None = None,
    after: int = 0,
) -> LLMError:
    """The one-line ``LLMError`` for a client failure of ``backend`` at ``url``."""
    kind, status = classify(exc)
    where = f"{backend} at {url}" if url else backend
    cause = _cause(exc)
    if kind == "connection":
        message = f"cannot reach {where}: {cause}"
    elif kind == "timeout":
        within = f" within {timeout:g}s" if timeout else " in time"
        message = f"{where} did not answer{within}: {cause}"
    elif kind == "auth" and status is None:
        message = f"{where} has no API key (set OPENAI_API_KEY or pass one): {cause}"
    elif kind == "auth":
        message = f"{where} rejected the credentials (check the API key): {cause}"
    elif kind == "not_found":
        name = backend.split(":", 1)[-1]
        hint = f"; run `ollama pull {name}`" if backend.startswith("ollama:") else ""
        message = f"model {name!r} not found at {url or backend}: {cause}{hint}"
    elif kind == "rate_limit":
        message = f"{where} is rate-limiting requests: {cause}"
    elif kind == "http":
        message = f"{where} answered HTTP {status}: {cause}"
    else:
        message = f"{where} failed: {cause}"
    if after:
        message = f"stream interrupted after {after} chunks: {message}"
    logger.debug("chat model call failed: %s", message, exc_info=exc)
    return LLMError(message, kind=kind, backend=backend, url=url, status=status)

"""The generative answering backend: the chat-model factory and the calls.

``make_chat_model("openai:gpt-4o-mini")``, ``("openai:<model>", base_url=...)`` for any
OpenAI-compatible server (vLLM, llama.cpp server, LM Studio), ``("ollama:llama3.1")`` (the
``ollama`` extra) or ``("fake")`` / ``("fake:<text>")`` for tests and demos. ``generate``
and ``stream`` call the model and turn the client's connection, timeout, auth and HTTP
failures into one-line ``LLMError``\\ s (``chatbot.llm_errors``). The prompts are in
``chatbot.prompts``.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from chatbot.llm_errors import (
    OPENAI_DEFAULT_URL,
    MissingBackendError,
    as_llm_error,
    is_client_error,
    llm_error,
)
from chatbot.prompts import REFUSAL

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

logger = logging.getLogger(__name__)

DEFAULT_FAKE_ANSWER = REFUSAL
PLACEHOLDER_API_KEY = "not-needed"

SUPPORTED_SPECS = (
    "'openai:<model>' (OpenAI, or any OpenAI-compatible server with base_url), "
    "'ollama:<model>' (needs the ollama extra), 'fake' or 'fake:<fixed answer>'"
)


# --------------------------------------------------------------------------------------
# The factory


def make_chat_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 0,
    temperature: float = 0.0,
) -> BaseChatModel:
    """A LangChain chat model for ``spec`` ("provider:model", or "fake[:answer]").

    ``base_url`` points ``openai:`` at any OpenAI-compatible server; without ``api_key`` a
    placeholder key is sent there (``OPENAI_API_KEY`` is never forwarded to a custom URL).
    ``timeout`` (seconds) and ``max_retries`` make an unreachable server fail fast.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"chat model spec {spec!r} is empty; supported: {SUPPORTED_SPECS}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive seconds, got {timeout!r}")
    if max_retries < 0:
        raise ValueError(f"max_retries must be at least 0, got {max_retries!r}")
    provider, sep, name = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider == "fake":
        return _fake_model(name.strip() if sep else "")
    name = name.strip()
    if provider not in ("openai", "ollama"):
        raise ValueError(
            f"unsupported chat model spec {spec!r} (provider {provider!r}); "
            f"supported: {SUPPORTED_SPECS}"
        )
    if not name:
        raise ValueError(
            f"chat model spec {spec!r} names no model; expected '{provider}:<model>'; "
            f"supported: {SUPPORTED_SPECS}"
        )
    if provider == "openai":
        return _openai_model(name, base_url, api_key, timeout, max_retries, temperature)
    return _ollama_model(name, base_url, timeout, temperature)


def _fake_model(answer: str) -> BaseChatModel:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    # ``messages`` is consumed one item per call: repeat so the model answers every time.
    return GenericFakeChatModel(messages=itertools.repeat(answer or DEFAULT_FAKE_ANSWER))


def _openai_model(
    name: str,
    base_url: str | None,
    api_key: str | None,
    timeout: float,
    max_retries: int,
    temperature: float,
) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {
        "timeout": timeout,
        "max_retries": max_retries,
        "temperature": temperature,
    }
    if base_url:
        kwargs["base_url"] = base_url.rstrip("/")
        kwargs["api_key"] = api_key or PLACEHOLDER_API_KEY
        # OpenAI-compatible servers speak chat completions, not the Responses API that
        # langchain-openai picks for some model names.
        kwargs["use_responses_api"] = False
    elif api_key:
        kwargs["api_key"] = api_key
    logger.debug("chat model openai:%s at %s", name, base_url or "the OpenAI API")
    try:
        return init_chat_model(name, model_provider="openai", **kwargs)
    except Exception as exc:
        # e.g. openai.OpenAIError("Missing credentials ...") when no key is configured
        if not is_client_error(exc):
            raise
        url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL).rstrip("/")
        raise llm_error(f"openai:{name}", url, exc, timeout=timeout) from exc


def _ollama_model(
    name: str, base_url: str | None, timeout: float, temperature: float
) -> BaseChatModel:
    if importlib.util.find_spec("langchain_ollama") is None:
        raise MissingBackendError(
            f"chat model 'ollama:{name}' needs langchain-ollama, which is not installed; "
            "install it with: pip install -e '.[ollama]'",
            kind="missing_package",
            backend=f"ollama:{name}",
        )
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {"temperature": temperature, "client_kwargs": {"timeout": timeout}}
    if base_url:
        kwargs["base_url"] = base_url.rstrip("/")
    logger.debug("chat model ollama:%s at %s", name, base_url or "the default Ollama host")
    return init_chat_model(name, model_provider="ollama", **kwargs)


# --------------------------------------------------------------------------------------
# Calling the model


def generate(model: BaseChatModel, messages: list[BaseMessage]) -> str:
    """The model's whole answer as text; client failures become ``LLMError``."""
    try:
        reply = model.invoke(messages)
    except Exception as exc:
        error = as_llm_error(model, exc)
        if error is None:
            raise
        raise error from exc
    return str(reply.text)


def stream(model: BaseChatModel, messages: list[BaseMessage]) -> Iterator[str]:
    """The answer's text deltas as they arrive; client failures (also mid-stream) become
    ``LLMError``."""
    got = 0
    try:
        for chunk in model.stream(messages):
            text = str(chunk.text)
            if text:
                got += 1
                yield text
    except Exception as exc:
        error = as_llm_error(model, exc, after=got)
        if error is None:
            raise
        raise error from exc

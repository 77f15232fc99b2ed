"""The answering chain (LCEL): condense → retrieve → answer → cite, and the Chatbot facade."""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import Runnable, RunnableLambda

from chatbot.cite import check_citations
from chatbot.condense import Condensed, condense
from chatbot.config import ChatSettings
from chatbot.similarity import SentenceSimilarity
from chatbot.types import Answer, Citation, Passage, Trace

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ingest import DocIndex

logger = logging.getLogger(__name__)

_CONTROL_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DECLINE_PREFIX = "The documents don't say"


class QuestionError(ValueError):
    """A question we cannot take; the message says why in one line."""


def clean_question(question: str, limit: int) -> str:
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, got {type(question).__name__}")
    if len(question) > limit:
        raise QuestionError(
            f"the question is {len(question)} characters long; the limit is {limit}"
        )
    cleaned = _CONTROL_RE.sub(" ", question)
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise QuestionError("the question is empty")
    return cleaned


class Chatbot:
    """Answers questions about the indexed documents, with checked citations.

    One instance holds the loaded index and models; it is safe to share between threads for
    reading. ``refresh()`` picks up a reingest.
    """

    def __init__(
        self,
        settings: ChatSettings,
        index: DocIndex | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        from chatbot.retrieve import HybridRetriever
        from ingest import open_index

        self.settings = settings
        if settings.torch_threads > 0 and not settings.index.embedding_model.startswith("fake"):
            import torch

            torch.set_num_threads(settings.torch_threads)
        self.index = index or open_index(settings.index)
        self.retriever = HybridRetriever(self.index, settings)
        self._similarity = SentenceSimilarity(self.index.embeddings)
        self.backend = settings.answerer
        self._chat_model = chat_model
        if chat_model is None and self.backend != "extractive":
            from chatbot.generative import make_chat_model

            self._chat_model = make_chat_model(
                self.backend,
                base_url=settings.llm_base_url or None,
                api_key=settings.llm_api_key or None,
                timeout=settings.llm_timeout,
            )
        self.chain: Runnable = build_chain(self)

    # ---- stages (each takes and returns the state dict)
    def _condense(self, state: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        history = state.get("history") or []
        if self._chat_model is not None and history:
            from chatbot.generative import build_condense_messages, generate

            query = (
                generate(
                    self._chat_model, build_condense_messages(state["question"], history)
                ).strip()
                or state["question"]
            )
            state["condensed"] = Condensed(query, "", query != state["question"])
        else:
            state["condensed"] = condense(state["question"], history)
        state["timings"]["condense"] = _ms(t)
        return state

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        state["passages"] = self.retriever.retrieve(state["condensed"].query, state.get("k"))
        state["timings"]["retrieve"] = _ms(t)
        return state

    def _answer(self, state: dict[str, Any]) -> dict[str, Any]:
        t = time.perf_counter()
        if self._chat_model is None:
            self._answer_extractive(state)
        else:
            self._answer_generative(state)
        state["timings"]["answer"] = _ms(t)
        return state

    def _answer_extractive(self, state: dict[str, Any]) -> None:
        from chatbot.extractive import extract, rerank

        question = state["question"]
        condensed: Condensed = state["condensed"]
        passages = rerank(condensed.query, state["passages"], self.settings)
        state["passages"] = passages
        selection = extract(
            question,
            passages,
            self.settings,
            context=condensed.context,
            similarity=lambda _question, sentences: self._similarity(condensed.query, sentences),
        )
        state["selection"] = selection
        if selection.declined:
            state["declined"] = True
            state["reason"] = selection.reason
            state["raw_text"] = decline_text(selection.reason, passages)
            return
        # Each quoted sentence gets its own number, so every [n] resolves to one quote (two
        # sentences from one passage are two citations of the same passage).
        by_n = {p.n: p for p in passages}
        cited: list[Passage] = []
        parts = []
        state["quotes"] = {}
        for i, sent in enumerate(selection.sentences, start=1):
            cited.append(dataclasses.replace(by_n[sent.n], n=i))
            state["quotes"][i] = [(sent.start, sent.end)]
            parts.append(f"> {sent.text.strip()} [{i}]")
        if selection.short_answer:
            parts.insert(0, f"{selection.short_answer} [1].")
        state["raw_text"] = "\n\n".join(parts)
        state["cite_passages"] = cited
        state["short_answer"] = selection.short_answer
        state["declined"] = False

    def _answer_generative(self, state: dict[str, Any]) -> None:
        from chatbot.generative import build_messages, generate, is_refusal

        if "raw_text" not in state:  # stream() may already have produced it
            messages = build_messages(state["question"], state["passages"], state.get("history"))
            state["raw_text"] = generate(self._chat_model, messages)
        state["declined"] = is_refusal(state["raw_text"])
        if state["declined"]:
            state["reason"] = "the model found no support in the passages"

    def _cite(self, state: dict[str, Any]) -> dict[str, Any]:
        from chatbot.extractive import split_sentences, support_score

        t = time.perf_counter()
        passages: list[Passage] = state["passages"]
        if state["declined"]:
            text = state["raw_text"]
            if self._chat_model is not None:
                text = decline_text(state.get("reason", ""), passages)
            citations = [closest_citation(p) for p in passages[:3]]
            unsupported: list[str] = []
        else:
            checked = check_citations(
                state["raw_text"],
                state.get("cite_passages", passages),
                support=support_score,
                split=split_sentences,
                threshold=self.settings.support_threshold,
                quotes=state.get("quotes"),
            )
            text, citations, unsupported = checked.text, checked.citations, checked.unsupported
        state["timings"]["cite"] = _ms(t)
        state["answer"] = Answer(
            text=text,
            declined=state["declined"],
            citations=citations,
            short_answer=state.get("short_answer"),
            unsupported_sentences=unsupported,
            backend=self.backend,
            trace=Trace(
                standalone_query=state["condensed"].query,
                passages=passages,
                timings_ms=state["timings"],
                notes=state["notes"],
            ),
        )
        return state

    # ---- public API
    def _state(self, question: str, history: list[dict] | None, k: int | None) -> dict:
        notes = []
        cleaned = clean_question(question, self.settings.max_question_chars)
        if cleaned != question.strip():
            notes.append("control characters or extra whitespace removed from the question")
        return {
            "question": cleaned,
            "history": _clean_history(history),
            "k": k,
            "timings": {},
            "notes": notes,
        }

    def answer(
        self, question: str, history: list[dict] | None = None, k: int | None = None
    ) -> Answer:
        """Answer one question (``history``: earlier turns as {"role", "content"} dicts)."""
        t = time.perf_counter()
        state = self.chain.invoke(self._state(question, history, k))
        state["timings"]["total"] = _ms(t)
        return state["answer"]

    def stream(
        self, question: str, history: list[dict] | None = None, k: int | None = None
    ) -> Iterator[str | Answer]:
        """Yield the answer text as it is produced, then the final checked ``Answer``."""
        t = time.perf_counter()
        state = self._retrieve(self._condense(self._state(question, history, k)))
        if self._chat_model is not None:
            from chatbot.generative import build_messages
            from chatbot.generative import stream as stream_model

            parts: list[str] = []
            messages = build_messages(state["question"], state["passages"], state["history"])
            for delta in stream_model(self._chat_model, messages):
                parts.append(delta)
                yield delta
            state["raw_text"] = "".join(parts)
        state = self._cite(self._answer(state))
        if self._chat_model is None:
            yield from _word_chunks(state["answer"].text)
        state["timings"]["total"] = _ms(t)
        yield state["answer"]

    def answer_batch(self, items: list[dict]) -> list[Answer]:
        return [self.answer(i["question"], i.get("history")) for i in items]

    def refresh(self) -> None:
        """Reopen the index so a finished reingest becomes visible."""
        from chatbot.retrieve import HybridRetriever
        from ingest import open_index

        old = self.index
        self.index = open_index(self.settings.index, embeddings=old.embeddings)
        self.retriever = HybridRetriever(self.index, self.settings)
        old.close()


def build_chain(bot: Chatbot) -> Runnable:
    """condense → retrieve → answer → cite; each stage a named, swappable runnable."""
    return (
        RunnableLambda(bot._condense).with_config(run_name="condense")
        | RunnableLambda(bot._retrieve).with_config(run_name="retrieve")
        | RunnableLambda(bot._answer).with_config(run_name="answer")
        | RunnableLambda(bot._cite).with_config(run_name="cite")
    )


def decline_text(reason: str, passages: list[Passage]) -> str:
    lines = [f"{DECLINE_PREFIX}: {reason}." if reason else f"{DECLINE_PREFIX}."]
    if passages:
        lines.append("The closest passages are:")
        for p in passages[:3]:
            lines.append(f"- {p.title} ({p.location()})")
    return "\n".join(lines)


def closest_citation(p: Passage) -> Citation:
    return Citation(
        n=p.n,
        source=p.source,
        title=p.title,
        date=p.date,
        chunk_id=p.chunk_id,
        quote=p.text,
        start=p.start,
        end=p.end,
        supported=False,
        support=0.0,
        page=p.page,
        passage=p.text,
    )


def _clean_history(history: list[dict] | None) -> list[dict]:
    out = []
    for turn in history or []:
        if isinstance(turn, dict) and turn.get("role") in ("user", "assistant"):
            content = turn.get("content")
            if isinstance(content, str) and content.strip():
                out.append({"role": turn["role"], "content": content})
    return out[-8:]


def _word_chunks(text: str, size: int = 4) -> Iterator[str]:
    words = re.split(r"(\s+)", text)
    for i in range(0, len(words), size * 2):
        yield "".join(words[i : i + size * 2])


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)

"""Chatbot: cited answers over the ingested documents (extractive offline, or a chat model)."""

from __future__ import annotations

from chatbot.chain import Chatbot, QuestionError
from chatbot.config import ChatSettings
from chatbot.types import Answer, Citation, Passage, Trace

__all__ = [
    "Answer",
    "ChatSettings",
    "Chatbot",
    "Citation",
    "Passage",
    "QuestionError",
    "Trace",
]

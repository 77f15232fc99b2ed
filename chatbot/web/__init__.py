"""The web app (``python -m chatbot``): a Gradio page over the chatbot, with the sources
panel, the retrieval trace, the documents folder and eval-case saving.

It imports the answering core (``chatbot``); the core never imports it. ``WebSettings`` is
light; the Gradio app (``ChatApp``, ``build_app``, ``launch``) loads on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatbot.web.config import WebSettings

if TYPE_CHECKING:
    from chatbot.web.app import ChatApp, build_app, launch

__all__ = ["ChatApp", "WebSettings", "build_app", "launch"]

_APP_NAMES = ("ChatApp", "build_app", "launch")


def __getattr__(name: str) -> Any:
    """The Gradio app's names, imported on first use (gradio is slow to import)."""
    if name in _APP_NAMES:
        from chatbot.web import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

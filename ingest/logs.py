"""Logging set-up for the entry points (``python -m ingest``, ``chatbot``, ``eval``): one
line per record on stderr, and the chattiest libraries held at their own level. Library
code only logs; this is called once, by a ``__main__``."""

from __future__ import annotations

import logging
import sys

DEFAULT_FORMAT = "%(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("httpx", "chromadb", "sentence_transformers", "transformers", "urllib3")
"""Libraries that log every request or model load at INFO."""


def configure_logging(
    level: int, *, fmt: str = DEFAULT_FORMAT, libraries: int = logging.WARNING
) -> None:
    """Log at ``level`` to stderr in ``fmt``; ``NOISY_LOGGERS`` log at ``libraries``."""
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(libraries)

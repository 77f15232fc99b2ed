from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.config import set_offline_env

set_offline_env()

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_762628c52ecf43e6.txt"


@pytest.fixture
def fake_settings(tmp_path: Path):
    """Settings for a throwaway index with the deterministic fake embedding."""
    from ingest import IngestSettings

    return IngestSettings(index_dir=tmp_path / "index", embedding_model="fake", progress=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_seed_app(base: Path):
    """Ingest seeds/ into ``base``/index with the real model and launch the web app on a free
    port. Returns (demo, url, settings, handlers); the caller closes ``demo``."""
    from chatbot.config import ChatSettings
    from chatbot.web.app import launch
    from chatbot.web.config import WebSettings
    from ingest import IngestSettings, ingest_paths

    index = IngestSettings(index_dir=base / "index", progress=False)
    assert ingest_paths([ROOT / "seeds"], index).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=index),
        port=free_port(),
        docs_dir=base / "documents",
        eval_cases_file=base / "cases.jsonl",
    )
    demo, handlers, url = launch(settings, seeds_dir=ROOT / "seeds", block=False, quiet=True)
    return demo, url, settings, handlers

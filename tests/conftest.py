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

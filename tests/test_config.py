from __future__ import annotations

from pathlib import Path

import pytest

from ingest.config import IngestSettings, SettingsError, set_offline_env


def test_env_then_overrides():
    env = {"DOCQA_CHUNK_SIZE": "128", "DOCQA_PROGRESS": "no", "DOCQA_INDEX_DIR": "/x/idx"}
    s = IngestSettings.from_env(env, chunk_overlap=10, batch_size=None)
    assert (s.chunk_size, s.chunk_overlap, s.progress, s.index_dir) == (
        128,
        10,
        False,
        Path("/x/idx"),
    )
    assert s.batch_size == IngestSettings().batch_size


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOCQA_CHUNK_SIZE": "big"}, "DOCQA_CHUNK_SIZE must be a int, got 'big'"),
        ({"DOCQA_PROGRESS": "maybe"}, "DOCQA_PROGRESS must be a bool, got 'maybe'"),
        ({"DOCQA_CHUNK_OVERLAP": "300"}, "chunk_overlap must be in [0, chunk_size=128), got 300"),
        ({"DOCQA_COLLECTION": "a b"}, "collection must be letters, digits, '-' or '_', got 'a b'"),
    ],
)
def test_bad_values_are_named(env, message):
    with pytest.raises(SettingsError) as err:
        IngestSettings.from_env(env)
    assert str(err.value) == message


def test_offline_env_respects_user_choice():
    env = {"HF_HUB_OFFLINE": "0"}
    set_offline_env(env)
    assert env["HF_HUB_OFFLINE"] == "0"
    assert env["ANONYMIZED_TELEMETRY"] == "False" and env["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_every_field_is_described():
    from dataclasses import fields

    assert all(f.metadata.get("description") for f in fields(IngestSettings))

"""What ``python -m chatbot`` writes into an index at start: the project's seeds go into its
default index (``make run``) and into an index built with them, never into a user's own."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from chatbot.web.service import DEFAULT_INDEX_DIR, SEEDS_DIR, seeds_for
from ingest import IngestSettings, indexed_folders, ingest_paths
from tests.conftest import free_port, subprocess_env, write

START_TIMEOUT_S = 90


def fake_settings(index_dir: Path) -> IngestSettings:
    return IngestSettings(index_dir=index_dir, embedding_model="fake", progress=False)


def test_the_seeds_go_into_the_default_index_and_an_index_built_with_them(tmp_path):
    assert seeds_for(fake_settings(DEFAULT_INDEX_DIR)) == SEEDS_DIR.resolve()
    assert seeds_for(fake_settings(tmp_path / "new")) is None  # a user's new index
    handbook = fake_settings(tmp_path / "handbook")
    write(tmp_path / "docs" / "leave.md", "# Leave\n\nEveryone gets 20 days of vacation.")
    ingest_paths([tmp_path / "docs"], handbook)
    assert indexed_folders(handbook) == {str((tmp_path / "docs").resolve())}
    assert seeds_for(handbook) is None
    with_seeds = fake_settings(tmp_path / "copy")
    ingest_paths([SEEDS_DIR], with_seeds)
    assert seeds_for(with_seeds) == SEEDS_DIR.resolve()
    assert seeds_for(with_seeds, seeds_dir=tmp_path / "no-such-folder") is None


def test_the_app_started_on_a_users_index_leaves_its_documents_as_they_are(tmp_path):
    docs = tmp_path / "handbook"
    write(docs / "leave.md", "# Leave\n\nEveryone gets 20 days of vacation a year.")
    settings = fake_settings(tmp_path / "idx")
    assert ingest_paths([docs], settings).exit_code == 0
    before = indexed_folders(settings)
    port = free_port()
    env = {
        **subprocess_env(),
        "DOCQA_EMBEDDING_MODEL": "fake",
        "DOCQA_DOCS_DIR": str(tmp_path / "uploads"),
    }
    log = tmp_path / "app.log"
    cmd = [sys.executable, "-m", "chatbot", "--index-dir", str(settings.index_dir)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # the start's reingest of the folders it syncs logs its counts when done
        while "unchanged" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text(errors="replace")
    assert "not syncing seeds/" in text
    assert indexed_folders(settings) == before == {str(docs.resolve())}

"""A full disk during an ingest: one line, a non-zero exit, the index still serves what it
served before the run, and the next run after space is freed finishes. On a real small tmpfs
where this machine lets the test mount one, and always with ENOSPC injected at the writes
(Chroma's upsert, the manifest's commit). Fake embedding."""

from __future__ import annotations

import errno
import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from ingest import IngestSettings, open_index
from ingest.__main__ import main as ingest_main
from ingest.damage import forget_client
from ingest.lexical import LexicalIndex
from ingest.manifest import Manifest
from tests.conftest import corpus, subprocess_env, write

WORDS = "alpha beta gamma delta water budget council policy court judge harbour".split()
QUERY = "council water policy"


def served(settings: IngestSettings) -> tuple:
    """What the index serves: its documents, chunk ids, dense and BM25 hits."""
    forget_client(settings)  # read the files as they are now, not a cached client's view
    index = open_index(settings)
    try:
        docs = sorted((r.source, r.chunk_ids) for r in index.documents())
        dense = [doc.id for doc, _ in index.search(QUERY, 5)]
        return docs, sorted(index.all_ids()), dense, index.lexical_search(QUERY, 5)
    finally:
        index.close()


def assert_consistent(settings: IngestSettings) -> None:
    forget_client(settings)
    index = open_index(settings)
    try:
        ids = index.all_ids()
        assert ids == index.manifest.all_chunk_ids()
        assert index.manifest.pending() == {}
        saved = LexicalIndex.load(index.lexical_dir)
        assert saved is not None and saved.live_ids() == ids
    finally:
        index.close()


def grow(docs: Path, files: int) -> None:
    """Change one document and add ``files`` long ones (several waves of chunks)."""
    rng = random.Random(1)
    write(docs / "a.txt", "date 2020-01-02 Alpha report.\n\nThe harbour plan. " * 40)
    for i in range(files):
        text = " ".join(f"{rng.choice(WORDS)}{rng.randrange(10**6)}" for _ in range(4000))
        write(docs / "big" / f"d{i:03d}.txt", text)


def full_chroma_upsert(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def full_manifest_journal(*args, **kwargs):
    raise sqlite3.OperationalError("database or disk is full")


@pytest.mark.parametrize(
    ("where", "failing", "reason"),
    [
        (
            "chromadb.api.models.Collection.Collection.upsert",
            full_chroma_upsert,
            "No space left on device",
        ),
        # The journal is the first write of a wave: SQLite on a full disk fails there.
        ("ingest.manifest.Manifest.begin", full_manifest_journal, "database or disk is full"),
    ],
)
def test_injected_enospc_is_one_line_keeps_the_index_and_the_next_run_finishes(
    tmp_path: Path, fake_settings: IngestSettings, monkeypatch, capsys, where, failing, reason
):
    docs = corpus(tmp_path / "docs")
    argv = [str(docs), "--index-dir", str(fake_settings.index_dir), "--embedding-model", "fake"]
    assert ingest_main([*argv, "-q"]) == 0
    before = served(fake_settings)
    grow(docs, 2)
    capsys.readouterr()

    monkeypatch.setattr(where, failing)
    assert ingest_main([*argv, "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    # An OSError does not say which file: the index folder is named.
    index_dir = fake_settings.index_dir
    path = index_dir / "manifest.sqlite3" if "manifest" in where else index_dir
    assert err.startswith(
        f"error: could not write to the index at {path}: the disk is full ({reason}; "
    )
    assert err.endswith(
        "free there): free some space and run the ingest again; the index still serves what "
        "it served before this run"
    )
    assert served(fake_settings) == before

    monkeypatch.undo()  # space freed
    assert ingest_main([*argv, "-q"]) == 0
    assert_consistent(fake_settings)
    docs_now = {source for source, _ in served(fake_settings)[0]}
    assert {"big/d000.txt", "big/d001.txt", "a.txt"} <= docs_now


def can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(where)],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run_ingest(docs: Path, index_dir: Path) -> subprocess.CompletedProcess:
    args = [str(docs), "--index-dir", str(index_dir), "--embedding-model", "fake", "-q"]
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_a_real_full_disk_on_a_small_tmpfs(tmp_path: Path):
    mount = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    if not can_mount_tmpfs(mount):
        pytest.skip("cannot mount a tmpfs here (needs root); the injected ENOSPC tests cover it")
    try:
        docs = corpus(tmp_path / "docs")
        settings = IngestSettings(index_dir=mount / "index", embedding_model="fake", progress=False)
        assert run_ingest(docs, settings.index_dir).returncode == 0
        before = served(settings)
        grow(docs, 20)  # ~3,700 chunks: more than 3 MB

        full = run_ingest(docs, settings.index_dir)
        assert full.returncode == 1, full.stderr
        line = full.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, line
        assert line.startswith(f"error: could not write to the index at {mount / 'index'}")
        assert line.endswith("the index still serves what it served before this run")
        assert served(settings) == before
        assert Manifest.exists(settings.index_dir, settings.collection)

        subprocess.run(["mount", "-o", "remount,size=400m", str(mount)], check=True)
        again = run_ingest(docs, settings.index_dir)
        assert again.returncode == 0, again.stderr
        assert "added 20, updated 1" in again.stdout
        assert_consistent(settings)
    finally:
        forget_client(IngestSettings(index_dir=mount / "index"))
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)

"""Kill a real ingest subprocess mid-write: the index must stay usable and the rerun exact."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ingest import IngestSettings, open_index
from ingest.lexical import LexicalIndex
from ingest.manifest import Manifest
from tests.conftest import subprocess_env, write

WORDS = (
    "the council budget water policy court judge law federal state prosecutor drug penalty "
    "report said would could members residents city plan vote debate costs program health"
).split()


def make_corpus(root: Path, files: int = 24, paras: int = 40) -> None:
    rng = random.Random(7)
    for f in range(files):
        body = "\n\n".join(
            " ".join(rng.choice(WORDS) for _ in range(60)).capitalize() + "." for _ in range(paras)
        )
        write(root / f"doc{f:02d}.txt", body)


def run_ingest(docs: Path, index_dir: Path) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "ingest",
        str(docs),
        "--index-dir",
        str(index_dir),
        "--embedding-model",
        "fake",
        "--batch-size",
        "1",
        "-q",
    ]
    return subprocess.Popen(
        cmd, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def assert_consistent(settings: IngestSettings) -> None:
    index = open_index(settings)
    try:
        chunks = list(index.iter_chunks())
        ids = {c.id for c in chunks}
        owned = index.manifest.all_chunk_ids()
        assert ids == owned, f"orphans {len(ids - owned)}, missing {len(owned - ids)}"
        per_slot = Counter((c.metadata["source"], c.metadata["chunk_index"]) for c in chunks)
        assert max(per_slot.values()) == 1, "duplicate chunks"
        assert index.manifest.pending() == {}
        # The BM25 side the finishing run saved holds exactly the stored chunks.
        saved = LexicalIndex.load(index.lexical_dir)
        assert saved is not None and saved.generation == index.generation()
        assert saved.live_ids() == ids
    finally:
        index.close()


def wait_for_manifest(proc: subprocess.Popen, index_dir: Path) -> None:
    deadline = time.monotonic() + 60
    while not Manifest.exists(index_dir) and proc.poll() is None:
        assert time.monotonic() < deadline, "the ingest never opened its index"
        time.sleep(0.01)


def time_to_write(docs: Path, index_dir: Path) -> float:
    """Seconds an uninterrupted ingest of ``docs`` spends after opening its index: kills are
    timed inside that window, however fast this machine is today."""
    proc = run_ingest(docs, index_dir)
    wait_for_manifest(proc, index_dir)
    opened = time.monotonic()
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    return max(time.monotonic() - opened, 0.2)


@pytest.mark.slow
def test_killed_ingest_leaves_a_usable_index_and_the_rerun_finishes(tmp_path):
    docs = tmp_path / "docs"
    make_corpus(docs)
    index_dir = tmp_path / "index"
    settings = IngestSettings(index_dir=index_dir, embedding_model="fake", progress=False)
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    writing = time_to_write(docs, tmp_path / "calibration")
    kills = 0
    for attempt in range(4):
        if attempt == 2:  # change the corpus between kills: updates and deletes interrupted too
            write(docs / "doc03.txt", "A rewritten short document about the water budget.")
            (docs / "doc05.txt").unlink()
        proc = run_ingest(docs, index_dir)
        wait_for_manifest(proc, index_dir)
        time.sleep(rng.uniform(0.05, 0.9) * writing)  # somewhere inside the writing
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
        # The index opens and answers queries right after the kill.
        index = open_index(settings)
        try:
            if index.count():
                assert index.search("water budget", k=3), f"seed {seed}"
                assert index.lexical_search("water budget", 3), f"seed {seed}"
        finally:
            index.close()
    assert kills >= 2, f"the run finished before most kills (seed {seed}); make the corpus bigger"

    final = run_ingest(docs, index_dir)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err
    assert_consistent(settings)
    index = open_index(settings)
    try:
        sources = {c.metadata["source"] for c in index.iter_chunks()}
        assert "doc05.txt" not in sources and len(sources) == 23
        doc03 = [c for c in index.iter_chunks() if c.metadata["source"] == "doc03.txt"]
        assert [c.text for c in doc03] == ["A rewritten short document about the water budget."]
    finally:
        index.close()

    again = run_ingest(docs, index_dir)
    out, _ = again.communicate(timeout=60)
    assert "added 0, updated 0, deleted 0, unchanged 23" in out

"""Kill a real ingest subprocess mid-write: the index must stay usable and the rerun exact.

Each run is killed at a named step of the pipeline (SIGKILL from inside, right after that
library call returns), not after a guessed delay: every kill lands mid-write however busy
the machine is."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ingest import IngestSettings, open_index
from ingest.lexical import LexicalIndex
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


# Runs ``python -m ingest ARGS`` with one library call wrapped so that the process SIGKILLs
# itself (no cleanup, no finally blocks: a real crash) right after the Nth call of it returns.
KILLER = """
import os, signal, sys
from importlib import import_module

where, n = sys.argv[1], int(sys.argv[2])
module, _, attr = where.partition(":")
owner_name, name = attr.split(".")
owner = getattr(import_module(module), owner_name)
real = getattr(owner, name)
calls = 0

def dying(*args, **kwargs):
    global calls
    result = real(*args, **kwargs)
    calls += 1
    if calls == n:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(owner, name, dying)
from ingest.__main__ import main

sys.exit(main(sys.argv[3:]))
"""
# Where the runs below die, in order: each is a step the pipeline takes with data half
# written, and each run resumes what the one before it left. The corpus changes after the
# first kill (the chunks it stored of doc03 and doc05 are then owned by no document: only
# the orphan sweep removes them) and before the 5th (an update's replaced chunks). The first
# kill leaves chunks stored, so this process, which reads the index after every kill, never
# opens it empty (Chroma would cache the empty collection's vector segment as missing).
KILL_POINTS = [
    ("ingest.store:DocIndex.upsert", 1),  # a wave's chunks stored, not committed
    ("ingest.manifest:Manifest.commit", 1),  # one wave committed, the next not started
    ("ingest.embeddings:LazyEmbeddings.embed_documents", 100),  # mid-wave, nothing stored yet
    ("ingest.segment:Segment.save", 1),  # all committed, a BM25 segment file written, no list
    ("ingest.store:DocIndex.delete", 1),  # replaced chunks removed, their document not committed
    ("ingest.store:DocIndex.publish_generation", 1),  # all committed, BM25 not updated
]
REWRITTEN = {
    "doc03.txt": "A rewritten short document about the water budget.",
    "doc07.txt": "The council published its plan for the harbour.",
}


def run_ingest(docs: Path, index_dir: Path, kill_after: tuple[str, int] | None = None):
    """``python -m ingest`` (fake embedding, one chunk per model call), optionally dying
    right after the ``kill_after`` = (module:Class.method, n)th call returns."""
    args = [str(docs), "--index-dir", str(index_dir), "--embedding-model", "fake"]
    args += ["--batch-size", "1", "-q"]
    if kill_after is None:
        cmd = [sys.executable, "-m", "ingest", *args]
    else:
        cmd = [sys.executable, "-c", KILLER, kill_after[0], str(kill_after[1]), *args]
    return subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, timeout=120)


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


@pytest.mark.slow
def test_killed_ingest_leaves_a_usable_index_and_the_rerun_finishes(tmp_path):
    docs = tmp_path / "docs"
    make_corpus(docs)
    index_dir = tmp_path / "index"
    settings = IngestSettings(index_dir=index_dir, embedding_model="fake", progress=False)
    for attempt, point in enumerate(KILL_POINTS):
        if attempt == 1:
            write(docs / "doc03.txt", REWRITTEN["doc03.txt"])
            (docs / "doc05.txt").unlink()
        if attempt == 4:
            write(docs / "doc07.txt", REWRITTEN["doc07.txt"])
        run = run_ingest(docs, index_dir, kill_after=point)
        assert run.returncode == -signal.SIGKILL, f"the run never reached {point}: {run.stderr}"
        # The index opens and answers queries right after the kill.
        index = open_index(settings)
        try:
            assert index.count(), point  # every kill leaves chunks stored (the first: orphans)
            assert index.search("water budget", k=3), point
            assert index.lexical_search("water budget", 3), point
        finally:
            index.close()

    final = run_ingest(docs, index_dir)
    assert final.returncode == 0, final.stderr
    assert_consistent(settings)
    index = open_index(settings)
    try:
        sources = {c.metadata["source"] for c in index.iter_chunks()}
        assert "doc05.txt" not in sources and len(sources) == 23
        for source, text in REWRITTEN.items():
            chunks = [c for c in index.iter_chunks() if c.metadata["source"] == source]
            assert [c.text for c in chunks] == [text]
    finally:
        index.close()

    again = run_ingest(docs, index_dir)
    assert "added 0, updated 0, deleted 0, unchanged 23" in again.stdout

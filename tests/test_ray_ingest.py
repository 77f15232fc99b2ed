"""Ingest on a real local Ray cluster (a head node and a second node, 1 CPU each, loopback)
into a real ``chroma run`` server: the same index as a local ingest, by difference too, and
crash safety when a worker or the driver is killed mid-run.

The cluster is started once for the module and stopped by its process groups (each node runs
``ray start --block`` in a session of its own), whatever the tests did."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from ingest import IngestError, IngestSettings, ingest_paths, open_index
from ingest.lexical import LexicalIndex
from tests.conftest import (
    PARA,
    SEED,
    assert_cited,
    corpus,
    free_port,
    pdf_bytes,
    server_settings,
    subprocess_env,
    write,
)

pytestmark = pytest.mark.slow

NODE_START_S = 60.0
SECOND_NODE = "second"  # DOCQA_TEST_NODE in the second node's processes (its workers inherit it)


def _ray() -> str:
    return str(Path(sys.executable).parent / "ray")


def _start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            [_ray(), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1"]
            + ["--object-store-memory", "200000000", "--disable-usage-stats", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group: stopped as one below
        )


def _wait_started(proc: subprocess.Popen, log: Path, deadline: float) -> None:
    while b"will now block" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ray start (pid {proc.pid}) did not start: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def _tagged(tag: str) -> list[int]:
    """This cluster's processes: they all carry ``DOCQA_TEST_RAY=tag`` in their environment
    (the workers, in sessions of their own, too)."""
    needle = f"DOCQA_TEST_RAY={tag}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _stop(procs: list[subprocess.Popen], tag: str) -> None:
    """SIGTERM each node's process group, then SIGKILL whatever of the cluster is left."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for sig in (signal.SIGKILL, None):
        deadline = time.monotonic() + 5
        while (left := _tagged(tag)) and time.monotonic() < deadline:
            for proc in procs:
                proc.poll()  # reap
            time.sleep(0.2)
        if sig is not None:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
    for proc in procs:
        proc.wait(timeout=10)
    assert not _tagged(tag), f"Ray processes left: {_tagged(tag)}"


@pytest.fixture(scope="module")
def ray_cluster():
    """'127.0.0.1:port' of a head node and a second node joined to it."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    env = {**subprocess_env(), "RAY_USAGE_STATS_ENABLED": "0", "DOCQA_TEST_RAY": temp.name}
    procs: list[subprocess.Popen] = []
    try:
        deadline = time.monotonic() + NODE_START_S
        head = _start_node(
            ["--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", str(temp)]
            + ["--ray-client-server-port", str(free_port())],
            temp / "head.log",
            env,
        )
        procs.append(head)
        _wait_started(head, temp / "head.log", deadline)
        second = _start_node(
            ["--address", f"127.0.0.1:{port}"],
            temp / "second.log",
            {**env, "DOCQA_TEST_NODE": SECOND_NODE},
        )
        procs.append(second)
        _wait_started(second, temp / "second.log", deadline)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(procs, temp.name)
        shutil.rmtree(temp, ignore_errors=True)


def snapshot(settings: IngestSettings) -> dict[str, tuple[str, dict, np.ndarray]]:
    """Every stored chunk: id -> (text, metadata, vector); and the BM25 side is in step."""
    index = open_index(settings)
    try:
        got = index.collection.get(include=["documents", "metadatas", "embeddings"])
        chunks = {
            i: (d, dict(m), np.asarray(e))
            for i, d, m, e in zip(
                got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
            )
        }
        assert set(chunks) == index.manifest.all_chunk_ids() and not index.manifest.pending()
        slots = Counter((m["source"], m["chunk_index"]) for _, m, _ in chunks.values())
        assert max(slots.values()) == 1, "duplicate chunks"
        saved = LexicalIndex.load(index.lexical_dir)
        assert saved is not None and saved.live_ids() == set(chunks)
        return chunks
    finally:
        index.close()


def assert_same_index(local: IngestSettings, ray: IngestSettings) -> None:
    want, got = snapshot(local), snapshot(ray)
    assert sorted(got) == sorted(want)
    for i, (text, meta, vector) in want.items():
        assert got[i][0] == text and got[i][1] == meta, i
        np.testing.assert_allclose(got[i][2], vector, atol=1e-5)
    query = "opioid death penalty prosecutors"
    a, b = open_index(local), open_index(ray)
    try:
        assert [h[0] for h in a.lexical_search(query, 8)] == [
            h[0] for h in b.lexical_search(query, 8)
        ]
    finally:
        a.close()
        b.close()


@pytest.mark.model
def test_ray_ingest_is_the_local_index_and_follows_edits(tmp_path, ray_cluster, chroma_server):
    docs = corpus(tmp_path / "docs")
    shutil.copy(SEED, docs / SEED.name)
    write(docs / "fruit.pdf", pdf_bytes(["Apples grow on trees. " * 30, "Bananas ripen. " * 40]))
    write(docs / "empty.txt", "")
    local = IngestSettings(
        index_dir=tmp_path / "local", embedding_model="all-MiniLM-L6-v2", progress=False
    )
    ray = server_settings(
        tmp_path / "ray", chroma_server, embedding_model="all-MiniLM-L6-v2"
    ).replace(ray_address=ray_cluster)

    for step in ("first", "edited"):
        if step == "edited":
            write(docs / "a.txt", (docs / "a.txt").read_text() + "\n\nThe zeppelin returned.")
            (docs / "c.html").unlink()
        want = ingest_paths([docs], local)
        got = ingest_paths([docs], ray)
        assert got.summary() == want.summary() and got.exit_code == want.exit_code == 3
        assert [str(e) for e in got.plan.failed] == [str(e) for e in want.plan.failed]
        assert_same_index(local, ray)
    assert "updated 1, deleted 1" in got.summary() and got.chunks_embedded < got.chunks_written

    from chatbot.chain import Chatbot
    from chatbot.config import ChatSettings

    bot = Chatbot(ChatSettings(index=ray.replace(index_dir=tmp_path / "reader")))
    try:
        assert_cited(bot.answer("Who announced a plan to execute opioid dealers?"), "Donald Trump")
    finally:
        bot.index.close()


class DiesOnSecondNode(DeterministicFakeEmbedding):
    """The fake embedding, whose process SIGKILLs itself in its first call on the second
    node (once: ``marker`` records it), mid-run: a worker dying with its batch."""

    marker: str = ""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if os.environ.get("DOCQA_TEST_NODE") == SECOND_NODE and not Path(self.marker).exists():
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if os.environ.get("DOCQA_TEST_NODE") != SECOND_NODE:
            # The head's actor holds its batch until the second node's actor has taken one
            # (and died with it), however slowly that actor starts on a loaded machine.
            deadline = time.monotonic() + 30
            while not Path(self.marker).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().embed_documents(texts)


def many_docs(root: Path, n: int = 12) -> Path:
    for f in range(n):
        write(root / f"doc{f:02d}.txt", f"Report {f}.\n\n" + PARA * (6 + f))
    return root


def test_worker_killed_mid_run_leaves_no_duplicates_or_orphans(
    tmp_path, ray_cluster, chroma_server
):
    docs = many_docs(tmp_path / "docs")
    settings = server_settings(tmp_path / "ray", chroma_server, ray_address=ray_cluster)
    marker = tmp_path / "killed"
    dying = DiesOnSecondNode(size=384, marker=str(marker))
    import ray

    ray.init(address=ray_cluster, log_to_driver=False)  # ingest_paths uses this connection
    try:
        deadline = time.monotonic() + 30  # the last job's actors gone: a CPU free on each node
        while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        try:  # Ray restarts the actor and retries its batch, or the run fails in one line
            first = ingest_paths([docs], settings.replace(batch_size=4), embeddings=dying)
            assert first.exit_code == 0
        except IngestError as exc:
            assert "\n" not in str(exc) and "run the same command again" in str(exc)
    finally:
        ray.shutdown()
    assert marker.exists(), "no worker of the second node was killed"
    again = ingest_paths([docs], settings)
    assert again.exit_code == 0 and again.chunks_total == len(snapshot(settings))
    local = IngestSettings(index_dir=tmp_path / "local", embedding_model="fake", progress=False)
    ingest_paths([docs], local)
    assert_same_index(local, settings)


# Runs ``python -m ingest ARGS`` and SIGKILLs itself right after the first upsert returns:
# the driver dies with a wave stored and not committed.
KILL_AFTER_FIRST_UPSERT = """
import os, signal, sys
from ingest.store import DocIndex
real = DocIndex.upsert
def dying(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
DocIndex.upsert = dying
from ingest.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_driver_killed_mid_run_the_next_run_finishes(tmp_path, ray_cluster, chroma_server):
    docs = many_docs(tmp_path / "docs", n=8)
    settings = server_settings(tmp_path / "ray", chroma_server)
    args = [str(docs), "--index-dir", str(settings.index_dir), "--embedding-model", "fake"]
    args += ["--chroma-host", settings.chroma_host, "--chroma-port", str(settings.chroma_port)]
    args += ["--collection", settings.collection, "--ray", ray_cluster, "--batch-size", "4", "-q"]
    env = subprocess_env()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *cmd, *args], env=env, capture_output=True, text=True, timeout=120
        )

    killed = run("-c", KILL_AFTER_FIRST_UPSERT)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    index = open_index(settings)
    try:
        assert index.count() and index.manifest.pending()  # stored, journalled, not committed
    finally:
        index.close()
    finished = run("-m", "ingest")
    assert finished.returncode == 0, finished.stderr
    assert "added 8" in finished.stdout
    local = IngestSettings(index_dir=tmp_path / "local", embedding_model="fake", progress=False)
    ingest_paths([docs], local)
    assert_same_index(local, settings)
    assert "added 0, updated 0, deleted 0, unchanged 8" in run("-m", "ingest").stdout

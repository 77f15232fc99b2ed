"""Ray ingest benchmark: the local ingest vs the same ingest on a local Ray cluster of 1 and
2 worker nodes (1 CPU each), in one run, on the same synthetic corpus; then per-chunk costs
of shipping the work to the cluster and of each write path.

Usage::

    python bench/ray_ingest_bench.py                 # >= 1200 chunks, the default model
    python bench/ray_ingest_bench.py --chunks 600 --model onnx-int8:all-MiniLM-L6-v2

Prints, for a fresh embedded index each time:

* chunks/s of ``ingest_paths`` locally, and through Ray with 1 and 2 nodes (each Ray run
  includes connecting, starting the actors and loading one model per actor), and each one's
  ratio to local (target: 1 node >= 0.8; on 2 cores no speed-up is expected),
* the cost of the Ray machinery alone: the same three runs with the 'fake' model, whose
  difference per chunk is what shipping bytes out and chunks back costs,
* write paths, per chunk: the driver's upserts into an embedded Chroma and into a
  ``chroma run`` server, and two Ray tasks upserting the same rows into that server directly
  (what workers writing themselves would cost).

It is a benchmark, not a test; every process it starts is stopped by its process id.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ingest.config import IngestSettings, set_offline_env  # noqa: E402

BIN = Path(sys.executable).parent
TARGET = 0.8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ready: Any, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} (pid {proc.pid}) did not start")
        time.sleep(0.2)


def stop_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=3)
            return


@contextlib.contextmanager
def ray_cluster(nodes: int, temp: Path) -> Iterator[str]:
    """A head node and ``nodes - 1`` more, 1 CPU each, on 127.0.0.1: its address."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1"]
    common += ["--object-store-memory", "200000000", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    session = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    try:
        for n in range(nodes):
            role = ["--head", "--port", str(port), "--include-dashboard=false"]
            role += ["--temp-dir", str(session), "--ray-client-server-port", str(free_port())]
            log = temp / f"ray-node{n}.log"
            with log.open("wb") as out:
                args = role if n == 0 else ["--address", f"127.0.0.1:{port}"]
                proc = subprocess.Popen(
                    [str(BIN / "ray"), "start", *common, *args],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            procs.append(proc)
            wait_for(f"ray node {n}", lambda log=log: b"will now block" in log.read_bytes(), proc)
        yield f"127.0.0.1:{port}"
    finally:
        for proc in reversed(procs):
            stop_group(proc)
        time.sleep(2)  # the workers leave once their raylet and GCS are gone
        shutil.rmtree(session, ignore_errors=True)


@contextlib.contextmanager
def chroma_server(temp: Path) -> Iterator[tuple[str, int]]:
    import httpx

    port = free_port()
    with (temp / "chroma.log").open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "chroma"), "run", "--path", str(temp / "chroma"), "--port", str(port)]
            + ["--host", "127.0.0.1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success
        except httpx.HTTPError:
            return False

    try:
        wait_for("chroma run", up, proc)
        yield "127.0.0.1", port
    finally:
        stop_group(proc)


class UpsertTimer:
    """Seconds and rows of every ``DocIndex.upsert`` (the driver's writes) while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.rows = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[UpsertTimer]:
        from ingest.store import DocIndex

        real = DocIndex.upsert

        def timed(index: Any, ids: list[str], *args: Any) -> None:
            started = time.perf_counter()
            real(index, ids, *args)
            self.seconds += time.perf_counter() - started
            self.rows += len(ids)

        DocIndex.upsert = timed  # type: ignore[method-assign]
        try:
            yield self
        finally:
            DocIndex.upsert = real  # type: ignore[method-assign]

    def ms_per_chunk(self) -> float:
        return 1000 * self.seconds / max(1, self.rows)


def ingest_run(docs: Path, settings: IngestSettings) -> tuple[float, int, UpsertTimer]:
    from ingest import ingest_paths

    timer = UpsertTimer()
    with timer.active():
        report = ingest_paths([docs], settings)
    assert report.exit_code == 0, report.summary()
    return report.chunks_total / report.seconds, report.chunks_total, timer


def direct_writes(address: str, server: tuple[str, int], rows: int, tasks: int = 2) -> float:
    """ms per chunk for ``tasks`` Ray tasks upserting ``rows`` chunks (384-d vectors, ~600
    characters of text) into the server themselves, in parallel."""
    import ray

    @ray.remote(num_cpus=1)
    def write(host: str, port: int, part: int, n: int) -> None:
        import random

        import chromadb
        from chromadb.config import Settings

        client = chromadb.HttpClient(
            host=host, port=port, settings=Settings(anonymized_telemetry=False)
        )
        col = client.get_or_create_collection(
            "direct", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        rng = random.Random(part)
        for start in range(0, n, 64):
            ids = [f"{part}-{i}" for i in range(start, min(n, start + 64))]
            col.upsert(
                ids=ids,
                embeddings=[[rng.random() for _ in range(384)] for _ in ids],
                documents=["word " * 120 for _ in ids],
                metadatas=[{"source": "x.txt", "chunk_index": i, "start": 0} for i in ids],
            )

    ray.init(address=address, log_to_driver=False)
    try:
        ray.get(write.remote(*server, -1, 64))  # the worker and its imports, warm
        started = time.perf_counter()
        ray.get([write.remote(*server, p, rows // tasks) for p in range(tasks)])
        return 1000 * (time.perf_counter() - started) / rows
    finally:
        ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=1200, help="corpus size, at least")
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model spec")
    args = parser.parse_args(argv)
    set_offline_env()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ingest_bench import build_synthetic_corpus

    from ingest.embeddings import make_embeddings

    temp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    try:
        base = IngestSettings(index_dir=temp / "x", embedding_model=args.model, progress=False)
        docs = temp / "docs"
        files = build_synthetic_corpus(docs, args.chunks, base)
        make_embeddings(args.model, 32, base.onnx_cache_dir).embed_documents(["warm up"])
        rows: dict[str, dict[str, float]] = {}
        for model in (args.model, "fake"):
            settings = base.replace(embedding_model=model)
            # A new folder each run: Chroma caches an embedded store per path in-process.
            local_dir = temp / f"local-{model}"
            rate, chunks, timer = ingest_run(docs, settings.replace(index_dir=local_dir))
            rows[f"local {model}"] = {"rate": rate, "write_ms": timer.ms_per_chunk()}
            for nodes in (1, 2):
                with ray_cluster(nodes, temp) as address:
                    ray_dir = temp / f"ray{nodes}-{model}"
                    ray_settings = settings.replace(index_dir=ray_dir, ray_address=address)
                    rate, _, timer = ingest_run(docs, ray_settings)
                    rows[f"ray {nodes} node(s) {model}"] = {
                        "rate": rate,
                        "write_ms": timer.ms_per_chunk(),
                    }
                    if nodes == 2 and model == "fake":
                        with chroma_server(temp) as server:
                            host, port = server
                            on_server = ray_settings.replace(
                                index_dir=temp / "server", chroma_host=host, chroma_port=port
                            )
                            _, _, timer = ingest_run(docs, on_server)
                            server_ms = timer.ms_per_chunk()
                            direct_ms = direct_writes(address, server, chunks)
        print(f"\n{files} files, {chunks} chunks, model {args.model}, {os.cpu_count()} CPUs\n")
        print(f"{'run':34} {'chunks/s':>9} {'vs local':>9} {'driver upsert ms/chunk':>23}")
        for model in (args.model, "fake"):
            local = rows[f"local {model}"]["rate"]
            for name, row in rows.items():
                if name.endswith(model):
                    print(
                        f"{name:34} {row['rate']:9.1f} {row['rate'] / local:9.2f} "
                        f"{row['write_ms']:23.2f}"
                    )
        one = rows[f"ray 1 node(s) {args.model}"]["rate"] / rows[f"local {args.model}"]["rate"]
        print(f"\nRay with 1 node / local: {one:.2f} (target >= {TARGET}: {one >= TARGET})")
        fake_local, fake_ray = rows["local fake"]["rate"], rows["ray 2 node(s) fake"]["rate"]
        shipping = 1000 * (1 / fake_ray - 1 / fake_local)
        print(
            f"shipping + Ray machinery (fake model, 2 nodes, actor start included): "
            f"{shipping:.2f} ms/chunk"
        )
        print(
            f"write path per chunk: driver -> embedded {rows['ray 2 node(s) fake']['write_ms']:.2f}"
            f" ms, driver -> chroma server {server_ms:.2f} ms, "
            f"2 Ray tasks -> chroma server directly {direct_ms:.2f} ms"
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

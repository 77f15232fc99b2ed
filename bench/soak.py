"""Soak: the chat app under load for M minutes while its documents change.

The app runs as ``python -m chatbot`` in its own process, on an index of ``seeds/`` and a
watched documents folder. N clients ask the seed questions without pause: half through the
page's ``/chat`` endpoint (``gradio_client``), half through ``/v1/chat/completions`` (half of
those streaming). Every 30 s a document is added to or edited in the watched folder (the app
reingests it), every 10 s another is touched or removed. Printed at the end:

- errors (target 0): a failed request, an uncited answer;
- answers that differ from the quiet-state answer to the same question (target 0; a decline
  that should be an answer counts): the quiet state is asked before the load and after it;
- latency p50/p95 per route;
- the app's RSS and open file descriptors every 30 s, and their growth after the warm-up
  (target <= 10 %).

    python bench/soak.py [--minutes 10] [--clients 20]

A benchmark, not a test: it prints figures and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "Who told federal prosecutors to seek the death penalty in drug cases?",
    "Why has use of the death penalty been declining?",
    "Which groups reacted against the call for more executions?",
    "What did Sessions say about business as usual?",
    "What is the capital of Mongolia?",
    "How many executions were there last year?",
    "What does the memo ask prosecutors to do?",
]
FILLER = (
    "The Zorblat festival is held every year in June in the Breton town of Quimper. "
    "It was founded in 1987 by the baker Annick Le Goff, and draws visitors from far away. "
)
WARM_UP_S = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def outcome(declined: bool, text: str) -> tuple[bool, str]:
    return declined, "" if declined else text


class Clients:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(timeout=120)

    def page(self, api, question: str) -> tuple[bool, str, bool]:
        _, _, _, answer = api.predict(question, api_name="/chat")
        cited = bool(answer["citations"]) or answer["declined"]
        return answer["declined"], answer["text"], cited

    def completion(self, question: str, stream: bool) -> tuple[bool, str, bool]:
        body = {"model": "docs", "messages": [{"role": "user", "content": question}]}
        if not stream:
            reply = self.http.post(f"{self.url}v1/chat/completions", json=body)
            reply.raise_for_status()
            docqa = reply.json()["docqa"]
        else:
            docqa = None
            with self.http.stream(
                "POST", f"{self.url}v1/chat/completions", json={**body, "stream": True}
            ) as reply:
                reply.raise_for_status()
                for line in reply.iter_lines():
                    if line.startswith("data: {") and '"docqa"' in line:
                        docqa = json.loads(line[6:])["docqa"]
            if docqa is None:
                raise RuntimeError("the stream ended without its docqa field")
        cited = bool(docqa["citations"]) or docqa["declined"]
        return docqa["declined"], docqa["text"], cited


def quiet(clients: Clients, api) -> dict[str, dict[str, tuple[bool, str]]]:
    return {
        "page": {q: outcome(*clients.page(api, q)[:2]) for q in QUESTIONS},
        "api": {q: outcome(*clients.completion(q, False)[:2]) for q in QUESTIONS},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=20)
    args = ap.parse_args(argv)
    from gradio_client import Client

    base = Path(tempfile.mkdtemp(prefix="docqa-soak-"))
    docs = base / "documents"
    docs.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DOCQA_DOCS_DIR": str(docs)}
    index = base / "index"
    subprocess.run(
        [sys.executable, "-m", "ingest", str(ROOT / "seeds"), "--index-dir", str(index)],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    port = free_port()
    log = (base / "app.log").open("wb")
    app = subprocess.Popen(
        [sys.executable, "-m", "chatbot", "--index-dir", str(index), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                if app.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the app did not start: see {base / 'app.log'}") from None
                time.sleep(0.5)
        clients = Clients(url)
        before = quiet(clients, Client(url, verbose=False))
        print(f"app pid {app.pid} on {url}; quiet-state answers recorded", flush=True)
        stop = threading.Event()
        lock = threading.Lock()
        results: list[tuple[str, str, float, tuple[bool, str]]] = []
        errors: list[str] = []

        def client(c: int) -> None:
            route = "page" if c % 2 == 0 else "api"
            stream = c % 4 == 1
            api = Client(url, verbose=False) if route == "page" else None
            rng = random.Random(c)
            while not stop.is_set():
                q = rng.choice(QUESTIONS)
                t = time.perf_counter()
                try:
                    declined, text, cited = (
                        clients.page(api, q) if api else clients.completion(q, stream)
                    )
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    with lock:
                        errors.append(f"{route} {q!r}: {type(exc).__name__}: {exc}"[:300])
                    continue
                with lock:
                    results.append((route, q, time.perf_counter() - t, outcome(declined, text)))
                    if not cited:
                        errors.append(f"{route} {q!r}: uncited answer {text[:100]!r}")

        def churn() -> None:
            n = 0
            while not stop.wait(10):
                n += 1
                if n % 3 == 0:  # every 30 s: a new or edited document to reingest
                    (docs / f"festival{n % 4}.txt").write_text(
                        f"Edition {n}. " + FILLER * 8, encoding="utf-8"
                    )
                else:  # every 10 s otherwise: touch one, or remove one
                    files = sorted(docs.glob("*.txt"))
                    if files and n % 2:
                        files[0].unlink()
                    elif files:
                        os.utime(files[-1])

        samples: list[tuple[float, float, int]] = []
        threads = [
            threading.Thread(target=client, args=(c,), daemon=True) for c in range(args.clients)
        ]
        threads.append(threading.Thread(target=churn, daemon=True))
        started = time.monotonic()
        for t in threads:
            t.start()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            now, rss, fds = time.monotonic() - started, rss_mb(app.pid), open_fds(app.pid)
            samples.append((now, rss, fds))
            print(
                f"  t={now:5.0f} s  RSS {rss:6.0f} MB  fds {fds:4d}"
                f"  answers {len(results):6d}  errors {len(errors)}",
                flush=True,
            )
            time.sleep(min(30, max(0, end - time.monotonic())))
        stop.set()
        for t in threads:
            t.join(180)
        for f in docs.glob("*.txt"):  # the quiet state after: the folder as the load left it
            f.unlink()
        time.sleep(8)  # the watcher's reingest of the removals
        after = quiet(clients, Client(url, verbose=False))
        differ = [
            (route, q, o)
            for route, q, _, o in results
            if o not in (before[route][q], after[route][q])
        ]
        total = time.monotonic() - started
        print(f"\n== soak: {args.clients} clients for {total / 60:.1f} min, {len(results)} answers")
        print(f"errors: {len(errors)}" + (f"; first: {errors[:3]}" if errors else ""))
        print(
            f"answers differing from the quiet state: {len(differ)}"
            + (f"; first: {differ[:2]}" if differ else "")
        )
        for route in ("page", "api"):
            lat = [s for r, _, s, _ in results if r == route]
            if len(lat) > 1:
                cuts = statistics.quantiles(lat, n=100)
                print(f"{route}: {len(lat)} answers, p50 {cuts[49]:.2f} s, p95 {cuts[94]:.2f} s")
        warm = [s for s in samples if s[0] >= WARM_UP_S] or samples
        first, last = warm[0], warm[-1]
        print(
            f"RSS after warm-up {first[1]:.0f} MB -> {last[1]:.0f} MB "
            f"({(last[1] / first[1] - 1) * 100:+.1f} %); peak {max(s[1] for s in samples):.0f} MB"
        )
        growth = (last[2] / first[2] - 1) * 100
        print(f"open fds after warm-up {first[2]} -> {last[2]} ({growth:+.1f} %)")
    finally:
        app.terminate()
        try:
            app.wait(20)
        except subprocess.TimeoutExpired:
            app.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The background writer that overlaps Chroma's writes with embedding: order, a bounded
queue, and a failed write that stops the wave before it commits."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from ingest import ingest_paths, open_index
from ingest.store import DocIndex
from ingest.writer import BackgroundWriter
from tests.conftest import corpus


def test_calls_run_in_order_on_another_thread():
    done: list[tuple[int, str]] = []
    with BackgroundWriter(depth=2) as writer:
        for n in range(20):
            writer.submit(lambda n: done.append((n, threading.current_thread().name)), n)
    assert [n for n, _ in done] == list(range(20))
    assert {name for _, name in done} == {"ingest-writer"}


def test_the_queue_holds_at_most_depth_calls():
    gate = threading.Event()
    writer = BackgroundWriter(depth=2)
    writer.submit(gate.wait)  # running
    writer.submit(lambda: None)
    writer.submit(lambda: None)  # two waiting: the queue is full
    blocked = threading.Thread(target=writer.submit, args=(lambda: None,))
    blocked.start()
    deadline = time.monotonic() + 10
    while not waits_in_queue_put(blocked):  # really blocked, not merely slow to start
        assert blocked.is_alive() and time.monotonic() < deadline, "the fourth call got in"
        time.sleep(0.01)
    gate.set()
    blocked.join(5)
    assert not blocked.is_alive()  # the running call finished: the queue took it
    writer.close()


def waits_in_queue_put(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside ``queue.Queue.put`` (waiting for room), from its stack."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "put" and code.co_filename.endswith("queue.py"):
            return True
        frame = frame.f_back
    return False


def test_an_error_is_raised_in_the_caller_and_later_calls_are_skipped():
    ran: list[int] = []

    def fail() -> None:
        raise OSError("disk full")

    writer = BackgroundWriter(depth=1)
    writer.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        for n in range(50):
            writer.submit(ran.append, n)
        writer.close()
    assert len(ran) <= 1  # at most one queued before the error was seen


def test_a_failed_upsert_stops_the_run_before_commit_and_the_rerun_finishes(
    tmp_path, fake_settings, monkeypatch
):
    docs = corpus(tmp_path / "docs")
    real = DocIndex.upsert
    calls = 0

    def flaky(self, *args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("chroma write failed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DocIndex, "upsert", flaky)
    with pytest.raises(OSError, match="chroma write failed"):
        ingest_paths([docs], fake_settings.replace(batch_size=2))
    index = open_index(fake_settings)
    try:
        assert index.manifest.documents() == {} and index.manifest.pending()
    finally:
        index.close()
    monkeypatch.setattr(DocIndex, "upsert", real)
    report = ingest_paths([docs], fake_settings.replace(batch_size=2))
    assert len(report.plan.add) == 3 and report.orphans_removed == 0
    index = open_index(fake_settings)
    try:
        assert index.all_ids() == index.manifest.all_chunk_ids() and not index.manifest.pending()
    finally:
        index.close()

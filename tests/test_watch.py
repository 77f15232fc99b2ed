"""Watch mode with real files made here: create, edit, rename and delete under a watched
folder each reach the index (and the running app's answers) within a bounded time; a file
written in pieces with pauses is never ingested half; the write lock is respected; the CLI
reports each batch and stops cleanly on Ctrl-C. Fake embedding; every wait is a deadline
with polling."""

from __future__ import annotations

import logging
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import pytest

from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp
from chatbot.web.config import WebSettings
from chatbot.web.service import ChatService
from chatbot.web.ui import plain_text
from chatbot.web.watching import DocumentsWatch, _when
from ingest import IngestReport, IngestSettings, ingest_paths
from ingest.lock import write_lock
from ingest.plan import Plan
from ingest.watch import FolderWatcher, WatchTiming, watch_paths
from tests.conftest import ROOT, stored, subprocess_env, write

FAST = WatchTiming(debounce_s=0.2, settle_s=0.2, retry_s=0.2)
DEADLINE_S = 20.0  # generous for 2 busy cores; each change lands in about a second
SEEDS = ROOT / "seeds"


def wait_for(check: Callable[[], object], what: str, timeout: float = DEADLINE_S) -> float:
    """Poll ``check`` until it is truthy; returns the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def texts_by_source(settings: IngestSettings) -> dict[str, str]:
    chunks: dict[str, list] = {}
    for c in stored(settings):
        chunks.setdefault(c.metadata["source"], []).append(c)
    return {
        s: " ".join(c.text for c in sorted(cs, key=lambda c: c.metadata["chunk_index"]))
        for s, cs in chunks.items()
    }


class Watching:
    """``watch_paths`` on ``docs`` in a background thread, recording every plan."""

    def __init__(self, docs: Path, settings: IngestSettings) -> None:
        self.plans: list[Plan] = []
        self.reports: list[IngestReport] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(docs, settings), daemon=True)

    def _run(self, docs: Path, settings: IngestSettings) -> None:
        try:
            watch_paths(
                [docs],
                settings,
                self.stop,
                on_plan=self.plans.append,
                on_report=self.reports.append,
                timing=FAST,
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def __enter__(self) -> Watching:
        self.thread.start()
        wait_for(lambda: self.reports or self.error, "the first run")
        assert self.error is None, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive(), "the watcher did not stop"
        assert self.error is None, self.error


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    # Not empty at the start: the test process then never opens an empty collection.
    return write(tmp_path / "docs" / "keep.txt", "A document that stays put.").parent


def test_create_edit_rename_delete_each_reach_the_index(docs: Path, fake_settings):
    with Watching(docs, fake_settings) as watching:
        assert texts_by_source(fake_settings).keys() == {"keep.txt"}
        write(docs / "sub" / "a.md", "# Alpha\n\nThe alpha plan was approved in May.")
        took = wait_for(lambda: "sub/a.md" in texts_by_source(fake_settings), "the new file")
        write(docs / "sub" / "a.md", "# Alpha\n\nThe alpha plan was rejected in June.")
        took = max(
            took,
            wait_for(
                lambda: "rejected" in texts_by_source(fake_settings).get("sub/a.md", ""),
                "the edit",
            ),
        )
        (docs / "sub" / "a.md").rename(docs / "b.md")
        took = max(
            took,
            wait_for(
                lambda: texts_by_source(fake_settings).keys() == {"keep.txt", "b.md"},
                "the rename",
            ),
        )
        assert "rejected in June" in texts_by_source(fake_settings)["b.md"]
        (docs / "b.md").unlink()
        (docs / ".hidden.txt").write_text("never indexed")  # ignored: no batch for it
        took = max(
            took,
            wait_for(lambda: texts_by_source(fake_settings).keys() == {"keep.txt"}, "the delete"),
        )
        print(f"\nwatch: slowest change reached the index in {took:.2f} s")
    changed = [p for p in watching.plans[1:] if p.add or p.update or p.delete]
    assert len(changed) >= 4 and all(not p.failed for p in watching.plans)
    assert texts_by_source(fake_settings).keys() == {"keep.txt"}  # stopped: nothing pending


@pytest.mark.slow
def test_a_file_written_in_pieces_is_never_ingested_half(docs: Path, fake_settings):
    """The writer keeps the file open and pauses longer than the debounce and settle windows
    between pieces (a size-only rule would ingest each piece): only the whole file is."""
    piece = "Budget water court policy and the harbour plan were debated at length. " * 1500
    pieces = [f"PART{i} {piece}\n" for i in range(4)] + ["THE END.\n"]
    pause = FAST.debounce_s + FAST.settle_s + 0.4
    with Watching(docs, fake_settings) as watching:
        with (docs / "big.txt").open("w", encoding="utf-8") as fh:
            for part in pieces:
                fh.write(part)
                fh.flush()
                time.sleep(pause)  # a slow writer, not a wait for the watcher
        assert (docs / "big.txt").stat().st_size > 400_000
        wait_for(lambda: "big.txt" in texts_by_source(fake_settings), "the whole file")
        seen = [w.doc.text for p in watching.plans for w in p.work if w.found.source == "big.txt"]
        assert len(seen) == 1 and seen[0].endswith("THE END.")
        assert texts_by_source(fake_settings)["big.txt"].endswith("THE END.")


def test_the_watcher_waits_while_another_ingest_holds_the_lock(docs: Path, fake_settings, caplog):
    with Watching(docs, fake_settings), caplog.at_level(logging.INFO, logger="ingest.watch"):
        with write_lock(fake_settings.index_dir):  # as a manual `python -m ingest` does
            write(docs / "c.txt", "Charlie arrived while another ingest was writing.")
            wait_for(lambda: "another ingest is writing" in caplog.text, "the watcher waiting")
            assert "c.txt" not in texts_by_source(fake_settings)
        wait_for(lambda: "c.txt" in texts_by_source(fake_settings), "the batch after the lock")


def test_a_moved_in_file_and_a_missing_folder(tmp_path: Path, docs: Path):
    """A file moved in arrives whole (no writer's close follows, a reader's open and close
    may): it is taken after the settle time, not after the writer timeout. A folder that
    does not exist cannot be watched."""
    batches: list[list[Path]] = []
    timing = WatchTiming(debounce_s=0.1, settle_s=0.1, writer_timeout_s=60)
    watcher = FolderWatcher([docs], lambda b: batches.append(b.paths) or True, timing)
    with watcher:
        stop = threading.Event()
        runner = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        runner.start()
        outside = write(tmp_path / "elsewhere" / "moved.txt", "Moved in whole.")
        outside.rename(docs / "moved.txt")
        assert (docs / "moved.txt").read_text() == "Moved in whole."  # a reader's open/close
        (docs / "notes.xyz").write_text("unsupported: no batch")
        took = wait_for(lambda: batches, "the moved-in file", timeout=10)
        stop.set()
        runner.join(10)
    assert batches == [[docs.resolve() / "moved.txt"]] and took < 10
    with pytest.raises(Exception, match="cannot watch .*nope: no such file or folder"):
        FolderWatcher([tmp_path / "nope"], lambda b: True)


# ---- the app


def test_the_app_answers_from_a_file_copied_into_its_documents_folder(
    tmp_path: Path, fake_settings: IngestSettings
):
    assert ingest_paths([SEEDS], fake_settings).exit_code == 0
    settings = WebSettings(
        chat=ChatSettings(index=fake_settings, min_dense=-1.0),
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
    )
    service = ChatService(settings, seeds_dir=SEEDS)
    app = ChatApp(service, DocumentsWatch(service, FAST).start())
    try:
        wait_for(lambda: service.status().completed >= 1, "the catch-up sync at start")
        assert "Watching documents/" in app.sync_line()
        line, rows, _, _, seen = app.sync_view(None)
        assert "Last synced" in line and len(rows) == 1
        assert app.sync_view(seen)[1] == gr.skip()  # no reingest since: the table stays

        question = "When is the Zorblat festival held?"

        def answer() -> dict:
            *_, (_, _, _, got, _) = app.chat(question, [], 5, "")
            return got

        def cites(name: str) -> bool:
            """Answered from ``name`` (a decline lists its closest passages as citations too)."""
            got = answer()
            return not got["declined"] and any(c["source"] == name for c in got["citations"])

        def mentions(name: str) -> bool:
            return any(c["source"] == name for c in answer()["citations"])

        source = write(tmp_path / "incoming" / "zorblat.txt", ZORBLAT)
        copied = time.monotonic()
        (service.docs.folder / "zorblat.txt").write_bytes(source.read_bytes())
        wait_for(lambda: cites("zorblat.txt"), "an answer from the copied file")
        latency = time.monotonic() - copied
        print(f"\nwatch: copied file answerable after {latency:.2f} s")
        assert "June" in answer()["text"]
        synced = "Last change ({}): added zorblat.txt."
        wait_for(lambda: not service.status().running, "the sync's end")  # it refreshed first
        line, rows, dropdown, header, _ = app.sync_view(seen)
        assert synced.format(_when(service.status().changed_at)) in plain_text(line)
        assert sorted(r[2] for r in rows) == ["000_762628c52ecf43e6.txt", "zorblat.txt"]
        assert dropdown["choices"] == ["zorblat.txt"] and "2 documents" in header

        write(service.docs.folder / "zorblat.txt", ZORBLAT.replace("June", "September"))
        wait_for(lambda: "September" in answer()["text"], "an answer from the edited file")
        (service.docs.folder / "zorblat.txt").unlink()
        wait_for(lambda: not mentions("zorblat.txt"), "the deleted file gone from answers")
        wait_for(lambda: "deleted zorblat.txt" in plain_text(app.sync_line()), "the sync line")
    finally:
        app.close()


def test_the_watch_setting_and_the_page(tmp_path: Path, fake_settings: IngestSettings):
    assert WebSettings().watch_documents is True  # on for `make run`'s documents/
    env = {"DOCQA_WATCH_DOCUMENTS": "0"}
    assert WebSettings.from_env(env).watch_documents is False
    ingest_paths([SEEDS], fake_settings)
    settings = WebSettings(
        chat=ChatSettings(index=fake_settings),
        docs_dir=tmp_path / "documents",
        watch_documents=False,
    )
    app = ChatApp(ChatService(settings, seeds_dir=SEEDS))
    assert "is not watched" in app.sync_line() and "Not synced" in app.sync_line()
    demo = app.build()  # the Documents tab with its sync line and timer
    assert any(getattr(b, "elem_id", None) == "docqa-sync" for b in demo.blocks.values())


ZORBLAT = (
    "The Zorblat Festival\n\nThe Zorblat festival is held every year in June in the Breton "
    "town of Quimper. It was founded in 1987 by the baker Annick Le Goff.\n"
)


# ---- the CLI


def _lines(stream) -> Iterator[str]:
    for line in iter(stream.readline, ""):
        yield line.rstrip("\n")


@pytest.mark.slow
def test_cli_watch_reports_each_batch_and_stops_on_ctrl_c(tmp_path: Path, docs: Path):
    cmd = [sys.executable, "-m", "ingest", str(docs), "--index-dir", str(tmp_path / "idx")]
    cmd += ["--embedding-model", "fake", "--watch"]
    proc = subprocess.Popen(
        cmd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [out.put(x) for x in _lines(proc.stdout)])
    reader.start()
    seen: list[str] = []

    def expect(text: str) -> None:
        deadline = time.monotonic() + 60
        while not any(text in line for line in seen):
            left = deadline - time.monotonic()
            try:
                seen.append(out.get(timeout=max(left, 0.01)))
            except queue.Empty:
                proc.kill()
                raise AssertionError(f"no {text!r} in the output: {seen}") from None

    try:
        expect("watching ")
        assert "added 1, updated 0, deleted 0, unchanged 0" in "\n".join(seen)
        write(docs / "new.txt", "A new document about the harbour.")
        expect("added new.txt")
        (docs / "new.txt").rename(docs / "renamed.txt")
        expect("added renamed.txt; deleted new.txt")
        (docs / "renamed.txt").unlink()
        expect("deleted renamed.txt")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        reader.join(10)
        while not out.empty():
            seen.append(out.get())
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen[-2:] == ["stopping (Ctrl-C again to abort at once)", "stopped watching"]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    batch_lines = [line for line in seen if line[:2].isdigit() and " added " in line]
    assert len(batch_lines) == 3  # one summary per batch, timestamped

"""Keep folders in the index: watch them, debounce the changes, wait until each changed file
is written whole, then reingest by difference (``ingest_paths``, the one ingest path).

Events come from watchdog's observer (inotify on Linux). A batch starts once no relevant
event came for ``debounce_s`` and every changed file that still exists is settled: its size
and mtime unchanged for ``settle_s``, and not open for writing (a write seen since the
writer's last close; Linux reports closes). A file held open but unchanged for
``writer_timeout_s`` is taken anyway (a missed close must not stall it forever). Renames are
a delete and an add to the plan. Each batch replans the whole watched paths, so a missed
event is caught by the next batch.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.config import IngestSettings
from ingest.errors import IngestError
from ingest.formats import SUPPORTED_EXTENSIONS
from ingest.lock import WriteLockBusy, ingest_running
from ingest.pipeline import IngestReport, ingest_paths
from ingest.plan import Plan

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

logger = logging.getLogger(__name__)

DEBOUNCE_S = 0.5  # quiet time after the last relevant event before a batch starts
SETTLE_S = 0.5  # a changed file's size and mtime must hold this long
WRITER_TIMEOUT_S = 30.0  # a file still open for writing is taken once unchanged this long
RETRY_S = 1.0  # wait before retrying while another ingest holds the index's write lock
POLL_S = 0.05  # how often the batcher looks at the pending changes


@dataclass(frozen=True)
class WatchTiming:
    """The debounce and stability rules (seconds); see the module's docstring."""

    debounce_s: float = DEBOUNCE_S
    settle_s: float = SETTLE_S
    writer_timeout_s: float = WRITER_TIMEOUT_S
    retry_s: float = RETRY_S

    def __post_init__(self) -> None:
        for name in ("debounce_s", "settle_s", "writer_timeout_s", "retry_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class Batch:
    """Changed paths ready to reingest; ``last_event_at``: wall time of the latest event."""

    paths: list[Path]
    last_event_at: float


@dataclass
class _Change:
    """What the watcher knows of one changed path."""

    stat: tuple[int, int] | None  # (size, mtime_ns) when last looked at; None: gone
    stable_since: float  # monotonic time the stat last changed
    writing: bool = False  # written to since its writer's last close
    created: bool = False  # the last event created it (an open next is its writer's)
    unconfirmed: bool = False  # ``writing`` only from that open: a read-only close clears it


def describe_changes(plan: Plan) -> str:
    """The documents a plan changes, by name: ``added a.txt; deleted b.md``."""
    parts = []
    for verb, names in (
        ("added", [w.found.source for w in plan.add]),
        ("updated", [w.found.source for w in plan.update]),
        ("deleted", [r.source for r in plan.delete]),
        ("failed", [str(e) for e in plan.failed]),
    ):
        if names:
            parts.append(f"{verb} " + ", ".join(names))
    return "; ".join(parts) or "no changes"


class _Target:
    """A watched path: a folder (recursive: its visible, supported files) or one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.is_dir = path.is_dir()

    @property
    def folder(self) -> Path:
        return self.path if self.is_dir else self.path.parent

    def covers(self, path: Path, is_dir: bool) -> bool:
        if not self.is_dir:
            return path == self.path
        if path == self.path:
            return is_dir  # the folder itself went away
        if not path.is_relative_to(self.path):
            return False
        rel = path.relative_to(self.path)
        if any(part.startswith(".") for part in rel.parts):
            return False
        return is_dir or path.suffix.lower() in SUPPORTED_EXTENSIONS


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class FolderWatcher:
    """Collects the changes under ``paths`` and hands ``on_batch`` each settled batch.

    ``on_batch`` returns False to have the batch retried after ``timing.retry_s`` (another
    writer holds the index). Use as a context manager (the observer runs inside it) around
    ``run``, or ``start``/``close`` for a background thread."""

    def __init__(
        self,
        paths: Sequence[Path],
        on_batch: Callable[[Batch], bool],
        timing: WatchTiming | None = None,
        *,
        observer_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.targets = [_Target(Path(p).expanduser().resolve()) for p in paths]
        for target in self.targets:
            if not target.path.exists():
                raise IngestError(f"cannot watch {target.path}: no such file or folder")
        self.on_batch = on_batch
        self.timing = timing or WatchTiming()
        self._observer_factory = observer_factory
        self._observer: Any = None
        self._cond = threading.Condition()
        self._pending: dict[Path, _Change] = {}
        self._taken: dict[Path, _Change] = {}  # the batch being applied
        self._last_event = 0.0  # monotonic
        self._last_event_at = 0.0  # wall clock
        self._not_before = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the observer
    def __enter__(self) -> FolderWatcher:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._record(event)

        self._observer = (self._observer_factory or Observer)()
        handler = Handler()
        scheduled: dict[Path, bool] = {}
        for target in self.targets:  # a folder recursively; a file through its folder
            folder = target.folder
            scheduled[folder] = scheduled.get(folder, False) or target.is_dir
        try:
            for folder, recursive in scheduled.items():
                self._observer.schedule(handler, str(folder), recursive=recursive)
            self._observer.start()
        except OSError as exc:  # e.g. the inotify watch limit (fs.inotify.max_user_watches)
            self._observer = None
            where = ", ".join(str(f) for f in scheduled)
            raise IngestError(f"cannot watch {where}: {exc.strerror or exc}") from None
        logger.debug("watching %s", ", ".join(str(t.path) for t in self.targets))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(10)
            self._observer = None

    def start(self) -> FolderWatcher:
        """Watch in a background thread until ``close``."""
        self.__enter__()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="docqa-watch", daemon=True
        )
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop the background thread (after the batch it is applying) and the observer."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self.__exit__()

    # ---- collecting changes (the observer's thread)
    def _record(self, event: Any) -> None:
        kind = event.event_type  # created modified deleted moved closed opened attrib ...
        if kind == "modified" and event.is_directory:
            return
        paths = [(self._path(event.src_path), kind)]
        if kind == "moved":
            paths = [(paths[0][0], "deleted"), (self._path(event.dest_path), "created")]
        now, wall = time.monotonic(), time.time()
        with self._cond:
            recorded = False
            for path, what in paths:
                if not any(t.covers(path, event.is_directory) for t in self.targets):
                    continue
                change = self._pending.get(path)
                if what in ("opened", "closed_no_write"):  # reads open (and close) files too
                    if change is not None and what == "opened" and change.created:
                        change.writing = change.unconfirmed = True  # its creator, likely
                    elif change is not None and what == "closed_no_write" and change.unconfirmed:
                        change.writing = change.unconfirmed = False  # it was a reader
                    if change is not None:
                        change.created = False
                    continue
                stat = None if what == "deleted" else _stat(path)
                if change is None:
                    change = self._pending[path] = _Change(stat, now)
                elif change.stat != stat:
                    change.stat, change.stable_since = stat, now
                change.created = what == "created"
                if what == "modified":
                    change.writing, change.unconfirmed = True, False
                elif what in ("closed", "deleted", "created"):
                    change.writing = False  # a moved-in file arrives whole: "created"
                recorded = True
            if recorded:
                self._last_event, self._last_event_at = now, wall
                self._cond.notify_all()

    @staticmethod
    def _path(raw: str | bytes) -> Path:
        return Path(os.fsdecode(raw))

    # ---- batching (the caller's or the background thread)
    def pending(self) -> list[Path]:
        with self._cond:
            return sorted(self._pending)

    def _settled(self, path: Path, change: _Change, now: float) -> bool:
        stat = _stat(path)
        if stat != change.stat:
            change.stat, change.stable_since = stat, now
        if stat is None or path.is_dir():
            return True
        held = now - change.stable_since
        if held < self.timing.settle_s:
            return False
        if change.writing:
            if held < self.timing.writer_timeout_s:
                return False
            logger.info("%s is still open for writing but unchanged for %.0f s", path, held)
        return True

    def _take(self) -> Batch | None:
        """The pending changes when they make a batch (debounced, every file settled)."""
        now = time.monotonic()
        if not self._pending or now < self._not_before:
            return None
        if now - self._last_event < self.timing.debounce_s:
            return None
        if not all(self._settled(p, c, now) for p, c in self._pending.items()):
            return None
        batch = Batch(sorted(self._pending), self._last_event_at)
        self._taken, self._pending = self._pending, {}
        return batch

    def _put_back(self) -> None:
        """Requeue the batch just taken (changes recorded since keep their newer state)."""
        with self._cond:
            self._pending = {**self._taken, **self._pending}
            self._not_before = time.monotonic() + self.timing.retry_s

    def run(self, stop: threading.Event) -> None:
        """Hand settled batches to ``on_batch`` until ``stop`` is set (a batch being applied
        is finished first)."""
        while not stop.is_set():
            with self._cond:
                batch = self._take()
                if batch is None:
                    self._cond.wait(POLL_S)
                    continue
            logger.debug("batch of %d changed paths", len(batch.paths))
            if not self.on_batch(batch):
                self._put_back()


def watch_paths(
    paths: Sequence[Path | str],
    settings: IngestSettings,
    stop: threading.Event,
    *,
    on_plan: Callable[[Plan], None] | None = None,
    on_report: Callable[[IngestReport], None] | None = None,
    on_error: Callable[[IngestError], None] | None = None,
    embeddings: Embeddings | None = None,
    timing: WatchTiming | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files or folders), then keep them in the index until ``stop`` is
    set: each settled batch of changes is reingested by difference and reported to
    ``on_report``. Returns the first run's report; raises the first run's IngestError (a
    later batch's goes to ``on_error`` and the watching goes on)."""
    targets = [Path(p) for p in paths]

    def reingest() -> IngestReport:
        report = ingest_paths(targets, settings, embeddings=embeddings, on_plan=on_plan)
        if on_report:
            on_report(report)
        return report

    def on_batch(batch: Batch) -> bool:
        if ingest_running(settings.index_dir):
            logger.info("another ingest is writing to %s: waiting", settings.index_dir)
            return False
        try:
            reingest()
        except WriteLockBusy:
            return False
        except IngestError as exc:
            logger.warning("reingest failed: %s (still watching)", exc)
            if on_error:
                on_error(exc)
        return True

    with FolderWatcher(targets, on_batch, timing) as watcher:  # events from here on count
        first = reingest()
        watcher.run(stop)
    return first


def run_watch(
    paths: Sequence[Path],
    settings: IngestSettings,
    *,
    on_plan: Callable[[Plan], None],
    out: Callable[[str], None],
) -> int:
    """``python -m ingest PATH... --watch``: the first run, then one summary per batch (with
    the documents it changed) until Ctrl-C. Returns the exit code: 0 when stopped cleanly,
    130 when a second Ctrl-C cut a batch short."""
    stop = threading.Event()
    runs = 0

    def on_report(report: IngestReport) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            out(report.summary())
            out(f"watching {', '.join(str(p) for p in paths)} (Ctrl-C to stop)")
            return
        out(f"{time.strftime('%H:%M:%S')} {report.summary()}")
        out(f"  {describe_changes(report.plan)}")

    def on_stop() -> None:
        out("stopping (Ctrl-C again to abort at once)")

    try:
        with stop_on_interrupt(stop, on_stop):
            watch_paths(paths, settings, stop, on_plan=on_plan, on_report=on_report)
    except KeyboardInterrupt:
        out("interrupted: the next run finishes the batch that was being written")
        return 130
    out("stopped watching")
    return 0


@contextmanager
def stop_on_interrupt(stop: threading.Event, on_stop: Callable[[], None]) -> Iterator[None]:
    """For an entry point's main thread: the first Ctrl-C (or SIGTERM) sets ``stop`` and
    calls ``on_stop``; a second Ctrl-C raises KeyboardInterrupt (a batch cut short is
    finished by the next run: the journal). The previous handlers are restored after."""

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not stop.is_set():
            stop.set()
            on_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)

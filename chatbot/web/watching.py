"""The app's watched documents folder: a file copied into it (or edited, renamed, removed)
is reingested within seconds by the service's background reingest, which then refreshes the
chatbots, so answers see it without an upload or a restart. When and what to reingest are
``ingest.watch``'s rules (debounce, size/mtime stable, writer closed)."""

from __future__ import annotations

import logging
import time

from chatbot.web.service import ChatService, ReingestStatus
from chatbot.web.ui import md_escape
from ingest import IngestError
from ingest.watch import Batch, FolderWatcher, WatchTiming

logger = logging.getLogger(__name__)


class DocumentsWatch:
    """Watches ``service.docs.folder`` in a background thread until ``close``."""

    def __init__(self, service: ChatService, timing: WatchTiming | None = None) -> None:
        self.service = service
        service.docs.ensure()
        self.watcher = FolderWatcher([service.docs.folder], self._batch, timing)

    def start(self) -> DocumentsWatch:
        """Watch, and catch up once with what changed while the app was not running."""
        self.watcher.start()
        self.service.request_reingest()
        logger.info("watching %s", self.service.docs.folder)
        return self

    def close(self) -> None:
        self.watcher.close()

    def _batch(self, batch: Batch) -> bool:
        status = self.service.status()
        if status.started_at > batch.last_event_at and not (status.busy and not status.running):
            return True  # an upload's (or a manual) reingest began after these changes
        status = self.service.wait(self.service.request_reingest())
        return not status.busy  # another process was writing: retry shortly


def start_watch(service: ChatService) -> DocumentsWatch | None:
    """Watch the documents folder; None (and a warning) when it cannot be watched."""
    try:
        return DocumentsWatch(service).start()
    except (IngestError, OSError) as exc:
        logger.warning("not watching the documents folder: %s", exc)
        return None


def sync_line(status: ReingestStatus, folder: str, watching: bool) -> str:
    """The Documents tab's line: whether the folder is watched, when it was last synced
    and what changed (Markdown)."""
    name = md_escape(folder, False)
    if watching:
        head = f"Watching {name}: files copied in are answerable within seconds."
    else:
        head = (
            f"{name} is not watched (DOCQA_WATCH_DOCUMENTS is off): press Reingest folders "
            "after copying files in."
        )
    if status.running:
        synced = f"Syncing: {md_escape(status.describe(), False)}."
    elif not status.finished_at:
        synced = "Not synced since the app started."
    elif status.error:
        synced = f"Last sync {_when(status.finished_at)} failed: {md_escape(status.error, False)}"
    else:
        synced = f"Last synced {_when(status.finished_at)}."
    lines = [head, synced]
    if status.changed_at:
        lines.append(
            f"Last change ({_when(status.changed_at)}): {md_escape(status.changes, False)}."
        )
    return "  \n".join(lines)


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))

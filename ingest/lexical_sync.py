"""The BM25 side's lifecycle: keep an index's ``LexicalIndex`` in step with its collection.

The index is kept in memory, reloaded (new segments only) when a writer has saved a newer
generation, brought up to date from the collection by chunk-id difference when it fell
behind, and saved after every change. ``DocIndex`` owns one ``LexicalSide`` and is its
``ChunkSource``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ingest.context import retrieval_text, stored_context
from ingest.lexical import LexicalIndex

if TYPE_CHECKING:
    from ingest.store import StoredChunk

logger = logging.getLogger(__name__)

FETCH_PAGE = 5000  # chunks read from the collection per call when syncing


class ChunkSource(Protocol):
    """What the BM25 side reads from the store it follows."""

    def generation(self) -> int: ...

    def ingest_running(self) -> bool: ...

    def all_ids(self) -> set[str]: ...

    def get(self, ids: list[str]) -> list[StoredChunk]: ...

    def iter_chunks(self) -> Iterator[StoredChunk]: ...

    def count(self) -> int: ...


def stored_lexical_text(chunk: StoredChunk) -> str:
    """What BM25 indexes for a stored chunk (the writer indexed the same text)."""
    return retrieval_text(stored_context(chunk.metadata), chunk.text)


class LexicalSide:
    """The BM25 index of one store, saved in ``folder`` and stamped with its generation."""

    def __init__(self, store: ChunkSource, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self._current: LexicalIndex | None = None

    def current(self) -> LexicalIndex:
        """The BM25 index for the store's current generation: kept in memory, reloaded (new
        segments only) when a writer has saved a newer one, else brought up to date."""
        generation = self.store.generation()
        current = self._current
        if current is None or current.generation != generation:
            loaded = LexicalIndex.load(self.folder, previous=current)
            if loaded is None or loaded.generation != generation:
                base = loaded or current
                if base is not None and self.store.ingest_running():
                    # An ingest here commits wave by wave and saves BM25 when it ends: keep
                    # the last state meanwhile instead of chasing each wave.
                    self._current = base
                    return base
                loaded = self.sync(generation, base=base)
            self._current = loaded
        return self._current

    def sync(self, generation: int | None = None, base: LexicalIndex | None = None) -> LexicalIndex:
        """Bring ``base`` (any earlier state) in step with the collection by chunk-id
        difference: a chunk id names its text, so only the ids need listing and only new
        chunks reading. Without a base, or when most chunks changed, build it whole."""
        generation = self.store.generation() if generation is None else generation
        have = self.store.all_ids()
        live = base.live_ids() if base is not None else set()
        if base is None or len(have - live) > len(have) // 2:
            return self.rebuild(generation)
        new, gone = sorted(have - live), live - have
        logger.info(
            "updating the BM25 index to generation %d: +%d -%d chunks",
            generation,
            len(new),
            len(gone),
        )
        added = (
            (c.id, stored_lexical_text(c))
            for start in range(0, len(new), FETCH_PAGE)
            for c in self.store.get(new[start : start + FETCH_PAGE])
        )
        return self._keep(base.updated(added, gone, generation))

    def update(
        self, added: Iterable[tuple[str, str]], removed: Iterable[str], since: int
    ) -> LexicalIndex:
        """Apply a writer's own changes (chunk id + BM25 text added, ids removed) to the BM25
        index it left at generation ``since``; any other starting point is synced instead."""
        generation = self.store.generation()
        base = self._current if self._current is not None else LexicalIndex.load(self.folder)
        if base is None and since == 0:
            base = LexicalIndex.build((), 0)
        if base is None or base.generation != since:
            return self.sync(generation, base=base)
        updated = base.updated(added, removed, generation)
        stored = self.store.count()
        if len(updated) != stored:
            logger.warning(
                "BM25 index holds %d chunks, the collection %d: resyncing", len(updated), stored
            )
            return self.sync(generation, base=updated)
        return self._keep(updated)

    def rebuild(self, generation: int | None = None) -> LexicalIndex:
        """Build it whole from every stored chunk."""
        generation = self.store.generation() if generation is None else generation
        logger.info("building the BM25 index (generation %d)", generation)
        chunks = ((c.id, stored_lexical_text(c)) for c in self.store.iter_chunks())
        return self._keep(LexicalIndex.build(chunks, generation))

    def _keep(self, lexical: LexicalIndex) -> LexicalIndex:
        try:
            lexical.save(self.folder)
        except OSError as exc:  # a read-only index folder: keep it in memory only
            logger.warning("could not save the BM25 index to %s: %s", self.folder, exc)
        self._current = lexical
        return lexical

"""The lexical (BM25) side of the index, persisted beside the Chroma data.

Segmented, like a Lucene index: a write adds an immutable segment (a term -> postings matrix over
the chunks it brings) and marks the chunks it replaces as deleted. Scores use collection-wide
statistics (live chunk count, average length, document frequencies) computed at query time from
the live postings, so they equal those of one BM25 index built over all live chunks: bm25s'
Lucene variant, k1=1.5, b=0.75, which a test checks against bm25s itself. bm25s still provides
the analyser (English stopwords, Snowball stemmer); its index cannot be used for this because it
bakes the IDF into the stored scores, so any change meant re-indexing everything (10 s at 100k
chunks, for a one-file edit). Here an edit costs the tokenising of the chunks it changes. Small
segments are merged and segments with many deleted rows compacted, so the count stays bounded.

Each state is stamped with the manifest's generation; segment files never change once written
and the list of segments (``segments.json``) is replaced atomically, so a reader sees a whole
state, and re-reads the list if a segment it wanted was merged away meanwhile.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ingest.segment import Segment, tokenize

logger = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
MAX_SEGMENTS = 8  # more than this: merge all but the largest
COMPACT_DEAD_FRACTION = 0.3  # a segment with more deleted rows than this is rewritten
MANIFEST = "segments.json"
FORMAT = 3  # 1 was a single bm25s index; 2 stemmed without ingest.text.IRREGULAR_FORMS


class LexicalIndex:
    """BM25 over chunk texts, addressed by chunk id; immutable once built (an update returns a
    new index sharing the unchanged segments, so searches in flight are never disturbed)."""

    def __init__(self, segments: list[Segment], dead: list[np.ndarray], generation: int) -> None:
        self.segments = segments
        self.dead = dead
        self.generation = generation
        self.n_live = sum(len(s) - int(d.sum()) for s, d in zip(segments, dead, strict=True))
        self._total_len = float(
            sum(s.lengths[~d].sum() for s, d in zip(segments, dead, strict=True))
        )
        self._where: dict[str, tuple[int, int]] | None = None
        self._norm: list[np.ndarray] | None = None
        self._has_dead = [bool(d.any()) for d in dead]
        self._vocabulary: frozenset[str] | None = None

    def __len__(self) -> int:
        return self.n_live

    @classmethod
    def build(cls, chunks: Iterable[tuple[str, str]], generation: int) -> LexicalIndex:
        """From (chunk_id, text) pairs."""
        return cls([], [], generation).updated(chunks, (), generation)

    def _locations(self) -> dict[str, tuple[int, int]]:
        """Live chunk id -> (segment, row)."""
        if self._where is None:
            where: dict[str, tuple[int, int]] = {}
            for s, (seg, dead) in enumerate(zip(self.segments, self.dead, strict=True)):
                for row in np.flatnonzero(~dead).tolist():
                    where[str(seg.ids[row])] = (s, row)
            self._where = where
        return self._where

    def live_ids(self) -> set[str]:
        return set(self._locations())

    def updated(
        self, added: Iterable[tuple[str, str]], removed: Iterable[str], generation: int
    ) -> LexicalIndex:
        """The index with ``removed`` ids deleted and the ``added`` (chunk_id, text) pairs that
        are not already in it added (a chunk id names its text, so present means current)."""
        where = self._locations()
        dead = [d.copy() for d in self.dead]
        removed_now = {i for i in removed if i in where}
        for chunk_id in removed_now:
            s, row = where[chunk_id]
            dead[s][row] = True
        new = {i: t for i, t in added if i not in where or i in removed_now}
        segments = list(self.segments)
        if new:
            segments.append(Segment.from_texts(list(new), list(new.values())))
            dead.append(np.zeros(len(new), dtype=bool))
        segments, dead = _maintain(segments, dead)
        return LexicalIndex(segments, dead, generation)

    def document_frequency(self, term: str) -> int:
        """How many live chunks hold ``term`` (an analysed token: lower-cased, stemmed)."""
        df = 0
        for seg, dead, has_dead in zip(self.segments, self.dead, self._has_dead, strict=True):
            hit = seg.postings(term)
            if hit is not None:
                df += int((~dead[hit[0]]).sum()) if has_dead else len(hit[0])
        return df

    def vocabulary(self) -> frozenset[str]:
        """Every analysed term of the index (of live and dead rows: a superset), computed
        once per index state."""
        if self._vocabulary is None:
            self._vocabulary = frozenset(t for seg in self.segments for t in seg.column)
        return self._vocabulary

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk_id, score) pairs with a positive score, best first."""
        if not self.n_live or k < 1:
            return []
        counts = Counter(tokenize([query])[0])
        n = self.n_live
        norms = self._norms()
        scores: dict[int, np.ndarray] = {}
        for term, times in counts.items():
            found = []
            for s, (seg, dead) in enumerate(zip(self.segments, self.dead, strict=True)):
                hit = seg.postings(term)
                if hit is None:
                    continue
                rows, tfs = hit
                if self._has_dead[s]:
                    alive = ~dead[rows]
                    rows, tfs = rows[alive], tfs[alive]
                if len(rows):
                    found.append((s, rows, tfs))
            df = sum(len(rows) for _, rows, _ in found)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for s, rows, tfs in found:
                tf = tfs.astype(np.float64)
                if s not in scores:
                    scores[s] = np.zeros(len(self.segments[s]), dtype=np.float64)
                scores[s][rows] += (times * idf) * tf / (tf + norms[s][rows])
        return self._top(scores, k)

    def _norms(self) -> list[np.ndarray]:
        """Per segment, each row's BM25 length normalisation k1 * (1 - b + b * len / avg)
        (fixed for this index: an update makes a new one)."""
        if self._norm is None:
            avg_len = self._total_len / self.n_live or 1.0
            self._norm = [
                K1 * (1 - B + B * seg.lengths.astype(np.float64) / avg_len) for seg in self.segments
            ]
        return self._norm

    def _top(self, scores: dict[int, np.ndarray], k: int) -> list[tuple[str, float]]:
        pairs: list[tuple[float, int, int]] = []
        for s, values in scores.items():
            rows = np.flatnonzero(values > 0)
            if len(rows) > k:
                rows = rows[np.argpartition(-values[rows], k - 1)[:k]]
            pairs.extend((float(values[r]), s, int(r)) for r in rows)
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        return [(str(self.segments[s].ids[r]), score) for score, s, r in pairs[:k]]

    # ---- on disk
    def save(self, folder: Path) -> None:
        """Write the segments not on disk yet, then swap in the new segment list."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            for seg in self.segments:
                if not (folder / seg.filename).exists():
                    seg.save(folder)
            state = {
                "format": FORMAT,
                "generation": self.generation,
                "segments": [
                    {"name": seg.name, "deleted": np.flatnonzero(dead).tolist()}
                    for seg, dead in zip(self.segments, self.dead, strict=True)
                ],
            }
            fd, tmp = tempfile.mkstemp(prefix=".segments-", suffix=".json", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
            os.replace(tmp, folder / MANIFEST)
            _collect_garbage(folder, {seg.filename for seg in self.segments})

    @classmethod
    def load(cls, folder: Path, previous: LexicalIndex | None = None) -> LexicalIndex | None:
        """The saved index (reusing ``previous``'s segments where they are the same), or None
        if it is missing, of an older format or unreadable."""
        folder = Path(folder)
        known = {seg.name: seg for seg in previous.segments} if previous else {}
        for _ in range(3):
            try:
                state = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            except FileNotFoundError:
                return None
            except (OSError, ValueError) as exc:
                logger.info("BM25 index at %s unusable (%s); it will be rebuilt", folder, exc)
                return None
            try:
                if state.get("format") != FORMAT:
                    return None
                segments, dead = [], []
                for entry in state["segments"]:
                    seg = known.get(entry["name"]) or Segment.load(folder, entry["name"])
                    mask = np.zeros(len(seg), dtype=bool)
                    mask[np.asarray(entry["deleted"], dtype=np.int64)] = True
                    segments.append(seg)
                    dead.append(mask)
                return cls(segments, dead, int(state["generation"]))
            except FileNotFoundError:
                continue  # merged away by a writer since the list was read: read it again
            except (
                OSError,
                ValueError,
                KeyError,
                IndexError,
                TypeError,
                EOFError,
                zipfile.BadZipFile,
            ) as exc:
                # (a damaged segment file: numpy raises BadZipFile, a ValueError, or EOFError)
                logger.info("BM25 index at %s unusable (%s); it will be rebuilt", folder, exc)
                return None
        return None


def _maintain(
    segments: list[Segment], dead: list[np.ndarray]
) -> tuple[list[Segment], list[np.ndarray]]:
    """Compact segments with many deleted rows; merge the small ones when there are many."""
    out_s: list[Segment] = []
    out_d: list[np.ndarray] = []
    for seg, mask in zip(segments, dead, strict=True):
        n_dead = int(mask.sum())
        if n_dead == len(seg):
            continue
        if n_dead > COMPACT_DEAD_FRACTION * len(seg):
            seg, mask = Segment.merged([(seg, ~mask)]), np.zeros(len(seg) - n_dead, dtype=bool)
        out_s.append(seg)
        out_d.append(mask)
    if len(out_s) > MAX_SEGMENTS:
        largest = max(range(len(out_s)), key=lambda i: len(out_s[i]) - int(out_d[i].sum()))
        rest = [i for i in range(len(out_s)) if i != largest]
        merged = Segment.merged([(out_s[i], ~out_d[i]) for i in rest])
        out_s = [out_s[largest], merged]
        out_d = [out_d[largest], np.zeros(len(merged), dtype=bool)]
    return out_s, out_d


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _collect_garbage(folder: Path, keep: set[str]) -> None:
    """Delete what the segment list no longer names: superseded segments, temporary files of a
    killed writer, the files of the older single-index format. Called under the folder's lock,
    which every writer holds from its first segment file to its list swap."""
    import shutil

    for entry in folder.iterdir():
        if entry.name in keep or entry.name in (MANIFEST, ".lock"):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)

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
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from ingest.text import BM25_STOPWORDS, stemmer

logger = logging.getLogger(__name__)

K1 = 1.5
B = 0.75
MAX_SEGMENTS = 8  # more than this: merge all but the largest
COMPACT_DEAD_FRACTION = 0.3  # a segment with more deleted rows than this is rewritten
MANIFEST = "segments.json"
FORMAT = 2  # 1 was a single bm25s index


@lru_cache(maxsize=1)
def _bm25s() -> Any:
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets it to DEBUG on import
    return bm25s


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stopword-free, stemmed word tokens (the BM25 analyser)."""
    return _bm25s().tokenize(
        texts, stopwords=BM25_STOPWORDS, stemmer=stemmer(), return_ids=False, show_progress=False
    )


class Segment:
    """An immutable batch of chunks: their ids, token counts, and a CSC term -> (row, tf)
    matrix (``indptr`` per term, then ``rows`` and ``tfs`` sorted by term, then row)."""

    def __init__(
        self,
        name: str,
        ids: np.ndarray,
        lengths: np.ndarray,
        terms: np.ndarray,
        indptr: np.ndarray,
        rows: np.ndarray,
        tfs: np.ndarray,
    ) -> None:
        self.name = name
        self.ids = ids
        self.lengths = lengths.astype(np.float32, copy=False)
        self.terms = terms
        self.indptr = indptr
        self.rows = rows
        self.tfs = tfs
        self.column = {t: i for i, t in enumerate(terms.tolist())}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def filename(self) -> str:
        return f"seg-{self.name}.npz"

    @classmethod
    def from_texts(cls, ids: list[str], texts: list[str]) -> Segment:
        tokens = _bm25s().tokenize(
            texts, stopwords=BM25_STOPWORDS, stemmer=stemmer(), return_ids=True, show_progress=False
        )
        lengths = np.fromiter((len(t) for t in tokens.ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter(
            chain.from_iterable(tokens.ids), dtype=np.int64, count=int(lengths.sum())
        )
        terms = [""] * len(tokens.vocab)
        for term, i in tokens.vocab.items():
            terms[i] = term
        docs = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
        return cls._from_coo(
            ids=np.array(ids, dtype=str),
            lengths=lengths,
            terms=np.array(terms, dtype=str),
            cols=flat,
            rows=docs,
            tfs=np.ones(len(flat), dtype=np.int64),
        )

    @classmethod
    def _from_coo(
        cls,
        ids: np.ndarray,
        lengths: np.ndarray,
        terms: np.ndarray,
        cols: np.ndarray,
        rows: np.ndarray,
        tfs: np.ndarray,
    ) -> Segment:
        """Sum duplicate (term, row) entries, drop unused terms, lay out by term."""
        n = max(len(ids), 1)
        keys, inverse = np.unique(cols * n + rows, return_inverse=True)
        summed = np.bincount(inverse, weights=tfs, minlength=len(keys))
        cols, rows = keys // n, keys % n
        per_term = np.bincount(cols, minlength=len(terms))
        used = per_term > 0
        return cls(
            name=uuid.uuid4().hex[:16],
            ids=ids,
            lengths=lengths,
            terms=terms[used],
            indptr=np.concatenate([[0], np.cumsum(per_term[used])]).astype(np.int64),
            rows=rows.astype(np.int32),
            tfs=np.minimum(summed, np.iinfo(np.uint16).max).astype(np.uint16),
        )

    @classmethod
    def merged(cls, parts: list[tuple[Segment, np.ndarray]]) -> Segment:
        """One segment holding the live rows (``live`` masks) of ``parts``, in order."""
        vocab: dict[str, int] = {}
        ids, lengths, cols, rows, tfs = [], [], [], [], []
        offset = 0
        for seg, live in parts:
            new_row = np.cumsum(live, dtype=np.int64) - 1 + offset
            remap = np.array(
                [vocab.setdefault(t, len(vocab)) for t in seg.terms.tolist()], dtype=np.int64
            )
            keep = live[seg.rows]
            cols.append(np.repeat(remap, np.diff(seg.indptr))[keep])
            rows.append(new_row[seg.rows[keep]])
            tfs.append(seg.tfs[keep].astype(np.int64))
            ids.append(seg.ids[live])
            lengths.append(seg.lengths[live])
            offset += int(live.sum())
        return cls._from_coo(
            ids=np.concatenate(ids) if ids else np.array([], dtype=str),
            lengths=np.concatenate(lengths) if lengths else np.array([], dtype=np.float32),
            terms=np.array(list(vocab), dtype=str),
            cols=np.concatenate(cols) if cols else np.array([], dtype=np.int64),
            rows=np.concatenate(rows) if rows else np.array([], dtype=np.int64),
            tfs=np.concatenate(tfs) if tfs else np.array([], dtype=np.int64),
        )

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        col = self.column.get(term)
        if col is None:
            return None
        start, end = self.indptr[col], self.indptr[col + 1]
        return self.rows[start:end], self.tfs[start:end]

    def save(self, folder: Path) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".seg-", suffix=".npz", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            np.savez(
                fh,
                ids=self.ids,
                lengths=self.lengths,
                terms=self.terms,
                indptr=self.indptr,
                rows=self.rows,
                tfs=self.tfs,
            )
        os.replace(tmp, folder / self.filename)

    @classmethod
    def load(cls, folder: Path, name: str) -> Segment:
        with np.load(folder / f"seg-{name}.npz", allow_pickle=False) as data:
            return cls(name, **{k: data[k] for k in data.files})


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
            except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
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

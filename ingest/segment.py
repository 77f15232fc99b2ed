"""One segment of the BM25 index: an immutable batch of chunks and its postings, on disk as
one ``.npz`` file, and the analyser that turns text into its terms (bm25s's tokenizer with
English stopwords and the Snowball stemmer of ``ingest.text``)."""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from ingest.text import BM25_STOPWORDS, stemmer


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

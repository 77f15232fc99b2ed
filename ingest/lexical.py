"""The lexical (BM25) side of the index, persisted beside the Chroma data.

Built with bm25s over the same chunks as the collection, with English stopwords and the
Snowball stemmer. It is stamped with the manifest's generation: every ingest run that changes
the index rebuilds it, and a reader that finds it missing or stale rebuilds it too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import bm25s  # noqa: F401  (bm25s sets its own logger to DEBUG on import; undo that)
    import Stemmer

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stopword-free, stemmed word tokens (the BM25 analyser)."""
    import bm25s

    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )


class LexicalIndex:
    """BM25 over chunk texts, addressed by chunk id."""

    def __init__(self, retriever: Any, ids: list[str], generation: int) -> None:
        self._retriever = retriever
        self.ids = ids
        self.generation = generation

    @classmethod
    def build(cls, chunks: Iterable[tuple[str, str]], generation: int) -> LexicalIndex:
        """From (chunk_id, text) pairs."""
        import bm25s

        ids: list[str] = []
        texts: list[str] = []
        for chunk_id, text in chunks:
            ids.append(chunk_id)
            texts.append(text)
        retriever = bm25s.BM25()
        if texts:
            retriever.index(tokenize(texts), show_progress=False)
        return cls(retriever, ids, generation)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk_id, score) pairs with a positive score, best first."""
        if not self.ids:
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        docs, scores = self._retriever.retrieve(
            tokens, k=min(k, len(self.ids)), show_progress=False, n_threads=1
        )
        return [
            (self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]

    def save(self, folder: Path) -> None:
        """Write atomically: a reader sees the old index or the new one, never half."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bm25-", dir=folder.parent))
        if self.ids:
            self._retriever.save(str(tmp))
        (tmp / "ids.json").write_text(
            json.dumps({"generation": self.generation, "ids": self.ids}), encoding="utf-8"
        )
        old = folder.with_name(folder.name + ".old")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex | None:
        """The saved index, or None if it is missing or unreadable."""
        import bm25s

        try:
            meta = json.loads((Path(folder) / "ids.json").read_text(encoding="utf-8"))
            ids = meta["ids"]
            retriever = bm25s.BM25.load(str(folder)) if ids else bm25s.BM25()
            return cls(retriever, ids, int(meta["generation"]))
        except (OSError, ValueError, KeyError) as exc:
            logger.info("BM25 index at %s unusable (%s); it will be rebuilt", folder, exc)
            return None

"""Question-to-sentence embedding similarity for the extractive answerer (vectors cached)."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

SENTENCE_CACHE = 20000  # sentence vectors kept


class SentenceSimilarity:
    """``(question, sentences) -> cosines``, the ``similarity`` that ``extract`` takes."""

    def __init__(self, embeddings: Embeddings, cache_size: int = SENTENCE_CACHE) -> None:
        self.embeddings = embeddings
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Unit-length vectors of ``texts`` (one row each), embedded once and cached."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if todo:
            for text, vec in zip(todo, self.embeddings.embed_documents(todo), strict=True):
                v = np.asarray(vec, dtype=np.float32)
                self._vectors[text] = v / (np.linalg.norm(v) or 1.0)
        rows = [self._vectors[t] for t in texts]
        while len(self._vectors) > self.cache_size:
            self._vectors.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)

    def __call__(self, question: str, sentences: list[str]) -> list[float]:
        if not sentences:
            return []
        q = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        return [float(v) for v in self.vectors(sentences) @ q]

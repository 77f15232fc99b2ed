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

    def __call__(self, question: str, sentences: list[str]) -> list[float]:
        todo = [t for t in dict.fromkeys(sentences) if t not in self._vectors]
        if todo:
            for text, vec in zip(todo, self.embeddings.embed_documents(todo), strict=True):
                v = np.asarray(vec, dtype=np.float32)
                self._vectors[text] = v / (np.linalg.norm(v) or 1.0)
            while len(self._vectors) > self.cache_size:
                self._vectors.popitem(last=False)
        q = np.asarray(self.embeddings.embed_query(question), dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        return [float(self._vectors[text] @ q) for text in sentences]

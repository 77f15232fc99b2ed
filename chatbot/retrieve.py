"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank, diversified per document."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from chatbot.config import ChatSettings
from chatbot.types import Passage

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from ingest import DocIndex

logger = logging.getLogger(__name__)


def rrf_fuse(rankings: list[tuple[list[str], float]], rrf_k: int) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion: sum of weight / (rrf_k + rank) over the rankings."""
    scores: dict[str, float] = defaultdict(float)
    for ids, weight in rankings:
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] += weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def diversify(passages: list[Passage], k: int, per_doc_cap: int, pinned: int = 0) -> list[Passage]:
    """The best ``k`` with at most ``per_doc_cap`` per document, backfilled in order when
    fewer documents than slots exist (so a one-document corpus still fills every slot).
    The first ``pinned`` passages are kept whatever the cap."""
    chosen: list[Passage] = []
    per_doc: dict[str, int] = defaultdict(int)
    rest: list[Passage] = []
    for i, p in enumerate(passages):
        key = p.source
        if i < pinned or (per_doc[key] < per_doc_cap and len(chosen) < k):
            chosen.append(p)
            per_doc[key] += 1
        else:
            rest.append(p)
    for p in rest:
        if len(chosen) >= k:
            break
        chosen.append(p)
    order = {p.chunk_id: i for i, p in enumerate(passages)}
    return sorted(chosen, key=lambda p: order[p.chunk_id])


class HybridRetriever:
    """Dense + lexical retrieval over one ``DocIndex``."""

    def __init__(self, index: DocIndex, settings: ChatSettings) -> None:
        self.index = index
        self.settings = settings

    def _rankings(
        self, query: str, fetch: int
    ) -> tuple[list[tuple[Document, float]], list[tuple[str, float]]]:
        s = self.settings
        dense = self.index.search(query, fetch) if s.dense_weight > 0 else []
        lexical = self.index.lexical_search(query, fetch) if s.bm25_weight > 0 else []
        return dense, lexical

    def retrieve(
        self, query: str, k: int | None = None, parts: Sequence[str] = ()
    ) -> list[Passage]:
        """The best ``k`` passages for ``query``, numbered [1]..[k].

        ``parts`` (a compound question's sub-queries: one per article, source or event it
        names) are searched too and fused with the whole query, and the best passage of
        each part is kept among the ``k``, so every part has its evidence; ``k`` is then at
        least ``compound_k``, one passage per document before any document gets a second."""
        s = self.settings
        k = k or s.k
        parts = [p for p in parts if p.strip() and p.strip() != query.strip()]
        cap = s.per_doc_cap
        if parts:  # evidence from several documents: more of them, one passage each first
            k, cap = max(k, 2 * len(parts), s.compound_k), 1
        fetch = max(s.fetch_k, k)
        searches = [self._rankings(q, fetch) for q in [query, *parts]]
        by_id: dict[str, Passage] = {}
        for dense, _ in searches:
            for rank, (doc, score) in enumerate(dense, start=1):
                p = by_id.get(doc.id) or Passage.from_chunk(doc.id, doc.page_content, doc.metadata)
                if p.dense_score is None or score > p.dense_score:
                    p.dense_score = score
                p.dense_rank = min(p.dense_rank or rank, rank)
                by_id[doc.id] = p
        missing = list(
            dict.fromkeys(cid for _, lexical in searches for cid, _ in lexical if cid not in by_id)
        )
        for chunk in self.index.get(missing) if missing else []:
            by_id[chunk.id] = Passage.from_chunk(chunk.id, chunk.text, chunk.metadata)
        for _, lexical in searches:
            for rank, (cid, score) in enumerate(lexical, start=1):
                p = by_id.get(cid)
                if p is not None and (p.bm25_score is None or score > p.bm25_score):
                    p.bm25_score, p.bm25_rank = score, min(p.bm25_rank or rank, rank)
        rankings = []
        for dense, lexical in searches:
            rankings.append(([doc.id for doc, _ in dense], s.dense_weight))
            rankings.append(([cid for cid, _ in lexical], s.bm25_weight))
        fused = rrf_fuse(rankings, s.rrf_k)
        ranked: list[Passage] = []
        for cid, fused_score in fused:
            if cid in by_id:
                by_id[cid].fused_score = fused_score
                ranked.append(by_id[cid])
        # Each part's own best passage first, so no part is crowded out by another.
        keep: list[Passage] = []
        for dense, lexical in searches[1:]:
            own = rrf_fuse(
                [
                    ([d.id for d, _ in dense], s.dense_weight),
                    ([c for c, _ in lexical], s.bm25_weight),
                ],
                s.rrf_k,
            )
            best = next((by_id[c] for c, _ in own if c in by_id and by_id[c] not in keep), None)
            if best is not None:
                keep.append(best)
        rest = [p for p in ranked if p not in keep]
        top = diversify(keep + rest, k, cap, pinned=len(keep))
        for n, p in enumerate(top, start=1):
            p.n = n
        return top

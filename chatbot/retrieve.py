"""Hybrid retrieval: dense (Chroma) + BM25, fused by reciprocal rank, diversified per document."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from chatbot.config import ChatSettings
from chatbot.types import Passage

if TYPE_CHECKING:
    from ingest import DocIndex

logger = logging.getLogger(__name__)


def rrf_fuse(rankings: list[tuple[list[str], float]], rrf_k: int) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion: sum of weight / (rrf_k + rank) over the rankings."""
    scores: dict[str, float] = defaultdict(float)
    for ids, weight in rankings:
        for rank, chunk_id in enumerate(ids, start=1):
            scores[chunk_id] += weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def diversify(passages: list[Passage], k: int, per_doc_cap: int) -> list[Passage]:
    """The best ``k`` with at most ``per_doc_cap`` per document, backfilled in order when
    fewer documents than slots exist (so a one-document corpus still fills every slot)."""
    chosen: list[Passage] = []
    per_doc: dict[str, int] = defaultdict(int)
    rest: list[Passage] = []
    for p in passages:
        key = p.source
        if per_doc[key] < per_doc_cap and len(chosen) < k:
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

    def retrieve(self, query: str, k: int | None = None) -> list[Passage]:
        s = self.settings
        k = k or s.k
        fetch = max(s.fetch_k, k)
        dense = self.index.search(query, fetch) if s.dense_weight > 0 else []
        lexical = self.index.lexical_search(query, fetch) if s.bm25_weight > 0 else []
        dense_ids = [doc.id for doc, _ in dense]
        lexical_ids = [cid for cid, _ in lexical]
        fused = rrf_fuse([(dense_ids, s.dense_weight), (lexical_ids, s.bm25_weight)], s.rrf_k)
        by_id: dict[str, Passage] = {}
        for rank, (doc, score) in enumerate(dense, start=1):
            p = Passage.from_chunk(doc.id, doc.page_content, doc.metadata)
            p.dense_score, p.dense_rank = score, rank
            by_id[doc.id] = p
        missing = [cid for cid in lexical_ids if cid not in by_id]
        for chunk in self.index.get(missing) if missing else []:
            by_id[chunk.id] = Passage.from_chunk(chunk.id, chunk.text, chunk.metadata)
        for rank, (cid, score) in enumerate(lexical, start=1):
            if cid in by_id:
                by_id[cid].bm25_score, by_id[cid].bm25_rank = score, rank
        ranked: list[Passage] = []
        for cid, fused_score in fused:
            if cid in by_id:
                by_id[cid].fused_score = fused_score
                ranked.append(by_id[cid])
        top = diversify(ranked, k, s.per_doc_cap)
        for n, p in enumerate(top, start=1):
            p.n = n
        return top

"""Score the chatbot's answers: one row per question, with every score
(``eval.summary`` turns the rows into the report's metrics).

Rules (the README repeats them):

* Retrieval is scored on answerable questions with evidence, twice:

  - ``hits@j``, ``mrr@10``, ``evidence_recall``: in retrieval order, the order the hybrid
    retriever returned the passages (fused score, ties by chunk id; see
    ``retriever_order``), before any answerer reorders them. These do not depend on which
    answerer ran, and ``hits@5`` is the one the regression gate watches.
  - ``shown_hits@j``, ``shown_mrr@10``, ``shown_evidence_recall``: in the order the answer
    shows them, by their final ``[n]`` (after the extractive answerer's rerank; see
    ``shown_order``).

  A passage is relevant when it holds an evidence quote (see ``metrics.holds_quote``) or,
  for a question with evidence documents but no quote, when it comes from one of them.
* Evidence recall@k: the share of the question's evidence documents (or, without document
  ids, of its quotes) that the k passages cover.
* Answers are scored on answerable questions; a declined answer scores 0. "Contains" looks
  for a gold answer in the whole answer (citation markers removed); token F1 compares the
  short answer when the chatbot gives one, else the whole answer.
* Short answers (``short_em``, ``short_f1``): SQuAD 2.0's exact match and token F1, with its
  official normalisation (``metrics.squad_normalize``), of ``metrics.short_answer_text``:
  the chatbot's short answer, else the first citation's quote, else the answer's prose.
  Scored on answerable questions; a declined answer scores 0 on both.
* The reader's decision (``reader_declined``, ``reader_margin``): from
  ``Answer.trace.reader`` when the reader model ran, else ``None`` (the rules answerer, a
  question declined before the reader, an error).
* Evidence documents cited: on answerable questions with evidence document ids, 1 when every
  evidence document (compared by file stem) is the source of one of the answer's citations,
  else 0; a declined answer scores 0.
* Citation precision: on answered, answerable questions with evidence, the share of cited
  passages that are relevant. Supported share: on answered questions, the share of answer
  sentences (cited, or uncited and longer than three words) that the chatbot's citation
  check did not list in ``Answer.unsupported_sentences``.
* Refusals: recall = declined / unanswerable; answered-when-answerable; precision = right
  declines / declines. A question the chatbot refused to take counts as declined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatbot import Answer, Passage
from eval import metrics as m
from eval.dataset import EvalCase
from eval.runner import Outcome, best_dense

HITS_AT = (1, 3, 5, 10)

# Outcome labels, worst first (a row gets the first that applies).
ERROR = "error"
ANSWERED_UNANSWERABLE = "answered unanswerable"
DECLINED_ANSWERABLE = "declined answerable"
WRONG_ANSWER = "wrong answer"
# The quoted sentences hold a gold answer, but the short answer shares no word with any.
WRONG_SHORT_ANSWER = "wrong short answer"
RETRIEVAL_MISS = "retrieval miss"
BAD_CITATION = "bad citation"
OK = "ok"
FAILURES = (
    ERROR,
    ANSWERED_UNANSWERABLE,
    DECLINED_ANSWERABLE,
    WRONG_ANSWER,
    WRONG_SHORT_ANSWER,
    RETRIEVAL_MISS,
    BAD_CITATION,
)


@dataclass(frozen=True)
class ScoreOptions:
    k: int
    min_overlap: float


def retriever_order(passages: list[Passage]) -> list[Passage]:
    """The passages in retrieval order: by the retriever's fused score (ties by chunk id, as
    ``rrf_fuse`` breaks them), whatever order the answerer shows them in. (A passage the
    retriever pins ahead for one part of a compound question is placed by its fused score
    too: the ``Passage`` keeps no retrieval rank once the answerer renumbers it.) Passages
    with no fused score (all 0) fall back to their dense rank, then to their ``[n]``."""
    if any(p.fused_score for p in passages):
        return sorted(passages, key=lambda p: (-p.fused_score, p.chunk_id))
    big = len(passages) + 1
    return sorted(
        passages,
        key=lambda p: (p.dense_rank if p.dense_rank is not None else big, p.n or big),
    )


def shown_order(passages: list[Passage]) -> list[Passage]:
    """The passages in the order the answer shows them: by their final ``[n]`` (after the
    extractive answerer's rerank), or in retrieval order when some have no number."""
    if passages and all(p.n > 0 for p in passages):
        return sorted(passages, key=lambda p: p.n)
    return retriever_order(passages)


def _relevant(text: str, doc_ids: list[str], case: EvalCase, opts: ScoreOptions) -> bool | None:
    return m.is_relevant(text, doc_ids, case.evidence, case.evidence_doc_ids, opts.min_overlap)


def _units(p: Passage, case: EvalCase, opts: ScoreOptions) -> set[str]:
    """The evidence units a passage covers: its document's stem when the question names
    evidence documents, else the quotes it holds."""
    if case.evidence_doc_ids:
        wanted = {m.doc_stem(d) for d in case.evidence_doc_ids}
        return {m.doc_stem(d) for d in (p.doc_id, p.source) if d and m.doc_stem(d) in wanted}
    return {q for q in case.evidence if m.holds_quote(p.text, q, opts.min_overlap)}


def _evidence_units(case: EvalCase) -> set[str]:
    if case.evidence_doc_ids:
        return {m.doc_stem(d) for d in case.evidence_doc_ids}
    return set(case.evidence)


def claims(text: str) -> list[str]:
    """The answer sentences a citation check judges: cited ones, and uncited ones of more
    than three words (headings and stray words are not claims)."""
    out = []
    for sentence in m.answer_sentences(text):
        plain = m.without_markers(sentence)
        if plain and (m.is_cited(sentence) or len(plain.split()) > 3):
            out.append(plain)
    return out


def supported_share(text: str, unsupported: list[str]) -> float | None:
    """The share of the answer's claims that the chatbot's citation check did not list as
    unsupported. A claim is unsupported when it and a listed sentence overlap (one holds
    the other, compared after ``squash``), so the harness's sentence split need not be
    the chatbot's exactly."""
    found = claims(text)
    bad = [m.squash(m.without_markers(u).lstrip("> ")) for u in unsupported]
    bad = [b for b in bad if b]
    n_bad = sum(1 for c in found if any(b in m.squash(c) or m.squash(c) in b for b in bad))
    return m.supported_share(len(found), n_bad)


def prediction(answer: Answer | None) -> str:
    """What token F1 compares: the short answer, else the answer's prose; "" if declined."""
    if answer is None or answer.declined:
        return ""
    return answer.short_answer or m.answer_text(answer.text)


def short_text(answer: Answer | None) -> str:
    """What exact match and ``short_f1`` compare (``metrics.short_answer_text``); "" if
    declined."""
    if answer is None or answer.declined:
        return ""
    quotes = [c.quote for c in answer.citations]
    return m.short_answer_text(answer.short_answer, quotes, answer.text)


def reader_decision(answer: Answer | None) -> tuple[bool | None, float | None]:
    """Whether the reader model declined, and its margin (span score minus no-answer
    score), from ``answer.trace.reader``; ``(None, None)`` when the reader did not run. A
    trace without a ``declined`` flag is read from its margin and threshold."""
    reader = answer.trace.reader if answer is not None else None
    if not isinstance(reader, dict):
        return None, None
    margin = reader.get("margin")
    margin = float(margin) if isinstance(margin, int | float) else None
    declined = reader.get("declined")
    if not isinstance(declined, bool):
        threshold = reader.get("threshold")
        declined = (
            margin < threshold
            if margin is not None and isinstance(threshold, int | float)
            else None
        )
    return declined, margin


def _retrieval_scores(
    prefix: str, flags: list[bool], units: list[set[str]], case: EvalCase, k: int
) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        f"{prefix}hits@{j}": (m.hits_at_k(flags, j) if j <= k else None) for j in HITS_AT
    }
    out[f"{prefix}mrr@10"] = m.reciprocal_rank(flags, 10)
    out[f"{prefix}evidence_recall"] = m.evidence_recall(units, _evidence_units(case), k)
    return out


def evidence_docs_cited(case: EvalCase, answer: Answer | None) -> float | None:
    """1.0 when every evidence document of an answerable question is the source of one of
    the answer's citations (compared by file stem), else 0.0 (a declined answer, or none,
    scores 0.0); ``None`` for an unanswerable question or one without evidence documents."""
    if not case.answerable or not case.evidence_doc_ids:
        return None
    if answer is None or answer.declined:
        return 0.0
    cited = {m.doc_stem(c.source) for c in answer.citations if c.source}
    wanted = {m.doc_stem(d) for d in case.evidence_doc_ids}
    return 1.0 if wanted <= cited else 0.0


def score_outcome(o: Outcome, opts: ScoreOptions) -> dict[str, Any]:
    """One question's row: what was asked, what came back, the gold, and every score."""
    case, answer = o.case, o.answer
    declined = answer is None or answer.declined
    passages = retriever_order(answer.trace.passages) if answer else []
    relevant: list[bool | None] = [
        _relevant(p.text, [p.doc_id, p.source], case, opts) for p in passages
    ]
    scores = _blank_scores(case, answer)
    if case.answerable and case.has_evidence and answer is not None:
        scores.update(_retrieval_in_both_orders(case, answer, passages, relevant, opts))
    if case.answerable:
        text = "" if declined or answer is None else m.answer_text(answer.text)
        scores["answer_contains"] = m.contains_gold(text, case.answers)
        scores["answer_f1"] = m.token_f1(prediction(answer), case.answers)
        scores.update(_short_scores(case, answer, declined))
    cited: list[dict[str, Any]] = []
    if answer is not None and not declined:
        cited = _cited(case, answer, opts)
        if case.answerable and case.has_evidence:
            scores["citation_precision"] = m.citation_precision(
                [bool(c["relevant"]) for c in cited]
            )
        scores["citation_supported"] = supported_share(answer.text, answer.unsupported_sentences)
    best = best_dense(answer) if answer else None
    reader_declined, reader_margin = reader_decision(answer)
    row: dict[str, Any] = {
        "id": case.id,
        "line": case.line,
        "type": case.type,
        "corpus": case.corpus,
        "question": case.question,
        "history": [dict(t) for t in case.history],
        "gold": {
            "answerable": case.answerable,
            "answers": list(case.answers),
            "evidence": list(case.evidence),
            "evidence_doc_ids": list(case.evidence_doc_ids),
        },
        "answer": _answer_fields(answer, declined),
        "citations": cited,
        "retrieved": _retrieved(passages, relevant),
        "scores": scores,
        "declined": declined,
        "reader_declined": reader_declined,
        "reader_margin": rounded(reader_margin),
        "best_dense": rounded(best),
        "latency_ms": round(o.latency_ms, 2),
        "error": o.error,
        "threshold": _threshold_point(o),
    }
    row["outcome"] = outcome_label(row)
    return row


def _blank_scores(case: EvalCase, answer: Answer | None) -> dict[str, Any]:
    """Every score of a row, in report order; ``None`` until scored."""
    scores: dict[str, Any] = {}
    for prefix in ("", "shown_"):
        scores.update({f"{prefix}hits@{j}": None for j in HITS_AT})
        scores[f"{prefix}mrr@10"] = None
        scores[f"{prefix}evidence_recall"] = None
    scores.update(
        {
            "answer_contains": None,
            "answer_f1": None,
            "short_em": None,
            "short_f1": None,
            "evidence_docs_cited": evidence_docs_cited(case, answer),
            "citation_precision": None,
            "citation_supported": None,
        }
    )
    return scores


def _short_scores(case: EvalCase, answer: Answer | None, declined: bool) -> dict[str, Any]:
    """``short_em`` and ``short_f1`` of an answerable question; 0 for a declined answer
    (even against a gold that normalises to nothing)."""
    short = short_text(answer)
    scores = {
        "short_em": m.exact_match(short, case.answers),
        "short_f1": m.squad_f1(short, case.answers),
    }
    if declined:
        scores = {k: None if v is None else 0.0 for k, v in scores.items()}
    return scores


def _retrieval_in_both_orders(
    case: EvalCase,
    answer: Answer,
    passages: list[Passage],
    relevant: list[bool | None],
    opts: ScoreOptions,
) -> dict[str, float | None]:
    """hits@j, MRR@10 and evidence recall in retrieval order (``passages``, as returned by
    ``retriever_order``), and again as ``shown_*`` in the order the answer shows them."""
    shown = shown_order(answer.trace.passages)
    flag_of = {id(p): bool(r) for p, r in zip(passages, relevant, strict=True)}
    units_of = {id(p): _units(p, case, opts) for p in passages}
    out: dict[str, float | None] = {}
    for prefix, order in (("", passages), ("shown_", shown)):
        flags = [flag_of[id(p)] for p in order]
        units = [units_of[id(p)] for p in order]
        out.update(_retrieval_scores(prefix, flags, units, case, opts.k))
    return out


def _cited(case: EvalCase, answer: Answer, opts: ScoreOptions) -> list[dict[str, Any]]:
    """The answer's citations as report rows, each judged relevant or not (answerable
    questions only)."""
    return [
        {
            "n": c.n,
            "source": c.source,
            "chunk_id": c.chunk_id,
            "start": c.start,
            "end": c.end,
            "quote": c.quote,
            "supported": c.supported,
            "support": c.support,
            "relevant": (_relevant(c.passage, [c.source], case, opts) if case.answerable else None),
        }
        for c in answer.citations
    ]


def _answer_fields(answer: Answer | None, declined: bool) -> dict[str, Any]:
    return {
        "text": answer.text if answer else "",
        "declined": declined,
        "short_answer": answer.short_answer if answer else None,
        "prediction": prediction(answer),
        "short_text": short_text(answer),
        "standalone_query": answer.trace.standalone_query if answer else "",
        "unsupported_sentences": list(answer.unsupported_sentences) if answer else [],
    }


def _retrieved(passages: list[Passage], relevant: list[bool | None]) -> list[dict[str, Any]]:
    """The passages in retrieval order, ranked from 1, with their scores and relevance."""
    return [
        {
            "rank": i,
            "n": p.n,
            "source": p.source,
            "chunk_id": p.chunk_id,
            "start": p.start,
            "end": p.end,
            "dense_score": rounded(p.dense_score),
            "bm25_score": rounded(p.bm25_score),
            "fused_score": rounded(p.fused_score),
            "relevant": rel,
            "text": p.text,
        }
        for i, (p, rel) in enumerate(zip(passages, relevant, strict=True), start=1)
    ]


def _threshold_point(o: Outcome) -> dict[str, Any]:
    """Whether the question is answered (and answered right) with the floor off."""
    answer = o.unfloored or o.answer
    if answer is None:
        return {"answered": False, "correct": False}
    answered = not answer.declined
    correct = bool(
        answered
        and o.case.answerable
        and m.contains_gold(m.answer_text(answer.text), o.case.answers)
    )
    return {"answered": answered, "correct": correct}


def outcome_label(row: dict[str, Any]) -> str:
    """The worst thing that went wrong with a row, or ``OK``."""
    s, gold = row["scores"], row["gold"]
    if row["error"]:
        return ERROR
    if not gold["answerable"]:
        return OK if row["declined"] else ANSWERED_UNANSWERABLE
    if row["declined"]:
        return DECLINED_ANSWERABLE
    if s["answer_contains"] == 0.0:
        return WRONG_ANSWER
    short = row["answer"]["short_answer"]
    if short and not m.token_f1(short, gold["answers"]):
        return WRONG_SHORT_ANSWER
    if s["hits@5"] == 0.0 or (s["hits@5"] is None and s["hits@1"] == 0.0):
        return RETRIEVAL_MISS
    if s["citation_precision"] is not None and s["citation_precision"] < 1.0:
        return BAD_CITATION
    return OK


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for the report (4 digits), or None."""
    return None if value is None else round(float(value), digits)

"""Answer quality of the offline extractive answerer on SQuAD 2.0 and off-topic questions.

Usage::

    python bench/answer_quality.py                      # SQuAD sample, built into a temp index
    python bench/answer_quality.py --index /tmp/squadidx --seed-index /tmp/seedidx
    python bench/answer_quality.py --json out.json

Prints, for the settings' defaults (``ChatSettings``, ``DOCQA_*`` overrides apply):

* retrieval hits@1 / hits@5 on answerable questions, on the passage order after ``rerank``;
* answers containing a gold answer (SQuAD normalisation: lower case, no punctuation, no
  articles a/an/the, collapsed spaces; the answer text is the short answer plus the quoted
  sentences) over answered answerable questions, over all answerable questions (a refusal
  counts as a miss), and with every refusal rule off (what the sentence choice alone gets);
* the declined rate on unanswerable (near-miss) and on answerable questions;
* the declined rate of off-topic questions against the main index and the seed index;
* the seed article's reference questions and their answers (with ``--seed-index``);
* each refusal rule's effect (all rules on, then each one off, then only that one on);
* the trade-off curve over ``min_support`` (the main threshold), the chosen point marked;
* per-question latency p50/p95 of retrieve + rerank + extract.

A missing index is built from the documents beside the questions file (``docs/``) or from
``seeds/`` into a temporary folder. It is a benchmark, not a test: it exits 0 either way.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import string
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.config import IngestSettings, set_offline_env  # noqa: E402

SQUAD = ROOT.parent / "shared" / "eval-data" / "squad_v2" / "questions.jsonl"
OFFTOPIC = ROOT / "eval" / "sets" / "offtopic.jsonl"
SEEDS = ROOT / "seeds"
SWEEP = [0.0, 0.1, 0.2, 0.25, 0.3, 0.325, 0.35, 0.375, 0.4, 0.425, 0.45, 0.5, 0.6]
RULES = ("type_check", "negation_check", "contrast_check", "entity_check")
SEED_QUESTIONS = [
    ("Who instructed prosecutors to seek the death penalty?", ["Jeff Sessions"]),
    ("When did Sessions issue the memo?", ["Wednesday", "2018-03-22"]),
    (
        "How many circumstances allow the death penalty for drug crimes under U.S. law?",
        ["four"],
    ),
    ("Who announced a plan to execute opioid dealers?", ["Donald Trump"]),
    ("Why has use of the death penalty been declining?", ["lack of access to drugs"]),
    ("Who did the former federal prosecutor talk to?", ["Reuters"]),
]
TARGETS = {
    "hits@1": 0.92,
    "hits@5": 0.98,
    "gold_answered": 0.93,
    "declined_unanswerable": 0.40,
    "declined_answerable": 0.10,
    "declined_offtopic": 0.95,
    "latency_p95_ms": 100.0,
}


def normalize(text: str) -> str:
    """SQuAD's answer normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_PUNCT = set(string.punctuation) | set("“”‘’–—…")


def contains_gold(answer: str, golds: list[str]) -> bool:
    norm = normalize(answer)
    return any(normalize(g) and normalize(g) in norm for g in golds)


@dataclass
class Case:
    question: dict[str, Any]
    passages: list[Any]  # as retrieved, before rerank
    retrieve_ms: float


def load_questions(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def ensure_index(index_dir: Path | None, docs: Path, label: str) -> Path:
    """The index at ``index_dir``, or one built from ``docs`` into a temporary folder."""
    from ingest import ingest_paths

    if index_dir is not None and (index_dir / "manifest.sqlite3").exists():
        return index_dir
    target = index_dir or Path(tempfile.mkdtemp(prefix=f"docqa-{label}-"))
    print(f"building the {label} index from {docs} into {target} ...", flush=True)
    ingest_paths([docs], IngestSettings(index_dir=target, progress=False))
    return target


SIMILARITY: Any = None


def retrieve_all(index_dir: Path, questions: list[dict[str, Any]], settings: Any) -> list[Case]:
    from chatbot.retrieve import HybridRetriever
    from chatbot.similarity import SentenceSimilarity
    from ingest import open_index

    s = settings.replace(index=dataclasses.replace(settings.index, index_dir=index_dir))
    index = open_index(s.index)
    retriever = HybridRetriever(index, s)
    retriever.retrieve("warm up the embedding model")
    global SIMILARITY  # the same sentence similarity the chatbot uses
    SIMILARITY = SentenceSimilarity(index.embeddings)
    cases = []
    for q in questions:
        t = time.perf_counter()
        passages = retriever.retrieve(q["question"])
        cases.append(Case(q, passages, (time.perf_counter() - t) * 1000))
    return cases


@dataclass
class Outcome:
    case: Case
    declined: bool
    reason: str
    answer: str
    correct: bool
    hit1: bool
    hit5: bool
    ms: float  # retrieve + rerank + extract
    answer_ms: float  # rerank + extract


def answer_all(cases: list[Case], settings: Any) -> list[Outcome]:
    from chatbot.extractive import extract, rerank

    out = []
    for c in cases:
        t = time.perf_counter()
        ranked = rerank(c.question["question"], c.passages, settings)
        sel = extract(c.question["question"], ranked, settings, similarity=SIMILARITY)
        answer_ms = (time.perf_counter() - t) * 1000
        parts = ([sel.short_answer] if sel.short_answer else []) + [s.text for s in sel.sentences]
        answer = " ".join(parts)
        gold = set(c.question.get("evidence_doc_ids") or [])
        ids = [p.doc_id for p in ranked]
        out.append(
            Outcome(
                case=c,
                declined=sel.declined,
                reason=sel.reason,
                answer=answer,
                correct=not sel.declined and contains_gold(answer, c.question["answers"]),
                hit1=bool(ids) and ids[0] in gold,
                hit5=any(i in gold for i in ids[:5]),
                ms=c.retrieve_ms + answer_ms,
                answer_ms=answer_ms,
            )
        )
    return out


def rate(items: list[Any], pred: Any) -> float:
    return sum(1 for x in items if pred(x)) / len(items) if items else float("nan")


def metrics(squad: list[Outcome]) -> dict[str, float]:
    ans = [o for o in squad if o.case.question["answerable"]]
    una = [o for o in squad if not o.case.question["answerable"]]
    answered = [o for o in ans if not o.declined]
    return {
        "hits@1": rate(ans, lambda o: o.hit1),
        "hits@5": rate(ans, lambda o: o.hit5),
        "gold_answered": rate(answered, lambda o: o.correct),
        "gold_all_answerable": rate(ans, lambda o: o.correct),
        "declined_unanswerable": rate(una, lambda o: o.declined),
        "declined_answerable": rate(ans, lambda o: o.declined),
    }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rules_table(cases: list[Case], off: list[Case], settings: Any) -> list[dict[str, Any]]:
    rows = []
    variants: list[tuple[str, dict[str, bool]]] = [("all rules", {})]
    variants += [(f"without {r}", {r: False}) for r in RULES]
    none = {r: False for r in RULES}
    variants += [(f"only {r}", {**none, r: True}) for r in RULES]
    variants += [("no rules (dense floor + min_support only)", none)]
    for label, change in variants:
        s = settings.replace(**change)
        m = metrics(answer_all(cases, s))
        m["declined_offtopic"] = rate(answer_all(off, s), lambda o: o.declined) if off else 0
        rows.append({"variant": label, **m})
    return rows


def sweep(cases: list[Case], off: list[Case], settings: Any) -> list[dict[str, float]]:
    rows = []
    points = sorted(set(SWEEP) | {settings.min_support})
    for t in points:
        s = settings.replace(min_support=t)
        out = answer_all(cases, s)
        ans = [o for o in out if o.case.question["answerable"]]
        una = [o for o in out if not o.case.question["answerable"]]
        rows.append(
            {
                "min_support": t,
                "answered_correct": rate(ans, lambda o: o.correct),
                "declined_answerable": rate(ans, lambda o: o.declined),
                "wrongly_answered_unanswerable": rate(una, lambda o: not o.declined),
                "declined_offtopic": rate(answer_all(off, s), lambda o: o.declined)
                if off
                else float("nan"),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    import torch

    from chatbot.config import ChatSettings

    torch.set_num_threads(ChatSettings().torch_threads)  # as the chat process does
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--index", type=Path, help="index of the questions' documents")
    ap.add_argument("--questions", type=Path, default=SQUAD)
    ap.add_argument("--offtopic", type=Path, default=OFFTOPIC)
    ap.add_argument("--seed-index", type=Path, help="index of seeds/ (built if missing)")
    ap.add_argument("--no-seed", action="store_true", help="skip the seed index")
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    set_offline_env()

    settings = ChatSettings.from_env()
    questions = load_questions(args.questions)
    offtopic = load_questions(args.offtopic) if args.offtopic.exists() else []
    index = ensure_index(args.index, args.questions.parent / "docs", "questions")
    cases = retrieve_all(index, questions, settings)
    off_main = retrieve_all(index, offtopic, settings) if offtopic else []
    seed_cases: list[Case] = []
    off_seed: list[Case] = []
    if not args.no_seed:
        seed_index = ensure_index(args.seed_index, SEEDS, "seed")
        off_seed = retrieve_all(seed_index, offtopic, settings) if offtopic else []
        seed_qs = [
            {"question": q, "answers": a, "answerable": True, "evidence_doc_ids": []}
            for q, a in SEED_QUESTIONS
        ]
        seed_cases = retrieve_all(seed_index, seed_qs, settings)

    out = answer_all(cases, settings)
    m = metrics(out)
    no_rules = settings.replace(**{r: False for r in RULES}, min_support=0.0, min_dense=-1.0)
    m["gold_selection_only"] = metrics(answer_all(cases, no_rules))["gold_all_answerable"]
    m["declined_offtopic_main"] = rate(answer_all(off_main, settings), lambda o: o.declined)
    m["declined_offtopic_seed"] = rate(answer_all(off_seed, settings), lambda o: o.declined)
    latencies = [o.ms for o in out]
    m["latency_p50_ms"] = percentile(latencies, 0.5)
    m["latency_p95_ms"] = percentile(latencies, 0.95)
    m["retrieve_p95_ms"] = percentile([c.retrieve_ms for c in cases], 0.95)
    m["answer_p95_ms"] = percentile([o.answer_ms for o in out], 0.95)

    n_ans = sum(1 for q in questions if q["answerable"])
    print(f"\n== {args.questions} ({len(questions)} questions, {n_ans} answerable)")
    print(f"   index {index}; off-topic {len(offtopic)} from {args.offtopic}")
    shown = {
        "hits@1": ("retrieval hits@1 after rerank", "hits@1"),
        "hits@5": ("retrieval hits@5 after rerank", "hits@5"),
        "gold_answered": ("answer contains gold, answered answerable", "gold_answered"),
        "gold_all_answerable": ("answer contains gold, all answerable", None),
        "gold_selection_only": ("answer contains gold, refusals off", None),
        "declined_unanswerable": ("declined, unanswerable (near miss)", "declined_unanswerable"),
        "declined_answerable": ("declined, answerable", "declined_answerable"),
        "declined_offtopic_main": ("declined, off-topic vs this index", "declined_offtopic"),
        "declined_offtopic_seed": ("declined, off-topic vs seed index", "declined_offtopic"),
        "latency_p50_ms": ("latency p50 ms (retrieve+rerank+extract)", None),
        "latency_p95_ms": ("latency p95 ms (retrieve+rerank+extract)", "latency_p95_ms"),
        "retrieve_p95_ms": ("  retrieve alone, p95 ms", None),
        "answer_p95_ms": ("  rerank + extract alone, p95 ms", None),
    }
    for key, (label, target_key) in shown.items():
        value = m[key]
        target = ""
        if value != value:  # NaN: nothing measured
            print(f"  {label:<46} {'n/a':>8}")
            continue
        if target_key:
            goal = TARGETS[target_key]
            upper = target_key in ("declined_answerable", "latency_p95_ms")
            ok = value <= goal if upper else value >= goal
            target = f"  target {'<=' if upper else '>='} {goal}  {'ok' if ok else 'MISSED'}"
        print(f"  {label:<46} {value:8.3f}{target}")

    if seed_cases:
        print("\n== seed article (seed index)")
        for o in answer_all(seed_cases, settings):
            q = o.case.question
            status = "declined: " + o.reason if o.declined else ("ok" if o.correct else "WRONG")
            print(f"  {q['question']}\n    -> {o.answer[:150]!r} [{status}]")

    print("\n== refusal rules (min_support, min_dense as set)")
    rules = rules_table(cases, off_main, settings)
    print(
        f"  {'variant':<44} {'gold|ans':>8} {'gold|all':>8} {'decl U':>7} {'decl A':>7} "
        f"{'decl off':>8}"
    )
    for r in rules:
        print(
            f"  {r['variant']:<44} {r['gold_answered']:8.3f} {r['gold_all_answerable']:8.3f} "
            f"{r['declined_unanswerable']:7.3f} {r['declined_answerable']:7.3f} "
            f"{r['declined_offtopic']:8.3f}"
        )

    print("\n== trade-off over min_support (other rules as set)")
    curve = sweep(cases, off_main, settings)
    print(
        f"  {'min_support':>11} {'answered correct':>16} {'declined answerable':>19} "
        f"{'wrongly answered unanswerable':>29} {'declined off-topic':>18}"
    )
    for r in curve:
        mark = "  <= chosen" if r["min_support"] == settings.min_support else ""
        print(
            f"  {r['min_support']:11.3f} {r['answered_correct']:16.3f} "
            f"{r['declined_answerable']:19.3f} {r['wrongly_answered_unanswerable']:29.3f} "
            f"{r['declined_offtopic']:18.3f}{mark}"
        )

    if args.verbose:
        print("\n== misses")
        for o in out:
            q = o.case.question
            if q["answerable"] and not o.correct:
                why = o.reason or o.answer[:120]
                print(f"  A {q['question']!r}: {why} | gold {q['answers'][0]!r}")
            elif not q["answerable"] and not o.declined:
                print(f"  U {q['question']!r}: answered {o.answer[:120]!r}")
        for o in answer_all(off_main, settings):
            if not o.declined:
                print(f"  OFF {o.case.question['question']!r}: answered {o.answer[:120]!r}")

    if args.json:
        payload = {
            "settings": _settings_dict(settings),
            "metrics": m,
            "rules": rules,
            "curve": curve,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    return 0


def _settings_dict(settings: Any) -> dict[str, Any]:
    return {
        f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name != "index"
    }


if __name__ == "__main__":
    raise SystemExit(main())

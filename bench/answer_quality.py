"""Answer quality of the public path, ``Chatbot.answer`` (what the chat page shows), on every
question set, with one calibration: the same settings, the same scoring (``eval.scoring``).

Usage::

    python bench/answer_quality.py                                 # every set, default sweep
    python bench/answer_quality.py --sets seeds,offtopic --sweep min_support=0.2,0.3
    python bench/answer_quality.py --sets squad --limit 30 --sweep none --rules
    python bench/answer_quality.py --json bench/out/answer_quality.json

Sets (``--sets``, comma-separated, or ``all``):

* ``squad``: SQuAD 2.0 dev sample, ``SHARED/eval-data/squad_v2`` (questions over ``docs/``);
* ``multihop``: MultiHop-RAG dev sample, ``SHARED/eval-data/multihop_rag``;
* ``natural``: ``eval/sets/natural.jsonl``, each case against its ``corpus``'s documents
  (seeds -> ``seeds/``, others -> ``SHARED/eval-data/<corpus>/docs``); skipped with a note
  when the file is absent;
* ``seeds``: ``eval/sets/seeds.jsonl`` over ``seeds/``;
* ``offtopic``: ``eval/sets/offtopic.jsonl``, asked against EACH corpus index.

``SHARED`` is ``--shared DIR``, else ``$DOCQA_SHARED_DIR``, else the ``shared`` folder beside
the repository. One index per docs folder is built with ``ingest.ingest_paths`` into
``--cache`` (default ``bench/out/answer_quality/<corpus>``; reingested by difference, so an
unchanged rerun costs a stat per file), opened once and shared by every ``Chatbot`` of the run.

Settings are ``ChatSettings``' defaults with ``DOCQA_*`` overrides (the chat page's: k
passages, every refusal rule). Per set it prints: questions answerable/unanswerable, answered
when answerable, contains a gold answer (over all answerable: a decline is a miss; SQuAD's
normalisation on the answer's prose, as ``python -m eval`` scores it), every evidence document
cited, declined when unanswerable, hits@5 in retrieval order, answerable wrongly declined,
p50/p95 latency of ``answer()``; MultiHop and natural per question type; off-topic declined
per corpus. Then the trade-off curve (``--sweep NAME=v1,v2,...``, default ``min_support``; the
current default marked) and, with ``--rules``, each ``*_check`` refusal rule's exclusive effect.

A benchmark, not a test: it prints the tables and exits 0 (2 for a bad flag).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ingest.config import IngestSettings, SettingsError, set_offline_env  # noqa: E402
from ingest.settings import parse_value  # noqa: E402

if TYPE_CHECKING:
    from chatbot import ChatSettings
    from eval.dataset import EvalCase
    from ingest import DocIndex

SET_NAMES = ("squad", "multihop", "natural", "seeds", "policy", "offtopic")
# corpus name (as eval sets' ``corpus`` field names it) -> short label
CORPUS_LABELS = {
    "squad_v2": "squad",
    "multihop_rag": "multihop",
    "seeds": "seeds",
    "policy": "policy",
}
OFFTOPIC_CORPORA = ("seeds", "squad_v2", "multihop_rag")
DEFAULT_SWEEP = "min_support=0.1,0.15,0.2,0.25,0.3,0.35,0.4"
DEFAULT_CACHE = ROOT / "bench" / "out" / "answer_quality"
NATURAL = ROOT / "eval" / "sets" / "natural.jsonl"
SEEDS_SET = ROOT / "eval" / "sets" / "seeds.jsonl"
POLICY_SET = ROOT / "eval" / "sets" / "policy.jsonl"  # over eval/sets/policy/docs
OFFTOPIC = ROOT / "eval" / "sets" / "offtopic.jsonl"
MULTIHOP_TYPES = ("comparison_query", "inference_query", "temporal_query", "null_query")


# ---- what is asked


@dataclass(frozen=True)
class Ask:
    """One question of one set, against one corpus's index."""

    set: str
    corpus: str
    case: EvalCase

    @property
    def group(self) -> str:
        """Off-topic questions are grouped by the corpus they were asked against."""
        return f"{self.set}@{CORPUS_LABELS[self.corpus]}" if self.set == "offtopic" else self.set


def shared_dir(flag: Path | None) -> Path:
    if flag is not None:
        return flag
    env = os.environ.get("DOCQA_SHARED_DIR")
    return Path(env) if env else ROOT.parent / "shared"


def corpus_docs(corpus: str, shared: Path) -> Path:
    if corpus == "seeds":
        return ROOT / "seeds"
    if corpus == "policy":
        return ROOT / "eval" / "sets" / "policy" / "docs"
    return shared / "eval-data" / corpus / "docs"


def sample(cases: list[EvalCase], limit: int | None) -> list[EvalCase]:
    """At most ``limit`` cases, evenly spaced over the set (the sets are grouped by type,
    so the first N would not be a fair sample)."""
    if limit is None or len(cases) <= limit:
        return cases
    return [cases[i * len(cases) // limit] for i in range(limit)]


def load_asks(names: Sequence[str], shared: Path, limit: int | None) -> tuple[list[Ask], list[str]]:
    """Every question to ask, and notes on what was skipped."""
    from eval.dataset import load_set

    asks: list[Ask] = []
    notes: list[str] = []
    for name in names:
        if name in ("squad", "multihop"):
            corpus = "squad_v2" if name == "squad" else "multihop_rag"
            path = shared / "eval-data" / corpus / "questions.jsonl"
            if not path.exists() or not corpus_docs(corpus, shared).is_dir():
                notes.append(f"{name}: skipped, {path} or its docs/ folder is missing")
                continue
            asks += [Ask(name, corpus, c) for c in sample(load_set(path), limit)]
        elif name == "seeds":
            asks += [Ask(name, "seeds", c) for c in sample(load_set(SEEDS_SET), limit)]
        elif name == "policy":
            asks += [Ask(name, "policy", c) for c in sample(load_set(POLICY_SET), limit)]
        elif name == "natural":
            if not NATURAL.exists():
                notes.append(f"natural: skipped, {NATURAL} does not exist (yet)")
                continue
            cases = sample(load_set(NATURAL), limit)
            skipped: dict[str, int] = {}
            for c in cases:
                if c.corpus in CORPUS_LABELS and corpus_docs(c.corpus, shared).is_dir():
                    asks.append(Ask(name, c.corpus, c))
                else:
                    skipped[c.corpus or "(none)"] = skipped.get(c.corpus or "(none)", 0) + 1
            for corpus, n in skipped.items():
                notes.append(f"natural: {n} case(s) of corpus {corpus!r} skipped (no docs folder)")
        elif name == "offtopic":
            cases = sample(load_set(OFFTOPIC), limit)
            for corpus in OFFTOPIC_CORPORA:
                if not corpus_docs(corpus, shared).is_dir():
                    notes.append(f"offtopic: not asked against {corpus} (no docs folder)")
                    continue
                asks += [Ask(name, corpus, c) for c in cases]
    return asks, notes


# ---- indexes


@dataclass
class Corpus:
    name: str
    docs: Path
    index: IngestSettings
    opened: DocIndex
    documents: int
    chunks: int


def open_corpora(
    names: Sequence[str], shared: Path, base: IngestSettings, cache: Path, fresh: bool
) -> dict[str, Corpus]:
    """Ingest each corpus into its cache folder (by difference) and open it once; the
    indexes share one embedding model."""
    from eval.config import EvalSettings
    from eval.runner import prepare_index
    from ingest import open_index

    out: dict[str, Corpus] = {}
    embeddings = None
    for name in names:
        docs = corpus_docs(name, shared)
        t = time.perf_counter()
        settings = EvalSettings(cache_dir=cache / CORPUS_LABELS[name], progress=False)
        index, info = prepare_index(docs, base, settings, fresh=fresh)
        opened = open_index(index, embeddings=embeddings)
        embeddings = opened.embeddings
        out[name] = Corpus(name, docs, index, opened, info.documents, info.chunks)
        _progress(
            f"index {name}: {info.documents} documents, {info.chunks} chunks in "
            f"{index.index_dir} ({time.perf_counter() - t:.1f} s; {info.ingest_summary})\n"
        )
    return out


# ---- asking and scoring


@dataclass
class Pass:
    """One run over every ask with one set of settings: the scored rows by group."""

    label: str
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def by_set(self, name: str) -> list[dict[str, Any]]:
        return [r for g, rows in self.rows.items() if g.split("@")[0] == name for r in rows]


def run_pass(
    asks: list[Ask], corpora: dict[str, Corpus], settings: ChatSettings, label: str
) -> Pass:
    """Every ask through ``Chatbot.answer``, each answer scored by ``eval.scoring``."""
    from chatbot import Chatbot, QuestionError
    from eval.config import EvalSettings
    from eval.runner import Outcome
    from eval.scoring import ScoreOptions, score_outcome

    opts = ScoreOptions(k=settings.k, min_overlap=EvalSettings().evidence_overlap)
    bots = {
        name: Chatbot(settings.replace(index=c.index), index=c.opened)
        for name, c in corpora.items()
    }
    result = Pass(label)
    start = time.perf_counter()
    groups: dict[str, list[Ask]] = {}
    for a in asks:
        groups.setdefault(a.group, []).append(a)
    for group, items in groups.items():
        t = time.perf_counter()
        rows = result.rows.setdefault(group, [])
        for i, a in enumerate(items, start=1):
            history = [dict(turn) for turn in a.case.history]
            error = ""
            answer = None
            q0 = time.perf_counter()
            try:
                answer = bots[a.corpus].answer(a.case.question, history)
            except QuestionError as exc:
                error = f"refused: {exc}"
            except Exception:  # a crash inside the chatbot: report it, go on
                error = traceback.format_exc()
                result.crashes.append(f"{group} {a.case.id}: {a.case.question!r}\n{error}")
            ms = (time.perf_counter() - q0) * 1000
            row = score_outcome(Outcome(a.case, answer, ms, error), opts)
            row["set"], row["group"], row["asked_corpus"] = a.set, group, a.corpus
            rows.append(row)
            if i % 25 == 0 or i == len(items):
                _progress(f"\r[{label}] {group}: {i}/{len(items)}", tty_only=True)
        _progress(f"\r[{label}] {group}: {len(items)} q in {time.perf_counter() - t:.1f} s\n")
    result.seconds = time.perf_counter() - start
    return result


def warm_up(corpora: dict[str, Corpus], settings: ChatSettings) -> None:
    """Load the model, BM25 and caches before anything is timed."""
    from chatbot import Chatbot

    for c in corpora.values():
        Chatbot(settings.replace(index=c.index), index=c.opened).answer("What is this about?")


# ---- figures


def set_figures(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """A set's figures, all from ``eval.summary.summarize`` over ``score_outcome`` rows."""
    from eval.summary import summarize, summarize_by_type

    met = summarize(rows, k)
    wrongly = sum(1 for r in rows if r["gold"]["answerable"] and r["declined"])
    return {
        "metrics": met,
        "by_type": summarize_by_type(rows),
        "answerable_wrongly_declined": wrongly,
        "n_crashed": sum(1 for r in rows if r["error"] and not r["error"].startswith("refused")),
    }


def headline(rows: list[dict[str, Any]], k: int) -> dict[str, float | None]:
    met = set_figures(rows, k)["metrics"]
    return {
        "answered_when_answerable": met["answered_when_answerable"],
        "answer_contains": met["answer_contains"],
        "refusal_recall": met["refusal_recall"],
    }


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(head: list[str], rows: list[list[str]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = []
    for i, r in enumerate([head, *rows]):
        cells = [
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append(indent + "  ".join(cells).rstrip())
        if i == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_sets(p: Pass, names: list[str], k: int) -> dict[str, Any]:
    """The per-set table (sets as columns), MultiHop/natural by type, off-topic by corpus."""
    figures = {name: set_figures(p.by_set(name), k) for name in names if p.by_set(name)}
    shown = list(figures)
    if not shown:
        print("  nothing was asked")
        return figures

    def row(label: str, get: Callable[[dict[str, Any]], Any], digits: int = 3) -> list[str]:
        return [label, *(fmt(get(figures[n]), digits) for n in shown)]

    m = "metrics"
    lines = [
        row("questions", lambda f: f[m]["n_questions"]),
        row(
            "  answerable / unanswerable",
            lambda f: f"{f[m]['n_answerable']}/{f[m]['n_unanswerable']}",
        ),
        row("answered when answerable", lambda f: f[m]["answered_when_answerable"]),
        row("contains gold (all answerable)", lambda f: f[m]["answer_contains"]),
        row("short answer EM", lambda f: f[m].get("short_em")),
        row("short answer F1", lambda f: f[m].get("short_f1")),
        row("every evidence doc cited", lambda f: f[m]["evidence_docs_cited"]),
        row("declined when unanswerable", lambda f: f[m]["refusal_recall"]),
        row(f"hits@{min(5, k)}, retrieval order", lambda f: f[m][f"hits@{min(5, k)}"]),
        row(f"hits@{min(5, k)}, shown [n] order", lambda f: f[m][f"shown_hits@{min(5, k)}"]),
        row("answerable wrongly declined", lambda f: f["answerable_wrongly_declined"]),
        row("citation precision", lambda f: f[m]["citation_precision"]),
        row("answer() p50 ms", lambda f: f[m]["latency_p50_ms"], 1),
        row("answer() p95 ms", lambda f: f[m]["latency_p95_ms"], 1),
        row("crashed inside the chatbot", lambda f: f["n_crashed"]),
    ]
    print(table(["", *shown], lines))
    for name in ("multihop", "natural"):
        if name in figures:
            print(f"\n  {name} by question type:")
            print(
                type_table(figures[name]["by_type"], MULTIHOP_TYPES if name == "multihop" else ())
            )
    if "offtopic" in figures:
        print("\n  off-topic declined, per corpus index:")
        cells = []
        for group, rows in p.rows.items():
            if group.startswith("offtopic@"):
                met = set_figures(rows, k)["metrics"]
                cells.append([group.split("@")[1], str(len(rows)), fmt(met["refusal_recall"])])
                figures["offtopic"].setdefault("by_corpus", {})[group.split("@")[1]] = met[
                    "refusal_recall"
                ]
        print(table(["corpus", "n", "declined"], cells))
    return figures


def type_table(by_type: dict[str, dict[str, Any]], order: Sequence[str]) -> str:
    kinds = [t for t in order if t in by_type] + [t for t in by_type if t not in order]
    head = ["type", "n", "answered", "contains gold", "all evidence cited", "declined (unans.)"]
    rows = [
        [
            kind,
            str(by_type[kind]["n"]),
            fmt(by_type[kind]["answered_when_answerable"]),
            fmt(by_type[kind]["answer_contains"]),
            fmt(by_type[kind]["evidence_docs_cited"]),
            fmt(by_type[kind]["refusal_recall"]),
        ]
        for kind in kinds
    ]
    return table(head, rows, indent="    ")


# ---- sweep and rules


def parse_sweep(spec: str, settings: ChatSettings) -> tuple[str, list[Any]] | None:
    """``NAME=v1,v2,...`` -> (NAME, typed values); ``none`` -> None. Raises ValueError
    naming the bad part."""
    if spec.strip().lower() == "none":
        return None
    name, sep, raw = spec.partition("=")
    name = name.strip()
    tunable = {
        f.name: type(getattr(settings, f.name))
        for f in dataclasses.fields(settings)
        if isinstance(getattr(settings, f.name), bool | int | float)
    }
    if not sep or not raw.strip():
        raise ValueError(f"--sweep {spec!r}: expected NAME=v1,v2,... or none")
    if name not in tunable:
        raise ValueError(
            f"--sweep {spec!r}: {name!r} is not a numeric or boolean ChatSettings field "
            f"(one of: {', '.join(sorted(tunable))})"
        )
    values = []
    for part in raw.split(","):
        try:
            value = parse_value(name, part.strip(), tunable[name])
            settings.replace(**{name: value})  # validates the range
        except SettingsError as exc:
            raise ValueError(f"--sweep {spec!r}: {exc}") from None
        values.append(value)
    return name, values


def rule_names(settings: ChatSettings) -> list[str]:
    """Every boolean refusal rule: the bool ``ChatSettings`` fields named ``*_check``."""
    return [
        f.name
        for f in dataclasses.fields(settings)
        if f.name.endswith("_check") and isinstance(getattr(settings, f.name), bool)
    ]


def declined_ids(p: Pass) -> dict[str, dict[str, tuple[bool, bool, bool]]]:
    """Per group, per case id: (answerable, declined, contains gold)."""
    return {
        g: {
            r["id"]: (r["gold"]["answerable"], r["declined"], bool(r["scores"]["answer_contains"]))
            for r in rows
        }
        for g, rows in p.rows.items()
    }


def rule_effect(all_on: Pass, off: Pass, names: list[str]) -> dict[str, dict[str, int]]:
    """Per set: the answerable questions the rule alone declines (declined with every rule
    on, answered with this one off), how many of those the answer without the rule got
    right, and the unanswerable ones it alone declines."""
    on, without = declined_ids(all_on), declined_ids(off)
    out: dict[str, dict[str, int]] = {}
    for name in names:
        eff = {"killed_answerable": 0, "killed_correct": 0, "declined_unanswerable": 0}
        for group in on:
            if group.split("@")[0] != name:
                continue
            for qid, (answerable, declined, _) in on[group].items():
                _, declined_off, correct_off = without[group][qid]
                if declined and not declined_off:
                    if answerable:
                        eff["killed_answerable"] += 1
                        eff["killed_correct"] += int(correct_off)
                    else:
                        eff["declined_unanswerable"] += 1
        out[name] = eff
    return out


# ---- main


def _progress(text: str, *, tty_only: bool = False) -> None:
    if tty_only and not sys.stderr.isatty():
        return
    sys.stderr.write(text)
    sys.stderr.flush()


def _settings_dict(settings: ChatSettings) -> dict[str, Any]:
    return {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name not in ("index", "llm_api_key", "login_password")
    }


def _rows_for_json(p: Pass) -> list[dict[str, Any]]:
    return [
        {**r, "retrieved": [{k: v for k, v in x.items() if k != "text"} for x in r["retrieved"]]}
        for rows in p.rows.values()
        for r in rows
    ]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument(
        "--sets",
        default="all",
        help=f"comma-separated, of {', '.join(SET_NAMES)}; or all (default)",
    )
    ap.add_argument("--limit", type=int, help="at most N questions per set (evenly spaced)")
    ap.add_argument(
        "--shared", type=Path, help="the shared folder (default $DOCQA_SHARED_DIR or ../shared)"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where indexes live")
    ap.add_argument("--fresh", action="store_true", help="rebuild the indexes")
    ap.add_argument(
        "--sweep",
        default=DEFAULT_SWEEP,
        help=f"NAME=v1,v2,...: rerun every set per value (default {DEFAULT_SWEEP}); none",
    )
    ap.add_argument("--rules", action="store_true", help="each *_check rule off vs all on, per set")
    ap.add_argument("--json", type=Path, help="write every figure and row here")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every miss")
    return ap


def main(argv: list[str] | None = None) -> int:
    import logging

    ap = build_parser()
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    set_offline_env()

    from chatbot import ChatSettings

    names = list(SET_NAMES) if args.sets == "all" else [s.strip() for s in args.sets.split(",")]
    bad = [n for n in names if n not in SET_NAMES]
    if bad or not names:
        ap.error(f"--sets {args.sets!r}: unknown set(s) {bad}; choose from {', '.join(SET_NAMES)}")
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1, got {args.limit}")
    settings = ChatSettings.from_env(index=IngestSettings.from_env(progress=False))
    try:
        sweep = parse_sweep(args.sweep, settings)
    except ValueError as exc:
        ap.error(str(exc))
    shared = shared_dir(args.shared)

    asks, notes = load_asks(names, shared, args.limit)
    if not asks:
        print("nothing to ask: " + "; ".join(notes or ["the selected sets are empty"]))
        return 0
    needed = [c for c in CORPUS_LABELS if any(a.corpus == c for a in asks)]
    corpora = open_corpora(needed, shared, settings.index, args.cache, args.fresh)
    warm_up(corpora, settings)

    k = settings.k
    print(
        f"\n== answer quality: Chatbot.answer, answerer {settings.answerer}, k={k}, "
        f"min_dense={settings.min_dense}, min_support={settings.min_support}"
    )
    print(f"   shared data {shared}; indexes under {args.cache}")
    for c in corpora.values():
        print(f"   {c.name}: {c.docs} ({c.documents} documents, {c.chunks} chunks)")
    for note in notes:
        print(f"   note: {note}")

    main_pass = run_pass(asks, corpora, settings, "default")
    n_asked = sum(len(r) for r in main_pass.rows.values())
    print(f"\n== per set (default settings; {n_asked} answers in {main_pass.seconds:.0f} s)")
    figures = print_sets(main_pass, names, k)
    payload: dict[str, Any] = {
        "settings": _settings_dict(settings),
        "shared": str(shared),
        "notes": notes,
        "sets": figures,
        "seconds_per_pass": round(main_pass.seconds, 1),
    }

    if sweep is not None:
        name, values = sweep
        current = getattr(settings, name)
        points = list(values) + ([] if current in values else [current])
        passes = {}
        for value in points:
            if value == current:
                passes[value] = main_pass
            else:
                passes[value] = run_pass(
                    asks, corpora, settings.replace(**{name: value}), f"{name}={value}"
                )
        payload["sweep"] = print_sweep(name, points, current, passes, names, k)
        payload["sweep_crashes"] = sum(len(p.crashes) for p in passes.values())

    if args.rules:
        rules = rule_names(settings)
        all_on_settings = settings.replace(**{r: True for r in rules})
        all_on = main_pass
        if all_on_settings != settings:
            all_on = run_pass(asks, corpora, all_on_settings, "all rules on")
        effects = {}
        for rule in rules:
            off = run_pass(asks, corpora, all_on_settings.replace(**{rule: False}), f"{rule} off")
            effects[rule] = rule_effect(all_on, off, [n for n in names if all_on.by_set(n)])
        payload["rules"] = effects
        print_rules(effects, all_on, [n for n in names if all_on.by_set(n)])

    if args.verbose:
        print_misses(main_pass)
    if main_pass.crashes:
        print(f"\n== {len(main_pass.crashes)} answer(s) crashed inside the chatbot; the first:")
        print(main_pass.crashes[0])
    payload["crashes"] = main_pass.crashes
    if args.json:
        payload["rows"] = _rows_for_json(main_pass)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        print(f"\nwrote {args.json}")
    for c in corpora.values():
        c.opened.close()
    return 0


def print_sweep(
    name: str,
    points: list[Any],
    current: Any,
    passes: dict[Any, Pass],
    names: list[str],
    k: int,
) -> list[dict[str, Any]]:
    shown = [n for n in names if n != "offtopic" and passes[current].by_set(n)]
    print(f"\n== trade-off over {name} (other settings as set; * = the current default)")
    print(
        "   per set: answered when answerable / contains gold (all answerable) / declined "
        "when unanswerable; off-topic: declined"
    )
    out = []
    rows = []
    for value in sorted(points):
        p = passes[value]
        cells = [f"{value}{' *' if value == current else ''}"]
        entry: dict[str, Any] = {"value": value, "default": value == current, "sets": {}}
        for n in shown:
            h = headline(p.by_set(n), k)
            entry["sets"][n] = h
            cells.append(
                " ".join(
                    fmt(h[key], 2)
                    for key in ("answered_when_answerable", "answer_contains", "refusal_recall")
                )
            )
        if p.by_set("offtopic"):
            off = headline(p.by_set("offtopic"), k)["refusal_recall"]
            entry["offtopic_declined"] = off
            cells.append(fmt(off, 2))
        entry["seconds"] = round(p.seconds, 1)
        out.append(entry)
        rows.append(cells)
    head = [name, *(f"{n} ans/gold/decl" for n in shown)]
    if passes[current].by_set("offtopic"):
        head.append("off-topic")
    print(table(head, rows))
    return out


def print_rules(
    effects: dict[str, dict[str, dict[str, int]]], all_on: Pass, names: list[str]
) -> None:
    print("\n== refusal rules: each *_check off vs all on (rule-exclusive counts)")
    print(
        "   per set: answerable questions the rule alone declines (of them, right without "
        "the rule) / unanswerable ones it alone declines"
    )
    rows = []
    for rule, per_set in effects.items():
        cells = [rule]
        for n in names:
            e = per_set[n]
            if n == "offtopic":
                cells.append(str(e["declined_unanswerable"]))
            else:
                cells.append(
                    f"{e['killed_answerable']} ({e['killed_correct']}) / "
                    f"{e['declined_unanswerable']}"
                )
        rows.append(cells)
    head = ["rule"]
    for n in names:
        rows_n = all_on.by_set(n)
        answerable = sum(1 for r in rows_n if r["gold"]["answerable"])
        head.append(f"{n} (A{answerable}/U{len(rows_n) - answerable})")
    print(table(head, rows))


def print_misses(p: Pass) -> None:
    print("\n== misses (default settings)")
    for group, rows in p.rows.items():
        for r in rows:
            text = " ".join((r["error"] or r["answer"]["text"]).split())[:140]
            if r["gold"]["answerable"] and not r["scores"]["answer_contains"]:
                print(
                    f"  {group} {r['id']} A {r['question']!r}: {text} | gold "
                    f"{r['gold']['answers'][0]!r}"
                )
            elif not r["gold"]["answerable"] and not r["declined"]:
                print(f"  {group} {r['id']} U {r['question']!r}: answered {text!r}")


if __name__ == "__main__":
    raise SystemExit(main())

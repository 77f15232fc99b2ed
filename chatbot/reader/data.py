"""Training examples for the reader from ``qa-train/``: SQuAD-style spans, their unanswerable
questions, and near-miss negatives made from answerable data (another paragraph of the same
article, the retrieval neighbour the embedding model ranks first, a sentence that does not
answer), each cut into the windows the reader sees at answer time."""

from __future__ import annotations

import gzip
import json
import logging
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chatbot.reader.answer import sentence_around
from chatbot.reader.features import Featurizer

logger = logging.getLogger(__name__)

# Sources whose titles group several paragraphs of one article: another paragraph of the same
# title is a near miss (qa-train's README: not covid_qa, weak for amazon and reddit).
NEAR_MISS_SOURCES = (
    "squad2_train",
    "squad11_train",
    "squadshifts_wiki",
    "xquad_en",
    "squad2_dev_half",
)
LONG_CONTEXT_CHARS = 1500  # covid_qa papers: a window of this many characters around the answer


@dataclass(frozen=True)
class Example:
    """A question over one passage; ``answers`` empty when the passage does not answer it."""

    question: str
    context: str
    answers: tuple[tuple[str, int], ...]
    kind: str  # span, unanswerable, same-title, neighbour, sentence


@dataclass
class Mix:
    """How many examples of each kind the training sample takes (None: all there are)."""

    per_source: dict[str, int | None] = field(
        default_factory=lambda: {
            "squad2_train": None,
            "squad11_train": None,
            "xquad_en": None,
            "squad2_dev_half": None,
            "squadshifts_wiki": 4000,
            "squadshifts_amazon": 2000,
            "squadshifts_reddit": 2000,
            "covid_qa": 600,
        }
    )
    same_title: int = 4000
    neighbours: int = 1500
    sentences: int = 1500
    typed: float = 0.25  # share of questions lower-cased without '?', as people type
    answer_sentences: int = 0  # span questions also asked of the sentence holding the answer
    typos: float = 0.0  # share of (typed) questions with a misspelt word or two
    keywords: float = 0.0  # share of questions cut to their content words ("opioid epidemic")

    def scaled(self, factor: float) -> Mix:
        """The same proportions, ``factor`` times as many (a tiny test run, or a GPU run)."""
        scale = {
            k: (None if v is None and factor >= 1 else int((v if v is not None else 5000) * factor))
            for k, v in self.per_source.items()
        }
        return Mix(
            per_source=scale,
            same_title=int(self.same_title * factor),
            neighbours=int(self.neighbours * factor),
            sentences=int(self.sentences * factor),
            answer_sentences=int(self.answer_sentences * factor),
            typed=self.typed,
            typos=self.typos,
            keywords=self.keywords,
        )


def read_jsonl(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None


def contains_answer(context: str, answers: Iterable[str]) -> bool:
    low = context.lower()
    return any(a.strip().lower() in low for a in answers if a.strip())


def _window_around(context: str, start: int, end: int, rng: random.Random) -> tuple[str, int]:
    """A slice of a long context holding [start, end), cut at spaces; returns it and its shift."""
    room = max(LONG_CONTEXT_CHARS - (end - start), 0)
    left = max(0, start - rng.randint(0, room))
    right = min(len(context), left + LONG_CONTEXT_CHARS)
    while left > 0 and not context[left - 1].isspace():
        left -= 1
    while right < len(context) and not context[right].isspace():
        right += 1
    return context[left:right], left


def typed_like_people(question: str) -> str:
    """'What is the capital of France?' -> 'what is the capital of france'."""
    return re.sub(r"\s*\?+\s*$", "", question.strip()).lower()


def misspell(question: str, rng: random.Random, words: int = 2) -> str:
    """Up to ``words`` words of five letters or more get one slip each (a letter dropped,
    doubled or swapped with its neighbour), as in 'who is jef sesions'."""
    tokens = question.split(" ")
    cores = [t.rstrip("?.,!") for t in tokens]
    long = [i for i, c in enumerate(cores) if len(c) >= 5 and c.isalpha()]
    for i in rng.sample(long, min(words, len(long))):
        t, tail = cores[i], tokens[i][len(cores[i]) :]
        at = rng.randrange(1, len(t) - 1)
        slip = rng.choice(("drop", "double", "swap"))
        if slip == "swap" and t[at - 1] == t[at]:
            slip = "drop"  # swapping 'ss' changes nothing
        if slip == "drop":
            t = t[:at] + t[at + 1 :]
        elif slip == "double":
            t = t[:at] + t[at] + t[at:]
        else:
            t = t[: at - 1] + t[at] + t[at - 1] + t[at + 1 :]
        tokens[i] = t + tail
    return " ".join(tokens)


_QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how is are was were do does did the a an of in on"
    " to for by at with from and or as be been it its this that there their can could should"
    " would will much many i me my we our you your".split()
)


def keywords_only(question: str) -> str:
    """'What caused the opioid epidemic?' -> 'caused opioid epidemic' (a search-box query)."""
    words = re.findall(r"[\w'-]+", question)
    kept = [w for w in words if w.lower() not in _QUESTION_WORDS]
    return " ".join(kept) if len(kept) >= 2 else question


def as_people_type(question: str, mix: Mix, rng: random.Random) -> str:
    """The question as ``mix`` says people type it: cut to keywords, lower-cased without '?',
    with slips of the finger, or as written."""
    if mix.keywords and rng.random() < mix.keywords:
        question = keywords_only(question)
    if rng.random() < mix.typed:
        question = typed_like_people(question)
    if mix.typos and rng.random() < mix.typos:
        question = misspell(question, rng)
    return question


def load_examples(qa_dir: Path, mix: Mix, seed: int = 13) -> tuple[list[Example], dict[str, int]]:
    """The sampled examples (spans, unanswerable, same-title and sentence near misses) and a
    count per kind and source. Retrieval-neighbour negatives are added by ``add_neighbours``."""
    rng = random.Random(seed)
    span_path = qa_dir / "span.jsonl.gz"
    if not span_path.exists():
        raise FileNotFoundError(f"training data not found: {span_path} (set --data DIR)")
    by_source: dict[str, list[dict]] = defaultdict(list)
    for row in read_jsonl(span_path):
        by_source[row["source"]].append(row)
    examples: list[Example] = []
    counts: dict[str, int] = defaultdict(int)
    by_title: dict[str, list[str]] = defaultdict(list)
    picked_rows: list[dict] = []
    for source in sorted(by_source):
        rows = by_source[source]
        for row in rows:
            if source in NEAR_MISS_SOURCES and row["context"] not in by_title[row["title"]]:
                by_title[row["title"]].append(row["context"])
        limit = mix.per_source.get(source, 0)
        chosen = rows if limit is None else rng.sample(rows, min(limit, len(rows)))
        for row in chosen:
            answers = tuple((a["text"], int(a["start"])) for a in row["answers"])
            context = row["context"]
            if len(context) > LONG_CONTEXT_CHARS and answers:
                text, start = answers[0]
                context, shift = _window_around(context, start, start + len(text), rng)
                answers = tuple(
                    (t, s - shift)
                    for t, s in answers
                    if 0 <= s - shift and s - shift + len(t) <= len(context)
                )
            elif len(context) > LONG_CONTEXT_CHARS:
                continue
            kind = "span" if answers else "unanswerable"
            examples.append(Example(row["question"], context, answers, kind))
            counts[f"{kind}:{source}"] += 1
            if answers and source in NEAR_MISS_SOURCES:
                picked_rows.append(row)
    # Near misses: the question against another paragraph of its article without its answer.
    rng.shuffle(picked_rows)
    made = 0
    for row in picked_rows:
        if made >= mix.same_title:
            break
        gold = [a["text"] for a in row["answers"]]
        others = [
            c
            for c in by_title[row["title"]]
            if c != row["context"] and not contains_answer(c, gold)
        ]
        if others:
            examples.append(Example(row["question"], rng.choice(others), (), "same-title"))
            made += 1
    counts["same-title"] = made
    # Sentences that do not answer (SelQA, QNLI: label 0), short passages like a chunk's line.
    negatives = [r for r in read_jsonl(qa_dir / "pairs.jsonl") if int(r["label"]) == 0]
    for row in rng.sample(negatives, min(mix.sentences, len(negatives))):
        examples.append(Example(row["question"], row["sentence"], (), "sentence"))
    counts["sentence"] = min(mix.sentences, len(negatives))
    # Sentences that answer: a span question asked of the sentence holding its answer alone.
    # Without them every one-sentence passage in the data is a negative (above), and the
    # model learns a short passage as a sign of "no answer" ("The harbour office opens at
    # nine." declined for "When does the harbour office open?").
    spans = [e for e in examples if e.kind == "span"]
    made = 0
    for e in rng.sample(spans, min(mix.answer_sentences, len(spans))):
        text, start = e.answers[0]
        a, b = sentence_around(e.context, start, start + len(text))
        if b - a < len(e.context):
            examples.append(Example(e.question, e.context[a:b], ((text, start - a),), "answer"))
            made += 1
    if mix.answer_sentences:
        counts["answer-sentence"] = made
    return examples, dict(counts)


def add_neighbours(
    examples: list[Example], mix: Mix, embed: callable, seed: int = 13
) -> tuple[list[Example], int]:
    """For a sample of answerable questions, the paragraph the embedding model ranks first
    among all other paragraphs that hold none of its answers: what retrieval hands the reader
    when the answer is elsewhere (or nowhere)."""
    import numpy as np

    rng = random.Random(seed + 1)
    answerable = [e for e in examples if e.kind == "span" and len(e.context) <= LONG_CONTEXT_CHARS]
    if not answerable or mix.neighbours <= 0:
        return [], 0
    sample = rng.sample(answerable, min(mix.neighbours, len(answerable)))
    contexts = sorted({e.context for e in answerable})
    if len(contexts) > 6000:
        keep = set(rng.sample(contexts, 6000)) | {e.context for e in sample}
        contexts = sorted(keep)
    logger.info(
        "embedding %d paragraphs and %d questions for neighbour negatives",
        len(contexts),
        len(sample),
    )
    cvec = np.asarray(embed(contexts), dtype=np.float32)
    qvec = np.asarray(embed([e.question for e in sample]), dtype=np.float32)
    scores = qvec @ cvec.T
    out: list[Example] = []
    for row, example in enumerate(sample):
        gold = [a for a, _ in example.answers]
        for j in np.argsort(-scores[row])[:10]:
            context = contexts[int(j)]
            if context != example.context and not contains_answer(context, gold):
                out.append(Example(example.question, context, (), "neighbour"))
                break
    return out, len(out)


@dataclass(frozen=True)
class Feature:
    ids: list[int]
    type_ids: list[int]
    start: int  # token index of the answer start, 0 ([CLS]) when the window holds none
    end: int


def featurize(
    examples: list[Example],
    featurizer: Featurizer,
    rng: random.Random,
    keep_empty_windows: float = 0.4,
    mix: Mix | None = None,
) -> list[Feature]:
    """Training windows, each question typed as ``mix`` says (default ``Mix()``: a quarter
    lower-cased). An answerable example's windows without its answer are kept with
    probability ``keep_empty_windows`` (as no-answer windows: a chunk of the right paragraph
    that misses the answer); an unanswerable example keeps its first window and a random one."""
    mix = mix or Mix()
    cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
    out: list[Feature] = []
    for example in examples:
        question = as_people_type(example.question, mix, rng)
        if example.context not in cache:
            if len(cache) > 20000:
                cache.clear()
            cache[example.context] = featurizer.passage_tokens(example.context)
        ids, offsets = cache[example.context]
        windows = featurizer.windows(featurizer.question_ids(question), ids, offsets)
        if not example.answers:
            chosen = windows[:1] + ([rng.choice(windows[1:])] if len(windows) > 1 else [])
            out.extend(Feature(w.ids, w.type_ids, 0, 0) for w in chosen)
            continue
        text, char_start = example.answers[0]
        char_end = char_start + len(text)
        for window in windows:
            first = window.context_start
            start = end = None
            for i in range(first, len(window.ids) - 1):
                lo, hi = window.offsets[i]
                if start is None and lo <= char_start < hi or (start is None and lo >= char_start):
                    start = i
                if lo < char_end:
                    end = i
            inside = (
                start is not None
                and end is not None
                and end >= start
                and window.offsets[first][0] <= char_start
                and window.offsets[len(window.ids) - 2][1] >= char_end
            )
            if inside:
                out.append(Feature(window.ids, window.type_ids, start, end))
            elif rng.random() < keep_empty_windows:
                out.append(Feature(window.ids, window.type_ids, 0, 0))
    return out

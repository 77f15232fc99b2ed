"""The reader's training side: windows, training examples and near misses, a tiny training
run whose loss falls, and an ONNX export whose logits match torch's."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from chatbot.reader.data import (
    Example,
    Mix,
    as_people_type,
    featurize,
    keywords_only,
    load_examples,
    misspell,
    typed_like_people,
)
from chatbot.reader.features import Featurizer, load_tokenizer
from ingest.embeddings import model_path

PARAGRAPHS = {
    "Leave": [
        "Every employee gets 20 days of paid vacation a year. Unused days roll over up to a "
        "cap of 27 days.",
        "Sick leave is paid in full for the first 20 working days. After that, statutory sick "
        "pay applies.",
        "Parents get 16 weeks of paid parental leave, to be taken within the first year.",
    ],
    "Devices": [
        "New starters receive a laptop on their first day. Laptops are replaced every three years.",
        "Phones are not provided, but a monthly allowance of $50 covers a personal phone plan.",
    ],
}
QUESTIONS = [
    ("Leave", 0, "How many vacation days do employees get?", "20 days"),
    ("Leave", 0, "What is the rollover cap?", "27 days"),
    ("Leave", 1, "How long is sick leave paid in full?", "the first 20 working days"),
    ("Leave", 2, "How long is parental leave?", "16 weeks"),
    ("Devices", 0, "How often are laptops replaced?", "every three years"),
    ("Devices", 1, "How much is the phone allowance?", "$50"),
]


def tokenizer():
    return load_tokenizer(model_path("all-MiniLM-L6-v2") / "tokenizer.json")


def qa_dir(tmp_path: Path, copies: int = 1) -> Path:
    """A tiny qa-train folder in the shipped schema."""
    root = tmp_path / "qa-train"
    root.mkdir()
    rows = []
    for n in range(copies):
        for i, (title, p, question, answer) in enumerate(QUESTIONS):
            context = PARAGRAPHS[title][p]
            rows.append(
                {
                    "id": f"q{n}-{i}",
                    "source": "squad2_train",
                    "title": title,
                    "context": context,
                    "question": question,
                    "answers": [{"text": answer, "start": context.index(answer)}],
                    "answerable": True,
                }
            )
    rows.append(
        {
            "id": "u1",
            "source": "squad2_train",
            "title": "Leave",
            "context": PARAGRAPHS["Leave"][0],
            "question": "How many days of gym leave are there?",
            "answers": [],
            "answerable": False,
        }
    )
    with gzip.open(root / "span.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in rows)
    pairs = [
        {
            "id": "p1",
            "source": "selqa",
            "question": "Who founded the company?",
            "sentence": "The office is in Leeds.",
            "label": 0,
        },
        {
            "id": "p2",
            "source": "selqa",
            "question": "Where is the office?",
            "sentence": "The office is in Leeds.",
            "label": 1,
        },
    ]
    (root / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs), "utf-8")
    return root


def test_windows_cover_the_passage_with_offsets_into_it() -> None:
    featurizer = Featurizer(tokenizer(), max_tokens=80, stride=16)
    passage = " ".join(f"Sentence {i} says the fee is {i * 10} dollars." for i in range(30))
    windows = featurizer.featurize("What is the fee?", [passage])
    assert len(windows) > 3
    covered = set()
    for w in windows:
        assert len(w.ids) <= 80
        assert w.ids[0] == featurizer.cls_id and w.ids[-1] == featurizer.sep_id
        first = w.context_start
        for i in range(first, len(w.ids) - 1):
            a, b = w.offsets[i]
            covered.add(a)
            piece = passage[a:b].lower()
            token = featurizer.tokenizer.id_to_token(w.ids[i]).removeprefix("##")
            assert piece == token or token == "[UNK]"
    word_starts = {
        i for i, c in enumerate(passage) if c.isalnum() and (i == 0 or passage[i - 1] == " ")
    }
    assert word_starts <= covered


def test_training_examples_have_near_misses_without_the_answer(tmp_path: Path) -> None:
    mix = Mix(
        per_source={"squad2_train": None}, same_title=50, neighbours=0, sentences=5, typed=0.0
    )
    examples, counts = load_examples(qa_dir(tmp_path), mix, seed=1)
    near = [e for e in examples if e.kind == "same-title"]
    assert near and counts["same-title"] == len(near)
    gold = {q: a for _, _, q, a in QUESTIONS}
    for e in near:
        assert gold[e.question].lower() not in e.context.lower()
    assert counts["unanswerable:squad2_train"] == 1
    sentences = [e for e in examples if e.kind == "sentence"]
    assert [e.context for e in sentences] == ["The office is in Leeds."]
    assert sentences[0].question == "Who founded the company?"  # label 0 only


def test_features_point_at_the_answer_tokens() -> None:
    featurizer = Featurizer(tokenizer(), max_tokens=64, stride=16)
    context = PARAGRAPHS["Leave"][0] + " " + " ".join(["Filler words here."] * 30)
    example = Example(
        "How many vacation days?", context, (("20 days", context.index("20 days")),), "span"
    )
    features = featurize(
        [example], featurizer, random.Random(0), keep_empty_windows=1.0, mix=Mix(typed=0.0)
    )
    with_answer = [f for f in features if f.start > 0]
    assert len(with_answer) == 1 and len(features) > 1
    f = with_answer[0]
    words = featurizer.tokenizer.decode(f.ids[f.start : f.end + 1])
    assert words == "20 days"
    assert all(f.start == f.end == 0 for f in features if f is not with_answer[0])


def test_questions_typed_like_people() -> None:
    assert typed_like_people("How Much Vacation do I get? ") == "how much vacation do i get"
    assert keywords_only("What caused the opioid epidemic?") == "caused opioid epidemic"
    assert keywords_only("Who is he?") == "Who is he?"  # nothing left to search: as written


def test_misspelt_questions_slip_one_letter_in_long_words_only() -> None:
    rng = random.Random(5)
    q = "Who is Jeff Sessions?"
    seen = {misspell(q, rng) for _ in range(40)}
    assert q not in seen and len(seen) > 5
    for typed in seen:
        who, is_, jeff, sessions = typed.split(" ")
        assert (who, is_, jeff) == ("Who", "is", "Jeff")  # short words keep their letters
        assert sessions.endswith("?") and abs(len(sessions) - len("Sessions?")) <= 1
    assert misspell("Who is he?", rng) == "Who is he?"


def test_the_mix_says_how_often_questions_are_typed_each_way() -> None:
    rng = random.Random(2)
    q = "How much vacation do I get?"
    plain = {as_people_type(q, Mix(typed=0.0), rng) for _ in range(20)}
    assert plain == {q}
    mixed = [as_people_type(q, Mix(typed=0.5, typos=0.5, keywords=0.3), rng) for _ in range(200)]
    assert any(m == "how much vacation do i get" for m in mixed)
    assert any(m.startswith("vacation") or m.startswith("much vacation") for m in mixed)
    assert any(len(m) != len(q) and "?" in m and m.split()[0] == "How" for m in mixed)


@pytest.mark.model
def test_a_tiny_training_run_lowers_the_loss_and_exports_matching_onnx(tmp_path: Path) -> None:
    from chatbot.reader.export import compare, export_onnx
    from chatbot.reader.train import train

    report = train(
        qa_dir(tmp_path, copies=8),
        tmp_path / "run",
        scale=1.0,
        batch_size=8,
        lr=2e-4,
        neighbours=False,
        max_steps=30,
        seed=3,
    )
    curve = [loss for _, loss in report["loss_curve"]]
    assert report["steps"] == 30 and report["examples"]["span:squad2_train"] == 48
    assert curve[-1] < 0.6 * curve[0], curve
    assert (tmp_path / "run" / "loss.svg").read_text().startswith("<svg")
    onnx_file = tmp_path / "reader.onnx"
    export_onnx(tmp_path / "run" / "weights", onnx_file)
    diffs = compare(
        tmp_path / "run" / "weights",
        {"fp32": onnx_file},
        model_path("all-MiniLM-L6-v2") / "tokenizer.json",
    )
    assert diffs["fp32"] < 1e-3


def test_span_questions_are_also_asked_of_the_lone_sentence_holding_the_answer(
    tmp_path: Path,
) -> None:
    mix = Mix(
        per_source={"squad2_train": None},
        same_title=0,
        neighbours=0,
        sentences=0,
        answer_sentences=3,
        typed=0.0,
    )
    examples, counts = load_examples(qa_dir(tmp_path), mix, seed=1)
    lone = [e for e in examples if e.kind == "answer"]
    assert lone and counts["answer-sentence"] == len(lone) <= 3
    whole = {e.question: e.context for e in examples if e.kind == "span"}
    for e in lone:
        (text, start), *_ = e.answers
        assert e.context[start : start + len(text)] == text
        assert e.context in whole[e.question] and len(e.context) < len(whole[e.question])

"""The shipped reader model (chatbot/reader/model): it answers a handbook question with the
short span, declines a question the paragraph does not answer, its offsets resolve to the
quoted text, and the chat process answers with it without loading torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.reader.model_dir import MODEL_DIR
from chatbot.reader.onnx_reader import MODEL_FILE, get_reader, model_config

from .conftest import subprocess_env, write

HANDBOOK = (
    "# Time off\n\n"
    "Every full-time employee gets 20 days of vacation and personal days each year, on top "
    "of public holidays. Up to five unused days roll over to the next year, so nobody holds "
    "more than 27 days at once. Book time off in the HR system at least two weeks ahead.\n\n"
    "# Health insurance\n\n"
    "The company pays 100% of the premium for employees and 75% for their dependants. You "
    "may be asked to provide documentation to support your request for reimbursement of "
    "medical costs abroad.\n"
)


def test_the_shipped_files_are_there_and_small() -> None:
    config = model_config()
    onnx = MODEL_DIR / config["file"]
    assert config["file"] == MODEL_FILE and onnx.exists()
    assert onnx.stat().st_size <= 30 * 1024 * 1024
    assert (MODEL_DIR / "tokenizer.json").exists() and (MODEL_DIR / "MODEL_CARD.md").exists()
    assert isinstance(config["threshold"], float)


def test_the_reader_answers_the_vacation_question_and_not_the_gym_one() -> None:
    reader = get_reader()
    threshold = float(model_config()["threshold"])
    paragraphs = [p for p in HANDBOOK.split("\n\n") if not p.startswith("#")]
    spans = reader.read("how much vacation do I get?", paragraphs)
    best = max((s for s in spans if s), key=lambda s: s.margin)
    assert best.text == "20 days" and best.margin >= threshold
    assert paragraphs[best.passage][best.start : best.end] == best.text
    gym = reader.read("Is there a gym membership reimbursement?", paragraphs)
    assert max(s.margin for s in gym if s) < threshold


@pytest.mark.model
def test_the_chat_process_answers_with_the_reader_without_torch(tmp_path: Path) -> None:
    docs = tmp_path / "handbook"
    write(docs / "handbook.md", HANDBOOK)
    env = {
        **subprocess_env(),
        "DOCQA_INDEX_DIR": str(tmp_path / "index"),
        "DOCQA_READER": "packaged",
    }
    ingest = subprocess.run(
        [sys.executable, "-m", "ingest", str(docs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ingest.returncode == 0, ingest.stderr
    script = (
        "import json, sys\n"
        "from chatbot import Chatbot, ChatSettings\n"
        "bot = Chatbot(ChatSettings.from_env())\n"
        "out = []\n"
        "for q in ('how much vacation do I get?', 'Is there a gym membership reimbursement?'):\n"
        "    a = bot.answer(q)\n"
        "    out.append({'text': a.text, 'declined': a.declined, 'short': a.short_answer,\n"
        "                'citations': [[c.quote, c.start, c.end] for c in a.citations],\n"
        "                'reader': a.trace.reader})\n"
        "print(json.dumps({'answers': out, 'torch': 'torch' in sys.modules}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["torch"] is False
    vacation, gym = result["answers"]
    assert not vacation["declined"] and vacation["short"] == "20 days"
    assert vacation["text"].lstrip("*").startswith("20 days")
    text = HANDBOOK
    for quote, start, end in vacation["citations"]:
        assert text[start:end] == quote  # offsets into the document resolve to the quote
    assert "20 days of vacation" in vacation["citations"][0][0]
    assert gym["declined"] and gym["text"].startswith("The documents don't say.")
    assert gym["reader"]["declined"] is True


def test_the_reader_knows_which_questions_it_reads_whole() -> None:
    reader = get_reader()
    assert reader.reads_whole("how much vacation do I get?")
    long_q = (
        "After the Sporting News report on December 12, 2023, stating that Manchester United "
        "are out of European competition, did the article from The Independent published on "
        "December 13, 2023 report a different outcome for the club's season, and did the "
        "Guardian's match report of the same week agree with either of them?"
    )
    assert not reader.reads_whole(long_q)

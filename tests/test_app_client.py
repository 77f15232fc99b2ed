"""The launched web app through its stable API (``api_name="chat"``) with ``gradio_client``:
a seed question gets a cited answer, and a follow-up in the same session uses the history."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from chatbot.app import launch
from chatbot.config import ChatSettings
from ingest import IngestSettings, ingest_paths
from tests.conftest import ROOT

pytestmark = pytest.mark.model

SEEDS = ROOT / "seeds"
SEED_FILE = "000_762628c52ecf43e6.txt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    base = tmp_path_factory.mktemp("app-client")
    index = IngestSettings(index_dir=base / "index", progress=False)
    assert ingest_paths([SEEDS], index).exit_code == 0
    settings = ChatSettings(
        index=index,
        port=free_port(),
        docs_dir=base / "documents",
        eval_cases_file=base / "cases.jsonl",
    )
    demo, _, local_url = launch(settings, seeds_dir=SEEDS, block=False, quiet=True)
    try:
        yield local_url
    finally:
        demo.close()


def test_chat_endpoint_answers_a_seed_question_with_citations(url: str):
    from gradio_client import Client

    client = Client(url, verbose=False)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == [
        "/chat"
    ]
    message, sources, trace, answer = client.predict(
        "Who told federal prosecutors to seek the death penalty in drug cases?",
        api_name="/chat",
    )
    assert answer["declined"] is False
    assert "Jeff Sessions" in answer["text"] and re.search(r"\[1\]", answer["text"])
    cited = answer["citations"][0]
    assert cited["source"] == SEED_FILE and cited["date"] == "2018-03-22"
    assert "Jeff Sessions" in cited["quote"]
    assert "Jeff Sessions" in message and "&#91;1&#93;" in message
    assert '<span class="docqa-n">[1]</span>' in sources and SEED_FILE in sources
    assert "Standalone query" in trace

    _, _, _, follow = client.predict(
        "What did he say about business as usual?", 3, "extractive", api_name="/chat"
    )
    assert "Sessions" in follow["trace"]["standalone_query"]
    assert "business as usual" in follow["text"]
    assert len(follow["trace"]["passages"]) == 3

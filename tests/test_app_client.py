"""The launched web app through its stable API (``api_name="chat"``) with ``gradio_client``:
a seed question gets a cited answer, and a follow-up in the same session uses the history."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import serve_seed_app

pytestmark = pytest.mark.model

SEED_FILE = "000_762628c52ecf43e6.txt"


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    demo, local_url, _, _ = serve_seed_app(tmp_path_factory.mktemp("app-client"))
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

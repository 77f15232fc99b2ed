"""The Chroma server going away under a running chatbot (a real ``chroma run``, killed and
restarted by process id): each question gets one line naming the server, the API a 503 with
Retry-After, answers resume without a restart when it is back, and a server that comes back
empty says the collection is missing, not damaged."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatbot import Chatbot, ChatSettings
from ingest import IndexMissingError, IndexUnavailableError, IngestSettings, ingest_paths
from tests.conftest import ROOT, free_port, subprocess_env, write

QUESTION = "When does the harbour office open?"


def start_chroma(data: Path, port: int) -> subprocess.Popen:
    chroma = Path(sys.executable).parent / "chroma"
    log = (data.parent / f"chroma-{port}.log").open("ab")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"chroma run exited with {proc.returncode}"
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0)
            return proc
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "chroma run did not start"
            time.sleep(0.1)


def kill(proc: subprocess.Popen) -> None:
    proc.kill()  # by process id, as an operator's kill -9 would
    proc.wait(10)


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    procs = [start_chroma(tmp_path / "data", port)]
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            kill(proc)


def test_losing_the_index_server_is_one_line_and_answers_resume(tmp_path, server, caplog):
    port, procs = server
    write(tmp_path / "docs" / "harbour.txt", "The harbour office opens at nine on weekdays.")
    settings = IngestSettings(
        index_dir=tmp_path / "idx",
        embedding_model="fake",
        chroma_host="127.0.0.1",
        chroma_port=port,
        progress=False,
    )
    assert ingest_paths([tmp_path / "docs"], settings).exit_code == 0
    bot = Chatbot(ChatSettings(index=settings, min_dense=-1.0, reader="rules"))
    assert bot.answer(QUESTION).citations
    kill(procs[0])
    where = f"the index server at 127.0.0.1:{port} is unreachable: answers resume when it is back"
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            with pytest.raises(IndexUnavailableError) as err:
                bot.answer(QUESTION)
            assert str(err.value) == where
    assert not any(r.exc_info for r in caplog.records)  # no traceback in the log
    # the CLI says the same line and exits non-zero
    ask = subprocess.run(
        [sys.executable, "-m", "chatbot", "ask", QUESTION, "--index-dir", str(settings.index_dir)]
        + ["--chroma-host", "127.0.0.1", "--chroma-port", str(port)],
        env={**subprocess_env(), "DOCQA_EMBEDDING_MODEL": "fake"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert ask.returncode == 1 and len(ask.stderr.strip().splitlines()) == 1, ask.stderr
    assert f"127.0.0.1:{port}" in ask.stderr
    # back on the same data: the same chatbot answers again within seconds
    procs.append(start_chroma(tmp_path / "data", port))
    deadline = time.monotonic() + 10
    while True:
        try:
            assert bot.answer(QUESTION).citations
            break
        except IndexUnavailableError:
            assert time.monotonic() < deadline, "answers did not resume"
            time.sleep(0.2)
    # back empty (its data lost): the collection is missing, and how to rebuild it is named
    kill(procs[1])
    procs.append(start_chroma(tmp_path / "empty", port))
    with pytest.raises(IndexMissingError) as err:
        bot.answer(QUESTION)
    assert str(err.value).startswith(
        f"collection 'docs' is missing on the index server at 127.0.0.1:{port}: run python -m "
        "ingest DIR"
    )
    assert "damaged" not in str(err.value)


def test_the_api_answers_503_with_retry_after_for_an_unreachable_server():
    from chatbot.web.openai_api import RETRY_AFTER_S, ApiError, _errors

    with pytest.raises(ApiError) as err, _errors():
        raise IndexUnavailableError("the index server at h:1 is unreachable: answers resume …")
    response = err.value.response()
    assert response.status_code == 503 and response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert b"the index server at h:1 is unreachable" in response.body

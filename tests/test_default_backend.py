"""ONNX Runtime as the default embedding backend, with the real packaged model: indexes built
by torch and by ONNX (fp32) read each other, a failed export falls back to torch with one
warning, and the chat process answers from either index without importing torch."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ingest import IngestSettings, SettingsError, ingest_paths, open_index
from ingest.config import DEFAULT_MODEL
from tests.conftest import ROOT, subprocess_env, write

pytestmark = pytest.mark.model

TORCH = f"torch:{DEFAULT_MODEL}"
DOCS = {
    "harbour.txt": "The harbour reopened after the storm. Ferries sailed again on Monday.",
    "school.txt": "The school board approved the reading programme for the eastern district.",
}
QUERY = "When did the ferries sail again?"


@pytest.fixture(scope="module", params=[TORCH, DEFAULT_MODEL], ids=["torch-built", "onnx-built"])
def built(request, tmp_path_factory) -> IngestSettings:
    """A small index built with torch or with the default backend (ONNX fp32)."""
    base = tmp_path_factory.mktemp("built")
    for name, text in DOCS.items():
        write(base / "docs" / name, text)
    settings = IngestSettings(
        index_dir=base / "index", embedding_model=request.param, progress=False
    )
    assert ingest_paths([base / "docs"], settings).chunks_embedded == 2
    return settings


def _search(settings: IngestSettings) -> list[tuple[str, float]]:
    index = open_index(settings)
    try:
        return [(d.metadata["source"], s) for d, s in index.search(QUERY, 2)]
    finally:
        index.close()


@pytest.mark.parametrize("reader", [TORCH, DEFAULT_MODEL], ids=["torch-reads", "onnx-reads"])
def test_torch_and_onnx_indexes_read_each_other(built, reader):
    """Either backend reads an index either built, with the same scores (the same vectors)."""
    own = _search(built)
    other = _search(built.replace(embedding_model=reader))
    assert [s for s, _ in other] == [s for s, _ in own] and own[0][0] == "harbour.txt"
    assert np.allclose([x for _, x in other], [x for _, x in own], atol=1e-4)


def test_the_other_backend_updates_an_index_without_reembedding_it(built, tmp_path):
    other = TORCH if built.embedding_model == DEFAULT_MODEL else DEFAULT_MODEL
    copy = built.replace(index_dir=tmp_path / "index", embedding_model=other)
    shutil.copytree(built.index_dir, copy.index_dir)  # the fixture's index stays as built
    more = write(tmp_path / "more" / "farm.txt", "Grain farmers asked for water allowances.")
    report = ingest_paths([built.index_dir.parent / "docs", more.parent], copy)
    assert report.chunks_embedded == 1 and len(report.plan.unchanged) == 2
    assert report.chunks_total == 3 and _search(copy)[0][0] == "harbour.txt"


def test_a_failed_export_falls_back_to_torch_with_one_warning(tmp_path, monkeypatch, caplog):
    from langchain_huggingface import HuggingFaceEmbeddings

    from ingest import onnx_backend

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_backend, "export_model", broken)
    write(tmp_path / "docs" / "harbour.txt", DOCS["harbour.txt"])
    cache = tmp_path / "onnx-cache"  # a fresh one, so the export is attempted
    settings = IngestSettings(index_dir=tmp_path / "index", onnx_cache_dir=cache, progress=False)
    with caplog.at_level(logging.WARNING):
        report = ingest_paths([tmp_path / "docs"], settings)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "exporter exploded" in warnings[0].getMessage()
    assert "using torch" in warnings[0].getMessage()
    assert report.exit_code == 0 and report.chunks_embedded == 1
    assert not list(cache.glob("*.onnx")) and not list(cache.glob(".export-*"))
    index = open_index(settings)
    try:
        assert isinstance(index.embeddings.loaded, HuggingFaceEmbeddings)
    finally:
        index.close()
    # What it wrote are torch's vectors: the default reader (a working export) finds them.
    (source, score), *_ = _search(settings.replace(onnx_cache_dir=IngestSettings().onnx_cache_dir))
    assert source == "harbour.txt" and score > 0.5


def test_a_failed_int8_export_is_one_error_not_a_fallback(tmp_path, monkeypatch):
    from ingest import onnx_backend

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_backend, "export_model", broken)
    write(tmp_path / "docs" / "a.txt", DOCS["harbour.txt"])
    settings = IngestSettings(
        index_dir=tmp_path / "index",
        embedding_model=f"onnx-int8:{DEFAULT_MODEL}",
        onnx_cache_dir=tmp_path / "cache",
        progress=False,
    )
    with pytest.raises(SettingsError, match="exporter exploded"):
        ingest_paths([tmp_path / "docs"], settings)


# Answers with `python -m chatbot ask` in a fresh interpreter, then reports what it imported.
ASK = """
import json, sys
from chatbot.__main__ import main

code = main(["ask", sys.argv[1], "--index-dir", sys.argv[2], "--json"])
heavy = ("torch", "transformers", "sentence_transformers", "langchain_huggingface")
sys.stderr.write(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_the_chat_process_answers_without_torch(built):
    """From an ONNX-built and from a torch-built index (read with ONNX: the same vectors)."""
    env = subprocess_env()
    env.pop("DOCQA_EMBEDDING_MODEL", None)
    run = subprocess.run(
        [sys.executable, "-c", ASK, QUERY, str(built.index_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    status = json.loads(run.stderr.strip().splitlines()[-1])
    assert status == {"code": 0, "loaded": []}, run.stderr[-2000:]
    answer = json.loads(run.stdout)
    assert "Monday" in answer["text"] and answer["citations"]

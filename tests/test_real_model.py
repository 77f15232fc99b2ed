"""A few checks with the real packaged all-MiniLM-L6-v2 (small; still run in CI)."""

from __future__ import annotations

import pytest

from ingest import IngestSettings, ingest_paths, open_index
from ingest.embeddings import make_embeddings
from ingest.splitter import TokenSplitter
from tests.conftest import ROOT, SEED

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def seed_index(tmp_path_factory):
    settings = IngestSettings(index_dir=tmp_path_factory.mktemp("real") / "idx", progress=False)
    report = ingest_paths([ROOT / "seeds"], settings)
    assert report.exit_code == 0 and report.chunks_total >= 2
    return settings


def test_no_chunk_is_truncated_by_the_model(seed_index):
    model = make_embeddings("torch:all-MiniLM-L6-v2")._client
    assert model.max_seq_length == 256
    index = open_index(seed_index)
    chunks = [c.text for c in index.iter_chunks()]
    index.close()
    lengths = [len(ids) for ids in model.tokenize(chunks)["input_ids"]]
    # The model pads to the longest; count real tokens with the attention mask instead.
    real = [int(m.sum()) for m in model.tokenize(chunks)["attention_mask"]]
    assert max(real) <= 256 and max(lengths) <= 256
    splitter = TokenSplitter("all-MiniLM-L6-v2", 128, 24)
    assert all(splitter.count_tokens(c) + 2 == n for c, n in zip(chunks, real, strict=True))


def test_long_text_chunks_fit_the_window():
    splitter = TokenSplitter("all-MiniLM-L6-v2", 254, 0)
    text = SEED.read_text(encoding="utf-8") * 10
    model = make_embeddings("torch:all-MiniLM-L6-v2")._client
    chunks = [c.text for c in splitter.split(text)]
    real = [int(m.sum()) for m in model.tokenize(chunks)["attention_mask"]]
    assert max(real) <= 256


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Who told prosecutors to pursue capital punishment for drug crimes?", "Jeff Sessions"),
        ("Why are executions becoming less common?", "lack of access to drugs"),
        ("Which groups criticized the call for the death penalty in drug cases?", "reform groups"),
    ],
)
def test_dense_search_finds_the_passage(seed_index, query, expected):
    index = open_index(seed_index)
    (doc, score), *_ = index.search(query, k=1)
    index.close()
    assert expected in doc.page_content and doc.metadata["date"] == "2018-03-22"
    assert 0.2 < score <= 1.0


def test_unrelated_query_scores_low(seed_index):
    index = open_index(seed_index)
    (_, related), *_ = index.search("death penalty for drug traffickers", k=1)
    (_, unrelated), *_ = index.search("recipe for sourdough bread starter", k=1)
    index.close()
    assert related > 0.5 > unrelated


def test_the_model_is_loaded_once_per_process():
    first = make_embeddings("all-MiniLM-L6-v2")
    assert make_embeddings("all-MiniLM-L6-v2", 32) is first
    assert make_embeddings("all-MiniLM-L6-v2", batch_size=32) is first
    assert make_embeddings("sentence-transformers/all-MiniLM-L6-v2") is first
    assert make_embeddings("onnx:all-MiniLM-L6-v2") is first  # the default backend

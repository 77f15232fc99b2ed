"""The ONNX Runtime embedding backends (fp32, the default, and 'onnx-int8:'): made offline from
the packaged weights, close to torch's vectors; int8 is recorded apart in the index."""

from __future__ import annotations

import socket
import sys

import numpy as np
import pytest

from ingest import DocIndex, IndexMismatchError, IngestSettings, SettingsError, open_index
from ingest.config import DEFAULT_MODEL, split_backend
from ingest.embeddings import make_embeddings, model_identity, model_path, same_vectors
from ingest.onnx_backend import OnnxEmbeddings, build_model
from tests.conftest import SEED

# Measured by bench/embed_backends.py on the 551 chunks of the SQuAD sample: int8 cosine to
# torch min 0.983-0.987, mean 0.994; fp32 1.0000. One-word texts fare worst with int8 (0.97-0.98
# alone, 0.965 for "ok" batched with paragraphs: activations are quantised per call).
INT8_MIN_COS = 0.95
INT8_MEAN_COS = 0.985
FP32_MIN_COS = 0.9999


def _no_network(*args, **kwargs):
    raise OSError("network access attempted while exporting")


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """Both ONNX files, made once into a fresh folder with sockets refused."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        build_model(model_path(DEFAULT_MODEL), "onnx-int8", cache)
    return cache


@pytest.fixture(scope="module")
def texts() -> list[str]:
    body = SEED.read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    return [*paragraphs[:12], "Who asked prosecutors to seek the death penalty?", "ok"]


@pytest.mark.model
def test_export_is_made_offline_once_and_reused(onnx_cache):
    files = sorted(p.name for p in onnx_cache.glob("*.onnx"))
    assert [f.split("-")[0] for f in files] == ["onnx", "onnx"]
    assert {f.rsplit("-", 1)[0] for f in files} == {"onnx", "onnx-int8"}
    assert not list(onnx_cache.glob(".export-*")), "the work folder is left behind"
    made = {p: p.stat().st_mtime_ns for p in onnx_cache.glob("*.onnx")}
    for backend in ("onnx", "onnx-int8"):
        assert build_model(model_path(DEFAULT_MODEL), backend, onnx_cache) in made
    assert {p: p.stat().st_mtime_ns for p in onnx_cache.glob("*.onnx")} == made


@pytest.mark.model
@pytest.mark.parametrize(
    ("backend", "min_cos", "mean_cos"),
    [("onnx", FP32_MIN_COS, FP32_MIN_COS), ("onnx-int8", INT8_MIN_COS, INT8_MEAN_COS)],
)
def test_vectors_agree_with_torch(onnx_cache, texts, backend, min_cos, mean_cos):
    reference = np.array(make_embeddings(f"torch:{DEFAULT_MODEL}").embed_documents(texts))
    onnx = OnnxEmbeddings(model_path(DEFAULT_MODEL), backend, cache_dir=onnx_cache)
    vectors = np.array(onnx.embed_documents(texts))
    assert vectors.shape == reference.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = (vectors * reference).sum(axis=1)
    assert cos.min() >= min_cos and cos.mean() >= mean_cos, cos
    query = np.array(onnx.embed_query(texts[-2]))
    assert float(query @ reference[-2]) >= min_cos


@pytest.mark.model
def test_fp32_vectors_do_not_depend_on_padding(onnx_cache, texts):
    onnx = OnnxEmbeddings(model_path(DEFAULT_MODEL), "onnx", cache_dir=onnx_cache)
    alone = onnx.encode([texts[-1]])[0]
    padded = onnx.encode([texts[0], texts[-1]])[1]  # padded to the paragraph's length
    assert np.allclose(alone, padded, atol=1e-5)


def test_only_int8_is_part_of_the_identity():
    """Torch and fp32 ONNX make the same vectors: one name. int8's differ: its own name."""
    torch_name = model_identity(f"torch:{DEFAULT_MODEL}")
    assert torch_name == f"sentence-transformers/{DEFAULT_MODEL}"
    assert model_identity(DEFAULT_MODEL) == torch_name  # the default backend, ONNX fp32
    assert model_identity(f"onnx:sentence-transformers/{DEFAULT_MODEL}") == torch_name
    assert model_identity(f"onnx-int8:{DEFAULT_MODEL}") == f"onnx-int8:{torch_name}"
    # An index built with 'onnx:' before it shared the name recorded the prefix.
    assert same_vectors(f"onnx:{torch_name}", torch_name)
    assert not same_vectors(f"onnx-int8:{torch_name}", torch_name)


def test_the_default_backend_is_onnx_and_torch_is_a_prefix():
    assert split_backend(DEFAULT_MODEL) == ("onnx", DEFAULT_MODEL)
    assert split_backend(f"torch:{DEFAULT_MODEL}") == ("torch", DEFAULT_MODEL)
    assert split_backend("fake") == ("torch", "fake")  # no model to run on ONNX Runtime
    assert IngestSettings().embedding_model == DEFAULT_MODEL


@pytest.mark.parametrize("reader", [f"torch:{DEFAULT_MODEL}", DEFAULT_MODEL])
def test_index_built_with_int8_refuses_fp32_and_torch(tmp_path, reader):
    built = IngestSettings(
        index_dir=tmp_path / "idx", embedding_model=f"onnx-int8:{DEFAULT_MODEL}", progress=False
    )
    DocIndex(built, writable=True).close()  # records the identity; embeds nothing
    with pytest.raises(IndexMismatchError, match="onnx-int8:sentence-transformers"):
        open_index(built.replace(embedding_model=reader))


@pytest.mark.parametrize("builder", [f"torch:{DEFAULT_MODEL}", DEFAULT_MODEL])
def test_an_fp32_index_refuses_int8(tmp_path, builder):
    built = IngestSettings(index_dir=tmp_path / "idx", embedding_model=builder, progress=False)
    DocIndex(built, writable=True).close()
    with pytest.raises(IndexMismatchError, match="onnx-int8:sentence-transformers"):
        open_index(built.replace(embedding_model=f"onnx-int8:{DEFAULT_MODEL}"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "onnx-int4:all-MiniLM-L6-v2",
            "embedding_model 'onnx-int4:all-MiniLM-L6-v2' names an unknown backend 'onnx-int4' "
            "(supported: torch, onnx, onnx-int8)",
        ),
        ("onnx-int8:", "embedding_model 'onnx-int8:' names no model after 'onnx-int8:'"),
        (
            "onnx-int8:fake",
            "embedding_model 'onnx-int8:fake': the fake model has no 'onnx-int8' backend, "
            "use 'fake'",
        ),
    ],
)
def test_bad_backend_is_named_in_one_line(spec, message):
    with pytest.raises(SettingsError) as err:
        IngestSettings.from_env({"DOCQA_EMBEDDING_MODEL": spec})
    assert str(err.value) == message


def test_bad_backend_on_the_cli_is_one_line(tmp_path, capsys):
    from ingest.__main__ import main

    code = main(["--embedding-model", "onnx-int4:all-MiniLM-L6-v2", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and "'onnx-int4'" in err


def test_missing_onnx_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    with pytest.raises(SettingsError) as err:
        build_model(model_path(DEFAULT_MODEL), "onnx-int8", tmp_path / "cache")
    assert str(err.value) == (
        "embedding backend 'onnx-int8' needs the 'onnx' package to export the model (once): "
        "pip install onnx"
    )
    assert not list((tmp_path / "cache").glob("*.onnx"))


def test_the_index_settings_choose_the_export_folder(tmp_path, onnx_cache):
    """An index built with an ONNX backend uses (and reuses) the export in onnx_cache_dir."""
    import os

    from ingest import ingest_paths, open_index
    from tests.conftest import write

    made = {p: p.stat().st_mtime_ns for p in onnx_cache.glob("*.onnx")}
    abandoned = onnx_cache / ".export-killed"
    abandoned.mkdir()
    os.utime(abandoned, (0, 0))
    settings = IngestSettings(
        index_dir=tmp_path / "index",
        embedding_model="onnx-int8:all-MiniLM-L6-v2",
        onnx_cache_dir=onnx_cache,
        progress=False,
    )
    docs = write(tmp_path / "docs" / "a.txt", "The harbour reopened after the storm.").parent
    assert ingest_paths([docs], settings).chunks_embedded == 1
    index = open_index(settings)
    try:
        assert index.embeddings.loaded.model_file.parent == onnx_cache
        assert index.search("harbour storm", 1)
    finally:
        index.close()
    assert {p: p.stat().st_mtime_ns for p in onnx_cache.glob("*.onnx")} == made
    assert abandoned.exists()  # nothing was exported, so nothing was cleaned


def test_an_abandoned_export_folder_is_removed(tmp_path):
    import os

    from ingest.onnx_backend import _remove_abandoned_exports

    old, fresh = tmp_path / ".export-old", tmp_path / ".export-running"
    old.mkdir()
    fresh.mkdir()
    os.utime(old, (0, 0))
    _remove_abandoned_exports(tmp_path)
    assert not old.exists() and fresh.exists()

"""The index on a real Chroma server (``chroma run``), not the embedded store: what only a
server has (collection metadata, readers on other machines, a second writer, an unreachable
server). The index contract itself runs against the server in test_index_contract.

One server for the session (conftest's ``chroma_server``), started on a free loopback port and
stopped by its process id. Each test gets its own collection on it and its own local
index_dir (manifest and BM25).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest import IndexMismatchError, IngestError, IngestSettings, ingest_paths, open_index
from ingest.collection import GENERATION_KEY, OWNER_KEY
from tests.conftest import (
    PARA,
    ROOT,
    SEED,
    CountingEmbedding,
    assert_cited,
    corpus,
    free_port,
    server_settings,
    stored,
    write,
)


@pytest.fixture
def fake_settings(tmp_path: Path, chroma_server) -> IngestSettings:
    """Overrides conftest's: every test here uses a collection on the server."""
    return server_settings(tmp_path / "index", chroma_server)


def test_nothing_is_stored_locally_but_manifest_and_bm25(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    report = ingest_paths([docs], fake_settings)
    assert report.chunks_total > 3
    local = {p.name for p in fake_settings.index_dir.iterdir()}
    assert "chroma" not in local and "collections" in local and "bm25" in local
    manifest = fake_settings.index_dir / "collections" / fake_settings.collection
    assert (manifest / "manifest.sqlite3").is_file()


def test_collection_metadata_records_generation_and_keeps_the_rest(tmp_path, fake_settings):
    import chromadb

    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    (docs / "c.html").unlink()
    ingest_paths([docs], fake_settings)
    index = open_index(fake_settings)
    assert index.manifest is not None
    generation = index.manifest.generation()
    assert generation >= 2 and index.generation() == generation
    index.close()
    host, port = fake_settings.chroma_host, fake_settings.chroma_port
    col = chromadb.HttpClient(host=host, port=port).get_collection(fake_settings.collection)
    meta = dict(col.metadata)
    assert (
        meta["embedding_model"] == "fake" and meta[GENERATION_KEY] == generation and meta[OWNER_KEY]
    )
    assert col.configuration_json["hnsw"]["space"] == "cosine"


def test_reader_elsewhere_follows_the_server(tmp_path, fake_settings, monkeypatch):
    """A chatbot on another machine: other index_dir, no manifest; BM25 from the server's
    chunks, brought up to date (by chunk-id difference) when a reingest changes them."""
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    elsewhere = fake_settings.replace(index_dir=tmp_path / "reader")
    reader = open_index(elsewhere)
    try:
        assert reader.manifest is None
        assert [d.source for d in reader.documents()] == ["a.txt", "c.html", "sub/b.md"]
        assert [d.n_chunks for d in reader.documents()] == [
            d.n_chunks for d in open_index(fake_settings).documents()
        ]
        assert reader.lexical_search("zeppelin", 3) == []
        gen = reader.generation()

        write(docs / "new.txt", "The zeppelin hangar reopened. " + PARA)
        ingest_paths([docs], fake_settings)
        assert reader.generation() == gen + 1
        monkeypatch.setattr(reader, "iter_chunks", lambda *a, **k: pytest.fail("rebuilt whole"))
        hits = reader.lexical_search("zeppelin hangar", 3)
        new_ids = {c.id for c in stored(fake_settings) if c.metadata["source"] == "new.txt"}
        assert hits and hits[0][0] in new_ids
        monkeypatch.undo()  # documents() lists the chunks: a reader without a manifest must
        assert "new.txt" in {d.source for d in reader.documents()}
        assert (elsewhere.index_dir / "bm25").is_dir()  # cached for the next start
    finally:
        reader.close()


def test_a_readers_document_list_is_read_once_per_generation(tmp_path, fake_settings, monkeypatch):
    """Without a manifest the list comes from every chunk's metadata (5 s at 100k chunks):
    read once, again only after the server's chunks change."""
    from ingest.store import DocIndex

    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    reader = open_index(fake_settings.replace(index_dir=tmp_path / "reader"))
    reads: list[bool] = []
    real = DocIndex.iter_chunks

    def counting(self, *a, **k):
        reads.append(k.get("text", True))
        return real(self, *a, **k)

    monkeypatch.setattr(DocIndex, "iter_chunks", counting)
    try:
        first = reader.documents()
        assert reader.documents() == first and reads == [False]  # metadata only, once
        write(docs / "new.txt", "The zeppelin hangar reopened. " + PARA)
        ingest_paths([docs], fake_settings)
        assert "new.txt" in {d.source for d in reader.documents()} and len(reads) == 2
    finally:
        reader.close()


def test_second_writer_is_refused_until_it_takes_over(tmp_path, fake_settings):
    from ingest import reset_index

    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    other = fake_settings.replace(index_dir=tmp_path / "other")
    with pytest.raises(IndexMismatchError, match="maintained from another index dir"):
        ingest_paths([docs], other)
    assert {c.metadata["source"] for c in stored(fake_settings)} == {"a.txt", "sub/b.md", "c.html"}
    reset_index(other)  # drops the server collection: `other` now maintains a new one
    emb = CountingEmbedding(size=384)
    assert ingest_paths([docs], other, embeddings=emb).chunks_total == emb.texts > 3
    with pytest.raises(IndexMismatchError, match="maintained from another index dir"):
        ingest_paths([docs], fake_settings)


def test_embedded_manifest_is_not_reused_for_a_server(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings.replace(chroma_host=""))  # embedded, same index_dir
    with pytest.raises(IndexMismatchError, match="describes another collection"):
        ingest_paths([docs], fake_settings)


def test_unreachable_server_is_one_line(tmp_path, capsys):
    from ingest.__main__ import main

    port = free_port()  # nothing listens there
    settings = IngestSettings(
        index_dir=tmp_path / "i", embedding_model="fake", chroma_host="127.0.0.1", chroma_port=port
    )
    started = time.monotonic()
    with pytest.raises(IngestError) as err:
        open_index(settings)
    assert time.monotonic() - started < 6
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message
    assert message.startswith("cannot reach the Chroma server at")

    code = main(["--chroma-host", "127.0.0.1", "--chroma-port", str(port), str(tmp_path)])
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err_lines) == 1 and f"127.0.0.1:{port}" in err_lines[0]


def test_bad_server_settings_are_named():
    from ingest import SettingsError

    with pytest.raises(SettingsError, match="chroma_port must be in 1..65535, got 0"):
        IngestSettings(chroma_host="localhost", chroma_port=0)
    with pytest.raises(SettingsError, match="chroma_host must be a host.*'http://x:1'"):
        IngestSettings(chroma_host="http://x:1")
    env = {"DOCQA_CHROMA_HOST": "db.local", "DOCQA_CHROMA_PORT": "9000"}
    settings = IngestSettings.from_env(env)
    assert (settings.uses_server, settings.chroma_location) == (True, "db.local:9000")


@pytest.mark.model
def test_question_answered_from_the_server(tmp_path, chroma_server):
    """End to end with the real model: ingest seeds/ into the server, then a chatbot with
    another (empty) index_dir answers from it, with a citation into the seed article."""
    from chatbot.chain import Chatbot
    from chatbot.config import ChatSettings

    settings = server_settings(
        tmp_path / "ingester", chroma_server, embedding_model="all-MiniLM-L6-v2"
    )
    assert ingest_paths([ROOT / "seeds"], settings).exit_code == 0
    reader = settings.replace(index_dir=tmp_path / "chat-machine")
    bot = Chatbot(ChatSettings(index=reader))
    try:
        assert_cited(bot.answer("Who announced a plan to execute opioid dealers?"), "Donald Trump")
        assert bot.index.documents()[0].source == SEED.name
    finally:
        bot.index.close()


def test_eval_index_on_a_server_gets_its_own_collection(tmp_path, fake_settings):
    from eval.config import EvalSettings
    from eval.runner import prepare_index

    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)  # the chat's collection on the shared server
    settings = EvalSettings(cache_dir=tmp_path / "cache")
    index, info = prepare_index(docs, fake_settings, settings, fresh=True)
    assert index.collection.startswith("eval-docs-") and index.collection != "docs"
    assert info.chunks > 0
    # --fresh reset only the eval collection: the chat's is intact
    assert len(stored(fake_settings)) > 0

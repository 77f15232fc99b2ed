"""The index contract: ingest, reingest, change, delete, with deterministic fake embeddings."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ingest import (
    EXIT_NOTHING_DONE,
    EXIT_OK,
    EXIT_PARTIAL,
    IndexMismatchError,
    IndexMissingError,
    IngestSettings,
    ingest_paths,
    load_document,
    open_index,
)
from ingest.context import stored_context
from tests.conftest import PARA, SEED, CountingEmbedding, corpus, stored, write

# The contract holds for the embedded store and for a Chroma server (``chroma run``): these
# tests run against both (conftest's ``fake_settings`` with an indirect parameter).
BACKENDS = pytest.mark.parametrize("fake_settings", ["embedded", "server"], indirect=True)


@BACKENDS
def test_ingest_twice_adds_nothing_and_embeds_nothing(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    emb = CountingEmbedding(size=384)
    first = ingest_paths([docs], fake_settings, embeddings=emb)
    assert len(first.plan.add) == 3 and first.exit_code == EXIT_OK
    assert first.chunks_embedded == first.chunks_total == emb.texts > 3
    before = sorted(c.id for c in stored(fake_settings))

    emb2 = CountingEmbedding(size=384)
    again = ingest_paths([docs], fake_settings, embeddings=emb2)
    assert again.summary().startswith("added 0, updated 0, deleted 0, unchanged 3")
    assert emb2.calls == 0 and again.chunks_embedded == 0
    assert sorted(c.id for c in stored(fake_settings)) == before


@BACKENDS
def test_touched_but_identical_file_is_unchanged(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    path = docs / "a.txt"
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    emb = CountingEmbedding(size=384)
    report = ingest_paths([docs], fake_settings, embeddings=emb)
    assert len(report.plan.unchanged) == 3 and emb.texts == 0


@BACKENDS
def test_changed_file_replaces_only_its_chunks(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    before = {c.id: c for c in stored(fake_settings)}
    write(docs / "sub" / "b.md", "# Beta notes, revised\n\nOnly one short paragraph now.")
    emb = CountingEmbedding(size=384)
    report = ingest_paths([docs], fake_settings, embeddings=emb)
    assert [w.found.source for w in report.plan.update] == ["sub/b.md"]
    assert len(report.plan.unchanged) == 2
    after = {c.id: c for c in stored(fake_settings)}
    b_after = [c for c in after.values() if c.metadata["source"] == "sub/b.md"]
    assert len(b_after) == 1 and b_after[0].text.startswith("# Beta notes, revised")
    assert emb.texts == 1
    others_before = {i for i, c in before.items() if c.metadata["source"] != "sub/b.md"}
    others_after = {i for i, c in after.items() if c.metadata["source"] != "sub/b.md"}
    assert others_before == others_after


def test_editing_a_paragraph_reembeds_only_the_chunks_that_changed(tmp_path, fake_settings):
    paragraphs = [
        f"Item {i}: the council heard {i * 7} residents on the {name} budget, and the clerk "
        f"recorded {i + 3} objections about the schedule for the {name} works."
        for i, name in enumerate(["water", "road", "school", "park", "library", "harbour"] * 4)
    ]
    doc = write(tmp_path / "docs" / "minutes.txt", "date 2021-05-04\n\n" + "\n\n".join(paragraphs))
    first = ingest_paths([doc.parent], fake_settings)
    assert first.chunks_written >= 6
    edited = paragraphs[:12] + ["A new motion on street lighting was tabled."] + paragraphs[12:]
    # The same date: it is in every chunk's context line, so a new one re-embeds them all; a
    # key outside that line (author) is dropped from the kept chunks (tests/test_context.py).
    doc.write_text("date 2021-05-04\n\n" + "\n\n".join(edited), encoding="utf-8")
    emb = CountingEmbedding(size=384)
    report = ingest_paths([doc.parent], fake_settings, embeddings=emb)
    assert 1 <= emb.texts <= 2 < report.chunks_written  # the chunk(s) around the new motion
    text = load_document(doc, "minutes.txt").text
    chunks = sorted(stored(fake_settings), key=lambda c: c.metadata["chunk_index"])
    assert [c.metadata["chunk_index"] for c in chunks] == list(range(report.chunks_written))
    for chunk in chunks:  # the kept ones point at their new place
        assert text[chunk.metadata["start"] : chunk.metadata["end"]] == chunk.text
        assert chunk.metadata["date"] == "2021-05-04"
        assert chunk.metadata["content_hash"] == load_document(doc, "minutes.txt").content_hash
    assert any("street lighting" in c.text for c in chunks)


@BACKENDS
def test_deleted_file_loses_its_chunks(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    (docs / "c.html").unlink()
    report = ingest_paths([docs], fake_settings)
    assert [r.source for r in report.plan.delete] == ["c.html"]
    assert {c.metadata["source"] for c in stored(fake_settings)} == {"a.txt", "sub/b.md"}
    index = open_index(fake_settings)
    assert [d.source for d in index.documents()] == ["a.txt", "sub/b.md"]
    index.close()


@BACKENDS
def test_deletion_is_scoped_to_the_folder_ingested(tmp_path, fake_settings):
    one = corpus(tmp_path / "one")
    two = write(tmp_path / "two" / "x.txt", PARA).parent
    ingest_paths([one], fake_settings)
    ingest_paths([two], fake_settings)  # does not delete what came from `one`
    assert {c.metadata["source"] for c in stored(fake_settings)} == {
        "a.txt",
        "sub/b.md",
        "c.html",
        "x.txt",
    }


def test_offsets_and_metadata_point_back_into_the_document(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    write(docs / "seed.txt", SEED.read_text(encoding="utf-8"))
    ingest_paths([docs], fake_settings)
    chunks = stored(fake_settings)
    for chunk in chunks:
        meta = chunk.metadata
        doc = load_document(docs / meta["source"], meta["source"])
        assert doc.text[meta["start"] : meta["end"]] == chunk.text
        assert meta["title"] == doc.title and meta["content_hash"] == doc.content_hash
    seed_chunks = [c for c in chunks if c.metadata["source"] == "seed.txt"]
    assert {c.metadata["date"] for c in seed_chunks} == {"2018-03-22"}
    assert not any("date 2018" in c.text for c in seed_chunks)
    counts = Counter((c.metadata["source"], c.metadata["chunk_index"]) for c in chunks)
    assert max(counts.values()) == 1
    for source in {c.metadata["source"] for c in chunks}:
        indices = sorted(
            c.metadata["chunk_index"] for c in chunks if c.metadata["source"] == source
        )
        assert indices == list(range(len(indices)))


def test_chunk_ids_are_deterministic_across_indexes(tmp_path):
    docs = corpus(tmp_path / "docs")
    ids = []
    for name in ("i1", "i2"):
        settings = IngestSettings(index_dir=tmp_path / name, embedding_model="fake", progress=False)
        ingest_paths([docs], settings)
        ids.append(sorted(c.id for c in stored(settings)))
    assert ids[0] == ids[1]


@BACKENDS
def test_chunking_settings_change_rechunks_every_document(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    smaller = fake_settings.replace(chunk_size=64, chunk_overlap=8)
    report = ingest_paths([docs], smaller)
    assert len(report.plan.update) == 3
    chunks = stored(smaller)
    assert len({c.id for c in chunks}) == len(chunks) == report.chunks_total


@BACKENDS
def test_dry_run_changes_nothing(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    report = ingest_paths([docs], fake_settings, dry_run=True)
    assert len(report.plan.add) == 3 and report.plan.describe().startswith("plan: add 3")
    index = open_index(fake_settings)
    assert index.count() == 0 and index.documents() == []
    index.close()


@BACKENDS
def test_bad_file_is_reported_and_stored_data_kept(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    n_before = len(stored(fake_settings))
    (docs / "a.txt").write_bytes(b"\x00\x01\x02 binary now")
    (docs / "new.txt").write_bytes(b"caf\xe9 latin-1")
    write(docs / "ok.txt", "A fine new document about budgets.")
    report = ingest_paths([docs], fake_settings)
    reasons = sorted(str(e) for e in report.plan.failed)
    assert len(reasons) == 2
    assert "a.txt: looks like a binary file" in reasons[0]
    assert "new.txt: not valid UTF-8 (byte 0xe9 at offset 3)" in reasons[1]
    assert report.exit_code == EXIT_PARTIAL
    sources = Counter(c.metadata["source"] for c in stored(fake_settings))
    assert sources["a.txt"] > 0, "a failed reload must not delete what was stored"
    assert sources["ok.txt"] == 1 and sum(sources.values()) == n_before + 1


def test_oversize_file_is_skipped(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    write(docs / "big.txt", "word " * 30000)
    report = ingest_paths([docs], fake_settings.replace(max_file_mb=0.1))
    assert [e.reason for e in report.plan.failed] == ["file is 0.14 MB, over the 0.10 MB limit"]


def test_nothing_done_exit_code(tmp_path, fake_settings):
    report = ingest_paths([tmp_path / "missing"], fake_settings)
    assert report.exit_code == EXIT_NOTHING_DONE
    assert str(report.plan.failed[0]).endswith("missing: no such file or directory")


@BACKENDS
def test_model_mismatch_is_refused(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    other = fake_settings.replace(embedding_model="all-MiniLM-L6-v2")
    with pytest.raises(IndexMismatchError, match="built with embedding model 'fake'.*--reset"):
        ingest_paths([docs], other)
    with pytest.raises(IndexMismatchError):
        open_index(other)
    assert len(stored(fake_settings)) > 0


def test_open_missing_index_names_the_command(tmp_path):
    settings = IngestSettings(index_dir=tmp_path / "nothing", embedding_model="fake")
    with pytest.raises(IndexMissingError, match=r"no index at .*nothing: run 'python -m ingest"):
        open_index(settings)


@BACKENDS
def test_search_finds_the_chunk_for_its_own_text(tmp_path, fake_settings):
    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    index = open_index(fake_settings)
    target = next(c for c in index.iter_chunks() if c.metadata["source"] == "c.html")
    # What was embedded: the document's context line, then the chunk text (stored as is).
    embedded = f"{stored_context(target.metadata)}\n{target.text}"
    (doc, score), *_ = index.search(embedded, k=3)
    assert doc.page_content == target.text and score == pytest.approx(1.0, abs=1e-5)
    index.close()


def test_unlistable_subfolder_does_not_delete_its_documents(tmp_path, fake_settings, monkeypatch):
    import os

    docs = corpus(tmp_path / "docs")
    ingest_paths([docs], fake_settings)
    real_walk = os.walk

    def walk(top, onerror=None, followlinks=False):  # as if sub/ became unreadable (we are root)
        for dirpath, dirnames, filenames in real_walk(top, followlinks=followlinks):
            if "sub" in dirnames:
                dirnames.remove("sub")
                onerror(PermissionError(13, "Permission denied", str(Path(dirpath) / "sub")))
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(os, "walk", walk)
    report = ingest_paths([docs], fake_settings)
    assert report.plan.delete == []
    assert [str(e) for e in report.plan.failed] == [
        f"{docs / 'sub'}: cannot list folder: Permission denied"
    ]
    assert "sub/b.md" in {c.metadata["source"] for c in stored(fake_settings)}


def test_a_reader_opened_on_an_empty_index_follows_an_ingest_by_another_process(tmp_path):
    """A chat server started on an empty collection, filled by ``python -m ingest`` in a
    terminal: the refreshed reader answers from it (it used to call the index damaged)."""
    import subprocess
    import sys

    from chatbot import Chatbot, ChatSettings

    docs = tmp_path / "docs"
    docs.mkdir()
    settings = IngestSettings(index_dir=tmp_path / "index", embedding_model="fake", progress=False)
    ingest_paths([docs], settings)
    bot = Chatbot(ChatSettings(index=settings))
    assert bot.index.count() == 0
    write(docs / "harbour.txt", "The harbour office opens at nine in the morning on weekdays.")
    cmd = [sys.executable, "-m", "ingest", str(docs), "--index-dir", str(settings.index_dir)]
    subprocess.run([*cmd, "--embedding-model", "fake"], check=True, capture_output=True)
    bot.refresh()
    answer = bot.answer("When does the harbour office open?")
    assert not answer.declined
    assert answer.citations[0].source == "harbour.txt"

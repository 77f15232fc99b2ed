"""Several collections in one index: each has its own chunks, reingest state (manifest),
BM25 index and layouts; ingesting, resetting or deleting one leaves the others as they were.
Embedded and on a Chroma server; the list/delete CLI as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest import (
    IngestSettings,
    UnknownCollectionError,
    delete_collection,
    ingest_paths,
    list_collections,
    open_index,
    reset_index,
)
from ingest.manifest import Manifest, manifest_path
from tests.conftest import PARA, server_settings, stored, subprocess_env, write


@pytest.fixture(params=["embedded", "server"])
def two(request, tmp_path: Path) -> tuple[IngestSettings, IngestSettings, Path, Path]:
    """Settings of collection A (the default one, embedded) and B in the same index dir,
    and a folder of documents for each."""
    if request.param == "server":
        a = server_settings(tmp_path / "index", request.getfixturevalue("chroma_server"))
    else:
        a = IngestSettings(index_dir=tmp_path / "index", embedding_model="fake", progress=False)
    b = a.replace(collection=f"{a.collection}-b" if a.uses_server else "second")
    docs_a = write(tmp_path / "a" / "alpha.txt", "Alpha harbour report.\n\n" + PARA * 6).parent
    docs_b = write(tmp_path / "b" / "beta.md", "# Beta\n\nThe beta orchard grows pears. " * 9)
    return a, b, docs_a, docs_b.parent


def _state(settings: IngestSettings) -> tuple[set[str], set[str], int]:
    """(chunk ids stored, chunk ids in the manifest, manifest generation)."""
    manifest = Manifest(settings.index_dir, settings.collection, read_only=True)
    try:
        return {c.id for c in stored(settings)}, manifest.all_chunk_ids(), manifest.generation()
    finally:
        manifest.close()


def test_collections_keep_their_own_chunks_manifest_and_bm25(two):
    a, b, docs_a, docs_b = two
    assert ingest_paths([docs_a], a).exit_code == 0
    before = _state(a)
    assert ingest_paths([docs_b], b).exit_code == 0
    assert _state(a) == before  # ingesting B changed nothing of A

    assert manifest_path(a.index_dir, "docs") == a.index_dir / "manifest.sqlite3"
    assert manifest_path(b.index_dir, b.collection).parent.parent.name == "collections"
    for settings, words, absent in ((a, "harbour", "pears"), (b, "pears", "harbour")):
        index = open_index(settings)
        try:
            sources = {r.source for r in index.documents()}
            texts = " ".join(c.text for c in index.iter_chunks())
            assert words in texts and absent not in texts
            hits = index.lexical_search(words, 5)
            assert hits and all(i in _state(settings)[0] for i, _ in hits)
            assert index.lexical_search(absent, 5) == []
        finally:
            index.close()
        assert len(sources) == 1

    # Reingesting B's folder into B again, and A's into A, changes nothing.
    assert ingest_paths([docs_b], b).plan.work == []
    assert ingest_paths([docs_a], a).plan.work == []


def test_reset_of_one_collection_keeps_the_other(two):
    a, b, docs_a, docs_b = two
    ingest_paths([docs_a], a)
    ingest_paths([docs_b], b)
    kept = _state(a)
    reset_index(b)
    assert not Manifest.exists(b.index_dir, b.collection)
    assert _state(a) == kept
    report = ingest_paths([docs_b], b)
    assert report.plan.work and report.exit_code == 0  # B rebuilt from its documents


def test_list_and_delete_collections(two):
    a, b, docs_a, docs_b = two
    ingest_paths([docs_a], a)
    ingest_paths([docs_b], b)
    found = {c.name: c for c in list_collections(a)}
    assert {a.collection, b.collection} <= set(found)
    assert found[b.collection].documents == 1 and found[b.collection].chunks == len(stored(b))
    assert found[a.collection].embedding_model == "fake"
    kept = _state(a)

    delete_collection(b)
    assert b.collection not in {c.name for c in list_collections(a)}
    assert not Manifest.exists(b.index_dir, b.collection)
    assert not (b.index_dir / "bm25" / b.collection).exists()
    assert not (b.index_dir / "collections" / b.collection).exists()
    assert _state(a) == kept
    with pytest.raises(UnknownCollectionError, match=repr(b.collection)):
        delete_collection(b)
    with pytest.raises(Exception, match=f"no collection {b.collection!r}"):
        open_index(b)


def test_collection_names_are_checked(tmp_path):
    from ingest import SettingsError

    for bad, words in (("a b", "letters, digits"), ("x", "3 to 63"), ("-ab", "3 to 63")):
        with pytest.raises(SettingsError, match=words):
            IngestSettings(index_dir=tmp_path, collection=bad)


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *map(str, args), "--embedding-model", "fake"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        input=stdin,
    )


def test_cli_lists_and_deletes_a_collection_only_when_confirmed(tmp_path):
    idx = tmp_path / "idx"
    docs = write(tmp_path / "d" / "a.txt", "Alpha. " * 50).parent
    other = write(tmp_path / "e" / "b.txt", "Beta pears. " * 50).parent
    assert run(docs, "--index-dir", idx, "-q").returncode == 0
    assert run(other, "--index-dir", idx, "--collection", "pears", "-q").returncode == 0

    listed = run("--list-collections", "--index-dir", idx)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("docs: 1 document, ") and lines[1].startswith("pears: 1 document")

    refused = run("--index-dir", idx, "--collection", "pears", "--delete-collection", stdin="")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: not deleting collection 'pears' without confirmation: pass --yes when not "
        "on a terminal"
    )
    assert "pears:" in run("--list-collections", "--index-dir", idx).stdout

    unknown = run("--index-dir", idx, "--collection", "nope", "--delete-collection", "--yes")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        f"error: no collection 'nope' in {idx}; the collections are: docs, pears"
    )

    done = run("--index-dir", idx, "--collection", "pears", "--delete-collection", "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"deleted collection 'pears' from {idx}"
    after = run("--list-collections", "--index-dir", idx).stdout.splitlines()
    assert len(after) == 1 and after[0].startswith("docs: 1 document")
    assert (other / "b.txt").exists()  # the documents are never touched

    usage = run("--index-dir", idx, "--delete-collection", "--yes")
    assert usage.returncode == 2 and "--delete-collection needs --collection NAME" in usage.stderr

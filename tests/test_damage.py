"""A damaged index, with real damaged files: every entry point says so in one line naming
the file and the remedy; ``--reset`` rebuilds it, moving the damaged files aside; ``--check``
and ``--check --repair`` find and fix what disagrees. Fake embedding."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot import Chatbot
from chatbot.config import ChatSettings
from chatbot.web.app import ChatApp
from chatbot.web.config import WebSettings
from chatbot.web.service import ChatService
from chatbot.web.ui import plain_text
from eval.__main__ import main as eval_main
from ingest import IndexDamagedError, IngestSettings, ingest_paths, open_index
from ingest.damage import forget_client
from ingest.lexical import LexicalIndex
from tests.conftest import corpus, subprocess_env, write

QUESTION = "What did the council vote on?"


def damage(path: Path, how: str) -> None:
    """Real damage: 100 random bytes over the header, or the file cut short."""
    if how == "overwrite":
        with open(path, "r+b") as fh:
            fh.write(random.Random(3).randbytes(100))
    else:
        os.truncate(path, 8192)


def remedy(index_dir: Path) -> str:
    return (
        f"run 'python -m ingest DIR --index-dir {index_dir} --reset' to rebuild it from the "
        "documents (the damaged files are kept aside)"
    )


def cli(module: str, *args: str | Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        env={**subprocess_env(), "DOCQA_EMBEDDING_MODEL": "fake", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def built(tmp_path: Path, fake_settings: IngestSettings) -> tuple[Path, IngestSettings]:
    docs = corpus(tmp_path / "docs")
    assert ingest_paths([docs], fake_settings).exit_code == 0
    return docs, fake_settings


DAMAGE = [
    ("chroma/chroma.sqlite3", "overwrite", "file is not a database"),
    ("manifest.sqlite3", "overwrite", "file is not a database"),
    ("chroma/chroma.sqlite3", "truncate", "database disk image is malformed"),
]


@pytest.mark.parametrize(("name", "how", "reason"), DAMAGE)
def test_a_damaged_index_is_one_line_everywhere_and_reset_rebuilds_it(
    built, name: str, how: str, reason: str
):
    docs, settings = built
    idx = settings.index_dir
    before = stored_ids(settings)
    docs_before = digest(docs)
    damage(idx / name, how)
    damaged_bytes = (idx / name).read_bytes()
    line = f"error: the index at {idx / name} is damaged ({reason}): {remedy(idx)}"

    with pytest.raises(IndexDamagedError) as raised:
        open_index(settings)
    assert f"error: {raised.value}" == line
    with pytest.raises(IndexDamagedError):
        Chatbot(ChatSettings(index=settings))

    ask = cli("chatbot", "ask", QUESTION, "--index-dir", idx)
    ingest = cli("ingest", docs, "--index-dir", idx)
    for run in (ask, ingest):
        assert run.returncode == 1, run.stderr
        assert run.stderr.strip() == line, run.stderr

    reset = cli("ingest", docs, "--index-dir", idx, "--reset")
    assert reset.returncode == 0, reset.stderr
    assert "damaged files moved aside" in reset.stdout
    assert "added 3, updated 0, deleted 0, unchanged 0" in reset.stdout
    top = name.split("/")[0]
    aside = [p for p in idx.glob(f"{top}.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and f"{idx / top} -> {aside[0].name}" in reset.stdout
    kept = aside[0] / "chroma.sqlite3" if top == "chroma" else aside[0]
    assert kept.read_bytes() == damaged_bytes  # moved, never deleted
    assert digest(docs) == docs_before  # the documents are never touched
    forget_client(settings)
    assert stored_ids(settings) == before
    answer = cli("chatbot", "ask", QUESTION, "--index-dir", idx)
    assert answer.returncode == 0 and "council" in answer.stdout, answer.stderr


def stored_ids(settings: IngestSettings) -> set[str]:
    index = open_index(settings)
    try:
        return index.all_ids()
    finally:
        index.close()


def test_the_app_shows_a_damaged_index_on_the_page(built, tmp_path: Path):
    _, settings = built
    damage(settings.index_dir / "chroma" / "chroma.sqlite3", "overwrite")
    web = WebSettings(
        chat=ChatSettings(index=settings, min_dense=-1.0),
        docs_dir=tmp_path / "documents",
        eval_cases_file=tmp_path / "cases.jsonl",
    )
    app = ChatApp(ChatService(web, seeds_dir=None))
    header = plain_text(app.header())
    assert "The index is damaged." in header
    assert "chroma.sqlite3 is damaged (file is not a database)" in header
    assert "--reset" in header
    message, *_ = list(app.chat(QUESTION, [], 5, ""))[-1]
    assert "docqa-error" in message and "is damaged (file is not a database)" in plain_text(message)
    rows, _, header = app.documents_view()
    assert rows == [] and "The index is damaged." in plain_text(header)


def test_eval_names_a_damaged_cache_index_and_fresh_rebuilds_it(tmp_path: Path, capsys):
    docs = corpus(tmp_path / "docs")
    qset = write(
        tmp_path / "set.jsonl",
        '{"id": "q", "question": "What did the council vote on?", "answers": ["water policy"], '
        '"answerable": true}\n',
    )
    cache = tmp_path / "cache"
    args = ["--docs", docs, "--set", qset, "--cache-dir", cache, "--answerer", "extractive"]
    args = [str(a) for a in [*args, "--out", tmp_path / "out", "--no-html", "-q"]]
    env = {"DOCQA_EMBEDDING_MODEL": "fake", "DOCQA_MIN_DENSE": "-1"}
    first = cli("eval", *args, env=env)
    assert first.returncode == 0, first.stderr
    (found,) = cache.glob("*/manifest.sqlite3")
    damage(found, "overwrite")
    broken = cli("eval", *args, env=env)
    assert broken.returncode == 1
    assert broken.stderr.strip() == (
        f"error: the eval index at {found} is damaged (file is not a database): run again "
        "with --fresh to rebuild it (the damaged files are kept aside)"
    )
    fresh = cli("eval", *args, "--fresh", env=env)
    assert fresh.returncode == 0, fresh.stderr
    assert list(found.parent.glob("manifest.sqlite3.damaged-*"))
    capsys.readouterr()
    assert eval_main  # the same main() the subprocess runs


def test_check_finds_an_older_chroma_backup_and_repair_reembeds_only_what_is_missing(built):
    docs, settings = built
    idx = settings.index_dir
    backup = idx.parent / "chroma-backup"
    shutil.copytree(idx / "chroma", backup)
    write(docs / "a.txt", "date 2020-01-02 Alpha report.\n\nThe harbour plan was approved.")
    write(docs / "d.txt", "A new document about ships in the harbour.")
    assert ingest_paths([docs], settings).exit_code == 0
    good = stored_ids(settings)

    clean = cli("ingest", "--check", "--index-dir", idx)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.strip() == (
        f"index ok: 4 documents, {len(good)} chunks; the manifest, the collection and the BM25 "
        "index agree"
    )

    forget_client(settings)
    shutil.rmtree(idx / "chroma")
    shutil.copytree(backup, idx / "chroma")  # restored from the older backup
    check = cli("ingest", "--check", "--index-dir", idx)
    assert check.returncode == 4, check.stderr
    lines = check.stdout.splitlines()
    assert f"{docs / 'a.txt'}: 1 of its chunks are missing from the collection" in lines
    assert f"{docs / 'd.txt'}: 1 of its chunks are missing from the collection" in lines
    assert any(ln.endswith("chunks in the collection belong to no document") for ln in lines)
    assert any(ln.startswith("BM25 index: ") for ln in lines)

    repair = cli("ingest", "--check", "--repair", "--index-dir", idx)
    assert repair.returncode == 0, repair.stderr
    assert "repaired: added 0, updated 2, deleted 0, unchanged 0" in repair.stdout
    assert "2 embedded" in repair.stdout  # only the missing chunks
    assert repair.stdout.splitlines()[-1].startswith("after repair: index ok: 4 documents")
    assert stored_ids(settings) == good


@pytest.mark.parametrize("how", ["removed", "trimmed"])
def test_check_repairs_a_missing_or_trimmed_bm25_side(built, how: str):
    _, settings = built
    idx = settings.index_dir
    lexical = idx / "bm25" / settings.collection
    if how == "removed":
        shutil.rmtree(idx / "bm25")
    else:
        for seg in lexical.glob("*.npz"):
            os.truncate(seg, 10)
    check = cli("ingest", "--check", "--index-dir", idx)
    assert check.returncode == 4
    assert check.stdout.strip() == "BM25 index: missing or unreadable"
    repair = cli("ingest", "--check", "--repair", "--index-dir", idx)
    assert repair.returncode == 0, repair.stderr
    saved = LexicalIndex.load(lexical)
    assert saved is not None and saved.live_ids() == stored_ids(settings)


def test_check_names_another_embedding_model(built):
    _, settings = built
    check = cli(
        "ingest", "--check", "--index-dir", settings.index_dir, env={"DOCQA_EMBEDDING_MODEL": "x"}
    )
    assert check.returncode == 1  # the index refuses to open with another model
    assert "was built with embedding model 'fake'" in check.stderr

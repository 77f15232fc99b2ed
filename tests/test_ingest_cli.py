"""``python -m ingest`` as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import subprocess_env, write


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *map(str, args), "--embedding-model", "fake"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_flags_and_exit_codes():
    out = subprocess.run(
        [sys.executable, "-m", "ingest", "--help"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for flag in ("--index-dir", "--dry-run", "--reset", "Exit codes", "DOCQA_"):
        assert flag in out


def test_cli_plan_summary_partial_failure_and_reset(tmp_path):
    docs = tmp_path / "docs"
    write(docs / "a.txt", "Alpha. " * 50)
    write(docs / "b.md", "# Beta\n\nBeta text.")
    (docs / "bad.pdf").write_bytes(b"%PDF-1.4 truncated")
    write(docs / ".hidden.txt", "secret")
    write(docs / "notes.xyz", "unsupported")
    idx = tmp_path / "idx"

    dry = run(docs, "--index-dir", idx, "--dry-run")
    assert dry.returncode == 3
    assert dry.stdout.strip() == (
        "plan: add 2, update 0, delete 0, unchanged 0, failed 1 (chunks: write 2, remove 0)"
    )
    assert "added" not in dry.stdout

    first = run(docs, "--index-dir", idx)
    assert first.returncode == 3, first.stderr
    assert "added 2, updated 0, deleted 0, unchanged 0, failed 1" in first.stdout
    skipped = [ln for ln in first.stderr.splitlines() if ln.startswith("skipped ")]
    assert len(skipped) == 1 and "bad.pdf: not a readable PDF" in skipped[0]
    assert ".hidden.txt: skipped hidden file" in first.stderr
    assert "notes.xyz: skipped unsupported file type" in first.stderr

    (docs / "bad.pdf").unlink()
    second = run(docs, "--index-dir", idx)
    assert second.returncode == 0
    assert "added 0, updated 0, deleted 0, unchanged 2" in second.stdout

    reset = run(docs, "--index-dir", idx, "--reset")
    assert reset.returncode == 0
    assert "reset collection 'docs'" in reset.stdout
    assert "added 2, updated 0, deleted 0, unchanged 0" in reset.stdout


def test_cli_errors_are_one_line(tmp_path):
    missing = run(tmp_path / "nope", "--index-dir", tmp_path / "idx")
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("nope: no such file or directory")
    assert "Traceback" not in missing.stderr

    bad = run(tmp_path, "--index-dir", tmp_path / "idx", "--chunk-size", "999")
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "error: chunk_size must be at most 254 tokens (the model window less its two "
        "special tokens), got 999"
    )


def test_env_prefix_sets_the_index_dir(tmp_path):
    write(tmp_path / "docs" / "a.txt", "Alpha text.")
    env = subprocess_env() | {"DOCQA_INDEX_DIR": str(tmp_path / "envidx")}
    proc = subprocess.run(
        [sys.executable, "-m", "ingest", str(tmp_path / "docs"), "--embedding-model", "fake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "envidx" / "manifest.sqlite3").exists()

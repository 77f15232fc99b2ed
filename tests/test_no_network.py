"""Nothing reaches out: ``python -m ingest`` and ``python -m chatbot ask`` succeed, with the
real packaged model, inside a network namespace that has only the loopback interface."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEED, subprocess_env, write

pytestmark = [pytest.mark.model, pytest.mark.slow]

QUESTION = "Who told federal prosecutors to seek the death penalty in drug cases?"


@pytest.fixture
def isolated_prefix() -> Iterator[list[str]]:
    """A command prefix that runs its argument in a namespace with only ``lo``: ``unshare -n``
    (root, or a user namespace), else a fresh ``ip netns``. Fails, never skips: a check that
    quietly does not run would prove nothing."""
    tried: list[str] = []
    unshare = shutil.which("unshare")
    for prefix in ([unshare, "-n"], [unshare, "-r", "-n"]) if unshare else ():
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            yield prefix
            return
        tried.append(f"{' '.join(prefix[1:])}: {probe.stderr.strip()}")
    ip = shutil.which("ip")
    if ip:
        name = f"docqa-test-{os.getpid()}"
        made = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True)
        if made.returncode == 0:
            try:
                yield [ip, "netns", "exec", name]
            finally:
                subprocess.run([ip, "netns", "delete", name], capture_output=True)
            return
        tried.append(f"ip netns add: {made.stderr.strip()}")
    pytest.fail(
        "cannot isolate the network: neither `unshare -n` nor `ip netns` works here "
        f"({'; '.join(tried) or 'neither tool is installed'}); run this test as root or "
        "where user namespaces are enabled"
    )


def test_ingest_and_ask_without_any_network(tmp_path: Path, isolated_prefix: list[str]):
    docs = tmp_path / "docs"
    write(docs / "seed.txt", SEED.read_text(encoding="utf-8"))
    index = tmp_path / "index"
    script = (
        "set -e\n"
        "ip link set lo up 2>/dev/null || true\n"
        # Prove the namespace (without sending anything anywhere): loopback is the only
        # interface, so no address but 127.0.0.1 can be reached.
        '"$PY" -c "import socket; print(\'interfaces\', '
        '*sorted(n for _, n in socket.if_nameindex()))"\n'
        '"$PY" -m ingest "$DOCS" --index-dir "$INDEX" -q\n'
        '"$PY" -m chatbot ask "$QUESTION" --index-dir "$INDEX" --json\n'
    )
    env = subprocess_env()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env.update(PY=sys.executable, DOCS=str(docs), INDEX=str(index), QUESTION=QUESTION)
    proc = subprocess.run(
        [*isolated_prefix, "sh", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, f"rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = proc.stdout.splitlines()
    assert lines[0] == "interfaces lo", lines[0]
    assert any(line.startswith("added 1,") for line in lines), proc.stdout
    answer = json.loads(lines[-1])
    assert answer["declined"] is False and answer["citations"]
    assert "Jeff Sessions" in answer["text"] and "[1]" in answer["text"]
    assert "Traceback" not in proc.stderr

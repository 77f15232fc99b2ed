"""Accounts without a server: password hashes, the users file (no clear password in it, bad
files named by file and line), ``python -m chatbot adduser|apikey|deluser``, the failed-login
limit with an injected clock, role checks and conversations scoped to their user."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.accounts import (
    AccountsError,
    Users,
    UsersFile,
    add_key,
    hash_password,
    key_digest,
    load_users,
    save_users,
    set_user,
    verify_password,
)
from chatbot.conversations import ConversationError, ConversationStore
from chatbot.login_limit import LoginLimiter
from chatbot.web.access import Access, LoginRefused
from chatbot.web.config import WebSettings
from chatbot.web.saved import SavedChats
from ingest import SettingsError
from tests.conftest import ROOT, subprocess_env, write

PASSWORD = "correct horse battery"


def secret(name: str) -> str:
    """Each test user's password (a user name must not be in its password)."""
    return f"{PASSWORD} {sum(map(ord, name))}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Req:
    """What the handlers read of a ``gr.Request``: the logged-in user name."""

    def __init__(self, username: str | None) -> None:
        self.username = username


def users_file(tmp_path: Path, **roles: str) -> Path:
    users = Users()
    for name, role in roles.items():
        users = set_user(users, name, role, secret(name))
    path = tmp_path / "users"
    save_users(path, users)
    return path


def cli(*args: str, stdin: str = "", env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "chatbot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**subprocess_env(), **(env or {})},
        cwd=ROOT,
        timeout=60,
    )


def test_hash_verifies_its_password_only_and_carries_its_parameters():
    encoded = hash_password(PASSWORD)
    assert encoded.startswith("scrypt$32768$8$1$") and PASSWORD not in encoded
    assert verify_password(PASSWORD, encoded)
    assert not verify_password(PASSWORD + "!", encoded)
    assert not verify_password("", encoded)
    assert hash_password(PASSWORD) != encoded  # salted
    cheap = hash_password(PASSWORD, n=1024, r=4, p=2)
    assert cheap.startswith("scrypt$1024$4$2$") and verify_password(PASSWORD, cheap)


def test_users_file_round_trip_holds_no_clear_password_or_key(tmp_path: Path):
    path = users_file(tmp_path, ann="editor", bob="reader")
    users, key = add_key(load_users(path), "bob")
    save_users(path, users)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text and key not in text and key_digest(key) in text
    loaded = load_users(path)
    assert [(u.name, u.role) for u in loaded] == [("ann", "editor"), ("bob", "reader")]
    assert loaded.authenticate("ann", secret("ann")).name == "ann"
    assert loaded.authenticate("ann", secret("bob")) is None
    assert loaded.authenticate("nobody", secret("ann")) is None
    assert loaded.by_api_key(key).name == "bob" and loaded.by_api_key(key + "x") is None
    # Changing a role keeps the password; a new password replaces the old.
    changed = set_user(loaded, "ann", "reader", None)
    assert changed.get("ann").role == "reader"
    assert changed.authenticate("ann", secret("ann")) is not None
    changed = set_user(changed, "ann", None, "another long secret")
    assert changed.authenticate("ann", secret("ann")) is None
    assert changed.authenticate("ann", "another long secret") is not None
    assert [t.name for t in tmp_path.iterdir()] == ["users"]  # no temporary file left


@pytest.mark.parametrize(
    "line, message",
    [
        ("ann:admin:{hash}:", "2: unknown role 'admin'"),
        ("ann:reader:{hash}", "2: expected name:role:password hash:key digests, got 3"),
        ("ann:reader:plaintext:", "2: not a password hash"),
        ("bad name:reader:{hash}:", "2: a user name is"),
        ("ann:reader:{hash}:abc", "2: not a SHA-256 key digest: 'abc'"),
        (
            "bob:reader:{hash}:\nbob:editor:{hash}:",
            "3: duplicate user 'bob' (first on line 2)",
        ),
    ],
)
def test_a_bad_users_file_names_the_file_and_line(tmp_path: Path, line: str, message: str):
    path = write(tmp_path / "users", "# users\n" + line.format(hash=hash_password("x" * 12)) + "\n")
    with pytest.raises(AccountsError) as err:
        load_users(path)
    assert str(err.value).startswith(f"{path}:{message}")
    assert "\n" not in str(err.value)


def test_an_unreadable_users_file_and_conflicting_settings_are_errors(tmp_path: Path):
    with pytest.raises(AccountsError, match=f"cannot read the users file {tmp_path / 'none'}"):
        Access.from_settings(WebSettings(users_file=str(tmp_path / "none")))
    with pytest.raises(SettingsError, match="users_file .* or login_user .* not both"):
        WebSettings(users_file="users", login_user="ann", login_password="pw")


def test_the_users_file_is_reread_when_it_changes_and_a_bad_edit_keeps_the_old(
    tmp_path: Path, caplog
):
    path = users_file(tmp_path, ann="reader")
    source = UsersFile(path)
    assert [u.name for u in source.users()] == ["ann"]
    save_users(path, set_user(load_users(path), "bob", "editor", secret("bob")))
    assert [u.name for u in source.users()] == ["ann", "bob"]
    write(path, path.read_text() + "carl:boss:x:\n")
    with caplog.at_level(logging.ERROR, logger="chatbot.accounts"):
        assert [u.name for u in source.users()] == ["ann", "bob"]
    assert "unknown role 'boss'" in caplog.text or "not a password hash" in caplog.text


def test_adduser_apikey_deluser_through_the_cli(tmp_path: Path):
    path = tmp_path / "conf" / "users"
    env = {"DOCQA_USERS_FILE": str(path)}
    done = cli(
        "adduser", "ann", "--role", "editor", "--password-stdin", stdin=PASSWORD + "\n", env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"added user ann (editor) in {path}\n"
    assert PASSWORD not in done.stdout + done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and PASSWORD not in path.read_text()
    assert load_users(path).authenticate("ann", PASSWORD).role == "editor"

    weak = cli("adduser", "bob", "--password-stdin", "--users-file", str(path), stdin="bob12\n")
    assert weak.returncode == 1 and "bob12" not in weak.stderr
    assert weak.stderr == "error: the password is too short: 5 characters, at least 10 needed\n"
    empty = cli("adduser", "bob", "--password-stdin", "--users-file", str(path), stdin="\n")
    assert (empty.returncode, empty.stderr) == (1, "error: the password is empty\n")
    no_tty = cli("adduser", "bob", "--users-file", str(path))
    assert no_tty.returncode == 1 and "use --password-stdin" in no_tty.stderr
    assert load_users(path).get("bob") is None

    update = cli("adduser", "ann", "--role", "reader", "--keep-password", env=env)
    assert update.stdout == f"updated user ann (reader) in {path}\n"
    assert load_users(path).authenticate("ann", PASSWORD).role == "reader"
    new = cli("adduser", "ann", "--password-stdin", env=env, stdin="a new long secret\n")
    assert new.stdout == f"updated user ann (reader, new password) in {path}\n"
    assert load_users(path).authenticate("ann", PASSWORD) is None

    key = cli("apikey", "ann", env=env)
    assert key.returncode == 0 and key.stdout.startswith("sk-docqa-")
    assert "shown only now" in key.stderr
    assert load_users(path).by_api_key(key.stdout.strip()).name == "ann"
    assert key.stdout.strip() not in path.read_text()
    assert cli("apikey", "zed", env=env).stderr.startswith("error: no user 'zed'")

    assert cli("deluser", "ann", env=env).stdout == f"removed user ann from {path}\n"
    assert len(load_users(path)) == 0
    assert cli("deluser", "ann", env=env).stderr == "error: no user 'ann'\n"


def test_the_app_refuses_to_start_on_a_bad_users_file(tmp_path: Path):
    path = write(tmp_path / "users", "ann:root:x:\n")
    done = cli("--index-dir", str(tmp_path / "index"), env={"DOCQA_USERS_FILE": str(path)})
    assert done.returncode == 1
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"error: {path}:1: unknown role 'root': a role is reader or editor"
    )


def test_failed_logins_are_limited_per_name_and_address_even_the_right_password(
    tmp_path: Path, caplog
):
    clock = Clock()
    users = UsersFile(users_file(tmp_path, ann="reader", bob="reader"))
    access = Access(users, LoginLimiter(5, 300, clock))
    right = secret("ann")
    with caplog.at_level(logging.WARNING, logger="chatbot.web.access"):
        for _ in range(5):
            assert access.check_login("ann", "wrong password!", "10.0.0.1") is None
            clock.now += 10
    assert caplog.text.count("failed login for 'ann' from 10.0.0.1") == 5
    assert "wrong password" not in caplog.text and right not in caplog.text
    # The name is locked, from any address, even with the right password.
    with pytest.raises(LoginRefused, match=r"too many failed logins, try again in 250 s"):
        access.check_login("ann", right, "10.0.0.9")
    # The address is locked for every name.
    with pytest.raises(LoginRefused):
        access.check_login("bob", secret("bob"), "10.0.0.1")
    assert access.check_login("bob", secret("bob"), "10.0.0.2").name == "bob"
    clock.now += 249
    with pytest.raises(LoginRefused, match="try again in 1 s"):
        access.check_login("ann", right, "10.0.0.9")
    clock.now += 1  # the first failure is 300 s old: four left in the window
    assert access.check_login("ann", right, "10.0.0.9").name == "ann"
    assert access.check_login("ann", "wrong again!", "10.0.0.9") is None
    with pytest.raises(LoginRefused, match="try again in 10 s"):
        access.check_login("ann", right, "10.0.0.3")


def test_roles_decide_who_changes_the_documents(tmp_path: Path):
    access = Access(UsersFile(users_file(tmp_path, ann="editor", bob="reader")))
    assert access.refusal(Req("ann")) is None
    assert access.refusal(Req("bob")) == (
        "Refused: only editors can change documents or collections; bob is a reader."
    )
    assert "not a user" in access.refusal(Req("ghost")) and access.refusal(None)
    assert "**bob** (reader)" in access.whoami(Req("bob")) and "(logout)" in access.whoami(
        Req("bob")
    )
    no_accounts = Access()
    assert no_accounts.refusal(None) is None and no_accounts.user(Req("x")) is None
    assert no_accounts.auth() is None
    shared = Access.from_settings(WebSettings(login_user="u", login_password="p"))
    assert shared.auth() == ("u", "p")


def test_conversations_are_scoped_to_their_user(tmp_path: Path):
    from chatbot.web.pageview import PageViews

    access = Access(UsersFile(users_file(tmp_path, ann="reader", bob="reader")))
    store = ConversationStore(tmp_path / "c.sqlite3")
    saved = SavedChats(
        store, "docs", PageViews(tmp_path, "docs"), tmp_path / "cases.jsonl", owner=access.user
    )
    ann, bob = Req("ann"), Req("bob")
    session, _ = saved.ask(None, "What is the harbour fee?", 0, request=ann)
    cid = session["id"]
    assert store.owner(cid) == "ann"
    assert saved.choices(ann) == [("What is the harbour fee? · docs", cid)]
    assert saved.choices(bob) == []
    # Bob reaching Ann's conversation by its id: "not found", the same as a missing one.
    missing = saved.open("0" * 32, bob)[-1]
    assert saved.open(cid, bob)[-1] == f"no conversation {cid!r}" == missing.replace("0" * 32, cid)
    assert saved.rename(session, "mine now", bob)[1] == f"Not renamed: no conversation {cid!r}"
    assert saved.delete(session, bob)[-1] == f"Not deleted: no conversation {cid!r}"
    with pytest.raises(ConversationError, match="no conversation"):
        saved.ask(session, "a follow-up in Ann's conversation", 1, request=bob)
    assert store.get(cid).title == "What is the harbour fee?" and len(store.turns(cid)) == 1
    # Ann still has it all; without accounts everyone sees every conversation, as before.
    assert saved.open(cid, ann)[-1].startswith("Reopened")
    assert saved.rename(session, "Fees", ann)[1] == "Renamed."
    assert [c.title for c in store.list()] == ["Fees"]
    store.close()

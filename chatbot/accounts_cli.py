"""``python -m chatbot adduser|apikey|deluser``: manage the users file (``DOCQA_USERS_FILE``
or ``--users-file``). Parses, calls ``chatbot.accounts`` and says what it did; a password
is read with a prompt (twice) or from stdin and is never printed or logged."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TextIO

from chatbot.accounts import (
    ROLES,
    AccountsError,
    add_key,
    read_or_empty,
    save_users,
    set_user,
)

COMMANDS = ("adduser", "apikey", "deluser")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The three subcommands, on ``python -m chatbot``'s subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--users-file", type=Path, help="the users file (default: DOCQA_USERS_FILE)"
    )
    common.add_argument("name", help="the user name")
    add = sub.add_parser(
        "adduser",
        parents=[common],
        help="add a user, or change one's role or password",
        description="Add a user to the users file, or change an existing user's role "
        "and password. The password is asked twice (or read from stdin).",
    )
    add.add_argument(
        "--role",
        choices=ROLES,
        help="reader (asks) or editor (also changes "
        "the documents); a new user is a reader unless told",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    add.add_argument(
        "--keep-password", action="store_true", help="an existing user's role only: no new password"
    )
    sub.add_parser(
        "apikey",
        parents=[common],
        help="create an API key for a user (printed once; only its digest is kept)",
    )
    sub.add_parser("deluser", parents=[common], help="remove a user (and their API keys)")


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The new password: stdin's first line, or typed twice at a terminal prompt."""
    stdin = stdin or sys.stdin
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise AccountsError("no terminal to ask the password on: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise AccountsError("the two passwords differ")
    return first


def run(args: argparse.Namespace, default_file: str, out: TextIO | None = None) -> int:
    """Do ``args.command`` on the users file; errors raise ``AccountsError``."""
    out = out or sys.stdout
    path = args.users_file or (Path(default_file).expanduser() if default_file else None)
    if path is None:
        raise AccountsError("no users file: give --users-file PATH or set DOCQA_USERS_FILE")
    users = read_or_empty(path)
    name = args.name
    if args.command == "adduser":
        old = users.get(name)
        if args.keep_password and old is None:
            raise AccountsError(f"--keep-password needs an existing user, and {name!r} is new")
        password = None if args.keep_password else read_password(args.password_stdin)
        users = set_user(users, name, args.role or (None if old else "reader"), password)
        save_users(path, users)
        user = users.get(name)
        assert user is not None
        what = "added" if old is None else "updated"
        changed = "" if password is None or old is None else ", new password"
        out.write(f"{what} user {name} ({user.role}{changed}) in {path}\n")
    elif args.command == "apikey":
        users, key = add_key(users, name)
        save_users(path, users)
        out.write(f"{key}\n")
        sys.stderr.write(
            f"API key for {name} created: it is shown only now ({path} keeps its digest).\n"
        )
    elif args.command == "deluser":
        users = users.without(name)
        save_users(path, users)
        out.write(f"removed user {name} from {path}\n")
    return 0

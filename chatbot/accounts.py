"""User accounts: the users file (one line a user), salted scrypt password hashes, roles
and the SHA-256 digests of each user's API keys. Pure storage and checks: no web code.

A line of the users file is ``name:role:password-hash:key-digest,key-digest``; ``#`` starts
a comment line. The hash is ``scrypt$N$r$p$salt$hash`` (salt and hash in base64), so its
parameters travel with it; a key digest is the SHA-256 of the key in hex. Nothing in the
file is a password or a key in clear. ``python -m chatbot adduser`` writes it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path

logger = logging.getLogger(__name__)

READER, EDITOR = "reader", "editor"
ROLES = (READER, EDITOR)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD_CHARS = 10
# scrypt with N=2^15, r=8, p=1: 32 MiB and some 0.1 s a hash on a laptop (OWASP's floor is
# N=2^17 at r=8 for interactive logins; 2^15 keeps a login quick on a small server).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
KEY_PREFIX = "sk-docqa-"
HEADER = (
    "# docqa users: name:role:password hash:API key digests (SHA-256, comma-separated).\n"
    "# Written by `python -m chatbot adduser` and `apikey`; no password or key is in clear.\n"
)


class AccountsError(ValueError):
    """A bad users file, user name, role or password; the message names it."""


# ---------------------------------------------------------------- passwords and keys


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 1024 * 1024,
        dklen=HASH_BYTES,
    )


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash with its parameters: ``scrypt$N$r$p$salt$hash``."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, n, r, p)
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, hash) of an encoded hash; AccountsError when it is not one."""
    parts = encoded.split("$")
    try:
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("not scrypt$N$r$p$salt$hash")
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
        if n < 2 or n & (n - 1) or r < 1 or p < 1 or not salt or not digest:
            raise ValueError("bad parameters")
    except ValueError as exc:
        raise AccountsError(f"not a password hash ({exc}): {encoded[:24]!r}…") from None
    return n, r, p, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the hash, compared in constant time."""
    n, r, p, salt, digest = _parse_hash(encoded)
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def check_password(password: str, name: str) -> None:
    """Refuse an empty or weak password, saying why (never echoing it)."""
    if not password:
        raise AccountsError("the password is empty")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountsError(
            f"the password is too short: {len(password)} characters, at least "
            f"{MIN_PASSWORD_CHARS} needed"
        )
    if password.strip() != password:
        raise AccountsError("the password starts or ends with a space")
    if name.lower() in password.lower():
        raise AccountsError(f"the password contains the user name {name!r}")
    if len(set(password)) < 4:
        raise AccountsError("the password has fewer than 4 different characters")


def new_api_key() -> str:
    """A new random API key (``sk-docqa-`` and 43 URL-safe characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """The SHA-256 of an API key, in hex: what the users file keeps."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise AccountsError(
            f"a user name is 1 to 64 letters, digits, '.', '_', '@' or '-' (not first), "
            f"got {name!r}"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountsError(f"unknown role {role!r}: a role is {' or '.join(ROLES)}")
    return role


# ---------------------------------------------------------------- users


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    key_digests: tuple[str, ...] = ()

    @property
    def can_edit(self) -> bool:
        return self.role == EDITOR

    def line(self) -> str:
        return f"{self.name}:{self.role}:{self.password_hash}:{','.join(self.key_digests)}"


@functools.cache
def _dummy_hash() -> str:
    """Verified against when a name is unknown, so it takes as long as a known one."""
    return hash_password(secrets.token_urlsafe(16))


class Users:
    """The users of one users file, by name."""

    def __init__(self, users: list[User] | tuple[User, ...] = ()) -> None:
        self._by_name = {u.name: u for u in users}

    def __len__(self) -> int:
        return len(self._by_name)

    def __iter__(self):
        return iter(self._by_name.values())

    def get(self, name: str | None) -> User | None:
        return self._by_name.get(name or "")

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (an unknown name costs the same)."""
        user = self.get(name)
        ok = verify_password(password, user.password_hash if user else _dummy_hash())
        return user if ok and user is not None else None

    def by_api_key(self, key: str) -> User | None:
        """The user one of whose keys ``key`` is (digests compared in constant time)."""
        given = key_digest(key)
        found = None
        for user in self._by_name.values():
            for digest in user.key_digests:
                if hmac.compare_digest(given, digest):
                    found = user
        return found

    def with_user(self, user: User) -> Users:
        """A copy with ``user`` added or replaced (same name)."""
        return Users([*(u for u in self if u.name != user.name), user])

    def without(self, name: str) -> Users:
        if self.get(name) is None:
            raise AccountsError(f"no user {name!r}")
        return Users([u for u in self if u.name != name])


def parse_users(text: str, path: Path | str = "<users>") -> Users:
    """Users from the users file's text; AccountsError names the file and line."""
    users: list[User] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parts = line.split(":")
            if len(parts) != 4:
                raise AccountsError(
                    f"expected name:role:password hash:key digests, got {len(parts)} fields"
                )
            name, role, password_hash, keys = parts
            check_name(name)
            check_role(role)
            _parse_hash(password_hash)
            digests = tuple(d for d in keys.split(",") if d)
            for d in digests:
                if not re.fullmatch(r"[0-9a-f]{64}", d):
                    raise AccountsError(f"not a SHA-256 key digest: {d[:20]!r}")
            if name in seen:
                raise AccountsError(f"duplicate user {name!r} (first on line {seen[name]})")
        except AccountsError as exc:
            raise AccountsError(f"{path}:{lineno}: {exc}") from None
        seen[name] = lineno
        users.append(User(name, role, password_hash, digests))
    return Users(users)


def load_users(path: Path) -> Users:
    """Read and check the users file; AccountsError names the file (and line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountsError(f"cannot read the users file {path}: {exc}") from None
    return parse_users(text, path)


def save_users(path: Path, users: Users) -> None:
    """Write the users file atomically (a 0600 temporary file renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = HEADER + "".join(u.line() + "\n" for u in users)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_or_empty(path: Path) -> Users:
    """The users file's users, or none when there is no file yet (``adduser``'s start)."""
    return load_users(path) if Path(path).exists() else Users()


def set_user(users: Users, name: str, role: str | None, password: str | None) -> Users:
    """Add a user or change one's role and/or password (hashed here)."""
    check_name(name)
    old = users.get(name)
    if old is None and (role is None or password is None):
        raise AccountsError(f"a new user needs a role and a password: {name!r}")
    if role is not None:
        check_role(role)
    if password is not None:
        check_password(password, name)
    base = old or User(name, role or READER, "")
    return users.with_user(
        replace(
            base,
            role=role or base.role,
            password_hash=hash_password(password) if password is not None else base.password_hash,
        )
    )


def add_key(users: Users, name: str) -> tuple[Users, str]:
    """A new API key for user ``name``: (the users with its digest, the key itself)."""
    user = users.get(name)
    if user is None:
        raise AccountsError(f"no user {name!r}: add them first with `adduser`")
    key = new_api_key()
    return users.with_user(replace(user, key_digests=(*user.key_digests, key_digest(key)))), key


class UsersFile:
    """The users file, read at start-up (an error there stops the app) and again when it
    changes; a bad edit later is logged and the users read before it stay in force."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._users = load_users(self.path)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def users(self) -> Users:
        stamp = self._stat()
        with self._lock:
            if stamp is not None and stamp != self._stamp:
                try:
                    self._users = load_users(self.path)
                    logger.info("users file %s re-read: %d users", self.path, len(self._users))
                except AccountsError as exc:
                    logger.error("users file changed but not used: %s", exc)
                self._stamp = stamp
            return self._users

"""Local workspace accounts: names, roles and scrypt password hashes in one JSON file.

``users.json`` maps a user name to ``{"role", "salt", "hash", "created", "session"}``; the hash is
``hashlib.scrypt(password, salt=16 random bytes, n=2**14, r=8, p=1)``, compared in constant time.
``session`` is the account's session generation (random; a signed-in browser's cookie carries the
one it signed in under, checked on every request): a new one on sign-out, password reset and role
change ends every session the account had. Roles, each including the one before: ``viewer``
(reads everything), ``editor`` (edits drafts and submits them for review), ``approver``
(approves others' drafts, publishes, rolls back).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from origin.registry import write_atomic

ROLES = ("viewer", "editor", "approver")
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8


class AccountError(ValueError):
    """A user that cannot be added or found; the message says why."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str

    def can(self, role: str) -> bool:
        """Whether this user holds ``role`` or a stronger one."""
        return ROLES.index(self.role) >= ROLES.index(role)


def _generation() -> str:
    return secrets.token_hex(8)


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class Accounts:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, dict[str, str | int]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str | int]] = json.loads(self.path.read_text())
        return data

    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        """Create (or, with ``replace``, reset) a user; every problem is named at once."""
        problems = []
        if not NAME.match(name):
            problems.append(f"name {name!r}: 1-64 letters, digits or _ . @ -")
        if role not in ROLES:
            problems.append(f"role {role!r}: one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            problems.append(f"password: at least {MIN_PASSWORD} characters")
        if name in self._load() and not replace:
            problems.append(f"user {name!r} exists (use --replace to reset it)")
        if problems:
            raise AccountError("; ".join(problems))
        salt = secrets.token_bytes(16)
        with self._locked():
            users = self._load()
            if name in users and not replace:
                raise AccountError(f"user {name!r} exists (use --replace to reset it)")
            users[name] = {
                "role": role,
                "salt": salt.hex(),
                "hash": _hash(password, salt).hex(),
                "created": int(time.time()),
                "session": _generation(),  # a reset or new role ends the old sessions
            }
            self._save(users)
        return User(name, role)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (the web app signing someone out, the CLI resetting them)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self, users: dict[str, dict[str, str | int]]) -> None:
        write_atomic(self.path, json.dumps(users, indent=2, sort_keys=True).encode())
        os.chmod(self.path, 0o600)

    def get(self, name: str) -> User | None:
        entry = self._load().get(name)
        return User(name, str(entry["role"])) if entry else None

    def generation(self, name: str) -> str | None:
        """The account's session generation (None: no such account)."""
        entry = self._load().get(name)
        return str(entry.get("session", "")) if entry else None

    def signed_in(self, name: str, generation: object) -> User | None:
        """The user a session names, if its generation is still the account's (not signed out,
        reset, given another role or removed since)."""
        entry = self._load().get(name)
        if not entry or not isinstance(generation, str):
            return None
        current = str(entry.get("session", ""))
        if not hmac.compare_digest(current.encode(), generation.encode()):
            return None
        return User(name, str(entry["role"]))

    def end_sessions(self, name: str) -> bool:
        """Give the account a new session generation: every session it had ends (sign-out)."""
        with self._locked():
            users = self._load()
            if name not in users:
                return False
            users[name]["session"] = _generation()
            self._save(users)
        return True

    def set_role(self, name: str, role: str) -> User:
        """Change a user's role (their sessions end: they sign in again under it)."""
        if role not in ROLES:
            raise AccountError(f"role {role!r}: one of {', '.join(ROLES)}")
        with self._locked():
            users = self._load()
            if name not in users:
                raise AccountError(f"no user {name!r}")
            users[name]["role"] = role
            users[name]["session"] = _generation()
            self._save(users)
        return User(name, role)

    def remove(self, name: str) -> bool:
        """Delete an account (its sessions end with it); whether there was one."""
        with self._locked():
            users = self._load()
            if users.pop(name, None) is None:
                return False
            self._save(users)
        return True

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password matches; ``None`` otherwise (same work either way)."""
        entry = self._load().get(name)
        salt = bytes.fromhex(str(entry["salt"])) if entry else b"\0" * 16
        expected = bytes.fromhex(str(entry["hash"])) if entry else b"\0" * 32
        ok = hmac.compare_digest(_hash(password, salt), expected)
        return User(name, str(entry["role"])) if entry and ok else None

    def users(self) -> list[User]:
        return [User(n, str(e["role"])) for n, e in sorted(self._load().items())]


class Throttle:
    """Failed sign-ins allowed per key (a user name, a client address): at most ``limit`` in
    any ``window`` seconds; past that, the key is refused until its oldest failure ages out.

    The failures are rows of a small SQLite file (``HOME/throttle.db``, mode 0600), so they
    survive a restart and every workspace process on the same home counts the same failures;
    SQLite's own file locking keeps concurrent writers apart. Times are wall-clock seconds
    (``time.time()``: a monotonic clock does not compare across processes). It slows guessing;
    the scrypt hash makes each guess cost."""

    MAX_KEY = 200  # a key is built from what a visitor typed: kept short

    def __init__(self, path: Path, limit: int = 5, window: float = 900.0) -> None:
        self.path = path
        self.limit = limit
        self.window = window
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))  # private before any row
        with self._connect() as db:
            db.execute("create table if not exists failures (key text not null, ts real not null)")
            db.execute("create index if not exists failures_key on failures (key, ts)")

    def _connect(self) -> contextlib.closing[sqlite3.Connection]:
        # one connection per call: requests come from any thread, and processes share the file
        return contextlib.closing(sqlite3.connect(self.path, timeout=10.0, isolation_level=None))

    def _key(self, key: str) -> str:
        return key[: self.MAX_KEY]

    def wait(self, keys: list[str], now: float) -> float:
        """Seconds until every key may try again (0: now)."""
        waits = []
        with self._connect() as db:
            for key in keys:
                recent = [
                    ts
                    for (ts,) in db.execute(
                        "select ts from failures where key = ? and ts > ? order by ts",
                        (self._key(key), now - self.window),
                    )
                ]
                if len(recent) >= self.limit:
                    waits.append(recent[-self.limit] + self.window - now)
        return max(waits, default=0.0)

    def fail(self, keys: list[str], now: float) -> None:
        """Record a failure for each key (and forget failures older than the window)."""
        with self._connect() as db:
            db.execute("begin immediate")
            db.execute("delete from failures where ts <= ?", (now - self.window,))
            db.executemany(
                "insert into failures (key, ts) values (?, ?)",
                [(self._key(k), now) for k in keys],
            )
            db.execute("commit")

    def clear(self, key: str) -> int:
        """Forget a key's failures (an administrator unlocking a name); how many there were."""
        with self._connect() as db:
            done = db.execute("delete from failures where key = ?", (self._key(key),))
            return done.rowcount

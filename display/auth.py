"""Who may use the console: users and roles, password hashes, log-in rate limits, CSRF tokens, the session key.

Users
-----
Users live in the journal's database, table ``web_users`` (created by the Alembic migration
``0002_web_users`` with the rest of the schema when the store is opened), through SQLAlchemy: a name,
a role (``secretary``, ``chair``, ``operator``, ``observer``; see docs/web-protocol.md) and an argon2id
hash of the password (argon2-cffi's defaults; a hash made with older parameters is redone at the next
good log-in).  The first user is made on the controller with ``chamber users add NAME --role secretary``.

A session (Flask's signed cookie) names the user and carries ``stamp``, a short digest of the
password hash it logged in with: ``chamber users passwd`` changes the hash, so every session opened
with the old password stops working at its next request, and a removed user's sessions with it.  The
role is read from the table on every request and command, never trusted from the cookie.

Log-in rate limits
------------------
``LoginGuard`` counts failed log-ins in memory, per user name and per client address, over a sliding
minute: the sixth failure within a minute on either key is refused with HTTP 429 and the seconds to
wait, whatever the password, so a guesser can neither hammer one account nor spray many from one
address.  A good log-in clears its name's count (not its address's).  The counts are forgotten at a
restart; they only need to make guessing slow.

CSRF
----
Each session holds a random token; every POST (form field ``csrf_token`` or header ``X-CSRF-Token``)
and every console command (in the connection's ``auth`` or the command's ``csrf`` key) must carry it,
compared in constant time.

Log-outs
--------
A log-out revokes its session id (``StoredLogouts``: table ``web_logouts``, made by the migration
``0003_web_logouts``), so a copied cookie of that session is refused, also after a restart, for the
session's lifetime.

The session key
---------------
``[web] secret_key_file`` names a file with the key that signs session cookies; it is created (mode
0600, 32 random bytes hex-encoded) on the first start.  Without it the key is random per start and
everybody logs in again after a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import BigInteger, Column, MetaData, String, Table, delete, insert, select, update
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

log = logging.getLogger("display.auth")

ROLES = ("secretary", "chair", "operator", "observer")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU
_NAME = re.compile(r"[\w.@-]{1,64}")

metadata = MetaData()

#: The same table the migration chamber/migrations/versions/0002_web_users.py makes.
users_table = Table(
    "web_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at_ms", BigInteger, nullable=False),
    Column("changed_at_ms", BigInteger, nullable=False),
)


class UserError(ValueError):
    """A user that cannot be added or changed as asked (the message says why, for the command line)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    created_at_ms: int
    changed_at_ms: int
    password_hash: str = field(repr=False)

    @property
    def stamp(self) -> str:
        """A digest of the password hash for the session: changes whenever the password does."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UserError(f"user name {name!r}: 1 to 64 letters, digits, '.', '_', '-' or '@'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")
    return password


def _user(row: Any) -> User:
    return User(
        name=str(row["name"]),
        role=str(row["role"]),
        created_at_ms=int(row["created_at_ms"]),
        changed_at_ms=int(row["changed_at_ms"]),
        password_hash=str(row["password_hash"]),
    )


#: The same table the migration chamber/migrations/versions/0003_web_logouts.py makes.
logouts_table = Table(
    "web_logouts",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("at_ms", BigInteger, nullable=False),
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class UserStore:
    """The ``web_users`` table (the store's schema is made by the journal's migrations)."""

    def __init__(self, engine: SqlEngine, hasher: PasswordHasher | None = None) -> None:
        self._engine = engine
        self._hasher = hasher or PasswordHasher()
        # Verified against when the name is unknown, so that a wrong name costs the same time as a
        # wrong password and the timing does not say which names exist.
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def add(self, name: str, role: str, password: str) -> User:
        check_name(name)
        check_role(role)
        check_password(password)
        now = _now_ms()
        user = User(
            name=name, role=role, created_at_ms=now, changed_at_ms=now, password_hash=self._hasher.hash(password)
        )
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(users_table).values(
                        name=user.name,
                        role=user.role,
                        password_hash=user.password_hash,
                        created_at_ms=now,
                        changed_at_ms=now,
                    )
                )
        except IntegrityError:
            raise UserError(f"user {name!r} exists already (chamber users passwd changes the password)") from None
        return user

    def get(self, name: str) -> User | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users_table).where(users_table.c.name == name)).first()
        return None if row is None else _user(row._mapping)

    def all(self) -> list[User]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(users_table).order_by(users_table.c.name)).all()
        return [_user(row._mapping) for row in rows]

    def count(self) -> int:
        return len(self.all())

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        self._update(name, password_hash=self._hasher.hash(password))

    def set_role(self, name: str, role: str) -> None:
        self._update(name, role=check_role(role))

    def remove(self, name: str) -> None:
        with self._engine.begin() as conn:
            if conn.execute(delete(users_table).where(users_table.c.name == name)).rowcount != 1:
                raise UserError(f"no user {name!r}")

    def _update(self, name: str, **values: str) -> None:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(users_table).where(users_table.c.name == name).values(changed_at_ms=_now_ms(), **values)
            ).rowcount
        if done != 1:
            raise UserError(f"no user {name!r}")

    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is theirs, else None (the same work either way)."""
        user = self.get(name) if _NAME.fullmatch(name) and len(password) <= MAX_PASSWORD else None
        try:
            self._hasher.verify(user.password_hash if user else self._dummy, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if user is None:
            return None
        if self._hasher.check_needs_rehash(user.password_hash):
            # argon2's parameters went up since this hash was made: redo it while we hold the password
            self._update(name, password_hash=self._hasher.hash(password))
            user = self.get(name) or user
        return user


# --- log-in rate limiting ---------------------------------------------------------------------------


class Logouts(Protocol):
    """The session ids that logged out: ``StoredLogouts`` in one web process, the scale-out's
    ``display.shared_sessions.SharedRevocations`` across several."""

    def add(self, session_id: str) -> None: ...

    def __contains__(self, session_id: object) -> bool: ...


class StoredLogouts:
    """The logged-out session ids, kept in the store's ``web_logouts`` table for a session's lifetime.

    A copy of a session's cookie must not work again after its log-out, also after a restart that keeps
    the session key (``[web] secret_key_file``).  The ids are read once at start (those older than
    ``ttl_s``, whose cookies have expired anyway, are deleted then) and checked in memory; each log-out
    is written through.  When the store cannot take one, the log-out still holds in this process, and
    the log says it may not outlive a restart."""

    def __init__(self, engine: SqlEngine, ttl_s: int) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        since = _now_ms() - ttl_s * 1000
        with engine.begin() as conn:
            conn.execute(delete(logouts_table).where(logouts_table.c.at_ms < since))
            self._ids = set(conn.execute(select(logouts_table.c.session_id)).scalars())

    def add(self, session_id: str) -> None:
        with self._lock:
            if session_id in self._ids:
                return
            self._ids.add(session_id)
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(logouts_table).values(session_id=session_id, at_ms=_now_ms()))
        except SQLAlchemyError as exc:
            log.error("web: a log-out could not be stored (%s): it holds until this process stops", exc)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._ids


class RateLimiter:
    """At most ``limit`` failures per key within ``window_s``; thread-safe, in memory."""

    MAX_KEYS = 10_000  # a flood of made-up names must not grow the table without end

    def __init__(self, limit: int = 5, window_s: float = 60.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        fails = self._fails.get(key)
        if fails is None:
            return None
        while fails and fails[0] <= now - self.window_s:
            fails.popleft()
        if not fails:
            del self._fails[key]
            return None
        return fails

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None when it may now."""
        with self._lock:
            fails = self._recent(key, now)
            if fails is None or len(fails) < self.limit:
                return None
            return max(0.0, fails[-self.limit] + self.window_s - now)

    def failed(self, key: str, now: float) -> None:
        with self._lock:
            if key not in self._fails and len(self._fails) >= self.MAX_KEYS:
                for old in [k for k in list(self._fails) if self._recent(k, now) is None]:
                    self._fails.pop(old, None)
                if len(self._fails) >= self.MAX_KEYS:  # all recent: drop the oldest key
                    self._fails.pop(next(iter(self._fails)))
            self._fails.setdefault(key, deque()).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


class LoginGuard:
    """Failed log-ins per user name and per client address (see the module docstring)."""

    def __init__(self, limit: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = RateLimiter(limit, window_s)
        self._clock = clock

    def retry_after(self, name: str, address: str) -> int | None:
        now = self._clock()
        waits = [
            w
            for w in (self._limiter.retry_after("u:" + name, now), self._limiter.retry_after("a:" + address, now))
            if w is not None
        ]
        return int(max(waits)) + 1 if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        self._limiter.failed("u:" + name, now)
        self._limiter.failed("a:" + address, now)

    def succeeded(self, name: str) -> None:
        self._limiter.clear("u:" + name)


# --- CSRF and the session key -------------------------------------------------------------------------


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: object, given: object) -> bool:
    """Both tokens present and equal, compared in constant time."""
    if not isinstance(expected, str) or not isinstance(given, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def load_secret_key(path: str | None) -> bytes:
    """The session-signing key from ``path`` (made there, mode 0600, when missing), or random per start."""
    if not path:
        log.info("web: no [web] secret_key_file: a random session key for this run (log-ins end at a restart)")
        return secrets.token_bytes(32)
    file = Path(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two starts at once cannot both write a key and hand out cookies signed with different ones
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        log.info("web: session key created in %s", file)
    mode = file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "web: %s is readable by others (mode %o): anyone who reads it can forge a log-in", file, mode & 0o777
        )
    key = file.read_bytes().strip()
    if len(key) < 32:
        raise ValueError(f"{file}: the session key must be at least 32 bytes, has {len(key)}")
    return key

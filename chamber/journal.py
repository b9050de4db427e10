"""The append-only, hash-chained journal of a sitting, and its store (SQLite or PostgreSQL).

Why it exists
-------------
Every input the engine accepts (a seat press, a secretary's command, a console going offline) is written
here *before* its effects are acknowledged to anybody: a console LED only turns green, a tally on the hall
screen only moves, once the record that caused it is on disk.  Replaying the journal from the start
rebuilds exactly the same state, so the journal is at the same time the crash-recovery log, the audit
trail and the input of the replay tests.

How it works
------------
* A journal holds several sittings.  Each sitting is its own chain of records numbered ``seq`` = 1, 2, 3...
  Table ``journal`` has primary key ``(sitting, seq)``; the payload is opaque JSON bytes made by the
  caller.
* Each record carries the hash of the previous record of its sitting and its own hash::

      canonical = f"{sitting}\\n{seq}\\n{at_ms}\\n{type}\\n".encode() + payload
      hash      = sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()

  The first record of a chain has ``prev_hash = "0" * 64``.  ``sitting`` and ``type`` may not contain a
  newline, so the canonical form is unambiguous (the payload is last and may hold any bytes).
  Hashing and checking a chain are pure functions in ``chamber.chain``; this module is the store.
* Durability before acknowledgement: :meth:`Journal.append` returns only after the transaction has
  committed durably.  For SQLite every connection runs ``journal_mode=WAL`` with ``synchronous=FULL``
  (the WAL is fsynced on every commit); for PostgreSQL the session sets ``synchronous_commit=on`` (the
  commit waits for the WAL flush; the server itself must run with ``fsync=on``).
* What a failure means: an error before the COMMIT rolled the transaction back; an error of the COMMIT
  itself is :class:`CommitInDoubt` (a connection lost while the server committed, a flush that failed):
  the records may be stored or not, and the writer must look (``Engine`` does).  ``append(...,
  after_seq=n)`` refuses (:class:`JournalConflict`, nothing written) unless the chain is at seq ``n``,
  so a writer never builds on records it has not seen.  After any failure the cached head is dropped
  and read again.  SQLite reports a full disk (and a database at its ``max_page_count``) as
  SQLITE_FULL; PostgreSQL's connection is replaced by the pool at the next append once the server is
  reachable again: nothing in the store needs a restart.
* Group commit: ``append`` takes a batch of entries and writes them in ONE transaction, so the engine can
  collect the presses that arrived during one fsync and pay for a single fsync for all of them.
* The chain head of each sitting (last seq and hash) is cached in memory after the first read, so the hot
  path is: compute hashes, one multi-row INSERT, one UPDATE, COMMIT.  The Journal is meant for one writer
  thread; a second writer is detected (the head UPDATE is conditional) and raises :class:`JournalConflict`.
* Table ``chain_head`` holds, per sitting, the last seq and hash, updated in the same transaction as each
  append.  It lets :meth:`Journal.verify` notice a truncated tail (records deleted from the end), which
  a chain alone cannot show.  Table ``sittings`` remembers the order in which sittings were created.
* The schema is made only by the alembic migrations in ``chamber/migrations``; opening a Journal runs
  ``upgrade head`` programmatically (no alembic.ini is needed).
* The audit tools open the store with ``create=False``: read-only, so that checking a store cannot
  change it.  SQLite is opened with ``mode=ro`` (no switch to WAL, no schema, no new file; SQLite may
  still add the ``-wal``/``-shm`` files a WAL database is read with), PostgreSQL in read-only
  transactions.  Each transaction there is one snapshot of the store, so a sitting's records and its
  chain head are read as they were at one moment even while the controller appends.

Tamper evidence, and its limit
------------------------------
:meth:`Journal.check` (and :meth:`Journal.verify`, its problems) reads every column as the driver returns
it, recomputes every hash (it never trusts a stored one) and reports, in plain English, records stored
with a value of the wrong type, records whose content was changed, records that were removed (gaps in
seq, a truncated tail, a sitting's row), records that were moved (swapped, or below seq 1) and links that
do not match; the checks themselves are pure functions in ``chamber.chain``.  Its limit: somebody with
write access to the database who cuts the tail of a sitting or rewrites the chain from some record
onwards (recomputing every following hash and the chain head) produces a chain that is internally
consistent again.  That is only caught by comparing the head (seq and hash of the last record, printed by
``chamber journal verify``) with a copy kept elsewhere — the protocol of a sitting and the published data
carry it — which ``check(sitting, expect_head)`` (``journal verify --expect-head``) does.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    func,
    inspect,
    select,
    type_coerce,
    union,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from chamber.chain import (
    GENESIS_HASH,
    Head,
    JournalRecord,
    Problem,
    ProblemKind,
    SittingCheck,
    check_sitting,
    check_sittings_table,
    record_hash,
)

__all__ = [
    "GENESIS_HASH",
    "CommitInDoubt",
    "Head",
    "Journal",
    "JournalConflict",
    "JournalRecord",
    "Problem",
    "ProblemKind",
    "SittingCheck",
    "StoreUnavailable",
    "record_hash",
]

_MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_READ_CHUNK = 500

metadata = MetaData()

sittings_table = Table(
    "sittings",
    metadata,
    Column("uid", String(64), primary_key=True),
    Column("ord", Integer, nullable=False, unique=True),
    Column("created_at_ms", BigInteger, nullable=False),
)

journal_table = Table(
    "journal",
    metadata,
    Column("sitting", String(64), ForeignKey("sittings.uid"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("type", String(64), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("sitting", "seq", name="pk_journal"),
)

chain_head_table = Table(
    "chain_head",
    metadata,
    Column("sitting", String(64), ForeignKey("sittings.uid"), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


def _raw(column: Any) -> ColumnElement[Any]:
    """A column read as the driver returns it: the checks must see a value of the wrong type (SQLite keeps
    whatever it is given) rather than fail inside SQLAlchemy's conversion of it."""
    return type_coerce(column, NullType()).label(column.name)


_j = journal_table.c
_RAW_RECORD = [_raw(c) for c in (_j.seq, _j.at_ms, _j.type, _j.payload, _j.prev_hash, _j.hash)]
_RAW_HEAD = [_raw(chain_head_table.c.seq), _raw(chain_head_table.c.hash)]


class StoreUnavailable(RuntimeError):
    """The database cannot be opened or migrated (bad URL, missing directory rights, server down)."""


class JournalConflict(RuntimeError):
    """The chain head in the database moved under us: another process appended to the same sitting."""


class CommitInDoubt(RuntimeError):
    """The COMMIT of an append failed (a connection lost during it, a flush that failed): the records
    may be stored or not.  The writer must read the journal before it goes on (``Engine`` does)."""


@dataclass(slots=True)
class _Head:
    seq: int
    hash: str
    stored: bool  # whether the sittings/chain_head rows exist already


def _row_to_record(row: Any) -> JournalRecord:
    return JournalRecord(
        sitting=row.sitting,
        seq=int(row.seq),
        at_ms=int(row.at_ms),
        type=row.type,
        payload=bytes(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _check_text(what: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    if len(value) > 64:
        raise ValueError(f"{what} is longer than 64 characters: {value!r}")
    if "\n" in value:
        raise ValueError(f"{what} must not contain a newline: {value!r}")
    return value


class Journal:
    """The store of the journal: append (group commit, durable), read, verify."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """Open the store at ``url``.  ``create=False`` is for the audit tools: the store is opened read-only,
        and a SQLite file that does not exist, or a database without the journal's tables, is an error
        rather than a new, empty journal that would verify as intact."""
        try:
            self._open(url, create)
        except (SQLAlchemyError, OSError, ValueError, ImportError) as exc:  # ImportError: no driver for the URL
            try:
                shown = make_url(url).render_as_string(hide_password=True)
            except Exception:  # an unparseable URL: say so without echoing it whole
                shown = url.split("@")[-1]
            raise StoreUnavailable(f"store {shown}: cannot open: {type(exc).__name__}: {exc}") from exc

    def _open(self, url: str, create: bool) -> None:
        parsed = make_url(url)
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        self._heads: dict[str, _Head] = {}
        if create:
            self._engine: Engine = _writing_engine(parsed)
            self._upgrade()
            return
        self._engine = _reading_engine(parsed)
        # The audit tools read; they must not write a schema into some other application's database.
        missing = {"sittings", "journal", "chain_head"} - set(inspect(self._engine).get_table_names())
        if missing:
            raise ValueError(f"not a chamber journal: no table(s) {', '.join(sorted(missing))}")

    @property
    def engine(self) -> Engine:
        return self._engine

    def _upgrade(self) -> None:
        # alembic lists its plugins at INFO when first imported; the migrations it runs stay in the log
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS_DIR))
        with self._engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self._heads.clear()
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------

    def _load_head(self, conn: Connection, sitting: str) -> _Head:
        head_row = conn.execute(
            select(chain_head_table.c.seq, chain_head_table.c.hash).where(chain_head_table.c.sitting == sitting)
        ).first()
        last_row = conn.execute(
            select(journal_table.c.seq, journal_table.c.hash)
            .where(journal_table.c.sitting == sitting)
            .order_by(journal_table.c.seq.desc())
            .limit(1)
        ).first()
        known = conn.execute(select(sittings_table.c.uid).where(sittings_table.c.uid == sitting)).first()
        if head_row is not None and (last_row is None or int(head_row.seq) >= int(last_row.seq)):
            # Continue from the recorded head even if the tail was cut: verify() keeps seeing the gap.
            return _Head(int(head_row.seq), head_row.hash, stored=True)
        if last_row is not None:
            if head_row is None:
                conn.execute(chain_head_table.insert().values(sitting=sitting, seq=last_row.seq, hash=last_row.hash))
            else:
                conn.execute(
                    chain_head_table.update()
                    .where(chain_head_table.c.sitting == sitting)
                    .values(seq=last_row.seq, hash=last_row.hash)
                )
            return _Head(int(last_row.seq), last_row.hash, stored=True)
        if known is not None:
            # A sitting row without any record (should not happen); start the chain and add its head.
            conn.execute(chain_head_table.insert().values(sitting=sitting, seq=0, hash=GENESIS_HASH))
            return _Head(0, GENESIS_HASH, stored=True)
        return _Head(0, GENESIS_HASH, stored=False)

    def append(
        self, sitting: str, entries: Sequence[tuple[int, str, bytes]], *, after_seq: int | None = None
    ) -> list[JournalRecord]:
        """Append ``(at_ms, type, payload)`` entries to ``sitting`` in one durable transaction.

        ``after_seq``: the seq the caller last saw stored; a chain head elsewhere is a
        :class:`JournalConflict` and nothing is written (a commit that failed yet came through, or another
        writer).  A failure of the COMMIT itself is :class:`CommitInDoubt`: the records may be stored."""
        _check_text("sitting", sitting)
        if not entries:
            return []
        checked: list[tuple[int, str, bytes]] = []
        for at_ms, type_, payload in entries:
            if not isinstance(at_ms, int) or isinstance(at_ms, bool):
                raise ValueError(f"at_ms must be an int (Unix ms), got {at_ms!r}")
            _check_text("type", type_)
            if not isinstance(payload, bytes | bytearray | memoryview):
                raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
            checked.append((at_ms, type_, bytes(payload)))

        try:
            with self._engine.connect() as conn:
                transaction = conn.begin()
                try:
                    records = self._write(conn, sitting, checked, after_seq)
                except BaseException:
                    with contextlib.suppress(Exception):  # a connection that is gone cannot roll back
                        transaction.rollback()
                    raise
                try:
                    transaction.commit()
                except Exception as exc:
                    # A lost connection, or a disk that fails at the flush: the server (or the file) may
                    # hold the records or not; whoever appends next must look.
                    raise CommitInDoubt(f"commit failed, the records may be stored: {exc}") from exc
        except BaseException:
            # The transaction was rolled back (or is in doubt); re-read the head next time instead of
            # trusting the cache.
            self._heads.pop(sitting, None)
            raise
        last = records[-1]
        self._heads[sitting] = _Head(last.seq, last.hash, stored=True)
        return records

    def _write(
        self, conn: Connection, sitting: str, checked: list[tuple[int, str, bytes]], after_seq: int | None
    ) -> list[JournalRecord]:
        head = self._heads.get(sitting)
        if head is None:
            head = self._load_head(conn, sitting)
        if after_seq is not None and head.seq != after_seq:
            raise JournalConflict(
                f"the chain head of sitting {sitting!r} is at seq {head.seq}, not at {after_seq} as the writer "
                "expected: a commit reported failed came through, or another writer appended"
            )
        records: list[JournalRecord] = []
        seq, prev = head.seq, head.hash
        for at_ms, type_, payload in checked:
            seq += 1
            h = record_hash(prev, sitting, seq, at_ms, type_, payload)
            records.append(JournalRecord(sitting, seq, at_ms, type_, payload, prev, h))
            prev = h
        last = records[-1]
        if not head.stored:
            next_ord = conn.execute(select(func.coalesce(func.max(sittings_table.c.ord), 0) + 1)).scalar_one()
            conn.execute(sittings_table.insert().values(uid=sitting, ord=int(next_ord), created_at_ms=records[0].at_ms))
        conn.execute(
            journal_table.insert(),
            [
                {
                    "sitting": r.sitting,
                    "seq": r.seq,
                    "at_ms": r.at_ms,
                    "type": r.type,
                    "payload": r.payload,
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                }
                for r in records
            ],
        )
        if head.stored:
            moved = conn.execute(
                chain_head_table.update()
                .where(chain_head_table.c.sitting == sitting, chain_head_table.c.seq == head.seq)
                .values(seq=last.seq, hash=last.hash)
            ).rowcount
            if moved != 1:
                raise JournalConflict(
                    f"the chain head of sitting {sitting!r} is no longer at seq {head.seq}: "
                    "another writer appended to it"
                )
        else:
            conn.execute(chain_head_table.insert().values(sitting=sitting, seq=last.seq, hash=last.hash))
        return records

    # -- reading -------------------------------------------------------------------------------------

    def records(self, sitting: str, after_seq: int = 0) -> Iterator[JournalRecord]:
        """The records of ``sitting`` with seq > ``after_seq``, in seq order, read in chunks."""
        last = after_seq
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(journal_table)
                    .where(journal_table.c.sitting == sitting, journal_table.c.seq > last)
                    .order_by(journal_table.c.seq)
                    .limit(_READ_CHUNK)
                ).all()
            for row in rows:
                yield _row_to_record(row)
            if len(rows) < _READ_CHUNK:
                return
            last = int(rows[-1].seq)

    def sittings(self) -> list[str]:
        """Sitting uids in creation order."""
        with self._engine.connect() as conn:
            return list(conn.execute(select(sittings_table.c.uid).order_by(sittings_table.c.ord)).scalars())

    def last_record(self, sitting: str) -> JournalRecord | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(journal_table)
                .where(journal_table.c.sitting == sitting)
                .order_by(journal_table.c.seq.desc())
                .limit(1)
            ).first()
        return None if row is None else _row_to_record(row)

    # -- verification --------------------------------------------------------------------------------

    def all_sittings(self) -> list[str]:
        """Every sitting the store knows of: those listed, in creation order, then any that have records
        or a chain head but no row in the sittings table (the row was deleted: a verifier must see them).
        A uid that is not text is left out here; :meth:`store_problems` reports it."""
        with self._engine.connect() as conn:
            listed = list(conn.execute(select(_raw(sittings_table.c.uid)).order_by(sittings_table.c.ord)).scalars())
            others = set(
                conn.execute(
                    union(select(_raw(journal_table.c.sitting)), select(_raw(chain_head_table.c.sitting)))
                ).scalars()
            )
        names = [uid for uid in listed if isinstance(uid, str)]
        return names + sorted(uid for uid in others - set(listed) if isinstance(uid, str))

    def store_problems(self) -> list[Problem]:
        """Problems of the store as a whole (:func:`chamber.chain.check_sittings_table`): sittings deleted
        whole, whose places in the order of creation (1, 2, 3 …) are empty, and rows that cannot be read.
        (The newest sitting deleted whole leaves no gap: compare the count with the council's records.)"""
        with self._engine.connect() as conn:
            rows = conn.execute(select(_raw(sittings_table.c.uid), _raw(sittings_table.c.ord))).all()
            named = list(
                conn.execute(
                    union(select(_raw(journal_table.c.sitting)), select(_raw(chain_head_table.c.sitting)))
                ).scalars()
            )
        return check_sittings_table([tuple(row) for row in rows], named)

    def verify(self, sitting: str | None = None) -> list[Problem]:
        """Recompute every hash and check every link; an empty list means the journal is intact."""
        names = self.all_sittings() if sitting is None else [sitting]
        problems: list[Problem] = self.store_problems() if sitting is None else []
        for name in names:
            problems.extend(self.check(name).problems)
        return problems

    def check(self, sitting: str, expect_head: Head | None = None) -> SittingCheck:
        """Every check of one sitting (:func:`chamber.chain.check_sitting`), against ``expect_head`` too if it
        is given: a head recorded outside the store.  Records, chain head and listing are read in one
        transaction, which a read-only store makes one snapshot."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(*_RAW_RECORD).where(journal_table.c.sitting == sitting).order_by(journal_table.c.seq)
            ).all()
            head = conn.execute(select(*_RAW_HEAD).where(chain_head_table.c.sitting == sitting)).first()
            listed = conn.execute(select(_raw(sittings_table.c.ord)).where(sittings_table.c.uid == sitting)).first()
        return check_sitting(
            sitting,
            [tuple(row) for row in rows],
            None if head is None else tuple(head),
            None if listed is None else tuple(listed),
            expect_head,
        )


#: libpq's network settings for the engine's PostgreSQL connection, unless the store URL sets them
#: (``?keepalives_idle=30``...): connect within 5 s; probe a silent connection after 5 s idle, every
#: 2 s, 3 times; give up on data the server has not acknowledged after 10 s.  A partition (packets
#: dropped, not refused) then fails the append or the wait for its answer in about 11-15 s.
PG_NETWORK_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


def _writing_engine(url: URL) -> Engine:
    """The engine's store: SQLite in WAL mode with synchronous=FULL (the directory is made), PostgreSQL with
    synchronous commits."""
    connect_args: dict[str, Any] = {}
    engine_args: dict[str, Any] = {}
    database = url.database
    if url.get_backend_name() == "sqlite":
        if not database or database == ":memory:":
            # one connection for the whole life of the journal: each new one would be a new, empty database
            engine_args["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
        elif not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    elif url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
        connect_args["options"] = "-c synchronous_commit=on"
        # what the URL does not set itself: a lost network fails an append in seconds, not after the
        # kernel's TCP retries (minutes), so the engine raises its store alert and the consoles keep
        # their presses latched meanwhile (PG_NETWORK_DEFAULTS)
        connect_args.update({k: v for k, v in PG_NETWORK_DEFAULTS.items() if k not in url.query})
    engine = create_engine(url, connect_args=connect_args, **engine_args)
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _reading_engine(url: URL) -> Engine:
    """An engine that cannot change the store: SQLite opened with ``mode=ro``, PostgreSQL in read-only
    transactions; in both, one transaction reads one snapshot."""
    database = url.database
    if url.get_backend_name() == "postgresql":
        # REPEATABLE READ: every statement of a transaction sees the same snapshot, not each its own.
        return create_engine(url, execution_options={"postgresql_readonly": True, "isolation_level": "REPEATABLE READ"})
    if url.get_backend_name() != "sqlite":
        return create_engine(url)
    if not database or database == ":memory:":  # a new, empty database: nothing to protect, nothing to find
        return create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    uri = _read_only_uri(url, database)

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)
    event.listen(engine, "connect", _sqlite_no_implicit_begin)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _read_only_uri(url: URL, database: str) -> str:
    """The SQLite URI of ``database`` with ``mode=ro``: the file must exist, and nothing is written to it."""
    if database.startswith("file:"):  # given as a URI already (``?uri=true``): keep its parameters
        query = {key: value for key, value in url.query.items() if key != "uri"} | {"mode": "ro"}
        return f"{database}?{urlencode(query, doseq=True)}"
    path = Path(database).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no journal database at {path}")
    return f"{path.resolve().as_uri()}?mode=ro"


def _sqlite_no_implicit_begin(dbapi_connection: Any, connection_record: Any) -> None:
    # sqlite3 runs each SELECT in a transaction of its own; _sqlite_begin makes one per SQLAlchemy transaction.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()

"""``chamber backup`` and ``chamber restore``: a consistent copy of the store, and putting one back.

The backup file
---------------
Whatever the store (SQLite or PostgreSQL), a backup is one SQLite database file holding the store's
tables as they were at one moment: the journal (``sittings``, ``journal``, ``chain_head``), the web
console's users (``web_users``: names, roles and argon2id password hashes, so the file is written
mode 0600) and ``alembic_version``.  Being a store itself, it is checked with the ordinary tools on any
machine, without a database server: ``chamber journal verify --db sqlite:///FILE`` (and ``replay``);
and a council can move between SQLite and PostgreSQL by backing up one and restoring into the other.

* SQLite store: SQLite's online backup API (``sqlite3.Connection.backup``) copies the pages in one step
  inside one read transaction.  In WAL mode (the journal always runs in it) a reader does not block the
  writer, so the controller goes on journaling presses, and the copy is the database as of the
  transaction's start: every append wholly in it or wholly out.  The copy is switched to
  ``journal_mode=DELETE`` so the file stands alone, without ``-wal``/``-shm`` side files.
* PostgreSQL store: every table is read in one ``REPEATABLE READ READ ONLY`` transaction (one snapshot,
  as ``pg_dump`` takes one) through the journal's own read-only engine and written into a new SQLite
  file made by the project's migrations.  Not ``pg_dump``: its custom format needs a PostgreSQL server
  of a matching major version to be read at all (neither ``journal verify`` nor an auditor's laptop can
  check it), ``pg_dump`` must be at least the server's version (Debian's client and a council's server
  drift apart), and it could not restore into SQLite.  What it would add — other objects of the
  database — the chamber does not have; its schema is the migrations'.

A backup is written to a temporary file beside ``--out``, fsynced and renamed, so a backup interrupted
half-way never has the final name; then it is read back and each sitting's verdict and head printed —
the same ``SEQ:HASH`` that ``journal verify`` prints for the store.

Restore
-------
The backup is checked first (every sitting's chain, the sittings table) and refused if it fails.  It is
copied to a temporary file and brought up to this version's schema by the migrations (the backup file
is never written to), then its rows go into the target store in one transaction, in the order the
foreign keys need.  A target holding anything (a sitting, a record, a user) is refused unless
``--force``, which deletes its rows in the same transaction: a failed restore leaves the target as it
was.  The controller must be stopped first: a running one would find the chain heads moved under it
(``JournalConflict``) rather than overwrite the restored journal, but it would stop journaling.  At the
end the target is verified and its heads compared with the backup's.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, MetaData, Table, delete, func, select, text
from sqlalchemy.engine import make_url

from chamber.journal import Journal, StoreUnavailable

VERSION_TABLE = "alembic_version"
_CHUNK = 1000


class BackupError(RuntimeError):
    """What a person must fix before a backup or restore can go on (said in plain words); ``code`` is the
    exit status: 2 when it cannot be done (a missing file, not a store), 1 when it is refused (a
    non-empty target, a backup that fails verification)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StoreSummary:
    """The verdict on a store's journal: each sitting's head (or its problems)."""

    heads: dict[str, str] = field(default_factory=dict)  # uid -> "SEQ:HASH" ("empty" for no records)
    records: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    users: int = 0

    def lines(self) -> list[str]:
        out = [f"sitting {uid}: {self.records[uid]} records, head {head}" for uid, head in self.heads.items()]
        if not self.heads:
            out.append("no sittings")
        out.append(f"{self.users} web console user(s)")
        return out + [f"problem: {p}" for p in self.problems]


def summarize(url: str) -> StoreSummary:
    """Read-only: every sitting's chain checked, its head, and the number of users."""
    journal = Journal(url, create=False)
    try:
        summary = StoreSummary(problems=[f"{p.kind}: {p.message}" for p in journal.store_problems()])
        for uid in journal.all_sittings():
            check = journal.check(uid)
            summary.records[uid] = len(check.records)
            summary.heads[uid] = str(check.head) if check.head else "empty"
            summary.problems += [f"sitting {uid}: {p}" for p in check.problems]
        with journal.engine.connect() as conn:
            if _has_table(conn, "web_users"):
                summary.users = int(conn.execute(text("SELECT count(*) FROM web_users")).scalar_one())
        return summary
    finally:
        journal.close()


def _has_table(conn: Connection, name: str) -> bool:
    from sqlalchemy import inspect

    return name in inspect(conn).get_table_names()


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for PostgreSQL); an in-memory database has nothing to back up."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url}: give the SQLite store as a file, sqlite:///PATH")
    path = Path(database).expanduser()
    if not path.is_file():
        raise BackupError(f"no SQLite store at {path}")
    return path


@contextlib.contextmanager
def _atomic_file(out: Path) -> Iterator[Path]:
    """A temporary file beside ``out`` (mode 0600), renamed to ``out`` once the body succeeds and it is on
    disk; removed if not."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        tmp.replace(out)
        # the rename itself must survive a power cut too
        dir_fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        tmp.unlink(missing_ok=True)


def _standalone(path: Path) -> None:
    """One self-contained file: no WAL beside it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
    finally:
        conn.close()


def backup(url: str, out: Path, *, force: bool = False) -> StoreSummary:
    """Copy the store at ``url`` into the SQLite file ``out``; returns the verdict on the copy."""
    if out.exists() and not force:
        raise BackupError(f"{out} exists; --force replaces it")
    source = _sqlite_path(url)
    with _atomic_file(out) as tmp:
        if source is not None:
            _backup_sqlite(source, tmp)
        else:
            _backup_server(url, tmp)
        _standalone(tmp)
    return summarize(f"sqlite:///{out}")


def _backup_sqlite(source: Path, tmp: Path) -> None:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        tables = {row[0] for row in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"sittings", "journal", "chain_head"} <= tables:
            raise BackupError(f"{source} is not a chamber store (no journal tables)")
        src.backup(dst)  # pages=-1: the whole database in one step, one read transaction: one moment
    finally:
        dst.close()
        src.close()


def _revision(conn: Connection) -> str | None:
    if not _has_table(conn, VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def _backup_server(url: str, tmp: Path) -> None:
    reader = Journal(url, create=False)  # read-only, REPEATABLE READ: one transaction is one snapshot
    target = Journal(f"sqlite:///{tmp}")  # this version's schema, by its migrations
    try:
        with reader.engine.connect() as src, target.engine.begin() as dst:
            have, want = _revision(src), _revision(dst)
            if have != want:
                raise BackupError(
                    f"the store's schema is {have}, this chamber's is {want}: back it up with the chamber version "
                    "that runs it (the controller brings the schema up to date when it starts)"
                )
            _copy_rows(src, dst)
    finally:
        target.close()
        reader.close()


def _tables(conn: Connection) -> list[Table]:
    """The store's tables in foreign-key order (parents first), without alembic's."""
    meta = MetaData()
    meta.reflect(bind=conn)
    return [t for t in meta.sorted_tables if t.name != VERSION_TABLE]


def _copy_rows(src: Connection, dst: Connection) -> dict[str, int]:
    """Every row of every table of ``dst``'s schema, from ``src`` (same schema), in one transaction each."""
    source = {t.name: t for t in _tables(src)}
    copied: dict[str, int] = {}
    for table in _tables(dst):
        if table.name not in source:
            continue  # a table this version adds and the backup's does not have: it stays empty
        from_table = source[table.name]
        columns = [c.name for c in table.columns if c.name in from_table.columns]
        order = [from_table.columns[c.name] for c in table.primary_key.columns] or [from_table.columns[columns[0]]]
        query = select(*(from_table.columns[c] for c in columns)).order_by(*order)
        result = src.execution_options(stream_results=True).execute(query)
        copied[table.name] = 0
        while rows := result.fetchmany(_CHUNK):
            dst.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
            copied[table.name] += len(rows)
    return copied


def _row_counts(conn: Connection) -> dict[str, int]:
    return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in _tables(conn)}


def restore(backup_file: Path, url: str, *, force: bool = False) -> tuple[StoreSummary, StoreSummary]:
    """Put ``backup_file`` into the store at ``url``; returns the verdicts on the backup and on the store."""
    if not backup_file.is_file():
        raise BackupError(f"no backup file at {backup_file}")
    try:
        before = summarize(f"sqlite:///{backup_file.resolve()}")
    except StoreUnavailable as exc:
        raise BackupError(f"{backup_file} is not a chamber backup: {exc}") from None
    if before.problems:
        raise BackupError(
            f"{backup_file} fails verification, not restored ({len(before.problems)} problem(s)):\n  "
            + "\n  ".join(before.problems),
            code=1,
        )
    with tempfile.TemporaryDirectory(prefix="chamber-restore-") as scratch:
        copy = Path(scratch) / "backup.db"
        src_conn = sqlite3.connect(f"{backup_file.resolve().as_uri()}?mode=ro", uri=True)
        dst_conn = sqlite3.connect(copy)
        try:
            src_conn.backup(dst_conn)
        finally:
            dst_conn.close()
            src_conn.close()
        source = Journal(f"sqlite:///{copy}")  # brought up to this version's schema; the backup is untouched
        target = Journal(url)
        try:
            with source.engine.connect() as src, target.engine.begin() as dst:
                held = {name: n for name, n in _row_counts(dst).items() if n}
                if held and not force:
                    what = ", ".join(f"{n} in {name}" for name, n in sorted(held.items()))
                    raise BackupError(f"the store is not empty ({what}); --force replaces what it holds", code=1)
                for table in reversed(_tables(dst)):  # children first
                    dst.execute(delete(table))
                _copy_rows(src, dst)
        finally:
            target.close()
            source.close()
    return before, summarize(url)

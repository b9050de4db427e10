"""chamber backup / restore on SQLite and on a real PostgreSQL server: a backup taken while the engine
journals, restored into a fresh store, verifies and replays as the original does."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from chamber.cli import main
from chamber.config import load_config
from chamber.core import events as ev
from chamber.engine import Engine
from chamber.journal import Journal
from display.auth import UserStore

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def fresh_url(journal_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty store of the same kind as ``journal_url``: where a backup is restored."""
    if journal_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'chamber.db'}"
        return
    server = journal_url.rsplit("/", 1)[0]
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    name = f"r_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class Writer:
    """The engine journaling cards going in and out of the consoles, as fast as it can, on its thread."""

    def __init__(self, url: str) -> None:
        config = load_config(ROOT / "config.toml")
        self.journal = Journal(url)
        UserStore(self.journal.engine).add("anna", "secretary", "a long enough password")
        self.engine = Engine(self.journal)
        self.engine.start()
        assert self.engine.execute(ev.OpenSitting(roster=config.roster(), number=7, title="Засідання")).accepted
        self.cards = [(d.seat, d.cards[0]) for d in config.deputies if d.seat is not None and d.cards]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for seat, uid in self.cards:
                self.engine.execute(ev.CardInserted(seat=seat, uid=uid))
            for seat, _ in self.cards:
                self.engine.execute(ev.CardRemoved(seat=seat))

    def records(self) -> int:
        uid = self.engine.sitting_uid
        assert uid is not None
        last = self.journal.last_record(uid)
        return 0 if last is None else last.seq

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.engine.stop()
        self.journal.close()


def test_backup_while_the_engine_journals_then_restore_verifies_and_replays_alike(
    journal_url: str, fresh_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    writer = Writer(journal_url)
    try:
        writer.thread.start()
        while writer.records() < 100:
            writer.stop.wait(0.01)
        during = tmp_path / "during.db"
        code, out, err = run(capsys, "backup", "--db", journal_url, "--out", str(during))
        assert code == 0, out + err
        at_backup = writer.records()
        while writer.records() < at_backup + 100:  # the controller went on journaling during and after
            writer.stop.wait(0.01)
    finally:
        writer.close()
    assert during.stat().st_mode & 0o077 == 0  # password hashes inside: for the owner only
    assert not Path(f"{during}-wal").exists()  # one self-contained file

    # The copy taken mid-write is the journal as of one moment: an intact prefix of the original.
    backup_db = f"sqlite:///{during}"
    code, verified, err = run(capsys, "journal", "verify", "--db", backup_db)
    assert code == 0, verified + err
    [uid] = Journal(journal_url, create=False).sittings()
    head = verified.split("head ")[1].split(")")[0]
    seq, digest = head.split(":")
    original = Journal(journal_url, create=False)
    try:
        [record] = [r for r in original.records(uid, after_seq=int(seq) - 1)][:1]
        assert record.hash == digest
        assert original.last_record(uid).seq > int(seq)  # type: ignore[union-attr]
    finally:
        original.close()

    # Restored into a fresh store: it verifies and replays exactly as the backup does.
    code, out, err = run(capsys, "restore", str(during), "--db", fresh_url)
    assert code == 0, out + err
    assert head in out and "1 web console user(s)" in out
    for command in (["journal", "verify"], ["replay", "--json"]):
        code_b, from_backup, _ = run(capsys, *command, "--db", backup_db)
        code_r, from_restored, _ = run(capsys, *command, "--db", fresh_url)
        assert (code_b, from_backup) == (code_r, from_restored) == (0, from_backup)

    # After the writer stopped: a second backup, restored over the first (refused without --force).
    after = tmp_path / "after.db"
    assert run(capsys, "backup", "--db", journal_url, "--out", str(after))[0] == 0
    code, out, err = run(capsys, "restore", str(after), "--db", fresh_url)
    assert code == 1 and "not empty" in err and "--force" in err, out + err
    code, out, err = run(capsys, "restore", str(after), "--db", fresh_url, "--force")
    assert code == 0, out + err
    for command in (["journal", "verify"], ["replay", "--json"], ["users", "list"]):
        original_out = run(capsys, *command, "--db", journal_url)
        assert run(capsys, *command, "--db", fresh_url) == original_out
        assert original_out[0] == 0
    assert "anna\tsecretary" in run(capsys, "users", "list", "--db", fresh_url)[1]


def test_backup_and_restore_refuse_what_they_must(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'chamber.db'}"
    assert run(capsys, "demo", "--fast", "--db", store)[0] == 0
    out = tmp_path / "b.db"
    assert run(capsys, "backup", "--db", store, "--out", str(out))[0] == 0
    code, _, err = run(capsys, "backup", "--db", store, "--out", str(out))
    assert code == 2 and "exists; --force replaces it" in err
    assert run(capsys, "backup", "--db", store, "--out", str(out), "--force")[0] == 0

    # nothing to back up: a mistyped path, a file that is not a store
    code, _, err = run(capsys, "backup", "--db", f"sqlite:///{tmp_path / 'typo.db'}", "--out", str(tmp_path / "x"))
    assert code == 2 and "no SQLite store" in err
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, _, err = run(capsys, "backup", "--db", f"sqlite:///{other}", "--out", str(tmp_path / "y"))
    assert code == 2 and "not a chamber store" in err

    # a backup changed after it was made is named and not restored
    conn = sqlite3.connect(out)
    conn.execute("UPDATE journal SET payload = CAST(payload || ' ' AS BLOB) WHERE seq = 5")
    conn.commit()
    conn.close()
    target = f"sqlite:///{tmp_path / 'target.db'}"
    code, _, err = run(capsys, "restore", str(out), "--db", target)
    assert code == 1 and "fails verification" in err and "seq 5" in err, err
    assert not (tmp_path / "target.db").exists()
    code, _, err = run(capsys, "restore", str(tmp_path / "missing.db"), "--db", target)
    assert code == 2 and "no backup file" in err

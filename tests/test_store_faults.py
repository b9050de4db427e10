"""The store fails mid-vote: a full disk, a lost PostgreSQL connection, a crashed server, a commit in doubt.

Each case runs a real engine on a real store (a SQLite file, or a PostgreSQL server of the test's own:
``store_harness.PgServer``) with native consoles on the real line machine (``store_harness.EngineLine``),
opens a roll-call vote, breaks the store, lets deputies press, and checks what the brief promises:

* while the store cannot be written no press is acknowledged: the consoles keep every one latched
  (their FIFOs stay full through many polls and retakes) and the tally does not move;
* the secretary sees one ``store_failed`` alert for the outage (in Ukrainian and English, through the
  real publisher), not one per failed attempt, and a ``store_restored`` one when it ends;
* when the store is back every latched press is taken, acknowledged and journaled exactly once, the
  chain verifies, and a replay of the journal gives the live tally.

How each fault is made, without root tricks or a fake store:

* full SQLite store: ``PRAGMA max_page_count`` set (on every checkout of the engine's connection) to
  the pages the file has; SQLite then fails with SQLITE_FULL exactly as on a full disk (the same error
  code and path: no page can be added).  Where the test may mount a tmpfs (root, not a restricted
  container), a real full file system is tested too: ENOSPC from the kernel;
* lost connection: ``pg_terminate_backend`` on the engine's backend mid-vote;
* server gone: ``pg_ctl stop -m immediate`` (a crash: no checkpoint, WAL replayed at start), presses
  during the downtime, then the server started again;
* commit in doubt: ``synchronous_standby_names`` names a standby that does not exist, so a commit is
  durable locally and then waits; terminating the backend there gives the client an error for a
  transaction that is stored (PostgreSQL's own warning says so).  The engine must notice it at its next
  append and apply it, or the live sitting and its journal part ways.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from store_harness import EngineLine, PgServer, started_server
from test_web_state import web_config
from waiting import wait_for

from chamber.core import events as ev
from chamber.core.events import decode_input
from chamber.core.phases import Phase
from chamber.core.values import Key
from chamber.engine import Engine, EngineError, Outcome
from chamber.journal import Journal
from display import state as st
from display.publisher import Publisher

SEATS = 12
FULL_SEATS = 40  # more presses than the free space of the last pages takes
MAX_PAGES = 1073741823  # SQLite's default limit


class Chamber:
    """A real engine on ``url``, the real publisher's alert book, and SEATS consoles on one line, in an
    open roll-call vote with every deputy carded and registered (through the engine)."""

    def __init__(self, url: str, seats: int = SEATS) -> None:
        self.seats = seats
        self.config = web_config(seats)
        self.journal = Journal(url)
        self.engine = Engine(self.journal)
        self.publisher = Publisher(self.engine, st.chamber_of(self.config), lambda *a, **k: None, clock=lambda: 0)
        self.engine.subscribe(self.publisher.on_effects)
        self.engine.start()
        e = self.engine
        assert e.execute(ev.OpenSitting(roster=self.config.roster(), number=1, title="Засідання")).accepted
        for i in range(1, seats + 1):
            e.execute(ev.CardInserted(seat=i, uid=f"{i:08X}"))
        e.execute(ev.OpenRegistration())
        for i in range(1, seats + 1):
            e.execute(ev.KeyPressed(seat=i, key=Key.REGISTER))
        e.execute(ev.CloseRegistration())
        assert e.execute(ev.OpenVote(title="Про бюджет")).accepted
        self.line = EngineLine(e, range(1, seats + 1))
        self.line.pump(1.0)  # every console polled, MODE written, nothing pressed yet
        assert self.line.latched() == 0

    def press(self, seats: range, key: Key) -> None:
        for seat in seats:
            self.line.console(seat).press(key)

    def pump(self, rounds: int) -> None:
        for _ in range(rounds):
            self.line.pump(0.02)

    def drain(self, rounds: int = 100) -> None:
        """Pump until the consoles hold nothing (at most ``rounds`` rounds: the checks then fail)."""
        for _ in range(rounds):
            if self.line.latched() == 0 and not self.line.drv.pending:
                self.pump(3)  # the last ACK written, its answer in
                return
            self.pump(1)

    @property
    def tally(self) -> list[int]:
        vote = self.engine.sitting.vote
        assert vote is not None
        return list(vote.tally)

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        """The alerts of ``kind`` as the secretary's console page gets them."""
        self.publisher.tick()
        return [a for a in self.publisher.console.whole(0)["console"]["alerts"] if a["kind"] == kind]

    def journaled_presses(self) -> Counter[tuple[int, int | None, int | None]]:
        """(seat, console seq, boot) of every vote press in the journal, with how often it is there."""
        uid = self.engine.sitting_uid
        assert uid is not None
        out: Counter[tuple[int, int | None, int | None]] = Counter()
        for rec in self.journal.records(uid):
            e = decode_input(rec.payload)
            if isinstance(e, ev.KeyPressed) and e.key is not Key.REGISTER:
                out[(e.seat, e.seq, e.boot)] += 1
        return out

    def check_after(self, expected_tally: list[int], pressed: int) -> None:
        """Every press taken and acknowledged once, the chain intact, a replay giving the live tally."""
        assert self.line.latched() == 0
        assert self.tally == expected_tally
        presses = self.journaled_presses()
        assert sum(presses.values()) == pressed and set(presses.values()) == {1}, presses
        assert self.journal.verify() == []
        again = Engine(self.journal)
        again.recover()
        assert again.sitting_uid == self.engine.sitting_uid
        assert again.sitting.vote is not None and list(again.sitting.vote.tally) == expected_tally

    def close(self) -> None:
        self.engine.stop()
        self.journal.close()


def check_outage_alert(chamber: Chamber) -> None:
    """One alert for the outage, however many appends failed, in both languages."""
    [alert] = chamber.alerts("store_failed")
    assert chamber.engine.journal_failures > 1
    assert alert["detail_uk"].startswith("Журнал засідання не вдається записати (")
    assert alert["detail_en"].startswith("The sitting's journal cannot be written (")
    assert chamber.alerts("store_restored") == []


def check_restored_alert(chamber: Chamber) -> None:
    [restored] = chamber.alerts("store_restored")
    assert restored["detail_uk"].startswith("Журнал засідання знову записується (невдалих спроб: ")
    assert len(chamber.alerts("store_failed")) == 1


# --- SQLite: the store is full ----------------------------------------------------------------------


def limit_pages(journal: Journal) -> list[int]:
    """A limit of the database's size in pages applied on every checkout of the engine's connection
    (``PRAGMA max_page_count`` holds for one connection only); set ``[0]`` to change it."""
    limit = [MAX_PAGES]

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA max_page_count = {limit[0]}")
        finally:
            cursor.close()

    event.listen(journal.engine, "checkout", checkout)
    return limit


def page_count(journal: Journal) -> int:
    with journal.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA page_count").scalar_one())


def test_a_full_sqlite_store_latches_the_presses_alerts_and_loses_none(tmp_path: Path) -> None:
    chamber = Chamber(f"sqlite:///{tmp_path / 'j.db'}", FULL_SEATS)
    try:
        limit = limit_pages(chamber.journal)
        limit[0] = page_count(chamber.journal)  # not one page more: SQLITE_FULL once the free space is used
        chamber.press(range(1, FULL_SEATS + 1), Key.YES)
        chamber.pump(40)
        taken = chamber.tally[0]
        assert 0 < taken < FULL_SEATS  # some fitted into the last pages, then the store was full
        assert chamber.line.latched() == FULL_SEATS - taken  # the others stay latched at their consoles
        assert chamber.line.failed_answers() > 1  # retaken and refused again, poll after poll
        check_outage_alert(chamber)
        failed = chamber.alerts("store_failed")[0]
        assert "full" in failed["detail"]  # SQLite's own words: database or disk is full
        chamber.pump(40)  # still full: nothing more is taken, nothing double
        assert chamber.tally == [taken, 0, 0] and chamber.line.latched() == FULL_SEATS - taken
        assert len(chamber.alerts("store_failed")) == 1

        limit[0] = MAX_PAGES  # space again
        chamber.drain()
        check_restored_alert(chamber)
        chamber.check_after([FULL_SEATS, 0, 0], FULL_SEATS)
    finally:
        chamber.close()


def broken_store(journal: Journal) -> list[bool]:
    """Every checkout of the journal's connection fails while ``[0]`` is true, as a disk that has gone
    read-only or a database that cannot be reached would (sqlite3's own error, through SQLAlchemy)."""
    broken = [False]

    def checkout(_dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if broken[0]:
            raise sqlite3.OperationalError("disk I/O error")

    event.listen(journal.engine, "checkout", checkout)
    return broken


def test_a_console_back_during_the_outage_votes_once_the_store_is_back(tmp_path: Path) -> None:
    """Two faults at once: a console cut off (journaled offline), then back while the store is down, and
    its deputy presses meanwhile.  Its return was not journaled; the line says it again until it is, so
    the press is counted when the store is back, not refused as ``seat_offline``."""
    chamber = Chamber(f"sqlite:///{tmp_path / 'j.db'}")
    try:
        broken = broken_store(chamber.journal)
        cut = chamber.line.console(5)
        cut.card = bytes.fromhex("00000005")  # the card the engine was told of: read again on its return
        cut.dead = True
        for _ in range(100):
            if not chamber.engine.sitting.seats[5].online:
                break
            chamber.pump(1)
        assert not chamber.engine.sitting.seats[5].online  # journaled: the store was up
        broken[0] = True
        cut.dead = False
        cut.press(Key.YES)
        chamber.press(range(1, 5), Key.NO)
        chamber.pump(100)  # the console is back on the line, its return and the presses not journaled
        assert chamber.tally == [0, 0, 0] and chamber.line.latched() == 5
        assert not chamber.engine.sitting.seats[5].online
        broken[0] = False
        chamber.drain()
        assert chamber.engine.sitting.seats[5].online
        refused = [o for _, o in chamber.line.answers if isinstance(o, Outcome) and o.rejection is not None]
        assert refused == []  # no press refused as seat_offline
        chamber.check_after([1, 4, 0], 5)
    finally:
        chamber.close()


@contextlib.contextmanager
def small_tmpfs(where: Path) -> Iterator[Path]:
    where.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (not root, or a restricted container): {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def test_a_full_file_system_latches_the_presses_alerts_and_loses_none(tmp_path: Path) -> None:
    """The real thing where a tmpfs can be mounted: the kernel's ENOSPC, met by SQLite at its commit."""
    with small_tmpfs(tmp_path / "fs") as fs:
        chamber = Chamber(f"sqlite:///{fs / 'j.db'}", FULL_SEATS)
        filler = fs / "filler"
        try:
            with contextlib.suppress(OSError), filler.open("wb") as f:  # every free block taken
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
            chamber.press(range(1, FULL_SEATS + 1), Key.YES)
            chamber.pump(40)
            assert chamber.tally[0] < FULL_SEATS and chamber.line.latched() == FULL_SEATS - chamber.tally[0]
            check_outage_alert(chamber)
            chamber.pump(20)
            assert chamber.line.latched() == FULL_SEATS - chamber.tally[0]

            filler.unlink()  # the operator frees space
            chamber.drain()
            check_restored_alert(chamber)
            chamber.check_after([FULL_SEATS, 0, 0], FULL_SEATS)
        finally:
            chamber.close()


# --- PostgreSQL: the connection is lost, the server crashes, a commit is in doubt -------------------


@pytest.fixture(scope="module")
def server() -> Iterator[PgServer]:
    yield from started_server()


@pytest.fixture
def pg_store(server: PgServer) -> Iterator[tuple[str, str]]:
    name = f"f_{uuid.uuid4().hex[:12]}"
    url = server.create_database(name)
    yield url, name
    if server.running:
        server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def session_settings(journal: Journal) -> tuple[str, str]:
    with journal.engine.connect() as conn:
        return (
            str(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()),
            str(conn.exec_driver_sql("SHOW fsync").scalar_one()),
        )


def test_a_lost_postgresql_connection_costs_one_retake_and_nothing_else(
    server: PgServer, pg_store: tuple[str, str]
) -> None:
    url, name = pg_store
    chamber = Chamber(url)
    try:
        chamber.press(range(1, 5), Key.YES)
        chamber.pump(5)
        assert chamber.tally == [4, 0, 0]
        assert server.terminate(name) >= 1  # the engine's backend is gone; its pool does not know yet
        chamber.press(range(5, SEATS + 1), Key.NO)
        chamber.pump(1)
        assert chamber.line.failed_answers() >= 1  # the first append on the dead connection failed
        assert chamber.tally == [4, 0, 0] and chamber.line.latched() == SEATS - 4
        [alert] = chamber.alerts("store_failed")
        assert "OperationalError" in alert["detail"]
        chamber.drain()  # a new connection: the retaken presses are journaled
        check_restored_alert(chamber)
        assert session_settings(chamber.journal) == ("on", "on")  # the new connection is as durable
        chamber.check_after([4, SEATS - 4, 0], SEATS)
    finally:
        chamber.close()


def test_a_postgresql_server_crash_mid_vote_latches_the_presses_until_it_is_back(
    server: PgServer, pg_store: tuple[str, str]
) -> None:
    url, _name = pg_store
    chamber = Chamber(url)
    try:
        chamber.press(range(1, 4), Key.YES)
        chamber.pump(5)
        assert chamber.tally == [3, 0, 0]
        server.crash()
        try:
            chamber.press(range(4, SEATS + 1), Key.ABSTAIN)
            chamber.pump(30)
            assert chamber.tally == [3, 0, 0] and chamber.line.latched() == SEATS - 3
            check_outage_alert(chamber)
            with pytest.raises(EngineError, match="journal write failed"):  # a secretary's command too
                chamber.engine.execute(ev.CloseVote())
            assert chamber.engine.sitting.phase is Phase.VOTE_OPEN
        finally:
            server.start()  # crash recovery: the server replays its WAL
        chamber.drain()
        check_restored_alert(chamber)
        assert session_settings(chamber.journal) == ("on", "on")
        chamber.check_after([3, 0, SEATS - 3], SEATS)
    finally:
        chamber.close()


def test_a_commit_that_failed_but_was_stored_is_applied_not_repeated(
    server: PgServer, pg_store: tuple[str, str]
) -> None:
    """The secretary closes the vote; the commit is durable but its answer is lost.  The engine must find
    the record at its next append and close the vote live too: else the vote stays open, the presses
    after it count live but not in the journal's replay (where the vote closed), and a second
    CloseVote is journaled."""
    url, name = pg_store
    chamber = Chamber(url)
    engine = chamber.engine
    try:
        chamber.press(range(1, 6), Key.YES)
        chamber.pump(5)
        assert chamber.tally == [5, 0, 0]
        server.sql("ALTER SYSTEM SET synchronous_standby_names = 'nobody'")
        server.sql("SELECT pg_reload_conf()")
        wait_for(lambda: server.sql("SHOW synchronous_standby_names") == [("nobody",)], 10, "the reload")
        closing = engine.submit(ev.CloseVote())
        # the commit is flushed locally and now waits for the standby: terminate the backend there
        wait_for(
            lambda: (
                server.sql("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event = 'SyncRep'", name) != []
            ),
            15,
            "the commit to wait for the standby",
        )
        assert server.terminate(name) >= 1  # first: emptying the standby list would release the wait
        server.sql("ALTER SYSTEM RESET synchronous_standby_names")
        server.sql("SELECT pg_reload_conf()")
        with pytest.raises(EngineError, match="commit failed, the records may be stored"):
            closing.result(15)
        assert engine.sitting.phase is Phase.VOTE_OPEN  # not applied: not known stored

        # a late press reaches the engine next: it must find the vote closed, as the journal has it
        chamber.press(range(6, 8), Key.NO)
        chamber.pump(10)
        assert engine.sitting.phase is not Phase.VOTE_OPEN and chamber.tally == [5, 0, 0]
        again = engine.execute(ev.CloseVote())  # the secretary tries again: refused, the vote is closed
        assert again.rejection is not None
        assert chamber.line.latched() == 0  # the late presses were journaled (refused: the vote closed)
        records = [decode_input(r.payload) for r in chamber.journal.records(engine.sitting_uid or "")]
        closes = [i for i, e in enumerate(records) if isinstance(e, ev.CloseVote)]
        assert len(closes) == 2  # the one in doubt, and the refused retry after it
        assert chamber.journal.verify() == []
        replayed = Engine(chamber.journal)
        replayed.recover()
        assert replayed.sitting.results == engine.sitting.results
        assert replayed.sitting.snapshot() == engine.sitting.snapshot()
    finally:
        with contextlib.suppress(Exception):
            server.sql("ALTER SYSTEM RESET synchronous_standby_names")
            server.sql("SELECT pg_reload_conf()")
        chamber.close()

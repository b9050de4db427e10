"""Durability of the journal: write, kill, reopen, on SQLite and on a real PostgreSQL server.

A child process runs the real engine on the store and plays four consoles' worth of presses from four
threads (so the engine commits them in groups).  It prints ``ack`` for a press only once the engine's
Future resolved with a journal seq, i.e. after the append committed, as a console would be told
"taken".  The parent kills it with SIGKILL at a random moment (seeded: ``STORE_SEED``; rounds:
``STORE_KILLS``), reads what it printed before it died, reopens the store read-only, and checks that
every acknowledged press is there with the seq it was acknowledged under, that the chain verifies,
and that the next child resumes the open vote from it.  The child also prints the durability settings
of its own connection (PRAGMAs, SHOW), so a change that turns them off fails here.

What this proves and what it does not
-------------------------------------
SIGKILL ends the process, not the machine: whatever the process handed to the kernel survives in the
page cache even without an fsync.  So these rounds prove that an acknowledgement is never given before
the commit, that a commit is atomic under a crash of the writer (no torn records, the chain intact, the
head and the records agreeing), and that recovery resumes from any point; they cannot tell
``synchronous=FULL`` from ``OFF``.  That the data reaches the disk is left to the settings (checked in
force on the writing connection: SQLite fsyncs the WAL at every commit with ``synchronous=FULL``;
PostgreSQL's commit waits for its WAL flush with ``synchronous_commit=on`` and ``fsync=on``) and to
the databases' own guarantees.  A power cut or an OS crash would need a VM whose disk can be cut off
(or a block device that drops unflushed writes, e.g. dm-log-writes); this suite does not pretend to.
The PostgreSQL server crash (``pg_ctl stop -m immediate``: every server process gone at once, shared
buffers lost, the WAL replayed at the next start) goes one step further than a killed client: a commit
acknowledged with ``synchronous_commit=off`` may still be in the server's WAL buffers then.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_harness import PgServer, started_server

from chamber.core import events as ev
from chamber.core.events import decode_input
from chamber.core.phases import Phase
from chamber.core.values import Key
from chamber.engine import Engine
from chamber.journal import Journal

KILLS = int(os.environ.get("STORE_KILLS", "8"))
SEED = int(os.environ.get("STORE_SEED", "11"))
SEATS = 16
ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent(
    """
    import sys, threading
    from concurrent.futures import wait
    from chamber.bench import demo_roster
    from chamber.core import events as ev
    from chamber.core.values import Key
    from chamber.engine import Engine, EngineError
    from chamber.journal import Journal

    url, boot, seats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    journal = Journal(url)
    with journal.engine.connect() as conn:
        if journal.engine.dialect.name == "sqlite":
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            print(f"settings sqlite {mode} {sync}", flush=True)
        else:
            sync = conn.exec_driver_sql("SHOW synchronous_commit").scalar()
            fsync = conn.exec_driver_sql("SHOW fsync").scalar()
            print(f"settings postgresql {sync} {fsync}", flush=True)
    engine = Engine(journal)
    engine.start()
    if engine.sitting_uid is None:
        engine.execute(ev.OpenSitting(roster=demo_roster(seats)))
        for i in range(1, seats + 1):
            engine.execute(ev.CardInserted(seat=i, uid=f"{i:08X}"))
        engine.execute(ev.OpenRegistration())
        for i in range(1, seats + 1):
            engine.execute(ev.KeyPressed(seat=i, key=Key.REGISTER))
        engine.execute(ev.CloseRegistration())
        engine.execute(ev.OpenVote(duration_s=0))  # until closed by hand: the rounds may outlast any limit
    print("ready", flush=True)
    lock = threading.Lock()
    keys = (Key.YES, Key.NO, Key.ABSTAIN)

    def console_player(first):
        n = 0
        mine = list(range(first, seats + 1, 4))
        while True:
            presses = []
            for _ in range(3):
                n += 1
                presses.append(ev.KeyPressed(seat=mine[n % len(mine)], key=keys[n % 3], seq=n & 0xFFFF, boot=boot))
            futures = [engine.submit(p) for p in presses]
            wait(futures)
            for p, f in zip(presses, futures):
                if f.exception() is None and f.result().seq is not None:
                    with lock:
                        print(f"ack {f.result().seq} {p.seat} {int(p.key)} {p.seq}", flush=True)
                else:
                    with lock:
                        print("fail", flush=True)

    for first in range(1, 5):
        threading.Thread(target=console_player, args=(first,), daemon=True).start()
    threading.Event().wait()
    """
)


class Child:
    """The child process, its output read by a thread as it comes."""

    def __init__(self, script: Path, url: str, boot: int) -> None:
        self.boot = boot
        self.proc = subprocess.Popen(
            [sys.executable, str(script), url, str(boot), str(SEATS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())
            if line.strip() == "ready":
                self.ready.set()

    def kill(self) -> list[str]:
        """SIGKILL; then everything it printed before it died (all of it acknowledged before the kill)."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(10)
        return self.lines

    def acks(self) -> list[tuple[int, ev.KeyPressed]]:
        out = []
        boot = self.boot
        for line in self.lines:
            if line.startswith("ack "):
                _, seq, seat, key, console_seq = line.split()
                out.append(
                    (int(seq), ev.KeyPressed(seat=int(seat), key=Key(int(key)), seq=int(console_seq), boot=boot))
                )
        return out


def check_store(url: str, acked: list[tuple[int, ev.KeyPressed]]) -> tuple[str, int]:
    """Every acknowledged press stored under its seq, the chain intact, the vote resumable; (uid, records)."""
    audit = Journal(url, create=False)  # read-only, as `chamber journal verify` opens it
    try:
        assert audit.verify() == []
        uid = audit.sittings()[-1]
        stored = {rec.seq: decode_input(rec.payload) for rec in audit.records(uid)}
    finally:
        audit.close()
    for seq, press in acked:
        assert stored.get(seq) == press, (seq, press, stored.get(seq))
    return uid, len(stored)


def kill_rounds(tmp_path: Path, url: str, kills: int, rng: random.Random) -> dict[str, int]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    acked: list[tuple[int, ev.KeyPressed]] = []
    settings: set[str] = set()
    records = 0
    for round_ in range(kills):
        child = Child(script, url, boot=round_ + 1)
        assert child.ready.wait(30), child.lines
        time.sleep(rng.uniform(0.0, 0.25))  # the kill lands anywhere: mid-batch, mid-commit, between
        lines = child.kill()
        settings.update(line for line in lines if line.startswith("settings "))
        acked.extend(child.acks())
        _, records = check_store(url, acked)
    assert len(settings) == 1, settings
    [shown] = settings
    assert shown in ("settings sqlite wal 2", "settings postgresql on on"), shown  # 2: synchronous=FULL
    journal = Journal(url)
    try:
        engine = Engine(journal)
        engine.recover()
        assert engine.sitting.phase is Phase.VOTE_OPEN
        vote = engine.sitting.vote
        assert vote is not None and vote.tally == vote.recount()
    finally:
        journal.close()
    return {"kills": kills, "acknowledged": len(acked), "records": records}


def test_sigkill_at_random_moments_loses_no_acknowledged_press(journal_url: str, tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{journal_url.split(':')[0]}")
    got = kill_rounds(tmp_path, journal_url, KILLS, rng)
    assert got["acknowledged"] > KILLS  # presses were acknowledged, in most rounds many
    print(f"\n{journal_url.split(':')[0]}: {got}")


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    yield from started_server()


def test_a_postgresql_server_crash_loses_no_acknowledged_commit(own_server: PgServer, tmp_path: Path) -> None:
    """The server, not the client, dies at a random moment while the engine commits; restarted, it holds
    every press the engine acknowledged."""
    url = own_server.create_database(f"d_{uuid.uuid4().hex[:8]}")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    rng = random.Random(SEED)
    acked: list[tuple[int, ev.KeyPressed]] = []
    rounds = max(2, KILLS // 3)
    for round_ in range(rounds):
        child = Child(script, url, boot=round_ + 1)
        assert child.ready.wait(30), child.lines
        time.sleep(rng.uniform(0.05, 0.25))
        own_server.crash()
        time.sleep(0.1)  # the engine meets the dead server: its appends fail, nothing more is acknowledged
        child.kill()
        acked.extend(child.acks())
        assert any(line == "fail" for line in child.lines)  # it did meet the crash
        own_server.start()
        check_store(url, acked)
    assert len(acked) > rounds
    print(f"\npostgresql server crashes: {rounds}, acknowledged: {len(acked)}")

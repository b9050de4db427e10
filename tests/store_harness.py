"""What the store tests share: a PostgreSQL server of their own, and consoles on a line journaled by a real engine.

``PgServer`` is a throwaway server (as ``conftest.pg_url`` starts one, fsync=on) that a test may crash
(``pg_ctl stop -m immediate``: no checkpoint, the WAL replayed at the next start), start again on the
same port, or whose backends it may terminate; the session's shared server must not be treated so.

``EngineLine`` is the real ``LineMachine`` of native consoles played by ``line_harness.Driver`` (time
passed in, frames answered by ``FakeConsole``), whose key events are submitted to a real ``Engine``
with a real store.  The Futures the line waits on are completed on the test's thread from the
engine's answers, so the ACK or the retake (``terminals.ioloop.acknowledge``) is in the machine's
inbox before the next ``pump``: whether a console is told "taken" is what the line machine decides
from what the engine answered, exactly as in the daemon.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import psycopg
from conftest import _free_port, _pg_bin_dir, _run
from line_harness import Driver, FakeConsole

from chamber.core import events as ev
from chamber.engine import Engine, Outcome
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.registers import Status


class PgServer:
    """A PostgreSQL server on a free loopback port, in a temporary directory, fsync=on."""

    def __init__(self) -> None:
        bin_dir = _pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
        self.bin = bin_dir
        self.as_postgres = os.geteuid() == 0  # initdb refuses to run as root
        self.tmp = Path(tempfile.mkdtemp(prefix="chamber-pg-faults-"))
        self.tmp.chmod(0o755)
        self.data = self.tmp / "data"
        self.data.mkdir(mode=0o700)
        self.log = self.tmp / "server.log"
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.tmp, user.pw_uid, user.pw_gid)
            os.chown(self.data, user.pw_uid, user.pw_gid)
        init = self._ctl(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        self.port = _free_port()
        self.running = False

    def _ctl(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _run([str(self.bin / program), *args], self.as_postgres)

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={self.tmp} -p {self.port} -c fsync=on"
        done = self._ctl("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")
        if done.returncode != 0:
            raise RuntimeError(f"could not start PostgreSQL:\n{done.stdout}\n{done.stderr}\n{self.log.read_text()}")
        self.running = True

    def crash(self) -> None:
        """Stop the server the way a crash does: every process quits at once, nothing is checkpointed."""
        done = self._ctl("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}\n{done.stderr}")
        self.running = False

    def close(self) -> None:
        if self.running:
            self._ctl("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False
        shutil.rmtree(self.tmp, ignore_errors=True)

    @property
    def admin(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            cur = conn.execute(statement, params or None)
            return cur.fetchall() if cur.description else []

    def terminate(self, database: str) -> int:
        """Terminate every backend serving ``database`` (as an administrator or a failover would)."""
        rows = self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            database,
        )
        return sum(1 for (ok,) in rows if ok)


def started_server() -> Iterator[PgServer]:
    """A PgServer of the test's own, started, and closed (its files removed) afterwards: the body of the
    fixtures of the tests that crash or stop their server."""
    pg = PgServer()
    try:
        pg.start()
        yield pg
    finally:
        pg.close()


class EngineLine:
    """Native consoles for ``seats`` (unit = seat) on one line machine, journaled through ``engine``."""

    def __init__(self, engine: Engine, seats: range) -> None:
        self.engine = engine
        self.consoles = [FakeConsole(seat, boot=1, card_seq=1, status=Status.PRESENCE) for seat in seats]
        links = []
        for seat in seats:
            link = ConsoleLink(seat=seat, unit=seat)
            link.card_seq = 1 << 8 | 1  # boot 1, card 1: the cards are put in through the engine, unchanged here
            links.append(link)
        self.machine = LineMachine("S", links, baud=115200, timeout_s=0.01)
        self.drv = Driver(self.machine, list(self.consoles), manual=True)
        self.drv.journal = self._execute  # presence and the like: journaled at once
        self.answers: list[tuple[ev.KeyPressed, Outcome | BaseException]] = []

    def _execute(self, event: ev.Input) -> Outcome:
        return self.engine.execute(event, timeout=20)

    def console(self, seat: int) -> FakeConsole:
        return self.consoles[seat - self.consoles[0].unit]

    def pump(self, seconds: float = 0.02) -> None:
        """Run the line for ``seconds`` of its time, then hand its key events to the engine and its
        answers back to the line (each Future completed here, so ACK or retake is queued on return)."""
        self.drv.run(seconds)
        pending, self.drv.pending = self.drv.pending, []
        asked = [(event, fut, self.engine.submit(event)) for event, fut in pending]
        for event, fut, answer in asked:
            try:
                outcome = answer.result(20)
            except Exception as exc:
                self.answers.append((event, exc))  # type: ignore[arg-type]
                fut.set_exception(exc)
            else:
                self.answers.append((event, outcome))  # type: ignore[arg-type]
                fut.set_result(outcome)

    def latched(self) -> int:
        """Key events the consoles still hold (not acknowledged)."""
        return sum(len(c.fifo) for c in self.consoles)

    def failed_answers(self) -> int:
        return sum(1 for _, a in self.answers if isinstance(a, BaseException))


def completed(fut: Future[Any]) -> bool:
    return fut.done() and fut.exception() is None

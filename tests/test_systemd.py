"""sd_notify against a real AF_UNIX datagram socket: READY=1, then WATCHDOG=1 while the controller is
healthy, and no more pings once a line loop or the engine stalls."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from waiting import wait_for

from chamber.config import load_config
from chamber.daemon import Controller, start_controller
from chamber.systemd import STALL_S, ControllerHealth, Watchdog, notify, watchdog_period
from hardware_sim.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent


class NotifySocket:
    """What systemd listens on: a datagram socket whose path goes into $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                return self.messages

    def wait(self, predicate: Callable[[list[str]], bool], timeout: float = 15.0, what: str = "message") -> None:
        wait_for(lambda: predicate(self.drain()), timeout=timeout, what=what)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify")
    try:
        yield sock
    finally:
        sock.close()


def test_notify_sends_one_datagram_to_a_path_and_to_the_abstract_namespace(notify_socket: NotifySocket) -> None:
    assert notify("READY=1", "STATUS=up", environ={"NOTIFY_SOCKET": str(notify_socket.path)})
    notify_socket.wait(lambda m: m == ["READY=1\nSTATUS=up"], what="READY")

    name = f"chamber-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        abstract.bind("\0" + name)
        assert notify("WATCHDOG=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert abstract.recv(100) == b"WATCHDOG=1"
    finally:
        abstract.close()
    # not under systemd, or systemd gone: nothing is sent and nothing raises
    assert not notify("READY=1", environ={})
    assert not notify("READY=1", environ={"NOTIFY_SOCKET": str(notify_socket.path) + "-missing"})


def test_watchdog_period_comes_from_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_period({"WATCHDOG_USEC": "15000000"}) == 15.0
    assert watchdog_period({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0
    assert watchdog_period({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_period({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_period({}) is None


@pytest.fixture
def chamber(tmp_path: Path) -> Iterator[tuple[Controller, threading.Thread]]:
    """The real controller on the example config: line A on the simulator, line B on an adapter that is
    not plugged in; with the engine's thread, as ``chamber.systemd.supervised`` finds it."""
    config = load_config(ROOT / "config.toml")
    sim = Simulator(config)
    sim.start()
    ports = {"A": sim.lines["A"], "B": str(tmp_path / "no-such-adapter")}
    before = set(threading.enumerate())
    ctl = start_controller(config, ports=ports, store_url=f"sqlite:///{tmp_path / 'j.db'}")
    [engine_thread] = [t for t in threading.enumerate() if t not in before and t.name == "chamber-engine"]
    try:
        yield ctl, engine_thread
    finally:
        ctl.stop()
        sim.stop()


def test_pings_while_the_loops_work_and_stop_when_one_stalls(
    chamber: tuple[Controller, threading.Thread], notify_socket: NotifySocket
) -> None:
    ctl, engine_thread = chamber
    line_a, line_b = ctl.lines["A"], ctl.lines["B"]
    env = {"NOTIFY_SOCKET": str(notify_socket.path)}
    # the watchdog on line A with a short stall limit, so that the test is short
    health = ControllerHealth({"A": line_a}, engine_thread, stall_s=1.0)
    dog = Watchdog(health.problem, 0.2, send=lambda *f: notify(*f, environ=env), ready_status="running")
    # line B's adapter is missing: the loop retries to open it, with a back-off (0.5, 1, 2, 4 s ...).
    # Restarting the controller would not plug it in: with the real stall limit that is progress.
    unplugged = ControllerHealth({"B": line_b}, engine_thread)
    assert STALL_S >= 10.0
    hang, release = threading.Event(), threading.Event()
    write = line_a.transport.write

    def hanging_write(frame: bytes) -> None:  # a driver that hangs: the loop neither works nor dies
        if hang.is_set():
            release.wait()
        write(frame)

    line_a.transport.write = hanging_write  # type: ignore[method-assign]
    try:
        notify("READY=1", environ=env)
        dog.start()
        tries: list[int] = []
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            assert unplugged.problem() is None
            tries.append(line_b.stats.errors["open"])
            time.sleep(0.1)
        assert tries[-1] >= 3, tries
        assert notify_socket.drain()[0] == "READY=1"
        assert notify_socket.messages.count("WATCHDOG=1") >= 10, notify_socket.messages

        hang.set()  # line A's loop is stuck in the driver
        notify_socket.wait(lambda m: any(x.startswith("STATUS=unhealthy") for x in m), what="unhealthy")
        status = next(x for x in notify_socket.messages if x.startswith("STATUS=unhealthy"))
        assert "no progress on line A" in status, status
        notify_socket.messages.clear()
        time.sleep(1.0)
        assert "WATCHDOG=1" not in notify_socket.drain(), "pinged while a line loop was stuck"

        release.set()  # it comes unstuck: pings again
        hang.clear()
        notify_socket.wait(lambda m: m.count("WATCHDOG=1") >= 2, what="pings again")
        assert "STATUS=running" in notify_socket.messages

        ctl.engine.stop()  # the engine's thread ends: no pings, whatever the lines do
        notify_socket.messages.clear()
        notify_socket.wait(lambda m: "STATUS=unhealthy: the engine's thread is not running" in m, what="engine")
        notify_socket.messages.clear()
        time.sleep(0.6)
        assert "WATCHDOG=1" not in notify_socket.drain()
    finally:
        dog.stop()
        release.set()


def config_copy(tmp_path: Path) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(text.replace('url = "sqlite:///var/chamber.db"', 'url = "sqlite:///state/chamber.db"'))
    return path


def test_chamber_run_under_systemd_says_ready_pings_and_says_stopping(
    tmp_path: Path, notify_socket: NotifySocket
) -> None:
    """The real daemon, started as the unit in deploy/ starts it (Type=notify, JSON logs) with WatchdogSec=1."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_socket.path), WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    cfg = config_copy(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chamber.cli",
            "run",
            "--config",
            str(cfg),
            "--simulate",
            "--no-web",
            "--log-format",
            "json",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        notify_socket.wait(lambda m: any(x.startswith("READY=1") for x in m), timeout=30, what="READY=1")
        ready = next(i for i, x in enumerate(notify_socket.messages) if x.startswith("READY=1"))
        assert "STATUS=controller running: 2 line(s)" in notify_socket.messages[ready]
        # pings after READY come from the health watchdog (every 0.5 s with WatchdogSec=1)
        notify_socket.wait(lambda m: m[ready:].count("WATCHDOG=1") >= 4, what="pings after READY")
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert "STOPPING=1\nSTATUS=stopping" in notify_socket.drain()
    assert "watchdog" not in stderr, stderr  # a clean stop is not reported as a stall
    # the unit's ExecStart logs JSON, one object per line, for journald and whatever collects from it
    entries = [json.loads(line) for line in stderr.splitlines()]
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries), stderr
    assert any(e["logger"] == "chamber.daemon" and e["message"] == "stopped" for e in entries), stderr


def test_supervised_gives_the_daemon_an_on_started_that_says_ready(tmp_path: Path, notify_socket: NotifySocket) -> None:
    """chamber.daemon.run calls ``on_started`` with its running controller; under systemd the callback from
    ``supervised`` says READY=1 with the controller's size, starts the watchdog on its health and chains
    SIGTERM to say STOPPING=1 before the daemon stops.  No function of chamber.daemon is replaced."""
    from chamber import daemon
    from chamber.systemd import supervised

    config = load_config(config_copy(tmp_path))
    env = {"NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "400000"}
    original = daemon.start_controller
    handler_before = signal.getsignal(signal.SIGTERM)
    started: list[Controller] = []
    with supervised(env) as on_started:

        def started_then_stop_soon(controller: Controller) -> None:
            assert daemon.start_controller is original
            started.append(controller)
            on_started(controller)
            # the signal handler runs on this (the main) thread, inside run's wait
            threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGTERM)).start()

        code = daemon.run(config, simulate=True, web=False, on_started=started_then_stop_soon)
    assert code == 0
    assert len(started) == 1 and started[0].lines  # the controller that ran, once
    messages = notify_socket.drain()
    ready = next(i for i, m in enumerate(messages) if m.startswith("READY=1"))
    assert "STATUS=controller running: 2 line(s), 43 seats" in messages[ready]
    assert messages[ready:].count("WATCHDOG=1") >= 3, messages  # every 0.2 s while the controller is healthy
    assert "STOPPING=1\nSTATUS=stopping" in messages[ready:]
    assert signal.getsignal(signal.SIGTERM) is handler_before  # run put back what it found


def test_supervised_outside_systemd_is_a_callback_that_does_nothing() -> None:
    from chamber.systemd import supervised

    with supervised({}) as on_started:
        on_started(None)  # type: ignore[arg-type]  # not even looked at

"""systemd supervision of ``chamber run``: readiness, status and the watchdog, over ``$NOTIFY_SOCKET``.

How it works
------------
systemd starts a ``Type=notify`` service with ``$NOTIFY_SOCKET`` naming an ``AF_UNIX`` datagram socket
(a path, or ``@name`` in the abstract namespace) and, with ``WatchdogSec=``, ``$WATCHDOG_USEC``.  The
service sends it newline-separated ``KEY=value`` datagrams: ``READY=1`` once it serves, ``STATUS=...``
for ``systemctl status``, ``WATCHDOG=1`` at least once per watchdog period, ``STOPPING=1`` when it
begins to stop.  :func:`notify` is that protocol with the stdlib ``socket`` module (libsystemd's
``sd_notify`` does no more); outside systemd it does nothing.

The watchdog must say "the controller works", not "the process exists": :class:`Watchdog` pings every
half period only while :class:`ControllerHealth` finds the engine's thread alive and every line loop
making progress.  A line's progress is any of its counters moving (cycles, polls, writes, broadcasts,
reopen attempts, errors): a line whose adapter is unplugged keeps trying to reopen it and is alive —
restarting the controller would not plug it back in, and restarting it again and again would stop
the whole hall.  Only a loop whose counters stand still for ``stall_s`` (a thread that died or hangs)
stops the pings, so systemd kills the process (``SIGABRT``) and ``Restart=on-failure`` starts it again;
the engine replays the journal and resumes the sitting.

The daemon's main loop lives in chamber/daemon.py, which does not know about systemd: :func:`supervised`
gives the callback that ``chamber.daemon.run`` calls with the controller once it runs (its
``on_started``): ``READY=1`` there, the health watchdog started, and the daemon's SIGTERM handler chained
to send ``STOPPING=1``.  Until then it keeps the watchdog pinging (a long journal replay is bounded by
``TimeoutStartSec=``, not by the watchdog).  It relies only on what the controller exposes: ``lines``
(each with ``line_id`` and ``stats``), ``config.seats``, and the engine's thread name ``chamber-engine``
(the one started since ``supervised`` began).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from chamber.daemon import Controller

log = logging.getLogger("chamber.systemd")

ENGINE_THREAD = "chamber-engine"  # chamber.engine.Engine.start names its owner thread so
#: A line loop whose counters have not moved for this long is stalled.  Longer than the line's longest
#: honest silence: the reopen back-off of an unplugged adapter (terminals.machine.REOPEN_MAX_S, 5 s), a
#: gateway's connect timeout (2 s) and a stuck UART's write timeout (0.5 s).
STALL_S = 10.0


def notify(*fields: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``fields`` ("READY=1", "STATUS=...") as one datagram to ``$NOTIFY_SOCKET``; False when there is
    none (not under systemd) or it cannot be reached.  Never raises: supervision must not stop the hall."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not path or not fields:
        return False
    if path.startswith("@"):  # the abstract namespace: a leading NUL byte instead of the "@"
        path = "\0" + path[1:]
    elif not path.startswith("/"):  # vsock: and other transports are for VMs and containers' managers
        return False
    message = "\n".join(fields).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, path)
    except OSError as exc:
        log.debug("notify %s: %s", fields, exc)
        return False
    return True


def watchdog_period(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog period in seconds from ``$WATCHDOG_USEC``, or None when there is no watchdog (or it is
    meant for another process: ``$WATCHDOG_PID``)."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


class LineView(Protocol):
    """What the watchdog reads of a line (the daemon's per-line handle): its id and its counters
    (``terminals`` LineStats: cycles, polls, writes, broadcasts, reopens, errors)."""

    @property
    def line_id(self) -> str: ...

    @property
    def stats(self) -> Any: ...


def _progress(loop: LineView) -> int:
    st = loop.stats
    errors = sum(dict(st.errors).values())  # a copy in one step: the line's thread keeps counting
    return int(st.cycles + st.polls + st.writes + st.broadcasts + st.reopens + errors)


class ControllerHealth:
    """Whether the engine and every line loop of a controller are working; called from one thread."""

    def __init__(
        self,
        lines: Mapping[str, LineView],
        engine_thread: threading.Thread | None,
        *,
        stall_s: float = STALL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = dict(lines)
        self.engine_thread = engine_thread
        self.stall_s = stall_s
        self._clock = clock
        now = clock()
        self._seen = {line_id: (_progress(loop), now) for line_id, loop in self.lines.items()}

    def problem(self) -> str | None:
        """None when all is well, else what is wrong, in words for ``systemctl status`` and the log."""
        if self.engine_thread is None or not self.engine_thread.is_alive():
            return "the engine's thread is not running"
        now = self._clock()
        stalled = []
        for line_id, loop in self.lines.items():
            count = _progress(loop)
            last, since = self._seen[line_id]
            if count != last:
                self._seen[line_id] = (count, now)
            elif now - since >= self.stall_s:
                stalled.append(f"line {line_id} ({now - since:.0f} s)")
        if stalled:
            return "no progress on " + ", ".join(stalled)
        return None


class Watchdog:
    """Pings ``WATCHDOG=1`` every ``period_s / 2`` while ``check()`` returns None; says in STATUS and the log
    what is wrong when it does not (once per spell), and when it is well again."""

    def __init__(
        self,
        check: Callable[[], str | None],
        period_s: float,
        *,
        send: Callable[..., bool] = notify,
        ready_status: str = "running",
    ) -> None:
        self.check = check
        self.period_s = period_s
        self.send = send
        self.ready_status = ready_status
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chamber-watchdog", daemon=True)
        self._failing: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(self.period_s)

    def beat(self) -> None:
        """One check, and a ping when it passes (the thread calls this every half period)."""
        try:
            problem = self.check()
        except Exception as exc:  # a defect in the check must look like a sick controller, not kill the dog
            problem = f"health check failed: {type(exc).__name__}: {exc}"
        if problem is None:
            if self._failing is not None:
                log.warning("watchdog: healthy again; pinging systemd's watchdog again")
                self.send(f"STATUS={self.ready_status}")
                self._failing = None
            self.send("WATCHDOG=1")
            self.pings += 1
            return
        if problem != self._failing:
            log.error("watchdog: %s; no more pings: systemd restarts the controller unless it recovers", problem)
            self.send(f"STATUS=unhealthy: {problem}")
            self._failing = problem

    def _run(self) -> None:
        # systemd's advice: ping at half the period, so one late wake-up is not a restart
        while not self._stop.wait(self.period_s / 2):
            self.beat()


def controller_health(controller: Controller, engine_thread: threading.Thread | None) -> ControllerHealth:
    return ControllerHealth(controller.lines, engine_thread)


def _new_engine_thread(before: set[threading.Thread]) -> threading.Thread | None:
    started = [t for t in threading.enumerate() if t not in before and t.name == ENGINE_THREAD]
    return started[0] if started else None


@contextlib.contextmanager
def supervised(environ: Mapping[str, str] | None = None) -> Iterator[Callable[[Controller], None]]:
    """Around ``chamber.daemon.run``; yields its ``on_started``.  Under systemd (``$NOTIFY_SOCKET``) that
    says READY=1, starts the watchdog on the controller's health and sends STOPPING=1 on SIGTERM;
    elsewhere it does nothing at all."""
    env = dict(os.environ if environ is None else environ)
    if not env.get("NOTIFY_SOCKET"):
        yield lambda _controller: None
        return

    def send(*fields: str) -> bool:
        return notify(*fields, environ=env)

    before = set(threading.enumerate())
    period = watchdog_period(env)
    dogs: list[Watchdog] = []
    starting: Watchdog | None = None
    if period is not None:  # start-up (journal replay, opening the lines) is bounded by TimeoutStartSec
        starting = Watchdog(lambda: None, period, send=send)
        starting.start()
        dogs.append(starting)

    def on_started(controller: Controller) -> None:
        status = f"controller running: {len(controller.lines)} line(s), {len(controller.config.seats)} seats"
        if starting is not None:
            starting.stop()
        if period is not None:
            engine_thread = _new_engine_thread(before)
            if engine_thread is None:  # renamed in chamber.engine? then every ping is withheld: say why
                log.error(
                    "watchdog: no %r thread started with the controller; the watchdog will not ping", ENGINE_THREAD
                )
            health = controller_health(controller, engine_thread)
            dog = Watchdog(health.problem, period, send=send, ready_status=status)
            dog.start()
            dogs.append(dog)
        send("READY=1", f"STATUS={status}")
        _chain_sigterm(dogs, send)

    try:
        yield on_started
    finally:
        for dog in dogs:
            dog.stop()


def _chain_sigterm(dogs: list[Watchdog], send: Callable[..., bool]) -> None:
    """Before the daemon's own SIGTERM handler: STOPPING=1, and no more pings (the loops are about to stop
    on purpose; the watchdog must not report that as a stall)."""
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        send("STOPPING=1", "STATUS=stopping")
        for dog in dogs:
            dog.stop()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)

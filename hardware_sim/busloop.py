"""The simulator's one I/O loop: every line's pty in one selector, every due reply in one deadline heap.

How it works
------------
:class:`BusLoop` is one thread for all the lines of a simulator process.  Each line is a
:class:`~hardware_sim.wire.Wire`, which does no I/O waiting and reads no clock of its own: the loop
passes it the time with every call and it answers with its next :attr:`~hardware_sim.wire.Wire.deadline`.

Each turn of the loop:

1. waits in ``select(2)`` on every wire's file descriptors and a wake-up pipe, at most until the
   earliest deadline in the heap (entries are ``(deadline, seq, wire)``; one whose deadline is no
   longer the wire's own is stale and skipped);
2. runs the wires whose deadline has come (:meth:`Wire.on_timer`: replies written at their wire time)
   before it reads anything, since a reply that is due cannot wait for a request that will not be
   answered for another t3.5;
3. hands the bytes that arrived to their wires (:meth:`Wire.on_readable`), all with the time
   ``select`` returned (when they were known to be there); the wake-up pipe means one-shot garbage
   or :meth:`stop`.

Why ``select`` and not ``epoll``: the wait must end within a fraction of a millisecond of a reply's
wire time (t3.5 is 1.75 ms at 115200 baud), and Python rounds an ``epoll``/``poll`` timeout up to a
whole millisecond, while ``select`` takes microseconds.  A process with a descriptor numbered past
``FD_SETSIZE`` (1024) cannot use ``select``; the loop then falls back to ``poll`` and says so in the log.
For the same reason the loop thread asks Linux for a timer slack of 1 µs (``prctl``) instead of the
default 50 µs, by which every wake-up would otherwise be late.  Nothing spins: between wake-ups the
thread sleeps in the kernel, so the simulator leaves the CPU to the controller it is testing.

``realtime=True`` (what ``python -m hardware_sim --wire-time`` asks for) also puts the loop thread in
the ``SCHED_FIFO`` class at a low priority (:data:`REALTIME_PRIORITY`), when the process may
(root, or ``CAP_SYS_NICE``; otherwise it says so in the log and runs as before).  Why: the consoles
it stands for have CPUs of their own, so their timing must not depend on how busy the controller's
machine is; on two cores shared with a controller polling 32 lines, a normal thread waits for a
time slice now and then and a reply goes out milliseconds late.  It takes no more CPU that way (the
thread still sleeps between replies, 20 % of a core at 4,096 seats), it only gets it when a reply
is due.  A handler that leaves its wire's deadline in the past is run again 1 ms later at the
earliest, never in a tight loop that a real-time thread would turn into a lost core.

An exception in one wire's handler is logged and the loop goes on with the others: one line's fault
(a request hook in a test that raises) must not silence every line.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import logging
import math
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable

from hardware_sim.wire import Wire

log = logging.getLogger("hardware_sim.busloop")

#: The longest wait with nothing due, so that :meth:`BusLoop.stop` is never stuck on a lost wake-up.
IDLE_WAIT_S = 0.2
#: SCHED_FIFO priority of the loop thread with ``realtime=True``: above every normal thread, below the
#: kernel's own real-time threads (which run at 50 and above).
REALTIME_PRIORITY = 10
#: A wire whose deadline is still past after its timer ran is run again this much later (a bug guard).
RETRY_S = 0.001
_FD_SETSIZE = 1024
_PR_SET_TIMERSLACK = 29


def _realtime() -> None:
    """Put the calling thread into SCHED_FIFO at :data:`REALTIME_PRIORITY`, if the process may."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (OSError, AttributeError) as exc:
        log.info("the simulator's loop runs at normal priority (no SCHED_FIFO: %s)", exc)


def _fine_timer_slack() -> None:
    """Ask for a 1 µs timer slack on this thread (Linux); elsewhere, or refused, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1000, 0, 0, 0)


class BusLoop(threading.Thread):
    """Drives every :class:`Wire` of a simulator from one thread (see the module docstring)."""

    def __init__(
        self, wires: Iterable[Wire], *, realtime: bool = False, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        super().__init__(name="sim-bus-loop", daemon=True)
        self._clock = clock
        self.realtime = realtime
        self._wires = list(wires)
        self._by_fd: dict[int, Wire] = {}
        for wire in self._wires:
            wire.set_waker(self.wake)
            for fd in wire.fds():
                self._by_fd[fd] = wire
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = threading.Event()
        self._heap: list[tuple[float, int, Wire]] = []
        self._armed: dict[Wire, float | None] = dict.fromkeys(self._wires)
        self._seq = itertools.count()

    # ------------------------------------------------------------------ any thread

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop (joined) and close its wake-up pipe; the wires' descriptors are the caller's."""
        self._stopping.set()
        self.wake()
        if self.is_alive():
            self.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # ------------------------------------------------------------------ the thread

    def run(self) -> None:
        _fine_timer_slack()
        if self.realtime:
            _realtime()
        fds = [self._wake_r, *self._by_fd]
        wait = self._select if max(fds) < _FD_SETSIZE else self._poller(fds)
        while not self._stopping.is_set():
            self._fire(self._clock())
            timeout = IDLE_WAIT_S
            if self._heap:
                timeout = min(max(self._heap[0][0] - self._clock(), 0.0), IDLE_WAIT_S)
            ready = wait(fds, timeout)
            now = self._clock()
            self._fire(now)
            for fd in ready:
                if fd == self._wake_r:
                    self._woken(now)
                    continue
                wire = self._by_fd[fd]
                self._call(now, wire, wire.on_readable, fd, now)

    @staticmethod
    def _select(fds: list[int], timeout: float) -> list[int]:
        return select.select(fds, [], [], timeout)[0]

    @staticmethod
    def _poller(fds: list[int]) -> Callable[[list[int], float], list[int]]:
        log.warning("a file descriptor above %d: waiting with poll(2), to the next whole millisecond", _FD_SETSIZE)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)

        def wait(_: list[int], timeout: float) -> list[int]:
            return [fd for fd, _ in poller.poll(math.ceil(timeout * 1000.0))]

        return wait

    def _woken(self, now: float) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_r, 4096):
                pass
        if self._stopping.is_set():
            return
        for wire in self._wires:
            self._call(now, wire, wire.poke, now)

    def _fire(self, now: float) -> None:
        """Run every wire whose deadline has come."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, wire = heapq.heappop(heap)
            if self._armed.get(wire) != due:
                continue  # stale: the wire moved its deadline since
            self._armed[wire] = None
            self._call(now, wire, wire.on_timer, now)

    def _call(self, now: float, wire: Wire, handler: Callable[..., None], *args: object) -> None:
        """Run one of a wire's handlers, then put its next deadline in the heap."""
        try:
            handler(*args)
        except Exception:
            if self._stopping.is_set():
                return
            log.exception("line %s: the simulator's handler failed; the line goes on", wire.line_id)
        deadline = wire.deadline
        if deadline is None:
            self._armed[wire] = None
            return
        if deadline <= now and handler == wire.on_timer:
            deadline = now + RETRY_S  # its timer ran and left the deadline behind: not again at once
        if deadline != self._armed.get(wire):
            self._armed[wire] = deadline
            heapq.heappush(self._heap, (deadline, next(self._seq), wire))

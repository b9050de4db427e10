"""One I/O loop for every RS-485 line: one thread, one selector, non-blocking I/O.

The protocol of each line is a sans-IO ``terminals.machine.LineMachine``; this module is the only
place that touches ports, clocks and threads for them.  The loop's thread waits in one ``selectors``
selector on

* every open line's file descriptor (a serial port, or a gateway's socket: a connect in progress
  waits for it to turn writable);
* an eventfd (a self-pipe where there is none) that other threads write to when they post: effects
  of the engine (``Line.post``), and the verdicts on journaled key events (``acknowledge``);
* a timerfd armed at the earliest deadline of any line (a frame's t3.5 gap, a reply's timeout, the
  turnaround after a broadcast, a probe, a reopen), because the selector's own timeout is rounded up
  to whole milliseconds, which at 115200 baud would add a fifth to every poll's 5.5 ms.  Where there
  is no timerfd the selector's timeout does the job, less precisely.

On each wake-up it reads what arrived on every ready line and feeds it to that line's machine, hands
the posted inputs to their machines, then steps every machine whose deadline has come, writes the
frames they return, and submits the engine inputs they queued.  So one wake-up serves every line whose
reply has arrived; per-line timing stays in each machine.

A line whose transport cannot be opened, or fails (``LineDown``), is closed and tried again when its
machine says (back-off from 0.5 to 5 s), while the other lines run on.  Key events of one console are
acknowledged to it only when the engine's Futures of all of them have completed with a settled
outcome (``acknowledge``, run on the engine's thread, posts the verdict back here).

``Line`` is the handle the daemon, the web publisher and the benchmarks hold per line: ``post``,
``stats``, ``links``, ``by_seat``, ``texts``, ``readback``.  ``IOLoop.cpu_s`` is the thread CPU
time the loop has used (read from its thread's CPU clock), for ``chamber bench bus``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import os
import select
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from chamber.core import effects as fx
from chamber.core import events as ev
from terminals import native, texts
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.readback import Readback
from terminals.state import AckGroup, LineStats, Reread
from terminals.transport import LineDown, Transport

log = logging.getLogger("terminals.line")

Submit = Callable[[ev.Input], "Future[Any]"]
#: how long a gateway's TCP connect may take before it counts as failed
CONNECT_TIMEOUT_S = 2.0

# a line's transport, as the loop sees it
_CLOSED = 0
_CONNECTING = 1
_OPEN = 2


class Line:
    """One line served by the loop: its transport, its machine, and what the rest of the program reads."""

    def __init__(self, loop: IOLoop, transport: Transport, machine: LineMachine) -> None:
        self._loop = loop
        self.transport = transport
        self.machine = machine
        self.state = _CLOSED
        self.retry_at = 0.0  # _CLOSED: when to open; _CONNECTING: when the connect has failed
        self.fd = -1

    @property
    def line_id(self) -> str:
        return self.machine.line_id

    @property
    def links(self) -> list[ConsoleLink]:
        return self.machine.links

    @property
    def by_seat(self) -> dict[int, ConsoleLink]:
        return self.machine.by_seat

    @property
    def stats(self) -> LineStats:
        return self.machine.stats

    @property
    def texts(self) -> texts.SeatTexts:
        return self.machine.texts

    @property
    def readback(self) -> Readback:
        return self.machine.readback

    def post(self, effect: fx.Effect) -> None:
        """Hand an engine effect to this line (any thread; never blocks)."""
        self._loop.post(self.machine, "effect", effect)


def reread_unless_journaled(fut: Future[Any], token: Reread, post: Callable[[str, tuple[Any, ...]], None]) -> None:
    """Post ``("reread", (link, boot, mask, say))`` if the change ``fut`` carries (a card, a sensor, the
    console's reachability) is not journaled (nor settled otherwise: ``native.settled``), so it is
    reported again."""

    def done(f: Future[Any]) -> None:
        if f.exception() is not None or not native.settled(f.result()):
            post("reread", (token.link, token.boot, token.mask, token.say))

    fut.add_done_callback(done)


def acknowledge(group: AckGroup, post: Callable[[str, tuple[Any, ...]], None]) -> None:
    """Once every Future of ``group`` is done, post ``("ack", (link, seq, boot, epoch))`` if each press
    was journaled and its verdict is final (``native.settled``), else ``("retake", (link, boot, epoch))``: the
    engine may split one console's events over two batches, and an ACK frees every event up to it.
    The callbacks run on whichever thread completes the Futures (the engine's)."""
    futures = list(group.futures)
    left = [len(futures)]
    lock = threading.Lock()

    def verdict() -> None:
        if all(f.exception() is None and native.settled(f.result()) for f in futures):
            post("ack", (group.link, group.seq, group.boot, group.epoch))
        else:
            post("retake", (group.link, group.boot, group.epoch))

    def done(_: Future[Any]) -> None:
        with lock:
            left[0] -= 1
            if left[0]:
                return
        verdict()

    for fut in futures:
        fut.add_done_callback(done)


class _Timer:
    """A timerfd on CLOCK_MONOTONIC (the clock of ``time.monotonic``), armed at an absolute time with
    nanosecond resolution.  Python 3.11 has no ``os.timerfd_create``; libc has had it since 2008."""

    class _Spec(ctypes.Structure):
        _fields_ = [
            ("interval_s", ctypes.c_long),
            ("interval_ns", ctypes.c_long),
            ("value_s", ctypes.c_long),
            ("value_ns", ctypes.c_long),
        ]

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
        fd = libc.timerfd_create(time.CLOCK_MONOTONIC, os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self.fd: int = fd
        self._spec = self._Spec()
        self._armed = math.nan

    def arm(self, when: float) -> None:
        if when == self._armed:
            return
        self._armed = when
        spec = self._spec
        if math.isinf(when):
            spec.value_s = spec.value_ns = 0  # disarmed
        else:
            whole = int(when)
            spec.value_s = whole
            spec.value_ns = max(int((when - whole) * 1e9), 1)  # all zero would disarm it
        if self._settime(self.fd, 1, ctypes.byref(spec), None) < 0:  # 1: TFD_TIMER_ABSTIME
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def fired(self) -> None:
        # Not read: the next ``arm`` (always a timerfd_settime after this) resets the expiry count, so
        # the descriptor stops being readable, and a wake-up costs one system call less.
        self._armed = math.nan

    def close(self) -> None:
        os.close(self.fd)


class _Poller:
    """``select.epoll`` where there is one (no per-wake-up objects: a wake-up is the loop's unit of cost),
    else a ``selectors`` selector; ``wait`` returns the data registered with each ready descriptor."""

    def __init__(self) -> None:
        self._data: dict[int, Any] = {}
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._sel = selectors.DefaultSelector() if self._epoll is None else None

    def register(self, fd: int, data: Any, *, write: bool = False) -> None:
        self._data[fd] = data
        if self._epoll is not None:
            self._epoll.register(fd, select.EPOLLOUT if write else select.EPOLLIN)
        else:
            assert self._sel is not None
            self._sel.register(fd, selectors.EVENT_WRITE if write else selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        if self._data.pop(fd, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError, OSError):
            if self._epoll is not None:
                self._epoll.unregister(fd)
            elif self._sel is not None:
                self._sel.unregister(fd)

    def wait(self, timeout: float | None) -> list[Any]:
        data = self._data
        if self._epoll is not None:
            return [data[fd] for fd, _ in self._epoll.poll(-1 if timeout is None else timeout) if fd in data]
        assert self._sel is not None
        return [data[key.fd] for key, _ in self._sel.select(timeout) if key.fd in data]

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        if self._sel is not None:
            self._sel.close()


def _make_timer() -> _Timer | None:
    try:
        return _Timer()
    except (OSError, AttributeError) as exc:  # not Linux: the selector's millisecond timeout does
        log.info("no timerfd (%s): line timing rounded to whole milliseconds", exc)
        return None


class IOLoop:
    """The lines' one thread.  ``add_line`` before ``start``; ``post`` from any thread."""

    def __init__(self, submit: Submit, clock: Callable[[], float] = time.monotonic) -> None:
        self._submit = submit
        self._clock = clock
        self.lines: list[Line] = []
        self._queue: deque[tuple[LineMachine, str, Any]] = deque()
        self._woken = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._cpu_clock: int | None = None
        self._cpu_final = 0.0
        self._poller = _Poller()
        self.wakeups = 0  # selector returns: what one wake-up per reply costs is measured against it
        if hasattr(os, "eventfd"):
            self._wake_r = self._wake_w = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:  # a self-pipe
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_r, False)
            os.set_blocking(self._wake_w, False)

    def add_line(
        self,
        line_id: str,
        transport: Transport,
        links: Sequence[ConsoleLink],
        *,
        baud: int,
        timeout_s: float = 0.05,
        retries: int = 2,
        text_show_s: float = texts.TEXT_SHOW_S,
    ) -> Line:
        machine = LineMachine(
            line_id,
            links,
            baud=baud,
            timeout_s=timeout_s,
            retries=retries,
            text_show_s=text_show_s,
            now=self._clock(),
        )
        line = Line(self, transport, machine)
        self.lines.append(line)
        return line

    # --- other threads ----------------------------------------------------------------------------------

    def post(self, machine: LineMachine, kind: str, item: Any) -> None:
        """Queue an input for ``machine`` ("effect", "ack" or "retake") and wake the loop (thread-safe)."""
        self._queue.append((machine, kind, item))
        # One write wakes the loop for a burst of posts: the loop clears the flag before it drains the
        # queue, so a post that finds it set is drained by that same round.
        if not self._woken:
            self._woken = True
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pipe wakes the loop just as well
            os.write(self._wake_w, (1).to_bytes(8, "little"))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lines", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current wake-up's work; the transports are closed by the loop's thread."""
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        else:  # never started: nothing else will close it
            self._poller.close()
        self._thread = None

    @property
    def cpu_s(self) -> float:
        """Thread CPU time the loop has used so far."""
        clock = self._cpu_clock
        if clock is not None:
            try:
                return time.clock_gettime(clock)
            except OSError:  # the thread has just ended
                pass
        return self._cpu_final

    # --- the loop's thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        with contextlib.suppress(AttributeError, OSError):  # read from other threads; not on every OS
            self._cpu_clock = time.pthread_getcpuclockid(threading.get_ident())
        poller = self._poller
        timer = _make_timer()
        wake = object()
        poller.register(self._wake_r, wake)
        if timer is not None:
            poller.register(timer.fd, timer)
        clock = self._clock
        lines = self.lines
        try:
            now = clock()
            for line in lines:
                line.retry_at = now
            while not self._stop:
                now = clock()
                soonest = math.inf
                for line in lines:
                    state = line.state
                    if state == _OPEN:
                        machine = line.machine
                        if machine.deadline <= now:
                            self._step(line, now)
                        when = machine.deadline if line.state == _OPEN else line.retry_at
                    elif line.retry_at <= now:
                        if state == _CLOSED:
                            self._open(line, now)
                        else:  # the connect took too long
                            self._failed_open(line, now, f"cannot connect to gateway {line.transport.name}")
                        when = line.machine.deadline if line.state == _OPEN else line.retry_at
                    else:
                        when = line.retry_at
                    if when < soonest:
                        soonest = when
                if timer is not None:
                    timer.arm(soonest)
                    # the timer wakes us on time; the poller's own timeout is only a safety net
                    timeout = None if math.isinf(soonest) else max(soonest - now, 0.0) + 0.002
                else:
                    timeout = None if math.isinf(soonest) else max(soonest - now, 0.0)
                ready = poller.wait(timeout)
                self.wakeups += 1
                now = clock()
                for data in ready:
                    if data is wake:
                        self._drain_posts()
                    elif data is timer:
                        assert timer is not None
                        timer.fired()
                    else:
                        self._readable(data, now)
        except Exception:
            log.exception("the lines' I/O loop failed")
            raise
        finally:
            self._cpu_final = time.thread_time()
            self._cpu_clock = None
            for line in lines:
                if line.state != _CLOSED:
                    poller.unregister(line.fd)
                line.transport.close()
                line.state = _CLOSED
            poller.close()
            if timer is not None:
                timer.close()

    def _drain_posts(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 8)
        self._woken = False  # before draining: a post from now on writes again
        queue = self._queue
        while queue:
            machine, kind, item = queue.popleft()
            if kind == "effect":
                machine.post_effect(item)
            elif kind == "ack":
                machine.ack(*item)
            elif kind == "reread":
                machine.reread(*item)
            else:
                machine.retake(*item)

    def _readable(self, line: Line, now: float) -> None:
        if line.state == _CONNECTING:
            try:
                line.transport.finish_open()
            except LineDown as exc:
                self._failed_open(line, now, str(exc))
                return
            self._poller.unregister(line.fd)
            self._poller.register(line.fd, line)
            self._opened(line, now)
            return
        try:
            data = line.transport.read_some()
        except LineDown as exc:
            self._down(line, now, str(exc))
            return
        if data:
            line.machine.feed(data, now)

    def _step(self, line: Line, now: float) -> None:
        machine = line.machine
        try:
            frame = machine.step(now)
            while frame is not None:
                line.transport.write(frame)
                frame = machine.step(now) if machine.deadline <= now else None
        except LineDown as exc:
            self._down(line, now, str(exc))
        except Exception:  # a defect in the protocol code: the line starts afresh, the others run on
            log.exception("line %s: protocol error", machine.line_id)
            self._down(line, now, "protocol error")
        if machine.outbox:
            self._flush(machine)

    def _flush(self, machine: LineMachine) -> None:
        outbox = machine.outbox
        machine.outbox = []
        submit = self._submit
        for event, group in outbox:
            fut = submit(event)
            if isinstance(group, AckGroup):
                group.futures.append(fut)
                if len(group.futures) == group.size:
                    acknowledge(group, functools.partial(self.post, machine))
            elif group is not None:
                reread_unless_journaled(fut, group, functools.partial(self.post, machine))

    def _open(self, line: Line, now: float) -> None:
        transport = line.transport
        try:
            ready = transport.begin_open()
            line.fd = transport.fileno()
        except LineDown as exc:
            transport.close()
            self._failed_open(line, now, str(exc), registered=False)
            return
        if ready:
            self._poller.register(line.fd, line)
            self._opened(line, now)
        else:
            line.state = _CONNECTING
            line.retry_at = now + CONNECT_TIMEOUT_S
            self._poller.register(line.fd, line, write=True)

    def _opened(self, line: Line, now: float) -> None:
        try:
            # stale bytes from before (a reply to the last controller, noise at power-up)
            line.machine.stats.garbage_bytes += line.transport.discard()
        except LineDown as exc:
            self._failed_open(line, now, str(exc))
            return
        line.state = _OPEN
        line.machine.opened(now, line.transport.name)

    def _failed_open(self, line: Line, now: float, why: str, *, registered: bool = True) -> None:
        if registered and line.fd >= 0:
            self._poller.unregister(line.fd)
        line.transport.close()
        line.state = _CLOSED
        line.fd = -1
        line.retry_at = line.machine.open_failed(now, why)
        if line.machine.outbox:
            self._flush(line.machine)

    def _down(self, line: Line, now: float, why: str) -> None:
        self._poller.unregister(line.fd)
        line.transport.close()
        line.state = _CLOSED
        line.fd = -1
        line.retry_at = line.machine.line_down(now, why)
        if line.machine.outbox:
            self._flush(line.machine)

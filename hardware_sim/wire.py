"""One virtual RS-485 line: the consoles' side of the cable, with its timing and its faults.

How it works
------------
The controller opens the slave end of a pty pair (the path in ``Simulator.lines``); the simulator
holds the master end, ``controller_fd``.  A :class:`Wire` is everything one line does with the bytes
on it.  It owns no thread and reads no clock to decide anything: the simulator's one
:class:`~hardware_sim.busloop.BusLoop` calls :meth:`Wire.on_readable` when bytes arrive and
:meth:`Wire.on_timer` at :attr:`Wire.deadline`, passing the time in each time, and the wire writes
what is due and names its next deadline.  One transaction on the line:

1. **Framing.**  Bytes from the controller are cut into frames the way a slave does: the length
   follows from the function code (01…06: 8 bytes; 15/16: 9 + byte count); an unknown function code,
   a bad CRC or a short frame waits for the 3.5-character silence (at least 1 ms: a pty has no
   timing of its own) and everything that came is one bad frame.  A frame with a bad CRC is counted
   in every console's ERR_CRC (every console on a bus hears every frame), one shorter than 4 bytes in
   ERR_FRAME; neither gets a reply.
2. **Broadcasts** (unit 0) are applied to every console model of the line directly
   (``write_registers(..., broadcast=True)``: MODE and TEXT), with no reply, except to a console whose
   ``miss_rate`` draw says it did not hear it; with wire time the bus then stays busy for the
   datasheet's broadcast turnaround (4 ms).
3. **No reply** to a unit that is not on the line, or a console that is powered off, ``dead``, or
   misses the request (``miss_rate``: it never heard it, so it neither acts nor answers).
4. **The answer.**  By default the console model answers at once through :func:`hardware_sim.slave.answer`
   (the project's RTU codec, no I/O).  With ``server_fd`` (``Simulator(..., pymodbus=True)``) the
   request goes to a pymodbus ``ModbusSerialServer`` on a second pty instead, and the transaction
   waits (``ASKING``) until its whole reply is in (length from the function code again; at most
   :data:`SERVER_TIMEOUT_S`).  Either way the reply then meets the faults: ``drop_rate`` (the reply
   vanishes: the console did act on the request), ``wrong_unit_rate`` (it names another unit),
   ``exception_rate`` (exception 04 instead), ``truncate_rate`` (it stops short), ``crc_rate`` (one
   bit flipped), ``noise_rate`` (a burst of random bytes reaches the controller first, then a
   3.5-character silence) and ``slow_ms`` (extra turnaround).
5. **Delivery.**  The bytes are queued with the time they are due and written then (``DELIVERING``);
   the next request is taken when the reply is out.  Without wire emulation they are due at once
   (noise, then the reply after t3.5; ``slow_ms`` later).  With ``wire_time=True`` the wire keeps a
   clock of the bus::

       start       = max(arrival of the request's first byte, bus_free_at)
       req_end     = start + request_bytes * 11 / baud
       reply_start = req_end + t3.5 + turnaround (+ slow_ms)
       delivered   = reply_start + reply_bytes * 11 / baud      (the whole reply is written then)
       bus_free_at = delivered + t3.5

   with t3.5 = 3.5 * 11 / baud below 19200 baud and 1.75 ms above (Modbus over Serial Line v1.02).
   How late each timed reply was written against ``delivered`` is summed in the stats
   (``late_ms_total`` over ``timed_replies``, and ``late_ms_max``): the simulator's own error, which a
   benchmark must not charge to the controller.
6. ``garbage`` is a one-shot: the given bytes (or N random bytes) go toward the controller as soon as
   the line is idle.  :meth:`Wire.set_faults` may be called from any thread at any time (from the
   request hook too): the values are swapped in under a lock, and the loop is woken for garbage.

All randomness comes from one seeded :class:`random.Random`, drawn in the same order for the same
traffic (miss, drop, wrong unit, exception, truncate, CRC, noise), so a run with the same seed and the
same traffic injects the same faults.  :meth:`Wire.stats` counts requests, replies and faults by kind.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from pymodbus.constants import ExcCodes

from hardware_sim.faults import FAULT_KINDS, FAULT_NAMES, Faults, checked
from hardware_sim.frames import char_time, crc_ok, request_length, response_length, t35
from hardware_sim.slave import answer
from terminals import registers as r
from terminals.rtu import with_crc

#: How long a transaction waits for the pymodbus server to answer before giving up (it answers in < 1 ms).
SERVER_TIMEOUT_S = 0.5
#: A pymodbus reply whose length its function code does not give ends after this much silence.
SERVER_SILENCE_S = 0.005
#: Random bytes in a noise burst, inclusive range.
NOISE_BYTES = (3, 12)


class Device(Protocol):
    """What the wire needs of a device on the line: a native console model or a generic module."""

    unit: int

    @property
    def powered(self) -> bool: ...

    def count_crc_error(self) -> None: ...

    def count_frame_error(self) -> None: ...

    def write_registers(self, address: int, values: list[int], *, broadcast: bool = False) -> ExcCodes | None: ...


@dataclass
class WireStats:
    requests: int = 0  # frames from the controller with a good CRC (broadcasts included)
    replies: int = 0  # replies delivered to the controller (corrupted ones included)
    broadcasts: int = 0
    bad_frames: int = 0  # frames from the controller with a bad CRC or too short
    no_device: int = 0  # requests for a unit that is not on the line
    # with wire time: how late replies reached the controller against the wire clock, summed (the
    # simulator's own scheduling delay, which a benchmark must not charge to the controller)
    timed_replies: int = 0
    late_ms_total: float = 0.0
    late_ms_max: float = 0.0
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))


class Phase(enum.Enum):
    IDLE = "idle"  # taking the next request off the buffer
    ASKING = "asking"  # waiting for the pymodbus server's reply
    DELIVERING = "delivering"  # bytes queued for the controller, due at their wire time


@dataclass
class _Output:
    due: float
    data: bytes
    kind: str  # "noise", "reply" or "garbage"
    timed: bool = False  # a reply whose lateness against the wire clock is measured


@dataclass
class _Asking:
    frame: bytes
    faults: Faults
    req_end: float
    until: float
    reply: bytearray = field(default_factory=bytearray)
    silence_at: float | None = None


class Wire:
    """One virtual RS-485 line (see the module docstring).  Driven by a :class:`~hardware_sim.busloop.BusLoop`."""

    def __init__(
        self,
        line_id: str,
        controller_fd: int,
        baud: int,
        consoles: Mapping[int, Device],
        *,
        server_fd: int | None = None,
        wire_time: bool = False,
        turnaround_s: float = 0.0003,
        seed: int = 1,
        on_request: Callable[[int, bytes], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.line_id = line_id
        self.baud = baud
        self.wire_time = wire_time
        self.turnaround_s = turnaround_s
        self.controller_fd = controller_fd
        self.server_fd = server_fd
        self._consoles = dict(consoles)
        self._rng = random.Random(seed)
        self._char = char_time(baud)
        self._t35 = t35(baud)
        self._silence = max(self._t35, 0.001)  # a pty has no timing of its own: at least 1 ms
        self._clock = clock  # only to measure how late a reply was written
        self._lock = threading.Lock()
        self._line_faults = Faults()
        self._unit_faults: dict[int, dict[str, bool | float]] = {}
        self._effective: dict[int, Faults] = {}  # a unit's faults, merged once per change, not per frame
        self._garbage: list[bytes] = []
        self._stats = WireStats()
        self._on_request = on_request
        self._wake: Callable[[], None] = lambda: None
        for fd in (controller_fd, server_fd):
            if fd is not None:
                os.set_blocking(fd, False)
        # the loop thread's state
        self.phase = Phase.IDLE
        self.bus_free_at = 0.0
        self._buf = bytearray()
        self._arrival = 0.0
        self._last_byte = 0.0
        self._silence_at: float | None = None
        self._outbox: deque[_Output] = deque()
        self._asking: _Asking | None = None

    # ------------------------------------------------------------------ control (any thread)

    def set_waker(self, wake: Callable[[], None]) -> None:
        """How to wake the loop that drives this wire (for one-shot garbage)."""
        self._wake = wake

    def set_request_hook(self, hook: Callable[[int, bytes], None] | None) -> None:
        """Call ``hook(unit, frame)`` on the loop thread for every good request, before it is served."""
        self._on_request = hook

    def set_faults(self, unit: int | None = None, **faults: object) -> None:
        """Set faults of the whole line (``unit=None``) or of one unit (overrides the line's values).

        Keys: the names in FAULT_NAMES, and garbage (one-shot: bytes, a hex
        string, or a number of random bytes).  Raises ValueError on unknown keys or bad values.
        """
        garbage = faults.pop("garbage", None)
        unknown = sorted(set(faults) - set(FAULT_NAMES))
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join((*FAULT_NAMES, 'garbage'))}")
        if unit is not None and unit not in self._consoles:
            raise ValueError(f"unit {unit} is not on line {self.line_id}")
        values = {name: checked(name, value) for name, value in faults.items()}
        blob = self._garbage_bytes(garbage) if garbage is not None else None
        with self._lock:
            if unit is None:
                self._line_faults = replace(self._line_faults, **values)  # type: ignore[arg-type]
            else:
                self._unit_faults.setdefault(unit, {}).update(values)
            self._effective.clear()
            if blob:
                self._garbage.append(blob)
        if blob:
            self._wake()

    def clear_faults(self, unit: int | None = None) -> None:
        """Remove the faults of one unit, or (``unit=None``) of the line and all its units."""
        with self._lock:
            if unit is None:
                self._line_faults = Faults()
                self._unit_faults.clear()
            else:
                self._unit_faults.pop(unit, None)
            self._effective.clear()

    def faults(self, unit: int | None = None) -> Faults:
        """The faults in effect for a unit (or the line's own)."""
        with self._lock:
            if unit is None:
                return self._line_faults
            merged = self._effective.get(unit)
            if merged is None:
                own = self._unit_faults.get(unit)
                merged = replace(self._line_faults, **own) if own else self._line_faults  # type: ignore[arg-type]
                self._effective[unit] = merged
            return merged

    def stats(self) -> dict[str, object]:
        with self._lock:
            out = asdict(self._stats)
        out["faults"] = dict(out["faults"])
        return out

    def _garbage_bytes(self, garbage: object) -> bytes:
        if isinstance(garbage, bool):
            raise ValueError("fault 'garbage' must be bytes, a hex string or a byte count")
        if isinstance(garbage, int):
            if not 1 <= garbage <= 4096:
                raise ValueError(f"fault 'garbage' byte count must be 1 … 4096, got {garbage}")
            with self._lock:
                return bytes(self._rng.randrange(256) for _ in range(garbage))
        if isinstance(garbage, bytes | bytearray):
            return bytes(garbage)
        if isinstance(garbage, str):
            try:
                return bytes.fromhex(garbage)
            except ValueError:
                raise ValueError(f"fault 'garbage' as text must be hex, got {garbage!r}") from None
        raise ValueError("fault 'garbage' must be bytes, a hex string or a byte count")

    def _count(self, **kinds: int) -> None:
        with self._lock:
            for name, n in kinds.items():
                if name in self._stats.faults:
                    self._stats.faults[name] += n
                else:
                    setattr(self._stats, name, getattr(self._stats, name) + n)

    # ------------------------------------------------------------------ the loop's side

    def fds(self) -> tuple[int, ...]:
        """The file descriptors the loop must watch for this line."""
        return (self.controller_fd,) if self.server_fd is None else (self.controller_fd, self.server_fd)

    @property
    def idle(self) -> bool:
        """No transaction in progress: the next request can be taken."""
        return self.phase is Phase.IDLE

    @property
    def deadline(self) -> float | None:
        """When :meth:`on_timer` must run next (None: only when bytes arrive)."""
        if self.phase is Phase.DELIVERING:
            return self._outbox[0].due
        if self.phase is Phase.ASKING:
            assert self._asking is not None
            silence = self._asking.silence_at
            return self._asking.until if silence is None else min(silence, self._asking.until)
        return self._silence_at

    def on_readable(self, fd: int, now: float) -> None:
        """Bytes arrived on ``fd`` (they were there at ``now``)."""
        if fd == self.controller_fd:
            data = self._read(fd)
            if not data:
                return
            if not self._buf:
                self._arrival = now
            self._buf += data
            self._last_byte = now
            if self.phase is Phase.IDLE:
                self._advance(now)
            return
        data = self._read(fd)
        asking = self._asking
        if data and asking is not None:  # anything else is a late reply to a request given up on: dropped
            asking.reply += data
            self._server_reply(now)

    def on_timer(self, now: float) -> None:
        """The deadline came: deliver what is due, end a silence, or give up on the server."""
        if self.phase is Phase.DELIVERING:
            self._flush(now)
            if self.idle:
                self._advance(now)
        elif self.phase is Phase.ASKING:
            asking = self._asking
            assert asking is not None
            if asking.silence_at is not None and now >= asking.silence_at:
                self._answered(bytes(asking.reply), now)
            elif now >= asking.until:
                self._asking = None
                self.phase = Phase.IDLE
                self._idle_after(asking.req_end)
                self._advance(now)
        elif self._silence_at is not None and now >= self._silence_at:
            frame = bytes(self._buf)  # silence: whatever came is one (bad) frame
            self._buf.clear()
            self._silence_at = None
            self._bad_frame(frame)
            self._advance(now)

    def poke(self, now: float) -> None:
        """The loop was woken (garbage may be waiting)."""
        if self.phase is Phase.IDLE and not self._buf:
            self._send_garbage(now)
            if self.phase is Phase.IDLE:
                self._advance(now)

    # ------------------------------------------------------------------ one transaction

    def _advance(self, now: float) -> None:
        """Serve the requests in the buffer for as long as the line stays idle."""
        while self.phase is Phase.IDLE:
            if not self._buf:
                self._silence_at = None
                self._send_garbage(now)
                return
            need = request_length(self._buf)
            if need and len(self._buf) >= need:
                frame = bytes(self._buf[:need])
                if crc_ok(frame):
                    del self._buf[:need]
                    self._silence_at = None
                    self._handle(frame, now)
                    if self._buf:
                        self._arrival = now  # the rest waited for this transaction
                    continue
            # not a whole frame (or not one we can size): more bytes, or the silence that ends it
            self._silence_at = self._last_byte + self._silence
            return

    def _handle(self, frame: bytes, now: float) -> None:
        unit = frame[0]
        with self._lock:
            self._stats.requests += 1
        hook = self._on_request
        if hook is not None:
            hook(unit, frame)
        if unit == r.BROADCAST_UNIT:
            self._broadcast(frame)
            return
        console = self._consoles.get(unit)
        start = max(self._arrival, self.bus_free_at)
        req_end = start + len(frame) * self._char
        if console is None:
            self._count(no_device=1)
            self._idle_after(req_end)
            return
        faults = self.faults(unit)
        if not console.powered:
            self._count(powered_off=1)
            self._idle_after(req_end)
            return
        if faults.dead:
            self._count(dead=1)
            self._idle_after(req_end)
            return
        if faults.miss_rate and self._rng.random() < faults.miss_rate:
            self._count(miss=1)  # noise on its stretch of cable: the console never saw the request
            self._idle_after(req_end)
            return
        if self.server_fd is None:
            self._reply(frame, faults, req_end, answer(console, frame), now)  # type: ignore[arg-type]
            return
        self._drain(self.server_fd)  # a late reply to an earlier request must not pass as this one's
        self._write(self.server_fd, frame)
        self._asking = _Asking(frame, faults, req_end, now + SERVER_TIMEOUT_S)
        self.phase = Phase.ASKING

    def _server_reply(self, now: float) -> None:
        asking = self._asking
        assert asking is not None
        need = response_length(asking.reply)
        if need is None:
            asking.silence_at = now + SERVER_SILENCE_S  # a function we cannot size: wait for the silence
        elif need and len(asking.reply) >= need:
            self._answered(bytes(asking.reply[:need]), now)

    def _answered(self, reply: bytes, now: float) -> None:
        asking = self._asking
        assert asking is not None
        self._asking = None
        self.phase = Phase.IDLE
        self._reply(asking.frame, asking.faults, asking.req_end, reply, now)
        if self.phase is Phase.IDLE:
            self._advance(now)

    def _reply(self, frame: bytes, faults: Faults, req_end: float, reply: bytes, now: float) -> None:
        """Apply the faults to a console's reply and queue it for its wire time."""
        rng = self._rng
        unit = frame[0]
        if faults.drop_rate and rng.random() < faults.drop_rate:
            self._count(drop=1)
            self._idle_after(req_end)
            return
        if faults.wrong_unit_rate and rng.random() < faults.wrong_unit_rate:
            self._count(wrong_unit=1)
            reply = with_crc(bytes((unit % 247 + 1,)) + reply[1:-2])
        if faults.exception_rate and rng.random() < faults.exception_rate:
            self._count(exception=1)
            reply = with_crc(bytes((reply[0], frame[1] | 0x80, 0x04)))
        if faults.truncate_rate and rng.random() < faults.truncate_rate:
            self._count(truncate=1)
            reply = reply[: rng.randrange(1, len(reply))]
        if faults.crc_rate and rng.random() < faults.crc_rate:
            self._count(crc=1)
            i = rng.randrange(len(reply))
            reply = reply[:i] + bytes((reply[i] ^ (1 << rng.randrange(8)),)) + reply[i + 1 :]
        noise = b""
        if faults.noise_rate and rng.random() < faults.noise_rate:
            self._count(noise=1)
            noise = bytes(rng.randrange(256) for _ in range(rng.randint(*NOISE_BYTES)))
        slow = faults.slow_ms / 1000.0
        if slow:
            self._count(slow=1)
        if self.wire_time:
            reply_start = req_end + self._t35 + self.turnaround_s + slow
            if noise:
                noise_end = req_end + len(noise) * self._char
                self._outbox.append(_Output(noise_end, noise, "noise"))
                reply_start = max(reply_start, noise_end + self._t35)
            deliver_at = reply_start + len(reply) * self._char
            self._outbox.append(_Output(deliver_at, reply, "reply", timed=True))
            self.bus_free_at = deliver_at + self._t35
        else:
            due = now
            if noise:
                self._outbox.append(_Output(due, noise, "noise"))
                due += self._t35
            self._outbox.append(_Output(due + slow, reply, "reply"))
        self.phase = Phase.DELIVERING
        self._flush(now)

    def _flush(self, now: float) -> None:
        """Write every queued output that is due; the line is idle again when none is left."""
        outbox = self._outbox
        while outbox and outbox[0].due <= now:
            out = outbox.popleft()
            # counted (and the lateness taken) as the write starts: whoever has read the bytes sees them counted
            if out.kind == "reply":
                with self._lock:
                    stats = self._stats
                    stats.replies += 1
                    if out.timed:
                        late_ms = (self._clock() - out.due) * 1000.0
                        stats.timed_replies += 1
                        stats.late_ms_total += late_ms
                        stats.late_ms_max = max(stats.late_ms_max, late_ms)
            elif out.kind == "garbage":
                self._count(garbage=1)
            self._write(self.controller_fd, out.data)
        if not outbox and self.phase is Phase.DELIVERING:
            self.phase = Phase.IDLE
            if self._buf:
                self._arrival = now  # the next request waited for this reply to go out

    def _idle_after(self, req_end: float) -> None:
        if self.wire_time:
            self.bus_free_at = req_end + self._t35

    def _bad_frame(self, frame: bytes) -> None:
        self._count(bad_frames=1)
        for console in self._consoles.values():
            if len(frame) < 4:
                console.count_frame_error()
            else:
                console.count_crc_error()

    def _broadcast(self, frame: bytes) -> None:
        self._count(broadcasts=1)
        fc = frame[1]
        values: list[int] = []
        if fc == 6:
            address = int.from_bytes(frame[2:4], "big")
            values = [int.from_bytes(frame[4:6], "big")]
        elif fc == 16:
            address = int.from_bytes(frame[2:4], "big")
            count = int.from_bytes(frame[4:6], "big")
            data = frame[7:-2]
            if len(data) == 2 * count:
                values = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        for console in self._consoles.values():
            if values and console.powered and not self.faults(console.unit).dead:
                miss = self.faults(console.unit).miss_rate
                if miss and self._rng.random() < miss:
                    self._count(miss=1)
                    continue
                console.write_registers(address, values, broadcast=True)
        if self.wire_time:
            start = max(self._arrival, self.bus_free_at)
            self.bus_free_at = start + len(frame) * self._char + r.BROADCAST_TURNAROUND_S

    def _send_garbage(self, now: float) -> None:
        if not self._garbage:  # read without the lock: a list swapped whole, and poke() runs again
            return
        with self._lock:
            blobs, self._garbage = self._garbage, []
        for blob in blobs:
            due = now
            if self.wire_time:
                start = max(now, self.bus_free_at)
                due = start + len(blob) * self._char
                self.bus_free_at = due + self._t35
            self._outbox.append(_Output(due, blob, "garbage"))
        self.phase = Phase.DELIVERING
        self._flush(now)

    # ------------------------------------------------------------------ fd helpers

    @staticmethod
    def _read(fd: int) -> bytes:
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:  # nobody has the slave end open (cannot happen: we hold one)
                return b""
            raise

    def _drain(self, fd: int) -> None:
        while self._read(fd):
            pass

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        """Write without blocking the loop: what the pty cannot take (nobody reads it) is dropped."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EIO:
                    return
                raise
            view = view[n:]


def close_quietly(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)

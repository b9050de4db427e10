"""The virtual RS-485 line: bytes between the controller's pty and the pymodbus server's pty.

How it works
------------
A line has two pty pairs.  The controller opens the slave end of the first (the path in
``Simulator.lines``); the pymodbus ``ModbusSerialServer`` opens the slave end of the second.  The
:class:`Wire` thread holds both master ends and is the cable in between, with the consoles' timing:

1. It waits (``select.poll``, float timeouts) for a request from the controller and frames it the way
   a slave does: the length follows from the function code (01…06: 8 bytes; 15/16: 9 + byte count;
   an exception or anything else: the bytes up to a 3.5-character silence).  A frame with a bad CRC
   is counted in every console's ERR_CRC (every console on a bus hears every frame), a frame shorter
   than 4 bytes in ERR_FRAME; neither gets a reply.
2. A broadcast (unit 0) is applied by the wire to every console model of the line directly
   (``write_registers(..., broadcast=True)``: MODE and TEXT), with no reply, except to a console whose
   ``miss_rate`` draw says it did not hear it; the bus then stays busy for the datasheet's broadcast
   turnaround (4 ms) when wire time is emulated.
3. A request for a unit that is not on the line, or for a console that is powered off or has the
   ``dead`` fault, or that misses the request (``miss_rate``: it never heard it, so it neither acts
   nor answers), gets no reply (on RS-485 nobody answers).  Anything else is forwarded at once to the
   pymodbus server; the wire reads the reply (length from the function code again) and applies the
   faults: ``drop_rate`` (the reply vanishes — the console did act on the request), ``crc_rate`` (one
   byte of the reply is flipped), ``noise_rate`` (a burst of random bytes reaches the controller
   before the reply, then a 3.5-character silence), ``slow_ms`` (extra turnaround),
   ``wrong_unit_rate`` (the reply names another unit), ``exception_rate`` (exception 04 instead of the
   reply) and ``truncate_rate`` (the reply stops short).
4. Delivery.  Without wire emulation the reply is written to the controller immediately (plus
   ``slow_ms``).  With ``wire_time=True`` the wire keeps a clock of the bus::

       start       = max(arrival of the request's first byte, bus_free_at)
       req_end     = start + request_bytes * 11 / baud
       reply_start = req_end + t3.5 + turnaround (+ slow_ms)
       delivered   = reply_start + reply_bytes * 11 / baud      (the whole reply is written then)
       bus_free_at = delivered + t3.5

   with t3.5 = 3.5 * 11 / baud below 19200 baud and 1.75 ms above (Modbus over Serial Line v1.02).
   Sleeping is ``time.sleep`` to ~0.1 ms before the target, then a ``sleep(0)`` spin on
   ``time.perf_counter`` (not asyncio: its timers round up to whole milliseconds).
5. ``garbage`` is a one-shot: the given bytes (or N random bytes) are written toward the controller as
   soon as the bus is idle.  :meth:`Wire.set_faults` may be called from any thread at any time; a
   self-pipe wakes the wire thread.

All randomness comes from one seeded :class:`random.Random`, so a run with the same seed and the
same traffic injects the same faults.  :meth:`Wire.stats` counts requests, replies and faults by kind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from pymodbus.constants import ExcCodes

from hardware_sim.faults import FAULT_KINDS, FAULT_NAMES, Faults, checked
from hardware_sim.frames import char_time, crc16, crc_ok, request_length, response_length, t35
from terminals import registers as r

#: How long the wire waits for the pymodbus server to answer before giving up (it answers in < 1 ms).
SERVER_TIMEOUT_S = 0.5
#: Random bytes in a noise burst, inclusive range.
NOISE_BYTES = (3, 12)
_SPIN_S = 0.0001


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
    faults: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 0))


class Wire(threading.Thread):
    """One virtual RS-485 line (see the module docstring).  Start with :meth:`start`, end with :meth:`stop`."""

    def __init__(
        self,
        line_id: str,
        controller_fd: int,
        server_fd: int,
        baud: int,
        consoles: Mapping[int, Device],
        *,
        wire_time: bool = False,
        turnaround_s: float = 0.0003,
        seed: int = 1,
        on_request: Callable[[int, bytes], None] | None = None,
    ) -> None:
        super().__init__(name=f"sim-wire-{line_id}", daemon=True)
        self.line_id = line_id
        self.baud = baud
        self.wire_time = wire_time
        self.turnaround_s = turnaround_s
        self._ctrl = controller_fd
        self._srv = server_fd
        self._consoles = dict(consoles)
        self._rng = random.Random(seed)
        self._char = char_time(baud)
        self._t35 = t35(baud)
        self._silence = max(self._t35, 0.001)  # a pty has no timing of its own: at least 1 ms
        self._lock = threading.Lock()
        self._line_faults = Faults()
        self._unit_faults: dict[int, dict[str, bool | float]] = {}
        self._garbage: list[bytes] = []
        self._stats = WireStats()
        self._stop_event = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        for fd in (self._ctrl, self._srv):
            os.set_blocking(fd, False)
        self._pollers: dict[tuple[int, int], select.poll] = {}
        self._buf = bytearray()
        self._arrival = 0.0
        self.bus_free_at = 0.0
        self._on_request = on_request

    # ------------------------------------------------------------------ control (any thread)

    def set_request_hook(self, hook: Callable[[int, bytes], None] | None) -> None:
        """Call ``hook(unit, frame)`` on the wire thread for every good request, before it is served."""
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

    def faults(self, unit: int | None = None) -> Faults:
        """The faults in effect for a unit (or the line's own)."""
        with self._lock:
            if unit is None:
                return self._line_faults
            return replace(self._line_faults, **self._unit_faults.get(unit, {}))  # type: ignore[arg-type]

    def stats(self) -> dict[str, object]:
        with self._lock:
            out = asdict(self._stats)
        out["faults"] = dict(out["faults"])
        return out

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        self._wake()
        if self.is_alive():
            self.join(timeout)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

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

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _count(self, **kinds: int) -> None:
        with self._lock:
            for name, n in kinds.items():
                if name in self._stats.faults:
                    self._stats.faults[name] += n
                else:
                    setattr(self._stats, name, getattr(self._stats, name) + n)

    # ------------------------------------------------------------------ the thread

    def run(self) -> None:
        poller = select.poll()
        poller.register(self._ctrl, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while not self._stop_event.is_set():
            if not self._buf:
                events = poller.poll(200)  # ms; the wake pipe interrupts it
                for fd, _ in events:
                    if fd == self._wake_r:
                        self._drain(self._wake_r)
                    elif fd == self._ctrl:
                        self._arrival = time.perf_counter()
                        self._buf += self._read(self._ctrl)
                self._send_garbage()
                if not self._buf:
                    continue
            frame = self._take_request()
            if frame is None or self._stop_event.is_set():
                continue
            try:
                self._handle(frame)
            except OSError as exc:  # a pty went away under us: stop quietly when we are stopping
                if self._stop_event.is_set():
                    return
                if exc.errno not in (errno.EIO, errno.EAGAIN):
                    raise
            if self._buf:
                self._arrival = time.perf_counter()

    def _send_garbage(self) -> None:
        with self._lock:
            blobs, self._garbage = self._garbage, []
        for blob in blobs:
            if self.wire_time:
                now = max(time.perf_counter(), self.bus_free_at)
                self.bus_free_at = now + len(blob) * self._char + self._t35
                self._sleep_until(now + len(blob) * self._char)
            self._write(self._ctrl, blob)
            self._count(garbage=1)

    def _take_request(self) -> bytes | None:
        """Cut one request frame off the front of the buffer, reading more as needed."""
        while True:
            need = request_length(self._buf)
            if need is not None and need > 0 and len(self._buf) >= need:
                frame = bytes(self._buf[:need])
                if crc_ok(frame):
                    del self._buf[:need]
                    return frame
                need = None  # not a frame we can size: take it all, up to the silence
            more = self._read_chunk(self._ctrl, self._silence)
            if more:
                self._buf += more
                continue
            if need is None or need == 0 or len(self._buf) < need:
                frame = bytes(self._buf)  # silence: whatever came is one (bad) frame
                self._buf.clear()
                self._bad_frame(frame)
                return None

    def _bad_frame(self, frame: bytes) -> None:
        self._count(bad_frames=1)
        for console in self._consoles.values():
            if len(frame) < 4:
                console.count_frame_error()
            else:
                console.count_crc_error()

    def _handle(self, frame: bytes) -> None:
        unit = frame[0]
        self._count(requests=1)
        if self._on_request is not None:
            self._on_request(unit, frame)
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
        reply = self._ask_server(frame)
        if reply is None:
            self._idle_after(req_end)
            return
        rng = self._rng
        if faults.drop_rate and rng.random() < faults.drop_rate:
            self._count(drop=1)
            self._idle_after(req_end)
            return
        if faults.wrong_unit_rate and rng.random() < faults.wrong_unit_rate:
            self._count(wrong_unit=1)
            other = unit % 247 + 1
            reply = bytes((other,)) + reply[1:-2] + crc16(bytes((other,)) + reply[1:-2])
        if faults.exception_rate and rng.random() < faults.exception_rate:
            self._count(exception=1)
            body = bytes((reply[0], frame[1] | 0x80, 0x04))
            reply = body + crc16(body)
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
        reply_start = req_end + self._t35 + self.turnaround_s + slow
        if self.wire_time:
            if noise:
                noise_end = req_end + len(noise) * self._char
                self._sleep_until(noise_end)
                self._write(self._ctrl, noise)
                reply_start = max(reply_start, noise_end + self._t35)
            deliver_at = reply_start + len(reply) * self._char
            self._sleep_until(deliver_at)
            self._write(self._ctrl, reply)
            late_ms = (time.perf_counter() - deliver_at) * 1000.0
            with self._lock:
                self._stats.timed_replies += 1
                self._stats.late_ms_total += late_ms
            self.bus_free_at = deliver_at + self._t35
        else:
            if noise:
                self._write(self._ctrl, noise)
                self._sleep_until(time.perf_counter() + self._t35)
            if slow:
                self._sleep_until(time.perf_counter() + slow)
            self._write(self._ctrl, reply)
        self._count(replies=1)

    def _idle_after(self, req_end: float) -> None:
        if self.wire_time:
            self.bus_free_at = req_end + self._t35

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

    def _ask_server(self, frame: bytes) -> bytes | None:
        """Forward one request to the pymodbus server and read its whole reply (None: no answer)."""
        self._drain(self._srv)  # a late reply to an earlier request must not pass as this one's
        self._write(self._srv, frame)
        deadline = time.perf_counter() + SERVER_TIMEOUT_S
        buf = bytearray()
        poller = self._poller(self._srv, select.POLLIN)
        while True:
            need = response_length(buf)
            if need and len(buf) >= need:
                return bytes(buf[:need])
            if need is None:
                buf += self._read_until_silence(self._srv, 0.005)
                return bytes(buf) if buf else None
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._stop_event.is_set():
                return None
            if poller.poll(remaining * 1000.0):
                buf += self._read(self._srv)

    # ------------------------------------------------------------------ fd helpers

    def _read_chunk(self, fd: int, silence: float) -> bytes:
        """The next bytes on ``fd``, or b"" when none came within ``silence`` seconds."""
        poller = self._poller(fd, select.POLLIN)
        return self._read(fd) if poller.poll(silence * 1000.0) else b""

    def _read_until_silence(self, fd: int, silence: float) -> bytes:
        """Bytes arriving on ``fd`` until none came for ``silence`` seconds."""
        out = bytearray()
        poller = self._poller(fd, select.POLLIN)
        while not self._stop_event.is_set() and poller.poll(silence * 1000.0):
            chunk = self._read(fd)
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def _poller(self, fd: int, mask: int) -> select.poll:
        """One poll object per (fd, event mask), made once: this runs for every frame."""
        poller = self._pollers.get((fd, mask))
        if poller is None:
            poller = self._pollers[(fd, mask)] = select.poll()
            poller.register(fd, mask)
        return poller

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

    def _write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        deadline = time.perf_counter() + 1.0
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.perf_counter() > deadline:  # nobody reads the controller side: drop it
                    return
                self._poller(fd, select.POLLOUT).poll(10)

    @staticmethod
    def _sleep_until(target: float) -> None:
        while True:
            remaining = target - time.perf_counter()
            if remaining <= 0:
                return
            time.sleep(remaining - _SPIN_S if remaining > 2 * _SPIN_S else 0)

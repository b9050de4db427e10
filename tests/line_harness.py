"""A line without a port, a thread or a clock: the real ``LineMachine`` driven with time passed in.

``FakeConsole`` and ``FakeModule`` answer Modbus RTU frames the way the register map says (a native
console's status, event FIFO with ACK, card and outputs; a generic module's inputs and coils), only as
much as the protocol tests need.  ``Driver`` plays the I/O loop: it steps the machine at a fake time,
hands each frame to the unit it is for, feeds the reply back after its wire time (request and reply
bytes at 11 bits each, plus t3.5 of turnaround), jumps the time to the machine's next deadline when
nothing is on the wire, and plays the engine: every input the machine queues gets a Future, settled at
once as journaled (or left to the test: ``manual``), and key events go through the real
``terminals.ioloop.acknowledge``, so ACKs and retakes come back as they do in the daemon.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from chamber.core import events as ev
from chamber.engine import Outcome
from terminals import rtu
from terminals.ioloop import acknowledge, reread_unless_journaled
from terminals.machine import LineMachine
from terminals.registers import (
    HR_ACK,
    HR_ACK_BOOT,
    HR_LEDS,
    HR_MIC,
    HR_MODE,
    HR_TEXT,
    IR_CARD_LEN,
    IR_FIFO,
    Status,
)
from terminals.state import AckGroup


class FakeConsole:
    """A native console: IR 0..3, the FIFO, the card; HR ACK, outputs, MODE (clears RESTARTED), text."""

    def __init__(self, unit: int, *, boot: int = 0, card_seq: int = 0, status: int = 0) -> None:
        self.unit = unit
        self.boot = boot
        self.card_seq = card_seq
        self.status = status
        self.head = 0  # sequence number of the oldest pending event
        self.fifo: list[int] = []  # key codes, oldest first
        self.card: bytes = b""
        self.hr: dict[int, int] = {}
        self.dead = False
        self.misses_broadcasts = False  # noise on its stretch of cable: unit 0 frames do not reach it

    def press(self, key: int) -> None:
        self.fifo.append(int(key))

    def power_cycle(self) -> None:
        """Forgets its FIFO, outputs and numbering; a new boot."""
        self.boot = (self.boot + 1) & 0xFF
        self.head, self.fifo, self.hr = 0, [], {}
        self.status |= Status.RESTARTED

    def input_registers(self) -> dict[int, int]:
        regs = {
            0: self.status | (self.hr.get(HR_MODE, 0) & 0b111) << 12,
            1: self.head,
            2: len(self.fifo) << 8 | (self.fifo[0] if self.fifo else 0),
            3: self.boot << 8 | self.card_seq,
            IR_CARD_LEN: len(self.card),
        }
        for i, code in enumerate(self.fifo):
            regs[IR_FIFO + i] = code
        padded = self.card + bytes(-len(self.card) % 2)
        for i in range(0, len(padded), 2):
            regs[IR_CARD_LEN + 1 + i // 2] = padded[i] << 8 | padded[i + 1]
        return regs

    def write(self, address: int, values: list[int], *, addressed: bool) -> None:
        ack_boot = values[HR_ACK_BOOT - address] if address <= HR_ACK_BOOT < address + len(values) else None
        for i, value in enumerate(values):
            register = address + i
            if register == HR_ACK_BOOT:
                continue
            if register == HR_ACK:
                if ack_boot is not None and ack_boot != self.boot:
                    continue  # an ACK for another boot's numbering: ignored (register map section 4)
                n = (value - self.head + 1) & 0xFFFF
                if 0 < n <= len(self.fifo):  # outside the pending window: ignored
                    del self.fifo[:n]
                    self.head = (self.head + n) & 0xFFFF
                continue
            if register == HR_MODE:
                self.hr[HR_LEDS] = self.hr.get(HR_LEDS, 0) & ~0b111  # a new mode starts dark
                if addressed:
                    self.status &= ~Status.RESTARTED
            self.hr[register] = value

    def answer(self, frame: bytes) -> bytes | None:
        function = frame[1]
        address, count = struct.unpack_from(">HH", frame, 2)
        if function in (3, 4):
            regs = self.input_registers() if function == 4 else self.hr
            values = [regs.get(address + i, 0) for i in range(count)]
            return rtu.with_crc(bytes([self.unit, function, 2 * count]) + struct.pack(f">{count}H", *values))
        if function == 6:
            self.write(address, [count], addressed=frame[0] != 0)
            return frame
        if function == 16:
            values = list(struct.unpack_from(f">{count}H", frame, 7))
            self.write(address, values, addressed=frame[0] != 0)
            return rtu.with_crc(frame[:6])
        return rtu.with_crc(bytes([self.unit, function | 0x80, 1]))  # illegal function

    @property
    def text(self) -> bytes:
        return b"".join(self.hr.get(HR_TEXT + i, 0).to_bytes(2, "big") for i in range(16)).rstrip(b"\0")

    @property
    def outputs(self) -> tuple[int, int, int, int]:
        return (self.hr.get(HR_LEDS, 0), self.hr.get(HR_LEDS + 1, 0), self.hr.get(HR_MIC, 0), self.hr.get(HR_MODE, 0))


class FakeModule:
    """A generic DI/DO module: discrete inputs (function 02) and coils (01, 15)."""

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.inputs = 0
        self.coils = 0
        self.dead = False

    def answer(self, frame: bytes) -> bytes | None:
        function = frame[1]
        address, count = struct.unpack_from(">HH", frame, 2)
        if function in (1, 2):
            bits = (self.coils if function == 1 else self.inputs) >> address & ((1 << count) - 1)
            nbytes = (count + 7) // 8
            return rtu.with_crc(bytes([self.unit, function, nbytes]) + bits.to_bytes(nbytes, "little"))
        if function == 15:
            nbytes = frame[6]
            bits = int.from_bytes(frame[7 : 7 + nbytes], "little") & ((1 << count) - 1)
            self.coils = (self.coils & ~(((1 << count) - 1) << address)) | bits << address
            return rtu.with_crc(frame[:6])
        return rtu.with_crc(bytes([self.unit, function | 0x80, 1]))


Device = FakeConsole | FakeModule


class Driver:
    """The I/O loop and the engine, played deterministically around one ``LineMachine``."""

    def __init__(
        self,
        machine: LineMachine,
        devices: list[Device] | None = None,
        *,
        manual: bool = False,
        open_at: float | None = None,
    ) -> None:
        self.m = machine
        self.devices = {d.unit: d for d in devices or []}
        self.now = machine.now
        self.manual = manual  # leave the Futures of key events to the test
        self.events: list[ev.Input] = []
        self.pending: list[tuple[ev.Input, Future[Any]]] = []
        self.sent: list[tuple[float, bytes]] = []  # (when, frame)
        self.replies: list[tuple[float, bytes]] = []  # (when complete, reply)
        self.steps = 0
        self.noise: Callable[[bytes], bytes] | None = None  # spoils a reply (CRC errors, ...) when set
        #: the engine's verdict on an input: journaled as record 1 unless a test says otherwise
        self.journal: Callable[[ev.Input], Outcome] = lambda event: Outcome(event, (), 1)
        machine.opened(self.now if open_at is None else open_at, "fake")

    def frames_to(self, unit: int, function: int | None = None) -> list[bytes]:
        return [f for _, f in self.sent if f[0] == unit and (function is None or f[1] == function)]

    def writes_of(self, unit: int, register: int) -> list[int]:
        """Every value written to ``register`` of ``unit`` (by function 06 or 16), in order."""
        out = []
        for frame in self.frames_to(unit):
            address, count = struct.unpack_from(">HH", frame, 2)
            if frame[1] == 6 and address == register:
                out.append(count)
            elif frame[1] == 16 and address <= register < address + count:
                out.append(struct.unpack_from(">H", frame, 7 + 2 * (register - address))[0])
        return out

    def run(self, seconds: float, max_steps: int = 100_000) -> None:
        """Drive the machine for ``seconds`` of fake time (a machine that asks to be stepped more than
        ``max_steps`` times in that span is spinning: an error)."""
        end = self.now + seconds
        m = self.m
        limit = self.steps + max_steps
        while True:
            frame = m.step(self.now)
            self.steps += 1
            assert self.steps < limit, f"the machine spins: {max_steps} steps by {self.now:.6f} s"
            self._flush()
            if frame is not None:
                self.sent.append((self.now, frame))
                self._wire(frame)
                continue
            if m.deadline > end:
                self.now = end
                return
            self.now = max(self.now, m.deadline)

    def _wire(self, frame: bytes) -> None:
        if frame[0] == 0:  # a broadcast: every native console hears it, nobody answers
            for device in self.devices.values():
                if isinstance(device, FakeConsole) and not device.dead and not device.misses_broadcasts:
                    device.answer(frame)
            return
        device = self.devices.get(frame[0])
        if device is None or device.dead:
            return
        reply = device.answer(frame)
        if reply is None:
            return
        if self.noise is not None:
            reply = self.noise(reply)
        self.now += (len(frame) + len(reply)) * self.m.char_s + self.m.t35
        self.replies.append((self.now, reply))
        self.m.feed(reply, self.now)

    def _flush(self) -> None:
        m = self.m
        if not m.outbox:
            return
        outbox, m.outbox = m.outbox, []
        for event, group in outbox:
            self.events.append(event)
            fut: Future[Any] = Future()
            if isinstance(group, AckGroup) and self.manual:
                self.pending.append((event, fut))
            else:
                try:
                    outcome = self.journal(event)
                except Exception as exc:  # the store failed (chamber.engine.EngineError): not journaled
                    fut.set_exception(exc)
                else:
                    fut.set_result(outcome)
            if isinstance(group, AckGroup):
                group.futures.append(fut)
                if len(group.futures) == group.size:
                    acknowledge(group, self._post)
            elif group is not None:
                reread_unless_journaled(fut, group, self._post)

    def _post(self, kind: str, item: tuple[Any, ...]) -> None:
        if kind == "ack":
            self.m.ack(*item)
        elif kind == "reread":
            self.m.reread(*item)
        else:
            self.m.retake(*item)

    def presses(self) -> list[ev.KeyPressed]:
        return [e for e in self.events if isinstance(e, ev.KeyPressed)]

"""Fuzzing the line's reply handling: the real ``LineMachine`` against consoles and a wire that misbehave.

``tests/line_harness.Driver`` drives the machine with time passed in.  Hypothesis draws the line
(1 to 4 seats, native consoles and generic DI/DO modules, baud, timeout, retries) and a seed; a
``random.Random`` of that seed then decides, frame by frame, what comes back:

* the console's true reply; silence; random bytes; the reply cut short; the reply with bits flipped;
  the reply from another unit; an exception reply; (``liars`` only) a valid frame with random
  registers or bits: random key codes, random BOOT and event numbers, random status flags;

while the consoles live their own life: keys pressed (valid codes and unknown ones), power cycles
(a new BOOT, numbering from a random head, near the 16-bit wrap too), cards in and out, presence
held and let go; and the engine posts modes, choices and texts and answers for the presses it holds
late, some slices later (``STORE_FAILS``: and sometimes fails to journal one, so that the machine
must read it again).  After the faulty stretch the wire is clean for a while.

Invariants, checked on every run:

* no exception escapes the machine, and it always has a finite next deadline (it never hangs) and
  never spins (the harness fails a machine stepped without time passing);
* a seat is reported offline only after its last ``retries + 1`` polls failed, and online only
  right after a valid reply;
* with honest consoles: no press is reported again under the same (seat, boot, seq) once it was
  journaled; every event a console dropped from its FIFO on an ACK had been reported and journaled
  (an ACK never frees a press the engine does not hold); and once the wire is clean every press
  made since the last power cycle is in the journal and every FIFO is empty.
"""

from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass, field
from typing import Any

from fuzz_budget import budget
from hypothesis import given
from hypothesis import strategies as st
from line_harness import Driver, FakeConsole, FakeModule

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Outcome
from terminals import generic, rtu
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.registers import HR_ACK, Status

VALID_CODES = [int(k) for k in Key]
UNKNOWN_CODES = [0, 8, 9, 10, 22, 99, 255]
KEY_CODES = VALID_CODES + UNKNOWN_CODES
#: how often the engine fails to journal a press during the faulty stretch (then the machine reads it
#: again).  It was 0 until a99382f fixed test_an_ack_of_a_later_press_frees_an_earlier_one_the_store_failed.
STORE_FAILS = 0.1
#: do honest consoles report unknown key codes too?  (False until a99382f fixed
#: test_an_unknown_key_code_acknowledges_a_press_the_engine_still_holds.)
HONEST_UNKNOWN_CODES = True
FAULTS = ["silence", "garbage", "short", "flip", "other_unit", "exception", "lie"]


class FuzzConsole(FakeConsole):
    """A ``FakeConsole`` that remembers which events an ACK freed, and each event it numbered."""

    def __init__(self, unit: int, boot: int, head: int) -> None:
        super().__init__(unit, boot=boot, status=Status.RESTARTED)
        self.head = head
        #: (boot, seq, code, journaled then?) of each event an ACK dropped from the FIFO
        self.freed: list[tuple[int, int, int, bool]] = []
        self.journaled: set[tuple[int, int | None, int | None]] = set()  # the engine's journal, shared
        self.lost: list[tuple[int, int, int]] = []  # pending when the power went: gone with it

    def pending(self) -> list[tuple[int, int, int]]:
        return [(self.boot, (self.head + i) & 0xFFFF, code) for i, code in enumerate(self.fifo)]

    def write(self, address: int, values: list[int], *, addressed: bool) -> None:
        before = self.pending()
        super().write(address, values, addressed=addressed)
        gone = len(before) - len(self.fifo)  # what the write (an ACK, if the console took it) freed
        self.freed += [(b, q, c, (self.unit, b, q) in self.journaled) for b, q, c in before[:gone]]

    def power_cycle_to(self, head: int) -> None:
        self.lost += self.pending()
        self.power_cycle()
        self.head = head


@dataclass
class Wire:
    """Decides each reply: honest, or spoilt by a fault."""

    rng: random.Random
    fault_rate: float
    liars: bool
    clean: bool = False
    #: per unit: (poll attempt ok?) for every poll frame it was sent, in order
    polls: dict[int, list[bool]] = field(default_factory=dict)

    def spoil(self, frame: bytes, reply: bytes | None) -> bytes | None:
        rng = self.rng
        if self.clean or rng.random() >= self.fault_rate:
            return reply
        fault = rng.choice(FAULTS if self.liars else FAULTS[:-1])
        if fault == "silence" or reply is None:
            return None
        if fault == "garbage":
            return rng.randbytes(rng.randint(1, 40))
        if fault == "short":
            return reply[: rng.randint(1, len(reply) - 1)]
        if fault == "flip":
            spoilt = bytearray(reply)
            for _ in range(rng.randint(1, 3)):
                bit = rng.randrange(8 * len(spoilt))
                spoilt[bit // 8] ^= 1 << (bit % 8)
            return bytes(spoilt)
        if fault == "other_unit":
            return rtu.with_crc(bytes([(frame[0] % 247) + 1]) + reply[1:-2])
        if fault == "exception":
            return rtu.with_crc(bytes([frame[0], frame[1] | 0x80, rng.randint(0, 255)]))
        # a lie with a valid CRC: the frame the request asks for, with random contents
        if frame[1] in (3, 4):
            count = struct.unpack_from(">H", frame, 4)[0]
            regs = [rng.choice([0, rng.randrange(0x10000), rng.randrange(0x100) << 8 | rng.choice(KEY_CODES)])]
            regs += [rng.randrange(0x10000) for _ in range(count - 1)]
            return rtu.with_crc(bytes([frame[0], frame[1], 2 * count]) + struct.pack(f">{count}H", *regs))
        if frame[1] in (1, 2):
            count = struct.unpack_from(">H", frame, 4)[0]
            return rtu.with_crc(bytes([frame[0], frame[1], (count + 7) // 8]) + rng.randbytes((count + 7) // 8))
        return reply


class FuzzDevice:
    """A console or module as the harness sees it: answers through the ``Wire``, records poll outcomes."""

    def __init__(self, inner: FuzzConsole | FakeModule, link: ConsoleLink, wire: Wire) -> None:
        self.inner = inner
        self.unit = inner.unit
        self.link = link
        self.wire = wire
        self.dead = False

    def answer(self, frame: bytes) -> bytes | None:
        reply = self.wire.spoil(frame, self.inner.answer(frame))
        if frame == self.link.poll:
            ok = True
            try:
                (rtu.parse_bits if self.link.generic else rtu.parse_registers)(frame, reply or b"")
            except rtu.FrameError:
                ok = False
            self.wire.polls.setdefault(self.unit, []).append(ok)
        return reply


@dataclass(frozen=True)
class Retake:
    """Marks, among the submitted events, where the machine acted on the engine's failure to journal
    presses of the seat: it reads every pending event again, so the journaled ones among them come
    back (the core refuses them as repeats), by design."""

    seat: int
    boot: int | None


@dataclass(frozen=True)
class LineSpec:
    profiles: tuple[str, ...]  # per seat: "native" or "generic"
    baud: int
    timeout_s: float
    retries: int
    fault_rate: float
    seed: int
    boots: tuple[int, ...]
    heads: tuple[int, ...]


LINES = st.builds(
    LineSpec,
    profiles=st.lists(st.sampled_from(["native", "native", "generic"]), min_size=1, max_size=4).map(tuple),
    baud=st.sampled_from([9600, 19200, 115200]),
    timeout_s=st.sampled_from([0.005, 0.02, 0.05]),
    retries=st.integers(0, 3),
    fault_rate=st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]),
    seed=st.integers(0, 2**32 - 1),
    boots=st.lists(st.integers(0, 255), min_size=4, max_size=4).map(tuple),
    heads=st.lists(st.sampled_from([0, 1, 0x7FFF, 0xFFF0, 0xFFFF]), min_size=4, max_size=4).map(tuple),
)


class Run:
    """One fuzzed line: the machine, the driver, the consoles, and what the checks need to know."""

    def __init__(self, spec: LineSpec, liars: bool) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.wire = Wire(random.Random(spec.seed + 1), spec.fault_rate, liars)
        self.links: list[ConsoleLink] = []
        self.devices: list[FuzzDevice] = []
        self.journaled: set[tuple[int, int | None, int | None]] = set()
        for i, profile in enumerate(spec.profiles):
            seat = unit = i + 1
            if profile == "generic":
                link: ConsoleLink = generic.GenericLink(seat, unit, card_uid=f"{seat:08X}")
                inner: FuzzConsole | FakeModule = FakeModule(unit)
            else:
                link = ConsoleLink(seat, unit)
                inner = FuzzConsole(unit, spec.boots[i], spec.heads[i])
                inner.journaled = self.journaled  # seat = unit here
            self.links.append(link)
            self.devices.append(FuzzDevice(inner, link, self.wire))
        self.machine = LineMachine(
            "F", self.links, baud=spec.baud, timeout_s=spec.timeout_s, retries=spec.retries, now=0.0
        )
        self.events: list[tuple[ev.Input | Retake, list[bool]]] = []  # each event with the unit's polls so far
        self.journal_fails = 0.0
        self._watch_submissions()
        self.driver = Driver(self.machine, self.devices, manual=True)  # type: ignore[arg-type]  # duck-typed
        self.driver.journal = self._journal

    def _watch_submissions(self) -> None:
        machine = self.machine
        submit = machine.submit

        def watched(event: ev.Input, group: Any = None) -> None:
            seat = getattr(event, "seat", None)
            polls = list(self.wire.polls.get(seat, [])) if isinstance(seat, int) else []
            self.events.append((event, polls))
            submit(event, group)

        machine.submit = watched  # type: ignore[method-assign]
        apply_retake = machine.apply_retake

        def retaken(link: ConsoleLink, boot: int | None, *more: Any) -> None:  # when the machine acts on it
            self.events.append((Retake(link.seat, boot), []))
            apply_retake(link, boot, *more)

        machine.apply_retake = retaken  # type: ignore[method-assign]

    def _journal(self, event: ev.Input) -> Outcome:
        if type(event) is ev.KeyPressed and self.rng.random() < self.journal_fails:
            return Outcome(event, (), None)  # the store failed: not journaled, to be read again
        if type(event) is ev.KeyPressed:
            self.journaled.add((event.seat, event.boot, event.seq))
        return Outcome(event, (), 1)

    def settle(self, share: float) -> None:
        """The engine answers for about ``share`` of the presses it holds (the rest wait: a batch, a
        slow disk), in the order it got them."""
        pending = self.driver.pending
        while pending and self.rng.random() < share:
            event, fut = pending.pop(0)
            fut.set_result(self._journal(event))

    def life(self) -> None:
        """Between two slices of time: the consoles and the engine do something, or nothing."""
        rng = self.rng
        self.settle(0.3)
        for device in self.devices:
            inner = device.inner
            roll = rng.random()
            if isinstance(inner, FakeModule):
                if roll < 0.3:
                    inner.inputs ^= 1 << rng.randrange(7)
                continue
            if roll < 0.25 and len(inner.fifo) < 16:
                # No press between a power-up and the poll that shows it to the line.  A console restarted
                # and pressed between a poll and its FIFO read (one transaction: shorter than any console
                # takes to boot) gets its new codes taken under the old BOOT: docs/reliability/fuzzing.md
                if device.link.boot == inner.boot:
                    inner.press(rng.choice(KEY_CODES if HONEST_UNKNOWN_CODES or self.wire.liars else VALID_CODES))
            elif roll < 0.28:
                inner.power_cycle_to(rng.choice([0, rng.randrange(0x10000), 0xFFFE]))
            elif roll < 0.33:
                inner.card = b"" if inner.card else rng.randbytes(rng.choice([4, 7, 10]))
                inner.card_seq = (inner.card_seq + 1) & 0xFF
            elif roll < 0.38:
                inner.status ^= Status.PRESENCE
        roll = rng.random()
        seat = rng.randint(1, len(self.links))
        if roll < 0.05:
            self.machine.post_effect(fx.ModeChanged(mode=rng.choice(list(fx.Mode)), proposals=rng.randint(0, 9)))
        elif roll < 0.10:
            self.machine.post_effect(fx.ChoiceAccepted(seat=seat, option=rng.randint(-1, 2)))
        elif roll < 0.12:
            self.machine.post_effect(fx.ConsoleText(seat=rng.choice([None, seat]), text="Картка не прийнята"))

    def run(self, faulty_s: float, clean_s: float) -> None:
        drv = self.driver
        self.journal_fails = STORE_FAILS
        while drv.now < faulty_s:
            self.life()
            drv.run(self.rng.choice([0.001, 0.01, 0.05]))
            self.check_deadline()
        # the wire is clean, the store works and nobody presses: everything pending comes through
        self.wire.clean = True
        self.journal_fails = 0.0
        end = drv.now + clean_s
        while drv.now < end:
            self.settle(1.0)
            drv.run(0.02)
            self.check_deadline()

    def check_deadline(self) -> None:
        m = self.machine
        assert m.running
        assert math.isfinite(m.deadline), f"no next deadline at {self.driver.now}"


def check_online_offline(run: Run) -> None:
    """Offline only after ``retries + 1`` failed polls in a row; online only right after a valid one."""
    need = run.spec.retries + 1
    for event, polls in run.events:
        if type(event) is ev.SeatWentOffline:
            assert len(polls) >= need and not any(polls[-need:]), (event, polls[-need - 2 :])
        elif type(event) is ev.SeatCameOnline and not event.restarted:
            assert polls and polls[-1], (event, polls[-3:])


def check_presses(run: Run) -> None:
    """Honest consoles: no journaled press again; ACKs free only journaled presses; nothing left behind."""
    journaled_before: set[tuple[int, int | None, int | None]] = set()
    keys: dict[tuple[int, int | None, int | None], Key] = {}
    for event, _ in run.events:
        if type(event) in (Retake, ev.SeatCameOnline, ev.SeatWentOffline):
            # the machine reads the console's pending events again, by design: journaled ones among them
            # come back as repeats (same boot, number and key), which the core refuses and the ACK frees
            seat = event.seat  # type: ignore[union-attr]
            journaled_before = {i for i in journaled_before if i[0] != seat}
            continue
        if type(event) is not ev.KeyPressed or event.seq is None:
            continue
        ident = (event.seat, event.boot, event.seq)
        assert ident not in journaled_before, f"press {ident} reported again after it was journaled"
        assert keys.setdefault(ident, event.key) == event.key, f"press {ident} came back with another key"
        if ident in run.journaled:
            journaled_before.add(ident)
    for device in run.devices:
        inner = device.inner
        if not isinstance(inner, FuzzConsole):
            continue
        seat = device.link.seat
        valid = {int(k) for k in Key}
        for boot, seq, code, journaled in inner.freed:
            if code in valid:
                assert journaled, f"seat {seat}: an ACK freed press {(boot, seq)} before it was journaled"
        assert inner.fifo == [], f"seat {seat}: presses {inner.pending()} left in the FIFO on a clean wire"


@budget(40)
@given(spec=LINES)
def test_honest_consoles_on_a_faulty_wire(spec: LineSpec) -> None:
    run = Run(spec, liars=False)
    run.run(faulty_s=5.0, clean_s=6.0)  # the clean stretch outlasts the longest probe interval (4 s)
    assert all(link.online for link in run.links), "a console on a clean wire is still held offline"
    check_online_offline(run)
    check_presses(run)


@budget(40)
@given(spec=LINES)
def test_lying_replies_do_not_break_the_machine(spec: LineSpec) -> None:
    """Valid frames with random contents (key codes, BOOT, event numbers, flags): no exception, no hang,
    offline only after the retries."""
    run = Run(spec, liars=True)
    run.run(faulty_s=5.0, clean_s=0.5)
    check_online_offline(run)
    for event, _ in run.events:
        if type(event) is ev.KeyPressed:
            assert event.key in set(Key)  # unknown codes never reach the engine


class _Hooked(FakeConsole):
    """Runs ``hook`` once, when the next write (function 16) reaches it."""

    hook: Any = None

    def answer(self, frame: bytes) -> bytes | None:
        if frame[1] == 16 and self.hook is not None:
            hook, self.hook = self.hook, None
            hook()
        return super().answer(frame)


def test_an_ack_queued_before_a_restart_frees_a_new_press() -> None:
    """Found by the fuzzer.  Seat 1's press (boot 0, seq 0) is journaled; its ACK waits behind seat 2's
    write (one console's writes per turn).  While seat 2 is written, console 1 restarts (boot 1,
    numbering from 0) and its deputy presses NO, event (1, 0).  The ACK of 0 then goes out, the console
    drops (1, 0) as acknowledged, and the press never reaches the engine.  (A whole line's writes can
    queue when a vote opens, so the window can last many transactions.)  The machine only learns of
    the restart from a poll, so the console must tell: since version 3 of the register map the ACK is
    written with ACK_BOOT, and a console whose BOOT differs ignores it."""
    c1, c2 = FakeConsole(1), _Hooked(2)
    drv = Driver(LineMachine("A", [ConsoleLink(1, 1), ConsoleLink(2, 2)], baud=115200, timeout_s=0.01), [c1, c2])
    drv.manual = True
    drv.run(0.05)
    c1.press(Key.YES)
    drv.run(0.05)
    assert drv.presses() == [ev.KeyPressed(seat=1, key=Key.YES, seq=0, boot=0)]

    def restart_and_press() -> None:
        c1.power_cycle()
        c1.press(Key.NO)

    c2.hook = restart_and_press
    drv.m.post_effect(fx.ConsoleText(seat=2, text="x"))  # seat 2's write goes first
    [(event, fut)] = drv.pending
    fut.set_result(Outcome(event, (), 1))  # journaled: the ACK of (0, 0) is posted
    drv.run(0.5)
    assert c1.boot == 1
    assert ev.KeyPressed(seat=1, key=Key.NO, seq=0, boot=1) in drv.presses(), "the new press was lost"


def test_an_ack_of_a_later_press_frees_an_earlier_one_the_store_failed() -> None:
    """Found by the fuzzer.  YES (seq 0) and NO (seq 1) are read in two polls, so they go to the engine
    in two groups.  The store fails YES: the machine reads both again (a new group).  Then NO's first
    write is reported journaled: its ACK of 1 goes out and the console drops YES too, which the journal
    does not hold.  If the store fails the re-read as well, YES is gone: a press lost.  Fixed by the link's
    epoch: a retake starts a new reading, and verdicts about the old one are dropped."""
    c = FakeConsole(1)
    drv = Driver(LineMachine("A", [ConsoleLink(1, 1)], baud=115200, timeout_s=0.01), [c], manual=True)
    drv.run(0.05)
    c.press(Key.YES)
    drv.run(0.05)
    c.press(Key.NO)
    drv.run(0.05)
    [(yes, yes_fut), (no, no_fut)] = drv.pending
    drv.pending.clear()
    yes_fut.set_result(Outcome(yes, (), None))  # not journaled: read again
    drv.run(0.05)
    assert [e.seq for e, _ in drv.pending] == [0, 1]  # the re-read, with the engine
    no_fut.set_result(Outcome(no, (), 1))  # NO's first report is journaled
    drv.run(0.05)
    assert c.fifo[:1] == [Key.YES], f"YES (not journaled) was freed by ACK {drv.writes_of(1, HR_ACK)}"


def test_an_unknown_key_code_acknowledges_a_press_the_engine_still_holds() -> None:
    """Found by the fuzzer.  YES (seq 0) is with the engine, not yet journaled; the console then reports
    an unknown key code (seq 1).  ``native._events`` acknowledges 1 at once (nothing to journal), and
    the ACK frees YES too: should the journal write fail, YES is lost.  Fixed: a read of unknown codes
    only waits for the verdict on the presses before it."""
    c = FakeConsole(1)
    drv = Driver(LineMachine("A", [ConsoleLink(1, 1)], baud=115200, timeout_s=0.01), [c], manual=True)
    drv.run(0.05)
    c.press(Key.YES)
    drv.run(0.05)
    assert [e.seq for e, _ in drv.pending] == [0]  # with the engine, no verdict yet
    c.press(99)  # not a key of the register map
    drv.run(0.05)
    assert c.fifo[:1] == [Key.YES], f"YES (not journaled) was freed by ACK {drv.writes_of(1, HR_ACK)}"

"""A line when the line itself misbehaves, and the line's timing rules, with time passed in.

The real ``LineMachine`` is driven by ``tests/line_harness.Driver`` (fake time, no port, no thread):

* every console offline and none due for a probe: the machine asks to be woken at the first probe,
  not before (a spinning loop would take the interpreter from the healthy lines), and an engine input
  ends the wait;
* the port cannot be opened at all (adapter missing at start): the seats are reported offline, once;
* the port opens and fails at once, again and again (a gateway that accepts and drops): reopening
  backs off instead of looping; a line that ran for a while and failed is reopened at once;
* a frame starts no earlier than t3.5 after the last reply, the consoles get their turnaround after a
  broadcast, a failed transaction is followed by silence and back-off, and bytes that arrive when no
  reply is expected are counted as garbage, never taken for the next reply.

The I/O loop (``terminals.ioloop``) is tested over a pipe at the end: the port that cannot be opened
through the real loop, and a line of dead consoles that must not wake the loop more than its probes do.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from line_harness import Driver, FakeConsole, FakeModule
from waiting import wait_for

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Outcome
from terminals import generic, rtu
from terminals import machine as machine_module
from terminals.ioloop import IOLoop
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.registers import BROADCAST_TURNAROUND_S, HR_ACK
from terminals.transport import LineDown


def _offline(links: list[ConsoleLink], probe_at: float) -> None:
    for link in links:
        link.online = False
        link.next_probe = probe_at


def test_a_line_whose_consoles_are_all_offline_waits_for_the_first_probe() -> None:
    links = [ConsoleLink(seat, seat) for seat in (1, 2, 3)]
    _offline(links, 60.0)
    links[2].next_probe = 30.0
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01), [FakeConsole(3)])
    drv.run(29.9)
    assert drv.sent == []
    assert drv.m.deadline == 30.0  # woken for the first probe, not before
    assert drv.steps <= 3, drv.steps  # and not stepped in between: a loop would sleep all the while
    drv.m.post_effect(fx.ConsoleText(seat=1, text="x"))  # the engine's input ends the wait at once
    assert drv.m.deadline <= drv.now
    drv.run(0.05)
    assert drv.sent == []  # seat 1 is offline: its text waits for its return
    drv.run(0.2)
    assert [f[0] for _, f in drv.sent][:1] == [3]  # the probe of seat 3, which answers
    assert links[2].online and drv.events[0] == ev.SeatCameOnline(seat=3, restarted=False)


def test_a_dead_console_is_declared_offline_after_its_retries_then_probed_with_back_off() -> None:
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2)]
    consoles = [FakeConsole(1), FakeConsole(2)]
    consoles[1].dead = True
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01, retries=2), consoles)
    drv.run(0.2)
    assert ev.SeatWentOffline(seat=2) in drv.events
    assert drv.m.stats.errors["timeout"] == 3  # three attempts, then the verdict
    probes = []
    drv.sent.clear()
    drv.run(20.0)
    probes = [t for t, f in drv.sent if f[0] == 2]
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(probes)]
    assert gaps[:4] == [1.0, 2.0, 4.0, 4.0], gaps  # one try each, 0.5 s doubling to 4 s
    assert drv.events.count(ev.SeatWentOffline(seat=2)) == 1


def _run_until(drv: Driver, event: ev.Input, limit_s: float) -> float:
    """Drive the machine in 10 ms steps until it queues ``event``; how long that took (inf: not within
    ``limit_s``)."""
    start = drv.now
    while event not in drv.events:
        if drv.now - start > limit_s:
            return float("inf")
        drv.run(0.01)
    return drv.now - start


def test_a_console_that_dies_with_its_ack_due_is_flagged_at_the_failed_write() -> None:
    """A console dies between the read of a press and its ACK (issue 11 campaign, under load: the verdict
    came late).  The ACK write failing every attempt flags it at once; retried at every turn instead, it
    cost the line its timeouts per turn until its own poll came round, 21 turns later (2.5 s)."""
    units = range(1, 23)
    consoles = {unit: FakeConsole(unit) for unit in units}
    links = [ConsoleLink(unit, unit) for unit in units]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.05, retries=2), list(consoles.values()), manual=True)
    drv.run(1.0)  # every console read and written
    consoles[10].press(Key.YES)
    drv.run(0.1)
    [(press, fut)] = drv.pending
    assert press == ev.KeyPressed(seat=10, key=Key.YES, seq=0, boot=0)
    consoles[10].dead = True  # before the verdict, so before its ACK
    fut.set_result(Outcome(press, (), 7))
    assert _run_until(drv, ev.SeatWentOffline(seat=10), 2.0) <= 0.4  # the write's three attempts, then the poll's
    assert drv.writes_of(10, HR_ACK) == [0, 0, 0]  # the three attempts, then no more writes to it
    drv.sent.clear()
    drv.run(0.4)
    assert [f for _, f in drv.sent if f[0] == 10] == []  # not due for its first probe yet
    assert {f[0] for _, f in drv.sent} == set(units) - {10}  # the others are polled at their pace
    assert consoles[10].fifo == [int(Key.YES)]  # the press stays latched in the console
    consoles[10].dead = False
    assert _run_until(drv, ev.SeatCameOnline(seat=10, restarted=False), 2.0) < 2.0
    drv.run(0.1)
    assert drv.presses().count(press) == 2  # read again; the engine tells it is a duplicate


def test_a_console_that_comes_back_while_the_store_is_down_is_reported_online_once_it_is_back() -> None:
    """A console reported offline, then back while the store cannot journal: the sitting must not keep the
    seat offline (its deputy's presses would be refused as ``seat_offline``).  The line says it again at
    the console's turns until the journal takes it, then no more."""
    consoles = [FakeConsole(1), FakeConsole(2)]
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2)]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01, retries=2), consoles)
    drv.run(0.2)
    consoles[1].dead = True
    drv.run(0.2)
    assert drv.events.count(ev.SeatWentOffline(seat=2)) == 1
    drv.journal = lambda event: Outcome(event, (), None)  # the store is down: nothing is journaled
    consoles[1].dead = False
    back = ev.SeatCameOnline(seat=2, restarted=False)
    assert _run_until(drv, back, 5.0) < 5.0
    drv.run(1.0)
    assert drv.events.count(back) >= 3  # said again and again while it is not journaled
    drv.journal = lambda event: Outcome(event, (), 8)  # the store is back
    drv.run(0.1)
    said = drv.events.count(back)
    drv.run(2.0)
    assert drv.events.count(back) == said  # journaled: no more


def test_a_console_that_dies_while_the_store_is_down_is_reported_offline_again() -> None:
    consoles = [FakeConsole(1), FakeConsole(2)]
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2)]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01, retries=2), consoles)
    drv.run(0.2)
    drv.journal = lambda event: Outcome(event, (), None)
    consoles[1].dead = True
    drv.run(2.0)
    failed = drv.events.count(ev.SeatWentOffline(seat=2))
    assert failed >= 3  # not journaled: said again at its probes (0.5 s, then 1 s after)
    drv.journal = lambda event: Outcome(event, (), 8)
    drv.run(10.0)  # its next probe comes within 4 s: said once more, journaled this time, then never
    assert drv.events.count(ev.SeatWentOffline(seat=2)) == failed + 1
    assert ev.SeatCameOnline(seat=2, restarted=False) not in drv.events


def test_a_line_of_dead_consoles_during_an_outage_says_them_again_only_at_their_probes() -> None:
    """Said again at each turn instead, a line whose consoles are all offline would loop with the engine
    as fast as the engine fails its appends (the turns of offline consoles cost nothing)."""
    links = [ConsoleLink(seat, seat) for seat in (1, 2, 3)]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01, retries=2), [])  # nobody answers
    drv.journal = lambda event: Outcome(event, (), None)  # and the store is down
    drv.run(10.0, max_steps=2_000)
    offline = [e for e in drv.events if isinstance(e, ev.SeatWentOffline)]
    assert 3 * 3 <= len(offline) <= 3 * 8  # once each, then once at each probe (0.5, 1, 2, 4 s apart)


def test_a_microphone_unit_lost_while_the_store_is_down_is_reported_again() -> None:
    """A seat's separate microphone unit goes silent during an outage: its ``MicUnitChanged`` is said
    again at the console's turns until the journal takes it, so the secretary's alert is not lost."""
    link = ConsoleLink(1, 1, mic_unit=31)
    mic = FakeConsole(31)  # answers function 03 of HR MIC as a microphone unit does
    drv = Driver(LineMachine("A", [link], baud=115200, timeout_s=0.01, retries=2), [FakeConsole(1), mic])
    drv.run(6.0)  # a read-back round: the unit answers
    assert link.mic_online
    drv.journal = lambda event: Outcome(event, (), None)
    mic.dead = True
    lost = ev.MicUnitChanged(seat=1, online=False)
    assert _run_until(drv, lost, 12.0) < 12.0
    drv.run(1.0)
    assert drv.events.count(lost) >= 3  # said again and again while it is not journaled
    drv.journal = lambda event: Outcome(event, (), 8)
    drv.run(0.1)
    said = drv.events.count(lost)
    drv.run(1.0)
    assert drv.events.count(lost) == said and not link.mic_online


class RefusingConsole(FakeConsole):
    """A console that is there but refuses every write with a Modbus exception (a firmware without the
    register, a console in a mode that locks its outputs)."""

    def answer(self, frame: bytes) -> bytes | None:
        if frame[1] in (6, 16):
            return rtu.with_crc(bytes([self.unit, frame[1] | 0x80, 4]))  # server device failure
        return super().answer(frame)


def test_a_console_that_refuses_a_write_stays_online_and_the_write_is_tried_after_its_next_poll() -> None:
    """Alive but refusing: no offline verdict, and the write is tried again once a cycle (after the
    console's poll), not at every turn of the line."""
    consoles = [FakeConsole(unit) for unit in range(1, 11)]
    consoles[1] = RefusingConsole(2)
    links = [ConsoleLink(unit, unit) for unit in range(1, 11)]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.05, retries=2), consoles)
    drv.run(0.5)
    assert ev.SeatWentOffline(seat=2) not in drv.events and links[1].online
    assert drv.m.stats.errors["timeout"] == 0
    writes = [f for f in drv.frames_to(2) if f[1] in (6, 16)]
    polls = [f for f in drv.frames_to(2) if f[1] == 4]
    assert drv.m.stats.errors["exception"] == len(writes) >= 6  # tried again, cycle after cycle
    assert len(writes) <= 3 * len(polls)  # three attempts a cycle, not three at each of the 10 turns


def test_a_dead_module_with_coils_to_write_is_flagged_at_the_failed_write() -> None:
    link = generic.GenericLink(seat=9, unit=3, card_uid="0A000009")
    module = FakeModule(3)
    others = [ConsoleLink(unit + 20, unit) for unit in range(4, 12)]
    consoles = [FakeConsole(unit) for unit in range(4, 12)]
    drv = Driver(LineMachine("G", [link, *others], baud=115200, timeout_s=0.05, retries=2), [module, *consoles])
    drv.run(1.0)
    drv.events.clear()
    module.dead = True
    drv.m.post_effect(fx.MicOn(seat=9))  # its coils must change
    assert _run_until(drv, ev.SeatWentOffline(seat=9), 2.0) <= 0.4
    assert len(drv.frames_to(3, 15)) == 1 + 3  # the first write at start, then three attempts


def test_a_port_that_cannot_be_opened_reports_its_seats_offline_once_and_backs_off() -> None:
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2)]
    m = LineMachine("A", links, baud=9600)
    now, retries = 0.0, []
    for _ in range(7):
        at = m.open_failed(now, "no such port /dev/serial/by-id/usb-missing")
        retries.append(round(at - now, 3))
        now = at
    assert [e for e, _ in m.outbox] == [ev.SeatWentOffline(seat=1), ev.SeatWentOffline(seat=2)]  # once each
    assert retries == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert m.stats.errors["open"] == 7


def test_a_line_that_drops_right_after_opening_backs_off_and_one_that_ran_reopens_at_once() -> None:
    m = LineMachine("A", [ConsoleLink(1, 1)], baud=115200)
    now, gaps = 0.0, []
    for _ in range(5):
        m.opened(now, "gateway")
        at = m.line_down(now + 0.001, "connection reset by the gateway")
        gaps.append(round(at - now, 3))
        now = at
    assert gaps == [0.501, 1.001, 2.001, 4.001, 5.001]
    assert m.stats.errors["line_down"] == 5 and not m.running
    m.opened(now, "gateway")
    at = m.line_down(now + machine_module.REOPEN_SETTLED_S + 1, "adapter unplugged")  # it ran: settled
    assert at == now + machine_module.REOPEN_SETTLED_S + 1
    m.opened(at, "gateway")
    assert m.line_down(at + 0.001, "again") == pytest.approx(at + 0.001 + machine_module.REOPEN_MIN_S)


def test_frames_keep_the_silences_of_the_line() -> None:
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2)]
    drv = Driver(LineMachine("A", links, baud=115200, timeout_s=0.01), [FakeConsole(1), FakeConsole(2)])
    drv.m.post_effect(fx.ModeChanged(mode=fx.Mode.REGISTRATION))
    drv.run(0.1)
    t35 = drv.m.t35
    ends = dict(drv.replies)
    times = [t for t, _ in drv.sent]
    for (t, frame), nxt in zip(drv.sent, times[1:], strict=False):
        if frame[0] == 0:  # a broadcast: its bytes, t3.5 and the consoles' turnaround
            assert nxt - t >= len(frame) * drv.m.char_s + t35 + BROADCAST_TURNAROUND_S - 1e-9
        else:  # the next frame waits for t3.5 after the reply
            end = min(e for e in ends if e > t)
            assert nxt - end >= t35 - 1e-9
    assert [f[0] for _, f in drv.sent].count(0) == 1 and drv.m.stats.broadcasts == 1
    cycle = drv.m.stats.cycle_s[-1]
    assert cycle == pytest.approx(2 * (21 * 11 / 115200 + 2 * t35), rel=0.01)  # the wire limit, no more


def test_garbage_is_counted_and_a_fault_is_followed_by_silence_and_back_off() -> None:
    console = FakeConsole(1)
    drv = Driver(LineMachine("A", [ConsoleLink(1, 1)], baud=115200, timeout_s=0.01), [console])
    drv.run(0.01)
    drv.m.feed(b"\x00\xff\x13", drv.now)  # noise while nothing is asked
    assert drv.m.stats.garbage_bytes == 3
    spoiled = [True, True]  # the next two replies arrive with a bad CRC

    def noise(reply: bytes) -> bytes:
        if spoiled:
            spoiled.pop()
            return reply[:-1] + bytes([reply[-1] ^ 0xFF])
        return reply

    drv.noise = noise
    drv.sent.clear()
    drv.replies.clear()
    drv.run(0.02)
    assert drv.m.stats.errors["crc"] == 2 and drv.m.links[0].errors["crc"] == 2
    t35 = drv.m.t35
    (_t0, _), (t1, _), (t2, _) = drv.sent[:3]
    (r0, _), (r1, _) = drv.replies[:2]
    assert t1 - r0 == pytest.approx(t35 + t35 * 1)  # silence, then back-off of one t3.5
    assert t2 - r1 == pytest.approx(t35 + t35 * 2)  # and of two
    assert drv.m.links[0].online  # the third attempt was good


def test_a_reply_split_over_reads_is_put_together_and_one_too_late_is_garbage() -> None:
    console = FakeConsole(1)
    link = ConsoleLink(1, 1)
    link.card_seq = 0  # known: the reply is decoded without a card read
    m = LineMachine("A", [link], baud=115200, timeout_s=0.01)
    m.opened(0.0)
    frame = m.step(0.0)
    assert frame == link.poll
    reply = console.answer(frame)
    assert reply is not None
    m.feed(reply[:4], 0.001)
    assert m.deadline > 0.001  # not complete: waiting for the rest
    m.feed(reply[4:], 0.002)
    assert m.step(0.002) is None  # taken; the next poll waits for t3.5
    assert link.last_reply == reply and m.stats.errors.total() == 0
    assert m.step(0.002 + m.t35) == link.poll
    late = m.deadline + 0.001
    assert m.step(late) is None  # nobody answered in time
    m.feed(reply, late + 0.0001)  # the reply after its deadline: garbage, not the next poll's answer
    assert m.stats.errors["timeout"] == 1 and m.stats.garbage_bytes == len(reply)


# --------------------------------------------------------------------------- the I/O loop over a pipe


class PipeTransport:
    """A port whose far end is a pipe nobody writes to: opened, never answered."""

    name = "pipe"

    def __init__(self, *, open_fails: bool = False) -> None:
        self.open_fails = open_fails
        self.opens = 0
        self.writes: list[bytes] = []
        self._r = self._w = -1

    def open(self) -> None:
        self.begin_open()

    def begin_open(self) -> bool:
        self.opens += 1
        if self.open_fails:
            raise LineDown("no such port /dev/serial/by-id/usb-missing")
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        return True

    def finish_open(self) -> None:
        pass

    def fileno(self) -> int:
        return self._r

    def read_some(self) -> bytes:
        try:
            return os.read(self._r, 4096)
        except BlockingIOError:
            return b""

    def write(self, frame: bytes) -> None:
        self.writes.append(frame)

    def read_reply(self, target: Any, deadline: float) -> bytes:
        raise NotImplementedError

    def discard(self) -> int:
        return len(self.read_some())

    def close(self) -> None:
        for fd in (self._r, self._w):
            if fd >= 0:
                os.close(fd)
        self._r = self._w = -1


class Events:
    def __init__(self) -> None:
        self.seen: list[ev.Input] = []

    def __call__(self, event: ev.Input) -> Future[Any]:
        self.seen.append(event)
        fut: Future[Any] = Future()
        fut.set_result(None)
        return fut


@pytest.fixture
def io() -> Iterator[tuple[IOLoop, Events]]:
    events = Events()
    loop = IOLoop(events)
    yield loop, events
    loop.stop()


def test_the_loop_reports_the_seats_of_a_port_that_cannot_be_opened(io: tuple[IOLoop, Events]) -> None:
    loop, events = io
    transport = PipeTransport(open_fails=True)
    line = loop.add_line("A", transport, [ConsoleLink(1, 1), ConsoleLink(2, 2)], baud=9600)
    loop.start()
    # two failed opens counted: the first one's reports were submitted before the second try began
    wait_for(lambda: line.stats.errors["open"] >= 2, what="the open tried again")
    assert events.seen == [ev.SeatWentOffline(seat=1), ev.SeatWentOffline(seat=2)]  # once each


def test_the_loop_sleeps_while_its_dead_consoles_are_not_due(io: tuple[IOLoop, Events]) -> None:
    """A line of dead consoles: after their verdicts the loop wakes for the probes only, not in a spin,
    and an effect posted meanwhile still reaches the line at once."""
    loop, events = io
    transport = PipeTransport()
    line = loop.add_line("A", transport, [ConsoleLink(1, 1), ConsoleLink(2, 2)], baud=115200, timeout_s=0.005)
    loop.start()
    wait_for(lambda: len(events.seen) == 2, what="both seats declared offline")
    wakeups, cpu, t0 = loop.wakeups, loop.cpu_s, time.monotonic()
    time.sleep(0.3)  # the measured span: probes come every 0.5 s or later
    elapsed = time.monotonic() - t0
    assert loop.wakeups - wakeups <= 4 * (1 + elapsed / 0.5), loop.wakeups - wakeups
    assert loop.cpu_s - cpu < 0.05
    line.post(fx.ModeChanged(mode=fx.Mode.VOTE_YES_NO))
    wait_for(lambda: any(f[0] == 0 for f in transport.writes), what="the broadcast written")

"""The line loop when the line itself misbehaves, against a scripted transport (no simulator needed).

* every console offline and none due for a probe: the loop sleeps instead of spinning (a spinning
  thread would take the interpreter from the healthy lines);
* the port cannot be opened at all (adapter missing at start): the seats are reported offline;
* the port opens and fails at once, again and again (a gateway that accepts and drops): reconnects
  back off instead of looping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from chamber.core import events as ev
from terminals.line import LineLoop
from terminals.links import ConsoleLink
from terminals.transport import LineDown


class ScriptedTransport:
    name = "scripted"

    def __init__(self, *, open_fails: bool = False, write_fails: bool = False) -> None:
        self.open_fails = open_fails
        self.write_fails = write_fails
        self.opens = 0
        self.writes = 0

    def open(self) -> None:
        self.opens += 1
        if self.open_fails:
            raise LineDown("no such port /dev/serial/by-id/usb-missing")

    def close(self) -> None:
        pass

    def write(self, frame: bytes) -> None:
        self.writes += 1
        if self.write_fails:
            raise LineDown("connection reset by the gateway")

    def read_reply(self, target: Callable[[bytes], int], deadline: float) -> bytes:
        time.sleep(max(0.0, deadline - time.perf_counter()))
        return b""  # nobody answers

    def discard(self) -> int:
        return 0


class Events:
    def __init__(self) -> None:
        self.seen: list[ev.Input] = []

    def __call__(self, event: ev.Input) -> Future[Any]:
        self.seen.append(event)
        fut: Future[Any] = Future()
        fut.set_result(None)
        return fut


def run_for(loop: LineLoop, seconds: float) -> None:
    loop.start()
    time.sleep(seconds)
    loop.stop()


def test_a_line_whose_consoles_are_all_offline_does_not_spin() -> None:
    links = [ConsoleLink(seat, seat) for seat in (1, 2, 3)]
    for link in links:
        link.online = False
        link.next_probe = time.perf_counter() + 60  # none is due for a probe during the test
    transport = ScriptedTransport()
    loop = LineLoop("A", transport, links, Events(), baud=115200, timeout_s=0.01)
    run_for(loop, 0.5)
    assert transport.writes == 0
    # a round of nothing to do now costs one sleep of up to 50 ms: about 10 such rounds, not thousands
    assert loop.stats.cycles <= 30, loop.stats.cycles
    assert loop.stats.cpu_s < 0.1


def test_a_port_that_cannot_be_opened_reports_its_seats_offline() -> None:
    events = Events()
    loop = LineLoop("A", ScriptedTransport(open_fails=True), [ConsoleLink(1, 1), ConsoleLink(2, 2)], events, baud=9600)
    run_for(loop, 0.3)
    assert events.seen == [ev.SeatWentOffline(seat=1), ev.SeatWentOffline(seat=2)]  # once each
    assert loop.stats.errors["open"] >= 1


def test_a_line_that_drops_right_after_opening_backs_off() -> None:
    transport = ScriptedTransport(write_fails=True)
    loop = LineLoop("A", transport, [ConsoleLink(1, 1)], Events(), baud=115200, timeout_s=0.01)
    run_for(loop, 1.2)
    # 0.5 s, then 1 s between tries: two or three opens in 1.2 s, not hundreds
    assert 1 <= transport.opens <= 3, transport.opens
    assert loop.stats.errors["line_down"] == transport.opens

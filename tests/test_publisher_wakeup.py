"""When the publisher sends (display.publisher ``Publisher.step``) and the engine's signal that wakes it.

The publisher is driven here with its own clock: a fake engine (a Sitting behind ``snapshot()`` and
``watch_snapshots``, publishing when the test says so) and ``step(t)`` called as the thread would call
it, every simulated millisecond, so every send lands where the rule puts it, whatever the machine's
load.  Two tests at the end start the real thread and the real Engine, with bounded waits.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from factories import Driver
from test_web_state import ready_driver, web_config
from waiting import wait_for

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.snapshot import Snapshot
from chamber.core.values import Key
from chamber.engine import Engine
from chamber.journal import Journal
from display import state as st
from display.publisher import HEALTH_EVERY_S, INTERVAL_S, Publisher

SEATS = 60
EPS = 1e-9


class FakeEngine:
    """A Sitting (factories.Driver) whose snapshot is published only when the test calls ``publish``."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._snapshot = driver.sitting.snapshot()
        self.watchers: list[Callable[[], None]] = []

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def watch_snapshots(self, fn: Callable[[], None]) -> None:
        self.watchers.append(fn)

    def publish(self) -> None:
        self._snapshot = self.driver.sitting.snapshot()
        for fn in self.watchers:
            fn()


class Sent:
    """The emit function's record: (monotonic time, event, data, namespace)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.items: list[tuple[float, str, dict[str, Any], str]] = []

    def __call__(self, event: str, data: dict[str, Any], namespace: str = "/", **_: Any) -> None:
        self.items.append((self.now, event, data, namespace))

    def hall(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, data) for t, event, data, ns in self.items if ns == "/hall" and event == "patch"]

    def clear(self) -> None:
        self.items.clear()


def make(
    *, health: Callable[[], st.Health] | None = None, watching: bool = True
) -> tuple[Publisher, FakeEngine, Sent, list[float]]:
    """A publisher over a fake engine with an open roll-call vote, at monotonic time 100 s, its first
    pass done (so the test starts from a publisher that has sent everything)."""
    config = web_config(SEATS)
    driver = ready_driver(config, SEATS)
    driver.ok(ev.OpenVote(title="Про бюджет", duration_s=0))
    engine = FakeEngine(driver)
    sent = Sent()
    mono = [100.0]
    source: Any = engine if watching else type("Bare", (), {"snapshot": lambda _self: engine.snapshot()})()
    pub = Publisher(source, st.chamber_of(config), sent, clock=lambda: 0, health=health, monotonic=lambda: mono[0])
    pub.step(mono[0])
    sent.clear()
    return pub, engine, sent, mono


def press(engine: FakeEngine, seat: int) -> None:
    engine.driver.ok(ev.KeyPressed(seat=seat, key=Key.YES))
    engine.publish()


def run(pub: Publisher, sent: Sent, start: float, ms: int, at: Mapping[int, Callable[[], None]]) -> None:
    """``ms`` simulated milliseconds from ``start``: at millisecond i, ``at[i]()`` (the engine's work),
    then one ``step`` of the publisher (the thread, woken or at its slot)."""
    for i in range(ms + 1):
        t = start + i / 1000
        sent.now = t
        if i in at:
            at[i]()
        pub.step(t)


def voted(state: dict[str, Any]) -> set[int]:
    return {int(seat) for seat, s in state.get("seats", {}).items() if s.get("voted")}


# --- the rule ---------------------------------------------------------------------------------------------


def test_a_lone_change_is_sent_at_once() -> None:
    pub, engine, sent, mono = make()
    t = mono[0] + 5.0  # long after the last send
    sent.now = t
    press(engine, 7)
    pub.step(t)
    [(at, patch)] = sent.hall()
    assert at == t and patch["seats"] == {"7": {"voted": True}} and patch["vote"]["cast"] == 1


def test_a_change_within_the_interval_is_held_to_its_slot_and_then_sent() -> None:
    pub, engine, sent, mono = make()
    t = mono[0] + 5.0
    sent.now = t
    press(engine, 1)
    pub.step(t)
    sent.now = t + 0.03
    press(engine, 2)
    assert pub.step(t + 0.03) == pytest.approx(INTERVAL_S - 0.03)  # sleep until the slot, not a poll
    sent.now = t + 0.06
    press(engine, 3)  # published while held: the held send reads it too
    assert pub.step(t + 0.06) == pytest.approx(INTERVAL_S - 0.06)
    assert len(sent.hall()) == 1
    sent.now = t + INTERVAL_S
    pub.step(t + INTERVAL_S)
    [_, (at, patch)] = sent.hall()
    assert at == pytest.approx(t + INTERVAL_S)
    assert patch["seats"] == {"2": {"voted": True}, "3": {"voted": True}} and patch["vote"]["cast"] == 3


def test_a_burst_goes_out_at_most_ten_times_a_second_and_ends_with_its_last_state() -> None:
    pub, engine, sent, mono = make()
    start = mono[0] + 5.0
    # every seat presses, one every 23 ms (1.4 s), the engine publishing each press at once
    at = {10 + 23 * (seat - 1): functools.partial(press, engine, seat) for seat in range(1, SEATS + 1)}
    run(pub, sent, start, 2000, at)
    times = [t for t, _ in sent.hall()]
    assert times[0] == pytest.approx(start + 0.010)  # the first press: at once
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= INTERVAL_S - EPS
    for t in times:  # never more than ten in any second
        assert sum(1 for u in times if t <= u < t + 1.0) <= 10
    assert len(times) >= 13  # and not fewer than the rule allows: 1.36 s of presses at one per 100 ms
    shown: set[int] = set()
    for _, patch in sent.hall():
        shown |= voted(patch)
    assert shown == set(range(1, SEATS + 1))  # the last press of the burst was sent
    last_press = start + (10 + 23 * (SEATS - 1)) / 1000
    assert times[-1] - last_press <= INTERVAL_S + EPS  # ... within one slot of it
    assert pub.hall.whole(0)["vote"]["cast"] == SEATS


def test_a_held_send_carries_the_state_at_its_slot_not_the_one_that_woke_it() -> None:
    pub, engine, sent, mono = make()
    start = mono[0] + 5.0
    run(pub, sent, start, 300, {ms: functools.partial(press, engine, seat) for ms, seat in ((0, 1), (20, 2), (90, 3))})
    [(t1, first), (t2, second)] = sent.hall()
    assert t1 == pytest.approx(start) and t2 == pytest.approx(start + INTERVAL_S)
    assert voted(first) == {1} and voted(second) == {2, 3}


# --- idle: no busy loop -------------------------------------------------------------------------------------


def test_idle_it_sleeps_and_sends_nothing() -> None:
    pub, _, sent, mono = make()
    t = mono[0]
    for _ in range(5):
        t += HEALTH_EVERY_S
        assert pub.step(t) == pytest.approx(HEALTH_EVERY_S)  # one look a second, no signal: no work
    assert sent.items == []


def test_a_pass_without_a_signal_or_a_due_sample_does_nothing() -> None:
    reads = 0
    pub, engine, sent, mono = make()
    real = engine.snapshot

    def counting() -> Snapshot:
        nonlocal reads
        reads += 1
        return real()

    engine.snapshot = counting  # type: ignore[method-assign]
    for k in range(1, 100):  # woken early for no reason (e.g. spuriously): nothing read, nothing sent
        assert pub.step(mono[0] + k / 1000) > 0.5
    assert reads == 0 and sent.items == []


def test_line_health_is_sampled_once_a_second_and_its_change_sent() -> None:
    samples = 0
    cycles = 0

    def health() -> st.Health:
        nonlocal samples
        samples += 1
        return st.Health(seat_errors={}, lines={"A": {"cycles": cycles, "errors": {}}})

    pub, _, sent, mono = make(health=health)  # sampled by its first pass, at mono[0]
    assert samples == 1
    t = mono[0] + 0.2
    pause = pub.step(t)  # idle: sleeps until the next sample, not a whole second from now
    assert pause == pytest.approx(HEALTH_EVERY_S - 0.2) and samples == 1
    cycles = 17
    pub.step(t + pause)
    assert samples == 2
    [(_, _, patch, ns)] = sent.items
    assert ns == "/console" and patch["console"]["lines"]["A"]["cycles"] == 17
    assert pub.step(t + pause) == pytest.approx(HEALTH_EVERY_S) and samples == 2


def test_a_source_that_cannot_signal_is_polled_every_interval() -> None:
    pub, engine, sent, mono = make(watching=False)
    t = mono[0] + 5.0
    assert pub.step(t) == pytest.approx(INTERVAL_S)
    engine.driver.ok(ev.KeyPressed(seat=4, key=Key.YES))
    engine._snapshot = engine.driver.sitting.snapshot()  # published without a signal
    sent.now = t + INTERVAL_S
    pub.step(t + INTERVAL_S)
    [(_, patch)] = sent.hall()
    assert voted(patch) == {4}


def test_an_alert_wakes_the_publisher_and_its_acknowledgement_too() -> None:
    pub, _, sent, mono = make()
    t = mono[0] + 5.0
    pub.on_effects(ev.Tick(), (fx.Alert(kind="unknown_card", detail="x", seat=3),))  # on the engine thread
    pub.step(t)
    [(_, _, patch, ns)] = sent.items
    assert ns == "/console" and [a["acknowledged"] for a in patch["console"]["alerts"]] == [False]
    sent.clear()
    assert pub.alerts.acknowledge(1)  # on a web thread
    pub.step(t + INTERVAL_S)
    [(_, _, patch, ns)] = sent.items
    assert ns == "/console" and [a["acknowledged"] for a in patch["console"]["alerts"]] == [True]


# --- the real thread and the real engine -----------------------------------------------------------------


class Counting:
    """A snapshot source counting its reads, that never changes."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.reads = 0
        self.watchers: list[Callable[[], None]] = []

    def snapshot(self) -> Snapshot:
        self.reads += 1
        return self.snap

    def watch_snapshots(self, fn: Callable[[], None]) -> None:
        self.watchers.append(fn)


def test_the_idle_thread_does_not_spin_and_wakes_on_a_signal() -> None:
    config = web_config(5)
    source = Counting(ready_driver(config, 5).sitting.snapshot())
    pub = Publisher(source, st.chamber_of(config), lambda *a, **k: None, clock=lambda: 0)
    pub.start()
    try:
        wait_for(lambda: source.reads >= 2, timeout=10, what="the thread's first pass")
        reads = source.reads
        time.sleep(0.3)  # a spinning thread would read thousands of times; a sleeping one at most once
        assert source.reads - reads <= 1
        before = source.reads
        source.watchers[0]()
        wait_for(lambda: source.reads > before, timeout=10, what="the pass the signal wakes")
    finally:
        pub.stop()
    assert pub._thread is None


def test_the_engine_signals_each_snapshot_it_publishes(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    engine = Engine(journal)
    signals: list[Snapshot] = []
    engine.watch_snapshots(lambda: signals.append(engine.snapshot()))
    engine.start()
    try:
        config = web_config(5)
        engine.execute(ev.OpenSitting(roster=config.roster(), number=1, title="Засідання"))
        wait_for(lambda: len(signals) >= 1, timeout=10, what="the command's snapshot")
        assert signals[-1] is engine.snapshot() and signals[-1].phase.value == "idle"
        count = len(signals)
        engine.execute(ev.CardInserted(seat=1, uid="00000001"))
        # a seat event: published within the cap (at once after a quiet spell), and signalled once
        wait_for(lambda: engine.snapshot().seats[0].deputy is not None, timeout=10, what="the card's snapshot")
        assert len(signals) == count + 1 and signals[-1] is engine.snapshot()
    finally:
        engine.stop()
        journal.close()

"""Power cuts: the controller, the consoles, or the whole hall at once, through real frames over ptys.

A console that loses power forgets its event FIFO and numbers its events from 0 again; its cards stay
in the slots.  Whatever the order in which the controller comes back, restates the consoles' outputs,
broadcasts a mode and polls, a new press after the cut must be counted, and every console must be
told "taken" only for a press that was journaled.  The chamber is the real one (engine, line loops,
serial transport) against hardware_sim, as in test_bus.py; waits are bounded polls.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_bus import carded_and_registered, journaled_presses
from waiting import wait_for

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.daemon import Controller, start_controller
from hardware_sim.simulator import Simulator
from terminals.registers import HR_MODE, Led, Mode

ROOT = Path(__file__).resolve().parent.parent
CHOICE = {Key.YES: 0, Key.NO: 1, Key.ABSTAIN: 2}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.toml")


class Hall:
    """The simulated hall and the controller that runs it, which a test may stop and start again."""

    def __init__(self, config: Config, tmp_path: Path) -> None:
        self.config = config
        self.url = f"sqlite:///{tmp_path / 'j.db'}"
        self.sim = Simulator(config, wire_time=False, seed=11)
        self.sim.start()
        self.ctl: Controller | None = start_controller(
            config, ports=dict(self.sim.lines), store_url=self.url, open_sitting=True
        )

    @property
    def controller(self) -> Controller:
        assert self.ctl is not None
        return self.ctl

    def stop_controller(self) -> None:
        self.controller.stop()
        self.ctl = None

    def start_controller(self) -> Controller:
        self.ctl = start_controller(self.config, ports=dict(self.sim.lines), store_url=self.url)
        return self.ctl

    def power_cycle(self, seats: list[int]) -> None:
        """Every console named loses power and comes back (RAM gone, cards still in their slots)."""
        for seat in seats:
            self.sim.console(seat).power_off()
            mic = self.sim.mic_unit(seat)
            if mic is not None:
                mic.power_off()
        for seat in seats:
            self.sim.console(seat).power_on()
            mic = self.sim.mic_unit(seat)
            if mic is not None:
                mic.power_on()

    def close(self) -> None:
        if self.ctl is not None:
            self.ctl.stop()
        self.sim.stop()


@pytest.fixture
def hall(config: Config, tmp_path: Path) -> Iterator[Hall]:
    h = Hall(config, tmp_path)
    try:
        yield h
    finally:
        h.close()


def settled(ctl: Controller) -> bool:
    return not any(link.dirty for loop in ctl.lines.values() for link in loop.links)


def vote_round(hall: Hall, seats: list[int], keys: dict[int, Key]) -> None:
    """Open a vote (already open if the sitting says so), press, and wait until all are counted."""
    ctl = hall.controller
    sim = hall.sim
    for seat in seats:
        assert sim.press(seat, keys[seat])
    wait_for(
        lambda: all(
            ctl.engine.sitting.vote is not None and ctl.engine.sitting.vote.choices.get(s) == CHOICE[keys[s]]
            for s in seats
        ),
        timeout=20,
        what="every press counted",
    )
    wait_for(lambda: all(not sim.console(s).state().pending for s in seats), timeout=20, what="every press ACKed")


def no_press_refused_as_old(ctl: Controller) -> None:
    refused = [s for s in ctl.engine.snapshot().seats if s.rejected]
    assert not refused, refused


def test_whole_hall_power_cut_between_votes(hall: Hall) -> None:
    """The controller and every console lose power together; both come back; a new vote is opened."""
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)
    assert ctl.engine.execute(ev.OpenVote(title="Перше", duration_s=0)).accepted
    vote_round(hall, seats, {s: Key.YES for s in seats})
    for command in (ev.CloseVote(), ev.AnnounceResult(), ev.ClearResult()):
        assert ctl.engine.execute(command).accepted
    hall.stop_controller()
    hall.power_cycle(list(sim.seats))  # every console of the hall, the chair's included
    ctl = hall.start_controller()
    wait_for(lambda: all(ctl.engine.snapshot().seats[s - 1].deputy is not None for s in seats), what="cards again")
    assert ctl.engine.execute(ev.OpenVote(title="Друге", duration_s=0)).accepted
    keys = {s: (Key.NO if s % 2 else Key.ABSTAIN) for s in seats}
    vote_round(hall, seats, keys)
    no_press_refused_as_old(ctl)
    assert ctl.engine.execute(ev.CloseVote()).accepted
    result = ctl.engine.sitting.results[2]
    odd = sum(1 for s in seats if s % 2)
    assert result.counts == (0, odd, len(seats) - odd)


def test_whole_hall_power_cut_in_an_open_vote(hall: Hall) -> None:
    """The cut meets a half-finished vote: the choices made stand, changes of mind after it count."""
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    early, late = seats[:20], seats[20:]
    vote_round(hall, early, {s: Key.YES for s in early})
    hall.stop_controller()
    hall.power_cycle(list(sim.seats))
    ctl = hall.start_controller()
    assert ctl.engine.snapshot().phase == "vote_open"
    wait_for(lambda: settled(ctl), what="the outputs restated")
    assert all(sim.console(s).state().mode == Mode.VOTE_YES_NO for s in seats)
    assert all(sim.console(s).state().leds & Led.YES for s in early)  # the journal's choices shown again
    changed = early[:5]
    keys = {**{s: Key.NO for s in changed}, **{s: Key.ABSTAIN for s in late}}
    vote_round(hall, changed + late, keys)
    no_press_refused_as_old(ctl)
    assert ctl.engine.execute(ev.CloseVote()).accepted
    assert ctl.engine.sitting.results[1].counts == (len(early) - 5, 5, len(late))


def test_consoles_restarting_while_the_controller_runs(hall: Hall) -> None:
    """Every console loses power and comes back while the controller polls on."""
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    vote_round(hall, seats, {s: Key.YES for s in seats})
    hall.power_cycle(list(sim.seats))
    wait_for(
        lambda: settled(ctl) and all(sim.console(s).state().mode == Mode.VOTE_YES_NO for s in seats),
        what="the consoles put back in the vote",
    )
    vote_round(hall, seats, {s: Key.NO for s in seats})
    no_press_refused_as_old(ctl)
    assert ctl.engine.execute(ev.CloseVote()).accepted
    assert ctl.engine.sitting.results[1].counts == (0, len(seats), 0)


def test_a_console_restarting_just_before_an_addressed_write_of_its_outputs(hall: Hall) -> None:
    """The worst ordering: the console boots, and the first frame it hears is the controller's write of
    its outputs with MODE (which clears STATUS.RESTARTED), before any poll could see the restart."""
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)
    seat = seats[0]
    line, unit = sim.line_of(seat), sim.console(seat).unit
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    for key in (Key.YES, Key.NO, Key.YES):  # its numbering moves on: 1, 2, 3 after the registration's 0
        vote_round(hall, [seat], {seat: key})
    cut = []

    def hook(to: int, frame: bytes) -> None:  # runs before the frame is served
        start = int.from_bytes(frame[2:4], "big")
        if to == unit and frame[1] == 16 and start <= HR_MODE < start + frame[5] and not cut:
            sim.console(seat).power_cycle()
            cut.append(frame)

    sim.set_request_hook(line, hook)
    try:
        # The abstention is journaled; its ACK goes out with the changed LEDs, MODE among them.
        assert sim.press(seat, Key.ABSTAIN)
        wait_for(lambda: bool(cut), what="the console cut just before the write")
    finally:
        sim.set_request_hook(line, None)
    wait_for(lambda: settled(ctl), what="writes done")
    for key in (Key.NO, Key.YES, Key.NO, Key.ABSTAIN):  # numbered 0 … 3 again: the old numbers
        vote_round(hall, [seat], {seat: key})
    no_press_refused_as_old(ctl)


def test_one_console_at_a_time_while_the_controller_is_down(hall: Hall) -> None:
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    vote_round(hall, seats[:3], {s: Key.YES for s in seats[:3]})
    for seat in seats[:3]:
        hall.stop_controller()
        hall.power_cycle([seat])
        ctl = hall.start_controller()
        vote_round(hall, [seat], {seat: Key.NO})
    vote_round(hall, seats[3:6], {s: Key.ABSTAIN for s in seats[3:6]})
    no_press_refused_as_old(ctl)
    assert ctl.engine.execute(ev.CloseVote()).accepted
    assert ctl.engine.sitting.results[1].counts == (0, 3, 3)


def test_every_journaled_press_is_acknowledged_once_and_none_unjournaled(hall: Hall) -> None:
    """After cuts of every kind, the journal holds each press the consoles latched exactly once."""
    sim, ctl = hall.sim, hall.controller
    cards = carded_and_registered(sim, ctl, hall.config)
    seats = sorted(cards)[:10]
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    vote_round(hall, seats, {s: Key.YES for s in seats})
    hall.stop_controller()
    for seat in seats[:5]:  # pressed while the controller is down: latched, then lost with the power
        sim.press(seat, Key.NO)
    hall.power_cycle(seats[:5])
    for seat in seats[5:]:  # pressed while the controller is down, kept: these must count
        sim.press(seat, Key.NO)
    ctl = hall.start_controller()
    wait_for(
        lambda: all(ctl.engine.sitting.vote.choices.get(s) == 1 for s in seats[5:]),  # type: ignore[union-attr]
        what="the held presses counted",
    )
    vote_round(hall, seats[:5], {s: Key.ABSTAIN for s in seats[:5]})
    presses = [p for p in journaled_presses(ctl) if p.key is not Key.REGISTER]
    assert len(presses) == len(seats) + 5 + 5
    no_press_refused_as_old(ctl)

"""The real controller (engine + line loops + serial transport) against hardware_sim over ptys.

Every frame here crosses a pseudo-terminal as Modbus RTU bytes between the
controller's LineLoop and pymodbus slaves; wire timing is off so the tests
stay fast.  Waits are bounded polls of observable state, never sleeps that
hope for the best.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_for

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.events import decode_input
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, VoteKind
from chamber.daemon import Controller, start_controller
from hardware_sim.console import ConsoleModel
from hardware_sim.simulator import Simulator
from terminals.registers import Led, Mode

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(ROOT / "config.toml")


@pytest.fixture
def chamber(config: Config, tmp_path: Path) -> Iterator[tuple[Simulator, Controller]]:
    sim = Simulator(config, wire_time=False, seed=3)
    sim.start()
    ctl = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True)
    try:
        yield sim, ctl
    finally:
        ctl.stop()
        sim.stop()


def seats_of(config: Config) -> dict[int, str]:
    """seat -> card UID of the deputy assigned there"""
    return {d.seat: d.cards[0] for d in config.deputies if d.seat is not None and d.cards}


def carded_and_registered(sim: Simulator, ctl: Controller, config: Config) -> dict[int, str]:
    cards = seats_of(config)
    for seat, uid in cards.items():
        sim.insert_card(seat, uid)
    engine = ctl.engine
    wait_for(lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == len(cards), what="cards")
    assert engine.execute(ev.OpenRegistration()).accepted
    wait_for(lambda: all(sim.console(s).state().mode == Mode.REGISTRATION for s in cards), what="registration mode")
    for seat in cards:
        assert sim.press(seat, Key.REGISTER)
    wait_for(lambda: engine.snapshot().registered == len(cards), what="registrations")
    assert engine.execute(ev.CloseRegistration()).accepted
    # Let the loops finish writing the registration LEDs and ACKs, so that a test which follows starts
    # on a quiet line (a write still queued would carry the next MODE to its console by itself).
    wait_for(lambda: all(sim.console(s).state().leds & Led.REGISTERED for s in cards), what="registration LEDs lit")
    wait_for(lambda: not any(link.dirty for loop in ctl.lines.values() for link in loop.links), what="writes done")
    return cards


def journaled_presses(ctl: Controller) -> list[ev.KeyPressed]:
    uid = ctl.engine.sitting_uid or ""
    out = []
    for rec in ctl.journal.records(uid):
        if rec.type == "KeyPressed":
            event = decode_input(rec.payload)
            assert isinstance(event, ev.KeyPressed)
            out.append(event)
    return out


def test_registration_and_roll_call_vote_through_real_frames(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    assert engine.snapshot().quorum
    for seat in cards:  # the registration LED came back to every console
        wait_for(lambda seat=seat: bool(sim.console(seat).state().leds & Led.REGISTERED), what="registered LED")
    assert engine.execute(ev.OpenVote(title="Про бюджет", duration_s=0)).accepted
    wait_for(lambda: all(sim.console(s).state().mode == Mode.VOTE_YES_NO for s in cards), what="vote mode broadcast")
    seats = sorted(cards)
    yes, no, abstain = seats[:25], seats[25:30], seats[30:33]
    for group, key in ((yes, Key.YES), (no, Key.NO), (abstain, Key.ABSTAIN)):
        for seat in group:
            assert sim.press(seat, key)
    wait_for(
        lambda: (engine.snapshot().vote or None) is not None and engine.snapshot().vote.cast == 33, what="33 choices"
    )  # type: ignore[union-attr]
    for seat in yes:
        wait_for(lambda seat=seat: bool(sim.console(seat).state().leds & Led.YES), what=f"За LED at {seat}")
    assert not sim.console(no[0]).state().leds & Led.YES and sim.console(no[0]).state().leds & Led.NO
    assert engine.execute(ev.CloseVote()).accepted
    result = engine.sitting.results[1]
    assert result.counts == (25, 5, 3)
    assert result.adopted  # 25 > 43 / 2
    assert result.did_not_vote == len(cards) - 33
    wait_for(lambda: all(sim.console(s).state().mode == Mode.IDLE for s in cards), what="idle mode broadcast")
    # every console event reached the journal once, and each was acknowledged
    presses = journaled_presses(ctl)
    assert len({(p.seat, p.seq) for p in presses}) == len(presses) == len(cards) + 33
    wait_for(lambda: all(not sim.console(s).state().pending for s in cards), what="all events acknowledged")


def test_rating_vote_speakers_and_microphones(chamber: tuple[Simulator, Controller], config: Config) -> None:
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    seats = sorted(cards)
    assert engine.execute(
        ev.OpenVote(
            kind=VoteKind.RATING,
            proposals=("Варіант А", "Варіант Б", "Варіант В"),
            threshold=Threshold(num=1, den=2, base=Base.CAST),
            duration_s=0,
        )
    ).accepted
    wait_for(lambda: sim.console(seats[0]).state().mode == Mode.VOTE_RATING, what="rating mode")
    assert sim.console(seats[0]).state().proposals == 3
    for i, seat in enumerate(seats[:30]):
        sim.press(seat, (Key.P1, Key.P2, Key.P2)[i % 3])
    sim.press(seats[30], Key.P5)  # no fifth proposal: rejected by the engine, still acknowledged
    wait_for(lambda: engine.snapshot().vote.cast == 30, what="30 rating choices")  # type: ignore[union-attr]
    wait_for(lambda: sim.console(seats[1]).state().proposal_leds == 0b10, what="P2 lit")
    assert engine.execute(ev.CloseVote()).accepted
    result = engine.sitting.results[1]
    assert result.counts == (10, 20, 0) and result.winner == 2
    assert engine.execute(ev.AnnounceResult()).accepted
    assert engine.execute(ev.ClearResult()).accepted

    speaker = seats[4]
    sim.press(speaker, Key.SPEAK)
    wait_for(lambda: bool(sim.console(speaker).state().leds & Led.REQUEST), what="request ring")
    assert engine.execute(ev.NextSpeaker()).accepted
    wait_for(lambda: sim.console(speaker).state().mic, what="microphone on")
    assert sim.console(speaker).state().leds & Led.MIC
    assert engine.execute(ev.RevokeFloor(seat=speaker)).accepted
    wait_for(lambda: not sim.console(speaker).state().mic, what="microphone off")


def test_card_moved_to_another_seat_is_rejected_and_raises_an_alert(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    seats = sorted(cards)
    alerts_before = engine.snapshot().alerts
    sim.remove_card(seats[1])  # seat 2's owner is away; seat 1's card goes there
    wait_for(lambda: engine.snapshot().seats[1].deputy is None, what="card out")
    lit = Led.CARD_OK | Led.REGISTERED
    wait_for(lambda: not sim.console(seats[1]).state().leds & lit, what="its card and registration LEDs dark")
    sim.move_card(seats[0], seats[1])
    # the alert is "card_elsewhere" or "wrong_seat", depending on which console the loop polls first
    wait_for(lambda: engine.snapshot().alerts > alerts_before, what="alert")
    wait_for(lambda: engine.snapshot().seats[0].deputy is None, what="the card gone from its own seat")
    snap = engine.snapshot()
    assert snap.seats[1].deputy is None  # assigned seating: the card does not work there
    assert snap.seats[0].deputy is None  # and it left its own seat
    assert engine.execute(ev.OpenVote(duration_s=0)).accepted
    sim.press(seats[1], Key.YES)  # a press without an accepted card
    wait_for(lambda: engine.snapshot().seats[1].rejected >= 1, what="rejected press")
    assert engine.snapshot().vote.cast == 0  # type: ignore[union-attr]


def test_a_refused_press_is_explained_on_the_console_and_then_cleared(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    """A deputy pressing За with no vote open sees why nothing lit, for a few seconds."""
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    seat = sorted(cards)[0]
    loop = ctl.lines[sim.line_of(seat)]
    loop.texts.show_s = 0.5
    rejected = ctl.engine.snapshot().seats[seat - 1].rejected
    assert sim.press(seat, Key.YES)
    wait_for(lambda: ctl.engine.snapshot().seats[seat - 1].rejected == rejected + 1, what="the press refused")
    wait_for(lambda: sim.console(seat).state().text == "Голосування не відкрите", what="the reason on the console")
    assert all(sim.console(s).state().text == "" for s in cards if s != seat)  # only that console
    wait_for(lambda: sim.console(seat).state().text == "", what="the text cleared")


def test_dead_console_during_a_vote_is_flagged_and_the_others_vote_on(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    seats = sorted(cards)
    assert engine.execute(ev.OpenVote(duration_s=0)).accepted
    dead = seats[2]
    line = sim.line_of(dead)
    unit = sim.console(dead).unit
    sim.set_fault(line, unit, dead=True)
    wait_for(lambda: not engine.snapshot().seats[dead - 1].online, what="seat offline")
    for seat in seats:
        if seat != dead:
            sim.press(seat, Key.YES)
    wait_for(lambda: engine.snapshot().vote.cast == len(seats) - 1, what="the others' votes")  # type: ignore[union-attr]
    others = [s for s in seats if s != dead]
    wait_for(lambda: all(sim.console(s).state().leds & Led.YES for s in others), what="their LEDs lit")
    sim.clear_faults(line, unit)
    wait_for(lambda: engine.snapshot().seats[dead - 1].online, timeout=20, what="seat back online")
    wait_for(lambda: engine.snapshot().seats[dead - 1].deputy is not None, what="card reported again")
    # its return restates the mode for it alone: the others' choice LEDs stay lit (a broadcast of MODE
    # would clear every console's choice LEDs in the middle of the vote)
    assert all(sim.console(s).state().leds & Led.YES for s in others)
    sim.press(dead, Key.NO)
    wait_for(lambda: engine.snapshot().vote.cast == len(seats), what="the returning seat's vote")  # type: ignore[union-attr]
    assert engine.execute(ev.CloseVote()).accepted
    assert engine.sitting.results[1].counts == (len(seats) - 1, 1, 0)


def test_a_console_that_misses_the_mode_broadcast_is_put_right(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    """A broadcast has no reply; the console's MODE_ECHO in the next poll shows that it did not hear it."""
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    deaf = sorted(cards)[0]
    line, unit = sim.line_of(deaf), sim.console(deaf).unit
    wait_for(lambda: all(sim.console(s).state().mode == Mode.IDLE for s in cards), what="registration closed")
    broadcasts = int(sim.stats()[line]["broadcasts"])  # type: ignore[call-overload]

    def hook(to: int, frame: bytes) -> None:  # runs on the wire thread before each request is served
        if to == 0:  # the broadcast: this one console will not hear it
            sim.set_fault(line, unit, miss_rate=1.0)
        elif to == unit:  # the controller turns to the console itself: it hears again
            sim.clear_faults(line, unit)

    sim.set_request_hook(line, hook)
    try:
        assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
        wait_for(lambda: sim.stats()[line]["faults"]["miss"] >= 1, what="the broadcast missed")  # type: ignore[index]
        wait_for(lambda: sim.console(deaf).state().mode == Mode.VOTE_YES_NO, what="the mode written to it alone")
    finally:
        sim.set_request_hook(line, None)
        sim.clear_faults(line, unit)
    assert int(sim.stats()[line]["broadcasts"]) == broadcasts + 1, broadcasts  # type: ignore[call-overload]
    assert ctl.lines[line].stats.errors["mode_missed"] == 1
    assert all(sim.console(s).state().mode == Mode.VOTE_YES_NO for s in cards)
    assert sim.press(deaf, Key.YES)
    wait_for(lambda: ctl.engine.snapshot().vote.cast == 1, what="its vote")  # type: ignore[union-attr]


def test_a_console_powered_up_just_before_a_broadcast_is_still_seen_as_restarted(
    chamber: tuple[Simulator, Controller], config: Config
) -> None:
    """A console that lost power while offline numbers its events from zero again.  If the next MODE
    broadcast reached it before the controller's next probe and cleared RESTARTED, the engine would
    take its new presses for old ones (duplicate_event) and the console, acknowledged, would drop them."""
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    seat = sorted(cards)[0]
    console = sim.console(seat)
    assert isinstance(console, ConsoleModel)
    line = sim.line_of(seat)
    for _ in range(4):  # its event numbers move on, so the old numbering and the new one overlap
        assert sim.press(seat, Key.SPEAK)
    wait_for(lambda: not console.state().pending, what="the presses acknowledged")
    console.power_off()
    wait_for(lambda: not engine.snapshot().seats[seat - 1].online, what="the seat offline")

    def hook(to: int, frame: bytes) -> None:  # the power comes back just before the broadcast is heard
        if to == 0 and not console.powered:
            console.power_on()

    sim.set_request_hook(line, hook)
    try:
        assert engine.execute(ev.OpenVote(duration_s=0)).accepted
        wait_for(lambda: console.powered, what="the power back, just before the broadcast")
    finally:
        sim.set_request_hook(line, None)
    wait_for(lambda: engine.snapshot().seats[seat - 1].online, what="the seat back online")
    wait_for(lambda: console.state().mode == Mode.VOTE_YES_NO, what="the vote mode written to it")
    assert sim.press(seat, Key.YES)
    wait_for(lambda: engine.snapshot().vote.cast == 1, what="its vote counted")  # type: ignore[union-attr]
    assert engine.sitting.vote is not None and list(engine.sitting.vote.choices.values()) == [0]  # За


def test_a_controller_restarted_mid_vote_leaves_the_consoles_showing_the_vote(
    chamber: tuple[Simulator, Controller], config: Config, tmp_path: Path
) -> None:
    """The daemon restarts (an update, a crash) during a vote: the consoles must stay in the vote with
    their registration and choice LEDs, not be written back to idle by a controller that forgot."""
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    seats = sorted(cards)
    pulled, dead = seats[2], seats[3]
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    assert sim.press(seats[0], Key.NO)
    wait_for(lambda: ctl.engine.snapshot().vote.cast == 1, what="a vote")  # type: ignore[union-attr]
    wait_for(lambda: sim.console(seats[0]).state().leds & Led.NO, what="its LED")
    sim.set_fault(sim.line_of(dead), sim.console(dead).unit, dead=True)
    wait_for(lambda: not ctl.engine.snapshot().seats[dead - 1].online, what="a seat offline")
    ctl.stop()
    # while no controller runs: one deputy takes the card out, the dead console is repaired
    sim.remove_card(pulled)
    sim.clear_faults(sim.line_of(dead), sim.console(dead).unit)
    ctl2 = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}")
    try:
        engine = ctl2.engine
        assert engine.snapshot().phase == "vote_open"
        assert engine.snapshot().seats[pulled - 1].deputy is not None  # the journal's view, until polled
        wait_for(lambda: engine.snapshot().seats[pulled - 1].deputy is None, what="the pulled card seen gone")
        wait_for(lambda: engine.snapshot().seats[dead - 1].online, what="the repaired seat back online")
        present = [s for s in seats if s != pulled]
        wait_for(lambda: all(engine.snapshot().seats[s - 1].deputy is not None for s in present), what="cards")
        settled = lambda: not any(link.dirty for loop in ctl2.lines.values() for link in loop.links)  # noqa: E731
        wait_for(settled, what="the new controller's writes done")
        for seat in present:
            state = sim.console(seat).state()
            assert state.mode == Mode.VOTE_YES_NO, (seat, state)
            assert state.leds & Led.REGISTERED and state.leds & Led.CARD_OK, (seat, state)
        assert not sim.console(pulled).state().leds & (Led.CARD_OK | Led.REGISTERED)
        assert sim.console(seats[0]).state().leds & Led.NO
        assert sim.press(pulled, Key.YES)  # nobody's card there: the press must not vote for its owner
        wait_for(lambda: engine.snapshot().seats[pulled - 1].rejected >= 1, what="the press refused")
        assert sim.press(seats[1], Key.YES)
        wait_for(lambda: ctl2.engine.snapshot().vote.cast == 2, what="a vote after the restart")  # type: ignore[union-attr]
    finally:
        ctl2.stop()


@pytest.mark.parametrize(
    "faults",
    [
        {"crc_rate": 0.3},
        {"drop_rate": 0.3},
        {"noise_rate": 0.3},
        {"miss_rate": 0.2},
        {"wrong_unit_rate": 0.2},
        {"exception_rate": 0.2},
        {"truncate_rate": 0.2},
        {"slow_ms": 20.0},
        {"garbage": 64},
    ],
    ids=["crc", "drop", "noise", "miss", "wrong_unit", "exception", "truncate", "slow", "garbage"],
)
def test_bus_faults_lose_no_press(
    chamber: tuple[Simulator, Controller], config: Config, faults: dict[str, object]
) -> None:
    sim, ctl = chamber
    cards = carded_and_registered(sim, ctl, config)
    engine = ctl.engine
    assert engine.execute(ev.OpenVote(duration_s=0)).accepted
    line = sorted(sim.lines)[0]
    on_line = sorted(s for s in cards if sim.line_of(s) == line)
    sim.set_fault(line, **faults)
    keys = (Key.YES, Key.NO, Key.ABSTAIN, Key.YES)
    made = 0
    for round_ in range(3):  # changes of mind: several events per console, some between polls
        for seat in on_line:
            assert sim.press(seat, keys[(seat + round_) % 4])
            made += 1
    wait_for(lambda: all(not sim.console(s).state().pending for s in on_line), timeout=30, what="FIFOs drained")
    sim.clear_faults(line)
    presses = [p for p in journaled_presses(ctl) if p.key is not Key.REGISTER]
    assert len({(p.seat, p.seq) for p in presses}) == made  # none lost
    vote = engine.sitting.vote
    assert vote is not None and vote.tally == vote.recount()
    for seat in on_line:  # the last choice of each seat is the one counted
        assert vote.choices[seat] == {Key.YES: 0, Key.NO: 1, Key.ABSTAIN: 2}[keys[(seat + 2) % 4]]
    errors = ctl.lines[line].stats.errors
    injected = sim.stats()[line]["faults"]
    if "slow_ms" in faults:  # slower replies, still inside the line's timeout: no error, no loss
        assert injected["slow"] > 0  # type: ignore[index]
    elif "garbage" in faults:  # one burst: dropped as garbage before a reply, or a poll spoiled by it
        assert injected["garbage"] == 1  # type: ignore[index]
        assert ctl.lines[line].stats.garbage_bytes > 0 or sum(errors.values()) > 0
    else:
        assert sum(errors.values()) > 0  # the faults were seen and counted
    for kind in ("wrong_unit", "exception"):
        if f"{kind}_rate" in faults:
            assert errors[kind] > 0  # counted under the controller's own name for it
    # a console that failed every retry was flagged offline meanwhile; with the faults gone all are back
    wait_for(lambda: all(s.online for s in engine.snapshot().seats), timeout=20, what="every seat online")

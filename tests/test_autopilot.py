"""The hall on autopilot (hardware_sim.deputies.Autopilot) against a running simulator.

Most tests have no controller: they play its part by writing MODE into the consoles the way its
broadcast does (``ConsoleModel.write_registers(HR_MODE, …, broadcast=True)``) and LEDs the way its
per-seat write does, and read what the deputies pressed from the consoles' event FIFOs (nothing ACKs
them here) and from the autopilot's own record.  The last one runs the real controller over the
virtual lines and checks that it counts exactly what the autopilot pressed.  Reaction times are
shortened; every wait is bounded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from chamber.config import Config, parse_config
from chamber.core import events as ev
from chamber.core.phases import Phase
from chamber.core.snapshot import Snapshot
from chamber.core.values import Key, VoteKind
from chamber.daemon import start_controller
from hardware_sim.console import ConsoleModel
from hardware_sim.deputies import Action, Autopilot, AutopilotSettings
from hardware_sim.simulator import Simulator
from terminals import registers as r

NATIVE = range(1, 13)  # seats 1 … 12: native consoles, seat 1 the chair's; 3 and 4 with presence sensors
GENERIC = (13, 14)  # generic DI/DO modules: 13 sits next to seat 12, 14 next to seat 2
#: fast reactions, everyone present, no floor requests: each test changes what it is about
QUIET = AutopilotSettings(reaction_s=(0.03, 0.3), register_s=(0.03, 0.3), floor_per_min=0.0, absent_fraction=0.0)


def quiet(**changes: Any) -> AutopilotSettings:
    return dataclasses.replace(QUIET, **changes)


def _config(head_votes: bool = True) -> Config:
    seats = [
        f'[[seats]]\nid = {i}\nline = "A"\nunit = {i}\nx = {float(i)}\ny = 0.0\n'
        + ("chair = true\n" if i == 1 else "")
        + ("presence_sensor = true\n" if i in (3, 4) else "")
        for i in NATIVE
    ]
    seats.append('[[seats]]\nid = 13\nline = "A"\nunit = 13\nx = 12.2\ny = 1.0\nprofile = "generic"\n')
    seats.append('[[seats]]\nid = 14\nline = "A"\nunit = 14\nx = 2.1\ny = 1.0\nprofile = "generic"\n')
    deputies = [
        f'[[deputies]]\nid = {i}\nfull_name = "Депутат Номер{i}"\ncards = ["{0xA000 + i:08X}"]\nseat = {i}\n'
        + ('role = "head"\n' if i == 1 else "")
        for i in [*NATIVE, *GENERIC]
    ]
    text = f"""
[council]
name = "Тестова рада"
composition = {len(NATIVE) + len(GENERIC)}
head_votes = {"true" if head_votes else "false"}

[rules]
seating = "assigned"

[[lines]]
id = "A"
port = "/dev/ttyUSB0"
baud = 115200

{"".join(seats)}
{"".join(deputies)}
"""
    return parse_config(text)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(_config()) as s:
        yield s


def set_mode(sim: Simulator, mode: r.Mode, proposals: int = 0) -> None:
    """What the controller's broadcast of MODE does to every native console."""
    for seat in NATIVE:
        console = sim.console(seat)
        assert isinstance(console, ConsoleModel)
        console.write_registers(r.HR_MODE, [r.mode_word(mode, proposals)], broadcast=True)


def fifo_keys(sim: Simulator, seat: int) -> list[int]:
    console = sim.console(seat)
    assert isinstance(console, ConsoleModel)
    return [key for _, key in console.state().pending]


def all_seen(pilot: Autopilot, mode: r.Mode) -> bool:
    return all(pilot.mode_seen(seat) == mode for seat in [*NATIVE, *GENERIC] if seat in pilot_seats(pilot))


def pilot_seats(pilot: Autopilot) -> set[int]:
    return {pilot.people.deputies[d].seat for d in pilot.present}


def settle(pilot: Autopilot, mode: r.Mode, what: str) -> None:
    """Wait until every seated deputy has seen ``mode`` and made every press they decided on."""
    wait_for(lambda: all_seen(pilot, mode) and pilot.planned() == 0, timeout=10, what=what)


def test_cards_go_in_except_for_the_absent_fraction_and_never_the_head(sim: Simulator) -> None:
    pilot = Autopilot(sim, seed=5, settings=AutopilotSettings(absent_fraction=0.25, floor_per_min=0))
    pilot.start()
    try:
        assert len(pilot.absent) == round(0.25 * 13)  # 13 deputies besides the head
        assert 1 not in pilot.absent
        for d in pilot.people.deputies.values():
            card = sim.console(d.seat).card
            assert card == (None if d.id in pilot.absent else d.card)
        for seat in (3, 4):  # presence sensors held where the deputy came
            assert sim.console(seat).state().presence == (seat not in pilot.absent)
        assert sorted(pilot.present) == sorted(set(pilot.people.deputies) - pilot.absent)
    finally:
        pilot.stop()
    again = Autopilot(sim, seed=5, settings=AutopilotSettings(absent_fraction=0.25))
    assert again.absent == pilot.absent  # the seed decides


def test_registration_is_answered_once_per_seat_native_and_generic(sim: Simulator) -> None:
    with Autopilot(sim, seed=1, settings=QUIET, poll_s=0.01) as pilot:
        wait_for(lambda: all_seen(pilot, r.Mode.IDLE), timeout=5, what="the deputies looking at idle consoles")
        assert pilot.actions() == []  # nothing to do while idle (no floor requests here)
        set_mode(sim, r.Mode.REGISTRATION)
        settle(pilot, r.Mode.REGISTRATION, "every registration press")
        for seat in NATIVE:
            assert fifo_keys(sim, seat) == [Key.REGISTER]
        # a generic module follows its nearest native console; its press is an input level, not an event
        generic = [(a.seat, a.key, a.latched) for a in pilot.actions() if a.seat in GENERIC]
        assert sorted(generic) == [(13, Key.REGISTER, True), (14, Key.REGISTER, True)]
        assert {a.why for a in pilot.actions()} == {"register"}
    assert pilot.errors == []


def test_a_vote_gets_at_most_one_choice_per_seat_in_the_mix(sim: Simulator) -> None:
    settings = quiet(vote_weights=(0.5, 0.2, 0.2, 0.1), change_of_mind=0.0)
    with Autopilot(sim, seed=3, settings=settings, poll_s=0.01) as pilot:
        set_mode(sim, r.Mode.VOTE_YES_NO)
        settle(pilot, r.Mode.VOTE_YES_NO, "every vote press")
        choices = {int(Key.YES), int(Key.NO), int(Key.ABSTAIN)}
        for seat in NATIVE:
            keys = fifo_keys(sim, seat)
            assert len(keys) <= 1 and set(keys) <= choices, (seat, keys)
        votes = pilot.actions("vote")
        assert len({a.seat for a in votes}) == len(votes)  # once per seat
        assert all(a.latched for a in votes)
        assert {a.key for a in votes} <= {Key.YES, Key.NO, Key.ABSTAIN}
        # the vote closes: a new vote is a new decision
        set_mode(sim, r.Mode.IDLE)
        settle(pilot, r.Mode.IDLE, "the vote closing")
        set_mode(sim, r.Mode.VOTE_YES_NO)
        settle(pilot, r.Mode.VOTE_YES_NO, "the second vote")
        second = pilot.actions("vote")[len(votes) :]
        assert len({a.seat for a in second}) == len(second)
    assert pilot.errors == []


def test_the_mix_follows_the_weights() -> None:
    # 14 seats are too few to see a mix: many votes in a row, counted over all of them
    settings = quiet(change_of_mind=0.0)
    with Simulator(_config()) as sim, Autopilot(sim, seed=11, settings=settings, poll_s=0.005) as pilot:
        for _ in range(15):
            set_mode(sim, r.Mode.VOTE_YES_NO)
            settle(pilot, r.Mode.VOTE_YES_NO, "a vote's presses")
            set_mode(sim, r.Mode.IDLE)
            settle(pilot, r.Mode.IDLE, "the vote closing")
            for seat in NATIVE:  # the controller would ACK them; here the FIFO is simply emptied
                console = sim.console(seat)
                assert isinstance(console, ConsoleModel)
                pending = console.state().pending
                if pending:
                    console.write_registers(r.HR_ACK, [pending[-1][0]])
        votes = pilot.actions("vote")
    chances = 15 * 14  # the head votes here (head_votes = true)
    share = {key: sum(a.key == key for a in votes) / chances for key in (Key.YES, Key.NO, Key.ABSTAIN)}
    assert 0.60 <= share[Key.YES] <= 0.80, share
    assert 0.08 <= share[Key.NO] <= 0.23, share
    assert 0.04 <= share[Key.ABSTAIN] <= 0.17, share
    assert 0.0 < 1 - len(votes) / chances <= 0.11  # some do not vote


def test_a_change_of_mind_is_a_second_different_choice(sim: Simulator) -> None:
    settings = quiet(vote_weights=(1, 1, 1, 0), change_of_mind=1.0)
    with Autopilot(sim, seed=4, settings=settings, poll_s=0.01) as pilot:
        set_mode(sim, r.Mode.VOTE_YES_NO)
        settle(pilot, r.Mode.VOTE_YES_NO, "both presses of every seat")
        for seat in NATIVE:
            first, second = fifo_keys(sim, seat)
            assert first != second and {first, second} <= {Key.YES, Key.NO, Key.ABSTAIN}
        assert len(pilot.actions("change")) == len(pilot.actions("vote")) == len(NATIVE) + len(GENERIC)


def test_a_rating_vote_presses_one_of_the_offered_proposals(sim: Simulator) -> None:
    settings = quiet(rating_none=0.0)
    with Autopilot(sim, seed=6, settings=settings, poll_s=0.01) as pilot:
        set_mode(sim, r.Mode.VOTE_RATING, proposals=3)
        settle(pilot, r.Mode.VOTE_RATING, "every rating press")
        for seat in NATIVE:
            keys = fifo_keys(sim, seat)
            assert len(keys) == 1 and keys[0] in (Key.P1, Key.P2, Key.P3), (seat, keys)
        # a generic module has no proposal keys: its deputy sits the rating vote out
        assert [a for a in pilot.actions() if a.seat in GENERIC] == []


def test_a_head_who_may_not_vote_registers_but_does_not_vote() -> None:
    with (
        Simulator(_config(head_votes=False)) as sim,
        Autopilot(sim, seed=2, settings=quiet(vote_weights=(1, 0, 0, 0)), poll_s=0.01) as pilot,
    ):
        set_mode(sim, r.Mode.REGISTRATION)
        settle(pilot, r.Mode.REGISTRATION, "registration")
        set_mode(sim, r.Mode.VOTE_YES_NO)
        settle(pilot, r.Mode.VOTE_YES_NO, "the vote")
        assert fifo_keys(sim, 1) == [Key.REGISTER]  # seat 1: the head at the chair console
        assert fifo_keys(sim, 2) == [Key.REGISTER, Key.YES]


def test_presses_planned_for_a_vote_that_closed_are_not_made(sim: Simulator) -> None:
    settings = quiet(vote_weights=(1, 0, 0, 0), reaction_s=(30.0, 0.0))
    with Autopilot(sim, seed=1, settings=settings, poll_s=0.01) as pilot:
        set_mode(sim, r.Mode.VOTE_YES_NO)
        wait_for(lambda: all_seen(pilot, r.Mode.VOTE_YES_NO), timeout=5, what="the vote seen")
        assert pilot.planned() == len(NATIVE) + len(GENERIC)  # all decided, none pressed yet (30 s)
        set_mode(sim, r.Mode.IDLE)
        wait_for(lambda: all_seen(pilot, r.Mode.IDLE), timeout=5, what="the vote closing")
    assert pilot.actions() == []
    assert all(fifo_keys(sim, seat) == [] for seat in NATIVE)


def test_generic_modules_follow_a_mode_source_when_given(sim: Simulator) -> None:
    modes = {13: int(r.Mode.VOTE_YES_NO), 14: None}  # None: the source does not know (idle)
    settings = quiet(vote_weights=(0, 1, 0, 0))
    with Autopilot(sim, seed=1, settings=settings, mode_source=modes.get, poll_s=0.01) as pilot:
        wait_for(lambda: pilot.actions() != [], timeout=5, what="the generic seat's vote")
        wait_for(lambda: pilot.planned() == 0, timeout=5, what="nothing more planned")
        assert [(a.seat, a.key, a.why) for a in pilot.actions()] == [(13, Key.NO, "vote")]
        assert pilot.mode_seen(14) == r.Mode.IDLE
        assert all(fifo_keys(sim, seat) == [] for seat in NATIVE)  # the native consoles are idle


def test_idle_deputies_ask_for_the_floor_unless_their_request_ring_is_lit(sim: Simulator) -> None:
    lit = sim.console(5)
    assert isinstance(lit, ConsoleModel)
    lit.write_registers(r.HR_LEDS, [int(r.Led.REQUEST)])  # seat 5 is already in the queue
    speaking = sim.console(6)
    assert isinstance(speaking, ConsoleModel)
    speaking.write_registers(r.HR_LEDS, [int(r.Led.MIC)])  # seat 6 has the floor
    requests: list[Action] = []
    settings = quiet(floor_per_min=600.0)  # ten a second: the test is short
    with Autopilot(sim, seed=8, settings=settings, poll_s=0.01, on_action=requests.append) as pilot:
        others = set(NATIVE) - {1, 5, 6}
        wait_for(
            lambda: others <= {a.seat for a in pilot.actions("floor")}, timeout=10, what="every idle deputy asking"
        )
    asked = {a.seat for a in pilot.actions("floor")}
    assert not asked & {1, 5, 6}  # the head presides; 5 is queued; 6 is speaking
    assert all(a.key is Key.SPEAK for a in pilot.actions("floor"))
    assert requests == pilot.actions()  # on_action saw every press
    for seat in others:
        assert set(fifo_keys(sim, seat)) == {Key.SPEAK}


def test_stop_stops_and_a_removed_card_stops_its_deputy(sim: Simulator) -> None:
    pilot = Autopilot(sim, seed=1, settings=QUIET, poll_s=0.01)
    pilot.start()
    assert pilot.running
    sim.remove_card(7)  # deputy 7 leaves the seat
    set_mode(sim, r.Mode.REGISTRATION)
    settle(pilot, r.Mode.REGISTRATION, "registration")
    assert fifo_keys(sim, 7) == []
    assert 7 not in {a.seat for a in pilot.actions()}
    pilot.stop()
    assert not pilot.running
    made = len(pilot.actions())
    set_mode(sim, r.Mode.VOTE_YES_NO)
    # a stopped autopilot is a thread that has ended: nothing can press any more
    assert len(pilot.actions()) == made
    assert pilot.mode_seen(2) == r.Mode.REGISTRATION


def test_the_same_seed_and_modes_give_the_same_decisions() -> None:
    def run(seed: int) -> list[tuple[int, Key, str]]:
        settings = quiet(change_of_mind=0.3, absent_fraction=0.2)
        with Simulator(_config()) as sim, Autopilot(sim, seed=seed, settings=settings, poll_s=0.003) as pilot:
            for mode, proposals in [
                (r.Mode.REGISTRATION, 0),
                (r.Mode.VOTE_YES_NO, 0),
                (r.Mode.IDLE, 0),
                (r.Mode.VOTE_RATING, 4),
                (r.Mode.IDLE, 0),
                (r.Mode.VOTE_YES_NO, 0),
            ]:
                set_mode(sim, mode, proposals)
                settle(pilot, mode, f"mode {mode.name}")
            # the order between seats depends on the reaction times drawn, not on the thread: sort by seat
            return sorted(((a.seat, a.key, a.why) for a in pilot.actions()), key=lambda t: t[0])

    first = run(21)
    assert first == run(21)
    assert first != run(22)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="absent_fraction"):
        AutopilotSettings(absent_fraction=1.5)
    with pytest.raises(ValueError, match="vote_weights"):
        AutopilotSettings(vote_weights=(0, 0, 0, 0))
    with pytest.raises(ValueError, match="reaction_s"):
        AutopilotSettings(reaction_s=(0.0, 0.5))
    with pytest.raises(ValueError, match="floor_per_min"):
        AutopilotSettings(floor_per_min=-1)


def test_the_real_controller_counts_what_the_autopilot_pressed(tmp_path: Path) -> None:
    config = _config()
    settings = quiet(absent_fraction=0.2, change_of_mind=0.0, reaction_s=(0.1, 0.3), register_s=(0.1, 0.3))
    with Simulator(config) as sim:
        store = f"sqlite:///{tmp_path / 'journal.db'}"
        ctl = start_controller(config, ports=dict(sim.lines), store_url=store, open_sitting=True)
        try:
            engine = ctl.engine
            with Autopilot(sim, seed=9, settings=settings) as pilot:
                here = len(pilot.present)
                assert here == 14 - 3  # round(0.2 * 13) stay away
                wait_for(lambda: sum(s.deputy is not None for s in engine.snapshot().seats) == here, what="cards")
                assert engine.execute(ev.OpenRegistration()).accepted
                wait_for(lambda: engine.snapshot().registered == here, timeout=15, what="everyone registered")
                assert engine.execute(ev.CloseRegistration()).accepted
                assert engine.snapshot().quorum

                assert engine.execute(ev.OpenVote(title="Про бюджет", duration_s=0)).accepted
                settle(pilot, r.Mode.VOTE_YES_NO, "the vote's presses")
                votes = pilot.actions("vote")
                wait_for(lambda: _cast(engine.snapshot()) == len(votes), timeout=15, what="every choice counted")
                assert engine.execute(ev.CloseVote()).accepted
                vote = engine.snapshot().vote
                assert vote is not None and vote.counts is not None
                assert vote.counts == tuple(sum(a.key is key for a in votes) for key in (Key.YES, Key.NO, Key.ABSTAIN))

                assert engine.execute(ev.AnnounceResult()).accepted
                assert engine.execute(ev.ClearResult()).accepted
                proposals = ("Варіант А", "Варіант Б", "Варіант В")
                opened = engine.execute(ev.OpenVote(kind=VoteKind.RATING, proposals=proposals, duration_s=0))
                assert opened.accepted
                settle(pilot, r.Mode.VOTE_RATING, "the rating vote's presses")
                rating = pilot.actions("rating")
                assert rating and all(a.seat not in GENERIC for a in rating)  # generic modules have no P keys
                wait_for(lambda: _cast(engine.snapshot()) == len(rating), timeout=15, what="every rating counted")
                assert engine.snapshot().phase is Phase.VOTE_OPEN
            assert pilot.errors == []
            assert engine.snapshot().rejections == 0
        finally:
            ctl.stop()


def _cast(snapshot: Snapshot) -> int:
    return 0 if snapshot.vote is None else snapshot.vote.cast

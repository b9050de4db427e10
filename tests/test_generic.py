"""The generic profile (off-the-shelf DI/DO modules, register map section 8), end to end.

The real controller (engine, line loops, serial transport) runs against hardware_sim over ptys, as in
test_bus.py, with a small council written here: line "M" mixes three generic modules and two native
consoles (the chair among them), line "G" has generic modules only.  Waits are bounded polls of
observable state.  The decoder is also tested through the real line machine with time passed in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from line_harness import Driver, FakeModule
from waiting import wait_for

from chamber.config import Config, load_config
from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.events import decode_input
from chamber.core.values import Key
from chamber.daemon import Controller, start_controller
from hardware_sim.generic import GenericModuleModel
from hardware_sim.simulator import Simulator
from terminals import generic, rtu
from terminals.machine import LineMachine
from terminals.registers import Led, Mode

CONFIG = """
[council]
name = "Тестова селищна рада"
composition = 7

[[lines]]
id = "M"
port = "/dev/null-M"
baud = 115200

[[lines]]
id = "G"
port = "/dev/null-G"
baud = 115200

[[seats]]
id = 1
line = "M"
unit = 1
profile = "generic"
presence_sensor = true

[[seats]]
id = 2
line = "M"
unit = 2
profile = "generic"

[[seats]]
id = 3
line = "M"
unit = 3
profile = "generic"

[[seats]]
id = 4
line = "M"
unit = 4

[[seats]]
id = 5
line = "M"
unit = 5
chair = true

[[seats]]
id = 6
line = "G"
unit = 1
profile = "generic"

[[seats]]
id = 7
line = "G"
unit = 2
profile = "generic"

[[deputies]]
id = 1
full_name = "Коваленко Олена Петрівна"
cards = ["0A000001", "0A0000F1"]
seat = 1

[[deputies]]
id = 2
full_name = "Бондаренко Андрій Миколайович"
cards = ["0A000002"]
seat = 2

[[deputies]]
id = 3
full_name = "Шевчук Олександр Іванович"
cards = ["0A000003"]
seat = 3

[[deputies]]
id = 4
full_name = "Мельник Ірина Василівна"
cards = ["0A000004"]
seat = 4

[[deputies]]
id = 5
full_name = "Ткаченко Петро Олексійович"
cards = ["0A000005"]
seat = 5
role = "head"

[[deputies]]
id = 6
full_name = "Кравченко Марія Іванівна"
cards = ["0A000006"]
seat = 6

[[deputies]]
id = 7
full_name = "Олійник Сергій Петрович"
cards = ["0A000007"]
seat = 7
"""

GENERIC = (1, 2, 3, 6, 7)
NATIVE = (4, 5)
ALL = GENERIC + NATIVE


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = tmp_path_factory.mktemp("generic") / "council.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


@pytest.fixture
def chamber(config: Config, tmp_path: Path) -> Iterator[tuple[Simulator, Controller]]:
    sim = Simulator(config, wire_time=False, seed=5)
    sim.start()
    ctl = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True)
    try:
        yield sim, ctl
    finally:
        ctl.stop()
        sim.stop()


def card_of(config: Config, seat: int) -> str:
    return next(d.cards[0] for d in config.deputies if d.seat == seat)


def leds(sim: Simulator, seat: int) -> int:
    return sim.console(seat).state().leds


def seat_view(ctl: Controller, seat: int) -> Any:
    return ctl.engine.snapshot().seats[seat - 1]


def cards_in(sim: Simulator, ctl: Controller, config: Config, seats: tuple[int, ...] = ALL) -> None:
    for seat in seats:
        # a generic module sees only "a card is in": any card at the seat stands for the assigned deputy's
        sim.insert_card(seat, card_of(config, seat))
    wait_for(lambda: all(seat_view(ctl, s).deputy == s for s in seats), what="cards accepted")


def registered(sim: Simulator, ctl: Controller, config: Config) -> None:
    cards_in(sim, ctl, config)
    engine = ctl.engine
    assert engine.execute(ev.OpenRegistration()).accepted
    wait_for(lambda: all(sim.console(s).state().mode == Mode.REGISTRATION for s in NATIVE), what="registration mode")
    for seat in ALL:
        assert sim.press(seat, Key.REGISTER)
    wait_for(lambda: engine.snapshot().registered == len(ALL), what="registrations")
    assert engine.execute(ev.CloseRegistration()).accepted


def journaled_presses(ctl: Controller) -> list[ev.KeyPressed]:
    out = []
    for rec in ctl.journal.records(ctl.engine.sitting_uid or ""):
        if rec.type == "KeyPressed":
            event = decode_input(rec.payload)
            assert isinstance(event, ev.KeyPressed)
            out.append(event)
    return out


# --------------------------------------------------------------------------- end to end


def test_card_switch_seats_the_assigned_deputy(chamber: tuple[Simulator, Controller], config: Config) -> None:
    sim, ctl = chamber
    sim.insert_card(2, "DEADBEEF")  # whatever is in the slot: the module cannot tell
    wait_for(lambda: seat_view(ctl, 2).deputy == 2, what="deputy 2 seated")
    assert sim.module(2).inputs() & generic.DI_CARD
    sim.set_presence(1, True)
    wait_for(lambda: seat_view(ctl, 1).present, what="presence at seat 1")
    sim.remove_card(2)
    wait_for(lambda: seat_view(ctl, 2).deputy is None, what="card out")
    sim.insert_card(2, "")
    wait_for(lambda: seat_view(ctl, 2).deputy == 2, what="deputy 2 seated again")


def test_registration_and_vote_on_a_mixed_line(chamber: tuple[Simulator, Controller], config: Config) -> None:
    sim, ctl = chamber
    registered(sim, ctl, config)
    engine = ctl.engine
    for seat in ALL:  # the registered LED: a coil at a module, a LEDS bit at a console
        wait_for(lambda seat=seat: bool(leds(sim, seat) & Led.REGISTERED), what=f"registered LED at {seat}")
    assert engine.execute(ev.OpenVote(title="Про бюджет", duration_s=0)).accepted
    wait_for(lambda: all(sim.console(s).state().mode == Mode.VOTE_YES_NO for s in NATIVE), what="vote mode")
    choices = {1: Key.YES, 2: Key.NO, 3: Key.ABSTAIN, 4: Key.YES, 5: Key.YES, 6: Key.YES, 7: Key.NO}
    for seat, key in choices.items():
        assert sim.press(seat, key)
    wait_for(lambda: engine.snapshot().vote.cast == len(ALL), what="every choice")  # type: ignore[union-attr]
    lit = {Key.YES: Led.YES, Key.NO: Led.NO, Key.ABSTAIN: Led.ABSTAIN}
    for seat, key in choices.items():
        wait_for(lambda seat=seat, key=key: leds(sim, seat) & Led.CHOICES == lit[key], what=f"choice LED at {seat}")
    # a change of mind moves the LED from one coil to another
    assert sim.press(1, Key.NO)
    wait_for(lambda: leds(sim, 1) & Led.CHOICES == Led.NO, what="changed choice LED")
    assert engine.execute(ev.CloseVote()).accepted
    result = engine.sitting.results[1]
    assert result.counts == (3, 3, 1)
    # no broadcast reaches a module: the controller cleared the choice LEDs module by module
    for seat in ALL:
        wait_for(lambda seat=seat: not leds(sim, seat) & Led.CHOICES, what=f"choice LED off at {seat}")
    # no line with a module on it gets a broadcast: a module would hear a unit-0 register write too
    assert sim.stats()["G"]["broadcasts"] == 0
    assert sim.stats()["M"]["broadcasts"] == 0
    presses = [p for p in journaled_presses(ctl) if p.seat in GENERIC]
    assert presses and all(p.seq is None for p in presses)  # a module numbers nothing
    assert len(presses) == 2 * len(GENERIC) + 1  # one REGISTER and one choice each, plus the change


def test_mic_coil_follows_the_floor(chamber: tuple[Simulator, Controller], config: Config) -> None:
    sim, ctl = chamber
    cards_in(sim, ctl, config)
    engine = ctl.engine
    assert sim.press(3, Key.SPEAK)
    wait_for(lambda: bool(leds(sim, 3) & Led.REQUEST), what="request ring coil")
    assert engine.execute(ev.NextSpeaker()).accepted
    wait_for(lambda: sim.console(3).state().mic, what="microphone relay on")
    assert leds(sim, 3) & Led.MIC and not leds(sim, 3) & Led.REQUEST
    assert sim.module(3).coils() & (1 << generic.MIC_COIL)
    assert engine.execute(ev.RevokeFloor(seat=3)).accepted
    wait_for(lambda: not sim.console(3).state().mic, what="microphone relay off")
    assert engine.execute(ev.GrantFloor(seat=6)).accepted  # the chair gives the floor directly
    wait_for(lambda: sim.console(6).state().mic, what="microphone relay on at seat 6")
    assert engine.execute(ev.RevokeFloor(seat=6)).accepted
    wait_for(lambda: not sim.console(6).state().mic and not leds(sim, 6) & Led.MIC, what="seat 6 off")


def test_dead_module_is_flagged_offline_and_comes_back(chamber: tuple[Simulator, Controller], config: Config) -> None:
    sim, ctl = chamber
    registered(sim, ctl, config)
    engine = ctl.engine
    dead = 2
    wait_for(lambda: bool(leds(sim, dead) & Led.REGISTERED), what="registered LED")
    assert engine.execute(ev.OpenVote(duration_s=0)).accepted
    sim.set_fault("M", sim.module(dead).unit, dead=True)
    wait_for(lambda: not seat_view(ctl, dead).online, what="module offline")
    sim.module(dead).power_cycle()  # meanwhile its coils drop
    assert not leds(sim, dead)
    for seat in ALL:
        if seat != dead:
            sim.press(seat, Key.YES)
    wait_for(lambda: engine.snapshot().vote.cast == len(ALL) - 1, what="the others' votes")  # type: ignore[union-attr]
    assert ctl.lines["M"].stats.errors["timeout"] >= 3  # retries were spent before the verdict
    sim.clear_faults("M", sim.module(dead).unit)
    wait_for(lambda: seat_view(ctl, dead).online, timeout=20, what="module back online")
    wait_for(lambda: seat_view(ctl, dead).deputy == dead, what="card reported again")
    wait_for(lambda: bool(leds(sim, dead) & Led.REGISTERED), what="coils rewritten")
    sim.press(dead, Key.NO)
    wait_for(lambda: engine.snapshot().vote.cast == len(ALL), what="the returning seat's vote")  # type: ignore[union-attr]
    assert engine.execute(ev.CloseVote()).accepted
    assert engine.sitting.results[1].counts == (len(ALL) - 1, 1, 0)


def test_a_module_that_loses_power_gets_its_coils_back(chamber: tuple[Simulator, Controller], config: Config) -> None:
    """A module has no restart flag: the read-back round finds the dark coils and rewrites them."""
    sim, ctl = chamber
    line = ctl.lines["M"]
    line.readback.gap_s = 0.05  # the round shortened for the test (5 s per module by default)
    registered(sim, ctl, config)
    wait_for(lambda: bool(leds(sim, 1) & Led.REGISTERED), what="registered LED")
    sim.module(1).power_cycle()  # shorter than a poll: the module never stops answering
    assert not leds(sim, 1)
    wait_for(lambda: bool(leds(sim, 1) & Led.REGISTERED), what="coils rewritten")
    assert line.stats.errors["output_lost"] == 1
    assert seat_view(ctl, 1).online  # nothing else happened to the seat


def test_a_press_between_two_polls_is_missed(chamber: tuple[Simulator, Controller], config: Config) -> None:
    """The profile's stated limit, made deterministic: the key goes down and up while the bus is busy
    with another unit's request (the hook runs on the wire thread before that request is served, so
    the module cannot be polled in between).  A native console latches the same press in its FIFO."""
    sim, ctl = chamber
    registered(sim, ctl, config)
    engine = ctl.engine
    assert engine.execute(ev.OpenVote(duration_s=0)).accepted
    module = sim.module(1)
    console = sim.console(4)
    done = threading.Event()

    def blink(unit: int, frame: bytes) -> None:
        if unit == 5 and not done.is_set():  # the chair console's poll: seats 1 and 4 are idle
            module.key_down(Key.YES)
            module.key_up(Key.YES)
            console.press(Key.YES)
            done.set()

    sim.set_request_hook("M", blink)
    wait_for(done.is_set, what="the blink")
    sim.set_request_hook("M", None)
    wait_for(lambda: engine.snapshot().vote.cast == 1, what="the native console's latched press")  # type: ignore[union-attr]
    polls = ctl.lines["M"].stats.polls
    wait_for(lambda: ctl.lines["M"].stats.polls >= polls + 5 * 5, what="five more cycles")
    assert engine.sitting.vote is not None and 1 not in engine.sitting.vote.choices
    assert 4 in engine.sitting.vote.choices


# --------------------------------------------------------------------------- the decoder on its own


def test_the_machine_makes_events_from_edges_and_writes_the_coils() -> None:
    """The real line machine polling a module (``line_harness.FakeModule``), with time passed in."""
    link = generic.GenericLink(seat=9, unit=3, card_uid="0A000009")
    assert link.poll == rtu.read_bits(3, 0, 7, function=2) and link.poll_len == 6
    module = FakeModule(3)
    drv = Driver(LineMachine("G", [link], baud=115200, timeout_s=0.01), [module])
    yes, register, card, presence = 1 << 0, 1 << 3, generic.DI_CARD, generic.DI_PRESENCE
    module.inputs = yes | card
    drv.run(0.02)  # first look: the held key is no press, the card is in
    assert drv.events == [
        ev.PresenceChanged(seat=9, present=False),
        ev.CardInserted(seat=9, uid="0A000009"),
    ]
    assert drv.frames_to(3, 15) and link.coils_written == 0  # coils never written: written once
    drv.events.clear()
    module.inputs = card
    drv.run(0.02)  # key released: nothing
    module.inputs = card | register | yes | presence
    drv.run(0.02)  # two rising edges at once
    assert drv.events == [
        ev.PresenceChanged(seat=9, present=True),
        ev.KeyPressed(seat=9, key=Key.YES, seq=None),
        ev.KeyPressed(seat=9, key=Key.REGISTER, seq=None),
    ]
    drv.events.clear()
    module.inputs = register | yes | presence
    drv.run(0.02)  # card out, keys still held
    assert drv.events == [ev.CardRemoved(seat=9)]
    drv.m.post_effect(fx.MicOn(seat=9))
    drv.run(0.02)
    assert module.coils == int(Led.MIC) | 1 << generic.MIC_COIL
    drv.m.post_effect(fx.ModeChanged(mode=fx.Mode.VOTE_YES_NO))
    drv.run(0.02)
    assert drv.frames_to(0) == []  # no broadcast reaches a module


def test_outputs_map_to_coils_and_mode_changes_clear_choices() -> None:
    link = generic.GenericLink(seat=9, unit=3, card_uid="0A000009")
    assert link.apply_effect(fx.Registered(seat=9, deputy=9))
    assert link.apply_effect(fx.MicOn(seat=9))
    assert not link.apply_effect(fx.ConsoleText(seat=9, text="Привіт"))  # no text line
    assert link.coils() == int(Led.REGISTERED | Led.MIC) | 1 << generic.MIC_COIL
    frame = rtu.write_coils(3, 0, generic.coil_bits(link.coils()))
    assert frame[:7] == bytes([3, 15, 0, 0, 0, 7, 1]) and frame[7] == 0b1101000
    link.coils_written = link.coils()
    assert not link.set_mode(0x0002)  # no choice lit: nothing to write
    link.leds |= Led.YES
    link.coils_written = link.coils()
    assert link.set_mode(0x0000) and not link.coils() & Led.CHOICES


def test_module_model_serves_function_02_and_15_through_pymodbus_addressing() -> None:
    import asyncio

    module = GenericModuleModel(1, hold_s=0.05)
    regs = [0, 0]
    module.insert_card("")
    assert module.press(Key.SPEAK) and not module.press(Key.SPEAK)  # still held: no second edge
    assert asyncio.run(module.action(2, 0, 0, 1, regs, None)) is None
    assert regs[0] == generic.DI_CARD | 1 << 4
    assert asyncio.run(module.action(15, 0, 0, 1, regs, [True, False, False, False, False, True, True])) is None
    assert module.coils() == 0b1100001
    assert module.state().leds == Led.YES | Led.MIC and module.state().mic
    assert asyncio.run(module.action(2, 0, 8, 1, regs, None)) is not None  # DI 8: not on the module
    assert asyncio.run(module.action(3, 0, 0, 1, regs, None)) is not None  # no holding registers
    wait_for(lambda: not module.inputs() & 1 << 4, timeout=2, what="the key let go")
    with pytest.raises(ValueError):
        module.press(Key.P1)


def test_a_card_pulled_from_a_module_while_the_controller_was_down_does_not_vote(
    chamber: tuple[Simulator, Controller], config: Config, tmp_path: Path
) -> None:
    sim, ctl = chamber
    registered(sim, ctl, config)
    assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
    ctl.stop()
    sim.remove_card(2)
    ctl2 = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}")
    try:
        wait_for(lambda: seat_view(ctl2, 2).deputy is None, what="the empty slot seen")
        wait_for(lambda: not leds(sim, 2) & (Led.REGISTERED | Led.CARD_OK), what="its LEDs dark")
        assert sim.press(2, Key.YES)
        wait_for(lambda: seat_view(ctl2, 2).rejected >= 1, what="the press refused")
        assert ctl2.engine.snapshot().vote.cast == 0  # type: ignore[union-attr]
    finally:
        ctl2.stop()


def test_a_power_cut_of_the_whole_mixed_hall_loses_no_press(config: Config, tmp_path: Path) -> None:
    """Controller, modules and native consoles lose power together in an open vote and come back: the
    vote resumes, the LEDs are restated, and a press at every kind of seat counts."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    sim = Simulator(config, wire_time=False, seed=5)
    sim.start()
    ctl = start_controller(config, ports=dict(sim.lines), store_url=url, open_sitting=True)
    try:
        registered(sim, ctl, config)
        assert ctl.engine.execute(ev.OpenVote(duration_s=0)).accepted
        for seat in ALL:
            assert sim.press(seat, Key.YES)
        wait_for(lambda: ctl.engine.snapshot().vote.cast == len(ALL), what="every choice")  # type: ignore[union-attr]
        ctl.stop()
        for seat in ALL:
            sim.console(seat).power_off()
        for seat in ALL:
            sim.console(seat).power_on()
        assert not any(leds(sim, s) for s in ALL)  # dark, the cards still in
        ctl = start_controller(config, ports=dict(sim.lines), store_url=url)
        engine = ctl.engine
        assert engine.snapshot().phase == "vote_open"
        wait_for(lambda: all(leds(sim, s) & Led.YES for s in ALL), what="the journal's choices shown again")
        for seat in ALL:
            assert sim.press(seat, Key.NO)
        wait_for(
            lambda: engine.sitting.vote is not None and all(engine.sitting.vote.choices.get(s) == 1 for s in ALL),
            what="every change of mind counted",
        )
        assert not any(s.rejected for s in engine.snapshot().seats)
        assert engine.execute(ev.CloseVote()).accepted
        assert engine.sitting.results[1].counts == (0, len(ALL), 0)
    finally:
        ctl.stop()
        sim.stop()

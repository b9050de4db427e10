"""More of the bus through real frames: the chair console's keys, a separate microphone unit, a TCP gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from waiting import wait_for

from chamber.config import load_config, parse_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.daemon import start_controller
from hardware_sim.simulator import Simulator
from terminals import readback

ROOT = Path(__file__).resolve().parent.parent


def test_chair_priority_key_mutes_every_deputy_and_next_key_gives_the_floor(tmp_path: Path) -> None:
    config = load_config(ROOT / "config.toml")
    chair = next(s.id for s in config.seats if s.chair)
    with Simulator(config) as sim:
        ctl = start_controller(
            config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True
        )
        engine = ctl.engine
        try:
            for d in config.deputies:
                assert d.seat is not None
                sim.insert_card(d.seat, d.cards[0])
            wait_for(lambda: all(s.deputy is not None for s in engine.snapshot().seats), what="cards")
            for seat in (3, 4):
                assert engine.execute(ev.GrantFloor(seat=seat)).accepted
            wait_for(lambda: sim.console(3).state().mic and sim.console(4).state().mic, what="two microphones on")
            sim.press(chair, Key.PRIORITY)
            wait_for(lambda: not sim.console(3).state().mic and not sim.console(4).state().mic, what="muted")
            wait_for(
                lambda: [s.ended_by for s in engine.snapshot().speeches] == ["chair_priority", "chair_priority"],
                what="both speeches logged as ended by the chair",
            )
            sim.press(7, Key.SPEAK)
            wait_for(lambda: len(engine.snapshot().queue) == 1, what="a request in the queue")
            sim.press(chair, Key.NEXT)
            wait_for(lambda: sim.console(7).state().mic, what="the next speaker's microphone")
        finally:
            ctl.stop()


SMALL = """
[council]
name = "Тестова рада"
composition = 3
head_votes = true
head_in_composition = false

[[lines]]
id = "A"
port = "/dev/ttyUSB0"
baud = 115200

[[seats]]
id = 1
line = "A"
unit = 1
mic_unit = 11

[[seats]]
id = 2
line = "A"
unit = 2

[[seats]]
id = 3
line = "A"
unit = 3

[[deputies]]
id = 1
full_name = "Перша Депутатка"
cards = ["0A000001"]
seat = 1

[[deputies]]
id = 2
full_name = "Другий Депутат"
cards = ["0A000002"]
seat = 2

[[deputies]]
id = 3
full_name = "Третя Депутатка"
cards = ["0A000003"]
seat = 3
"""


def test_a_separate_microphone_unit_is_switched_by_its_own_unit_id(tmp_path: Path) -> None:
    config = parse_config(SMALL, str(tmp_path / "small.toml"))
    with Simulator(config) as sim:
        ctl = start_controller(
            config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True
        )
        try:
            mic = sim.mic_unit(1)
            assert mic is not None
            assert ctl.engine.execute(ev.GrantFloor(seat=1)).accepted
            wait_for(lambda: mic.state().mic, what="the microphone unit on")
            assert not sim.console(1).state().mic  # the console's own MIC register is not the one
            assert ctl.engine.execute(ev.RevokeFloor(seat=1)).accepted
            wait_for(lambda: not mic.state().mic, what="the microphone unit off")
        finally:
            ctl.stop()


def test_a_microphone_unit_that_restarts_or_dies_is_noticed_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readback, "READBACK_S", 0.2)  # the round of read-backs, shortened for the test
    config = parse_config(SMALL, str(tmp_path / "small.toml"))
    with Simulator(config) as sim:
        ctl = start_controller(
            config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True
        )
        engine = ctl.engine
        line = ctl.lines["A"]
        link = line.by_seat[1]
        requests: list[int] = []
        sim.set_request_hook("A", lambda unit, frame: requests.append(unit))
        try:
            mic = sim.mic_unit(1)
            assert mic is not None
            assert engine.execute(ev.GrantFloor(seat=1)).accepted
            wait_for(lambda: mic.state().mic, what="the microphone unit on")
            # a power cut at the unit: it comes back with MIC off and nothing on the bus says so
            mic.power_cycle()
            assert not mic.state().mic
            wait_for(lambda: mic.state().mic, what="the microphone switched on again")
            assert line.stats.errors["output_lost"] >= 1
            # the unit dies: reported once, writes to it stop, the seat's console stays in service
            sim.set_fault("A", 11, dead=True)
            wait_for(lambda: not link.mic_online, what="the microphone unit reported")
            assert line.stats.errors["mic_unit_offline"] == 1
            # ... to the secretary too: an alert while the deputy has the floor, and the seat map shows it
            wait_for(lambda: not engine.snapshot().seats[0].mic_ok, what="the seat's microphone marked silent")
            alerts = engine.snapshot().alerts
            assert engine.execute(ev.RevokeFloor(seat=1)).accepted
            assert engine.execute(ev.GrantFloor(seat=1)).accepted
            sim.insert_card(1, "0A000001")
            wait_for(lambda: engine.snapshot().seats[0].deputy == 1, what="the seat's console still read")
            assert engine.snapshot().seats[0].online
            requests.clear()
            wait_for(lambda: requests.count(1) >= 20, what="polls of the seat's console")
            assert requests.count(11) <= 2  # one single-try read-back per round, no write retried each turn
            # it comes back (after a power cut: MIC 0) and gets the microphone it should have
            mic.power_cycle()
            sim.clear_faults("A", 11)
            wait_for(lambda: link.mic_online and mic.state().mic, what="the unit back and switched on")
            assert line.stats.errors["mic_unit_offline"] == 1
            wait_for(lambda: engine.snapshot().seats[0].mic_ok, what="the seat's microphone marked working")
            assert engine.snapshot().alerts == alerts  # one alert for the one failure
            offline = [r.payload for r in ctl.journal.records(engine.sitting_uid or "") if r.type == "MicUnitChanged"]
            assert [b'"online":false' in p for p in offline] == [True, False]
        finally:
            sim.set_request_hook("A", None)
            ctl.stop()


def test_consoles_dead_before_the_sitting_opens_are_shown_offline_in_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found dead with no sitting open, the report is refused (no roster yet); the sitting that opens
    later must still learn of it, or it shows the seat online all day."""
    monkeypatch.setattr(readback, "READBACK_S", 0.2)
    config = parse_config(SMALL, str(tmp_path / "small.toml"))
    with Simulator(config) as sim:
        sim.set_fault("A", 2, dead=True)  # seat 2's console
        sim.set_fault("A", 11, dead=True)  # seat 1's microphone unit
        ctl = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}")
        engine = ctl.engine
        try:
            line = ctl.lines["A"]
            wait_for(lambda: not line.by_seat[2].online and not line.by_seat[1].mic_online, what="found dead")
            assert engine.execute(ev.OpenSitting(roster=config.roster(), number=1)).accepted
            wait_for(lambda: not engine.snapshot().seats[1].online, what="seat 2 offline in the sitting")
            wait_for(lambda: not engine.snapshot().seats[0].mic_ok, what="seat 1's microphone silent")
            assert engine.snapshot().seats[0].online and engine.snapshot().seats[2].online
            assert engine.snapshot().alerts == 2
        finally:
            ctl.stop()


def test_rtu_over_tcp_gateway(tmp_path: Path) -> None:
    config = parse_config(SMALL, str(tmp_path / "small.toml"))
    with Simulator(config, tcp=True) as sim:
        address = sim.lines["A"]
        assert address.startswith("127.0.0.1:")
        ctl = start_controller(
            config, ports={"A": address}, store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True
        )
        engine = ctl.engine
        try:
            for seat in (1, 2, 3):
                sim.insert_card(seat, f"0A00000{seat}")
            wait_for(lambda: all(s.deputy is not None for s in engine.snapshot().seats), what="cards over TCP")
            assert engine.execute(ev.OpenRegistration()).accepted
            for seat in (1, 2, 3):
                sim.press(seat, Key.REGISTER)
            wait_for(lambda: engine.snapshot().registered == 3, what="registrations over TCP")
        finally:
            ctl.stop()

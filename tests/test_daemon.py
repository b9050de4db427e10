"""The daemon as the IT person runs it, and a USB adapter that is unplugged and plugged back in."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from waiting import wait_for

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.daemon import Controller, line_health, start_controller
from chamber.journal import Journal
from hardware_sim.simulator import Simulator
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.registers import Mode

ROOT = Path(__file__).resolve().parent.parent


def config_copy(tmp_path: Path) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(text.replace('url = "sqlite:///var/chamber.db"', 'url = "sqlite:///state/chamber.db"'))
    return path


def test_chamber_run_simulate_starts_journals_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = config_copy(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chamber.cli", "run", "--config", str(cfg), "--simulate", "--open-sitting"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    log: list[str] = []
    deadline = time.monotonic() + 30
    for line in proc.stderr:
        log.append(line)
        if "controller running" in line:
            break
        assert time.monotonic() < deadline, "".join(log)
    assert any("simulated line A" in line for line in log), "".join(log)
    # the simulated chamber can be pressed: its press API is up and says where
    [url] = [m.group(0) for line in log if (m := re.search(r"http://127\.0\.0\.1:\d+", line))]
    deputy = load_config(cfg).deputies[0]
    body = json.dumps({"seat": deputy.seat, "uid": deputy.cards[0]}).encode()
    request = urllib.request.Request(url + "/card", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    time.sleep(1.0)  # let the lines poll
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=20)[1]
    assert proc.returncode == 0, "".join(log) + rest
    assert "stopped" in rest
    # the IT person's view of the bus, once more at the end
    totals = [line for line in rest.splitlines() if "totals: line A:" in line]
    assert totals and "consoles answering" in totals[0] and "cycle median" in totals[0], rest
    journal = Journal(f"sqlite:///{tmp_path / 'state' / 'chamber.db'}")
    try:
        [uid] = journal.sittings()
        types = [r.type for r in journal.records(uid)]
        assert types[0] == "OpenSitting"
        assert "CardInserted" in types  # the card put in through the press API reached the journal
        assert not journal.verify()
    finally:
        journal.close()


def test_a_sigterm_while_the_daemon_starts_is_a_clean_stop(tmp_path: Path) -> None:
    """The signal arrives while the simulator is up and the controller is not yet: whatever started
    is stopped, and the exit is 0, not death by the default handler."""
    cfg = config_copy(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chamber.cli", "run", "--config", str(cfg), "--simulate"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    log: list[str] = []
    for line in proc.stderr:
        log.append(line)
        if "simulated line A" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, "".join(log) + rest
    assert "stopping" in rest and "stopped" in rest, rest


def carded_chamber_behind_links(tmp_path: Path) -> tuple[Config, Simulator, Controller, dict[int, str]]:
    """The example chamber simulated behind stable names (as /dev/serial/by-id gives), every card in."""
    config = load_config(ROOT / "config.toml")
    links = tmp_path / "sim"
    sim = Simulator(config, link_dir=links)
    sim.start()
    ports = {line_id: str(links / f"line-{line_id}") for line_id in sim.lines}
    ctl = start_controller(config, ports=ports, store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True)
    cards = {d.seat: d.cards[0] for d in config.deputies if d.seat is not None}
    for seat, uid in cards.items():
        sim.insert_card(seat, uid)
    try:
        wait_for(lambda: all(s.deputy is not None for s in ctl.engine.snapshot().seats), what="cards")
    except BaseException:
        ctl.stop()
        sim.stop()
        raise
    return config, sim, ctl, cards


def test_unplugged_adapter_comes_back_and_no_press_is_lost(tmp_path: Path) -> None:
    config, sim, ctl, cards = carded_chamber_behind_links(tmp_path)
    links = tmp_path / "sim"
    engine = ctl.engine
    try:
        sim.stop()  # every adapter unplugged: the ptys vanish under the controller
        wait_for(lambda: not any(s.online for s in engine.snapshot().seats), timeout=25, what="all seats offline")
        assert all(line.stats.errors["line_down"] >= 1 for line in ctl.lines.values())

        sim = Simulator(config, link_dir=links)  # plugged back in: new devices behind the same names
        sim.start()
        for seat, uid in cards.items():
            sim.insert_card(seat, uid)
        wait_for(lambda: all(s.online for s in engine.snapshot().seats), timeout=25, what="all seats back online")
        wait_for(lambda: all(s.deputy is not None for s in engine.snapshot().seats), what="cards again")
        assert engine.execute(ev.OpenRegistration()).accepted
        for seat in cards:
            sim.press(seat, Key.REGISTER)
        wait_for(lambda: engine.snapshot().registered == len(cards), what="every registration")
    finally:
        ctl.stop()
        sim.stop()


def test_presses_made_while_the_adapter_is_out_are_read_when_it_is_back(tmp_path: Path) -> None:
    """The consoles keep their power and their event FIFO when only the USB adapter is pulled: every
    registration pressed meanwhile is journaled once it is back, and none twice."""
    _, sim, ctl, cards = carded_chamber_behind_links(tmp_path)
    engine = ctl.engine
    try:
        assert engine.execute(ev.OpenRegistration()).accepted
        wait_for(lambda: all(sim.console(s).state().mode == Mode.REGISTRATION for s in cards), what="mode")
        sim.stop()  # the adapters out; the consoles (the same models) stay powered
        wait_for(lambda: not any(s.online for s in engine.snapshot().seats), timeout=25, what="all seats offline")
        for seat in cards:
            assert sim.press(seat, Key.REGISTER)  # held in the console's FIFO
        assert engine.snapshot().registered == 0
        sim.start()  # plugged back in
        wait_for(lambda: engine.snapshot().registered == len(cards), timeout=25, what="every held registration")
        wait_for(lambda: all(not sim.console(s).state().pending for s in cards), what="acknowledged: FIFOs empty")
        uid = engine.sitting_uid or ""
        presses = [r for r in ctl.journal.records(uid) if r.type == "KeyPressed"]
        assert len(presses) == len(cards)
    finally:
        ctl.stop()
        sim.stop()


def test_line_health_names_what_the_it_person_must_act_on() -> None:
    links = [ConsoleLink(1, 1), ConsoleLink(2, 2, mic_unit=12), ConsoleLink(3, 3)]
    loop = LineMachine("A", links, baud=115200)
    assert line_health(loop) == (
        "line A: 3 of 3 consoles answering; no full cycle yet; 0 polls, 0 writes, 0 broadcasts; errors: none"
    )
    links[0].online = False
    links[1].mic_online = False
    loop.stats.errors["timeout"] += 4
    loop.stats.errors["crc"] += 0  # a kind that never happened is not listed
    for seconds in (0.1, 0.3, 0.2):
        loop.record_cycle(seconds)
    assert line_health(loop) == (
        "line A: 2 of 3 consoles answering; cycle median 200.0 ms; 0 polls, 0 writes, 0 broadcasts; "
        "errors: timeout 4; offline seats 1; microphone units not answering at seats 2"
    )
    assert "no full cycle yet" in line_health(loop, since_cycle=3)

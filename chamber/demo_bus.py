"""``chamber demo --bus``: the scripted sitting through simulated consoles on virtual RS-485 lines.

The same sitting as ``chamber demo``, but nobody calls the engine for a
deputy: simulated deputies (hardware_sim) insert cards and press keys on
consoles that are Modbus RTU slaves on ptys with wire timing, and the real
controller — line loops, engine, journal — polls them, exactly as in the hall.
Votes close by their own timer; the second speech is cut off by its time
limit.  Real time passes (about half a minute), so the console LEDs can be
watched in ``chamber sim state`` meanwhile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from chamber.config import ConfigError, load_config
from chamber.core import events as ev
from chamber.core.phases import Phase
from chamber.core.roster import Roster
from chamber.core.values import VoteSubject
from chamber.daemon import start_controller
from chamber.demo import holds_sittings, report
from chamber.engine import Engine
from chamber.journal import Journal
from chamber.report import describe_snapshot
from hardware_sim.deputies import Deputies
from hardware_sim.simulator import Simulator
from terminals.registers import Led

VOTE_S = 8


#: the console's LEDs as the demo names them (read back from the simulated console's registers)
LED_NAMES = {
    Led.YES: "За / yes",
    Led.NO: "Проти / no",
    Led.ABSTAIN: "Утримався / abstain",
    Led.REGISTERED: "зареєстровано / registered",
    Led.REQUEST: "запит слова / request",
    Led.MIC: "мікрофон / microphone",
    Led.WARN: "час спливає / time warning",
    Led.CARD_OK: "картку прийнято / card accepted",
}


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"the simulated chamber did not reach {what} in {timeout:.0f} s")
        time.sleep(0.05)


def run_bus_demo(config_path: str, db_url: str | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    roster = config.roster()
    if db_url is None:
        Path("var").mkdir(exist_ok=True)
        db_url = f"sqlite:///{Path('var') / time.strftime('demo-bus-%Y%m%d-%H%M%S.db')}"
    print(f"Журнал / journal: {db_url}")
    journal = Journal(db_url)
    try:
        if holds_sittings(journal, db_url):
            return 2
    finally:
        journal.close()
    with Simulator(config, wire_time=True) as sim:
        for line_id, path in sim.lines.items():
            print(f"Лінія / line {line_id}: {path} (Modbus RTU, emulated wire timing)")
        ctl = start_controller(config, ports=dict(sim.lines), store_url=db_url)
        engine = ctl.engine
        try:
            live = _sitting(sim, engine, roster)
        finally:
            ctl.stop()
    journal = Journal(db_url)
    try:
        return 0 if report(journal, roster, live, db_url) else 1
    finally:
        journal.close()


def _sitting(sim: Simulator, engine: Engine, roster: Roster) -> bytes:
    """Run the sitting; return the engine's snapshot just before it is closed."""
    deputies = Deputies(sim, seed=2024)
    engine.execute(ev.OpenSitting(roster=roster, number=1, title="Демонстраційне засідання (пульти)"))
    engine.execute(
        ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Про бюджет громади на 2027 рік", draft="757/2"),))
    )
    here = deputies.arrive(0.93)
    wait_for(lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == len(here), "cards in")
    print(f"Картки вставлено / cards in: {len(here)} з {len(roster.deputies)}")
    engine.execute(ev.OpenRegistration())
    pressed = deputies.register_all()
    wait_for(lambda: engine.snapshot().registered == pressed, "registration")
    engine.execute(ev.CloseRegistration())
    snap = engine.snapshot()
    print(f"Реєстрація / registration: {snap.registered} зареєстровано, кворум {'є' if snap.quorum else 'немає'}")
    engine.execute(ev.SetCurrentItem(number="1"))
    for subject, weights in ((VoteSubject.BASIS, (0.75, 0.1, 0.1, 0.05)), (VoteSubject.WHOLE, (0.35, 0.4, 0.2, 0.05))):
        engine.execute(ev.OpenVote(subject=subject, title="Про бюджет (проєкт № 757/2)", duration_s=VOTE_S))
        print(f"Голосування відкрито на {VOTE_S} с / vote open for {VOTE_S} s …")
        deputies.vote(*weights, reaction_s=(1.5, 0.4)).join(VOTE_S + 5)
        seat = here[0].seat
        leds = Led(sim.console(seat).state().leds)  # read back from the simulated console's registers
        lit = ", ".join(LED_NAMES[led] for led in LED_NAMES if leds & led) or "—"
        print(f"  пульт / console {seat}: горять / lit: {lit}")
        wait_for(lambda: engine.snapshot().phase is Phase.VOTE_CLOSED, "the vote's end", VOTE_S + 10)
        engine.execute(ev.AnnounceResult())
        print(describe_snapshot(engine.snapshot(), roster).splitlines()[-3])
    engine.execute(ev.ClearResult())
    deputies.request_floor(2)
    wait_for(lambda: len(engine.snapshot().queue) == 2, "two requests to speak")
    seats = [request.seat for request in engine.snapshot().queue]  # in the queue's order
    engine.execute(ev.NextSpeaker())
    wait_for(lambda: sim.console(seats[0]).state().mic, "the first microphone on")
    print(f"Слово надано / floor given: seat {seats[0]} (мікрофон увімкнено / microphone on)")
    time.sleep(2)
    engine.execute(ev.RevokeFloor(seat=seats[0]))
    engine.execute(ev.GrantFloor(seat=seats[1], limit_s=3))
    print(f"Слово надано / floor given: seat {seats[1]}, ліміт / limit 3 с")
    wait_for(lambda: len(engine.snapshot().speeches) == 2, "the time limit", 10)
    wait_for(lambda: not sim.console(seats[1]).state().mic, "the microphone off")
    print("Час вичерпано, мікрофон вимкнено / time is up, microphone off")
    engine.execute(ev.SetCurrentItem(number="1"))  # a command publishes the snapshot at once
    live = msgspec.json.encode(engine.snapshot())
    engine.execute(ev.CloseSitting())
    return live

"""``chamber demo``: a scripted sitting through the real engine and journal.

It opens a sitting with the council from config.toml, inserts the deputies'
cards (three stay away), runs a registration, a roll-call vote adopted "as a
basis", a vote "as a whole" that fails, and two speeches (one cut off by its
time limit), all through ``Engine.submit`` into a fresh SQLite journal under
var/.  Time is a manual clock moved forward step by step, so the demo takes
seconds yet the journal shows a realistic timeline.  At the end it verifies
the journal's hash chain and replays it, and shows that the replayed state is
byte-identical to the live one.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path

import msgspec

from chamber.config import ConfigError, load_config
from chamber.core import events as ev
from chamber.core.events import decode_input
from chamber.core.roster import Roster
from chamber.core.sitting import Sitting
from chamber.core.values import Key, Role, SpeechKind, VoteSubject
from chamber.engine import Engine, Outcome
from chamber.journal import Journal
from chamber.report import describe_snapshot


def wait_all(futures: Iterable[Future[Outcome]]) -> None:
    for fut in list(futures):
        fut.result(10)


class ManualClock:
    def __init__(self, start_ms: int) -> None:
        self.t = start_ms

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += int(seconds * 1000)


def holds_sittings(journal: Journal, db_url: str) -> bool:
    """The demo writes a sitting of its own; in a journal that already holds one it would resume or
    mix with it.  True (and says so) if ``journal`` is not empty."""
    sittings = journal.all_sittings()
    if sittings:
        print(
            f"chamber demo: {db_url} already holds {len(sittings)} sitting(s); the demo needs a journal of its own "
            "(leave out --db for a new file under var/)",
            file=sys.stderr,
        )
    return bool(sittings)


def run_demo(config_path: str, db_url: str | None, fast: bool = False) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    roster = config.roster()
    if db_url is None:
        var = Path("var")
        var.mkdir(exist_ok=True)
        db_url = f"sqlite:///{var / time.strftime('demo-%Y%m%d-%H%M%S.db')}"
    journal = Journal(db_url)
    if holds_sittings(journal, db_url):
        journal.close()
        return 2
    clock = ManualClock(int(time.time() * 1000))
    engine = Engine(journal, clock=clock)
    engine.start()
    pause = 0.0 if fast else 0.4
    rng = random.Random(2024)

    def say(text: str) -> None:
        print(text)
        if pause:
            time.sleep(pause)

    refused: list[str] = []

    def do(event: ev.Input, seconds: float = 1.0) -> Outcome:
        clock.advance(seconds)
        outcome = engine.execute(event)
        if not outcome.accepted and outcome.rejection is not None:
            print(f"  відхилено / rejected: {outcome.rejection.reason}: {outcome.rejection.detail}")
            refused.append(outcome.rejection.reason)  # the script never means a command to fail
        return outcome

    print(f"Журнал / journal: {db_url}")
    say(f"== {roster.council.name}: пленарне засідання (демонстрація / demo) ==")
    do(ev.OpenSitting(roster=roster, number=1, title="Демонстраційне засідання"))
    do(
        ev.SetAgenda(
            items=(
                ev.AgendaItem(number="1", title="Про бюджет міської територіальної громади на 2027 рік", draft="757/2"),
                ev.AgendaItem(number="2", title="Про перейменування вулиць", draft="758"),
            )
        )
    )
    voters = [d for d in roster.deputies if d.seat is not None and d.cards]
    away = {d.id for d in rng.sample([d for d in voters if d.role is Role.DEPUTY], 3)}
    present = [d for d in voters if d.id not in away]
    wait_all(engine.submit(ev.CardInserted(seat=d.seat, uid=d.cards[0])) for d in present if d.seat)
    say(f"Картки вставлено / cards in: {len(present)} з {len(voters)}")

    do(ev.OpenRegistration())
    wait_all(engine.submit(ev.KeyPressed(seat=d.seat, key=Key.REGISTER)) for d in present if d.seat)
    do(ev.CloseRegistration(), 30)
    snap = engine.snapshot()
    say(f"Реєстрація / registration: {snap.registered} зареєстровано, кворум {'є' if snap.quorum else 'немає'}")

    do(ev.SetCurrentItem(number="1"))
    for subject, p_yes in ((VoteSubject.BASIS, 0.8), (VoteSubject.WHOLE, 0.3)):
        do(ev.OpenVote(subject=subject, title="Про бюджет (проєкт № 757/2)"))
        presses = []
        for d in present:
            if d.seat is not None and rng.random() < 0.9:
                key = Key.YES if rng.random() < p_yes else rng.choice((Key.NO, Key.ABSTAIN))
                presses.append(engine.submit(ev.KeyPressed(seat=d.seat, key=key)))
        wait_all(presses)
        clock.advance(roster.rules.vote_duration_s)
        do(ev.Tick(), 0.1)  # the vote's time is up: it closes itself
        do(ev.AnnounceResult())
        say(describe_snapshot(engine.snapshot(), roster).splitlines()[-3])

    do(ev.SetCurrentItem(number="2"))
    speakers = [d for d in present if d.role is Role.DEPUTY][:2]
    for d in speakers:
        assert d.seat is not None
        do(ev.KeyPressed(seat=d.seat, key=Key.SPEAK), 2)
    do(ev.NextSpeaker())
    say(f"Слово надано / floor given: {speakers[0].full_name}")
    do(ev.NextSpeaker(), 95)
    say(f"Слово надано / floor given: {speakers[1].full_name}")
    clock.advance(roster.rules.speech_limits_s[SpeechKind.SPEECH] + 1)
    do(ev.Tick(), 0)
    do(ev.ClearResult())
    live = msgspec.json.encode(engine.snapshot())  # published at once after a command
    do(ev.CloseSitting(), 5)
    engine.stop()

    ok = report(journal, roster, live, db_url)
    journal.close()
    if refused:
        print(f"chamber demo: {len(refused)} command(s) of the script were refused", file=sys.stderr)
    return 0 if ok and not refused else 1


def report(journal: Journal, roster: Roster, live: bytes, db_url: str) -> bool:
    """Print the sitting as its journal tells it; True if the chain is intact and replay equals ``live``.

    ``live`` is the engine's snapshot taken just before the sitting was closed.
    """
    print()
    uid = journal.sittings()[-1]
    problems = journal.verify(uid)
    replayed = Sitting()
    records = 0
    for rec in journal.records(uid):
        replayed.apply(decode_input(rec.payload), rec.at_ms)
        records += 1
    print(describe_snapshot(replayed.snapshot(), roster, per_name=False))
    print()
    print(f"Журнал: {records} записів, перевірка ланцюжка / hash chain: {problems if problems else 'ціла / intact'}")
    before_close = Sitting()
    for rec in journal.records(uid):
        if rec.seq < records:  # everything but the closing record
            before_close.apply(decode_input(rec.payload), rec.at_ms)
    same = msgspec.json.encode(before_close.snapshot()) == live
    verdict = "так / yes" if same else "НІ / NO"
    print(f"Відтворений стан = живий стан / replayed state equals live state: {verdict}")
    print(f"Перевірити самому / check it yourself: chamber journal verify --db {db_url}")
    return not problems and same

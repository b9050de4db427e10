"""The engine: journal before effects, recovery after a crash, secret votes, store failures."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import msgspec
import pytest
from waiting import wait_for

from chamber.bench import demo_roster
from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.events import decode_input
from chamber.core.phases import TRANSITIONS, Move, Phase
from chamber.core.sitting import Sitting
from chamber.core.state import Effects, SittingState
from chamber.core.values import Key, VoteKind
from chamber.engine import STORE_RETRY_MS, Engine, EngineError, Outcome
from chamber.journal import Journal

SEATS = 30


class Clock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000

    def __call__(self) -> int:
        return self.t


def started(url: str, clock: Clock) -> tuple[Engine, Journal]:
    journal = Journal(url)
    engine = Engine(journal, clock=clock)
    engine.start()
    return engine, journal


def wait_all(futures: list[Future[Outcome]]) -> list[Outcome]:
    return [f.result(10) for f in futures]


def prepare(engine: Engine, clock: Clock, present: int = SEATS) -> None:
    """Open a sitting, card in ``present`` deputies, register them."""
    assert engine.execute(ev.OpenSitting(roster=demo_roster(SEATS), number=7)).accepted
    wait_all([engine.submit(ev.CardInserted(seat=i, uid=f"{i:08X}")) for i in range(1, present + 1)])
    assert engine.execute(ev.OpenRegistration()).accepted
    wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.REGISTER)) for i in range(1, present + 1)])
    clock.t += 10_000
    assert engine.execute(ev.CloseRegistration()).accepted


def replayed(journal: Journal, uid: str) -> Sitting:
    s = Sitting()
    for rec in journal.records(uid):
        s.apply(decode_input(rec.payload), rec.at_ms)
    return s


def test_every_input_is_journaled_before_its_outcome(journal_url: str) -> None:
    clock = Clock()
    engine, journal = started(journal_url, clock)
    try:
        prepare(engine, clock)
        outcome = engine.execute(ev.OpenVote(title="Про бюджет"))
        assert outcome.accepted and outcome.seq is not None
        outs = wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.YES)) for i in range(1, 21)])
        uid = engine.sitting_uid
        assert uid is not None
        last = journal.last_record(uid)
        assert last is not None
        # each acknowledged outcome's record is already in the store
        for out in outs:
            assert out.accepted and out.seq is not None and out.seq <= last.seq
        rejected = engine.execute(ev.KeyPressed(seat=99, key=Key.YES))
        assert not rejected.accepted and rejected.rejection is not None
        assert rejected.rejection.reason == "unknown_seat"
        assert rejected.seq == last.seq + 1  # rejected inputs are journaled too: they are part of the record
        clock.t += 1000
        assert engine.execute(ev.CloseVote()).accepted
        result = engine.sitting.results[1]
        assert result.counts == (20, 0, 0) and result.adopted
        assert not journal.verify(uid)
    finally:
        engine.stop()
        journal.close()


def test_restart_resumes_an_open_vote_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    prepare(engine, clock)
    assert engine.execute(ev.OpenVote(title="Питання 1", duration_s=30)).accepted
    wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.YES)) for i in range(1, 11)])
    wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.NO)) for i in range(11, 15)])
    before = msgspec.json.encode(engine.sitting.snapshot())
    uid = engine.sitting_uid
    # a crash: the engine is abandoned without stop(); a new one opens the same store
    journal.close()
    clock.t += 2000
    engine2, journal2 = started(url, clock)
    try:
        assert engine2.sitting_uid == uid
        assert msgspec.json.encode(engine2.sitting.snapshot()) == before
        assert engine2.sitting.phase is Phase.VOTE_OPEN
        wait_all([engine2.submit(ev.KeyPressed(seat=i, key=Key.ABSTAIN)) for i in range(15, 18)])
        clock.t += 30_000  # past the vote's end: the next input closes it at its deadline
        engine2.execute(ev.Tick())
        result = engine2.sitting.results[1]
        assert result.counts == (10, 4, 3)
        assert result.closed_at == result.opened_at + 30_000
        assert engine2.sitting.phase is Phase.VOTE_CLOSED
    finally:
        engine2.stop()
        journal2.close()
        engine.stop()  # the abandoned one too: past its vote's deadline it would go on trying to close it


def test_secret_vote_open_at_a_crash_is_annulled_and_no_choice_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    prepare(engine, clock)
    opened = engine.execute(ev.OpenVote(kind=VoteKind.SECRET, title="Обрання секретаря", legal_basis="ст. 50"))
    assert opened.accepted
    keys = [Key.YES, Key.NO, Key.ABSTAIN]
    wait_all([engine.submit(ev.KeyPressed(seat=i, key=keys[i % 3])) for i in range(1, 16)])
    uid = engine.sitting_uid
    assert uid is not None
    journal.close()
    engine2, journal2 = started(url, clock)
    try:
        # the annulment is submitted at start; wait for it to be applied
        engine2.execute(ev.Tick())
        result = engine2.sitting.results[1]
        assert result.cancelled is not None and "restarted" in result.cancelled
        assert result.counts == (0, 0, 0) and result.per_name == ()
        types = [rec.type for rec in journal2.records(uid)]
        assert "AnnulSecretVote" in types
        assert types.count("SecretBallotCast") == 15
        # nothing stored links a seat to a choice of the secret vote
        for rec in journal2.records(uid):
            event = decode_input(rec.payload)
            if isinstance(event, ev.KeyPressed):
                assert event.key not in keys or rec.seq < opened.seq  # type: ignore[operator]
    finally:
        engine2.stop()
        journal2.close()
        engine.stop()  # the abandoned one too (a thread left running would outlive the test)


def test_secret_vote_closed_normally_is_sealed_as_counts_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    try:
        seen: list[ev.Input] = []
        engine.subscribe(lambda event, effects: seen.append(event))
        prepare(engine, clock)
        assert engine.execute(ev.OpenVote(kind=VoteKind.SECRET, legal_basis="ст. 50 ч. 1")).accepted
        wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.YES)) for i in range(1, 24)])
        wait_all([engine.submit(ev.KeyPressed(seat=i, key=Key.NO)) for i in range(24, 27)])
        assert engine.execute(ev.CloseVote()).accepted
        engine.execute(ev.Tick())  # the seal is journaled right after the close
        result = engine.sitting.results[1]
        assert result.counts == (23, 3, 0) and result.adopted and result.per_name == ()
        uid = engine.sitting_uid
        assert uid is not None
        sealed = [decode_input(r.payload) for r in journal.records(uid) if r.type == "SecretTallySealed"]
        assert sealed == [ev.SecretTallySealed(vote=1, counts=(23, 3, 0))]
        again = replayed(journal, uid)
        assert again.results[1] == result
        # adapters saw the secret choices as the journal keeps them: a seat took part, no key
        during = seen[[type(e) for e in seen].index(ev.OpenVote) + 1 : [type(e) for e in seen].index(ev.CloseVote)]
        assert len(during) == 26 and all(type(e) is ev.SecretBallotCast for e in during)
    finally:
        engine.stop()
        journal.close()


@contextlib.contextmanager
def disk_full(journal: Journal) -> Iterator[None]:
    """Every journal append fails inside the block, as on a full disk."""
    real_append = journal.append

    def broken(*args: object, **kwargs: object) -> object:
        raise OSError("disk full")

    journal.append = broken  # type: ignore[method-assign]
    try:
        yield
    finally:
        journal.append = real_append  # type: ignore[method-assign]


def test_a_failed_journal_write_applies_and_acknowledges_nothing(tmp_path: Path) -> None:
    clock = Clock()
    engine, journal = started(f"sqlite:///{tmp_path / 'j.db'}", clock)
    try:
        prepare(engine, clock)
        assert engine.execute(ev.OpenVote()).accepted
        with disk_full(journal):
            fut = engine.submit(ev.KeyPressed(seat=1, key=Key.YES))
            with pytest.raises(EngineError, match="disk full"):
                fut.result(10)
        assert engine.sitting.vote is not None and engine.sitting.vote.tally == [0, 0, 0]
        assert engine.journal_failures == 1
        assert engine.execute(ev.KeyPressed(seat=1, key=Key.YES)).accepted  # the console reports it again
        assert engine.sitting.vote.tally == [1, 0, 0]
    finally:
        engine.stop()
        journal.close()


def test_a_due_deadline_the_store_cannot_take_is_retried_later_not_in_a_spin(tmp_path: Path) -> None:
    """A timed vote ends while the store is down: its end cannot be journaled and stays due.  The engine
    tries it again STORE_RETRY_MS later, not at once (it spun on it, hundreds of thousands of times), and
    closes the vote when the store is back."""
    clock = Clock()
    engine, journal = started(f"sqlite:///{tmp_path / 'j.db'}", clock)
    try:
        prepare(engine, clock)
        assert engine.execute(ev.OpenVote(duration_s=30)).accepted
        with disk_full(journal):
            clock.t += 31_000  # past the vote's end
            engine.submit(ev.Tick())
            wait_for(lambda: engine.journal_failures >= 1, 10, "the first failed attempt")
            time.sleep(0.5)  # the engine's clock stands still: no retry is due
            assert engine.journal_failures == 1
            clock.t += STORE_RETRY_MS + 1
            wait_for(lambda: engine.journal_failures == 2, 10, "the retry, later")
            time.sleep(0.3)
            assert engine.journal_failures == 2
        assert engine.sitting.phase is Phase.VOTE_OPEN  # nothing journaled, nothing applied
        clock.t += STORE_RETRY_MS + 1
        wait_for(lambda: engine.sitting.phase is Phase.VOTE_CLOSED, 10, "the vote closed once the store is back")
    finally:
        engine.stop()
        journal.close()


def test_a_sitting_whose_opening_could_not_be_journaled_does_not_exist(tmp_path: Path) -> None:
    clock = Clock()
    engine, journal = started(f"sqlite:///{tmp_path / 'j.db'}", clock)
    try:
        with disk_full(journal), pytest.raises(EngineError, match="disk full"):
            engine.execute(ev.OpenSitting(roster=demo_roster(SEATS), number=7))
        assert engine.sitting_uid is None and engine.sitting.phase is Phase.NO_SITTING
        engine.execute(ev.CardInserted(seat=1, uid="00000001"))  # no sitting: refused, journaled nowhere
        prepare(engine, clock)
        assert journal.sittings() == [engine.sitting_uid]
        assert next(journal.records(engine.sitting_uid or "")).type == "OpenSitting"
    finally:
        engine.stop()
        journal.close()


def test_refuses_to_resume_a_tampered_journal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    prepare(engine, clock)
    engine.stop()
    with journal.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE journal SET at_ms = at_ms + 1 WHERE seq = 3")
    journal.close()
    journal2 = Journal(url)
    try:
        with pytest.raises(EngineError, match="fails verification"):
            Engine(journal2, clock=clock).recover()
    finally:
        journal2.close()


def test_refuses_to_start_when_a_sittings_row_was_deleted(tmp_path: Path) -> None:
    """Deleting the row of the open sitting would make the engine start afresh and drop its votes."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    prepare(engine, clock)
    engine.stop()
    uid = journal.sittings()[-1]
    journal.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "j.db")) as db, db:  # foreign keys off, as a forger has them
        db.execute("DELETE FROM sittings WHERE uid = ?", (uid,))
    journal2 = Journal(url)
    try:
        assert journal2.sittings() == [] and journal2.all_sittings() == [uid]
        with pytest.raises(EngineError, match=f"{uid} missing from its list of sittings"):
            Engine(journal2, clock=clock).recover()
    finally:
        journal2.close()


def test_a_closed_sitting_is_not_resumed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    prepare(engine, clock)
    assert engine.execute(ev.CloseSitting()).accepted
    assert engine.sitting.phase is Phase.NO_SITTING and engine.sitting_uid is None
    # outside a sitting, inputs are rejected and nothing is journaled
    out = engine.execute(ev.KeyPressed(seat=1, key=Key.YES))
    assert not out.accepted and out.seq is None
    engine.stop()
    journal.close()
    engine2, journal2 = started(url, clock)
    try:
        assert engine2.sitting.phase is Phase.NO_SITTING
        assert engine2.execute(ev.OpenSitting(roster=demo_roster(SEATS), number=8)).accepted
        assert len(journal2.sittings()) == 2
    finally:
        engine2.stop()
        journal2.close()


CHILD = textwrap.dedent(
    """
    import sys
    from chamber.bench import demo_roster
    from chamber.core import events as ev
    from chamber.core.values import Key
    from chamber.engine import Engine
    from chamber.journal import Journal

    engine = Engine(Journal(sys.argv[1]))
    engine.start()
    engine.execute(ev.OpenSitting(roster=demo_roster(60)))
    for i in range(1, 61):
        engine.execute(ev.CardInserted(seat=i, uid=f"{i:08X}"))
    engine.execute(ev.OpenRegistration())
    for i in range(1, 61):
        engine.execute(ev.KeyPressed(seat=i, key=Key.REGISTER))
    engine.execute(ev.CloseRegistration())
    engine.execute(ev.OpenVote(duration_s=0))
    print("ready", flush=True)
    n = 0
    while True:
        n += 1
        seat = n % 60 + 1
        key = (Key.YES, Key.NO, Key.ABSTAIN)[n % 3]
        out = engine.execute(ev.KeyPressed(seat=seat, key=key))
        print(f"ack {out.seq} {seat} {int(key)}", flush=True)
    """
)


def test_kill_9_loses_no_acknowledged_press(tmp_path: Path) -> None:
    """A real crash: SIGKILL the process mid-vote; every press it acknowledged is in the recovered state."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    acks: list[tuple[int, int, int]] = []
    for line in proc.stdout:
        _, seq, seat, key = line.split()
        acks.append((int(seq), int(seat), int(key)))
        if len(acks) >= 150:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    journal = Journal(url)
    try:
        assert not journal.verify()
        engine = Engine(journal)
        engine.recover()
        vote = engine.sitting.vote
        assert vote is not None and engine.sitting.phase is Phase.VOTE_OPEN
        stored = {rec.seq: decode_input(rec.payload) for rec in journal.records(engine.sitting_uid or "")}
        for seq, seat, key in acks:
            assert stored[seq] == ev.KeyPressed(seat=seat, key=Key(key))
        # the last acknowledged choice of each seat is the one the recovered vote holds
        last: dict[int, int] = {}
        for _, seat, key in acks:
            last[seat] = {Key.YES: 0, Key.NO: 1, Key.ABSTAIN: 2}[Key(key)]
        for seat, option in last.items():
            assert vote.choices[seat] == option or any(
                isinstance(e, ev.KeyPressed) and e.seat == seat and s > acks[-1][0] for s, e in stored.items()
            )
        assert vote.tally == vote.recount()
    finally:
        journal.close()


def test_a_defect_in_a_handler_is_an_alert_not_a_dead_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one handler (simulated here) rejects that input with an alert; the engine answers the next
    command, and replaying the journal meets the same defect and gives the same state."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    try:
        prepare(engine, clock)

        def broken(s: SittingState, e: ev.SetAgenda, now: int) -> Effects:
            s.title = "half-done"  # a partial change before the failure: a replay must make it too
            raise KeyError("boom")

        for row in TRANSITIONS.values():  # the live sitting and the replay below both meet it
            if ev.SetAgenda in row:
                monkeypatch.setitem(row, ev.SetAgenda, Move(broken, row[ev.SetAgenda].to))
        outcome = engine.execute(ev.SetAgenda(items=()))
        assert not outcome.accepted
        rejected, alert = outcome.effects
        assert isinstance(rejected, Rejected) and rejected.reason == "internal_error"
        assert "SetAgenda: KeyError" in rejected.detail and alert.kind == "internal_error"  # type: ignore[attr-defined]
        assert engine.execute(ev.OpenVote(duration_s=0)).accepted  # the chamber goes on
        assert engine.snapshot().alerts == 1
        uid = engine.sitting_uid
        assert uid is not None
        assert msgspec.json.encode(replayed(journal, uid).snapshot()) == msgspec.json.encode(engine.sitting.snapshot())
    finally:
        engine.stop()
        journal.close()


def test_a_clock_set_back_does_not_stop_a_timed_vote(tmp_path: Path) -> None:
    """The wall clock steps back an hour (NTP, a hand) while a 5-second vote is open: the vote still
    closes 5 seconds of clock time after it opened, and journal times never run backwards."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    clock = Clock()
    engine, journal = started(url, clock)
    try:
        prepare(engine, clock)
        assert engine.execute(ev.OpenVote(duration_s=5)).accepted
        clock.t -= 3_600_000
        assert engine.execute(ev.KeyPressed(seat=1, key=Key.YES)).accepted
        clock.t += 6_000
        wait_for(lambda: engine.snapshot().phase is Phase.VOTE_CLOSED, what="the vote closed by its timer")
        assert engine.snapshot().results[-1].counts == (1, 0, 0)
        uid = engine.sitting_uid
        assert uid is not None
        times = [r.at_ms for r in journal.records(uid)]
        assert times == sorted(times)
    finally:
        engine.stop()
        journal.close()

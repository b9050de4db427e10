"""``chamber bench core``: throughput of the domain core and of the journal, as JSON.

``events_per_s`` feeds seat presses (random seats, random За/Проти/Утримався,
changes of mind included) to ``Sitting.apply`` during an open roll-call vote
on a chamber of ``seats`` seats, every deputy registered and carded: the real
hot path, journal excluded.  The press values are built before the clock
starts: in the daemon they are built by the line loops, not the engine.
``recount_matches`` checks at the end that the incremental tally equals a
recount, so a fast but wrong core cannot report a figure.

``journal_appends_per_s`` times durable one-record appends (one transaction
and fsync each) to a SQLite store like the default one, in a temporary
directory made under ``directory`` (the CLI passes var/, where the default store
lives, unless ``--dir`` says otherwise); ``journal_batched_appends_per_s`` the same
records written 64 per transaction, as the engine's group commit does under a
burst of presses.  Each figure is the median of ``rounds`` runs.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from chamber.core import events as ev
from chamber.core.roster import Council, Deputy, Roster, Seat
from chamber.core.sitting import Sitting
from chamber.core.values import Key
from chamber.journal import Journal


def demo_roster(seats: int) -> Roster:
    deputies = tuple(Deputy(id=i, full_name=f"Депутат {i}", cards=(f"{i:08X}",), seat=i) for i in range(1, seats + 1))
    return Roster(
        council=Council(name="Bench council", composition=seats),
        deputies=deputies,
        seats=tuple(Seat(id=i) for i in range(1, seats + 1)),
    )


def open_vote_sitting(seats: int) -> Sitting:
    """A sitting with every deputy carded and registered and a roll-call vote open with no time limit."""
    s = Sitting()
    s.apply(ev.OpenSitting(roster=demo_roster(seats)), 0)
    for i in range(1, seats + 1):
        s.apply(ev.CardInserted(seat=i, uid=f"{i:08X}"), 0)
    s.apply(ev.OpenRegistration(), 0)
    for i in range(1, seats + 1):
        s.apply(ev.KeyPressed(seat=i, key=Key.REGISTER), 0)
    s.apply(ev.CloseRegistration(), 0)
    effects = s.apply(ev.OpenVote(duration_s=0), 1)
    assert s.vote is not None, effects
    return s


def bench_core(seats: int = 450, presses: int = 200_000, rounds: int = 5, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    keys = (Key.YES, Key.NO, Key.ABSTAIN)
    # as the line loops report them: each press carries its console's next event number and its boot
    next_seq = [0] * (seats + 1)
    inputs = []
    for _ in range(presses):
        seat = rng.randint(1, seats)
        next_seq[seat] = (next_seq[seat] + 1) & 0xFFFF
        inputs.append(ev.KeyPressed(seat=seat, key=rng.choice(keys), seq=next_seq[seat], boot=1))
    voted = len({press.seat for press in inputs})
    rates = []
    recount_ok = True
    for _ in range(rounds):
        s = open_vote_sitting(seats)
        apply = s.apply
        t0 = time.perf_counter()
        for i, press in enumerate(inputs):
            apply(press, 2 + i // 1000)
        rates.append(presses / (time.perf_counter() - t0))
        vote = s.vote
        assert vote is not None
        # every deputy who pressed holds exactly one choice: nothing was silently rejected
        recount_ok = recount_ok and vote.recount() == vote.tally and sum(vote.tally) == voted
    return {
        "seats": seats,
        "presses": presses,
        "rounds": rounds,
        "events_per_s": round(statistics.median(rates)),
        "events_per_s_min": round(min(rates)),
        "events_per_s_max": round(max(rates)),
        "recount_matches": recount_ok,
    }


def _stopwatch(latencies: list[float], sent: float) -> Callable[[Future[Any]], None]:
    def done(_: Future[Any]) -> None:
        latencies.append(time.perf_counter() - sent)

    return done


def bench_engine(seats: int = 450, bursts: int = 20, directory: str | None = None) -> dict[str, Any]:
    """Presses through the whole engine: queue, journal form, durable group commit, apply, outcome.

    Each burst is every seat pressing at once (the first seconds of a vote);
    the latency of a press is from ``submit`` to its outcome (the moment the
    console may be acknowledged), so it includes waiting behind the burst.
    """
    from chamber.engine import Engine

    rng = random.Random(7)
    keys = (Key.YES, Key.NO, Key.ABSTAIN)
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="chamber-bench-", dir=directory) as tmp:
        journal = Journal(f"sqlite:///{Path(tmp) / 'engine.db'}")
        engine = Engine(journal)
        engine.start()
        try:
            engine.execute(ev.OpenSitting(roster=demo_roster(seats)))
            for i in range(1, seats + 1):
                engine.submit(ev.CardInserted(seat=i, uid=f"{i:08X}"))
            engine.execute(ev.OpenRegistration())
            for i in range(1, seats + 1):
                engine.submit(ev.KeyPressed(seat=i, key=Key.REGISTER))
            engine.execute(ev.CloseRegistration())
            engine.execute(ev.OpenVote(duration_s=0))
            t_all = time.perf_counter()
            for _ in range(bursts):
                burst = [ev.KeyPressed(seat=i, key=rng.choice(keys)) for i in range(1, seats + 1)]
                sent = time.perf_counter()
                futures = [engine.submit(p) for p in burst]
                for fut in futures:
                    fut.add_done_callback(_stopwatch(latencies, sent))
                for fut in futures:
                    assert fut.result(60).accepted
            elapsed = time.perf_counter() - t_all
            vote = engine.sitting.vote
            assert vote is not None and vote.tally == vote.recount() and sum(vote.tally) == seats
        finally:
            engine.stop()
            journal.close()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "engine_presses_per_s": round(seats * bursts / elapsed),
        "engine_press_ms_p50": pct(0.50),
        "engine_press_ms_p99": pct(0.99),
        "engine_bursts": bursts,
    }


def bench_journal(appends: int = 300, batch: int = 64, rounds: int = 3, directory: str | None = None) -> dict[str, Any]:
    payload = ev.encode_input(ev.KeyPressed(seat=17, key=Key.YES))
    single, batched = [], []
    with tempfile.TemporaryDirectory(prefix="chamber-bench-", dir=directory) as tmp:
        for r in range(rounds):
            journal = Journal(f"sqlite:///{Path(tmp) / f'bench{r}.db'}")
            try:
                t0 = time.perf_counter()
                for i in range(appends):
                    journal.append("bench", [(i, "KeyPressed", payload)])
                single.append(appends / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                n = 0
                while n < appends * 4:
                    journal.append("bench-batched", [(n + j, "KeyPressed", payload) for j in range(batch)])
                    n += batch
                batched.append(n / (time.perf_counter() - t0))
                problems = journal.verify()
                assert not problems, problems
            finally:
                journal.close()
    return {
        "journal_store": "sqlite (WAL, synchronous=FULL)",
        "journal_appends_per_s": round(statistics.median(single)),
        "journal_batched_appends_per_s": round(statistics.median(batched)),
        "journal_batch": batch,
    }

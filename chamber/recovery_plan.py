"""The scripted sitting of ``chamber bench recovery``: what every simulated deputy does, fixed by a seed.

How it works
------------
:func:`make_plan` draws, from one seed, everything a sitting's deputies choose: who stays away from the
registration, each roll-call vote's presses (a choice key; some deputies change their mind and press a
second key, some do not vote) and who asks for the floor, in which order.  What is drawn is *what* each
deputy does; *when* the press lands is drawn too (``offset_s`` within the press window) but the outcome
never depends on it: a deputy's presses go through one console, whose FIFO keeps their order, and the
script waits for every press to be taken before it closes anything.  So a run with crashes and a run
without them must end in the same registrations, the same per-name choices and counts, and the same
speeches in the same order (:func:`expected`), whatever the timing.

Pure: no I/O, no clock.  chamber.recovery_driver plays a plan against the real controller, and
chamber.bench_recovery compares the journals.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from chamber.core.values import Key

CHOICE_KEYS = (Key.YES, Key.NO, Key.ABSTAIN)
CHOICE_WORD = {Key.YES: "yes", Key.NO: "no", Key.ABSTAIN: "abstain"}


@dataclass(frozen=True)
class Press:
    offset_s: float  # when, from the start of its window
    seat: int
    key: Key


@dataclass(frozen=True)
class VotePlan:
    number: int
    title: str
    presses: tuple[Press, ...]  # sorted by offset; a seat's presses keep their order

    def final_choices(self) -> dict[int, str]:
        """seat -> the choice its last press leaves (a deputy sits at the seat of the same id)."""
        out: dict[int, str] = {}
        for press in self.presses:
            out[press.seat] = CHOICE_WORD[press.key]
        return out


@dataclass(frozen=True)
class Plan:
    seats: int
    registering: tuple[Press, ...]  # one REGISTER press per deputy who comes
    votes: tuple[VotePlan, ...]
    speakers: tuple[int, ...]  # seats asking for the floor, in this order, each given it in turn
    window_s: float
    absent: frozenset[int] = field(default_factory=frozenset)

    def presses(self) -> int:
        return len(self.registering) + sum(len(v.presses) for v in self.votes) + len(self.speakers)


def _window(rng: random.Random, seats: list[int], keys: list[list[Key]], window_s: float) -> tuple[Press, ...]:
    """Each seat's keys at random moments within the window, a seat's own keys in their order."""
    out: list[Press] = []
    for seat, seat_keys in zip(seats, keys, strict=True):
        times = sorted(rng.uniform(0, window_s) for _ in seat_keys)
        out += [Press(round(t, 4), seat, key) for t, key in zip(times, seat_keys, strict=True)]
    out.sort(key=lambda p: (p.offset_s, p.seat))
    return tuple(out)


def make_plan(
    seed: int, seats: int = 450, votes: int = 2, speakers: int = 3, window_s: float = 0.6, absent_share: float = 0.04
) -> Plan:
    """A sitting's script: the same seed gives the same plan, press for press."""
    rng = random.Random(seed)
    everyone = list(range(1, seats + 1))
    absent = frozenset(rng.sample(everyone, int(seats * absent_share)))
    present = [s for s in everyone if s not in absent]
    # the absent keep their cards out: the per-name lists say «Відсутній»; the rest say «Не голосував»
    # when they do not vote
    registering = _window(rng, present, [[Key.REGISTER] for _ in present], window_s)
    plans = []
    for number in range(1, votes + 1):
        voters, keys = [], []
        for seat in present:
            draw = rng.random()
            if draw < 0.05:
                continue  # does not vote
            first = rng.choice(CHOICE_KEYS)
            voters.append(seat)
            if draw < 0.12:  # changes the choice before the vote closes
                keys.append([first, rng.choice([k for k in CHOICE_KEYS if k is not first])])
            else:
                keys.append([first])
        plans.append(VotePlan(number, f"Проєкт рішення {number}", _window(rng, voters, keys, window_s)))
    return Plan(seats, registering, tuple(plans), tuple(rng.sample(present, speakers)), window_s, absent)


def expected(plan: Plan) -> dict[str, Any]:
    """What the journal of a sitting that followed ``plan`` must hold, in the form of :func:`summary`'s
    parts the script decides: who registered, each vote's per-name choices and counts, the speeches."""
    registered = sorted(p.seat for p in plan.registering)
    votes = {}
    for vote in plan.votes:
        final = vote.final_choices()
        counts = [sum(1 for c in final.values() if c == word) for word in ("yes", "no", "abstain")]
        per_name = {
            str(seat): final.get(seat, "did_not_vote" if seat not in plan.absent else "absent")
            for seat in range(1, plan.seats + 1)
        }
        votes[str(vote.number)] = {"title": vote.title, "counts": counts, "per_name": per_name}
    return {"registered": registered, "votes": votes, "speeches": list(plan.speakers)}

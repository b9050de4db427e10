"""Builders shared by the core tests: rosters, and a driver that feeds a Sitting with an advancing clock.

The driver applies inputs exactly as the engine does (``journal_form`` computed on the state before
the input, ``SealSecretTally`` fed back as a ``SecretTallySealed`` input at the same time) and keeps
that journal, so any test can replay what it did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from chamber.core import events as ev
from chamber.core.effects import Effect, Rejected, SealSecretTally
from chamber.core.roster import Council, Deputy, Roster, Rules, Seat
from chamber.core.sitting import Sitting
from chamber.core.values import Key, Role

Effects = tuple[Effect, ...]


def uid(deputy: int) -> str:
    """The card UID of a deputy built by ``make_roster``."""
    return f"{deputy:08X}"


def make_roster(
    n: int = 10,
    *,
    composition: int | None = None,
    rules: Rules | None = None,
    extra_seats: int = 0,
    sensors: Iterable[int] = (),
    chair_seat: int | None = None,
    head: int | None = None,
    head_votes: bool = True,
    head_in_composition: bool = True,
) -> Roster:
    """Deputies 1..n, deputy i with card ``uid(i)`` assigned to seat i; seats 1..n+extra_seats.

    ``chair_seat``: a further seat (no deputy) that is the chair console.  ``head``: the deputy
    whose role is the head.  ``sensors``: seats with a presence sensor.
    """
    sensor_set = set(sensors)
    deputies = tuple(
        Deputy(
            id=i,
            full_name=f"Депутат {i}",
            cards=(uid(i),),
            seat=i,
            role=Role.HEAD if i == head else Role.DEPUTY,
        )
        for i in range(1, n + 1)
    )
    seats = [Seat(id=i, presence_sensor=i in sensor_set) for i in range(1, n + extra_seats + 1)]
    if chair_seat is not None:
        seats.append(Seat(id=chair_seat, chair=True, presence_sensor=chair_seat in sensor_set))
    return Roster(
        council=Council(
            name="Тестова міська рада",
            composition=n if composition is None else composition,
            head_votes=head_votes,
            head_in_composition=head_in_composition,
        ),
        deputies=deputies,
        seats=tuple(seats),
        rules=rules if rules is not None else Rules(),
    )


def rules(**changes: object) -> Rules:
    """Default rules with some fields replaced."""
    return msgspec.structs.replace(Rules(), **changes)


def is_rejected(effects: Sequence[Effect]) -> bool:
    return bool(effects) and type(effects[0]) is Rejected


class Driver:
    """A Sitting plus a clock that advances ``step`` ms per input, and the journal it would write."""

    def __init__(self, roster: Roster | None = None, *, start: int = 1_000, step: int = 10) -> None:
        self.sitting = Sitting()
        self.now = start
        self.step = step
        self.journal: list[tuple[ev.Input, int]] = []
        self.roster = roster
        if roster is not None:
            self.ok(ev.OpenSitting(roster=roster, number=7, title="Пленарне засідання"))

    # --- applying ------------------------------------------------------------------------------

    def apply(self, event: ev.Input, at: int | None = None) -> Effects:
        """Apply at ``at`` (absolute ms) or at the next step of the clock; journal like the engine does."""
        self.now = self.now + self.step if at is None else at
        self.journal.append((self.sitting.journal_form(event), self.now))
        effects = self.sitting.apply(event, self.now)
        for effect in effects:
            if type(effect) is SealSecretTally:
                seal = ev.SecretTallySealed(vote=effect.vote, counts=effect.counts)
                self.journal.append((seal, self.now))
                effects = (*effects, *self.sitting.apply(seal, self.now))
        return effects

    __call__ = apply

    def ok(self, event: ev.Input, at: int | None = None) -> Effects:
        effects = self.apply(event, at)
        assert not is_rejected(effects), (event, effects)
        return effects

    def reject(self, event: ev.Input, at: int | None = None) -> Rejected:
        """Apply an input that must be rejected; return the Rejected effect."""
        effects = self.apply(event, at)
        assert is_rejected(effects), (event, effects)
        first = effects[0]
        assert isinstance(first, Rejected)
        return first

    def wait(self, ms: int) -> None:
        """Let time pass with no input."""
        self.now += ms

    # --- common steps --------------------------------------------------------------------------

    def card(self, deputy: int, seat: int | None = None) -> Effects:
        return self.apply(ev.CardInserted(seat=deputy if seat is None else seat, uid=uid(deputy)))

    def press(self, seat: int, key: Key) -> Effects:
        return self.apply(ev.KeyPressed(seat=seat, key=key))

    def card_all(self, deputies: Iterable[int]) -> None:
        for d in deputies:
            self.ok(ev.CardInserted(seat=d, uid=uid(d)))

    def register(self, deputies: Iterable[int]) -> None:
        """One registration round in which the given deputies (carded at their seats) press REGISTER."""
        self.ok(ev.OpenRegistration())
        for d in deputies:
            self.ok(ev.KeyPressed(seat=d, key=Key.REGISTER))
        self.ok(ev.CloseRegistration())

    def vote(self, choices: dict[int, Key]) -> None:
        """Seat -> key presses, each must be accepted."""
        for seat, key in choices.items():
            self.ok(ev.KeyPressed(seat=seat, key=key))


def ready(
    n: int = 10,
    *,
    carded: Iterable[int] | None = None,
    registered: Iterable[int] | None = None,
    **roster_kwargs: object,
) -> Driver:
    """An open sitting of ``n`` deputies, ``carded`` (default all) carded at their seats and
    ``registered`` (default: the carded) registered in one round; phase IDLE."""
    d = Driver(make_roster(n, **roster_kwargs))  # type: ignore[arg-type]
    carded_list = list(range(1, n + 1)) if carded is None else list(carded)
    d.card_all(carded_list)
    d.register(carded_list if registered is None else registered)
    return d


def replay(journal: Iterable[tuple[ev.Input, int]]) -> Sitting:
    """A fresh Sitting fed with journal records (through their JSON encoding, like the store)."""
    s = Sitting()
    for event, at in journal:
        s.apply(ev.decode_input(ev.encode_input(event)), at)
    return s


def snap(s: Sitting) -> bytes:
    return msgspec.json.encode(s.snapshot())

"""Handlers of key presses at the seats: choices, registration, requests to speak, the chair's keys.

The hot path of a sitting (every choice of every deputy comes through here), kept apart from the
rarer seat events (chamber.core.seat_handlers).  A press is checked in a fixed order: a known seat;
its event number not taken before (chamber.core.numbering); the console online; then the chair's keys;
a card in the slot; the presence sensor where the rules require it; and what the key means in the
current phase.  A ``SecretBallotCast`` (the journal's form of a secret choice) takes the same path
with no key.

The chair console's PRIORITY and NEXT keys run the ``ChairPriority`` and ``NextSpeaker`` handlers, and
only where the phase table lets those commands run: the table (chamber.core.phases) builds one
``KeyPressed`` handler per phase with ``key_handler``, handing it the chair commands its row allows.
"""

from __future__ import annotations

from collections.abc import Mapping

from chamber.core import events as ev
from chamber.core.effects import Alert, ChoiceAccepted, Registered
from chamber.core.numbering import NEW, REPEAT
from chamber.core.state import Effects, Handler, SeatState, SittingState
from chamber.core.values import PROPOSAL_KEYS, REQUEST_KEYS, YES_NO_OPTIONS, Key, Phase
from chamber.core.voting import UNKNOWN

_CHOICE_KEYS = frozenset(YES_NO_OPTIONS) | frozenset(PROPOSAL_KEYS)

#: The chair console's keys and the commands they stand for.
CHAIR_KEYS: dict[Key, type] = {Key.PRIORITY: ev.ChairPriority, Key.NEXT: ev.NextSpeaker}

#: Per chair key: its command and the command's handler in this phase (None: the phase refuses it).
ChairKeys = Mapping[Key, tuple[type, Handler | None]]

_NO_CHAIR_KEYS: ChairKeys = {}  # a secret ballot carries no key


def key_handler(chair: ChairKeys) -> Handler:
    """The ``KeyPressed`` handler of a phase whose chair keys run ``chair`` (every key of ``CHAIR_KEYS``)."""

    def key_pressed(s: SittingState, e: ev.KeyPressed, now: int) -> Effects:
        seat = s.seats.get(e.seat)
        if seat is None:
            return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
        if e.seq is not None:
            verdict = seat.numbering.classify(e.boot, e.seq, e.key)
            if verdict != NEW:
                return _numbered_again(s, e, e.key, verdict, now, chair)
        return _press(s, e, e.key, now, seat, chair)

    return key_pressed


def secret_ballot(s: SittingState, e: ev.SecretBallotCast, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    if e.seq is not None:
        verdict = seat.numbering.classify(e.boot, e.seq, None)
        if verdict != NEW:
            return _numbered_again(s, e, None, verdict, now, _NO_CHAIR_KEYS)
    return _press(s, e, None, now, seat, _NO_CHAIR_KEYS)


def _numbered_again(
    s: SittingState,
    e: ev.KeyPressed | ev.SecretBallotCast,
    key: Key | None,
    verdict: int,
    now: int,
    chair: ChairKeys,
) -> Effects:
    """A console event whose number was taken before (``chamber.core.numbering``): a repeat is
    refused; a conflict is a new press, counted, with an alert for the secretary."""
    if verdict == REPEAT:
        return (s.rejection(e, "duplicate_event", f"event {e.seq} of seat {e.seat} was taken already"),)
    s.alerts += 1
    detail = (
        f"seat {e.seat}: console event {e.seq} (boot {e.boot}) came again with another key, or from "
        "further back than a console repeats; counted as a new press. The console may have "
        "restarted without saying so: check it"
    )
    seat = s.seats[e.seat]
    return (*_press(s, e, key, now, seat, chair), Alert(kind="event_conflict", detail=detail, seat=e.seat))


def _press(
    s: SittingState,
    e: ev.KeyPressed | ev.SecretBallotCast,
    key: Key | None,
    now: int,
    seat: SeatState,
    chair: ChairKeys,
) -> Effects:
    """A key at ``seat``; ``key`` None is a secret choice whose value was not journaled."""
    if not seat.online:
        return (s.rejection(e, "seat_offline", f"seat {seat.id} is offline", seat),)
    if seat.chair and key is not None and key in chair:
        command, handler = chair[key]
        if handler is None:  # the chair's keys obey the phase table like the commands do
            return (s.rejection(e, "not_allowed", f"{command.__name__} is not allowed in phase {s.phase}"),)
        return handler(s, e, now)
    deputy = seat.deputy
    if deputy is None:
        return (s.rejection(e, "no_card", f"no card in seat {seat.id}", seat),)
    if seat.sensor and not seat.present and s.rules.presence_required:
        return (s.rejection(e, "no_presence", f"presence sensor at seat {seat.id} not held", seat),)
    vote = s.vote
    if key is None or key in _CHOICE_KEYS:
        if s.phase is not Phase.VOTE_OPEN or vote is None:
            return (s.rejection(e, "vote_not_open", "no vote is open", seat),)
        if key is None and not vote.secret:
            return (s.rejection(e, "not_secret", "a hidden choice outside a secret vote", seat),)
        option = UNKNOWN if key is None else vote.key_map.get(key)
        if option is None:
            return (s.rejection(e, "not_a_choice", f"key {key} is not a choice in this vote", seat),)
        if deputy not in s.voter_set:
            return (s.rejection(e, "not_a_voter", f"deputy {deputy} does not vote", seat),)
        if not s.rules.allow_change and deputy in vote.choices:
            return (s.rejection(e, "choice_final", "the choice was made and may not change", seat),)
        vote.cast(deputy, seat.id, option)
        # A secret ballot is confirmed without its value: the seat's LEDs (seen by the neighbours)
        # and the line loop's memory of them hold no choice either.
        return (ChoiceAccepted(seat=seat.id, option=UNKNOWN if vote.secret else option),)
    if key is Key.REGISTER:
        if s.phase is not Phase.REGISTRATION:
            return (s.rejection(e, "registration_not_open", "registration is not open", seat),)
        s.registered.add(deputy)
        return (Registered(seat=seat.id, deputy=deputy),)
    kind = REQUEST_KEYS.get(key)
    if kind is not None:
        if s.floor.queued(seat.id) is not None:
            return s.floor.withdraw(seat.id)
        if seat.id in s.floor.speeches:
            return (s.rejection(e, "speaking", f"seat {seat.id} already has the floor", seat),)
        return s.floor.enqueue(seat.id, deputy, kind, now)
    return (s.rejection(e, "not_chair", f"key {key} works only on the chair console", seat),)

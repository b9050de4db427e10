"""Handlers of the sitting's own commands: open and close it, its agenda and current item, the
registration rounds (opened, closed, a deputy registered by hand), and ``Tick``.

Each is a function of (state, input, now) that returns the input's effects; the phase table
(chamber.core.phases) says in which phases each runs and which phase follows (``OpenSitting`` and
``IDLE``, ``OpenRegistration`` and ``REGISTRATION``, ...).  Opening a sitting empties the state first:
a sitting starts from nothing, whatever the one before left.
"""

from __future__ import annotations

import msgspec

from chamber.core import events as ev
from chamber.core.effects import Mode, ModeChanged, Registered, SittingClosed, SittingOpened
from chamber.core.snapshot import RegistrationRound
from chamber.core.speakers import Floor
from chamber.core.state import NONE, Effects, SeatState, SittingState
from chamber.core.values import Role


def tick(s: SittingState, e: ev.Tick, now: int) -> Effects:
    return NONE  # it only brings the time: the deadlines it reached ran before it (chamber.core.sitting)


def open_sitting(s: SittingState, e: ev.OpenSitting, now: int) -> Effects:
    refused = s.bad_text(e, [("title", e.title)])
    if refused is not None:
        return refused
    s.reset()
    roster = e.roster
    s.roster = roster
    s.number = e.number
    s.title = e.title
    # Rules is a frozen struct, but its two tables are dicts: keep copies, so that a caller who
    # changes the event's dicts after it was journaled cannot make this state differ from a replay.
    rules = roster.rules
    s.rules = msgspec.structs.replace(
        rules, thresholds=dict(rules.thresholds), speech_limits_s=dict(rules.speech_limits_s)
    )
    s.composition = roster.council.composition
    s.seats = {seat.id: SeatState(seat.id, seat.presence_sensor, seat.chair) for seat in roster.seats}
    s.card_owner = {uid.upper(): d.id for d in roster.deputies for uid in d.cards}
    s.home_seat = {d.id: d.seat for d in roster.deputies if d.seat is not None}
    head_votes = roster.council.head_votes
    head_counts = roster.council.head_in_composition
    s.voters = tuple(d.id for d in roster.deputies if d.role is Role.DEPUTY or head_votes)
    s.voter_set = frozenset(s.voters)
    s.counted = frozenset(d.id for d in roster.deputies if d.role is Role.DEPUTY or head_counts)
    r = s.rules
    s.floor = Floor(max_open_mics=r.max_open_mics, warning_s=r.warning_s, auto_mic_off=r.auto_mic_off)
    return (SittingOpened(number=e.number), ModeChanged(mode=Mode.IDLE))


def close_sitting(s: SittingState, e: ev.CloseSitting, now: int) -> Effects:
    effects = s.floor.end_all(now, "sitting_closed", keep_chair=False)
    s.refresh_deadline()
    return (*effects, ModeChanged(mode=Mode.IDLE), SittingClosed(number=s.number))


def set_agenda(s: SittingState, e: ev.SetAgenda, now: int) -> Effects:
    numbers = [i.number for i in e.items]
    if len(set(numbers)) != len(numbers):
        return s.reject(e, "duplicate_item", "agenda item numbers must be unique")
    texts = [
        (f"items[{i}].{field}", getattr(item, field))
        for i, item in enumerate(e.items)
        for field in ("number", "title", "draft")
    ]
    refused = s.bad_text(e, texts)
    if refused is not None:
        return refused
    s.agenda = e.items
    if s.current_item not in numbers:
        s.current_item = None
    return NONE


def set_current_item(s: SittingState, e: ev.SetCurrentItem, now: int) -> Effects:
    if e.number is not None and all(i.number != e.number for i in s.agenda):
        return s.reject(e, "unknown_item", f"no agenda item {e.number}")
    s.current_item = e.number
    return NONE


def open_registration(s: SittingState, e: ev.OpenRegistration, now: int) -> Effects:
    s.registered = set()
    s.manual = {}
    s.round_opened_at = now
    return (ModeChanged(mode=Mode.REGISTRATION),)


def close_registration(s: SittingState, e: ev.CloseRegistration, now: int) -> Effects:
    s.rounds.append(
        RegistrationRound(
            number=len(s.rounds) + 1,
            opened_at=s.round_opened_at,
            closed_at=now,
            registered=tuple(sorted(s.registered)),
            manual=tuple(sorted(s.manual.items())),
            count=s.registered_count,
            quorum=s.has_quorum,
        )
    )
    return (ModeChanged(mode=Mode.IDLE),)


def register_deputy(s: SittingState, e: ev.RegisterDeputy, now: int) -> Effects:
    if e.deputy not in s.home_seat and e.deputy not in s.voter_set | s.counted:
        return s.reject(e, "unknown_deputy", f"no deputy {e.deputy}")
    if not e.reason.strip():
        return s.reject(e, "reason_required", "a manual registration needs a reason")
    refused = s.bad_text(e, [("reason", e.reason)], multiline=True)
    if refused is not None:
        return refused
    s.registered.add(e.deputy)
    s.manual[e.deputy] = e.reason
    return (Registered(seat=None, deputy=e.deputy),)

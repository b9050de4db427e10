"""Handlers of the floor: queue requests, grant, next, revoke, extend, chair priority, and the speech
timers (``SpeechDue``, the deadline input the sitting makes itself).

Each is a function of (state, input, now) that works on the state's ``Floor`` (chamber.core.speakers),
returns the input's effects and recomputes the state's deadline when the speeches changed; the phase
table (chamber.core.phases) says in which phases each runs (no one is given the floor while a vote is
open).  The chair console's PRIORITY and NEXT keys arrive at ``priority`` and ``next_speaker`` with
the ``KeyPressed`` itself (chamber.core.keys).
"""

from __future__ import annotations

from chamber.core import events as ev
from chamber.core.state import NONE, Effects, SittingState
from chamber.core.values import SpeechKind

MAX_SPEECH_S = 4 * 3600


def request(s: SittingState, e: ev.RequestFloor, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    if s.floor.queued(e.seat) is not None:
        return s.reject(e, "already_queued", f"seat {e.seat} is already in the queue")
    deputy = seat.deputy if seat.deputy is not None else s.deputy_at_home(e.seat)
    return s.floor.enqueue(e.seat, deputy, e.kind, now)


def withdraw(s: SittingState, e: ev.WithdrawRequest, now: int) -> Effects:
    if s.floor.queued(e.seat) is None:
        return s.reject(e, "not_queued", f"seat {e.seat} is not in the queue")
    return s.floor.withdraw(e.seat)


def grant(s: SittingState, e: ev.GrantFloor, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    if e.seat in s.floor.speeches:
        return s.reject(e, "speaking", f"seat {e.seat} already has the floor")
    if not seat.online:
        return s.reject(e, "seat_offline", f"seat {e.seat} is offline")
    if not seat.chair and s.floor.open_deputy_mics() >= s.floor.max_open_mics:
        return s.reject(e, "max_mics", f"{s.floor.max_open_mics} microphones are open already (the rules' maximum)")
    queued = s.floor.queued(e.seat)
    kind = e.kind or (queued.kind if queued is not None else SpeechKind.SPEECH)
    limit = e.limit_s if e.limit_s is not None else s.rules.speech_limits_s.get(kind, 180)
    if not 1 <= limit <= MAX_SPEECH_S:
        return s.reject(e, "bad_limit", f"speech limit must be 1..{MAX_SPEECH_S} s, got {limit}")
    deputy = seat.deputy if seat.deputy is not None else s.deputy_at_home(e.seat)
    if queued is not None and queued.deputy is not None:
        deputy = queued.deputy
    effects = s.floor.start(
        seat=e.seat,
        deputy=deputy,
        kind=kind,
        item=s.current_item,
        limit_s=limit,
        chair=seat.chair,
        now=now,
    )
    s.refresh_deadline()
    return effects


def next_speaker(s: SittingState, e: ev.NextSpeaker | ev.KeyPressed, now: int) -> Effects:
    if not s.floor.queue:
        return s.reject(e, "queue_empty", "nobody is waiting for the floor")
    # The first in the queue whose console works; a request from an offline seat keeps its place.
    head = next((r for r in s.floor.queue if s.seats[r.seat].online), None)
    if head is None:
        return s.reject(e, "queue_unreachable", "every seat waiting for the floor is offline")
    ended = s.floor.end_all(now, "next_speaker")
    granted = grant(s, ev.GrantFloor(seat=head.seat), now)
    s.refresh_deadline()
    return ended + granted


def revoke(s: SittingState, e: ev.RevokeFloor, now: int) -> Effects:
    if e.seat not in s.floor.speeches:
        return s.reject(e, "not_speaking", f"seat {e.seat} does not have the floor")
    effects = s.floor.end(e.seat, now, "revoked")
    s.refresh_deadline()
    return effects


def extend(s: SittingState, e: ev.ExtendSpeech, now: int) -> Effects:
    if e.seat not in s.floor.speeches:
        return s.reject(e, "not_speaking", f"seat {e.seat} does not have the floor")
    if not 1 <= e.extra_s <= MAX_SPEECH_S:
        return s.reject(e, "bad_limit", f"extra time must be 1..{MAX_SPEECH_S} s")
    s.floor.extend(e.seat, e.extra_s)
    s.refresh_deadline()
    return NONE


def priority(s: SittingState, e: ev.ChairPriority | ev.KeyPressed, now: int) -> Effects:
    effects = s.floor.end_all(now, "chair_priority")
    s.refresh_deadline()
    return effects


def speech_due(s: SittingState, e: ev.SpeechDue, now: int) -> Effects:
    """Warnings and limits of the speeches reached by ``now``."""
    effects = s.floor.due(now)
    s.refresh_deadline()
    return effects

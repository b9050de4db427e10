"""Handlers of the floor commands: queue requests, grant, next, revoke, extend, chair priority.

They belong to ``Sitting`` (chamber.core.sitting) and operate on its
``Floor`` (chamber.core.speakers); ``handlers(sitting)`` returns them bound to
one sitting.  The chair's keys on the chair console arrive here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chamber.core import events as ev
from chamber.core.effects import Effect
from chamber.core.values import SpeechKind

if TYPE_CHECKING:
    from chamber.core.sitting import Sitting

Effects = tuple[Effect, ...]
MAX_SPEECH_S = 4 * 3600


def handlers(s: Sitting) -> dict[type, Callable[[Any, int], Effects]]:
    floor = s.floor_ref

    def request(e: ev.RequestFloor, now: int) -> Effects:
        seat = s.seats.get(e.seat)
        if seat is None:
            return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
        if floor().queued(e.seat) is not None:
            return s.reject(e, "already_queued", f"seat {e.seat} is already in the queue")
        deputy = seat.deputy if seat.deputy is not None else s.deputy_at_home(e.seat)
        return floor().enqueue(e.seat, deputy, e.kind, now)

    def withdraw(e: ev.WithdrawRequest, now: int) -> Effects:
        if floor().queued(e.seat) is None:
            return s.reject(e, "not_queued", f"seat {e.seat} is not in the queue")
        return floor().withdraw(e.seat)

    def grant(e: ev.GrantFloor, now: int) -> Effects:
        seat = s.seats.get(e.seat)
        if seat is None:
            return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
        if e.seat in floor().speeches:
            return s.reject(e, "speaking", f"seat {e.seat} already has the floor")
        if not seat.online:
            return s.reject(e, "seat_offline", f"seat {e.seat} is offline")
        if not seat.chair and floor().open_deputy_mics() >= floor().max_open_mics:
            return s.reject(e, "max_mics", f"{floor().max_open_mics} microphones are open already (the rules' maximum)")
        queued = floor().queued(e.seat)
        kind = e.kind or (queued.kind if queued is not None else SpeechKind.SPEECH)
        limit = e.limit_s if e.limit_s is not None else s.rules.speech_limits_s.get(kind, 180)
        if not 1 <= limit <= MAX_SPEECH_S:
            return s.reject(e, "bad_limit", f"speech limit must be 1..{MAX_SPEECH_S} s, got {limit}")
        deputy = seat.deputy if seat.deputy is not None else s.deputy_at_home(e.seat)
        if queued is not None and queued.deputy is not None:
            deputy = queued.deputy
        effects = floor().start(
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

    def next_speaker(e: ev.NextSpeaker | ev.KeyPressed, now: int) -> Effects:
        if not floor().queue:
            return s.reject(e, "queue_empty", "nobody is waiting for the floor")
        # The first in the queue whose console works; a request from an offline seat keeps its place.
        head = next((r for r in floor().queue if s.seats[r.seat].online), None)
        if head is None:
            return s.reject(e, "queue_unreachable", "every seat waiting for the floor is offline")
        ended = floor().end_all(now, "next_speaker")
        granted = grant(ev.GrantFloor(seat=head.seat), now)
        s.refresh_deadline()
        return ended + granted

    def revoke(e: ev.RevokeFloor, now: int) -> Effects:
        if e.seat not in floor().speeches:
            return s.reject(e, "not_speaking", f"seat {e.seat} does not have the floor")
        effects = floor().end(e.seat, now, "revoked")
        s.refresh_deadline()
        return effects

    def extend(e: ev.ExtendSpeech, now: int) -> Effects:
        if e.seat not in floor().speeches:
            return s.reject(e, "not_speaking", f"seat {e.seat} does not have the floor")
        if not 1 <= e.extra_s <= MAX_SPEECH_S:
            return s.reject(e, "bad_limit", f"extra time must be 1..{MAX_SPEECH_S} s")
        floor().extend(e.seat, e.extra_s)
        s.refresh_deadline()
        return ()

    def priority(e: ev.ChairPriority | ev.KeyPressed, now: int) -> Effects:
        effects = floor().end_all(now, "chair_priority")
        s.refresh_deadline()
        return effects

    return {
        ev.RequestFloor: request,
        ev.WithdrawRequest: withdraw,
        ev.GrantFloor: grant,
        ev.NextSpeaker: next_speaker,
        ev.RevokeFloor: revoke,
        ev.ExtendSpeech: extend,
        ev.ChairPriority: priority,
    }

"""Handlers of what a seat's hardware reports: cards in and out, presence, the console and its
microphone unit going offline and coming back.  (Key presses are in chamber.core.keys: the hot path.)

Each is a function of (state, input, now) that returns the input's effects; the phase table
(chamber.core.phases) says in which phases each runs.

Identification rules: a card is active at one seat at a time, so a second insertion elsewhere is
refused with an alert and waits there until the card leaves its first seat; in assigned seating a
deputy's card works only at the deputy's own seat; a seat that goes offline releases its card.
"""

from __future__ import annotations

from chamber.core import events as ev
from chamber.core.effects import Alert, CardAccepted, Effect, Registered
from chamber.core.state import NONE, Effects, SittingState
from chamber.core.values import Seating


def card_inserted(s: SittingState, e: ev.CardInserted, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    # Whatever card was parked in this slot is not in it any more: this one is (a swap inside one
    # poll reports no removal).  Parked, the old card would later take the seat from its holder.
    s.waiting_cards.pop(seat.id, None)
    uid = e.uid.strip().upper()
    deputy = s.card_owner.get(uid)

    def refused(reason: str, why: str, alert: str) -> Effects:
        """The card is refused, and the secretary alerted: a card in the wrong slot may be a proxy."""
        s.alerts += 1
        return (
            s.rejection(e, reason, why, seat),
            Alert(kind=reason, detail=alert, seat=seat.id, deputy=deputy),
        )

    if deputy is None:
        return refused("unknown_card", f"card {uid} belongs to no deputy", f"unknown card {uid} at seat {seat.id}")
    elsewhere = s.active_seat.get(deputy)
    if elsewhere is not None and elsewhere != seat.id:
        s.waiting_cards[seat.id] = uid
        return refused(
            "card_elsewhere",
            f"deputy {deputy} is already active at seat {elsewhere}",
            f"card of deputy {deputy} inserted at seat {seat.id} while active at {elsewhere}",
        )
    home = s.home_seat.get(deputy)
    if s.rules.seating is Seating.ASSIGNED and home is not None and home != seat.id:
        return refused(
            "wrong_seat",
            f"deputy {deputy} sits at seat {home}, not {seat.id}",
            f"card of deputy {deputy} inserted at seat {seat.id}; assigned seat is {home}",
        )
    effects: Effects = ()
    if seat.deputy is not None and seat.deputy != deputy:
        effects = card_removed(s, ev.CardRemoved(seat=seat.id), now)  # a removal we never saw
    seat.deputy = deputy
    seat.uid = uid
    s.active_seat[deputy] = seat.id
    if deputy in s.registered:  # registered before the card left (or the seat went offline): relight it
        return (*effects, CardAccepted(seat=seat.id, deputy=deputy), Registered(seat=seat.id, deputy=deputy))
    return (*effects, CardAccepted(seat=seat.id, deputy=deputy))


def card_removed(s: SittingState, e: ev.CardRemoved, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    s.waiting_cards.pop(seat.id, None)
    deputy = seat.deputy
    if deputy is not None:
        s.active_seat.pop(deputy, None)
    seat.deputy = None
    seat.uid = None
    if deputy is not None:
        # The same card already waiting at another seat (it was moved there): take it now, with
        # every check an insertion gets.
        for other, uid in list(s.waiting_cards.items()):
            if s.card_owner.get(uid) == deputy:
                del s.waiting_cards[other]
                return card_inserted(s, ev.CardInserted(seat=other, uid=uid), now)
    return NONE


def presence_changed(s: SittingState, e: ev.PresenceChanged, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    seat.present = e.present
    return NONE


def seat_offline(s: SittingState, e: ev.SeatWentOffline, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    if not seat.online:
        return NONE  # reported again (a line loop repeats it when a sitting opens): one alert is enough
    seat.online = False
    # The card is released: the deputy may move to a working seat.  The console
    # reports its card again when it comes back.
    moved = card_removed(s, ev.CardRemoved(seat=seat.id), now)  # a waiting card may be taken
    s.alerts += 1
    effects: list[Effect] = [
        *moved,
        Alert(kind="seat_offline", detail=f"seat {seat.id} went offline", seat=seat.id),
    ]
    if seat.id in s.floor.speeches:
        effects.extend(s.floor.end(seat.id, now, "seat_offline"))
        s.refresh_deadline()
    return tuple(effects)


def seat_online(s: SittingState, e: ev.SeatCameOnline, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    seat.online = True
    if e.restarted:
        seat.numbering.restarted()  # it counts its events from zero again
    return (s.mode(),)  # a console that was away learns the chamber's mode


def mic_unit_changed(s: SittingState, e: ev.MicUnitChanged, now: int) -> Effects:
    seat = s.seats.get(e.seat)
    if seat is None:
        return s.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
    was, seat.mic_ok = seat.mic_ok, e.online
    if e.online or not was:
        return NONE
    s.alerts += 1
    speaking = " while its speaker has the floor" if seat.id in s.floor.speeches else ""
    detail = f"the microphone unit of seat {seat.id} is silent{speaking}"
    return (Alert(kind="mic_unit_offline", detail=detail, seat=seat.id),)

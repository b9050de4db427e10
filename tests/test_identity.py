"""Identity and anti-proxy rules: cards, seats, presence sensors, offline consoles, registration."""

from __future__ import annotations

import pytest
from factories import Driver, make_roster, ready, rules, uid

from chamber.core import events as ev
from chamber.core.effects import (
    Alert,
    CardAccepted,
    ChoiceAccepted,
    Mode,
    ModeChanged,
    Registered,
    Rejected,
    RequestLed,
)
from chamber.core.phases import Phase
from chamber.core.snapshot import RegistrationRound
from chamber.core.values import Key, Outcome, Seating

FREE = rules(seating=Seating.FREE)


def _seat_view(d: Driver, seat: int):  # type: ignore[no-untyped-def]
    return next(s for s in d.sitting.snapshot().seats if s.id == seat)


def test_card_accepted() -> None:
    d = Driver(make_roster(5))
    assert d.card(3) == (CardAccepted(seat=3, deputy=3),)
    assert _seat_view(d, 3).deputy == 3
    # UIDs are compared trimmed and upper-case
    d.apply(ev.CardRemoved(seat=3))
    assert d.apply(ev.CardInserted(seat=3, uid=" 00000003 ".lower())) == (CardAccepted(seat=3, deputy=3),)


def test_unknown_card() -> None:
    d = Driver(make_roster(5))
    effects = d.apply(ev.CardInserted(seat=2, uid="deadbeef"))
    assert len(effects) == 2
    rejected, alert = effects
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unknown_card"
    assert rejected.seat == 2
    assert alert == Alert(kind="unknown_card", detail="unknown card DEADBEEF at seat 2", seat=2)
    assert d.sitting.alerts == 1
    assert _seat_view(d, 2).deputy is None
    assert _seat_view(d, 2).rejected == 1


@pytest.mark.parametrize("seating", [Seating.ASSIGNED, Seating.FREE])
def test_card_elsewhere(seating: Seating) -> None:
    d = Driver(make_roster(5, extra_seats=2, rules=rules(seating=seating)))
    d.ok(ev.CardInserted(seat=1, uid=uid(1)))
    effects = d.apply(ev.CardInserted(seat=6, uid=uid(1)))
    assert len(effects) == 2
    rejected, alert = effects
    assert isinstance(rejected, Rejected) and rejected.reason == "card_elsewhere"
    assert rejected.seat == 6
    assert isinstance(alert, Alert)
    assert alert.kind == "card_elsewhere"
    assert alert.seat == 6
    assert alert.deputy == 1
    assert d.sitting.alerts == 1
    assert _seat_view(d, 1).deputy == 1  # the first seat is still active
    assert _seat_view(d, 6).deputy is None
    assert d.sitting.active_seat == {1: 1}


def test_wrong_seat_in_assigned_seating() -> None:
    d = Driver(make_roster(5, extra_seats=2))
    effects = d.apply(ev.CardInserted(seat=6, uid=uid(1)))
    rejected, alert = effects
    assert isinstance(rejected, Rejected) and rejected.reason == "wrong_seat"
    assert isinstance(alert, Alert) and alert.kind == "wrong_seat" and alert.seat == 6 and alert.deputy == 1
    assert d.sitting.active_seat == {}
    # another deputy's seat is wrong as well
    assert d.reject(ev.CardInserted(seat=2, uid=uid(1))).reason == "wrong_seat"


def test_free_seating_card_works_anywhere_and_votes_from_there() -> None:
    d = Driver(make_roster(5, extra_seats=2, rules=FREE))
    assert d.card(1, seat=6) == (CardAccepted(seat=6, deputy=1),)
    d.card_all([2, 3, 4])
    d.register([2, 3, 4])
    d.ok(ev.OpenRegistration())
    d.ok(ev.KeyPressed(seat=6, key=Key.REGISTER))
    d.ok(ev.KeyPressed(seat=2, key=Key.REGISTER))
    d.ok(ev.KeyPressed(seat=3, key=Key.REGISTER))
    d.ok(ev.CloseRegistration())
    d.ok(ev.OpenVote(duration_s=0))
    assert d.press(6, Key.YES) == (ChoiceAccepted(seat=6, option=0),)
    d.ok(ev.CloseVote())
    named = d.sitting.results[1].per_name[0]
    assert (named.deputy, named.seat, named.outcome) == (1, 6, Outcome.YES)


def test_another_card_replaces_the_one_in_the_slot() -> None:
    d = Driver(make_roster(5, rules=FREE))
    d.card(1, seat=1)
    assert d.card(2, seat=1) == (CardAccepted(seat=1, deputy=2),)
    assert d.sitting.active_seat == {2: 1}
    assert d.card(1, seat=3) == (CardAccepted(seat=3, deputy=1),)


def test_press_without_card() -> None:
    d = ready(5, carded=[1, 2, 3, 4])
    d.ok(ev.OpenVote(duration_s=0))
    assert _seat_view(d, 5).rejected == 0
    r = d.reject(ev.KeyPressed(seat=5, key=Key.YES))
    assert r.reason == "no_card"
    assert r.seat == 5
    assert _seat_view(d, 5).rejected == 1
    d.reject(ev.KeyPressed(seat=5, key=Key.NO))
    assert _seat_view(d, 5).rejected == 2
    assert d.sitting.vote is not None and d.sitting.vote.tally == [0, 0, 0]


def test_card_removed_then_press() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    d.ok(ev.CardRemoved(seat=2))
    assert d.reject(ev.KeyPressed(seat=2, key=Key.YES)).reason == "no_card"
    d.ok(ev.CloseVote())
    assert d.sitting.results[1].per_name[1].outcome is Outcome.ABSENT


def test_presence_required() -> None:
    d = Driver(make_roster(5, sensors=[1, 2], rules=rules(presence_required=True)))
    d.card_all(range(1, 6))
    d.ok(ev.OpenRegistration())
    assert d.reject(ev.KeyPressed(seat=1, key=Key.REGISTER)).reason == "no_presence"
    d.ok(ev.PresenceChanged(seat=1, present=True))
    d.ok(ev.PresenceChanged(seat=2, present=True))
    for seat in range(1, 6):
        d.ok(ev.KeyPressed(seat=seat, key=Key.REGISTER))
    d.ok(ev.CloseRegistration())
    d.ok(ev.PresenceChanged(seat=1, present=False))
    d.ok(ev.OpenVote(duration_s=0))
    rejected_before = _seat_view(d, 1).rejected
    assert d.reject(ev.KeyPressed(seat=1, key=Key.YES)).reason == "no_presence"
    assert _seat_view(d, 1).rejected == rejected_before + 1
    d.ok(ev.PresenceChanged(seat=1, present=True))
    assert _seat_view(d, 1).present is True
    assert d.press(1, Key.YES) == (ChoiceAccepted(seat=1, option=0),)
    d.ok(ev.PresenceChanged(seat=1, present=False))
    assert d.reject(ev.KeyPressed(seat=1, key=Key.NO)).reason == "no_presence"
    # a seat without a sensor is not held to it
    assert d.press(3, Key.YES) == (ChoiceAccepted(seat=3, option=0),)
    assert d.sitting.vote is not None and d.sitting.vote.tally == [2, 0, 0]


def test_presence_sensor_not_required_by_rules() -> None:
    d = ready(5, sensors=[1])
    d.ok(ev.OpenVote(duration_s=0))
    assert d.press(1, Key.YES) == (ChoiceAccepted(seat=1, option=0),)


def test_seat_offline_and_back() -> None:
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    effects = d.apply(ev.SeatWentOffline(seat=2))
    assert effects == (Alert(kind="seat_offline", detail="seat 2 went offline", seat=2),)
    view = _seat_view(d, 2)
    assert view.online is False
    assert view.deputy is None  # the card is released
    assert 2 not in d.sitting.active_seat
    alerts = d.sitting.alerts
    assert d.ok(ev.SeatWentOffline(seat=2)) == ()  # reported again: no second alert
    assert d.sitting.alerts == alerts
    r = d.reject(ev.KeyPressed(seat=2, key=Key.YES))
    assert r.reason == "seat_offline"
    assert _seat_view(d, 2).rejected == 1
    assert d.sitting.alerts == alerts
    assert d.apply(ev.SeatCameOnline(seat=2)) == (ModeChanged(mode=Mode.VOTE_YES_NO),)
    assert _seat_view(d, 2).online is True
    assert d.reject(ev.KeyPressed(seat=2, key=Key.YES)).reason == "no_card"  # card must be reported again
    d.card(2)
    assert d.press(2, Key.YES) == (ChoiceAccepted(seat=2, option=0),)


def test_a_console_back_from_unreachable_keeps_its_numbering_a_restarted_one_starts_afresh() -> None:
    """Events the console numbered before an outage, read again after it, are duplicates; after a
    restart the console counts from zero again and the same numbers are new presses."""
    d = ready(5)
    d.ok(ev.OpenVote(duration_s=0))
    d.ok(ev.KeyPressed(seat=2, key=Key.YES, seq=7))
    d.ok(ev.SeatWentOffline(seat=2))
    d.ok(ev.SeatCameOnline(seat=2, restarted=False))  # a cable, an adapter: the FIFO is still there
    d.card(2)
    assert d.reject(ev.KeyPressed(seat=2, key=Key.YES, seq=7)).reason == "duplicate_event"
    assert d.apply(ev.KeyPressed(seat=2, key=Key.NO, seq=8)) == (ChoiceAccepted(seat=2, option=1),)
    d.ok(ev.SeatCameOnline(seat=2, restarted=True))  # power cut: numbering from zero
    assert d.apply(ev.KeyPressed(seat=2, key=Key.YES, seq=1)) == (ChoiceAccepted(seat=2, option=0),)
    # journals written before the field existed decode with the old meaning (a reset)
    old = ev.decode_input(b'{"type":"SeatCameOnline","seat":2}')
    assert old == ev.SeatCameOnline(seat=2, restarted=True)


def test_seat_back_online_in_idle_and_registration_learns_mode() -> None:
    d = ready(5)
    d.ok(ev.SeatWentOffline(seat=1))
    assert d.apply(ev.SeatCameOnline(seat=1)) == (ModeChanged(mode=Mode.IDLE),)
    d.ok(ev.OpenRegistration())
    d.ok(ev.SeatWentOffline(seat=1))
    assert d.apply(ev.SeatCameOnline(seat=1)) == (ModeChanged(mode=Mode.REGISTRATION),)


def test_card_of_offline_seat_may_move_in_free_seating() -> None:
    d = ready(5, extra_seats=1, rules=FREE)
    d.ok(ev.SeatWentOffline(seat=1))
    # registered from seat 1 before it failed: the new seat's registration LED lights too
    assert d.card(1, seat=6) == (CardAccepted(seat=6, deputy=1), Registered(seat=6, deputy=1))


@pytest.mark.parametrize(
    "event",
    [
        ev.KeyPressed(seat=99, key=Key.YES),
        ev.CardInserted(seat=99, uid="00000001"),
        ev.CardRemoved(seat=99),
        ev.PresenceChanged(seat=99, present=True),
        ev.SeatWentOffline(seat=99),
        ev.SeatCameOnline(seat=99),
        ev.SecretBallotCast(seat=99),
        ev.RequestFloor(seat=99),
        ev.GrantFloor(seat=99),
    ],
)
def test_unknown_seat(event: ev.Input) -> None:
    d = ready(5)
    r = d.reject(event)
    assert r.reason == "unknown_seat"
    assert r.seat == 99
    assert d.sitting.rejections == 1


def test_register_key_outside_registration() -> None:
    d = ready(5)
    assert d.reject(ev.KeyPressed(seat=1, key=Key.REGISTER)).reason == "registration_not_open"


def test_registration_round() -> None:
    d = Driver(make_roster(10))
    d.card_all(range(1, 8))
    opened = d.now + 10
    assert d.apply(ev.OpenRegistration(), at=opened) == (ModeChanged(mode=Mode.REGISTRATION),)
    assert d.sitting.snapshot().registration_open is True
    assert d.press(1, Key.REGISTER) == (Registered(seat=1, deputy=1),)
    assert d.press(1, Key.REGISTER) == (Registered(seat=1, deputy=1),)  # again: no double count
    for seat in (2, 3, 4, 5):
        d.press(seat, Key.REGISTER)
    assert d.reject(ev.KeyPressed(seat=9, key=Key.REGISTER)).reason == "no_card"
    assert d.reject(ev.RegisterDeputy(deputy=9, reason="  ")).reason == "reason_required"
    assert d.reject(ev.RegisterDeputy(deputy=42, reason="x")).reason == "unknown_deputy"
    assert d.apply(ev.RegisterDeputy(deputy=9, reason="пульт 9 несправний")) == (Registered(seat=None, deputy=9),)
    snap = d.sitting.snapshot()
    assert snap.registered == 6
    assert snap.quorum is True  # 6 of 10
    closed = d.now + 10
    assert d.apply(ev.CloseRegistration(), at=closed) == (ModeChanged(mode=Mode.IDLE),)
    assert d.sitting.phase is Phase.IDLE
    assert d.sitting.rounds == [
        RegistrationRound(
            number=1,
            opened_at=opened,
            closed_at=closed,
            registered=(1, 2, 3, 4, 5, 9),
            manual=((9, "пульт 9 несправний"),),
            count=6,
            quorum=True,
        )
    ]
    # a second round starts empty and is kept beside the first
    d.register([1, 2, 3])
    snap = d.sitting.snapshot()
    assert len(snap.rounds) == 2
    assert snap.rounds[0].count == 6
    assert snap.rounds[1].number == 2
    assert snap.rounds[1].registered == (1, 2, 3)
    assert snap.rounds[1].manual == ()
    assert snap.rounds[1].count == 3
    assert snap.rounds[1].quorum is False
    assert snap.registered == 3
    assert snap.quorum is False


def test_register_deputy_only_during_registration() -> None:
    d = ready(5)
    assert d.reject(ev.RegisterDeputy(deputy=1, reason="x")).reason == "not_allowed"


def test_a_card_seen_at_its_new_seat_before_it_left_the_old_one_is_taken_when_it_leaves() -> None:
    """Consoles are polled in turn: a moved card may show up at the new seat first (free seating)."""
    roster = make_roster(6, rules=rules(seating=Seating.FREE))
    d = Driver()
    d.ok(ev.OpenSitting(roster=roster))
    card = roster.deputies[0].cards[0]
    d.ok(ev.CardInserted(seat=1, uid=card))
    effects = d.apply(ev.CardInserted(seat=5, uid=card))
    assert isinstance(effects[0], Rejected) and effects[0].reason == "card_elsewhere"
    effects = d.apply(ev.CardRemoved(seat=1))
    assert CardAccepted(seat=5, deputy=roster.deputies[0].id) in effects
    snap = d.sitting.snapshot()
    assert snap.seats[0].deputy is None and snap.seats[4].deputy == roster.deputies[0].id


def test_a_refused_card_swapped_out_of_the_slot_does_not_take_the_seat_later() -> None:
    """Free seating: deputy 1's card is refused at seat 3 (active at seat 1) and parked there; deputy 3
    then puts their own card in seat 3 (a swap within one poll: no removal reported).  When deputy 1
    leaves seat 1, the parked card must not take seat 3 from deputy 3, nor deputy 3's vote."""
    roster = make_roster(4, rules=FREE)
    d = Driver()
    d.ok(ev.OpenSitting(roster=roster))
    card = {dep.id: dep.cards[0] for dep in roster.deputies}
    for seat in (1, 3):
        d.ok(ev.CardInserted(seat=seat, uid=card[seat]))
    d.ok(ev.CardRemoved(seat=3))
    assert d.reject(ev.CardInserted(seat=3, uid=card[1])).reason == "card_elsewhere"
    d.ok(ev.CardInserted(seat=3, uid=card[3]))
    d.ok(ev.CardRemoved(seat=1))
    assert _seat_view(d, 3).deputy == 3 and _seat_view(d, 1).deputy is None
    d.ok(ev.OpenRegistration())
    d.press(3, Key.REGISTER)
    d.ok(ev.CloseRegistration())
    assert d.sitting.registered == {3}


def test_console_outputs_restate_what_every_console_shows() -> None:
    d = ready(5, carded=range(1, 5), registered=range(1, 4))
    d.press(4, Key.SPEAK)
    d.ok(ev.OpenVote(duration_s=0))
    d.press(2, Key.NO)
    outputs = d.sitting.console_outputs()
    assert outputs[0] == ModeChanged(mode=Mode.VOTE_YES_NO)
    assert {e for e in outputs if isinstance(e, CardAccepted)} == {CardAccepted(seat=i, deputy=i) for i in range(1, 5)}
    assert {e.seat for e in outputs if isinstance(e, Registered)} == {1, 2, 3}
    assert [e for e in outputs if isinstance(e, ChoiceAccepted)] == [ChoiceAccepted(seat=2, option=1)]
    assert RequestLed(seat=4, on=True) in outputs
    assert Driver().sitting.console_outputs() == (ModeChanged(mode=Mode.IDLE),)  # no sitting: consoles idle

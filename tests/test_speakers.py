"""The floor: speaker queue order, microphones, limits and warnings, chair priority, the speech log."""

from __future__ import annotations

from factories import Driver, is_rejected, ready, rules

from chamber.core import events as ev
from chamber.core.effects import Alert, MicOff, MicOn, Rejected, RequestLed, SpeechTimeUp, SpeechWarning, VoteOpened
from chamber.core.speakers import NEVER, SpeechRecord
from chamber.core.values import Key, SpeechKind

CHAIR = 100


def _floor(**rule_changes: object) -> Driver:
    """Six deputies carded and registered at seats 1..6, a chair console at seat 100."""
    return ready(6, chair_seat=CHAIR, rules=rules(**rule_changes))


def _queue(d: Driver) -> list[tuple[int, SpeechKind]]:
    return [(r.seat, r.kind) for r in d.sitting.snapshot().queue]


def _speaking(d: Driver) -> list[int]:
    return sorted(s.seat for s in d.sitting.snapshot().speaking)


def test_queue_order_by_kind_then_time() -> None:
    d = _floor()
    assert d.press(1, Key.SPEAK) == (RequestLed(seat=1, on=True),)
    assert d.press(2, Key.REPLY) == (RequestLed(seat=2, on=True),)
    assert d.press(3, Key.ORDER) == (RequestLed(seat=3, on=True),)
    d.press(4, Key.SPEAK)
    d.press(5, Key.ORDER)
    assert d.apply(ev.RequestFloor(seat=6, kind=SpeechKind.REPLY)) == (RequestLed(seat=6, on=True),)
    assert _queue(d) == [
        (3, SpeechKind.POINT_OF_ORDER),
        (5, SpeechKind.POINT_OF_ORDER),
        (2, SpeechKind.REPLY),
        (6, SpeechKind.REPLY),
        (1, SpeechKind.SPEECH),
        (4, SpeechKind.SPEECH),
    ]
    snap = d.sitting.snapshot()
    assert [r.deputy for r in snap.queue] == [3, 5, 2, 6, 1, 4]
    assert snap.queue[0].at < snap.queue[1].at  # within a kind: by request time
    assert snap.queue[4].at < snap.queue[5].at
    assert all(s.queued for s in snap.seats if s.id <= 6)


def test_same_time_requests_keep_arrival_order() -> None:
    d = _floor()
    d.apply(ev.KeyPressed(seat=4, key=Key.SPEAK), at=5_000)
    d.apply(ev.KeyPressed(seat=2, key=Key.SPEAK), at=5_000)
    d.apply(ev.KeyPressed(seat=3, key=Key.SPEAK), at=5_000)
    assert [s for s, _ in _queue(d)] == [4, 2, 3]


def test_pressing_again_withdraws() -> None:
    d = _floor()
    d.press(1, Key.SPEAK)
    d.press(2, Key.SPEAK)
    assert d.press(1, Key.SPEAK) == (RequestLed(seat=1, on=False),)
    assert _queue(d) == [(2, SpeechKind.SPEECH)]
    assert d.apply(ev.WithdrawRequest(seat=2)) == (RequestLed(seat=2, on=False),)
    assert _queue(d) == []
    assert d.reject(ev.WithdrawRequest(seat=2)).reason == "not_queued"


def test_request_twice_by_command() -> None:
    d = _floor()
    d.ok(ev.RequestFloor(seat=1))
    assert d.reject(ev.RequestFloor(seat=1)).reason == "already_queued"


def test_grant_turns_the_mic_on() -> None:
    d = _floor()
    d.press(2, Key.REPLY)
    t = d.now + 10
    assert d.apply(ev.GrantFloor(seat=2), at=t) == (RequestLed(seat=2, on=False), MicOn(seat=2))
    assert _queue(d) == []
    (speech,) = d.sitting.snapshot().speaking
    assert speech == SpeechRecord(seat=2, deputy=2, kind=SpeechKind.REPLY, item=None, start=t, limit_s=60)
    assert d.reject(ev.GrantFloor(seat=2)).reason == "speaking"
    assert d.reject(ev.KeyPressed(seat=2, key=Key.SPEAK)).reason == "speaking"
    assert d.apply(ev.GrantFloor(seat=3)) == (MicOn(seat=3),)  # not queued: a speech by default
    assert d.sitting.snapshot().speaking[1].kind is SpeechKind.SPEECH


def test_grant_bad_limit_and_offline() -> None:
    d = _floor()
    assert d.reject(ev.GrantFloor(seat=1, limit_s=0)).reason == "bad_limit"
    d.ok(ev.SeatWentOffline(seat=2))
    assert d.reject(ev.GrantFloor(seat=2)).reason == "seat_offline"
    assert _speaking(d) == []


def test_max_open_mics_not_counting_the_chair() -> None:
    d = _floor(max_open_mics=2)
    assert d.apply(ev.GrantFloor(seat=CHAIR)) == (MicOn(seat=CHAIR),)
    d.ok(ev.GrantFloor(seat=1))
    d.ok(ev.GrantFloor(seat=2))
    r = d.reject(ev.GrantFloor(seat=3))
    assert r.reason == "max_mics"
    assert _speaking(d) == [1, 2, CHAIR]
    d.ok(ev.RevokeFloor(seat=1))
    assert d.apply(ev.GrantFloor(seat=3)) == (MicOn(seat=3),)


def test_chair_gets_the_mic_even_at_the_maximum() -> None:
    d = _floor(max_open_mics=1)
    d.ok(ev.GrantFloor(seat=1))
    assert d.apply(ev.GrantFloor(seat=CHAIR)) == (MicOn(seat=CHAIR),)


def test_next_speaker() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=CHAIR))
    d.ok(ev.GrantFloor(seat=1))
    d.press(2, Key.REPLY)
    d.press(3, Key.ORDER)
    t = d.now + 10
    effects = d.apply(ev.NextSpeaker(), at=t)
    assert effects == (MicOff(seat=1, reason="next_speaker"), RequestLed(seat=3, on=False), MicOn(seat=3))
    assert _speaking(d) == [3, CHAIR]
    assert _queue(d) == [(2, SpeechKind.REPLY)]
    log = d.sitting.snapshot().speeches
    assert log[-1].seat == 1 and log[-1].end == t and log[-1].ended_by == "next_speaker"
    # the chair's NEXT key does the same
    effects = d.apply(ev.KeyPressed(seat=CHAIR, key=Key.NEXT))
    assert effects == (MicOff(seat=3, reason="next_speaker"), RequestLed(seat=2, on=False), MicOn(seat=2))
    assert d.reject(ev.NextSpeaker()).reason == "queue_empty"


def test_chair_keys_only_on_the_chair_console() -> None:
    d = _floor()
    assert d.reject(ev.KeyPressed(seat=1, key=Key.NEXT)).reason == "not_chair"
    assert d.reject(ev.KeyPressed(seat=1, key=Key.PRIORITY)).reason == "not_chair"


def test_speech_warning_then_mic_off_at_limit() -> None:
    d = _floor()
    t0 = 50_000
    d.ok(ev.GrantFloor(seat=1), at=t0)  # a speech: 180 s, warning 30 s before
    assert d.sitting.next_deadline() == t0 + 150_000
    assert d.apply(ev.Tick(), at=t0 + 149_999) == ()
    assert d.apply(ev.Tick(), at=t0 + 150_000) == (SpeechWarning(seat=1, remaining_s=30),)
    assert d.sitting.next_deadline() == t0 + 180_000
    assert d.apply(ev.Tick(), at=t0 + 179_999) == ()
    assert d.apply(ev.Tick(), at=t0 + 180_000) == (MicOff(seat=1, reason="time_limit"),)
    assert _speaking(d) == []
    assert d.sitting.next_deadline() == NEVER
    (rec,) = d.sitting.snapshot().speeches
    assert (rec.start, rec.end, rec.ended_by, rec.limit_s) == (t0, t0 + 180_000, "time_limit", 180)


def test_late_input_fires_warning_and_limit_with_their_own_time() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=1), at=10_000)
    effects = d.apply(ev.KeyPressed(seat=2, key=Key.SPEAK), at=500_000)
    assert effects == (
        SpeechWarning(seat=1, remaining_s=0),
        MicOff(seat=1, reason="time_limit"),
        RequestLed(seat=2, on=True),
    )
    assert d.sitting.snapshot().speeches[0].end == 190_000


def test_only_signal_when_auto_mic_off_is_false() -> None:
    d = _floor(auto_mic_off=False)
    t0 = 20_000
    d.ok(ev.GrantFloor(seat=1, kind=SpeechKind.REPLY), at=t0)  # 60 s, warning at 30 s
    assert d.apply(ev.Tick(), at=t0 + 30_000) == (SpeechWarning(seat=1, remaining_s=30),)
    assert d.apply(ev.Tick(), at=t0 + 60_000) == (SpeechTimeUp(seat=1),)
    assert _speaking(d) == [1]
    assert d.sitting.next_deadline() == NEVER
    assert d.apply(ev.Tick(), at=t0 + 120_000) == ()  # signalled once
    assert d.sitting.snapshot().speeches == ()


def test_extend_speech_moves_the_deadline() -> None:
    d = _floor()
    t0 = 10_000
    d.ok(ev.GrantFloor(seat=1), at=t0)
    assert d.reject(ev.ExtendSpeech(seat=2, extra_s=60)).reason == "not_speaking"
    assert d.reject(ev.ExtendSpeech(seat=1, extra_s=0)).reason == "bad_limit"
    assert d.apply(ev.ExtendSpeech(seat=1, extra_s=60), at=t0 + 1_000) == ()
    assert d.sitting.next_deadline() == t0 + 210_000
    assert d.sitting.snapshot().speaking[0].limit_s == 240
    assert d.apply(ev.Tick(), at=t0 + 180_000) == ()
    assert d.apply(ev.Tick(), at=t0 + 210_000) == (SpeechWarning(seat=1, remaining_s=30),)
    assert d.apply(ev.Tick(), at=t0 + 240_000) == (MicOff(seat=1, reason="time_limit"),)


def test_chair_priority_mutes_all_but_the_chair() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=CHAIR))
    d.ok(ev.GrantFloor(seat=1))
    d.ok(ev.GrantFloor(seat=2))
    effects = d.apply(ev.ChairPriority())
    assert effects == (MicOff(seat=1, reason="chair_priority"), MicOff(seat=2, reason="chair_priority"))
    assert _speaking(d) == [CHAIR]
    d.ok(ev.GrantFloor(seat=3))
    assert d.apply(ev.KeyPressed(seat=CHAIR, key=Key.PRIORITY)) == (MicOff(seat=3, reason="chair_priority"),)
    assert _speaking(d) == [CHAIR]


def test_opening_a_vote_ends_speeches_and_blocks_grants() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=CHAIR))
    d.ok(ev.GrantFloor(seat=1))
    d.ok(ev.GrantFloor(seat=2))
    t = d.now + 10
    effects = d.apply(ev.OpenVote(duration_s=0), at=t)
    assert effects[:3] == (
        MicOff(seat=1, reason="vote_opened"),
        MicOff(seat=2, reason="vote_opened"),
        VoteOpened(vote=1),
    )
    assert _speaking(d) == [CHAIR]
    assert [(r.seat, r.end, r.ended_by) for r in d.sitting.snapshot().speeches] == [
        (1, t, "vote_opened"),
        (2, t, "vote_opened"),
    ]
    r = d.reject(ev.GrantFloor(seat=3))
    assert r.reason == "not_allowed"
    assert d.reject(ev.NextSpeaker()).reason == "not_allowed"
    # requests may still queue during the vote
    assert d.press(3, Key.SPEAK) == (RequestLed(seat=3, on=True),)
    assert _queue(d) == [(3, SpeechKind.SPEECH)]


def test_chair_next_key_during_vote_gives_no_floor() -> None:
    """The chair's NEXT key must obey the phase table like the NextSpeaker command."""
    d = _floor()
    d.press(3, Key.SPEAK)
    d.ok(ev.OpenVote(duration_s=0))
    effects = d.apply(ev.KeyPressed(seat=CHAIR, key=Key.NEXT))
    assert MicOn(seat=3) not in effects
    assert _speaking(d) == []


def test_speech_log_entry() -> None:
    d = _floor()
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="3", title="Про бюджет", draft="757/2"),)))
    d.ok(ev.SetCurrentItem(number="3"))
    d.press(4, Key.SPEAK)
    start = d.now + 100
    d.ok(ev.GrantFloor(seat=4, limit_s=120), at=start)
    end = start + 42_000
    assert d.apply(ev.RevokeFloor(seat=4), at=end) == (MicOff(seat=4, reason="revoked"),)
    assert d.sitting.snapshot().speeches == (
        SpeechRecord(
            seat=4, deputy=4, kind=SpeechKind.SPEECH, item="3", start=start, end=end, limit_s=120, ended_by="revoked"
        ),
    )
    assert d.reject(ev.RevokeFloor(seat=4)).reason == "not_speaking"


def test_seat_offline_ends_its_speech() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=1))
    effects = d.apply(ev.SeatWentOffline(seat=1))
    assert effects[-1] == MicOff(seat=1, reason="seat_offline")
    assert _speaking(d) == []
    assert d.sitting.next_deadline() == NEVER


def test_close_sitting_ends_every_speech_including_the_chair() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=CHAIR))
    d.ok(ev.GrantFloor(seat=1))
    effects = d.apply(ev.CloseSitting())
    assert effects[:2] == (MicOff(seat=1, reason="sitting_closed"), MicOff(seat=CHAIR, reason="sitting_closed"))


def test_next_speaker_rejected_changes_nothing() -> None:
    """A NextSpeaker that cannot grant the head of the queue must be rejected without side effects."""
    d = _floor()
    d.ok(ev.GrantFloor(seat=1))
    d.press(3, Key.SPEAK)
    d.ok(ev.SeatWentOffline(seat=3))
    effects = d.apply(ev.NextSpeaker())
    assert is_rejected(effects)
    assert len(effects) == 1
    assert isinstance(effects[0], Rejected) and effects[0].reason == "queue_unreachable"
    assert _speaking(d) == [1]


def test_a_silent_microphone_unit_raises_one_alert_and_shows_on_the_seat() -> None:
    d = _floor()
    d.ok(ev.GrantFloor(seat=4))
    alerts = d.sitting.alerts
    effects = d.ok(ev.MicUnitChanged(seat=4, online=False))
    detail = "the microphone unit of seat 4 is silent while its speaker has the floor"
    assert effects == (Alert(kind="mic_unit_offline", detail=detail, seat=4),)
    assert not d.sitting.snapshot().seats[3].mic_ok
    assert d.ok(ev.MicUnitChanged(seat=4, online=False)) == ()  # reported again: no second alert
    assert d.ok(ev.MicUnitChanged(seat=4, online=True)) == ()
    assert d.sitting.snapshot().seats[3].mic_ok and d.sitting.alerts == alerts + 1
    assert d.sitting.snapshot().seats[3].speaking  # the speech goes on: the deputy may use a hand microphone
    assert d.reject(ev.MicUnitChanged(seat=99, online=False)).reason == "unknown_seat"

"""The phase table: everything outside a phase's row is rejected, every move in it happens."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from factories import Driver, make_roster, ready, replay

from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.phases import TRANSITIONS, Phase, allowed
from chamber.core.values import Key, SpeechKind, VoteKind

ROSTER = make_roster(10)

SAMPLES: dict[type, ev.Input] = {
    ev.KeyPressed: ev.KeyPressed(seat=1, key=Key.YES),
    ev.CardInserted: ev.CardInserted(seat=1, uid="00000001"),
    ev.CardRemoved: ev.CardRemoved(seat=1),
    ev.PresenceChanged: ev.PresenceChanged(seat=1, present=True),
    ev.SeatWentOffline: ev.SeatWentOffline(seat=1),
    ev.SeatCameOnline: ev.SeatCameOnline(seat=1),
    ev.MicUnitChanged: ev.MicUnitChanged(seat=1, online=False),
    ev.SecretBallotCast: ev.SecretBallotCast(seat=1),
    ev.Tick: ev.Tick(),
    ev.OpenSitting: ev.OpenSitting(roster=ROSTER),
    ev.CloseSitting: ev.CloseSitting(),
    ev.SetAgenda: ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Бюджет"),)),
    ev.SetCurrentItem: ev.SetCurrentItem(number=None),
    ev.OpenRegistration: ev.OpenRegistration(),
    ev.CloseRegistration: ev.CloseRegistration(),
    ev.RegisterDeputy: ev.RegisterDeputy(deputy=1, reason="пульт несправний"),
    ev.OpenVote: ev.OpenVote(duration_s=0),
    ev.CloseVote: ev.CloseVote(),
    ev.AnnounceResult: ev.AnnounceResult(),
    ev.ClearResult: ev.ClearResult(),
    ev.CancelVote: ev.CancelVote(reason="технічний збій"),
    ev.SecretTallySealed: ev.SecretTallySealed(vote=1, counts=(0, 0, 0)),
    ev.AnnulSecretVote: ev.AnnulSecretVote(reason="перезапуск"),
    ev.RequestFloor: ev.RequestFloor(seat=2, kind=SpeechKind.SPEECH),
    ev.WithdrawRequest: ev.WithdrawRequest(seat=2),
    ev.GrantFloor: ev.GrantFloor(seat=2),
    ev.NextSpeaker: ev.NextSpeaker(),
    ev.RevokeFloor: ev.RevokeFloor(seat=2),
    ev.ExtendSpeech: ev.ExtendSpeech(seat=2, extra_s=30),
    ev.ChairPriority: ev.ChairPriority(),
}


def test_samples_cover_every_input_type() -> None:
    assert set(SAMPLES) == set(ev.INPUT_TYPES.values())
    assert set(TRANSITIONS) == set(Phase)


def _idle() -> Driver:
    return ready(10)


def _vote_open(kind: VoteKind = VoteKind.ROLL_CALL) -> Driver:
    d = _idle()
    d.ok(ev.OpenVote(duration_s=0, kind=kind, legal_basis="ст. 55"))
    return d


def _vote_closed() -> Driver:
    d = _vote_open()
    d.ok(ev.CloseVote())
    return d


def _result_shown() -> Driver:
    d = _vote_closed()
    d.ok(ev.AnnounceResult())
    return d


def _registration() -> Driver:
    d = _idle()
    d.ok(ev.OpenRegistration())
    return d


BUILDERS: dict[Phase, Callable[[], Driver]] = {
    Phase.NO_SITTING: Driver,
    Phase.IDLE: _idle,
    Phase.REGISTRATION: _registration,
    Phase.VOTE_OPEN: _vote_open,
    Phase.VOTE_CLOSED: _vote_closed,
    Phase.RESULT_SHOWN: _result_shown,
}


@pytest.mark.parametrize("phase", list(Phase))
def test_builders_reach_their_phase(phase: Phase) -> None:
    assert BUILDERS[phase]().sitting.phase is phase


FORBIDDEN = [
    (phase, name) for phase in Phase for name, cls in sorted(ev.INPUT_TYPES.items()) if cls not in TRANSITIONS[phase]
]


def test_forbidden_list_is_not_empty() -> None:
    # 6 phases x 30 inputs, minus the allowed cells
    assert len(ev.INPUT_TYPES) == 30
    assert len(FORBIDDEN) == 6 * 30 - sum(len(row) for row in TRANSITIONS.values())
    assert len(FORBIDDEN) > 60


@pytest.mark.parametrize(("phase", "name"), FORBIDDEN)
def test_input_outside_row_is_rejected_not_allowed(phase: Phase, name: str) -> None:
    d = BUILDERS[phase]()
    before = d.sitting.snapshot()
    effects = d.apply(SAMPLES[ev.INPUT_TYPES[name]])
    assert len(effects) == 1
    rejected = effects[0]
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "not_allowed"
    assert rejected.input == name
    assert d.sitting.phase is phase
    after = d.sitting.snapshot()
    assert after.rejections == before.rejections + 1
    # nothing else changed but the clock and the counters of rejections
    strip = {"clock": 0, "rejections": 0, "seats": ()}
    assert msgspec.structs.replace(after, **strip) == msgspec.structs.replace(before, **strip)


def test_allowed_lists_names() -> None:
    assert allowed(Phase.NO_SITTING) == ["OpenSitting", "Tick"]
    assert "GrantFloor" not in allowed(Phase.VOTE_OPEN)
    assert "RequestFloor" in allowed(Phase.VOTE_OPEN)


# --- every move with a target phase ---------------------------------------------------------------

MOVES: list[tuple[Phase, type, Phase, Callable[[], Driver], ev.Input]] = [
    (Phase.NO_SITTING, ev.OpenSitting, Phase.IDLE, Driver, ev.OpenSitting(roster=ROSTER)),
    (Phase.IDLE, ev.OpenRegistration, Phase.REGISTRATION, _idle, ev.OpenRegistration()),
    (Phase.IDLE, ev.OpenVote, Phase.VOTE_OPEN, _idle, ev.OpenVote()),
    (Phase.IDLE, ev.CloseSitting, Phase.NO_SITTING, _idle, ev.CloseSitting()),
    (Phase.REGISTRATION, ev.CloseRegistration, Phase.IDLE, _registration, ev.CloseRegistration()),
    (Phase.VOTE_OPEN, ev.CloseVote, Phase.VOTE_CLOSED, _vote_open, ev.CloseVote()),
    (Phase.VOTE_OPEN, ev.CancelVote, Phase.IDLE, _vote_open, ev.CancelVote(reason="збій")),
    (
        Phase.VOTE_OPEN,
        ev.AnnulSecretVote,
        Phase.IDLE,
        lambda: _vote_open(VoteKind.SECRET),
        ev.AnnulSecretVote(reason="перезапуск"),
    ),
    (Phase.VOTE_CLOSED, ev.AnnounceResult, Phase.RESULT_SHOWN, _vote_closed, ev.AnnounceResult()),
    (Phase.VOTE_CLOSED, ev.CancelVote, Phase.IDLE, _vote_closed, ev.CancelVote(reason="збій")),
    (
        Phase.VOTE_CLOSED,
        ev.AnnulSecretVote,
        Phase.IDLE,
        lambda: _secret_closed_unsealed(),
        ev.AnnulSecretVote(reason="перезапуск"),
    ),
    (Phase.RESULT_SHOWN, ev.ClearResult, Phase.IDLE, _result_shown, ev.ClearResult()),
    (Phase.RESULT_SHOWN, ev.OpenVote, Phase.VOTE_OPEN, _result_shown, ev.OpenVote()),
    (Phase.RESULT_SHOWN, ev.OpenRegistration, Phase.REGISTRATION, _result_shown, ev.OpenRegistration()),
    (Phase.RESULT_SHOWN, ev.CloseSitting, Phase.NO_SITTING, _result_shown, ev.CloseSitting()),
]


def _secret_closed_unsealed() -> Driver:
    """A secret vote closed after a restart: its choices were lost, so no tally could be sealed."""
    d = _vote_open(VoteKind.SECRET)
    d.ok(ev.KeyPressed(seat=1, key=Key.YES))
    s = replay(d.journal)
    d.sitting = s
    d.ok(ev.CloseVote())
    assert d.sitting.vote is not None and d.sitting.vote.sealed is None
    return d


def test_moves_cover_every_target_in_the_table() -> None:
    targets = {(p, cls, t) for p, row in TRANSITIONS.items() for cls, t in row.items() if t is not None}
    assert {(p, cls, t) for p, cls, t, _, _ in MOVES} == targets


@pytest.mark.parametrize(
    ("phase", "cls", "target", "build", "event"),
    MOVES,
    ids=[f"{p}-{c.__name__}-{t}" for p, c, t, _, _ in MOVES],
)
def test_allowed_move_reaches_target(
    phase: Phase, cls: type, target: Phase, build: Callable[[], Driver], event: ev.Input
) -> None:
    d = build()
    assert d.sitting.phase is phase
    assert type(event) is cls
    d.ok(event)
    assert d.sitting.phase is target


def test_rejected_allowed_input_keeps_phase() -> None:
    d = ready(10, registered=[1, 2])  # no quorum
    r = d.reject(ev.OpenVote())
    assert r.reason == "no_quorum"
    assert d.sitting.phase is Phase.IDLE
    d = _vote_open()
    assert d.reject(ev.CancelVote(reason="  ")).reason == "reason_required"
    assert d.sitting.phase is Phase.VOTE_OPEN
    d = _vote_closed()
    assert d.reject(ev.AnnulSecretVote(reason="x")).reason == "nothing_to_annul"
    assert d.sitting.phase is Phase.VOTE_CLOSED


def test_secret_result_cannot_be_announced_before_seal() -> None:
    d = _secret_closed_unsealed()
    assert d.reject(ev.AnnounceResult()).reason == "no_result"
    assert d.sitting.phase is Phase.VOTE_CLOSED


def test_close_sitting_from_idle_emits_closed() -> None:
    d = _idle()
    effects = d.ok(ev.CloseSitting())
    assert type(effects[-1]).__name__ == "SittingClosed"
    assert d.sitting.phase is Phase.NO_SITTING
    assert d.reject(ev.KeyPressed(seat=1, key=Key.REGISTER)).reason == "not_allowed"


def test_reopened_sitting_starts_from_nothing() -> None:
    d = _result_shown()
    d.ok(ev.CloseSitting())
    d.ok(ev.OpenSitting(roster=ROSTER, number=8))
    snap = d.sitting.snapshot()
    assert snap.number == 8
    assert snap.registered == 0
    assert snap.quorum is False
    assert snap.results == ()
    assert snap.rounds == ()
    assert snap.vote is None
    assert d.reject(ev.OpenVote()).reason == "no_quorum"


def test_agenda_items_current_item_and_their_rejections() -> None:
    d = ready(10)
    item = ev.AgendaItem
    d.ok(
        ev.SetAgenda(items=(item(number="1", title="Порядок денний"), item(number="2", title="Бюджет", draft="757/2")))
    )
    d.ok(ev.SetCurrentItem(number="2"))
    snap = d.sitting.snapshot()
    assert [i.number for i in snap.agenda] == ["1", "2"] and snap.agenda[1].draft == "757/2"
    assert snap.current_item == "2"
    # two items numbered alike: the whole agenda is refused, the old one stays
    twice = ev.SetAgenda(items=(item(number="3", title="А"), item(number="3", title="Б")))
    assert d.reject(twice).reason == "duplicate_item"
    assert [i.number for i in d.sitting.agenda] == ["1", "2"] and d.sitting.current_item == "2"
    assert d.reject(ev.SetCurrentItem(number="9")).reason == "unknown_item"
    # a new agenda without the current item: no item is current any more
    d.ok(ev.SetAgenda(items=(item(number="1", title="Порядок денний"),)))
    assert d.sitting.current_item is None
    d.ok(ev.SetCurrentItem(number="1"))
    d.ok(ev.SetCurrentItem(number=None))
    assert d.sitting.current_item is None

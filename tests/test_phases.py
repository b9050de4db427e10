"""The phase table: it is the rule written out below; everything outside a phase's row is rejected and
changes nothing, everything inside reaches its handler, and every move in it happens."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from factories import Driver, make_roster, ready, replay

from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.phases import DEADLINES, TRANSITIONS, Phase, allowed
from chamber.core.snapshot import Snapshot
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


# --- what each phase accepts, written out independently of the table ------------------------------
#
# The table in chamber/core/phases.py is the code; this is the rule it must implement, spelled out
# here so that a cell added to or dropped from the table fails a test instead of changing what the
# tests below check.  (Deadline inputs are the sitting's own: see test_deadline_cells.)

SEAT = {
    "KeyPressed",
    "CardInserted",
    "CardRemoved",
    "PresenceChanged",
    "SeatWentOffline",
    "SeatCameOnline",
    "MicUnitChanged",
    "SecretBallotCast",
}
QUEUE = {"RequestFloor", "WithdrawRequest", "RevokeFloor", "ExtendSpeech", "ChairPriority"}
FLOOR = QUEUE | {"GrantFloor", "NextSpeaker"}
AGENDA = {"SetAgenda", "SetCurrentItem"}


def _stays(*groups: set[str]) -> dict[str, Phase | None]:
    return dict.fromkeys(set().union(*groups))


EXPECTED: dict[Phase, dict[str, Phase | None]] = {
    Phase.NO_SITTING: {"Tick": None, "OpenSitting": Phase.IDLE},
    Phase.IDLE: {
        **_stays(SEAT, FLOOR, AGENDA, {"Tick"}),
        "OpenRegistration": Phase.REGISTRATION,
        "OpenVote": Phase.VOTE_OPEN,
        "CloseSitting": Phase.NO_SITTING,
    },
    Phase.REGISTRATION: {**_stays(SEAT, FLOOR, AGENDA, {"Tick", "RegisterDeputy"}), "CloseRegistration": Phase.IDLE},
    Phase.VOTE_OPEN: {
        **_stays(SEAT, QUEUE, {"Tick"}),  # no floor given, no agenda changed while a vote is open
        "CloseVote": Phase.VOTE_CLOSED,
        "CancelVote": Phase.IDLE,
        "AnnulSecretVote": Phase.IDLE,
    },
    Phase.VOTE_CLOSED: {
        **_stays(SEAT, FLOOR, AGENDA, {"Tick", "SecretTallySealed"}),
        "AnnounceResult": Phase.RESULT_SHOWN,
        "CancelVote": Phase.IDLE,
        "AnnulSecretVote": Phase.IDLE,
    },
    Phase.RESULT_SHOWN: {
        **_stays(SEAT, FLOOR, AGENDA, {"Tick"}),
        "ClearResult": Phase.IDLE,
        "OpenVote": Phase.VOTE_OPEN,
        "OpenRegistration": Phase.REGISTRATION,
        "CloseSitting": Phase.NO_SITTING,
    },
}

FORBIDDEN = [(phase, name) for phase in Phase for name in sorted(ev.INPUT_TYPES) if name not in EXPECTED[phase]]
ALLOWED = [(phase, name) for phase in Phase for name in sorted(EXPECTED[phase])]


def test_the_table_is_the_rule() -> None:
    for phase in Phase:
        given = {cls.__name__: move.to for cls, move in TRANSITIONS[phase].items() if cls not in DEADLINES}
        assert given == EXPECTED[phase], phase


def test_the_rule_covers_every_cell() -> None:
    assert len(ev.INPUT_TYPES) == 30
    assert all(set(row) <= set(ev.INPUT_TYPES) for row in EXPECTED.values())
    assert len(ALLOWED) == 104 and len(FORBIDDEN) == 6 * 30 - 104


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
    assert sum(s.rejected for s in after.seats) - sum(s.rejected for s in before.seats) in (0, 1)
    # nothing else changed but the clock and the counters of rejections
    assert _unchanged_view(after) == _unchanged_view(before)


def _unchanged_view(snapshot: Snapshot) -> Snapshot:
    seats = tuple(msgspec.structs.replace(s, rejected=0) for s in snapshot.seats)
    return msgspec.structs.replace(snapshot, clock=0, rejections=0, seats=seats)


@pytest.mark.parametrize(("phase", "name"), ALLOWED)
def test_input_inside_row_reaches_its_handler(phase: Phase, name: str) -> None:
    """An accepted cell is not refused by the table (its handler may still refuse it on its merits)."""
    effects = BUILDERS[phase]().apply(SAMPLES[ev.INPUT_TYPES[name]])
    first = effects[0] if effects else None
    assert not (isinstance(first, Rejected) and first.reason == "not_allowed"), effects


def test_deadline_cells() -> None:
    """A timed vote's end closes it from VOTE_OPEN only; the speech timers run in every phase."""
    for phase in Phase:
        row = TRANSITIONS[phase]
        assert (ev.VoteTimeUp in row) is (phase is Phase.VOTE_OPEN)
        assert ev.SpeechDue in row and row[ev.SpeechDue].to is None
    assert TRANSITIONS[Phase.VOTE_OPEN][ev.VoteTimeUp].to is Phase.VOTE_CLOSED


@pytest.mark.parametrize("phase", list(Phase))
def test_deadline_inputs_are_never_taken_from_outside(phase: Phase) -> None:
    for deadline in (ev.VoteTimeUp(), ev.SpeechDue()):
        d = BUILDERS[phase]()
        rejected = d.reject(deadline)  # type: ignore[arg-type]  # not an Input: the sitting makes these
        assert rejected.reason == "not_allowed" and d.sitting.phase is phase


def test_the_chair_commands_never_move_a_phase() -> None:
    """The chair console's keys run these commands' handlers from inside a KeyPressed, which stays."""
    for row in TRANSITIONS.values():
        for cmd in (ev.ChairPriority, ev.NextSpeaker):
            assert cmd not in row or row[cmd].to is None
        assert ev.KeyPressed not in row or row[ev.KeyPressed].to is None


def test_allowed_lists_names() -> None:
    assert allowed(Phase.NO_SITTING) == ["OpenSitting", "Tick"]
    assert "GrantFloor" not in allowed(Phase.VOTE_OPEN)
    assert "RequestFloor" in allowed(Phase.VOTE_OPEN)


# --- every move with a target phase ---------------------------------------------------------------


def _timed_vote_open() -> Driver:
    d = _idle()
    d.ok(ev.OpenVote(duration_s=5))
    return d


#: (phase, cell, target, builder, the input that moves it).  A deadline cell is reached by a Tick after
#: the deadline: the sitting makes the deadline input itself.
MOVES: list[tuple[Phase, type, Phase, Callable[[], Driver], ev.Input]] = [
    (Phase.NO_SITTING, ev.OpenSitting, Phase.IDLE, Driver, ev.OpenSitting(roster=ROSTER)),
    (Phase.IDLE, ev.OpenRegistration, Phase.REGISTRATION, _idle, ev.OpenRegistration()),
    (Phase.IDLE, ev.OpenVote, Phase.VOTE_OPEN, _idle, ev.OpenVote()),
    (Phase.IDLE, ev.CloseSitting, Phase.NO_SITTING, _idle, ev.CloseSitting()),
    (Phase.REGISTRATION, ev.CloseRegistration, Phase.IDLE, _registration, ev.CloseRegistration()),
    (Phase.VOTE_OPEN, ev.CloseVote, Phase.VOTE_CLOSED, _vote_open, ev.CloseVote()),
    (Phase.VOTE_OPEN, ev.VoteTimeUp, Phase.VOTE_CLOSED, _timed_vote_open, ev.Tick()),
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
    targets = {(p, cls, m.to) for p, row in TRANSITIONS.items() for cls, m in row.items() if m.to is not None}
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
    if cls in DEADLINES:
        assert type(event) is ev.Tick
        d.ok(event, at=d.now + 60_000)
    else:
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

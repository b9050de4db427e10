"""Votes: roll-call counts and per-name outcomes, timing, changes, rating, cancel, re-vote, secret ballots."""

from __future__ import annotations

import msgspec
import pytest
from factories import Driver, is_rejected, make_roster, ready, replay, rules

from chamber.core import events as ev
from chamber.core.effects import (
    Alert,
    ChoiceAccepted,
    Mode,
    ModeChanged,
    Rejected,
    SealSecretTally,
    VoteCancelled,
    VoteClosed,
    VoteOpened,
)
from chamber.core.phases import TRANSITIONS, Move, Phase
from chamber.core.sitting import Sitting
from chamber.core.state import Effects, SittingState
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, Outcome, VoteKind, VoteSubject
from chamber.core.voting import UNKNOWN, NamedChoice

Y, N, A = Key.YES, Key.NO, Key.ABSTAIN


def _phase(s: Sitting) -> Phase:
    """The phase, read through a call so that type checkers do not narrow it across inputs."""
    return s.phase


def _roll_call(yes: int) -> Driver:
    """10 deputies; 1..9 carded and registered, 10 absent; ``yes`` deputies press YES from seat 1,
    then one NO and one ABSTAIN; the rest of the carded do not vote."""
    d = ready(10, carded=range(1, 10))
    d.ok(ev.OpenVote(title="Про бюджет", duration_s=0))
    keys = [Y] * yes + [N, A]
    d.vote({seat: key for seat, key in enumerate(keys, start=1)})
    d.ok(ev.CloseVote())
    return d


def test_roll_call_not_adopted_counts_and_outcomes() -> None:
    d = _roll_call(5)
    r = d.sitting.results[1]
    assert r.kind is VoteKind.ROLL_CALL
    assert r.counts == (5, 1, 1)
    assert r.did_not_vote == 2  # deputies 8 and 9: card in, no choice
    assert r.absent == 1  # deputy 10: no card
    assert r.required == 6  # more than half of 10
    assert r.adopted is False
    assert r.result_uk == "Не прийнято"
    assert r.cancelled is None
    assert r.per_name == (
        *(NamedChoice(deputy=i, seat=i, outcome=Outcome.YES) for i in range(1, 6)),
        NamedChoice(deputy=6, seat=6, outcome=Outcome.NO),
        NamedChoice(deputy=7, seat=7, outcome=Outcome.ABSTAIN),
        NamedChoice(deputy=8, seat=None, outcome=Outcome.DID_NOT_VOTE),
        NamedChoice(deputy=9, seat=None, outcome=Outcome.DID_NOT_VOTE),
        NamedChoice(deputy=10, seat=None, outcome=Outcome.ABSENT),
    )
    labels = [n.outcome.label_uk for n in r.per_name[4:]]
    assert labels == ["За", "Проти", "Утримався", "Не голосував", "Не голосував", "Відсутній"]


def test_roll_call_adopted() -> None:
    d = _roll_call(6)
    r = d.sitting.results[1]
    assert r.counts == (6, 1, 1)
    assert r.did_not_vote == 1
    assert r.absent == 1
    assert r.adopted is True
    assert r.result_uk == "Прийнято"
    assert d.sitting.phase is Phase.VOTE_CLOSED


def test_open_vote_effects_and_mode() -> None:
    d = ready(10)
    effects = d.ok(ev.OpenVote(duration_s=0))
    assert effects == (VoteOpened(vote=1), ModeChanged(mode=Mode.VOTE_YES_NO))
    assert d.press(3, Key.NO) == (ChoiceAccepted(seat=3, option=1),)
    close = d.ok(ev.CloseVote())
    assert close == (ModeChanged(mode=Mode.IDLE), VoteClosed(vote=1, adopted=False))


def test_timed_vote_closes_at_its_deadline() -> None:
    d = ready(10)
    t0 = d.now + 1_000
    d.ok(ev.OpenVote(duration_s=20), at=t0)
    deadline = t0 + 20_000
    vote = d.sitting.vote
    assert vote is not None and vote.deadline == deadline
    assert d.sitting.next_deadline() == deadline
    assert d.sitting.snapshot().vote.deadline == deadline  # type: ignore[union-attr]
    assert d.ok(ev.KeyPressed(seat=1, key=Y), at=deadline - 1) == (ChoiceAccepted(seat=1, option=0),)
    effects = d.apply(ev.KeyPressed(seat=2, key=Y), at=deadline)
    # the rejection comes first, then what the deadline did
    assert effects[1:3] == (ModeChanged(mode=Mode.IDLE), VoteClosed(vote=1, adopted=False))
    rejected = effects[0]
    assert isinstance(rejected, Rejected) and rejected.reason == "vote_not_open"
    assert len(effects) == 3
    assert d.sitting.phase is Phase.VOTE_CLOSED
    r = d.sitting.results[1]
    assert r.closed_at == deadline
    assert r.counts == (1, 0, 0)
    # later presses are rejected too, with no second close
    assert d.reject(ev.KeyPressed(seat=3, key=N), at=deadline + 5_000).reason == "vote_not_open"
    assert d.sitting.results[1].counts == (1, 0, 0)


def test_tick_after_deadline_closes_the_vote_at_the_deadline() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=5), at=10_000)
    effects = d.apply(ev.Tick(), at=99_000)
    assert effects == (ModeChanged(mode=Mode.IDLE), VoteClosed(vote=1, adopted=False))
    assert d.sitting.results[1].closed_at == 15_000
    assert d.sitting.phase is Phase.VOTE_CLOSED


def test_vote_without_time_limit_has_no_deadline() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=0))
    assert d.sitting.vote is not None and d.sitting.vote.deadline is None
    assert d.sitting.next_deadline() == 2**63 - 1
    d.apply(ev.Tick(), at=10**9)
    assert d.sitting.phase is Phase.VOTE_OPEN


@pytest.mark.parametrize("duration", [-1, 3601])
def test_bad_duration(duration: int) -> None:
    d = ready(10)
    assert d.reject(ev.OpenVote(duration_s=duration)).reason == "bad_duration"


def test_choice_change_allowed_by_default() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=0))
    d.ok(ev.KeyPressed(seat=1, key=Y))
    assert d.sitting.vote is not None
    assert d.sitting.vote.tally == [1, 0, 0]
    assert d.ok(ev.KeyPressed(seat=1, key=N)) == (ChoiceAccepted(seat=1, option=1),)
    assert d.sitting.vote.tally == [0, 1, 0]
    d.ok(ev.KeyPressed(seat=1, key=A))
    assert d.sitting.vote.tally == [0, 0, 1]
    d.ok(ev.CloseVote())
    assert d.sitting.results[1].per_name[0].outcome is Outcome.ABSTAIN


def test_choice_final_when_changes_not_allowed() -> None:
    d = ready(10, rules=rules(allow_change=False))
    d.ok(ev.OpenVote(duration_s=0))
    d.ok(ev.KeyPressed(seat=1, key=Y))
    r = d.reject(ev.KeyPressed(seat=1, key=N))
    assert r.reason == "choice_final"
    assert r.seat == 1
    assert d.reject(ev.KeyPressed(seat=1, key=Y)).reason == "choice_final"
    assert d.sitting.vote is not None and d.sitting.vote.tally == [1, 0, 0]


def test_no_quorum() -> None:
    d = ready(10, registered=range(1, 6))  # 5 of 10 is not more than half
    r = d.reject(ev.OpenVote())
    assert r.reason == "no_quorum"
    assert d.sitting.vote is None
    assert d.sitting.votes_opened == 0


def test_press_with_no_vote_open() -> None:
    d = ready(10)
    assert d.reject(ev.KeyPressed(seat=1, key=Y)).reason == "vote_not_open"


# --- rating votes ---------------------------------------------------------------------------------

CAST_HALF = Threshold(num=1, den=2, base=Base.CAST, strict=True)


def _rating(presses: dict[int, Key]) -> Driver:
    d = ready(10)
    effects = d.ok(
        ev.OpenVote(kind=VoteKind.RATING, proposals=("Іваненко", "Петренко", "Сидоренко"), threshold=CAST_HALF)
    )
    assert effects[-1] == ModeChanged(mode=Mode.VOTE_RATING, proposals=3)
    d.vote(presses)
    return d


def test_rating_vote_winner() -> None:
    d = _rating({1: Key.P1, 2: Key.P1, 3: Key.P1, 4: Key.P2, 5: Key.P3})
    assert d.reject(ev.KeyPressed(seat=6, key=Key.P4)).reason == "not_a_choice"
    assert d.reject(ev.KeyPressed(seat=6, key=Key.YES)).reason == "not_a_choice"
    d.ok(ev.CloseVote())
    r = d.sitting.results[1]
    assert r.counts == (3, 1, 1)
    assert r.required == 3  # more than half of 5 cast
    assert r.winner == 1
    assert r.adopted is True
    assert r.per_name[0] == NamedChoice(deputy=1, seat=1, outcome=Outcome.YES, proposal=1)
    assert r.per_name[4] == NamedChoice(deputy=5, seat=5, outcome=Outcome.YES, proposal=3)
    assert r.per_name[5].outcome is Outcome.DID_NOT_VOTE


def test_rating_vote_tie_has_no_winner() -> None:
    d = _rating({1: Key.P1, 2: Key.P1, 3: Key.P2, 4: Key.P2})
    d.ok(ev.CloseVote())
    r = d.sitting.results[1]
    assert r.counts == (2, 2, 0)
    assert r.winner is None
    assert r.adopted is False


@pytest.mark.parametrize("n", [0, 1, 10])
def test_rating_vote_needs_2_to_9_proposals(n: int) -> None:
    d = ready(10)
    proposals = tuple(f"П{i}" for i in range(n))
    assert d.reject(ev.OpenVote(kind=VoteKind.RATING, proposals=proposals)).reason == "bad_proposals"
    assert d.sitting.phase is Phase.IDLE


def test_rating_vote_with_9_proposals_and_yes_no_vote_without_proposals() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(kind=VoteKind.RATING, proposals=tuple(f"П{i}" for i in range(9))))
    assert d.ok(ev.KeyPressed(seat=1, key=Key.P9)) == (ChoiceAccepted(seat=1, option=8),)
    d = ready(10)
    assert d.reject(ev.OpenVote(kind=VoteKind.ROLL_CALL, proposals=("a", "b"))).reason == "bad_proposals"


# --- cancel and re-vote ---------------------------------------------------------------------------


def test_cancel_needs_a_reason_and_marks_the_result() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=0))
    d.vote({i: Y for i in range(1, 9)})
    assert d.reject(ev.CancelVote(reason=" ")).reason == "reason_required"
    assert d.sitting.phase is Phase.VOTE_OPEN
    effects = d.ok(ev.CancelVote(reason="збій пульта 4"))
    assert effects == (VoteCancelled(vote=1, reason="збій пульта 4"), ModeChanged(mode=Mode.IDLE))
    r = d.sitting.results[1]
    assert r.cancelled == "збій пульта 4"
    assert r.adopted is False
    assert r.result_uk == "Скасовано"
    assert d.sitting.vote is None
    assert _phase(d.sitting) is Phase.IDLE


def test_cancel_after_close_turns_adopted_into_cancelled() -> None:
    d = _roll_call(6)
    assert d.sitting.results[1].adopted is True
    d.ok(ev.CancelVote(reason="порушення регламенту"))
    r = d.sitting.results[1]
    assert r.adopted is False
    assert r.cancelled == "порушення регламенту"
    assert r.counts == (6, 1, 1)


def test_revote_gets_a_new_number_and_the_same_item() -> None:
    d = ready(10)
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="a"), ev.AgendaItem(number="2", title="b"))))
    d.ok(ev.OpenVote(item="2", title="Про статут", duration_s=0))
    d.ok(ev.CloseVote())
    d.ok(ev.AnnounceResult())
    d.ok(ev.ClearResult())
    d.ok(ev.SetCurrentItem(number="1"))
    assert d.reject(ev.OpenVote(revote_of=5)).reason == "unknown_vote"
    effects = d.ok(ev.OpenVote(revote_of=1, duration_s=0))
    assert VoteOpened(vote=2) in effects
    vote = d.sitting.vote
    assert vote is not None
    assert vote.number == 2
    assert vote.item == "2"
    assert vote.title == "Про статут"
    assert vote.revote_of == 1
    d.ok(ev.CloseVote())
    assert d.sitting.results[2].revote_of == 1
    assert d.sitting.results[2].item == "2"


def test_vote_for_unknown_item() -> None:
    d = ready(10)
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="a"),)))
    assert d.reject(ev.OpenVote(item="9")).reason == "unknown_item"


# --- thresholds from the rules --------------------------------------------------------------------


def test_registered_base_uses_the_count_at_vote_opening() -> None:
    d = ready(10, registered=range(1, 8))  # 7 registered
    d.ok(ev.OpenVote(subject=VoteSubject.PROCEDURAL, duration_s=0))
    vote = d.sitting.vote
    assert vote is not None and vote.registered == 7
    d.vote({1: Y, 2: Y, 3: Y, 4: Y, 5: N})
    d.ok(ev.CloseVote())
    r = d.sitting.results[1]
    assert r.registered == 7
    assert r.required == 4  # more than half of 7
    assert r.adopted is True
    d.ok(ev.AnnounceResult())
    # a later round with more registered does not change the finished result, and the next vote uses it
    d.register(range(1, 11))
    d.ok(ev.OpenVote(subject=VoteSubject.PROCEDURAL, duration_s=0))
    d.vote({1: Y, 2: Y, 3: Y, 4: Y, 5: N})
    d.ok(ev.CloseVote())
    assert d.sitting.results[1].required == 4
    assert d.sitting.results[2].registered == 10
    assert d.sitting.results[2].required == 6
    assert d.sitting.results[2].adopted is False


def test_head_who_does_not_vote() -> None:
    d = ready(10, head=10, head_votes=False)
    d.ok(ev.OpenVote(duration_s=0))
    r = d.reject(ev.KeyPressed(seat=10, key=Y))
    assert r.reason == "not_a_voter"
    d.ok(ev.CloseVote())
    result = d.sitting.results[1]
    assert [n.deputy for n in result.per_name] == list(range(1, 10))
    assert result.did_not_vote == 9


def test_head_outside_composition_does_not_count_for_quorum() -> None:
    d = ready(10, composition=9, head=10, head_in_composition=False, registered=[1, 2, 3, 4, 10])
    assert d.sitting.registered_count == 4
    assert d.sitting.has_quorum is False  # 4 of 9
    d.register([1, 2, 3, 4, 5, 10])
    assert d.sitting.registered_count == 5
    assert d.sitting.has_quorum is True


# --- secret ballots -------------------------------------------------------------------------------


def _secret(n: int = 10, basis: str = "ст. 50 Закону") -> Driver:
    d = ready(n)
    d.ok(ev.OpenVote(kind=VoteKind.SECRET, title="Обрання секретаря", duration_s=0, legal_basis=basis))
    return d


def test_journal_form_hides_secret_choices_only() -> None:
    d = _secret()
    s = d.sitting
    for key in (Y, N, A):
        assert s.journal_form(ev.KeyPressed(seat=3, key=key)) == ev.SecretBallotCast(seat=3)
    for other in (
        ev.KeyPressed(seat=3, key=Key.SPEAK),
        ev.KeyPressed(seat=3, key=Key.REGISTER),
        ev.KeyPressed(seat=3, key=Key.P1),
        ev.CardInserted(seat=3, uid="00000003"),
        ev.CardRemoved(seat=3),
        ev.CloseVote(),
        ev.Tick(),
    ):
        assert s.journal_form(other) == other
    # roll-call votes and idle phases keep the key
    r = ready(10)
    assert r.sitting.journal_form(ev.KeyPressed(seat=3, key=Y)) == ev.KeyPressed(seat=3, key=Y)
    r.ok(ev.OpenVote(duration_s=0))
    assert r.sitting.journal_form(ev.KeyPressed(seat=3, key=Y)) == ev.KeyPressed(seat=3, key=Y)
    # the driver journaled the secret presses without their value
    d.vote({1: Y, 2: N})
    assert d.journal[-2:] == [(ev.SecretBallotCast(seat=1), d.now - d.step), (ev.SecretBallotCast(seat=2), d.now)]


def test_secret_vote_flow() -> None:
    d = _secret()
    s = d.sitting
    d.vote({1: Y, 2: Y, 3: Y, 4: Y, 5: Y, 6: Y, 7: N, 8: A})
    view = s.snapshot().vote
    assert view is not None
    assert view.counts is None
    assert view.cast == 8
    assert view.open is True
    # close without the driver's automatic seal, to see the effects
    effects = s.apply(ev.CloseVote(), d.now + 10)
    assert effects == (
        ModeChanged(mode=Mode.IDLE),
        SealSecretTally(vote=1, counts=(6, 1, 1)),
        VoteClosed(vote=1, adopted=None),
    )
    assert s.phase is Phase.VOTE_CLOSED
    assert 1 not in s.results
    assert s.snapshot().vote.counts is None  # type: ignore[union-attr]
    effects = s.apply(ev.SecretTallySealed(vote=1, counts=(6, 1, 1)), d.now + 20)
    assert effects == (VoteClosed(vote=1, adopted=True),)
    r = s.results[1]
    assert r.counts == (6, 1, 1)
    assert r.adopted is True
    assert r.per_name == ()
    assert r.did_not_vote == 2
    assert r.absent == 0
    vote = s.vote
    assert vote is not None
    assert set(vote.choices.values()) == {UNKNOWN}
    assert len(vote.choices) == 8
    assert vote.tally == [0, 0, 0]
    assert s.snapshot().vote.counts == (6, 1, 1)  # type: ignore[union-attr]
    assert s.apply(ev.AnnounceResult(), d.now + 30) == ()
    assert _phase(s) is Phase.RESULT_SHOWN


def test_secret_vote_wrong_seal() -> None:
    d = _secret()
    s = d.sitting
    d.vote({1: Y, 2: N, 3: A, 4: Y})
    s.apply(ev.CloseVote(), d.now + 1)
    for bad in ((2, 1, 0), (2, 1, 1, 0), (2, 1), (5, -1, 0)):
        effects = s.apply(ev.SecretTallySealed(vote=1, counts=bad), d.now + 2)
        assert isinstance(effects[0], Rejected) and effects[0].reason == "seal_mismatch", bad
    effects = s.apply(ev.SecretTallySealed(vote=2, counts=(2, 1, 1)), d.now + 3)
    assert isinstance(effects[0], Rejected) and effects[0].reason == "nothing_to_seal"
    assert 1 not in s.results
    assert s.vote is not None and s.vote.sealed is None
    assert s.apply(ev.SecretTallySealed(vote=1, counts=(2, 1, 1)), d.now + 4) == (VoteClosed(vote=1, adopted=False),)
    effects = s.apply(ev.SecretTallySealed(vote=1, counts=(2, 1, 1)), d.now + 5)
    assert isinstance(effects[0], Rejected) and effects[0].reason == "nothing_to_seal"


def test_secret_vote_replayed_then_annulled() -> None:
    d = _secret()
    d.vote({1: Y, 2: N, 3: Y})
    assert all(type(e) is not ev.KeyPressed or e.key not in (Y, N, A) for e, _ in d.journal)
    s = replay(d.journal)
    assert s.phase is Phase.VOTE_OPEN
    vote = s.vote
    assert vote is not None
    assert vote.choices == {1: UNKNOWN, 2: UNKNOWN, 3: UNKNOWN}
    assert vote.tally == [0, 0, 0]
    assert not vote.counts_known
    # a replayed secret vote cannot be sealed: closing gives no tally to seal
    closed = s.apply(ev.CloseVote(), d.now + 10)
    assert closed == (ModeChanged(mode=Mode.IDLE), VoteClosed(vote=1, adopted=None))
    effects = s.apply(ev.AnnulSecretVote(reason="перезапуск контролера"), d.now + 20)
    assert effects == (VoteCancelled(vote=1, reason="перезапуск контролера"), ModeChanged(mode=Mode.IDLE))
    r = s.results[1]
    assert r.cancelled == "перезапуск контролера"
    assert r.adopted is False
    assert r.counts == (0, 0, 0)
    assert r.per_name == ()
    assert _phase(s) is Phase.IDLE


def test_secret_vote_annulled_while_open() -> None:
    d = _secret()
    d.vote({1: Y})
    d.ok(ev.AnnulSecretVote(reason="збій"))
    r = d.sitting.results[1]
    assert r.cancelled == "збій" and r.counts == (0, 0, 0) and r.adopted is False


def test_secret_vote_without_legal_basis_alerts() -> None:
    d = ready(10)
    alerts = d.sitting.alerts
    effects = d.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=0))
    assert effects[0] == Alert(kind="secret_without_basis", detail="secret ballot opened without a legal basis stated")
    assert d.sitting.alerts == alerts + 1
    assert d.sitting.phase is Phase.VOTE_OPEN
    assert _secret().sitting.alerts == 0


def test_secret_vote_with_legal_basis_has_no_alert() -> None:
    d = ready(10)
    effects = d.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=0, legal_basis="ст. 50 ч. 1"))
    assert not any(isinstance(e, Alert) for e in effects)


def test_secret_vote_timed_close_is_sealed_by_the_driver() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=10, legal_basis="ст. 50"), at=100_000)
    d.vote({1: Y, 2: Y, 3: Y, 4: Y, 5: Y, 6: Y})
    effects = d.apply(ev.Tick(), at=110_000)
    assert SealSecretTally(vote=1, counts=(6, 0, 0)) in effects
    assert effects[-1] == VoteClosed(vote=1, adopted=True)
    assert d.journal[-1] == (ev.SecretTallySealed(vote=1, counts=(6, 0, 0)), 110_000)
    assert d.sitting.results[1].closed_at == 110_000


def test_a_secret_vote_closed_late_by_its_timer_records_its_deadline_as_its_close() -> None:
    """The tick that closes it may come a minute late (a busy engine, a replay); a roll call records
    its deadline then, and so must a secret vote, whose result is computed when the seal comes."""
    d = ready(10)
    d.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=10, legal_basis="ст. 50"), at=100_000)
    d.vote({1: Y, 2: N})
    d.apply(ev.Tick(), at=170_000)
    assert d.sitting.results[1].closed_at == 110_000


def test_secret_ballot_cast_rejected_outside_a_secret_vote() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=0))
    effects = d.apply(ev.SecretBallotCast(seat=1))
    try:
        assert is_rejected(effects) and effects[0].reason == "not_secret"  # type: ignore[attr-defined]
        assert d.sitting.vote is not None and 1 not in d.sitting.vote.choices
    finally:
        d.ok(ev.CloseVote())
        r = d.sitting.results[1]
        # whatever happens, the published record must not invent an abstention nobody pressed
        assert r.per_name[0].outcome is not Outcome.ABSTAIN
        assert sum(r.counts) + r.did_not_vote + r.absent == 10


def test_vote_snapshot_while_roll_call_open_shows_counts() -> None:
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=0))
    d.vote({1: Y, 2: N})
    view = d.sitting.snapshot().vote
    assert view is not None
    assert view.counts == (1, 1, 0)
    assert view.cast == 2


def test_rules_roster_helper() -> None:
    r = make_roster(3, rules=rules(allow_change=False, vote_duration_s=7))
    assert r.rules.allow_change is False
    assert r.rules.vote_duration_s == 7
    assert msgspec.structs.replace(r.rules, allow_change=True).allow_change is True


def test_an_open_vote_publishes_counts_but_no_names() -> None:
    d = ready(10, carded=range(1, 10))
    d.ok(ev.OpenVote(kind=VoteKind.OPEN, duration_s=0))
    d.vote({1: Y, 2: Y, 3: N})
    d.ok(ev.CloseVote())
    r = d.sitting.results[1]
    assert r.counts == (2, 1, 0) and r.did_not_vote == 6 and r.absent == 1
    assert r.per_name == ()
    assert b"per_name" in msgspec.json.encode(d.sitting.snapshot())  # the field is there, empty
    assert b'"deputy":1,"seat":1' not in msgspec.json.encode(d.sitting.snapshot())


def test_a_defect_at_a_deadline_alerts_once_and_the_sitting_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(s: SittingState, e: ev.VoteTimeUp, now: int) -> Effects:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(TRANSITIONS[Phase.VOTE_OPEN], ev.VoteTimeUp, Move(broken, Phase.VOTE_CLOSED))
    d = ready(10)
    d.ok(ev.OpenVote(duration_s=5), at=100_000)
    effects = d.apply(ev.Tick(), at=106_000)
    assert [type(e) for e in effects] == [Alert] and effects[0].kind == "internal_error"  # type: ignore[union-attr]
    assert d.press(1, Y) == (ChoiceAccepted(seat=1, option=0),)  # inputs apply again, no repeated failure
    assert d.sitting.alerts == 1
    d.ok(ev.CloseVote())  # the secretary closes it by hand
    assert d.sitting.results[1].counts == (1, 0, 0)
    again = replay(d.journal)
    assert msgspec.json.encode(again.snapshot()) == msgspec.json.encode(d.sitting.snapshot())


def test_a_secret_ballot_is_confirmed_without_its_value() -> None:
    d = _secret()
    assert d.press(1, Y) == (ChoiceAccepted(seat=1, option=UNKNOWN),)
    assert d.press(2, N) == (ChoiceAccepted(seat=2, option=UNKNOWN),)

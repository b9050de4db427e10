"""Fuzzing the core: a hypothesis stateful test drives a ``Sitting`` with random inputs at random times.

``SittingFuzz`` (a ``RuleBasedStateMachine``) opens sittings of a small chamber (rules, head, presence
sensors and composition drawn), then applies, in any order and at any time (forwards by up to a
minute, or backwards, which the sitting clamps): seat events (cards, presence, keys of every kind,
consoles offline and back, with and without event numbers, unknown seats) and commands (votes of every
kind with any threshold, duration and text, control characters included; closes, announces, cancels,
annulments, seals with right and wrong counts; registrations; the floor; the agenda; ticks; closing
the sitting).  Inputs are applied as the engine does (``tests/factories.Driver``: the journal form
first, a ``SealSecretTally`` fed back as an input), and after every step it checks:

* the phase moved only as ``chamber.core.phases.TRANSITIONS`` says, and only by the machine
  (``tests/test_properties.check_moves``: the deadline inputs' moves first, then the input's own cell
  if and only if its handler accepted it);
* no handler failed: no ``internal_error`` refusal or alert (a bad input is an ordinary ``Rejected``);
* the open vote's tally equals a recount of the choices the sitting accepted, kept here from each
  accepted press's own key (so a secret vote is checked too), and a closed vote's counts equal it;
* the quorum, and each result's required votes and verdict, equal an independent computation with
  ``fractions.Fraction`` (the smallest count over p/q of the base, by search, not by formula);
* a mirror fed the journal record by record (through its JSON encoding) has the same snapshot bytes,
  and at the end a fresh replay of the whole journal does.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec
from factories import Driver, make_roster, snap, uid
from fuzz_budget import CAMPAIGN, budget
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from test_properties import Watched, check_moves

from chamber.core import events as ev
from chamber.core.effects import Alert, ChoiceAccepted, Effect, Registered, Rejected
from chamber.core.roster import Roster, Rules
from chamber.core.sitting import Sitting
from chamber.core.threshold import Threshold
from chamber.core.values import (
    PROPOSAL_KEYS,
    YES_NO_OPTIONS,
    Base,
    Key,
    Phase,
    Seating,
    SpeechKind,
    VoteKind,
    VoteSubject,
)
from chamber.core.voting import VoteResult

N = 6
CHAIR = 100
SEATS = st.sampled_from([0, *range(1, N + 2), CHAIR, -1, 2**40])  # 0, -1, 2**40, N+1: no deputy or no seat
OWN_SEATS = st.integers(1, N)
TEXT = st.one_of(st.sampled_from(["", "Про бюджет", "ст. 50", "  "]), st.text(max_size=12))
THRESHOLDS = st.one_of(
    st.none(),
    st.builds(
        Threshold,
        num=st.integers(1, 4),
        den=st.integers(4, 5),
        base=st.sampled_from(list(Base)),
        strict=st.booleans(),
    ),
    st.sampled_from([Threshold(num=1, den=1, base=Base.CAST), Threshold(num=1, den=1, base=Base.COMPOSITION)]),
)
KEYS = st.sampled_from(list(Key))
CHOICE_KEYS = st.sampled_from([Key.YES, Key.NO, Key.ABSTAIN, Key.P1, Key.P2, Key.P3])
SEQ = st.one_of(st.none(), st.integers(0, 20), st.sampled_from([0xFFFF, 0x8000]))
BOOT = st.one_of(st.none(), st.integers(0, 2))
DT = st.one_of(st.integers(0, 2_000), st.integers(0, 60_000), st.integers(-5_000, 0))

RULES = st.builds(
    Rules,
    quorum=st.sampled_from(
        [Threshold(num=1, den=2, base=Base.COMPOSITION), Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False)]
    ),
    allow_change=st.booleans(),
    presence_required=st.booleans(),
    seating=st.sampled_from(list(Seating)),
    auto_mic_off=st.booleans(),
    max_open_mics=st.integers(1, 3),
    warning_s=st.sampled_from([0, 5]),
    vote_duration_s=st.sampled_from([5, 20]),
    speech_limits_s=st.just(
        {SpeechKind.REPORT: 60, SpeechKind.SPEECH: 20, SpeechKind.REPLY: 10, SpeechKind.POINT_OF_ORDER: 10}
    ),
)


def required(threshold: Threshold, base: int) -> int:
    """The smallest n >= 1 with n > p/q * base (strict) or n >= p/q * base: searched, not computed."""
    bound = Fraction(threshold.num, threshold.den) * base
    n = 1
    while not (n > bound if threshold.strict else n >= bound):
        n += 1
    return n


def option_of(key: Key, kind: VoteKind) -> int | None:
    if kind is VoteKind.RATING:
        return PROPOSAL_KEYS.index(key) if key in PROPOSAL_KEYS else None
    return YES_NO_OPTIONS.get(key)


class SittingFuzz(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.d = Driver(start=1_000, step=0)
        self.d.sitting = Watched()
        self.mirror = Sitting()
        self.replayed = 0
        self.roster: Roster | None = None
        # the model, kept from the inputs and the sitting's answers, never from its state
        self.registered: set[int] = set()
        self.choices: dict[int, int] = {}  # deputy -> option, of the vote open now
        self.vote_kind = VoteKind.ROLL_CALL
        self.vote_registered = 0  # the model's registered count when the vote opened
        self.checked_results: set[int] = set()

    # --- applying ------------------------------------------------------------------------------------

    def apply(self, event: ev.Input, dt: int = 10) -> tuple[Effect, ...]:
        d = self.d
        s = d.sitting
        assert isinstance(s, Watched)
        phase = s.phase
        made = len(s.assignments)
        deputy_at = {seat.id: seat.deputy for seat in s.seats.values()}  # who sits where before the input
        effects = d.apply(event, at=d.now + dt)
        # a seal the driver fed back is an input of its own, which moves nothing (its effects come last)
        check_moves(event, effects, phase, [m for m in s.assignments[made:] if m[2] is not ev.SecretTallySealed])
        for effect in effects:
            assert not (type(effect) is Rejected and effect.reason == "internal_error"), effect
            assert not (type(effect) is Alert and effect.kind == "internal_error"), effect
        self._model(event, effects, deputy_at)
        return effects

    def _model(self, event: ev.Input, effects: tuple[Effect, ...], deputy_at: dict[int, int | None]) -> None:
        rejected = bool(effects) and type(effects[0]) is Rejected
        if type(event) is ev.OpenRegistration and not rejected:
            self.registered = set()
        if type(event) is ev.OpenSitting and not rejected:
            self.registered, self.choices = set(), {}
        for effect in effects:
            if type(effect) is Registered:
                self.registered.add(effect.deputy)
            elif type(effect) is ChoiceAccepted:
                assert type(event) is ev.KeyPressed, (event, effect)
                deputy = deputy_at[effect.seat]
                assert deputy is not None
                option = option_of(event.key, self.vote_kind)
                assert option is not None and effect.option in (option, -1)
                self.choices[deputy] = option
        if type(event) is ev.OpenVote and not rejected:
            self.choices = {}
            self.vote_kind = event.kind
            self.vote_registered = self._registered_count()

    def _registered_count(self) -> int:
        roster = self.roster
        assert roster is not None
        counted = {d.id for d in roster.deputies if d.role == "deputy" or roster.council.head_in_composition}
        return len(self.registered & counted)

    # --- rules: the sitting ---------------------------------------------------------------------------

    @initialize(
        rules=RULES,
        head=st.sampled_from([None, 1]),
        head_votes=st.booleans(),
        head_in_composition=st.booleans(),
        extra=st.sampled_from([0, 0, 3]),
    )
    def open_first(
        self, rules: Rules, head: int | None, head_votes: bool, head_in_composition: bool, extra: int
    ) -> None:
        self.roster = make_roster(
            N,
            composition=N + extra,
            rules=rules,
            extra_seats=1,
            sensors=[1, 2],
            chair_seat=CHAIR,
            head=head,
            head_votes=head_votes,
            head_in_composition=head_in_composition,
        )
        self.apply(ev.OpenSitting(roster=self.roster, number=1))

    @rule(title=TEXT, dt=DT)
    def open_sitting(self, title: str, dt: int) -> None:
        assert self.roster is not None
        self.apply(ev.OpenSitting(roster=self.roster, number=2, title=title), dt)

    @rule(
        command=st.sampled_from(
            [
                ev.CloseSitting(),
                ev.OpenRegistration(),
                ev.CloseRegistration(),
                ev.CloseVote(),
                ev.AnnounceResult(),
                ev.ClearResult(),
                ev.NextSpeaker(),
                ev.ChairPriority(),
                ev.Tick(),
                ev.SetAgenda(items=(ev.AgendaItem(number="1", title="a"), ev.AgendaItem(number="2", title="b"))),
                ev.SetAgenda(items=(ev.AgendaItem(number="1", title="a"), ev.AgendaItem(number="1", title="b"))),
            ]
        ),
        dt=DT,
    )
    def command(self, command: ev.Input, dt: int) -> None:
        self.apply(command, dt)

    @rule(
        kind=st.sampled_from(list(VoteKind)),
        subject=st.sampled_from(list(VoteSubject)),
        threshold=THRESHOLDS,
        duration_s=st.one_of(st.none(), st.sampled_from([0, 1, 5, 3601, -1])),
        proposals=st.one_of(st.just(()), st.lists(st.sampled_from(["А", "Б", "В", "\x1b[2J"]), max_size=10).map(tuple)),
        title=TEXT,
        legal_basis=TEXT,
        item=st.sampled_from([None, "1", "9"]),
        revote_of=st.one_of(st.none(), st.integers(0, 3)),
        dt=DT,
    )
    def open_vote(
        self,
        kind: VoteKind,
        subject: VoteSubject,
        threshold: Threshold | None,
        duration_s: int | None,
        proposals: tuple[str, ...],
        title: str,
        legal_basis: str,
        item: str | None,
        revote_of: int | None,
        dt: int,
    ) -> None:
        s = self.d.sitting
        quorum_before = s.phase in (Phase.IDLE, Phase.RESULT_SHOWN) and self._quorum()
        vote = ev.OpenVote(
            kind=kind,
            subject=subject,
            title=title,
            item=item,
            threshold=threshold,
            duration_s=duration_s,
            proposals=proposals,
            revote_of=revote_of,
            legal_basis=legal_basis,
        )
        effects = self.apply(vote, dt)
        rejected = bool(effects) and type(effects[0]) is Rejected
        if not rejected:
            assert quorum_before, "a vote opened without a quorum"
        elif s.phase in (Phase.IDLE, Phase.RESULT_SHOWN) and not quorum_before:
            assert effects[0].reason in ("no_quorum", "not_allowed"), effects[0]  # type: ignore[union-attr]

    @rule(
        kind=st.sampled_from(list(VoteKind)),
        subject=st.sampled_from(list(VoteSubject)),
        threshold=THRESHOLDS,
        duration_s=st.sampled_from([None, 0, 0, 5, 20]),
        revote_of=st.sampled_from([None, None, 1]),
        dt=st.integers(0, 500),
    )
    def open_a_proper_vote(
        self,
        kind: VoteKind,
        subject: VoteSubject,
        threshold: Threshold | None,
        duration_s: int | None,
        revote_of: int | None,
        dt: int,
    ) -> None:
        """A vote as the secretary's console sends one (the fuzzy ``open_vote`` is mostly refused)."""
        proposals = ("А", "Б", "В") if kind is VoteKind.RATING else ()
        self.open_vote(kind, subject, threshold, duration_s, proposals, "Про бюджет", "ст. 50", None, revote_of, dt)

    @rule(reason=TEXT, annul=st.booleans(), dt=DT)
    def cancel(self, reason: str, annul: bool, dt: int) -> None:
        self.apply(ev.AnnulSecretVote(reason=reason) if annul else ev.CancelVote(reason=reason), dt)

    @rule(counts=st.lists(st.integers(-1, 3), max_size=4).map(tuple), vote=st.integers(0, 4), dt=DT)
    def seal(self, counts: tuple[int, ...], vote: int, dt: int) -> None:
        self.apply(ev.SecretTallySealed(vote=vote, counts=counts), dt)

    @rule(deputy=st.integers(-1, N + 1), reason=TEXT, dt=DT)
    def register_by_hand(self, deputy: int, reason: str, dt: int) -> None:
        self.apply(ev.RegisterDeputy(deputy=deputy, reason=reason), dt)

    @rule(
        which=st.sampled_from(["request", "withdraw", "grant", "revoke", "extend"]),
        seat=SEATS,
        kind=st.one_of(st.none(), st.sampled_from(list(SpeechKind))),
        seconds=st.sampled_from([None, 0, 15, -3]),
        dt=DT,
    )
    def floor(self, which: str, seat: int, kind: SpeechKind | None, seconds: int | None, dt: int) -> None:
        event: ev.Input
        if which == "request":
            event = ev.RequestFloor(seat=seat, kind=kind or SpeechKind.SPEECH)
        elif which == "withdraw":
            event = ev.WithdrawRequest(seat=seat)
        elif which == "grant":
            event = ev.GrantFloor(seat=seat, kind=kind, limit_s=seconds)
        elif which == "revoke":
            event = ev.RevokeFloor(seat=seat)
        else:
            event = ev.ExtendSpeech(seat=seat, extra_s=seconds or 0)
        self.apply(event, dt)

    @rule(number=st.sampled_from([None, "1", "2", "9"]), dt=DT)
    def current_item(self, number: str | None, dt: int) -> None:
        self.apply(ev.SetCurrentItem(number=number), dt)

    # --- rules: the seats ----------------------------------------------------------------------------

    @rule(seat=st.one_of(OWN_SEATS, SEATS), key=st.one_of(CHOICE_KEYS, KEYS), seq=SEQ, boot=BOOT, dt=DT)
    def press(self, seat: int, key: Key, seq: int | None, boot: int | None, dt: int) -> None:
        self.apply(ev.KeyPressed(seat=seat, key=key, seq=seq, boot=boot), dt)

    @rule(seat=OWN_SEATS, key=CHOICE_KEYS, dt=st.integers(0, 500))
    def choose(self, seat: int, key: Key, dt: int) -> None:
        self.apply(ev.KeyPressed(seat=seat, key=key), dt)

    @rule(seat=SEATS, deputy=st.integers(1, N + 1), dt=DT)
    def card_in(self, seat: int, deputy: int, dt: int) -> None:
        self.apply(ev.CardInserted(seat=seat, uid=uid(deputy)), dt)

    @rule(seat=OWN_SEATS, dt=st.integers(0, 500))
    def own_card_in(self, seat: int, dt: int) -> None:
        self.apply(ev.CardInserted(seat=seat, uid=uid(seat)), dt)

    @rule(seat=SEATS, what=st.sampled_from(["out", "present", "absent", "offline", "online", "restarted"]), dt=DT)
    def seat_event(self, seat: int, what: str, dt: int) -> None:
        event: ev.Input = {
            "out": ev.CardRemoved(seat=seat),
            "present": ev.PresenceChanged(seat=seat, present=True),
            "absent": ev.PresenceChanged(seat=seat, present=False),
            "offline": ev.SeatWentOffline(seat=seat),
            "online": ev.SeatCameOnline(seat=seat, restarted=False),
            "restarted": ev.SeatCameOnline(seat=seat, restarted=True),
        }[what]
        self.apply(event, dt)

    @rule(deputies=st.sets(OWN_SEATS, min_size=4), present=st.sampled_from([True, True, False]))
    def a_registration_round(self, deputies: set[int], present: bool) -> None:
        """Cards in at their own seats (sensors held), a round in which ``deputies`` register, closed:
        a few steps in one, so that votes get a quorum often enough to be fuzzed too."""
        for seat in sorted(deputies):
            elsewhere = self.d.sitting.active_seat.get(seat)  # (steering only: the checks read no state)
            if elsewhere is not None and elsewhere != seat:
                self.apply(ev.CardRemoved(seat=elsewhere), 5)
            self.apply(ev.SeatCameOnline(seat=seat, restarted=False), 5)
            self.apply(ev.CardInserted(seat=seat, uid=uid(seat)), 5)
            self.apply(ev.PresenceChanged(seat=seat, present=present), 5)
        self.apply(ev.OpenRegistration(), 5)
        for seat in sorted(deputies):
            self.apply(ev.KeyPressed(seat=seat, key=Key.REGISTER), 5)
        self.apply(ev.CloseRegistration(), 5)

    @precondition(lambda self: self.d.sitting.phase is Phase.VOTE_OPEN)
    @rule(keys=st.lists(CHOICE_KEYS, min_size=N, max_size=N))
    def everyone_chooses(self, keys: list[Key]) -> None:
        for seat, key in enumerate(keys, start=1):
            self.apply(ev.KeyPressed(seat=seat, key=key), 50)

    @precondition(lambda self: self.d.sitting.phase is Phase.VOTE_OPEN)
    @rule(by_time=st.booleans(), dt=st.integers(0, 30_000))
    def close_the_vote(self, by_time: bool, dt: int) -> None:
        """Closed by hand, or a Tick after a while (a timed vote ends at its deadline)."""
        self.apply(ev.Tick() if by_time else ev.CloseVote(), dt)

    @precondition(lambda self: self.d.sitting.phase is Phase.REGISTRATION)
    @rule(seat=OWN_SEATS, dt=st.integers(0, 500))
    def register_at_seat(self, seat: int, dt: int) -> None:
        self.apply(ev.KeyPressed(seat=seat, key=Key.REGISTER), dt)

    # --- invariants ----------------------------------------------------------------------------------

    def _quorum(self) -> bool:
        roster = self.roster
        assert roster is not None
        rules = roster.rules
        return self._registered_count() >= required(rules.quorum, roster.council.composition)

    @invariant()
    def quorum_and_registration_agree(self) -> None:
        s = self.d.sitting
        if s.phase is Phase.NO_SITTING or self.roster is None:
            return
        view = s.snapshot()
        assert view.registered == self._registered_count()
        assert view.quorum == self._quorum()

    @invariant()
    def tally_is_a_recount(self) -> None:
        s = self.d.sitting
        vote = s.vote
        if vote is None or vote.sealed is not None:
            return
        counts = [0] * len(vote.tally)
        for option in self.choices.values():
            counts[option] += 1
        if s.phase is Phase.VOTE_OPEN or vote.number not in s.results:
            assert vote.tally == counts, (vote.tally, counts, self.choices)
            assert vote.tally == vote.recount()

    @invariant()
    def results_agree_with_an_independent_count(self) -> None:
        s = self.d.sitting
        for number, result in s.results.items():
            if number in self.checked_results:
                continue
            self.checked_results.add(number)
            self._check_result(result)

    def _check_result(self, r: VoteResult) -> None:
        assert self.roster is not None
        if r.cancelled is not None:
            assert r.adopted is False
            return
        if r.kind is not VoteKind.SECRET:  # a secret vote's counts are the seal's, checked against its tally
            counts = [0] * len(r.counts)
            for option in self.choices.values():
                counts[option] += 1
            assert list(r.counts) == counts, (r.counts, counts)
        assert r.registered == self.vote_registered
        composition = self.roster.council.composition
        if r.kind is VoteKind.RATING:
            cast = sum(r.counts)
            base = {Base.COMPOSITION: composition, Base.REGISTERED: r.registered}.get(r.threshold.base, cast)
            need = required(r.threshold, base)
            top = max(r.counts)
            unique = r.counts.count(top) == 1 and top > 0
            assert r.required == need
            assert r.adopted == (unique and top >= need)
            assert r.winner == (r.counts.index(top) + 1 if r.adopted else None)
            return
        yes, no, abstain = r.counts
        base = {
            Base.COMPOSITION: composition,
            Base.REGISTERED: r.registered,
            Base.CAST: yes + no + abstain,
            Base.CAST_WITHOUT_ABSTENTIONS: yes + no,
        }[r.threshold.base]
        assert r.required == required(r.threshold, base), (r.threshold, base, r.required)
        assert r.adopted == (yes >= r.required)

    @invariant()
    def a_mirror_fed_the_journal_is_the_same(self) -> None:
        d = self.d
        for form, at in d.journal[self.replayed :]:
            self.mirror.apply(ev.decode_input(ev.encode_input(form)), at)
        self.replayed = len(d.journal)
        assert snap(self.mirror) == snap(d.sitting)

    def teardown(self) -> None:
        fresh = Sitting()
        for form, at in self.d.journal:
            fresh.apply(ev.decode_input(ev.encode_input(form)), at)
        assert snap(fresh) == snap(self.d.sitting)


SittingFuzz.TestCase.settings = budget(150, stateful_step_count=40 if not CAMPAIGN else 60)
test_sitting_fuzz = SittingFuzz.TestCase


def test_the_independent_threshold_agrees_on_the_law() -> None:
    """The search above against the design's examples: more than half of 43 is 22, at least 2/3 is 29."""
    assert required(Threshold(num=1, den=2), 43) == 22
    assert required(Threshold(num=2, den=3, strict=False), 43) == 29
    assert required(Threshold(num=1, den=2, base=Base.CAST, strict=False), 0) == 1
    assert msgspec.json.encode(Threshold()) == msgspec.json.encode(Threshold(num=1, den=2))

"""One vote: its incremental tally while open and its result when closed.

``VoteState`` is mutated only by the sitting's owner.  A choice moves the
tally by one count down (the old option, if any) and one count up, so a press
costs O(1) whatever the size of the chamber; ``recount`` rebuilds the tally
from the per-deputy choices and must always agree (a property test checks it).

Secret votes keep choices only in memory, keyed by deputy so that a change of
mind moves the right count.  The journal gets ``SecretBallotCast`` (who took
part) instead; after a replay the choices are unknown (``UNKNOWN``), so a
secret vote interrupted by a restart cannot be counted and is annulled.  On
close the counts are sealed as one aggregate record and the choices dropped.
"""

from __future__ import annotations

import msgspec

from chamber.core.threshold import Threshold, base_value
from chamber.core.values import (
    PROPOSAL_KEYS,
    YES_NO_OPTIONS,
    YES_NO_OUTCOMES,
    Key,
    Outcome,
    VoteKind,
    VoteSubject,
)

UNKNOWN = -1  # a secret choice whose value was never journaled


class NamedChoice(msgspec.Struct, frozen=True, kw_only=True):
    deputy: int
    seat: int | None
    outcome: Outcome
    proposal: int | None = None  # rating votes: 1-based proposal number


class VoteResult(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    kind: VoteKind
    subject: VoteSubject
    title: str
    item: str | None
    threshold: Threshold
    proposals: tuple[str, ...]
    revote_of: int | None
    opened_at: int
    closed_at: int | None
    counts: tuple[int, ...]  # per option: (yes, no, abstain) or one per proposal
    did_not_vote: int
    absent: int
    composition: int
    registered: int
    required: int  # votes needed to adopt
    adopted: bool
    winner: int | None = None  # rating votes: 1-based winning proposal
    per_name: tuple[NamedChoice, ...] = ()  # empty for secret votes
    cancelled: str | None = None  # reason, when the vote was cancelled or annulled

    @property
    def result_uk(self) -> str:
        if self.cancelled is not None:
            return "Скасовано"
        return "Прийнято" if self.adopted else "Не прийнято"


class VoteState:
    """An open (or closed but not yet finished) vote."""

    __slots__ = (
        "choices",
        "closed_at",
        "deadline",
        "item",
        "key_map",
        "kind",
        "number",
        "opened_at",
        "proposals",
        "registered",
        "revote_of",
        "sealed",
        "seat_of",
        "secret",
        "subject",
        "tally",
        "threshold",
        "title",
    )

    def __init__(
        self,
        *,
        number: int,
        kind: VoteKind,
        subject: VoteSubject,
        title: str,
        item: str | None,
        threshold: Threshold,
        proposals: tuple[str, ...],
        revote_of: int | None,
        opened_at: int,
        deadline: int | None,
        registered: int,
    ) -> None:
        self.number = number
        self.kind = kind
        self.subject = subject
        self.title = title
        self.item = item
        self.threshold = threshold
        self.proposals = proposals
        self.revote_of = revote_of
        self.opened_at = opened_at
        self.deadline = deadline
        self.registered = registered  # registered count when the vote opened
        if kind is VoteKind.RATING:
            self.key_map: dict[Key, int] = {k: i for i, k in enumerate(PROPOSAL_KEYS[: len(proposals)])}
        else:
            self.key_map = YES_NO_OPTIONS
        self.tally = [0] * (len(proposals) if kind is VoteKind.RATING else 3)
        self.choices: dict[int, int] = {}  # deputy -> option (UNKNOWN for a replayed secret choice)
        self.seat_of: dict[int, int] = {}  # deputy -> seat the choice came from
        self.secret = kind is VoteKind.SECRET  # a plain attribute: read on every press
        self.sealed: tuple[int, ...] | None = None  # secret votes: counts from the sealed record
        self.closed_at: int | None = None  # secret votes: when they closed (their result comes at the seal)

    def cast(self, deputy: int, seat: int, option: int) -> bool:
        """Record a choice; False if it repeats the deputy's current choice."""
        prev = self.choices.get(deputy)
        if prev == option:
            return False
        tally = self.tally
        if prev is not None and prev != UNKNOWN:
            tally[prev] -= 1
        if option != UNKNOWN:
            tally[option] += 1
        self.choices[deputy] = option
        self.seat_of[deputy] = seat
        return True

    def recount(self) -> list[int]:
        counts = [0] * len(self.tally)
        for option in self.choices.values():
            if option != UNKNOWN:
                counts[option] += 1
        return counts

    @property
    def counts_known(self) -> bool:
        return UNKNOWN not in self.choices.values()

    def counts(self) -> tuple[int, ...]:
        if self.sealed is not None:
            return self.sealed
        return tuple(self.tally)

    def result(
        self,
        *,
        closed_at: int | None,
        voters: tuple[int, ...],
        present: set[int],
        composition: int,
        cancelled: str | None = None,
    ) -> VoteResult:
        """The published result; ``voters`` are the deputies who may vote, in roster order."""
        counts = self.counts()
        did_not_vote = sum(1 for d in voters if d not in self.choices and d in present)
        absent = sum(1 for d in voters if d not in self.choices and d not in present)
        per_name: tuple[NamedChoice, ...] = ()
        winner: int | None = None
        if self.kind is VoteKind.RATING:
            adopted, winner, required = self._rating_result(counts, composition)
        else:
            yes, no, abstain = counts
            base = base_value(self.threshold.base, composition, self.registered, yes, no, abstain)
            required = self.threshold.required(base)
            adopted = self.threshold.passes(yes, base)
        if self.kind in (VoteKind.ROLL_CALL, VoteKind.RATING):
            # Only named votes publish names; an open vote's result carries counts alone (its presses
            # stay in the journal, as every input does, for an audit).
            per_name = tuple(self._named(d, present) for d in voters)
        if cancelled is not None:
            adopted = False
        return VoteResult(
            number=self.number,
            kind=self.kind,
            subject=self.subject,
            title=self.title,
            item=self.item,
            threshold=self.threshold,
            proposals=self.proposals,
            revote_of=self.revote_of,
            opened_at=self.opened_at,
            closed_at=closed_at,
            counts=counts,
            did_not_vote=did_not_vote,
            absent=absent,
            composition=composition,
            registered=self.registered,
            required=required,
            adopted=adopted,
            winner=winner,
            per_name=per_name,
            cancelled=cancelled,
        )

    def _rating_result(self, counts: tuple[int, ...], composition: int) -> tuple[bool, int | None, int]:
        """The proposal with the most votes wins if it is the only top and meets the threshold."""
        cast = sum(counts)
        base = base_value(self.threshold.base, composition, self.registered, cast, 0, 0)
        required = self.threshold.required(base)
        top = max(counts, default=0)
        leaders = [i for i, c in enumerate(counts) if c == top]
        if top == 0 or len(leaders) != 1 or not self.threshold.passes(top, base):
            return False, None, required
        return True, leaders[0] + 1, required

    def _named(self, deputy: int, present: set[int]) -> NamedChoice:
        option = self.choices.get(deputy)
        seat = self.seat_of.get(deputy)
        if option is None:
            outcome = Outcome.DID_NOT_VOTE if deputy in present else Outcome.ABSENT
            return NamedChoice(deputy=deputy, seat=seat, outcome=outcome)
        if self.kind is VoteKind.RATING:
            return NamedChoice(deputy=deputy, seat=seat, outcome=Outcome.YES, proposal=option + 1)
        return NamedChoice(deputy=deputy, seat=seat, outcome=YES_NO_OUTCOMES[option])

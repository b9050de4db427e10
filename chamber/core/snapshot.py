"""Immutable views of the sitting for everyone who is not its owner.

The display, the CLI and the tests read these, never the live objects.  A
snapshot encodes to JSON with msgspec, which is also how replay is compared:
two runs that reach byte-identical snapshots reached the same state.  What a
vote shows while open depends on its kind: a secret vote shows only how many
took part, never a count by choice.
"""

from __future__ import annotations

import msgspec

from chamber.core.events import AgendaItem
from chamber.core.speakers import Request, SpeechRecord
from chamber.core.threshold import Threshold
from chamber.core.values import Phase, VoteKind, VoteSubject
from chamber.core.voting import VoteResult, VoteState


class RegistrationRound(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    opened_at: int
    closed_at: int
    registered: tuple[int, ...]  # deputies, sorted
    manual: tuple[tuple[int, str], ...]  # (deputy, reason) registered by the secretary
    count: int  # registered who count in the composition
    quorum: bool


class SeatView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    online: bool
    mic_ok: bool  # False: its separate microphone unit does not answer
    deputy: int | None
    present: bool
    rejected: int
    speaking: bool
    queued: bool
    # The seat's deputy has a choice in the vote in view (open, or closed and not yet cleared): who took
    # part is public in every kind of vote, so this is never the choice itself.
    voted: bool


class VoteView(msgspec.Struct, frozen=True, kw_only=True):
    number: int
    kind: VoteKind
    subject: VoteSubject
    title: str
    item: str | None
    threshold: Threshold
    proposals: tuple[str, ...]
    opened_at: int
    deadline: int | None
    open: bool
    cast: int  # how many deputies have chosen
    counts: tuple[int, ...] | None  # None while a secret vote is open or unsealed
    result: VoteResult | None

    @classmethod
    def of(cls, vote: VoteState, phase: Phase, result: VoteResult | None) -> VoteView:
        counts: tuple[int, ...] | None = vote.counts()
        if vote.secret and vote.sealed is None:
            counts = None
        return cls(
            number=vote.number,
            kind=vote.kind,
            subject=vote.subject,
            title=vote.title,
            item=vote.item,
            threshold=vote.threshold,
            proposals=vote.proposals,
            opened_at=vote.opened_at,
            deadline=vote.deadline,
            open=phase is Phase.VOTE_OPEN,
            cast=len(vote.choices),
            counts=counts,
            result=result,
        )


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    phase: Phase
    clock: int
    number: int
    title: str
    composition: int
    agenda: tuple[AgendaItem, ...]
    current_item: str | None
    registration_open: bool
    registered: int
    quorum: bool
    rounds: tuple[RegistrationRound, ...]
    vote: VoteView | None
    results: tuple[VoteResult, ...]
    queue: tuple[Request, ...]
    speaking: tuple[SpeechRecord, ...]
    speeches: tuple[SpeechRecord, ...]
    seats: tuple[SeatView, ...]
    alerts: int
    rejections: int

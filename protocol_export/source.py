"""A sitting as everything that leaves the hall sees it: read from the journal alone.

``load_sitting(journal, uid)`` checks the sitting's hash chain (a tampered or malformed journal is
refused: a document made from it would certify what the store no longer proves), replays every
record through the pure core (``Sitting.apply`` with the record's own time, exactly as recovery
does), and keeps what the documents need:

* the final snapshot (agenda, registration rounds, every finished vote's ``VoteResult`` with its
  per-name choices — empty for secret votes —, re-votes and cancellations, speeches);
* the roster as journaled in ``OpenSitting`` (names, factions, roles, cards: the config of the day,
  not today's config file, so a protocol rendered next year says what the hall had);
* the effects worth a line in the protocol, with their times: alerts (a card at a second seat,
  consoles offline, a press without a card ...) and refused presses (with the deputy whose card was
  in that seat, if any);
* what the snapshot does not keep but the journal holds: when each deputy registered in each round
  (``registrations``), who took part in each secret vote (``secret_ballots``: the deputies whose
  ``SecretBallotCast`` records were accepted; the records carry no choice, so neither does this) and
  the legal basis a vote was opened with (``legal_bases``);
* the journal's own coordinates: the sequence range and the head ``SEQ:HASH`` each document carries.

One thing a SittingDoc may carry that is not the journal's: ``recordings``, the speech recordings a
protocol lists as its annex (protocol_export.recording_list), read from the recorder's index by
whoever renders (``with_recordings``); empty unless given, and then the documents are the journal's
alone.

Nothing here reads a clock or the config file: the same journal gives the same ``SittingDoc``, so the
documents made from it are reproducible byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from chamber.chain import Head
from chamber.core import events as ev
from chamber.core.effects import Alert, ChoiceAccepted, Registered, Rejected
from chamber.core.events import decode_input
from chamber.core.phases import Phase
from chamber.core.roster import Roster
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.journal import Journal

if TYPE_CHECKING:
    from protocol_export.recording_list import Listed


class SourceError(Exception):
    """The journal cannot back a document: unknown sitting, a broken chain, an undecodable record."""


@dataclass(frozen=True)
class Timed:
    """An effect of the replay with the time (engine ms) and the journal record that caused it."""

    at_ms: int
    seq: int
    effect: Alert | Rejected
    deputy: int | None = None  # a refusal: whose card was in the seat (an alert names its own)


@dataclass(frozen=True)
class Registration:
    """A deputy registered in a round: first time only (a second press of the key changes nothing)."""

    round: int  # RegistrationRound.number
    deputy: int
    at_ms: int
    seq: int
    seat: int | None  # None: registered by the secretary (``RegisterDeputy``)
    reason: str = ""  # the secretary's reason for a manual registration


@dataclass(frozen=True)
class SittingDoc:
    uid: str
    roster: Roster
    number: int
    title: str
    opened_at_ms: int  # the time of the OpenSitting record
    closed_at_ms: int | None  # the time of CloseSitting, None while the sitting is open
    snapshot: Snapshot  # the state the whole journal leads to
    alerts: tuple[Timed, ...]
    refusals: tuple[Timed, ...]  # refused seat presses and cards (not repeats of a journaled press)
    first_seq: int
    last_seq: int
    head: Head  # the last record: printed on every document, checkable with journal verify --expect-head
    registrations: tuple[Registration, ...] = ()
    secret_ballots: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # vote -> deputies, sorted
    legal_bases: Mapping[int, str] = field(default_factory=dict)  # vote -> legal basis, where one was given
    recordings: tuple[Listed, ...] = ()  # the protocol's annex: not from the journal (module docstring)

    @property
    def head_text(self) -> str:
        return f"{self.head.seq}:{self.head.hash}"

    def with_recordings(self, listed: Iterable[Listed]) -> SittingDoc:
        """The same sitting with ``listed`` as its protocol's recordings annex."""
        return replace(self, recordings=tuple(listed))

    def deputy_name(self, deputy: int | None) -> str:
        for d in self.roster.deputies:
            if d.id == deputy:
                return d.full_name
        return "—" if deputy is None else f"#{deputy}"


#: Refusals of seat inputs that a protocol mentions; a repeat of a journaled press is the protocol
#: working, not an event of the sitting.
_NOT_NEWS = frozenset({"duplicate_event"})


def load_sitting(journal: Journal, uid: str) -> SittingDoc:
    """The sitting ``uid`` from ``journal`` (see the module docstring); SourceError if it cannot back a
    document."""
    check = journal.check(uid)
    if check.problems:
        first = "; ".join(str(p) for p in check.problems[:3])
        raise SourceError(f"sitting {uid}: the journal fails verification ({len(check.problems)} problems): {first}")
    if not check.records:
        raise SourceError(f"no sitting {uid!r} in the journal")
    sitting = Sitting()
    alerts: list[Timed] = []
    refusals: list[Timed] = []
    roster: Roster | None = None
    number, title = 0, ""
    opened_at = closed_at = None
    registrations: dict[tuple[int, int], Registration] = {}
    ballots: dict[int, set[int]] = {}
    bases: dict[int, str] = {}
    for rec in check.records:
        try:
            event = decode_input(rec.payload)
        except Exception as exc:
            raise SourceError(f"sitting {uid}: record {rec.seq} cannot be decoded: {exc}") from exc
        if isinstance(event, ev.OpenSitting) and roster is None:
            roster, number, title, opened_at = event.roster, event.number, event.title, rec.at_ms
        effects = sitting.apply(event, rec.at_ms)
        refused = bool(effects) and type(effects[0]) is Rejected
        if isinstance(event, ev.CloseSitting) and not refused:
            closed_at = rec.at_ms
        vote = sitting.vote
        for effect in effects:
            if isinstance(effect, Alert):
                alerts.append(Timed(rec.at_ms, rec.seq, effect))
            elif isinstance(effect, Rejected):
                if isinstance(event, ev.SEAT_EVENTS) and effect.reason not in _NOT_NEWS:
                    seat = sitting.seats.get(effect.seat) if effect.seat is not None else None
                    refusals.append(Timed(rec.at_ms, rec.seq, effect, seat.deputy if seat else None))
            elif isinstance(effect, Registered) and isinstance(event, ev.KeyPressed | ev.RegisterDeputy):
                # a card put back in relights a registration made before (Registered again): not news
                key = (len(sitting.rounds) + 1, effect.deputy)  # the open round's number
                if sitting.phase is Phase.REGISTRATION and key not in registrations:
                    reason = event.reason if isinstance(event, ev.RegisterDeputy) else ""
                    registrations[key] = Registration(key[0], effect.deputy, rec.at_ms, rec.seq, effect.seat, reason)
            elif isinstance(effect, ChoiceAccepted) and isinstance(event, ev.SecretBallotCast) and vote is not None:
                deputy = sitting.seats[event.seat].deputy
                if deputy is not None:
                    ballots.setdefault(vote.number, set()).add(deputy)
        if isinstance(event, ev.OpenVote) and not refused and vote is not None and event.legal_basis.strip():
            bases[vote.number] = event.legal_basis
    if roster is None or opened_at is None:
        raise SourceError(f"sitting {uid}: the journal holds no opening of the sitting")
    head = check.head
    assert head is not None  # records exist
    return SittingDoc(
        uid=uid,
        roster=roster,
        number=number,
        title=title,
        opened_at_ms=opened_at,
        closed_at_ms=closed_at,
        snapshot=sitting.snapshot(),
        alerts=tuple(alerts),
        refusals=tuple(refusals),
        first_seq=check.records[0].seq,
        last_seq=check.records[-1].seq,
        head=head,
        registrations=tuple(sorted(registrations.values(), key=lambda r: (r.round, r.at_ms, r.seq, r.deputy))),
        secret_ballots={number: tuple(sorted(deputies)) for number, deputies in sorted(ballots.items())},
        legal_bases=bases,
    )

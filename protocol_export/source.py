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
  consoles offline, a press without a card ...) and refused presses;
* the journal's own coordinates: the sequence range and the head ``SEQ:HASH`` each document carries.

Nothing here reads a clock or the config file: the same journal gives the same ``SittingDoc``, so the
documents made from it are reproducible byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass

from chamber.chain import Head
from chamber.core import events as ev
from chamber.core.effects import Alert, Rejected
from chamber.core.events import decode_input
from chamber.core.roster import Roster
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.journal import Journal


class SourceError(Exception):
    """The journal cannot back a document: unknown sitting, a broken chain, an undecodable record."""


@dataclass(frozen=True)
class Timed:
    """An effect of the replay with the time (engine ms) and the journal record that caused it."""

    at_ms: int
    seq: int
    effect: Alert | Rejected


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

    @property
    def head_text(self) -> str:
        return f"{self.head.seq}:{self.head.hash}"

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
        for effect in effects:
            if type(effect) is Alert:
                alerts.append(Timed(rec.at_ms, rec.seq, effect))
            elif type(effect) is Rejected and isinstance(event, ev.SEAT_EVENTS) and effect.reason not in _NOT_NEWS:
                refusals.append(Timed(rec.at_ms, rec.seq, effect))
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
    )

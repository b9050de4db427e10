"""Each deputy's attendance and voting record of the sitting, as data (CSV and JSON).

Three files, for every deputy of the roster as journaled (the head too), ids as in the other tables
(``facts.voter_id``):

* ``deputies.csv`` — one row per deputy: ``voterId, voterName, faction, role``, then attendance
  (``registrationRounds`` held, ``registered`` in how many, ``registeredManually`` by the secretary)
  and votes (``namedVotes`` held, ``tookPart``, ``votedFor``, ``votedAgainst``, ``abstained``,
  ``didNotVote``, ``absent``), then ``secretBallots``: the secret votes the deputy took part in (the
  journal knows who cast a ballot, never what it was).  ``tookPart`` is «За» + «Проти» +
  «Утримався» of the named votes; a rating vote's choice of a proposal counts as «За», as everywhere
  in the open data;
* ``deputy-votes.csv`` — one row per deputy per named vote: ``voterId, voterName, voteUid,
  voteNumber, motionUid, title, voteResult, result, proposal`` (``result`` is the deputy's «За» …
  «Відсутній», ``voteResult`` the vote's «Прийнято» / «Не прийнято» / «Не голосували»);
* ``deputies.json`` — the same per deputy, with each registration round (registered or not, when,
  and the reason of a manual registration), each named vote and the uids of the secret votes taken
  part in, under ``meta`` naming the sitting and the journal head.

Only named votes (roll-call and rating) have a deputy's choice: a secret vote never links a deputy to
a choice (only taking part is recorded) and an open vote publishes counts only.  A cancelled vote is
listed (its ``voteResult`` is «Не голосували») but not counted in the totals: it decided nothing.  A
deputy who may not vote (the head where the council's rules say so) has no votes.
"""

from __future__ import annotations

from dataclasses import dataclass

from chamber.core.roster import Deputy
from chamber.core.values import Outcome, Role
from chamber.core.voting import NamedChoice, VoteResult
from protocol_export.dialect import csv_bytes, json_bytes
from protocol_export.facts import OUTCOME_UK, Facts, utc_datetime

SUMMARY_COLUMNS = (
    "voterId",
    "voterName",
    "faction",
    "role",
    "registrationRounds",
    "registered",
    "registeredManually",
    "namedVotes",
    "tookPart",
    "votedFor",
    "votedAgainst",
    "abstained",
    "didNotVote",
    "absent",
    "secretBallots",
)
VOTE_COLUMNS = (
    "voterId",
    "voterName",
    "voteUid",
    "voteNumber",
    "motionUid",
    "title",
    "voteResult",
    "result",
    "proposal",
)
ROLE_UK = {Role.DEPUTY: "депутат", Role.HEAD: "міський голова"}


@dataclass(frozen=True)
class VoteLine:
    vote: VoteResult
    choice: NamedChoice


def _named_votes(facts: Facts, deputy: Deputy) -> list[VoteLine]:
    return [VoteLine(v, c) for v, c in facts.choices_by_deputy.get(deputy.id, ())]


def _totals(facts: Facts, deputy: Deputy) -> dict[str, int]:
    counted = [line.choice.outcome for line in _named_votes(facts, deputy) if line.vote.cancelled is None]
    rounds = facts.doc.snapshot.rounds
    took = sum(1 for o in counted if o in (Outcome.YES, Outcome.NO, Outcome.ABSTAIN))
    return {
        "registrationRounds": len(rounds),
        "registered": sum(1 for r in rounds if deputy.id in r.registered),
        "registeredManually": sum(1 for r in rounds if any(d == deputy.id for d, _ in r.manual)),
        "namedVotes": len(counted),
        "tookPart": took,
        "votedFor": counted.count(Outcome.YES),
        "votedAgainst": counted.count(Outcome.NO),
        "abstained": counted.count(Outcome.ABSTAIN),
        "didNotVote": counted.count(Outcome.DID_NOT_VOTE),
        "absent": counted.count(Outcome.ABSENT),
        "secretBallots": len(_secret_votes(facts, deputy)),
    }


def _secret_votes(facts: Facts, deputy: Deputy) -> list[VoteResult]:
    """The secret votes (not cancelled) in which ``deputy`` cast a ballot."""
    ballots = facts.doc.secret_ballots
    return [v for v in facts.votes if v.cancelled is None and deputy.id in ballots.get(v.number, ())]


def _proposal(line: VoteLine) -> str:
    p = line.choice.proposal
    return line.vote.proposals[p - 1] if p is not None else ""


def summary_rows(facts: Facts) -> list[tuple[str | int, ...]]:
    rows: list[tuple[str | int, ...]] = []
    for d in facts.doc.roster.deputies:
        totals = _totals(facts, d)
        rows.append((facts.voter_id(d.id), d.full_name, d.faction, ROLE_UK[d.role], *totals.values()))
    return rows


def vote_rows(facts: Facts) -> list[tuple[str | int, ...]]:
    rows: list[tuple[str | int, ...]] = []
    for d in facts.doc.roster.deputies:
        for line in _named_votes(facts, d):
            rows.append(
                (
                    facts.voter_id(d.id),
                    d.full_name,
                    facts.vote_uid(line.vote),
                    line.vote.number,
                    facts.motion_of(line.vote).uid,
                    facts.vote_title(line.vote),
                    facts.vote_result(line.vote),
                    OUTCOME_UK[line.choice.outcome],
                    _proposal(line),
                )
            )
    return rows


def deputies_json(facts: Facts) -> dict[str, object]:
    doc = facts.doc
    registered_at = {(r.round, r.deputy): utc_datetime(r.at_ms) for r in doc.registrations}
    people = []
    for d in doc.roster.deputies:
        registrations = [
            {
                "round": r.number,
                "opened_at": utc_datetime(r.opened_at),
                "registered": d.id in r.registered,
                "registered_at": registered_at.get((r.number, d.id)),
                "manual_reason": next((why for who, why in r.manual if who == d.id), None),
            }
            for r in doc.snapshot.rounds
        ]
        votes = [
            {
                "vote_uid": facts.vote_uid(line.vote),
                "number": line.vote.number,
                "motion_uid": facts.motion_of(line.vote).uid,
                "title": facts.vote_title(line.vote),
                "vote_result": facts.vote_result(line.vote),
                "cancelled": line.vote.cancelled is not None,
                "result": OUTCOME_UK[line.choice.outcome],
                "proposal": _proposal(line) or None,
            }
            for line in _named_votes(facts, d)
        ]
        people.append(
            {
                "id": facts.voter_id(d.id),
                "name": d.full_name,
                "faction": d.faction or None,
                "role": ROLE_UK[d.role],
                "totals": _totals(facts, d),
                "registrations": registrations,
                "votes": votes,
                "secret_ballots": [facts.vote_uid(v) for v in _secret_votes(facts, d)],
            }
        )
    return {
        "meta": {
            "sitting": doc.uid,
            "journal": {"first_seq": doc.first_seq, "last_seq": doc.last_seq, "head": doc.head_text},
        },
        "deputies": people,
    }


def files(facts: Facts) -> dict[str, bytes]:
    return {
        "deputies.csv": csv_bytes(SUMMARY_COLUMNS, summary_rows(facts)),
        "deputy-votes.csv": csv_bytes(VOTE_COLUMNS, vote_rows(facts)),
        "deputies.json": json_bytes(deputies_json(facts)),
    }

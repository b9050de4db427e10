"""The sitting in Popolo JSON (popoloproject.com), and its validation against the draft-03 schemas.

``export(facts)`` gives one document in the usual shape of a Popolo export: lists under
``organizations`` (the council, with its ЄДРПОУ and КАТОТТГ as identifiers, and its factions),
``persons`` (every deputy of the roster; ``id`` is the open-data voting identifier of ``facts``),
``memberships`` (deputy or head of the council; member of a faction), ``events`` (the session, with
the sitting's uid), ``motions`` (the agenda items, as in motions.csv) and ``vote_events`` (every
vote, as in voteEvents.csv), plus ``meta`` with the sitting and the journal head it was made from.
Ids are the CSV tables' uids, so the two formats can be joined.

Values, in Popolo's customary English words:

* a vote event's ``result`` is ``pass`` or ``fail``, and ``cancelled`` for a vote cancelled or
  annulled (its counts and votes as the hall saw them); a motion's is ``pass``, ``fail``,
  ``not voted`` or ``not considered`` (the four values of the Ukrainian tables, same rules);
* ``classification`` of a vote event is ``KIND/SUBJECT`` (``roll_call/whole``, ``secret/basis``,
  ``rating/whole``, ``open/procedural``): what the Popolo schema has no field for;
* ``counts`` per option: ``yes``, ``no``, ``abstain`` — or one per proposal of a rating vote, the
  proposal's text as the option — then ``not voting`` (present, did not vote) and ``absent``;
* ``votes`` (named votes only: roll-call and rating) per deputy with the same options and the
  deputy's faction as ``group_id``; secret and open votes have counts and no votes.

``validate(document)`` checks every item of those lists against its schema with ``jsonschema``'s
``Draft3Validator`` (dates in ``date-time`` fields checked too), resolving the schemas'
``http://www.popoloproject.com/schemas/NAME.json#`` references to the vendored files through a
``referencing`` registry, so nothing is fetched.  The schemas say nothing about how items refer to
each other, so it also checks that every id referred to exists and that each named vote's counts
equal its votes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from chamber.core.values import Outcome, Role, VoteKind
from chamber.core.voting import VoteResult
from protocol_export.facts import (
    ADOPTED,
    NOT_ADOPTED,
    NOT_CONSIDERED,
    NOT_VOTED,
    Facts,
    council_id,
    utc_datetime,
    utc_seconds,
)

POPOLO = Path(__file__).resolve().parent / "schemas" / "popolo"

#: The export's lists and the schema each item of them follows.
SCHEMA_OF = {
    "organizations": "organization",
    "persons": "person",
    "memberships": "membership",
    "events": "event",
    "motions": "motion",
    "vote_events": "vote_event",
}

MOTION_RESULT = {ADOPTED: "pass", NOT_ADOPTED: "fail", NOT_VOTED: "not voted", NOT_CONSIDERED: "not considered"}
OPTION = {
    Outcome.YES: "yes",
    Outcome.NO: "no",
    Outcome.ABSTAIN: "abstain",
    Outcome.DID_NOT_VOTE: "not voting",
    Outcome.ABSENT: "absent",
}

Json = dict[str, Any]


def _identifiers(pairs: list[tuple[str, str]]) -> list[Json]:
    return [{"identifier": value, "scheme": scheme} for scheme, value in pairs if value]


def _faction_ids(facts: Facts) -> dict[str, str]:
    """Faction name -> organization id, numbered in the roster's order (names are Ukrainian text)."""
    names = dict.fromkeys(d.faction for d in facts.doc.roster.deputies if d.faction)
    return {name: f"{council_id(facts.council)}-faction-{i}" for i, name in enumerate(names, start=1)}


def organizations(facts: Facts) -> list[Json]:
    council = facts.council
    org = council_id(council)
    items: list[Json] = [
        {
            "id": org,
            "name": council.name,
            "classification": "council",
            "identifiers": _identifiers([("ЄДРПОУ", council.edrpou), ("КАТОТТГ", council.katottg)]),
            "area_id": council.katottg or None,
        }
    ]
    items += [
        {"id": fid, "name": name, "classification": "faction", "parent_id": org}
        for name, fid in _faction_ids(facts).items()
    ]
    return items


def persons(facts: Facts) -> list[Json]:
    items = []
    for d in facts.doc.roster.deputies:
        pid = facts.voter_id(d.id)
        person: Json = {
            "id": pid,
            "name": d.full_name,
            "sort_name": d.full_name,
            "identifiers": _identifiers([("votingIdentifier", pid)]),
        }
        parts = d.full_name.split()
        if len(parts) == 3:  # «Прізвище Ім'я По батькові», as the roster writes names
            person.update(family_name=parts[0], given_name=parts[1], patronymic_name=parts[2])
        items.append(person)
    return items


def memberships(facts: Facts) -> list[Json]:
    org = council_id(facts.council)
    factions = _faction_ids(facts)
    items: list[Json] = []
    for d in facts.doc.roster.deputies:
        pid = facts.voter_id(d.id)
        role = "міський голова" if d.role is Role.HEAD else "депутат"
        items.append({"person_id": pid, "organization_id": org, "role": role})
        if d.faction:
            items.append({"person_id": pid, "organization_id": factions[d.faction], "role": "член фракції"})
    return items


def events(facts: Facts) -> list[Json]:
    doc = facts.doc
    return [
        {
            "id": facts.session_uid,
            "name": f"{doc.number} сесія",
            "description": doc.title,
            "classification": "legislative session",
            "organization_id": council_id(facts.council),
            "start_date": utc_seconds(doc.opened_at_ms),
            "end_date": utc_seconds(doc.closed_at_ms) if doc.closed_at_ms is not None else None,
            "identifiers": _identifiers([("chamber sitting", doc.uid)]),
        }
    ]


def motions(facts: Facts) -> list[Json]:
    org = council_id(facts.council)
    items = []
    for m in facts.motions:
        started = [v.opened_at for v in m.votes] + [s.start_ms for s in facts.spans if s.number == m.item]
        items.append(
            {
                "id": m.uid,
                "organization_id": org,
                "legislative_session_id": facts.session_uid,
                "creator_id": facts.voter_id(m.reporter) if m.reporter is not None else None,
                "text": m.title,
                "identifier": m.draft or None,
                "classification": m.classification,
                "date": utc_datetime(min(started)) if started else None,
                "requirement": m.decisive.threshold.describe_uk() if m.decisive is not None else None,
                "result": MOTION_RESULT[m.result],
            }
        )
    return items


def _options(vote: VoteResult) -> list[str]:
    return list(vote.proposals) if vote.kind is VoteKind.RATING else ["yes", "no", "abstain"]


def _vote_option(vote: VoteResult, outcome: Outcome, proposal: int | None) -> str:
    if vote.kind is VoteKind.RATING and proposal is not None:
        return vote.proposals[proposal - 1]
    return OPTION[outcome]


def vote_events(facts: Facts) -> list[Json]:
    org = council_id(facts.council)
    factions = _faction_ids(facts)
    items = []
    for vote in facts.votes:
        counts = [{"option": o, "value": n} for o, n in zip(_options(vote), vote.counts, strict=True)]
        counts += [{"option": "not voting", "value": vote.did_not_vote}, {"option": "absent", "value": vote.absent}]
        result = "cancelled" if vote.cancelled is not None else ("pass" if vote.adopted else "fail")
        votes = []
        for c in vote.per_name:
            faction = facts.deputy(c.deputy).faction
            votes.append(
                {
                    "voter_id": facts.voter_id(c.deputy),
                    "option": _vote_option(vote, c.outcome, c.proposal),
                    "group_id": factions[faction] if faction else None,
                }
            )
        item: Json = {
            "id": facts.vote_uid(vote),
            "organization_id": org,
            "legislative_session_id": facts.session_uid,
            "motion_id": facts.motion_of(vote).uid,
            "identifier": str(vote.number),
            "classification": f"{vote.kind.value}/{vote.subject.value}",
            "start_date": utc_datetime(vote.opened_at),
            "end_date": utc_datetime(vote.closed_at) if vote.closed_at is not None else None,
            "result": result,
            "counts": counts,
        }
        if vote.per_name:
            item["votes"] = votes
        items.append(item)
    return items


def export(facts: Facts) -> Json:
    doc = facts.doc
    return {
        "meta": {
            "sitting": doc.uid,
            "journal": {"first_seq": doc.first_seq, "last_seq": doc.last_seq, "head": doc.head_text},
        },
        "organizations": organizations(facts),
        "persons": persons(facts),
        "memberships": memberships(facts),
        "events": events(facts),
        "motions": motions(facts),
        "vote_events": vote_events(facts),
    }


# --- validation ------------------------------------------------------------------------------------


@cache
def _registry() -> Any:
    from referencing import Registry, Resource

    resources = []
    for path in sorted(POPOLO.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        # the ids end in an empty fragment ("...vote.json#"); a $ref to one is looked up without it
        resources.append((schema["id"].rstrip("#"), Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Any:
    """A Draft3Validator for Popolo's schema ``name`` (``vote_event``), references resolved locally."""
    from jsonschema import Draft3Validator

    schema = json.loads((POPOLO / f"{name}.json").read_text(encoding="utf-8"))
    Draft3Validator.check_schema(schema)
    return Draft3Validator(schema, registry=_registry(), format_checker=Draft3Validator.FORMAT_CHECKER)


def schema_problems(document: Json) -> list[str]:
    problems = []
    for key, name in SCHEMA_OF.items():
        items = document.get(key)
        if not isinstance(items, list):
            problems.append(f"{key}: missing (a list of {name} objects)")
            continue
        for i, item in enumerate(items):
            for err in validator(name).iter_errors(item):
                where = "".join(f"[{p!r}]" if isinstance(p, str) else f"[{p}]" for p in err.absolute_path)
                problems.append(f"{key}[{i}]{where}: {err.message} ({name}.json)")
    return problems


def _ids(document: Json, key: str) -> set[object]:
    return {item.get("id") for item in document.get(key, []) if isinstance(item, dict)}


def reference_problems(document: Json) -> list[str]:
    """Ids referred to that do not exist, and named votes whose counts are not their votes."""
    orgs, people = _ids(document, "organizations"), _ids(document, "persons")
    motion_ids, sessions = _ids(document, "motions"), _ids(document, "events")
    problems = []
    for i, m in enumerate(document.get("memberships", [])):
        if m.get("person_id") not in people or m.get("organization_id") not in orgs:
            problems.append(f"memberships[{i}]: refers to an unknown person or organization")
    for key in ("motions", "vote_events"):
        for i, item in enumerate(document.get(key, [])):
            if item.get("organization_id") not in orgs or item.get("legislative_session_id") not in sessions:
                problems.append(f"{key}[{i}]: refers to an unknown organization or session")
    for i, ve in enumerate(document.get("vote_events", [])):
        if ve.get("motion_id") not in motion_ids:
            problems.append(f"vote_events[{i}]: motion {ve.get('motion_id')!r} is not among the motions")
        votes = ve.get("votes")
        if votes is None:
            continue
        if any(v.get("voter_id") not in people for v in votes):
            problems.append(f"vote_events[{i}]: a vote by an unknown person")
        tally: dict[str, int] = {}
        for v in votes:
            tally[v.get("option")] = tally.get(v.get("option"), 0) + 1
        counted = {c.get("option"): c.get("value") for c in ve.get("counts", []) if c.get("value")}
        if counted != tally:
            problems.append(f"vote_events[{i}]: counts {counted} are not the votes {tally}")
    return problems


def validate(document: Json) -> list[str]:
    """Every problem of a Popolo export (see the module docstring); [] when it is valid."""
    problems = schema_problems(document)
    return problems + (reference_problems(document) if not problems else [])

"""Open data of a sitting: the Resolution 835 tables, Popolo JSON, the deputies' records, a manifest.

``write_opendata(facts, out)`` writes into the folder ``out``:

* the tables councils publish today, ``motions2.csv`` (one row per agenda item, with the counts and
  result of the item's decisive vote) and ``votings.csv`` (one row per deputy per item, from that
  vote), and the extension that tells repeated votes on one item apart: ``convocations.csv``,
  ``sessions.csv``, ``motions.csv`` (the items), ``voteEvents.csv`` (one row per vote, cancelled
  ones included) and ``vote.csv`` (one row per deputy per vote) — each with its schema's column
  names in its schema's order, in CSVW's default dialect: UTF-8 without a byte-order mark, comma,
  ``"`` quoting, CRLF, a header row; ``date`` as ``yyyy-mm-dd`` (the day in Kyiv), ``dateTime`` as
  UTC ``2023-04-09T15:00:00.000000Z`` (the schemas' example);
* ``csv-metadata.json``: the CSVW metadata of those tables (``csvw_meta``), so that any CSVW tool can
  check them;
* ``popolo.json`` (``popolo``) and the deputies' attendance and voting records, ``deputies.csv``,
  ``deputy-votes.csv`` and ``deputies.json`` (``record``);
* ``manifest.json``: the sitting's uid, the journal's sequence range and head ``SEQ:HASH`` (what
  ``chamber journal verify --sitting UID --expect-head SEQ:HASH`` checks the store against), and every
  file above with its size and SHA-256.  No time of writing: the same journal gives the same bytes.

What the values mean (identifiers, decisive votes, the results of cancelled votes) is in ``facts``.
Per-deputy results are «За», «Проти», «Утримався», «Не голосував», «Відсутній»; a deputy who chose a
proposal in a rating vote voted «За» (it), as the core counts them.  Only named votes have per-deputy
rows: roll-call and rating votes.  A secret vote has counts and a result and no rows in ``vote`` or
``votings`` (who chose what is never known, and «Не голосував» would be false of those who took
part); an open vote publishes counts only, as the hall showed it.

The convocation's dates are not in the journal: ``convocation_dates`` gives them (first, last day);
without them the convocation row spans the sitting's own days, the part of it this journal attests.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from chamber.core.values import VoteKind
from chamber.core.voting import VoteResult
from protocol_export import csvw_meta, popolo, record
from protocol_export.dialect import Cell, Row, csv_bytes, json_bytes
from protocol_export.facts import NO_DRAFT, OUTCOME_UK, Facts, Motion, utc_datetime


def _yes_no_abstain(vote: VoteResult) -> tuple[int, int, int]:
    """A rating vote's choices are all «За» (a proposal); it has no «Проти» and no «Утримався»."""
    if vote.kind is VoteKind.RATING:
        return sum(vote.counts), 0, 0
    yes, no, abstain = vote.counts
    return yes, no, abstain


def _authority(facts: Facts) -> tuple[str, str, str]:
    council = facts.council
    return council.name, council.edrpou, council.katottg


def _convocation_label(facts: Facts) -> str:
    return f"{facts.council.convocation} скликання"


def _session_label(facts: Facts) -> str:
    return f"{facts.doc.number} сесія"


def motions2_rows(facts: Facts) -> list[Row]:
    name, edrpou, katottg = _authority(facts)
    rows: list[Row] = []
    for m in facts.motions:
        counts: tuple[Cell, ...] = (None, None, None, None, None)
        if m.decisive is not None:
            counts = (*_yes_no_abstain(m.decisive), m.decisive.did_not_vote, m.decisive.absent)
        rows.append(
            (
                m.uid,
                facts.date,
                name,
                edrpou,
                katottg,
                _convocation_label(facts),
                _session_label(facts),
                m.number,
                m.title,
                m.draft or None,
                *counts,
                m.result,
                facts.decision_url(m),
                facts.decision_file(m),
            )
        )
    return rows


def votings_rows(facts: Facts) -> list[Row]:
    rows: list[Row] = []
    for m in facts.motions:
        if m.decisive is None:
            continue
        for choice in m.decisive.per_name:
            deputy = facts.deputy(choice.deputy)
            rows.append((m.uid, facts.voter_id(choice.deputy), deputy.full_name, m.title, OUTCOME_UK[choice.outcome]))
    return rows


def convocations_rows(facts: Facts, dates: tuple[str, str] | None = None) -> list[Row]:
    name, edrpou, katottg = _authority(facts)
    first, last = dates or (facts.date, facts.end_date)
    return [(facts.convocation_uid, _convocation_label(facts), first, last, name, edrpou, katottg)]


def sessions_rows(facts: Facts) -> list[Row]:
    return [(facts.session_uid, _session_label(facts), facts.convocation_uid, facts.date, facts.end_date)]


def _reporter_id(facts: Facts, m: Motion) -> str:
    return facts.voter_id(m.reporter) if m.reporter is not None else ""


def motions_rows(facts: Facts) -> list[Row]:
    return [
        (
            m.uid,
            facts.session_uid,
            _reporter_id(facts, m),
            m.title,
            m.number,
            m.classification,
            facts.date,
            None,
        )
        for m in facts.motions
    ]


def vote_events_rows(facts: Facts) -> list[Row]:
    rows: list[Row] = []
    for vote in facts.votes:
        m = facts.motion_of(vote)
        yes, no, abstain = _yes_no_abstain(vote)
        rows.append(
            (
                facts.vote_uid(vote),
                m.uid,
                m.draft or NO_DRAFT,
                facts.vote_title(vote),
                utc_datetime(vote.opened_at),
                utc_datetime(vote.closed_at if vote.closed_at is not None else vote.opened_at),
                facts.vote_result(vote),
                yes,
                no,
                abstain,
                vote.did_not_vote,
                vote.absent,
                facts.decision_url(m),
                facts.decision_file(m),
            )
        )
    return rows


def vote_rows(facts: Facts) -> list[Row]:
    return [
        (facts.vote_uid(vote), facts.voter_id(choice.deputy), OUTCOME_UK[choice.outcome])
        for vote in facts.votes
        for choice in vote.per_name
    ]


def tables(facts: Facts, convocation_dates: tuple[str, str] | None = None) -> dict[str, bytes]:
    """``NAME.csv`` -> its bytes, for every table of ``csvw_meta.TABLES``."""
    made: dict[str, list[Row]] = {
        "motions2": motions2_rows(facts),
        "votings": votings_rows(facts),
        "convocations": convocations_rows(facts, convocation_dates),
        "sessions": sessions_rows(facts),
        "motions": motions_rows(facts),
        "voteEvents": vote_events_rows(facts),
        "vote": vote_rows(facts),
    }
    out: dict[str, bytes] = {}
    for name in csvw_meta.TABLES:
        header = csvw_meta.table_spec(name).names
        assert all(len(r) == len(header) for r in made[name]), name  # a row built against another schema
        out[f"{name}.csv"] = csv_bytes(header, made[name])
    return out


def documents(facts: Facts, convocation_dates: tuple[str, str] | None = None) -> dict[str, bytes]:
    """Every file ``write_opendata`` writes but the manifest, name -> bytes."""
    files = tables(facts, convocation_dates)
    files[csvw_meta.METADATA_NAME] = csvw_meta.metadata_bytes()
    files["popolo.json"] = json_bytes(popolo.export(facts))
    files.update(record.files(facts))
    return files


def manifest(facts: Facts, files: dict[str, bytes]) -> dict[str, object]:
    doc = facts.doc
    return {
        "sitting": doc.uid,
        "number": doc.number,
        "title": doc.title,
        "council": facts.council.name,
        "journal": {"first_seq": doc.first_seq, "last_seq": doc.last_seq, "head": doc.head_text},
        "verify": f"chamber journal verify --sitting {doc.uid} --expect-head {doc.head_text}",
        "files": [
            {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in sorted(files.items())
        ],
    }


def write_opendata(facts: Facts, out: Path, convocation_dates: tuple[str, str] | None = None) -> list[Path]:
    """Write every file into ``out`` (created if missing); the paths written, the manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    files = documents(facts, convocation_dates)
    files["manifest.json"] = json_bytes(manifest(facts, files))
    written = []
    for name, data in files.items():
        path = out / name
        path.write_bytes(data)
        written.append(path)
    return written


def validate_folder(out: Path) -> list[str]:
    """Every problem of the files in ``out``: the tables (``csvw_meta.check_folder``), the Popolo JSON
    (``popolo.validate``) and the manifest's checksums; [] when all is valid."""
    problems = csvw_meta.check_folder(out)
    popolo_path = out / "popolo.json"
    if popolo_path.exists():
        problems += [f"popolo: {p}" for p in popolo.validate(json.loads(popolo_path.read_text(encoding="utf-8")))]
    else:
        problems.append("popolo: popolo.json: missing")
    problems += manifest_problems(out)
    return problems


def manifest_problems(out: Path) -> list[str]:
    path = out / "manifest.json"
    if not path.exists():
        return ["manifest: manifest.json: missing"]
    listed = json.loads(path.read_text(encoding="utf-8"))
    problems = []
    for entry in listed.get("files", []):
        file = out / entry["name"]
        if not file.exists():
            problems.append(f"manifest: {entry['name']}: missing")
        elif hashlib.sha256(file.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"manifest: {entry['name']}: its SHA-256 is not the manifest's")
    return problems

"""Open data (issue 9): the Resolution 835 tables, Popolo JSON, deputies' records and the manifest of a
journaled sitting (tests/export_fixtures.py), the vendored schemas, and validators that catch what is
wrong: every kind of mistake planted in a valid folder must be found, most by csvw itself."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from export_fixtures import council, journal_sitting

from chamber.cli import main
from chamber.core.events import AgendaItem
from chamber.core.values import Outcome
from chamber.journal import Journal
from protocol_export import csvw_meta, opendata, popolo
from protocol_export.facts import PER_DEPUTY, PER_MOTION, Facts, facts_of, load_facts, voter_id
from protocol_export.opendata import validate_folder, write_opendata

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "standards"  # beside the repository, here and in CI
VENDORED = ROOT / "protocol_export" / "schemas"


@pytest.fixture(scope="module")
def sitting(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    path = tmp_path_factory.mktemp("opendata") / "j.db"
    url = f"sqlite:///{path}"
    return url, journal_sitting(url), path


@pytest.fixture(scope="module")
def facts(sitting: tuple[str, str, Path]) -> Facts:
    url, uid, _ = sitting
    with Journal(url, create=False) as journal:
        return load_facts(journal, uid)


@pytest.fixture(scope="module")
def folder(facts: Facts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("od") / "out"
    write_opendata(facts, out)
    return out


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


# --- the schemas ---------------------------------------------------------------------------------


def _schema_files(root: Path) -> dict[str, bytes]:
    files = [*root.glob("popolo/*.json"), *root.glob("ua-open-data/*/schema.*")]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_vendored_schemas_are_the_shared_standards() -> None:
    vendored = _schema_files(VENDORED)
    assert len(vendored) == 16 + 7 * 2
    if not SHARED.is_dir():
        pytest.skip(f"no shared standards beside the repository ({SHARED})")
    assert vendored == _schema_files(SHARED)


@pytest.mark.parametrize("table", csvw_meta.TABLES)
def test_schema_json_and_schema_csv_agree(table: str) -> None:
    spec = csvw_meta.table_spec(table)
    listed = csvw_meta.schema_csv_rows(table)
    assert [c.name for c in spec.columns] == [r["name"].strip() for r in listed]
    assert [c.title for c in spec.columns] == [r["title"].strip() for r in listed]
    assert [c.datatype for c in spec.columns] == [r["datatype"] for r in listed]
    assert [c.required for c in spec.columns] == [r["required"] == "True" for r in listed]


def test_value_sets_come_from_the_schemas_and_are_the_designs() -> None:
    sets = {(t, c.name): c.values for t in csvw_meta.TABLES for c in csvw_meta.table_spec(t).columns if c.values}
    assert sets == {
        ("votings", "result"): PER_DEPUTY,
        ("vote", "result"): PER_DEPUTY,
        ("motions2", "votingResult"): PER_MOTION,
        ("voteEvents", "result"): PER_MOTION,
    }
    assert {o.label_uk for o in Outcome} == set(PER_DEPUTY)  # the core's words are the schemas'


def test_the_schemas_quirks_are_read_as_documented() -> None:
    raw = json.loads((VENDORED / "ua-open-data/voteEvents/schema.json").read_text(encoding="utf-8"))
    assert "votingAgainst\n" in [c["name"] for c in raw["tableSchema"]["columns"]]  # still there upstream
    assert "votingAgainst" in csvw_meta.table_spec("voteEvents").names
    assert csvw_meta.table_spec("vote").primary_key == ("uid", "voterUid")
    assert csvw_meta.table_spec("voteEvents").primary_key == ("uid",)
    md = csvw_meta.csvw_metadata()
    datatypes = {
        c["datatype"] if isinstance(c["datatype"], str) else "set"
        for t in md["tables"]
        for c in t["tableSchema"]["columns"]
    }
    assert datatypes == {"string", "integer", "date", "dateTime", "anyURI", "set"}  # no anyURL left


# --- the tables ----------------------------------------------------------------------------------


def test_written_folder_is_valid(folder: Path) -> None:
    assert validate_folder(folder) == []


def test_tables_are_encoded_as_the_schemas_say(folder: Path) -> None:
    for table in csvw_meta.TABLES:
        raw = (folder / f"{table}.csv").read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        text = raw.decode("utf-8")
        assert text.split("\r\n")[0] == ",".join(csvw_meta.table_spec(table).names)
        assert "\n" not in text.replace("\r\n", "")  # CRLF only


def test_motions2_one_row_per_item_with_its_deciding_vote(folder: Path) -> None:
    items = {r["uid"]: r for r in rows(folder / "motions2.csv")}
    assert list(items) == ["2025-12-02-1", "2025-12-02-2", "2025-12-02-3"]
    one, two, three = items.values()
    assert (one["votingFor"], one["votingAgainst"], one["votingAbstain"], one["votingResult"]) == (
        "30",
        "3",
        "2",
        "Прийнято",
    )
    # item 2: «за основу» adopted, «в цілому» cancelled, the re-vote «в цілому» failed: the item failed
    assert (two["votingFor"], two["votingAgainst"], two["votingAbstain"], two["votingResult"]) == (
        "20",
        "15",
        "4",
        "Не прийнято",
    )
    assert (two["projectNumber"], two["text"], two["textUrl"]) == ("757/2", "757-2.pdf", "757-2.pdf")
    # item 3: the secret election decides it (the rating and the procedural vote do not)
    assert (three["votingFor"], three["votingResult"]) == ("28", "Прийнято")
    assert {r["authorityId"] for r in items.values()} == {"04053625"}
    assert {r["authorityCattutc"] for r in items.values()} == {"UA18040470010034570"}
    assert {(r["convocation"], r["legislativeSession"], r["date"]) for r in items.values()} == {
        ("8 скликання", "12 сесія", "2025-12-02")
    }


def test_votings_names_every_voter_of_named_deciding_votes(folder: Path, facts: Facts) -> None:
    votings = rows(folder / "votings.csv")
    by_item: dict[str, list[dict[str, str]]] = {}
    for r in votings:
        by_item.setdefault(r["motionUid"], []).append(r)
    assert sorted(by_item) == ["2025-12-02-1", "2025-12-02-2"]  # item 3 was decided by a secret vote
    assert all(len(v) == 43 for v in by_item.values())
    item2 = [r["result"] for r in by_item["2025-12-02-2"]]
    assert (item2.count("За"), item2.count("Проти"), item2.count("Утримався")) == (20, 15, 4)
    assert (item2.count("Не голосував"), item2.count("Відсутній")) == (1, 3)
    ids = {d.open_data_id for d in facts.doc.roster.deputies}
    assert {r["voterId"] for r in votings} == ids


def test_vote_events_tell_repeated_votes_apart(folder: Path) -> None:
    events = {r["uid"]: r for r in rows(folder / "voteEvents.csv")}
    assert len(events) == 7
    cancelled, revote = events["2025-12-02-v3"], events["2025-12-02-v4"]
    assert cancelled["result"] == "Не голосували" and "скасовано" in cancelled["projectTitle"]
    assert revote["result"] == "Не прийнято" and "повторне голосування" in revote["projectTitle"]
    assert cancelled["motionUid"] == revote["motionUid"] == "2025-12-02-2"
    assert events["2025-12-02-v1"]["projectNumber"] == "б/н"  # no draft number
    assert events["2025-12-02-v1"]["startDate"] == "2025-12-02T08:00:21.050000Z"
    rating = events["2025-12-02-v6"]
    assert (rating["votingFor"], rating["votingAgainst"], rating["result"]) == ("37", "0", "Прийнято")
    assert "«22 грудня»" in rating["projectTitle"]
    votes = rows(folder / "vote.csv")
    assert sorted({r["uid"] for r in votes}) == [
        "2025-12-02-v1",
        "2025-12-02-v2",
        "2025-12-02-v3",
        "2025-12-02-v4",
        "2025-12-02-v6",
    ]
    assert len(votes) == 5 * 43  # no names for the secret vote (v5) nor the open one (v7)


def test_items_never_voted_or_never_taken_up(facts: Facts) -> None:
    doc = facts.doc
    agenda = (*doc.snapshot.agenda, AgendaItem(number="4", title="Різне"), AgendaItem(number="5.1", title="Звіт"))
    # item 4 had a speech but no vote; item 5.1 never came up
    speeches = (*doc.snapshot.speeches, msgspec.structs.replace(doc.snapshot.speeches[0], item="4"))
    snapshot = msgspec.structs.replace(doc.snapshot, agenda=agenda, speeches=speeches)
    more = facts_of(dataclasses.replace(doc, snapshot=snapshot), facts.spans)
    results = {m.uid: (m.number, m.result) for m in more.motions}
    assert results["2025-12-02-4"] == (4, "Не голосували")
    assert results["2025-12-02-5.1"] == (5, "Не розглядали")  # the number column takes 5 of «5.1»


def test_a_deputy_without_an_open_data_id_gets_a_stable_one(facts: Facts) -> None:
    deputy = facts.doc.roster.deputies[5]
    bare = msgspec.structs.replace(deputy, open_data_id="")
    assert voter_id(facts.council, bare) == f"04053625-8-{deputy.id}"
    assert voter_id(facts.council, deputy) == deputy.open_data_id


def test_convocation_dates_given_or_the_sittings_own(facts: Facts) -> None:
    assert opendata.convocations_rows(facts)[0][2:4] == ("2025-12-02", "2025-12-02")
    assert opendata.convocations_rows(facts, ("2020-11-20", "2025-11-30"))[0][2:4] == ("2020-11-20", "2025-11-30")


# --- the validators catch what is wrong ----------------------------------------------------------

Mutation = Callable[[Path], None]


def _edit(name: str, old: str, new: str, count: int = 1) -> Mutation:
    def apply(folder: Path) -> None:
        path = folder / name
        text = path.read_bytes().decode("utf-8")  # as written: CRLF
        assert old in text, (name, old)
        path.write_bytes(text.replace(old, new, count).encode("utf-8"))

    return apply


def _bom(folder: Path) -> None:
    path = folder / "sessions.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


def _loosen_metadata(folder: Path) -> None:
    path = folder / csvw_meta.METADATA_NAME
    path.write_text(path.read_text(encoding="utf-8").replace('"format": "За|', '"format": "Так|За|'), encoding="utf-8")


MUTATIONS: dict[str, tuple[Mutation, str, bool]] = {
    # name: (mutation, what a problem must say, found by csvw too)
    "per-deputy value outside the set": (_edit("vote.csv", ",За\r\n", ",Так\r\n"), "vote.csv:2", True),
    "per-motion value outside the set": (_edit("motions2.csv", ",Прийнято,", ",Ухвалено,"), "motions2.csv:2", True),
    "vote event result outside the set": (
        _edit("voteEvents.csv", ",Не голосували,", ",Скасовано,"),
        "voteEvents.csv:4",
        True,
    ),
    "count not a whole number": (_edit("voteEvents.csv", ",30,3,2,", ",30.5,3,2,"), "votingFor", True),
    "count written as a decimal": (_edit("voteEvents.csv", ",30,3,2,", ",30.0,3,2,"), "votingFor", False),
    "required cell empty": (_edit("votings.csv", ",ztmr8-001,", ",,"), "voterId", True),
    "date in another form": (
        _edit("sessions.csv", ",2025-12-02,2025-12-02", ",02.12.2025,2025-12-02"),
        "dateFrom",
        True,
    ),
    "date-time without a zone": (_edit("voteEvents.csv", "08:00:21.050000Z", "08:00:21"), "startDate", False),
    "date given as a date-time": (
        _edit("motions.csv", ",2025-12-02,", ",2025-12-02T10:00,"),
        "motions.csv:2: date",
        False,
    ),
    "columns swapped": (_edit("vote.csv", "uid,voterUid,result", "voterUid,uid,result"), "header", False),
    "a URL with a space": (_edit("voteEvents.csv", ",757-2.pdf,", ",757 2.pdf,"), "textUrl", False),
    "a foreign key to nothing": (_edit("vote.csv", "2025-12-02-v1,", "2025-12-02-v9,"), "not found", True),
    "a duplicate primary key": (
        _edit("voteEvents.csv", "2025-12-02-v2,", "2025-12-02-v1,"),
        "duplicate primary key",
        True,
    ),
    "a short row": (_edit("sessions.csv", ",2025-12-02,2025-12-02", ",2025-12-02"), "cells", False),
    "a byte-order mark": (_bom, "byte-order mark", False),
    "loosened metadata": (_loosen_metadata, csvw_meta.METADATA_NAME, False),
}


@pytest.mark.parametrize("case", MUTATIONS)
def test_the_validators_catch(case: str, folder: Path, tmp_path: Path) -> None:
    mutate, says, by_csvw = MUTATIONS[case]
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    mutate(copy)
    problems = csvw_meta.check_folder(copy)
    assert any(says in p for p in problems), problems
    if by_csvw:
        assert any(p.startswith("csvw:") and says in p for p in problems), problems
    assert any(p.startswith("manifest:") for p in validate_folder(copy))  # and the checksums no longer hold


def test_csvw_reads_a_value_outside_the_set_as_an_error(folder: Path, tmp_path: Path) -> None:
    """The value set works inside csvw itself (the metadata's format), not only in our own check."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    _edit("votings.csv", ",Проти\r\n", ",Проти \r\n")(copy)  # a trailing space is another value
    found = csvw_meta.csvw_problems(copy / csvw_meta.METADATA_NAME)
    assert found and all("result" in p for p in found), found


# --- Popolo --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(folder: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((folder / "popolo.json").read_text(encoding="utf-8"))
    return loaded


def test_popolo_is_valid_and_joins_the_tables(document: dict[str, object], folder: Path) -> None:
    assert popolo.validate(document) == []
    events = document["vote_events"]
    assert isinstance(events, list) and len(events) == 7
    assert [e["id"] for e in events] == [r["uid"] for r in rows(folder / "voteEvents.csv")]
    revote = events[3]
    assert revote["result"] == "fail" and revote["classification"] == "roll_call/whole"
    assert {c["option"]: c["value"] for c in revote["counts"]} == {
        "yes": 20,
        "no": 15,
        "abstain": 4,
        "not voting": 1,
        "absent": 3,
    }
    assert "votes" not in events[4] and events[4]["classification"] == "secret/whole"  # counts only
    assert events[2]["result"] == "cancelled"
    rating = events[5]
    assert {v["option"] for v in rating["votes"]} == {"15 грудня", "22 грудня", "29 грудня", "not voting", "absent"}
    people = document["persons"]
    assert isinstance(people, list) and len(people) == 43
    orgs = document["organizations"]
    assert isinstance(orgs, list)
    assert {"identifier": "04053625", "scheme": "ЄДРПОУ"} in orgs[0]["identifiers"]
    meta = document["meta"]
    assert (
        isinstance(meta, dict)
        and meta["journal"]["head"] == json.loads((folder / "manifest.json").read_text())["journal"]["head"]
    )


def _broken(document: dict[str, object], path: list[str | int], value: object) -> dict[str, object]:
    copy = json.loads(json.dumps(document))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    result: dict[str, object] = copy
    return result


POPOLO_MISTAKES = {
    "a count as text": (["vote_events", 0, "counts", 0, "value"], "30", "is not of type 'integer'"),
    "a count without its option": (["vote_events", 0, "counts", 0], {"value": 30}, "'option' is a required property"),
    "a date-time that is none": (["vote_events", 0, "start_date"], "2025-12-02", "is not a 'date-time'"),
    "an option of the wrong type": (["vote_events", 0, "votes", 0, "option"], 1, "is not of type 'string', 'null'"),
    # through a $ref to organization.json, resolved to the vendored file
    "a founding date in another form": (
        ["vote_events", 0, "organization"],
        {"founding_date": "02.12.2025"},
        "does not match",
    ),
    "an identifier without its value": (
        ["persons", 0, "identifiers", 0],
        {"scheme": "x"},
        "'identifier' is a required property",
    ),
    "a vote event on no motion": (["vote_events", 0, "motion_id"], "nope", "is not among the motions"),
    "counts that are not the votes": (["vote_events", 0, "counts", 0, "value"], 31, "are not the votes"),
}


@pytest.mark.parametrize("case", POPOLO_MISTAKES)
def test_popolo_validation_catches(case: str, document: dict[str, object]) -> None:
    path, value, says = POPOLO_MISTAKES[case]
    problems = popolo.validate(_broken(document, path, value))
    assert any(says in p for p in problems), problems


# --- records and manifest ------------------------------------------------------------------------


def test_deputies_records(folder: Path) -> None:
    config = council()
    present, absent = config.deputies[:40], config.deputies[40]
    summary = {r["voterId"]: r for r in rows(folder / "deputies.csv")}
    assert len(summary) == 43
    head = summary[present[0].open_data_id]
    assert (head["role"], head["registered"], head["namedVotes"], head["votedFor"]) == ("міський голова", "1", "4", "4")
    assert head["secretBallots"] == "1"  # took part in the secret election: the 37 who pressed
    gone = summary[absent.open_data_id]
    assert (gone["registered"], gone["tookPart"], gone["absent"], gone["secretBallots"]) == ("0", "0", "4", "0")
    manual = summary[present[-1].open_data_id]  # registered by the secretary, pressed nothing
    assert (manual["registered"], manual["registeredManually"], manual["didNotVote"]) == ("1", "1", "4")
    lines = [r for r in rows(folder / "deputy-votes.csv") if r["voterId"] == present[0].open_data_id]
    assert [r["voteNumber"] for r in lines] == ["1", "2", "3", "4", "6"]
    assert lines[2]["voteResult"] == "Не голосували"  # the cancelled vote is listed, not counted
    assert lines[4]["proposal"] == "15 грудня"
    people = json.loads((folder / "deputies.json").read_text(encoding="utf-8"))["deputies"]
    by_id = {p["id"]: p for p in people}
    manual_round = by_id[present[-1].open_data_id]["registrations"][0]
    assert manual_round["manual_reason"] == "несправний пульт" and manual_round["registered_at"].endswith("Z")
    assert by_id[absent.open_data_id]["registrations"][0]["registered_at"] is None
    assert by_id[present[0].open_data_id]["secret_ballots"] == ["2025-12-02-v5"]
    for p in people:
        assert {k: str(v) for k, v in p["totals"].items()} == {
            k: v for k, v in summary[p["id"]].items() if k in p["totals"]
        }


def test_manifest_carries_the_journal_head_and_every_file(folder: Path, facts: Facts) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["sitting"] == facts.doc.uid
    assert manifest["journal"] == {"first_seq": 1, "last_seq": facts.doc.last_seq, "head": facts.doc.head_text}
    listed = {f["name"]: f["sha256"] for f in manifest["files"]}
    on_disk = {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest


def test_the_same_journal_gives_the_same_bytes(facts: Facts, folder: Path, tmp_path: Path) -> None:
    write_opendata(facts, tmp_path / "again")
    for path in folder.iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name


# --- the command ---------------------------------------------------------------------------------


def test_chamber_opendata_writes_and_validates(
    sitting: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, uid, _ = sitting
    out = tmp_path / "od"
    args = [
        "opendata",
        "--db",
        url,
        "--sitting",
        uid,
        "--out",
        str(out),
        "--validate",
        "--base-url",
        "https://rada.example/d/",
    ]
    assert main([*args, "--convocation-dates", "2020-11-20:2025-11-30"]) == 0
    said = capsys.readouterr().out
    assert "valid" in said and uid in said
    events = rows(out / "voteEvents.csv")
    assert events[1]["textUrl"] == "https://rada.example/d/757-2.pdf"
    assert rows(out / "convocations.csv")[0]["dateFrom"] == "2020-11-20"
    with pytest.raises(SystemExit):
        main([*args, "--convocation-dates", "2025-11-30:2020-11-20"])  # the first day after the last


def test_chamber_opendata_refuses_a_tampered_journal(
    sitting: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, uid, path = sitting
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal SET at_ms = at_ms + 1 WHERE seq = 7")
    out = tmp_path / "od"
    assert main(["opendata", "--db", f"sqlite:///{copy}", "--sitting", uid, "--out", str(out)]) == 1
    assert "verification" in capsys.readouterr().err
    assert not out.exists()


def test_a_hand_made_table_with_other_values_reads_as_csv(folder: Path) -> None:
    """What a consumer sees with the plain csv module: the header and the Ukrainian values intact."""
    text = (folder / "vote.csv").read_bytes().decode("utf-8")
    first = next(csv.DictReader(io.StringIO(text, newline="")))
    assert first == {"uid": "2025-12-02-v1", "voterUid": "ztmr8-043", "result": "За"}

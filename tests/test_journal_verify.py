"""`chamber journal verify` and `chamber replay` on damaged and foreign stores (issue 7).

They open the store read-only, name every malformed record instead of ending in a traceback, see a
sitting whose row was deleted and records moved below seq 1, and check the journal against a head
hash recorded outside the store (``--expect-head``).
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from chamber.bench import demo_roster
from chamber.chain import GENESIS_HASH, Head, Problem, parse_head, record_hash
from chamber.cli import main
from chamber.core import events as ev
from chamber.engine import Engine, EngineError
from chamber.journal import Journal, JournalRecord

S = "sitting-1"
T0 = 1_700_000_000_000


def sitting_records(journal: Journal, count: int) -> list[JournalRecord]:
    """A real sitting of ``count`` records (opened, then cards inserted): it decodes and replays."""
    inputs: list[ev.Input] = [ev.OpenSitting(roster=demo_roster(count))]
    inputs += [ev.CardInserted(seat=i, uid=f"{i:08X}") for i in range(1, count)]
    return journal.append(S, [(T0 + i, type(e).__name__, ev.encode_input(e)) for i, e in enumerate(inputs)])


def make_journal(path: Path, count: int = 6) -> tuple[str, list[JournalRecord]]:
    url = f"sqlite:///{path}"
    with Journal(url) as journal:
        records = sitting_records(journal, count)
    return url, records


def tamper(path: Path, *statements: str) -> None:
    """Change the file behind chamber's back (sqlite3 leaves foreign keys off, as a forger would)."""
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        for statement in statements:
            db.execute(statement)


def journal_mode(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


def kinds(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in problems]


# -- read-only ------------------------------------------------------------------------------------


def test_verify_and_replay_leave_the_file_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    with contextlib.closing(sqlite3.connect(path)) as db:  # as a copy taken for an audit may be
        db.execute("PRAGMA journal_mode=DELETE")
    before = path.read_bytes()
    assert main(["journal", "verify", "--db", url]) == 0
    assert main(["replay", "--db", url]) == 0
    assert "intact" in capsys.readouterr().out
    assert path.read_bytes() == before
    assert journal_mode(path) == "delete"


def test_verify_does_not_turn_another_file_into_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other-app.db"
    with contextlib.closing(sqlite3.connect(other)) as db, db:
        db.execute("CREATE TABLE invoices (id INTEGER)")
    empty = tmp_path / "empty.db"
    empty.touch()
    before = {path: path.read_bytes() for path in (other, empty)}
    for path in (other, empty):
        for command in (["journal", "verify"], ["replay"]):
            assert main([*command, "--db", f"sqlite:///{path}"]) == 2
            assert "not a chamber journal" in capsys.readouterr().err
    assert {path: path.read_bytes() for path in (other, empty)} == before
    assert journal_mode(other) == "delete"


def test_the_audit_tools_open_the_store_read_only(journal_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Journal(journal_url) as journal:
        sitting_records(journal, 4)
    with Journal(journal_url, create=False) as reader:
        assert reader.verify() == []
        with pytest.raises(DBAPIError), reader.engine.begin() as conn:
            conn.execute(text("DELETE FROM chain_head"))
    assert main(["journal", "verify", "--db", journal_url]) == 0
    assert f"sitting {S}: intact (4 records, head 4:" in capsys.readouterr().out


def test_a_read_only_transaction_reads_one_snapshot(journal_url: str) -> None:
    """So that a controller appending while verify reads cannot make a sitting's records and its chain head
    disagree (a false "removed" or "added outside the journal")."""
    count = text("SELECT count(*) FROM journal")
    with Journal(journal_url) as writer:
        sitting_records(writer, 3)
        with Journal(journal_url, create=False) as reader, reader.engine.connect() as conn:
            assert conn.execute(count).scalar() == 3
            writer.append(S, [(T0 + 10, "Tick", b"{}")])
            assert conn.execute(count).scalar() == 3
        with Journal(journal_url, create=False) as reader:
            assert len(reader.check(S).records) == 4


def test_a_sqlite_uri_is_opened_read_only_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.db"
    make_journal(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    before = path.read_bytes()
    assert main(["journal", "verify", "--db", f"sqlite:///file:{path}?uri=true&mode=rwc"]) == 0
    assert "intact" in capsys.readouterr().out
    assert path.read_bytes() == before and journal_mode(path) == "delete"


def test_the_engine_still_opens_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    make_journal(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=DELETE")
    with Journal(f"sqlite:///{path}") as journal:
        journal.append(S, [(T0 + 100, "Tick", b"{}")])
    assert journal_mode(path) == "wal"


# -- malformed records ----------------------------------------------------------------------------

MALFORMED = [
    (
        "UPDATE journal SET payload = CAST(payload AS TEXT) WHERE seq = 3",
        f"seq 3: malformed: Record 3 of sitting {S} is malformed: its payload is text, not bytes",
    ),
    (
        "UPDATE journal SET seq = 'three' WHERE seq = 3",
        f"malformed: The record stored at seq 'three' of sitting {S} is malformed: its seq 'three' (text) is "
        "not a whole number",
    ),
    ("UPDATE journal SET seq = 2.5 WHERE seq = 3", f"The record stored at seq 2.5 of sitting {S} is malformed"),
    (
        "UPDATE journal SET at_ms = 'noon' WHERE seq = 3",
        f"Record 3 of sitting {S} is malformed: its time (at_ms) 'noon' (text) is not a whole number",
    ),
    (
        "UPDATE journal SET hash = substr(hash, 1, 10) WHERE seq = 3",
        f"Record 3 of sitting {S} is malformed: its hash '",
    ),
    (
        "UPDATE journal SET prev_hash = 'abc' WHERE seq = 6",
        f"Record 6 of sitting {S} is malformed: its previous hash 'abc' (text) is not 64 lowercase hex digits",
    ),
    (
        "UPDATE journal SET type = x'00ff' WHERE seq = 2",
        f"Record 2 of sitting {S} is malformed: its type b'\\x00\\xff' (bytes) is not text",
    ),
    (
        "UPDATE chain_head SET seq = 'last'",
        f"The chain head of sitting {S} is malformed: its seq 'last' (text) is not a whole number",
    ),
    (
        "UPDATE chain_head SET hash = 'feed'",
        f"The chain head of sitting {S} is malformed: its hash 'feed' (text) is not 64 lowercase hex digits",
    ),
    (
        "UPDATE sittings SET ord = 'first'",
        f"malformed: Sitting {S} is malformed: its place in the order of creation (ord) 'first' (text) is not a "
        "whole number",
    ),
]


@pytest.mark.parametrize(("statement", "message"), MALFORMED)
def test_a_mistyped_column_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statement: str, message: str
) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    tamper(path, statement)
    assert main(["journal", "verify", "--db", url]) == 1
    out = capsys.readouterr().out
    assert message in out, out
    assert "intact" not in out
    for extra in ([], ["--force"]):
        assert main(["replay", "--db", url, "--sitting", S, *extra]) == 1
        err = capsys.readouterr().err
        assert "fails verification" in err and "malformed" in err and "Traceback" not in err
    with Journal(url, create=False) as journal:
        assert "malformed" in [p.kind for p in journal.verify()]


def test_a_malformed_record_is_not_also_reported_missing(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    tamper(path, "UPDATE journal SET payload = CAST(payload AS TEXT) WHERE seq = 6")  # the last one
    with Journal(url, create=False) as journal:
        assert kinds(journal.verify()) == [(6, "malformed")]


def test_the_engine_refuses_a_malformed_journal_with_a_message(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    tamper(path, "UPDATE journal SET at_ms = 'noon' WHERE seq = 3")
    with Journal(url) as journal, pytest.raises(EngineError, match=f"Record 3 of sitting {S} is malformed"):
        Engine(journal).recover()


# -- what verify did not see ----------------------------------------------------------------------


def test_a_sitting_whose_row_was_deleted_is_reported_as_the_engine_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    tamper(path, "DELETE FROM sittings")
    assert main(["journal", "verify", "--db", url]) == 1
    out = capsys.readouterr().out
    assert f"sitting {S}: 1 problem(s)" in out
    assert f"removed: Sitting {S} has records but no row in the list of sittings (table sittings)" in out
    assert main(["replay", "--db", url]) == 1
    assert "no row in the list of sittings" in capsys.readouterr().err
    with Journal(url) as journal, pytest.raises(EngineError):
        Engine(journal).recover()


def test_a_record_moved_below_seq_1_is_seen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    tamper(path, "UPDATE journal SET seq = 0 WHERE seq = 3")
    with Journal(url, create=False) as journal:
        problems = journal.verify(S)
    assert kinds(problems) == [(0, "reordered"), (3, "removed")]
    assert f"The record stored as 0 of sitting {S} is really record 3" in problems[0].message
    assert "sequence numbers start at 1" in problems[0].message


def test_the_last_record_moved_below_seq_1_with_the_head_rewritten_is_seen(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hidden from the replay (it reads from seq 1) and, before, from verify too."""
    path = tmp_path / "journal.db"
    url, records = make_journal(path)
    tamper(
        path,
        "UPDATE journal SET seq = -1 WHERE seq = 6",
        f"UPDATE chain_head SET seq = 5, hash = '{records[4].hash}'",
    )
    assert main(["journal", "verify", "--db", url]) == 1
    assert f"seq -1: reordered: The record stored as -1 of sitting {S} is really record 6" in capsys.readouterr().out


def test_an_extra_record_below_seq_1_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url, _ = make_journal(path)
    forged = record_hash(GENESIS_HASH, S, 0, T0, "Tick", b"{}")
    tamper(
        path,
        "INSERT INTO journal (sitting, seq, at_ms, type, payload, prev_hash, hash) "
        f"VALUES ('{S}', 0, {T0}, 'Tick', x'7b7d', '{GENESIS_HASH}', '{forged}')",
    )
    with Journal(url, create=False) as journal:
        problems = journal.verify()
    assert kinds(problems) == [(0, "broken_link")]
    assert "stored at seq 0, outside the chain (sequence numbers start at 1)" in problems[0].message


# -- a head recorded outside the store ------------------------------------------------------------


def printed_head(out: str) -> str:
    found = re.search(r"intact \(\d+ records, head (\d+:[0-9a-f]{64})\)", out)
    assert found, out
    return found.group(1)


def test_a_cut_tail_with_a_rewritten_head_is_caught_by_the_recorded_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "journal.db"
    url, records = make_journal(path)
    assert main(["journal", "verify", "--db", url]) == 0
    head = printed_head(capsys.readouterr().out)
    assert head == f"6:{records[-1].hash}"
    assert main(["journal", "verify", "--db", url, "--sitting", S, "--expect-head", head]) == 0
    assert f"sitting {S}: intact (6 records, head {head})" in capsys.readouterr().out

    tamper(
        path,
        "DELETE FROM journal WHERE seq = 6",
        f"UPDATE chain_head SET seq = 5, hash = '{records[4].hash}'",
    )
    assert main(["journal", "verify", "--db", url]) == 0  # no chain can see this alone
    capsys.readouterr()
    assert main(["journal", "verify", "--db", url, "--sitting", S, "--expect-head", head]) == 1
    out = capsys.readouterr().out
    assert f"seq 6: removed: Record 6 of sitting {S} is missing: the journal ends at record 5" in out
    assert f"the recorded head is record 6 ({records[-1].hash[:12]}" in out
    # the hash alone is enough
    assert main(["journal", "verify", "--db", url, "--sitting", S, "--expect-head", records[-1].hash]) == 1
    assert "the recorded head" in capsys.readouterr().out
    assert main(["replay", "--db", url, "--expect-head", head]) == 1
    assert "fails verification" in capsys.readouterr().err


def test_a_journal_that_goes_on_after_the_recorded_head(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url, records = make_journal(path)
    with Journal(url, create=False) as journal:
        check = journal.check(S, Head(4, records[3].hash))
    assert kinds(check.problems) == [(5, "broken_link")]
    assert f"Records 5 to 6 of sitting {S} follow the recorded head (record 4)" in check.problems[0].message


def test_a_rewritten_journal_does_not_end_at_the_recorded_head(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    url, records = make_journal(path)
    with Journal(url, create=False) as journal:
        by_seq = journal.check(S, Head(6, "ab" * 32)).problems
        by_hash = journal.check(S, Head(None, "ab" * 32)).problems
        fine = journal.check(S, Head(None, records[-1].hash))
    assert kinds(by_seq) == [(6, "changed")]
    assert f"Record 6 of sitting {S} is not the recorded head" in by_seq[0].message
    assert kinds(by_hash) == [(None, "changed")]
    assert "does not hold the recorded head" in by_hash[0].message
    assert fine.problems == [] and fine.head == Head(6, records[-1].hash)


@pytest.mark.parametrize("value", ["xyz", "6:abc", "0:" + "a" * 64, "six:" + "a" * 64, "a" * 63])
def test_a_bad_expected_head_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    url, _ = make_journal(tmp_path / "journal.db")
    with pytest.raises(SystemExit) as exc:
        main(["journal", "verify", "--db", url, "--sitting", S, "--expect-head", value])
    assert exc.value.code == 2
    assert "argument --expect-head: expected [SEQ:]HASH" in capsys.readouterr().err


def test_an_expected_head_needs_the_sitting_it_belongs_to(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url, records = make_journal(tmp_path / "journal.db")
    assert main(["journal", "verify", "--db", url, "--expect-head", records[-1].hash]) == 2
    assert "--expect-head needs --sitting" in capsys.readouterr().err


def test_parse_head() -> None:
    assert parse_head("6:" + "AB" * 32) == Head(6, "ab" * 32)
    assert parse_head("ab" * 32) == Head(None, "ab" * 32)
    assert str(Head(6, "ab" * 32)) == "6:" + "ab" * 32
    with pytest.raises(ValueError):
        parse_head("-1:" + "ab" * 32)


def test_a_problem_not_about_one_record_is_printed_without_a_seq() -> None:
    assert str(Problem(S, None, "malformed", "what")) == "malformed: what"
    assert str(Problem(S, 0, "reordered", "what")) == "seq 0: reordered: what"

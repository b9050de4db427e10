"""The hash-chained journal on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import inspect, text

from chamber.journal import GENESIS_HASH, PG_NETWORK_DEFAULTS, Head, Journal, JournalRecord, Problem, record_hash

S = "sitting-2025-11-23"


def payload(i: int) -> bytes:
    return json.dumps({"seat": i % 40, "choice": "za", "n": i}, separators=(",", ":")).encode()


def entries(start: int, count: int) -> list[tuple[int, str, bytes]]:
    return [(1_700_000_000_000 + i, "VoteCast", payload(i)) for i in range(start, start + count)]


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    j = Journal(journal_url)
    yield j
    j.close()


def filled(journal: Journal, count: int = 8) -> list[JournalRecord]:
    return journal.append(S, entries(1, count))


def sql(journal: Journal, statement: str, **params: Any) -> None:
    """Tamper with the store behind the journal's back."""
    with journal.engine.begin() as conn:
        conn.execute(text(statement), params)


def kinds(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.seq, p.kind) for p in problems]


# -- round trip, chain, group commit ---------------------------------------------------------------


def test_append_read_round_trip(journal: Journal) -> None:
    assert journal.sittings() == []
    assert journal.last_record(S) is None
    written = journal.append(S, [(1000, "SittingOpened", b'{"title":"x"}'), (1001, "CardInserted", b"{}")])
    assert [r.seq for r in written] == [1, 2]
    assert list(journal.records(S)) == written
    assert list(journal.records(S, after_seq=1)) == written[1:]
    assert journal.last_record(S) == written[-1]
    assert journal.sittings() == [S]
    assert journal.append(S, []) == []
    assert journal.verify() == []


def test_hash_chain_matches_independent_sha256(journal: Journal) -> None:
    written = filled(journal, 5)
    prev = "0" * 64
    for r in written:
        canonical = f"{S}\n{r.seq}\n{r.at_ms}\n{r.type}\n".encode() + r.payload
        expected = hashlib.sha256(bytes.fromhex(prev) + canonical).hexdigest()
        assert r.prev_hash == prev
        assert r.hash == expected
        prev = expected
    assert written[0].prev_hash == GENESIS_HASH


def test_chain_continues_across_instances(journal_url: str) -> None:
    first = Journal(journal_url)
    a = first.append(S, entries(1, 3))
    first.close()
    second = Journal(journal_url)  # migrations run again: nothing to do
    b = second.append(S, entries(4, 2))
    assert [r.seq for r in b] == [4, 5]
    assert b[0].prev_hash == a[-1].hash
    assert [r.seq for r in second.records(S)] == [1, 2, 3, 4, 5]
    assert second.verify() == []
    second.close()


def test_group_append_many_and_chunked_read(journal: Journal) -> None:
    written = journal.append(S, entries(1, 1234))  # more than one read chunk
    assert [r.seq for r in written] == list(range(1, 1235))
    read = list(journal.records(S))
    assert read == written
    assert list(journal.records(S, after_seq=1200)) == written[1200:]
    more = journal.append(S, entries(2000, 10))
    assert more[0].seq == 1235 and more[0].prev_hash == written[-1].hash
    assert journal.verify(S) == []


def test_sittings_are_separate_chains_in_creation_order(journal: Journal) -> None:
    journal.append("b-second-by-name", entries(1, 2))
    journal.append("a-first-by-name", entries(1, 3))
    journal.append("b-second-by-name", entries(3, 1))
    assert journal.sittings() == ["b-second-by-name", "a-first-by-name"]
    first = next(iter(journal.records("a-first-by-name")))
    assert first.seq == 1 and first.prev_hash == GENESIS_HASH
    assert journal.last_record("b-second-by-name").seq == 3  # type: ignore[union-attr]
    assert journal.verify() == []


def test_rejects_bad_input(journal: Journal) -> None:
    with pytest.raises(ValueError):
        journal.append("", entries(1, 1))
    with pytest.raises(ValueError):
        journal.append("bad\nuid", entries(1, 1))
    with pytest.raises(ValueError):
        journal.append(S, [(1, "Type\nWithNewline", b"{}")])
    with pytest.raises(ValueError):
        journal.append(S, [(1, "x" * 65, b"{}")])
    with pytest.raises(ValueError):
        journal.append(S, [(1, "T", "not bytes")])  # type: ignore[list-item]
    assert journal.sittings() == []


def test_failed_append_leaves_nothing_and_chain_goes_on(journal: Journal) -> None:
    filled(journal, 3)
    # Somebody else wrote seq 4 behind our back: our cached head is stale, the insert must fail as a whole.
    fake = record_hash(journal.last_record(S).hash, S, 4, 5, "X", b"{}")  # type: ignore[union-attr]
    sql(
        journal,
        "INSERT INTO journal (sitting, seq, at_ms, type, payload, prev_hash, hash) "
        "VALUES (:s, 4, 5, 'X', :p, :prev, :h)",
        s=S,
        p=b"{}",
        prev=journal.last_record(S).hash,  # type: ignore[union-attr]
        h=fake,
    )
    with pytest.raises(Exception):  # noqa: B017 - IntegrityError of either driver
        journal.append(S, entries(10, 2))
    assert [r.seq for r in journal.records(S)] == [1, 2, 3, 4]


def test_second_writer_is_refused_then_recovers(journal_url: str) -> None:
    one, two = Journal(journal_url), Journal(journal_url)
    try:
        one.append(S, entries(1, 2))
        two.append(S, entries(3, 1))  # `one` still has seq 2 as its cached head
        with pytest.raises(Exception):  # noqa: B017 - duplicate key of either driver
            one.append(S, entries(4, 1))
        again = one.append(S, entries(4, 1))  # the cache was dropped: it re-reads the head
        assert again[0].seq == 4
        assert [r.seq for r in one.records(S)] == [1, 2, 3, 4]
        assert one.verify() == []
    finally:
        one.close()
        two.close()


# -- durability and schema ------------------------------------------------------------------------


def test_sqlite_is_wal_with_full_sync(tmp_path: Any) -> None:
    path = tmp_path / "new" / "dir" / "j.db"
    j = Journal(f"sqlite:///{path}")
    try:
        assert path.exists()
        with j.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        j.append(S, entries(1, 2))
    finally:
        j.close()
    raw = sqlite3.connect(path)  # WAL mode is persistent in the file itself
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_postgresql_commit_is_synchronous(pg_url: str) -> None:
    j = Journal(pg_url)
    try:
        with j.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert conn.exec_driver_sql("SHOW fsync").scalar() == "on"
    finally:
        j.close()


def test_postgresql_connection_gives_up_on_a_lost_network_in_seconds(pg_url: str) -> None:
    """libpq's keepalives and TCP user timeout are set on the engine's connection (a partition then fails
    an append in seconds, not after minutes of TCP retries), and a value in the store URL wins."""
    j = Journal(pg_url)
    try:
        with j.engine.connect() as conn:
            used = conn.connection.driver_connection.info.get_parameters()
        for name, value in PG_NETWORK_DEFAULTS.items():
            assert used.get(name) == str(value), (name, used)
    finally:
        j.close()
    own = Journal(pg_url + "?keepalives_idle=30", create=False)
    try:
        with own.engine.connect() as conn:
            assert conn.connection.driver_connection.info.get_parameters()["keepalives_idle"] == "30"
    finally:
        own.close()


def test_migrations_make_the_schema(journal: Journal) -> None:
    insp = inspect(journal.engine)
    assert {"journal", "sittings", "chain_head", "alembic_version"} <= set(insp.get_table_names())
    cols = {c["name"] for c in insp.get_columns("journal")}
    assert cols == {"sitting", "seq", "at_ms", "type", "payload", "prev_hash", "hash"}
    assert insp.get_pk_constraint("journal")["constrained_columns"] == ["sitting", "seq"]
    with journal.engine.connect() as conn:  # at the newest migration (0002 adds the web's users)
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003_web_logouts"


# -- tamper evidence ------------------------------------------------------------------------------


def test_verify_detects_changed_payload(journal: Journal) -> None:
    filled(journal)
    sql(journal, "UPDATE journal SET payload = :p WHERE sitting = :s AND seq = 5", p=b'{"choice":"no"}', s=S)
    problems = journal.verify()
    assert kinds(problems) == [(5, "changed")]
    assert "Record 5" in problems[0].message and S in problems[0].message


def test_verify_detects_changed_time(journal: Journal) -> None:
    filled(journal)
    sql(journal, "UPDATE journal SET at_ms = at_ms + 1 WHERE sitting = :s AND seq = 2", s=S)
    assert kinds(journal.verify(S)) == [(2, "changed")]


def test_verify_detects_changed_type(journal: Journal) -> None:
    filled(journal)
    sql(journal, "UPDATE journal SET type = 'VoteRevoked' WHERE sitting = :s AND seq = 1", s=S)
    assert kinds(journal.verify(S)) == [(1, "changed")]


def test_verify_does_not_trust_stored_hash(journal: Journal) -> None:
    written = filled(journal)
    # Rewrite record 4 and give it a correct fresh hash: record 4 looks fine, record 5 no longer links.
    r = written[3]
    new_payload = b'{"choice":"utrymavsia"}'
    new_hash = record_hash(r.prev_hash, S, 4, r.at_ms, r.type, new_payload)
    sql(
        journal,
        "UPDATE journal SET payload = :p, hash = :h WHERE sitting = :s AND seq = 4",
        p=new_payload,
        h=new_hash,
        s=S,
    )
    problems = journal.verify(S)
    assert kinds(problems) == [(5, "broken_link")]
    assert "record 4" in problems[0].message


def test_verify_detects_deleted_middle_record(journal: Journal) -> None:
    filled(journal)
    sql(journal, "DELETE FROM journal WHERE sitting = :s AND seq = 4", s=S)
    problems = journal.verify(S)
    assert kinds(problems) == [(4, "removed")]
    assert "Record 4" in problems[0].message and "from record 3 to record 5" in problems[0].message


def test_verify_detects_deleted_first_records(journal: Journal) -> None:
    filled(journal)
    sql(journal, "DELETE FROM journal WHERE sitting = :s AND seq <= 2", s=S)
    problems = journal.verify(S)
    assert kinds(problems) == [(1, "removed")]
    assert "Records 1 to 2" in problems[0].message and "starts at record 3" in problems[0].message


def test_verify_detects_truncated_tail_via_chain_head(journal: Journal) -> None:
    filled(journal, 8)
    sql(journal, "DELETE FROM journal WHERE sitting = :s AND seq >= 7", s=S)
    problems = journal.verify(S)
    assert kinds(problems) == [(7, "removed")]
    assert "Records 7 to 8" in problems[0].message and "ends at record 6" in problems[0].message


def test_truncation_stays_visible_after_later_appends(journal_url: str) -> None:
    j = Journal(journal_url)
    filled(j, 5)
    sql(j, "DELETE FROM journal WHERE sitting = :s AND seq = 5", s=S)
    j.close()
    j = Journal(journal_url)  # a fresh process: no cached head
    added = j.append(S, entries(100, 1))
    assert added[0].seq == 6  # continues from the recorded head, not from the cut tail
    assert kinds(j.verify(S)) == [(5, "removed")]
    j.close()


def test_truncation_with_forged_head_needs_an_external_anchor(journal: Journal) -> None:
    """The documented limit: cutting the tail AND rewriting chain_head looks intact from inside.

    Only a head hash kept elsewhere (printed in the protocol) reveals it.
    """
    written = filled(journal, 6)
    printed_head = (written[-1].seq, written[-1].hash)
    sql(journal, "DELETE FROM journal WHERE sitting = :s AND seq = 6", s=S)
    sql(journal, "UPDATE chain_head SET seq = 5, hash = :h WHERE sitting = :s", h=written[4].hash, s=S)
    assert journal.verify(S) == []
    last = journal.last_record(S)
    assert last is not None and (last.seq, last.hash) != printed_head
    assert kinds(journal.check(S, Head(*printed_head)).problems) == [(6, "removed")]


@pytest.mark.parametrize("column", ["hash", "prev_hash"])
def test_verify_names_a_record_with_a_short_hash(journal: Journal, column: str) -> None:
    filled(journal, 4)
    sql(journal, f"UPDATE journal SET {column} = 'abc' WHERE sitting = :s AND seq = 2", s=S)
    problems = journal.verify(S)
    assert kinds(problems) == [(2, "malformed")]  # and nothing about its neighbours or a gap
    assert f"Record 2 of sitting {S} is malformed: its " in problems[0].message
    assert "'abc' (text) is not 64 lowercase hex digits" in problems[0].message


def test_verify_detects_missing_chain_head(journal: Journal) -> None:
    filled(journal, 3)
    sql(journal, "DELETE FROM chain_head WHERE sitting = :s", s=S)
    assert kinds(journal.verify(S)) == [(3, "removed")]


def _swap(journal: Journal, a: int, b: int) -> None:
    """Swap the contents of records a and b, keeping the seq numbers where they are."""
    with journal.engine.begin() as conn:
        rows = {
            row.seq: row
            for row in conn.execute(
                text("SELECT seq, at_ms, type, payload, prev_hash, hash FROM journal WHERE sitting = :s"),
                {"s": S},
            )
        }
        for here, there in ((a, b), (b, a)):
            src = rows[there]
            conn.execute(
                text(
                    "UPDATE journal SET at_ms = :at, type = :t, payload = :p, prev_hash = :ph, hash = :h "
                    "WHERE sitting = :s AND seq = :seq"
                ),
                {"at": src.at_ms, "t": src.type, "p": src.payload, "ph": src.prev_hash, "h": src.hash}
                | {"s": S, "seq": here},
            )


def test_verify_detects_two_adjacent_records_swapped(journal: Journal) -> None:
    filled(journal, 8)
    _swap(journal, 3, 4)
    problems = journal.verify(S)
    assert kinds(problems) == [(3, "reordered"), (4, "reordered")]
    assert "stored as 3" in problems[0].message and "really record 4" in problems[0].message
    assert "stored as 4" in problems[1].message and "really record 3" in problems[1].message


def test_verify_detects_two_distant_records_swapped(journal: Journal) -> None:
    filled(journal, 8)
    _swap(journal, 2, 7)
    problems = journal.verify(S)
    assert kinds(problems) == [(2, "reordered"), (7, "reordered")]
    assert "really record 7" in problems[0].message and "really record 2" in problems[1].message


def test_verify_detects_link_to_another_record(journal: Journal) -> None:
    written = filled(journal, 6)
    # Record 5 forged to follow record 2 (with a correct hash of its own): it skips records 3 and 4.
    r = written[4]
    forged = record_hash(written[1].hash, S, 5, r.at_ms, r.type, r.payload)
    sql(
        journal,
        "UPDATE journal SET prev_hash = :ph, hash = :h WHERE sitting = :s AND seq = 5",
        ph=written[1].hash,
        h=forged,
        s=S,
    )
    problems = journal.verify(S)
    assert (5, "reordered") in kinds(problems)
    assert "follows record 2 instead of record 4" in next(p for p in problems if p.seq == 5).message


def test_verify_all_sittings_and_one(journal: Journal) -> None:
    journal.append("other", entries(1, 3))
    filled(journal, 3)
    sql(journal, "UPDATE journal SET payload = :p WHERE sitting = 'other' AND seq = 2", p=b"{}")
    assert [(p.sitting, p.seq, p.kind) for p in journal.verify()] == [("other", 2, "changed")]
    assert journal.verify(S) == []

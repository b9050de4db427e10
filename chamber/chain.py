"""The hash chain of a sitting's journal, as pure functions over what the store holds: hashing and checks.

Each record carries the hash of the previous record of its sitting and its own hash::

    canonical = f"{sitting}\\n{seq}\\n{at_ms}\\n{type}\\n".encode() + payload
    hash      = sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()

:func:`check_sitting` takes the rows of one sitting exactly as the database driver returned them and
says in plain English what is wrong, in three steps:

* every row is read field by field (:func:`read_row`): a value of the wrong type (a payload stored as
  text, a seq that is not a whole number, a hash that is not 64 hex digits) makes the record
  *malformed*, named by its seq, instead of an exception somewhere further on;
* :func:`check_chain` recomputes every hash (it never trusts a stored one) and names records that were
  changed, removed (gaps), moved (swapped, or below seq 1 where a reader from seq 1 would not see them)
  or relinked.  To tell a moved record from a changed one it works out, for each record, the seq its
  content was really written at (:func:`true_seqs`);
* the end of the chain is compared with the chain head the store keeps (a truncated tail) and, when
  one is given, with a :class:`Head` recorded outside the store (:func:`check_expected_head`): only
  that catches a tail cut together with the chain head table.

No I/O here: ``chamber.journal`` reads the rows.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeGuard, cast

GENESIS_HASH = "0" * 64
"""prev_hash of the first record of every chain."""


def record_hash(prev_hash: str, sitting: str, seq: int, at_ms: int, type: str, payload: bytes) -> str:
    """sha256(bytes.fromhex(prev_hash) + canonical) as 64 lowercase hex digits."""
    canonical = f"{sitting}\n{seq}\n{at_ms}\n{type}\n".encode() + payload
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()


@dataclass(frozen=True, slots=True)
class JournalRecord:
    sitting: str
    seq: int
    at_ms: int
    type: str
    payload: bytes
    prev_hash: str
    hash: str


ProblemKind = Literal["changed", "removed", "reordered", "broken_link", "malformed"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of :meth:`Journal.verify`; ``seq`` is the record it is about (or the first missing one),
    None when it is about no single record (the chain head, the store, a record whose seq is unreadable)."""

    sitting: str
    seq: int | None
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        where = "" if self.seq is None else f"seq {self.seq}: "
        return f"{where}{self.kind}: {self.message}"


_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of a chain as printed to be kept outside the store (protocol, open data): ``SEQ:HASH``.

    A head given back for checking may leave the seq out (None): the hash alone names the record, since
    the sitting and the seq are part of what it hashes."""

    seq: int | None
    hash: str

    def __str__(self) -> str:
        return self.hash if self.seq is None else f"{self.seq}:{self.hash}"


def parse_head(text: str) -> Head:
    """``SEQ:HASH`` or ``HASH`` (64 hex digits, either case) as a :class:`Head`; ValueError says what is wrong."""
    seq_text, colon, hash_text = text.strip().rpartition(":")
    digest = hash_text.lower()
    if not _HEX64.fullmatch(digest):
        raise ValueError("the hash must be 64 hex digits")
    if not colon:
        return Head(None, digest)
    if not (seq_text.isascii() and seq_text.isdigit()) or int(seq_text) < 1:
        raise ValueError("the seq must be a whole number from 1")
    return Head(int(seq_text), digest)


def span(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first} to {last}"


def true_seqs(rows: Sequence[JournalRecord]) -> list[int | None]:
    """For each row, the seq its content was really written at (None if no position makes it hash right).

    A row whose content hashes correctly at its own seq is where it belongs.  Otherwise, if its prev_hash
    is the stored hash of another row whose own true seq is known to be k, the row may be record k + 1
    moved elsewhere; that is accepted only if recomputing the hash with seq k + 1 gives its stored hash.
    """

    def hashes_at(r: JournalRecord, seq: int) -> bool:
        return record_hash(r.prev_hash, r.sitting, seq, r.at_ms, r.type, r.payload) == r.hash

    index_by_hash: dict[str, int] = {}
    for i, r in enumerate(rows):
        index_by_hash.setdefault(r.hash, i)
    result: dict[int, int | None] = {}
    for start in range(len(rows)):
        path: list[int] = []
        cur = start
        while cur not in result:
            r = rows[cur]
            if hashes_at(r, r.seq):
                result[cur] = r.seq
                break
            if r.prev_hash == GENESIS_HASH:
                result[cur] = 1 if hashes_at(r, 1) else None
                break
            j = index_by_hash.get(r.prev_hash)
            if j is None or j == cur or j in path:
                result[cur] = None
                break
            path.append(cur)
            cur = j
        pred = cur
        for p in reversed(path):
            base = result[pred]
            result[p] = base + 1 if base is not None and hashes_at(rows[p], base + 1) else None
            pred = p
    return [result[i] for i in range(len(rows))]


def _outside_the_chain(sitting: str, r: JournalRecord, t: int | None) -> Problem:
    """A record stored below seq 1, where readers that start at record 1 (the replay, the engine) never look."""
    if t is not None and t >= 1:
        return Problem(
            sitting,
            r.seq,
            "reordered",
            f"The record stored as {r.seq} of sitting {sitting} is really record {t}: it was moved out of the "
            "chain (sequence numbers start at 1)",
        )
    return Problem(
        sitting,
        r.seq,
        "broken_link",
        f"A record of sitting {sitting} is stored at seq {r.seq}, outside the chain (sequence numbers start at 1)",
    )


def check_chain(sitting: str, rows: Sequence[JournalRecord]) -> list[Problem]:
    """The problems of the records of one sitting, given in seq order."""
    problems: list[Problem] = []
    true_seq = true_seqs(rows)
    # Rows that are intact and in place: their stored hash has been recomputed and can be linked to.
    seq_by_verified_hash = {r.hash: r.seq for r, t in zip(rows, true_seq, strict=True) if t == r.seq}
    expected = 1
    prev: JournalRecord | None = None
    prev_in_place = False
    for r, t in zip(rows, true_seq, strict=True):
        if r.seq < 1:
            problems.append(_outside_the_chain(sitting, r, t))
            continue
        if r.seq > expected:
            missing = span(expected, r.seq - 1)
            where = (
                f"the sequence jumps from record {expected - 1} to record {r.seq}"
                if expected > 1
                else f"the sequence starts at record {r.seq}"
            )
            problems.append(
                Problem(
                    sitting,
                    expected,
                    "removed",
                    f"{missing.capitalize()} of sitting {sitting} {'is' if expected == r.seq - 1 else 'are'} "
                    f"missing: {where}",
                )
            )
        adjacent = prev is not None and prev.seq == r.seq - 1
        if t is None:
            problems.append(
                Problem(
                    sitting,
                    r.seq,
                    "changed",
                    f"Record {r.seq} of sitting {sitting} was changed: its content (time, type, payload or "
                    "link) no longer matches its hash",
                )
            )
        elif t != r.seq:
            problems.append(
                Problem(
                    sitting,
                    r.seq,
                    "reordered",
                    f"The record stored as {r.seq} of sitting {sitting} is really record {t}: it was moved "
                    f"out of its place",
                )
            )
        elif r.seq == 1:
            if r.prev_hash != GENESIS_HASH:
                problems.append(
                    Problem(
                        sitting,
                        1,
                        "broken_link",
                        f"Record 1 of sitting {sitting} does not start the chain: its previous hash is not "
                        "the all-zero start value",
                    )
                )
        elif adjacent and prev_in_place and prev is not None and r.prev_hash != prev.hash:
            other = seq_by_verified_hash.get(r.prev_hash)
            if other is not None:
                problems.append(
                    Problem(
                        sitting,
                        r.seq,
                        "reordered",
                        f"Record {r.seq} of sitting {sitting} follows record {other} instead of record {r.seq - 1}",
                    )
                )
            else:
                problems.append(
                    Problem(
                        sitting,
                        r.seq,
                        "broken_link",
                        f"Record {r.seq} of sitting {sitting} does not link to record {r.seq - 1}: record "
                        f"{r.seq - 1} was replaced (rewritten with a new hash), or records were removed "
                        "there and the rest renumbered",
                    )
                )
        prev = r
        prev_in_place = t == r.seq
        expected = r.seq + 1
    return problems


# -- rows as stored -----------------------------------------------------------------------------------

StoredRow = Sequence[object]
"""A row as the database driver returned it, unconverted: (seq, at_ms, type, payload, prev_hash, hash) of a
record, (seq, hash) of a chain head.  SQLite stores whatever it is given, whatever the column's type."""


def shown(value: object) -> str:
    """A stored value as a message shows it: its repr, shortened, and the kind of value it is."""
    text = repr(value)
    return f"{text if len(text) <= 40 else text[:37] + '...'} ({_kind_of(value)})"


def _kind_of(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, int):
        return "integer"
    return "real" if isinstance(value, float) else type(value).__name__


def is_whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_hash(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _record_faults(at_ms: object, type_: object, payload: object, prev_hash: object, hash_: object) -> list[str]:
    faults = []
    if not is_whole(at_ms):
        faults.append(f"its time (at_ms) {shown(at_ms)} is not a whole number of milliseconds")
    if not isinstance(type_, str):
        faults.append(f"its type {shown(type_)} is not text")
    if not isinstance(payload, bytes | memoryview):
        faults.append(f"its payload is {_kind_of(payload)}, not bytes")
    if not _is_hash(prev_hash):
        faults.append(f"its previous hash {shown(prev_hash)} is not 64 lowercase hex digits")
    if not _is_hash(hash_):
        faults.append(f"its hash {shown(hash_)} is not 64 lowercase hex digits")
    return faults


def read_row(sitting: str, row: StoredRow) -> JournalRecord | Problem:
    """A stored record, or the problem that names it and every field of it that has the wrong type."""
    seq, at_ms, type_, payload, prev_hash, hash_ = row
    faults = _record_faults(at_ms, type_, payload, prev_hash, hash_)
    if not is_whole(seq):
        faults.insert(0, f"its seq {shown(seq)} is not a whole number")
        name = f"The record stored at seq {seq!r} of sitting {sitting}"  # (sitting, seq) is the key: it names the row
        return Problem(sitting, None, "malformed", f"{name} is malformed: {'; '.join(faults)}")
    if faults:
        message = f"Record {seq} of sitting {sitting} is malformed: {'; '.join(faults)}"
        return Problem(sitting, seq, "malformed", message)
    at, kind, data, prev, digest = cast(tuple[int, str, bytes, str, str], (at_ms, type_, payload, prev_hash, hash_))
    return JournalRecord(sitting, seq, at, kind, bytes(data), prev, digest)  # every field was checked above


def read_head(sitting: str, row: StoredRow | None) -> Head | Problem | None:
    """The stored chain head of a sitting (None if there is none), or the problem with it."""
    if row is None:
        return None
    seq, digest = row
    faults = [] if is_whole(seq) else [f"its seq {shown(seq)} is not a whole number"]
    if not _is_hash(digest):
        faults.append(f"its hash {shown(digest)} is not 64 lowercase hex digits")
    if faults or not is_whole(seq):
        message = f"The chain head of sitting {sitting} is malformed: {'; '.join(faults)}"
        return Problem(sitting, None, "malformed", message)
    return Head(seq, cast(str, digest))


def _stand_in(sitting: str, seq: int) -> JournalRecord:
    """What takes a malformed record's place in the chain: its seq, and a hash that nothing can match."""
    return JournalRecord(sitting, seq, 0, "", b"", "", "")


# -- the end of the chain -----------------------------------------------------------------------------


def check_stored_head(sitting: str, last: JournalRecord | None, head: Head | None) -> list[Problem]:
    """The last record (seq >= 1) against the chain head the store keeps: a truncated tail, records added."""
    last_seq = last.seq if last is not None else 0
    if head is None:
        if last is None:
            return []
        return [
            Problem(
                sitting,
                last_seq,
                "removed",
                f"the chain head of sitting {sitting} is missing (the journal ends at record {last_seq}); "
                f"records after {last_seq} may have been removed",
            )
        ]
    head_seq = cast(int, head.seq)  # a stored head always has its seq
    if head_seq > last_seq:
        where = f"the journal ends at record {last_seq}" if last is not None else "the journal has no records"
        many = "is" if last_seq + 1 == head_seq else "are"
        message = f"{where}, but the chain head says the last record is {head_seq}"
        return [
            Problem(
                sitting,
                last_seq + 1,
                "removed",
                f"{span(last_seq + 1, head_seq).capitalize()} of sitting {sitting} {many} missing: {message}",
            )
        ]
    if head_seq < last_seq:
        many = "was" if head_seq + 1 == last_seq else "were"
        return [
            Problem(
                sitting,
                head_seq + 1,
                "broken_link",
                f"{span(head_seq + 1, last_seq).capitalize()} of sitting {sitting} {many} added outside the "
                f"journal: the chain head says the last record is {head_seq}",
            )
        ]
    if last is not None and head.hash != last.hash:
        return [
            Problem(
                sitting,
                last_seq,
                "changed",
                f"Record {last_seq} of sitting {sitting} is not the record the chain head remembers: its hash "
                "differs from the recorded head hash",
            )
        ]
    return []


def check_expected_head(sitting: str, chain: Sequence[JournalRecord], expected: Head) -> list[Problem]:
    """The chain (seq >= 1, in order) against a head recorded outside the store, e.g. printed in the protocol.

    Whoever can write to the store can cut the tail of a sitting and rewrite its chain head to the new last
    record; the chain is then consistent again, and only a copy of the head kept elsewhere shows the cut.
    """
    last = chain[-1] if chain else None
    if last is not None and last.hash == expected.hash and expected.seq in (None, last.seq):
        return []
    last_seq = last.seq if last is not None else 0
    recorded = f"the recorded head is record {expected.seq} ({expected.hash[:12]}…)"
    found = next((r for r in chain if r.hash == expected.hash), None)
    if found is not None and expected.seq in (None, found.seq):
        many = "follows" if found.seq + 1 == last_seq else "follow"
        message = f"the recorded head (record {found.seq}): added after it was recorded"
        rest = span(found.seq + 1, last_seq).capitalize()
        return [Problem(sitting, found.seq + 1, "broken_link", f"{rest} of sitting {sitting} {many} {message}")]
    if expected.seq is None:
        ends = f"it ends at record {last_seq}" if last is not None else "it has no records"
        return [
            Problem(
                sitting,
                None,
                "changed",
                f"The journal of sitting {sitting} does not hold the recorded head ({expected.hash[:12]}…): {ends}; "
                "records were removed from its end, or it was rewritten",
            )
        ]
    if expected.seq > last_seq:
        where = f"the journal ends at record {last_seq}" if last is not None else "the journal has no records"
        many = "is" if last_seq + 1 == expected.seq else "are"
        missing = f"{span(last_seq + 1, expected.seq).capitalize()} of sitting {sitting} {many} missing"
        return [Problem(sitting, last_seq + 1, "removed", f"{missing}: {where}, but {recorded}")]
    return [
        Problem(
            sitting,
            expected.seq,
            "changed",
            f"Record {expected.seq} of sitting {sitting} is not the recorded head ({expected.hash[:12]}…): "
            "the journal was rewritten from that record or before",
        )
    ]


# -- one sitting, and the store -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SittingCheck:
    """What the checks found in one sitting: its problems, and its well-formed records in the chain (seq >= 1,
    in seq order) as they are stored, which a forced replay can still use."""

    sitting: str
    problems: list[Problem]
    records: list[JournalRecord] = field(default_factory=list)

    @property
    def head(self) -> Head | None:
        """The last record stored, as :class:`Head` (``SEQ:HASH``) to be recorded outside the store."""
        return Head(self.records[-1].seq, self.records[-1].hash) if self.records else None


def check_sitting(
    sitting: str,
    rows: Sequence[StoredRow],
    head_row: StoredRow | None,
    listed: StoredRow | None,
    expected: Head | None = None,
) -> SittingCheck:
    """Every check of one sitting: ``rows`` its records in seq order, ``head_row`` its chain head row,
    ``listed`` its row in the sittings table (ord), ``expected`` a head recorded outside the store."""
    read = [read_row(sitting, row) for row in rows]
    problems = [p for p in read if isinstance(p, Problem)]
    bad = {p.seq for p in problems if p.seq is not None}
    chain = _with_stand_ins(sitting, read)
    found = check_chain(sitting, chain)
    in_chain = [r for r in chain if r.seq >= 1]
    head = read_head(sitting, head_row)
    if isinstance(head, Problem):
        problems.append(head)
    else:
        found += check_stored_head(sitting, in_chain[-1] if in_chain else None, head)
    if expected is not None:
        found += check_expected_head(sitting, in_chain, expected)
    if listed is None and (rows or head_row is not None):
        problems.append(_unlisted(sitting, bool(rows)))
    elif listed is not None and not is_whole(listed[0]):
        # the engine orders sittings, and numbers a new one, by this place
        place = f"its place in the order of creation (ord) {shown(listed[0])} is not a whole number"
        problems.append(Problem(sitting, None, "malformed", f"Sitting {sitting} is malformed: {place}"))
    problems += [p for p in found if p.seq not in bad]
    problems.sort(key=lambda p: -math.inf if p.seq is None else p.seq)
    return SittingCheck(sitting, problems, [r for r in in_chain if r.seq not in bad])


def _with_stand_ins(sitting: str, read: Sequence[JournalRecord | Problem]) -> list[JournalRecord]:
    """The records in seq order, a malformed one replaced by its stand-in so that its seq is not also reported
    as a gap (what the chain checks say about that seq, the record's own problem says better)."""
    chain: list[JournalRecord] = []
    for r in read:
        if isinstance(r, JournalRecord):
            chain.append(r)
        elif r.seq is not None:
            chain.append(_stand_in(sitting, r.seq))
    return chain


def _unlisted(sitting: str, has_records: bool) -> Problem:
    what = "records" if has_records else "a chain head"
    return Problem(
        sitting,
        None,
        "removed",
        f"Sitting {sitting} has {what} but no row in the list of sittings (table sittings): the row was deleted; "
        "the controller refuses to start on this journal",
    )


def check_sittings_table(listed: Sequence[StoredRow], named: Sequence[object]) -> list[Problem]:
    """The store as a whole: ``listed`` the (uid, ord) rows of the sittings table, ``named`` the sitting uids
    the journal and chain head tables use.  Finds sitting uids that are not text (no sitting's check can
    name them) and sittings deleted whole."""
    problems = [
        Problem("", None, "malformed", f"A row of the sittings table names its sitting by {shown(uid)}, not text")
        for uid, _ in listed
        if not isinstance(uid, str)
    ]
    problems += [
        Problem("", None, "malformed", f"Records or a chain head name their sitting by {shown(uid)}, not text")
        for uid in named
        if not isinstance(uid, str)
    ]
    ords = sorted(o for _, o in listed if is_whole(o))
    # A sitting whose row alone was deleted is reported with its records; then a gap may be that row.
    unlisted = set(named) - {uid for uid, _ in listed}
    how = "missing from the list of sittings" if unlisted else "missing: deleted with its records"
    gaps = sorted(set(range(1, ords[-1] + 1)) - set(ords)) if ords else []
    return problems + [Problem("", None, "removed", f"sitting number {n} in order of creation is {how}") for n in gaps]

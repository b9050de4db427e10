"""The hash chain of a sitting's journal, as pure functions over records: hashing and verification.

Each record carries the hash of the previous record of its sitting and its own hash::

    canonical = f"{sitting}\\n{seq}\\n{at_ms}\\n{type}\\n".encode() + payload
    hash      = sha256(bytes.fromhex(prev_hash) + canonical).hexdigest()

:func:`check_chain` takes the stored records of one sitting in seq order, recomputes every hash (it
never trusts a stored one) and says in plain English which records were changed, removed (gaps), moved
(swapped) or relinked.  To tell a moved record from a changed one it works out, for each record, the
seq its content was really written at (:func:`true_seqs`).  No I/O here: ``chamber.journal`` reads the
rows and adds what only the store knows (the chain head table, for a truncated tail).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

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


ProblemKind = Literal["changed", "removed", "reordered", "broken_link"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of :meth:`Journal.verify`; ``seq`` is the record it is about (or the first missing one)."""

    sitting: str
    seq: int
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.kind}: {self.message}"


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


def check_chain(sitting: str, rows: Sequence[JournalRecord]) -> list[Problem]:
    problems: list[Problem] = []
    true_seq = true_seqs(rows)
    # Rows that are intact and in place: their stored hash has been recomputed and can be linked to.
    seq_by_verified_hash = {r.hash: r.seq for r, t in zip(rows, true_seq, strict=True) if t == r.seq}
    expected = 1
    prev: JournalRecord | None = None
    prev_in_place = False
    for r, t in zip(rows, true_seq, strict=True):
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

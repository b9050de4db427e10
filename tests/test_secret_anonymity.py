"""A secret ballot leaves no link between a seat or a deputy and a choice: not in the database, the
journal, the logs, nor anything the web sent to anyone.

The test is a differential one.  The same sitting is run twice on a real engine and web app, the same
seats pressing in the same order with the same console event numbers; only who chose what differs
(the choices are swapped between seats, so the counts are the same).  Everything an observer could
get afterwards is collected from each run:

* the whole database, every table, as ``sqlite3``'s ``iterdump`` (the journal's payloads decoded);
* the journal's records;
* every log line written during the sitting, at DEBUG, from every logger;
* every Socket.IO packet the hall, a secretary's and an observer's console got, and the HTTP
  answers of the state, the hall, the console and every public page and open-data file.

After the run-specific values are blanked (times, hashes, the sitting's uid, session tokens), the two
runs must be identical: whatever depended on who chose what would differ.  The same comparison of a
roll-call vote and of an open vote must find differences (they are not secret), so the comparison is
known to see a link where there is one.

What this does not cover (docs/reliability/security.md says more): who took part and when each seat
pressed is public by design (the hall shows who voted; the journal keeps each ``SecretBallotCast``
with its seat and time); a unanimous vote, or one voter, reveals the choice by its counts; the
controller's memory holds the choices while the vote is open; the RS-485 line carries the keys.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from test_web_app import Env, make_env, open_registered_sitting
from waiting import wait_for

from chamber.core import events as ev
from chamber.core.values import Key

SEATS = 7
ORDER = [3, 1, 6, 2, 7, 5, 4, 3]  # seat 3 presses twice (changes its mind)
FIRST = {3: Key.NO, 1: Key.YES, 6: Key.NO, 2: Key.YES, 7: Key.ABSTAIN, 5: Key.YES, 4: Key.NO}
SECOND = {3: Key.YES}  # 3 then YES: yes 4, no 2, abstain 1
# the same counts, other seats: 1 and 3 swap, 5 and 6 swap, and 3's change of mind goes the other way
FIRST_B = {3: Key.NO, 1: Key.NO, 6: Key.YES, 2: Key.YES, 7: Key.ABSTAIN, 5: Key.NO, 4: Key.YES}
SECOND_B = {3: Key.YES}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.levelname} {record.getMessage()}")


_BLANKS = [
    (re.compile(r"\$argon2id\$[^'\s]+"), "<argon2>"),  # a password hash (salted: another each run)
    (re.compile(r"\d{8}-[0-9a-f]{12}"), "<uid>"),  # the sitting's uid
    (re.compile(r"\b[0-9a-f]{64}\b"), "<hash>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<stamp>"),
    (re.compile(r"\b1[6-9]\d{11}\b"), "<ms>"),  # wall-clock milliseconds
    (re.compile(r"\b\d+\.\d+ ?(s|ms)\b"), "<dur>"),
    (re.compile(r"(chamber_session=)[^;]+"), r"\1<cookie>"),
    (re.compile(r"[A-Za-z0-9_-]{43}"), "<token>"),  # CSRF and session ids (token_urlsafe(32))
    (re.compile(r"\b\d{2}:\d{2}(:\d{2})?\b"), "<hh:mm>"),  # local times on the public pages
    (re.compile(r"\b\d{4}-\d{2}-\d{2}T[\d:.]+Z?\b"), "<iso>"),
    (re.compile(r"/tmp/\S+"), "<path>"),
    (re.compile(r"(\"(sid|id|elapsed_ms|server_ms)\": ?)\"?[\w-]+\"?"), r"\1<v>"),
]


def blank(text: str) -> str:
    for pattern, replacement in _BLANKS:
        text = pattern.sub(replacement, text)
    return text


def dump(env: Env) -> list[str]:
    """Every row of every table, blobs (the journal's payloads) decoded."""
    path = str(env.journal.engine.url).removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        lines = list(con.iterdump())
    finally:
        con.close()
    return [re.sub(r"X'([0-9a-fA-F]*)'", lambda m: repr(bytes.fromhex(m.group(1)).decode()), line) for line in lines]


def sealed(env: Env) -> bool:
    vote = env.engine.snapshot().vote
    return vote is not None and vote.counts is not None


def run(tmp: Path, kind: str, first: dict[int, Key], second: dict[int, Key]) -> dict[str, list[str]]:
    """One sitting with one vote of ``kind``: what the database, journal, logs and web traffic hold."""
    env = make_env(tmp, seats=SEATS)
    capture = Capture()  # from the store's opening on (alembic's own lines come once per process)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        client, secretary = env.console()
        _, observer = env.console("observer", "olha")
        hall = env.socket("/hall")
        open_registered_sitting(env, secretary, seats=SEATS)
        legal = {"legal_basis": "ст. 46 Закону"} if kind == "secret" else {}
        assert env.command(secretary, {"type": "OpenVote", "kind": kind, "title": "Про звільнення", **legal})["ok"]
        env.publisher.tick()
        pressed: dict[int, int] = {}
        for seat in ORDER:
            key = (second if seat in pressed else first)[seat]
            pressed[seat] = pressed.get(seat, 100) + 1
            env.seat_event(ev.KeyPressed(seat=seat, key=key, seq=pressed[seat], boot=1))
            env.publisher.tick()
        # a console that reports its first press again (its ACK was lost): refused as a duplicate,
        # and that refusal must not say which key it was either
        env.seat_event(ev.KeyPressed(seat=1, key=first[1], seq=101, boot=1), accepted=False)
        env.publisher.tick()
        assert env.command(secretary, {"type": "CloseVote"})["ok"]
        if kind == "secret":  # the seal follows the close (its snapshot may be the one the close waited for)
            wait_for(lambda: sealed(env), timeout=20, what="the secret tally's seal")
        env.publisher.tick()
        assert env.command(secretary, {"type": "AnnounceResult"})["ok"]
        env.publisher.tick()
        result = env.engine.snapshot()
        uid = env.web.publisher._current_sitting()
        traffic: list[str] = []
        for sock, namespace in ((hall, "/hall"), (secretary, "/console"), (observer, "/console")):
            traffic += [f"{namespace} {m['name']} {msgspec.json.encode(m['args']).decode()}" for m in
                        sock.get_received(namespace)]  # fmt: skip
        urls = ["/api/state", "/hall", "/overlay", "/console", "/public", f"/public/sitting/{uid}"]
        urls += [f"/public/vote/{uid}/1"] + [f"/public/deputy/{d}" for d in range(1, SEATS + 1)]
        urls += [f"/public/files/{uid}/opendata/{name}" for name in ("vote.csv", "votings.csv", "deputy-votes.csv")]
        for url in urls:
            resp = client.get(url)
            assert resp.status_code == 200, (url, resp.status_code)
            traffic.append(f"{url} {resp.status_code} {resp.get_data(as_text=True)}")
        records = [f"{r.seq} {r.type} {r.payload.decode()}" for r in env.journal.records(uid)]
        artefacts = {"db": dump(env), "journal": records, "logs": list(capture.lines), "traffic": traffic}
        assert result.phase.value == "result_shown" or result.phase.value == "idle", result.phase
    finally:
        env.close()
        root.removeHandler(capture)
        root.setLevel(old_level)
    return {name: [blank(line) for line in lines] for name, lines in artefacts.items()}


@pytest.fixture(scope="module")
def secret_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, list[str]], ...]]:
    yield (
        run(tmp_path_factory.mktemp("a"), "secret", FIRST, SECOND),
        run(tmp_path_factory.mktemp("b"), "secret", FIRST_B, SECOND_B),
    )


def differences(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    out = {}
    for name in a:
        pairs = [(x, y) for x, y in zip(a[name], b[name], strict=False) if x != y]
        if len(a[name]) != len(b[name]):
            pairs.append((f"{len(a[name])} lines", f"{len(b[name])} lines"))
        if pairs:
            out[name] = pairs
    return out


def test_a_secret_vote_leaves_nothing_that_depends_on_who_chose_what(secret_runs: Any) -> None:
    a, b = secret_runs
    assert all(a[name] for name in a)  # each was collected
    assert differences(a, b) == {}


def test_the_secret_vote_was_really_cast_and_counted(secret_runs: Any) -> None:
    """Not a vacuous comparison: the presses went in (one ballot record each), the counts are out."""
    a, _ = secret_runs
    ballots = [line for line in a["journal"] if " SecretBallotCast " in line]
    assert len(ballots) == len(ORDER) + 1  # and the one reported again (refused: a duplicate)
    assert all('"key"' not in line for line in ballots)
    [sealed] = [line for line in a["journal"] if " SecretTallySealed " in line]
    assert '"counts":[4,2,1]' in sealed
    assert not [line for line in a["journal"] if " KeyPressed " in line and re.search(r'"key":[234]\b', line)]
    assert any('"voted":true' in line for line in a["traffic"])  # who took part is public
    assert any("SecretBallotCast" in line for line in a["db"])


@pytest.mark.parametrize("kind", ["roll_call", "open"])
def test_the_comparison_sees_the_link_of_a_vote_that_is_not_secret(tmp_path: Path, kind: str) -> None:
    a = run(tmp_path / "a", kind, FIRST, SECOND)
    b = run(tmp_path / "b", kind, FIRST_B, SECOND_B)
    found = differences(a, b)
    assert "journal" in found and "db" in found  # the keys are journaled for a recount
    if kind == "roll_call":
        assert "traffic" in found  # the per-name list and the seat map's colours


def test_no_per_seat_choice_in_any_secret_artefact(secret_runs: Any) -> None:
    """A direct look, beside the differential one: no choice word next to a seat in one record."""
    a, _ = secret_runs
    for name, lines in a.items():
        for line in lines:
            assert not re.search(r'"choice": ?"(yes|no|abstain)"', line), (name, line[:300])
            assert not re.search(r'"key": ?[234]\b', line), (name, line[:300])


def test_logs_of_a_secret_vote_name_no_key(secret_runs: Any) -> None:
    a, _ = secret_runs
    assert a["logs"]  # the logs were captured
    assert not [line for line in a["logs"] if re.search(r"\b(YES|NO|ABSTAIN)\b|key=[234]\b", line)]

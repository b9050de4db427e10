"""Properties of the core: incremental tally equals recount, journal replay rebuilds the same state,
and the core is pure (no I/O imports, no clock reads)."""

from __future__ import annotations

import ast
from pathlib import Path

import msgspec
from factories import Driver, make_roster, snap, uid
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chamber.core
from chamber.core import events as ev
from chamber.core.effects import SealSecretTally
from chamber.core.roster import Roster, Rules
from chamber.core.sitting import Sitting
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, Seating, SpeechKind, VoteKind, VoteSubject

N = 8
CHAIR = 100
SEATS = [0, *range(1, N + 2), CHAIR]  # 0: unknown seat, N+1: a seat with no deputy
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

seats = st.sampled_from(SEATS)
keys = st.sampled_from(list(Key))
uids = st.sampled_from([*(uid(i) for i in range(1, N + 1)), "DEADBEEF"])

rules_st = st.builds(
    Rules,
    allow_change=st.booleans(),
    presence_required=st.booleans(),
    seating=st.sampled_from(list(Seating)),
    auto_mic_off=st.booleans(),
    max_open_mics=st.integers(min_value=1, max_value=3),
    warning_s=st.sampled_from([0, 5, 30]),
    speech_limits_s=st.just(
        {SpeechKind.REPORT: 60, SpeechKind.SPEECH: 20, SpeechKind.REPLY: 10, SpeechKind.POINT_OF_ORDER: 10}
    ),
)

seat_events = st.one_of(
    st.builds(ev.KeyPressed, seat=seats, key=keys),
    st.builds(ev.KeyPressed, seat=seats, key=st.sampled_from([Key.YES, Key.NO, Key.ABSTAIN, Key.P1, Key.P2])),
    st.builds(ev.CardInserted, seat=seats, uid=uids),
    st.builds(ev.CardRemoved, seat=seats),
    st.builds(ev.PresenceChanged, seat=seats, present=st.booleans()),
    st.builds(ev.SeatWentOffline, seat=seats),
    st.builds(ev.SeatCameOnline, seat=seats),
)

#: mostly deputies' own seats and choice keys, so that choices are made and changed often
choice_presses = st.builds(
    ev.KeyPressed,
    seat=st.sampled_from([*range(1, N + 1), *range(1, N + 1), 0, N + 1, CHAIR]),
    key=st.sampled_from([Key.YES, Key.NO, Key.ABSTAIN, Key.P1, Key.P2, Key.P3, Key.P4]),
)


def _roster(rules: Rules) -> Roster:
    return make_roster(N, extra_seats=1, sensors=[1, 2], chair_seat=CHAIR, rules=rules)


def _preamble(rules: Rules) -> list[ev.Input]:
    """Open, card everyone, hold the sensors, register everyone."""
    out: list[ev.Input] = [ev.OpenSitting(roster=_roster(rules), number=3)]
    out += [ev.CardInserted(seat=i, uid=uid(i)) for i in range(1, N + 1)]
    out += [ev.PresenceChanged(seat=1, present=True), ev.PresenceChanged(seat=2, present=True)]
    out.append(ev.OpenRegistration())
    out += [ev.KeyPressed(seat=i, key=Key.REGISTER) for i in range(1, N + 1)]
    out.append(ev.CloseRegistration())
    return out


# --- (a) the incremental tally always equals a recount --------------------------------------------


@SETTINGS
@given(
    rules=rules_st,
    kind=st.sampled_from([VoteKind.ROLL_CALL, VoteKind.OPEN, VoteKind.RATING, VoteKind.SECRET]),
    steps=st.lists(st.one_of(choice_presses, choice_presses, choice_presses, seat_events), min_size=10, max_size=80),
)
def test_tally_equals_recount_after_every_press(rules: Rules, kind: VoteKind, steps: list[ev.Input]) -> None:
    s = Sitting()
    t = 0
    for e in _preamble(rules):
        t += 1
        s.apply(e, t)
    proposals = ("А", "Б", "В") if kind is VoteKind.RATING else ()
    s.apply(ev.OpenVote(kind=kind, duration_s=0, proposals=proposals, legal_basis="ст. 50"), t + 1)
    vote = s.vote
    assert vote is not None and s.phase == "vote_open"
    for e in steps:
        t += 7
        s.apply(e, t)
        assert vote.tally == vote.recount()
        assert sum(vote.tally) == len(vote.choices)
        assert all(v >= 0 for v in vote.tally)
        assert set(vote.choices) <= set(range(1, N + 1))
    s.apply(ev.CloseVote(), t + 1)
    if kind is not VoteKind.SECRET:
        r = s.results[vote.number]
        assert r.counts == tuple(vote.recount())
        assert sum(r.counts) + r.did_not_vote + r.absent == N
        assert len(r.per_name) == (0 if kind is VoteKind.OPEN else N)  # an open vote publishes no names


# --- (b) replaying the journal rebuilds byte-identical snapshots ----------------------------------

THRESHOLDS = st.sampled_from(
    [
        None,
        Threshold(num=1, den=2, base=Base.CAST),
        Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False),
        Threshold(num=1, den=2, base=Base.REGISTERED),
    ]
)

open_vote = st.builds(
    ev.OpenVote,
    kind=st.sampled_from([VoteKind.ROLL_CALL, VoteKind.OPEN, VoteKind.SECRET, VoteKind.SECRET, VoteKind.RATING]),
    subject=st.sampled_from(list(VoteSubject)),
    duration_s=st.sampled_from([0, 5, 20]),
    threshold=THRESHOLDS,
    legal_basis=st.sampled_from(["", "ст. 50"]),
    item=st.sampled_from([None, "1", "2"]),
).map(lambda e: msgspec.structs.replace(e, proposals=("А", "Б", "В")) if e.kind is VoteKind.RATING else e)

commands = st.one_of(
    open_vote,
    open_vote.map(lambda e: msgspec.structs.replace(e, revote_of=1)),
    st.just(ev.CloseVote()),
    st.just(ev.AnnounceResult()),
    st.just(ev.ClearResult()),
    st.builds(ev.CancelVote, reason=st.sampled_from(["", "збій"])),
    st.builds(ev.AnnulSecretVote, reason=st.just("перезапуск")),
    st.just(ev.OpenRegistration()),
    st.just(ev.CloseRegistration()),
    st.builds(ev.RegisterDeputy, deputy=st.integers(0, N + 1), reason=st.sampled_from(["", "вручну"])),
    st.builds(ev.RequestFloor, seat=seats, kind=st.sampled_from(list(SpeechKind))),
    st.builds(ev.WithdrawRequest, seat=seats),
    st.builds(ev.GrantFloor, seat=seats, limit_s=st.sampled_from([None, 0, 15])),
    st.just(ev.NextSpeaker()),
    st.builds(ev.RevokeFloor, seat=seats),
    st.builds(ev.ExtendSpeech, seat=seats, extra_s=st.sampled_from([0, 10])),
    st.just(ev.ChairPriority()),
    st.just(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="a"), ev.AgendaItem(number="2", title="b")))),
    st.builds(ev.SetCurrentItem, number=st.sampled_from([None, "1", "2", "9"])),
    st.just(ev.Tick()),
    st.just(ev.CloseSitting()),
    st.builds(ev.SecretTallySealed, vote=st.integers(1, 3), counts=st.just((1, 0, 0))),
)

presses = st.builds(
    ev.KeyPressed,
    seat=st.sampled_from(list(range(1, N + 1))),
    key=st.sampled_from([Key.YES, Key.NO, Key.ABSTAIN, Key.P1, Key.P2, Key.SPEAK]),
)

dt = st.integers(min_value=0, max_value=12_000)
timed = st.tuples(dt, st.one_of(presses, presses, presses, seat_events, commands))
vote_block = st.tuples(
    st.tuples(st.just(10), open_vote),
    st.lists(st.tuples(st.integers(0, 1_000), st.one_of(presses, presses, presses, presses, seat_events)), max_size=15),
    st.tuples(st.integers(0, 25_000), st.sampled_from([ev.CloseVote(), ev.Tick()])),
    st.lists(
        st.tuples(
            dt,
            st.sampled_from(
                [
                    ev.CloseVote(),
                    ev.Tick(),
                    ev.CancelVote(reason="збій"),
                    ev.AnnulSecretVote(reason="перезапуск"),
                    ev.AnnounceResult(),
                    ev.ClearResult(),
                ]
            ),
        ),
        max_size=3,
    ),
).map(lambda b: [b[0], *b[1], b[2], *b[3]])
registration_block = st.tuples(
    st.just([(5, ev.OpenRegistration())]),
    st.lists(
        st.tuples(
            st.integers(0, 500),
            st.one_of(presses.map(lambda e: msgspec.structs.replace(e, key=Key.REGISTER)), seat_events),
        ),
        max_size=10,
    ),
    st.just([(5, ev.CloseRegistration())]),
).map(lambda b: [*b[0], *b[1], *b[2]])
inputs = st.lists(
    st.one_of(vote_block, vote_block, registration_block, st.lists(timed, max_size=8)),
    min_size=1,
    max_size=8,
).map(lambda blocks: [step for block in blocks for step in block])


@SETTINGS
@given(rules=rules_st, steps=inputs)
def test_replay_rebuilds_identical_snapshots(rules: Rules, steps: list[tuple[int, ev.Input]]) -> None:
    live = Driver(step=1)
    mirror = Sitting()
    replayed = 0

    def catch_up() -> None:
        nonlocal replayed
        for form, at in live.journal[replayed:]:
            mirror.apply(ev.decode_input(ev.encode_input(form)), at)
        replayed = len(live.journal)

    for e in _preamble(rules):
        live.apply(e)
    catch_up()
    assert snap(mirror) == snap(live.sitting)
    for dt, e in steps:
        live.apply(e, at=live.now + dt)
        catch_up()
        assert snap(mirror) == snap(live.sitting), e
    # the whole journal, replayed from nothing, reaches the same bytes
    fresh = Sitting()
    for form, at in live.journal:
        fresh.apply(ev.decode_input(ev.encode_input(form)), at)
    assert snap(fresh) == snap(live.sitting)
    # and the journal never holds a secret choice
    assert all(
        not (type(form) is ev.KeyPressed and form.key in (Key.YES, Key.NO, Key.ABSTAIN)) or not _secret_open_at(live, i)
        for i, (form, _) in enumerate(live.journal)
    )


def _secret_open_at(d: Driver, index: int) -> bool:
    """Was a secret vote open just before journal record ``index``? (replays the prefix)"""
    s = Sitting()
    for form, at in d.journal[:index]:
        s.apply(form, at)
    return s.phase == "vote_open" and s.vote is not None and s.vote.secret


def test_replay_of_a_sealed_secret_vote_matches() -> None:
    """A fixed scenario: a secret vote with changes of mind, closed by time, sealed, announced."""
    live = Driver(step=100)
    for e in _preamble(Rules()):
        live.ok(e)
    live.ok(ev.OpenVote(kind=VoteKind.SECRET, duration_s=5, legal_basis="ст. 50"))
    for seat, key in [(1, Key.YES), (2, Key.NO), (1, Key.NO), (3, Key.YES), (4, Key.ABSTAIN), (5, Key.YES)]:
        live.ok(ev.KeyPressed(seat=seat, key=key))
    effects = live.apply(ev.Tick(), at=live.now + 10_000)
    assert SealSecretTally(vote=1, counts=(2, 2, 1)) in effects
    live.ok(ev.AnnounceResult())
    fresh = Sitting()
    for form, at in live.journal:
        fresh.apply(form, at)
    assert snap(fresh) == snap(live.sitting)
    assert fresh.results[1].counts == (2, 2, 1)
    assert fresh.results[1].adopted is False
    assert b'"per_name":[]' in snap(fresh)


# --- the core is pure -------------------------------------------------------------------------------

CORE = Path(chamber.core.__file__).parent
ALLOWED = {"chamber", "msgspec", "enum", "dataclasses", "typing", "collections", "__future__", "fractions"}
FORBIDDEN = {
    "socket",
    "serial",
    "pymodbus",
    "flask",
    "flask_socketio",
    "sqlalchemy",
    "threading",
    "time",
    "os",
    "io",
    "pathlib",
    "subprocess",
    "asyncio",
    "datetime",
    "random",
}


def _core_modules() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 12
    return files


def _imports(path: Path) -> set[str]:
    """Fully qualified names of everything a module imports (``from a.b import c`` gives a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            assert node.module is not None
            names.add(node.module)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"__import__", "open", "exec", "eval"}, f"{path.name}: {node.func.id}()"
    return names


def test_core_imports_only_pure_modules() -> None:
    for path in _core_modules():
        for name in _imports(path):
            top = name.split(".")[0]
            assert top in ALLOWED, f"{path.name} imports {name}"
            assert top not in FORBIDDEN, f"{path.name} imports {name}"
            if top == "chamber":
                assert name == "chamber.core" or name.startswith("chamber.core."), f"{path.name} imports {name}"
            if top == "collections":
                assert name in {"collections", "collections.abc"}, f"{path.name} imports {name}"


def test_core_never_reads_a_clock() -> None:
    for path in _core_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                assert node.value.id not in {"time", "datetime", "os", "random"}, (
                    f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}"
                )
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"} or (
                    isinstance(node.value, ast.Name) and node.value.id not in {"datetime", "date", "time"}
                ), f"{path.name}:{node.lineno}: .{node.attr}"
                assert node.attr not in {"utcnow", "monotonic", "perf_counter", "time_ns"}, (
                    f"{path.name}:{node.lineno}: .{node.attr}"
                )


def test_purity_checker_catches_forbidden_code(tmp_path: Path) -> None:
    """The checks above must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom datetime import datetime\nx = time.monotonic()\ny = datetime.now()\n")
    assert _imports(bad) == {"time", "datetime"}
    tree = ast.parse(bad.read_text())
    attrs = {
        (n.value.id, n.attr) for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    assert attrs == {("time", "monotonic"), ("datetime", "now")}


def test_changing_the_events_rule_tables_after_the_fact_does_not_reach_the_sitting() -> None:
    """The journal holds the rules as they were when the sitting opened; the live state must too."""
    roster = make_roster(10)
    s = Sitting()
    s.apply(ev.OpenSitting(roster=roster), 1)
    roster.rules.thresholds[VoteSubject.WHOLE] = Threshold(num=1, den=10)
    roster.rules.speech_limits_s[SpeechKind.SPEECH] = 1
    assert s.rules.thresholds[VoteSubject.WHOLE] != Threshold(num=1, den=10)
    assert s.rules.speech_limits_s[SpeechKind.SPEECH] != 1

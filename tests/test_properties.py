"""Properties of the core: incremental tally equals recount, journal replay rebuilds the same state,
only the phase table moves the phase, and the core is pure (no I/O imports, no clock reads)."""

from __future__ import annotations

import ast
import gzip
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType

import msgspec
import pytest
from factories import Driver, make_roster, snap, uid
from fixtures import make_old_journals as old_journals
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import chamber.core
from chamber.core import events as ev
from chamber.core.effects import Rejected, SealSecretTally
from chamber.core.phases import DEADLINES, TRANSITIONS, Move, Phase
from chamber.core.roster import Roster, Rules
from chamber.core.sitting import Sitting
from chamber.core.state import Effects, Handler, SittingState
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, Seating, SpeechKind, VoteKind, VoteSubject

FIXTURES = Path(__file__).resolve().parent / "fixtures"
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


def test_journals_of_the_core_before_issue_10_replay_the_same() -> None:
    """Journals written by the core before its handlers and deadlines went through the table (commit
    f5b4e8e; tests/fixtures/make_old_journals.py made them and recorded what their replay gave then):
    replayed now, every record gives the same effects and snapshot, and the same sittings run live
    now write the same journals."""
    data = json.loads(gzip.decompress((FIXTURES / "journals_f5b4e8e.json.gz").read_bytes()))
    assert data["made_by"] == "f5b4e8e" and len(data["sittings"]) == old_journals.SITTINGS
    for seed, recorded in enumerate(data["sittings"]):
        journal = [(payload, at) for payload, at in recorded["journal"]]
        assert old_journals.replay_digest(journal) == recorded["digest"], f"sitting {seed} replays differently"
        assert old_journals.sitting(seed) == journal, f"sitting {seed} runs differently live"


# --- (c) only the phase table moves the phase --------------------------------------------------------


#: (the function that set the phase, the function that called it, the input it was applying, from, to)
Assignment = tuple[CodeType, CodeType | None, type | None, Phase | None, Phase]


class Watched(Sitting):
    """A sitting whose ``phase`` records every assignment: the function that made it, the input that
    machine was applying (for a move made by the machine), and the move."""

    def __init__(self) -> None:
        self.assignments: list[Assignment] = []
        super().__init__()

    @property  # type: ignore[override]
    def phase(self) -> Phase:
        return self._watched

    @phase.setter
    def phase(self, value: Phase) -> None:
        setter = sys._getframe(1)
        caller = setter.f_back
        cause = caller.f_locals.get("event") if caller is not None else None
        self.assignments.append(
            (
                setter.f_code,
                caller.f_code if caller is not None else None,
                type(cause) if cause is not None else None,
                self.__dict__.get("_watched"),
                value,
            )
        )
        self._watched = value


def check_moves(event: ev.Input, effects: Effects, phase: Phase, made: list[Assignment]) -> None:
    """``made``: the phase assignments while ``event`` was applied in ``phase``.  Each was the machine's
    (``Sitting._enter``, called by ``apply`` or ``_run_deadline`` with the input in hand as ``event``) for
    a cell of the table, moving where the cell says; the deadline inputs' moves came first; and the
    input's own cell moved the phase if and only if its handler accepted it and the cell names a phase."""
    for code, caller, cause, old, new in made:
        where = f"{code.co_name} ({code.co_filename}:{code.co_firstlineno})"
        assert code is Sitting._enter.__code__, f"the phase was set by {where}"
        assert caller in (Sitting.apply.__code__, Sitting._run_deadline.__code__), f"_enter called by {caller}"
        assert cause is not None and old is not None
        move = TRANSITIONS[old].get(cause)
        assert move is not None and move.to is new, f"{old} -> {new} on {cause.__name__}: not a move of the table"
    by_time = [m for m in made if m[2] in DEADLINES]
    own = [m for m in made if m[2] is type(event)]
    assert made == by_time + own, made
    middle = by_time[-1][4] if by_time else phase
    cell = TRANSITIONS[middle].get(type(event))
    accepted = not (effects and isinstance(effects[0], Rejected))
    expected = [(middle, cell.to)] if accepted and cell is not None and cell.to is not None else []
    assert [(old, new) for *_, old, new in own] == expected, (event, effects)


def run_checked(s: Watched, steps: list[tuple[int, ev.Input]]) -> None:
    t = 0
    for dt, first in steps:
        t += dt
        pending: list[ev.Input] = [first]
        while pending:
            event = pending.pop(0)
            made = len(s.assignments)
            phase = s.phase
            effects = s.apply(event, t)
            moves = s.assignments[made:]
            check_moves(event, effects, phase, moves)
            assert s.phase is (moves[-1][4] if moves else phase)
            pending += [
                ev.SecretTallySealed(vote=e.vote, counts=e.counts) for e in effects if type(e) is SealSecretTally
            ]


@SETTINGS
@given(rules=rules_st, steps=inputs)
def test_only_the_table_moves_the_phase(rules: Rules, steps: list[tuple[int, ev.Input]]) -> None:
    s = Watched()
    assert [a[0] for a in s.assignments] == [SittingState.__init__.__code__]  # the first phase, NO_SITTING
    s.assignments.clear()
    run_checked(s, [(1, e) for e in _preamble(rules)] + steps)


def _a_timed_vote() -> list[tuple[int, ev.Input]]:
    return [
        *((1, e) for e in _preamble(Rules())),
        (10, ev.OpenVote(duration_s=5)),
        (100, ev.KeyPressed(seat=1, key=Key.YES)),
        (10_000, ev.Tick()),  # the vote's time is up: VOTE_OPEN -> VOTE_CLOSED by VoteTimeUp
        (10, ev.AnnounceResult()),
        (10, ev.ClearResult()),
    ]


def _sets_the_phase(s: SittingState, e: ev.AnnounceResult, now: int) -> Effects:
    s.phase = Phase.IDLE  # what a handler must never do
    return ()


def _calls_the_machine(s: SittingState, e: ev.AnnounceResult, now: int) -> Effects:
    Sitting._enter(s, Phase.IDLE)  # type: ignore[arg-type]  # nor this
    return ()


def test_the_phase_check_passes_the_machine() -> None:
    s = Watched()
    run_checked(s, _a_timed_vote())  # a move by a deadline input included
    assert (ev.VoteTimeUp, Phase.VOTE_OPEN, Phase.VOTE_CLOSED) in [a[2:] for a in s.assignments]


@pytest.mark.parametrize(
    ("handler", "message"),
    [(_sets_the_phase, "the phase was set by _sets_the_phase"), (_calls_the_machine, "_enter called by")],
)
def test_the_phase_check_fails_a_handler_that_moves_the_phase(
    handler: Handler, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    row = TRANSITIONS[Phase.VOTE_CLOSED]
    monkeypatch.setitem(row, ev.AnnounceResult, Move(handler, row[ev.AnnounceResult].to))
    with pytest.raises(AssertionError, match=message):
        run_checked(Watched(), _a_timed_vote())


def test_the_phase_check_fails_a_table_move_the_machine_does_not_make(monkeypatch: pytest.MonkeyPatch) -> None:
    """A move of the table that the machine does not make fails the check too."""
    monkeypatch.setattr(Watched, "_enter", lambda self, phase: None)  # a machine that forgets to move
    with pytest.raises(AssertionError, match="OpenSitting"):
        run_checked(Watched(), _a_timed_vote())


# --- the core is pure -------------------------------------------------------------------------------
#
# Four checks, each a function of a module's syntax tree that returns what it finds wrong: the core's
# modules must give nothing to any of them, and each check is shown to fail on its own against a
# module that breaks only its rule (test_each_purity_check_fails_on_its_own).

CORE = Path(chamber.core.__file__).parent
#: The only modules the core may import (the top-level name; chamber itself only as chamber.core.*).
ALLOWED = {"chamber", "msgspec", "enum", "dataclasses", "typing", "collections", "__future__", "fractions"}
#: Modules that do I/O, keep time or run threads: the core may not bind or use their names at all,
#: however they would reach it (an import, or a name re-exported by another core module).
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
    "importlib",
    "sys",
}
#: Built-ins that read files or run code that the checks above cannot see.
DYNAMIC = {"__import__", "open", "exec", "eval", "compile", "input", "breakpoint", "globals"}
#: Attribute names that read a clock, whatever object they are reached through.
CLOCK_ATTRS = {"utcnow", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time_ns", "process_time"}
#: ... and these too when taken from a date or time module or class (``now`` alone is the core's own argument).
CLOCK_ATTRS_OF_TIME = {"now", "today", "time", "localtime", "gmtime"}


def _core_modules() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 12
    return files


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(tree: ast.Module) -> set[str]:
    """Fully qualified names of everything a module imports (``from a.b import c`` gives a.b); a relative
    import gives "." (the core imports absolutely, so that these checks see what is imported)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level or node.module is None else node.module)
    return names


def import_problems(tree: ast.Module) -> list[str]:
    """Imports of anything but the allowed modules."""
    problems = []
    for name in sorted(_imports(tree)):
        top = name.split(".")[0]
        if top not in ALLOWED:
            problems.append(f"imports {name}")
        elif top == "chamber" and not (name == "chamber.core" or name.startswith("chamber.core.")):
            problems.append(f"imports {name} (outside the core)")
        elif top == "collections" and name not in {"collections", "collections.abc"}:
            problems.append(f"imports {name}")
    return problems


def forbidden_problems(tree: ast.Module) -> list[str]:
    """A forbidden module's name bound by an import (``import time``, ``from chamber.core.x import time``)
    or used (``time.sleep``), by whatever way it came."""
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                for name in (alias.name.split(".")[0], alias.asname):
                    if name in FORBIDDEN:
                        problems.append(f"line {node.lineno}: binds {name}")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FORBIDDEN:
                problems.append(f"line {node.lineno}: from {node.module}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN:
            problems.append(f"line {node.lineno}: uses {node.id}")
    return problems


def dynamic_problems(tree: ast.Module) -> list[str]:
    """Calls of the built-ins that open files or run code."""
    return [
        f"line {node.lineno}: {node.func.id}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in DYNAMIC
    ]


def clock_problems(tree: ast.Module) -> list[str]:
    """Clock reads: ``x.monotonic()`` and the like through any object, ``datetime.now()`` and the like
    through a date or time name."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if node.attr in CLOCK_ATTRS:
            problems.append(f"line {node.lineno}: .{node.attr}")
        elif node.attr in CLOCK_ATTRS_OF_TIME:
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if not isinstance(root, ast.Name) or root.id in {"datetime", "date", "time", "dt"}:
                problems.append(f"line {node.lineno}: .{node.attr}")
    return problems


CHECKS = (import_problems, forbidden_problems, dynamic_problems, clock_problems)


def test_the_lists_do_not_overlap() -> None:
    assert not ALLOWED & FORBIDDEN


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_core_is_pure(check: Callable[[ast.Module], list[str]]) -> None:
    found = {path.name: check(_tree(path)) for path in _core_modules()}
    assert {name: problems for name, problems in found.items() if problems} == {}


#: For each check, a module that breaks its rule and no other's.
ONLY = {
    import_problems: "import json\nfrom chamber.engine import Engine\n",
    forbidden_problems: "from chamber.core.values import time\n",  # an allowed module, a forbidden name
    dynamic_problems: "table = eval('{}')\n",
    clock_problems: "from chamber.core import values\nt = values.clock.perf_counter()\n",  # a clock passed in
}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_each_purity_check_fails_on_its_own(check: Callable[[ast.Module], list[str]], tmp_path: Path) -> None:
    """The checks above must be able to fail, each without help from the others."""
    assert set(ONLY) == set(CHECKS)
    bad = tmp_path / "bad.py"
    bad.write_text(ONLY[check], encoding="utf-8")
    tree = _tree(bad)
    assert check(tree), f"{check.__name__} misses what it is for"
    others = {other.__name__: other(tree) for other in CHECKS if other is not check}
    assert others == {name: [] for name in others}, "the module breaks more than one rule"


def test_the_purity_checks_see_the_usual_clock_reads(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom datetime import datetime\nx = time.monotonic()\ny = datetime.now()\n")
    tree = _tree(bad)
    assert _imports(tree) == {"time", "datetime"}
    assert import_problems(tree) == ["imports datetime", "imports time"]
    assert clock_problems(tree) == ["line 3: .monotonic", "line 4: .now"]
    assert forbidden_problems(tree) == [
        "line 1: binds time",
        "line 2: binds datetime",
        "line 2: from datetime",
        "line 3: uses time",
        "line 4: uses datetime",
    ]


def _core_graph() -> dict[str, set[str]]:
    """Core module -> the core modules it imports (``TYPE_CHECKING`` imports too: a circle is a circle)."""
    graph: dict[str, set[str]] = {}
    for path in _core_modules():
        deps = set()
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module == "chamber.core":
                deps.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chamber.core."):
                deps.add(node.module.removeprefix("chamber.core."))
        graph[path.stem] = deps - {path.stem}
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of imports in ``graph``, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for dep in sorted(graph.get(module, ())):
            found = visit(dep, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    return next((c for m in sorted(graph) if (c := visit(m, [])) is not None), None)


HANDLER_MODULES = {"keys", "seat_handlers", "sitting_handlers", "vote_handlers", "floor_handlers"}


def test_the_core_imports_in_layers() -> None:
    """No import circle; the state imports no handler, the table or the machine; handlers import neither
    the table nor the machine (they cannot move the phase through it)."""
    graph = _core_graph()
    assert HANDLER_MODULES | {"state", "phases", "sitting"} <= set(graph)
    assert _circle(graph) is None, _circle(graph)
    assert not graph["state"] & (HANDLER_MODULES | {"phases", "sitting"})
    for handlers in HANDLER_MODULES:
        assert not graph[handlers] & {"phases", "sitting"}, handlers
    assert _circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the check can fail


def test_changing_the_events_rule_tables_after_the_fact_does_not_reach_the_sitting() -> None:
    """The journal holds the rules as they were when the sitting opened; the live state must too."""
    roster = make_roster(10)
    s = Sitting()
    s.apply(ev.OpenSitting(roster=roster), 1)
    roster.rules.thresholds[VoteSubject.WHOLE] = Threshold(num=1, den=10)
    roster.rules.speech_limits_s[SpeechKind.SPEECH] = 1
    assert s.rules.thresholds[VoteSubject.WHOLE] != Threshold(num=1, den=10)
    assert s.rules.speech_limits_s[SpeechKind.SPEECH] != 1

"""``chamber bench recovery``: SIGKILL the real controller mid-sitting, again and again, and compare.

How it works
------------
* One simulator process (``python -m hardware_sim --wire-time``: ``seats`` consoles as Modbus RTU
  slaves on ``lines`` ptys, RS-485 wire timing) lives through the whole run, every card in.
* The controller is the real ``chamber run --config FILE`` in a process of its own (its config points
  the lines at the simulator's ptys, the store at an SQLite file, the web server at a free port, the
  session key at a file); chamber.recovery_procs starts it and crashes it with SIGKILL.
* The sittings follow one script (chamber.recovery_plan, drawn from ``--seed``): a registration, two
  roll-call votes (every deputy's choice, some changing their mind, some not voting, some absent), three
  speeches in turn, the protocol PDF asked for on the public pages, then the sitting is closed.
  chamber.recovery_driver plays it: the deputies press through the simulator's press API, the
  secretary commands through the web console and reads the hall state, every step made so whatever
  was or was not carried out before a crash.
* Sitting 1 runs without a crash: the baseline.  Each later sitting runs the same script with up to
  ``per_sitting`` (5) kills, one of each point in turn — ``registration``, ``vote`` (into a vote's
  press window), ``close`` (while CloseVote is in flight), ``web`` (visitors loading pages and a hall
  socket during the speeches), ``export`` (while the web app renders the protocol PDF) — each at a
  random moment of its window (``--seed``), until ``crashes`` kills are made.
* Afterwards the store is read with the journal alone, each sitting replayed by the core:

  - ``diffs``: differences between a crashed sitting and the baseline, counted one per registration
    round's deputy list, per vote field (title, counts, did not vote, absent, registered, required,
    adopted, cancelled), per deputy in a vote's per-name list, and per speech (seat, deputy, kind, how
    it ended) or a missing one; timestamps are not compared; ``script_diffs``: the baseline against
    what the script itself says must come out (:func:`chamber.recovery_plan.expected`);
  - ``lost``: presses a console latched (the simulator said so) whose console event — (seat, boot,
    number) — the sitting's journal does not hold, or holds only as refused as a repeat;
  - ``duplicated``: a console event taken twice by the sitting (a second journaling of it must be
    refused as ``duplicate_event``), and events journaled beyond what the consoles latched;
  - ``restart_p50_s``/``restart_p99_s``/``restart_max_s``: from the SIGKILL until every line's
    simulator has answered a request from the new controller — its journal replayed and the sitting
    resumed first (chamber.recovery_procs); ``web_p99_s``: until ``/api/state`` answers again;
    ``not_resumed``: crashes after which the web state did not show the sitting open;
  - ``presses``, ``dropped_by_consoles`` (FIFO full: 0 expected), ``refused_presses`` by reason,
    ``command_refusals`` (a console command refused: what a secretary sees after a crash when the
    state had not yet shown it), ``pages`` the visitors loaded, ``exports`` served after their crash;
  - ``seats_offline_baseline``/``seats_offline_crashed``: consoles the controller declared offline
    (``SeatWentOffline``) — none expected; one offline at a vote's close turns a deputy who did not
    vote into an absent one, a diff that comes from the machine's load, not from the crash;
  - ``seconds``: the whole run, wall clock.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chamber.bench_bus import bench_config_text
from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.recovery_driver import SittingDriver, SittingReport
from chamber.recovery_plan import Plan, expected, make_plan
from chamber.recovery_procs import Controller, Simulator, Web, free_port

PASSWORD = "bench password 1"
GOALS = {"lost": 0, "duplicated": 0, "diffs": 0, "restart_p99_s": 2.0, "seconds_for_10": 55.0}


def controller_config(base: str, ports: dict[str, str], tmp: Path, web_port: int) -> str:
    """The bench's config with the lines on the simulator's ptys (no parity: a pty has none), the store,
    the web server and its session key in ``tmp``."""
    text = base.replace('parity = "E"', 'parity = "N"')
    for i, path in enumerate(ports.values(), 1):
        text = text.replace(f'port = "/dev/null-bench-{i}"', f'port = "{path}"')
    extra = (
        f'[web]\nport = {web_port}\nsecret_key_file = "{tmp / "session.key"}"\n\n'
        f'[store]\nurl = "sqlite:///{tmp / "journal.db"}"\n\n'
    )
    return text.replace("[rules]", extra + "[rules]", 1)


#: The crash points of one sitting, in the order a run's kills are dealt: each point once, then the
#: press windows a second time (counted from the first crash's restart).
SLOTS = (
    "registration",
    "vote:1",
    "close:1",
    "web",
    "export",
    "vote:2",
    "close:2",
    "registration",
    "vote:1",
    "vote:2",
)


def kill_plan(crashes: int, per_sitting: int, window_s: float, rng: random.Random) -> list[dict[str, list[float]]]:
    """The kills of each crashed sitting: its slots in turn, each at a random moment of its window."""
    out: list[dict[str, list[float]]] = []
    left = crashes
    while left > 0:
        kills: dict[str, list[float]] = {}
        for name in SLOTS[: min(per_sitting, left)]:
            point, again = name.split(":")[0], name in kills
            if again:
                delay = rng.uniform(0.0, 0.3)  # while the new controller takes what was latched meanwhile
            elif point in ("registration", "vote"):
                delay = rng.uniform(0.0, window_s + 0.3)
            elif point == "close":
                delay = rng.uniform(0.0, 0.03)  # CloseVote in flight or being journaled
            elif point == "web":
                delay = rng.uniform(0.1, 1.2)
            else:
                delay = rng.uniform(0.05, 1.5)  # the PDF worker starting or rendering
            kills.setdefault(name, []).append(round(delay, 4))
        out.append(kills)
        left -= min(per_sitting, left)
    return out


def bench_recovery(
    crashes: int = 10,
    seats: int = 450,
    lines: int = 8,
    baud: int = 115200,
    seed: int = 1,
    per_sitting: int = len(SLOTS),
    keep: Path | None = None,
) -> dict[str, Any]:
    from chamber.journal import Journal
    from display.auth import UserStore

    started = time.monotonic()
    rng = random.Random(seed)
    plan = make_plan(seed, seats)
    schedule: list[dict[str, list[float]]] = [{}, *kill_plan(crashes, per_sitting, plan.window_s, rng)]
    with tempfile.TemporaryDirectory(prefix="chamber-recovery-") as tmp_name:
        tmp = keep or Path(tmp_name)
        tmp.mkdir(parents=True, exist_ok=True)
        # the config's default line timeout (50 ms), not bench bus's 10 ms: a console starved of CPU by the
        # restarts on a shared 2-core machine must not be declared offline (an absent deputy in the lists)
        base = bench_config_text(seats, lines, baud, timeout_ms=50)
        (tmp / "sim.toml").write_text(base, encoding="utf-8")
        sim = Simulator(tmp / "sim.toml", tmp / "simulator.log")
        controller: Controller | None = None
        web: Web | None = None
        reports: list[SittingReport] = []
        try:
            web_port = free_port()
            cfg = tmp / "chamber.toml"
            cfg.write_text(controller_config(base, sim.lines, tmp, web_port), encoding="utf-8")
            store = f"sqlite:///{tmp / 'journal.db'}"
            journal = Journal(store)
            UserStore(journal.engine).add("bench", "secretary", PASSWORD)
            journal.close()
            for seat in range(1, seats + 1):  # an absent deputy's card stays out
                if seat not in plan.absent:
                    sim.api.card(seat, f"{seat:08X}")
            controller = Controller(cfg, tmp / "controller.log", sim.api)
            first_start_s = controller.start()
            web = Web(f"http://127.0.0.1:{web_port}", "bench", PASSWORD)
            _until_up(web)
            web.log_in()
            setup_s = time.monotonic() - started
            sitting_s: list[float] = []
            for number, kills in enumerate(schedule, 1):
                driver = SittingDriver(plan, number, sim.api, web, controller, kills, baseline_is_short=True)
                t0 = time.monotonic()
                reports.append(driver.run())
                sitting_s.append(round(time.monotonic() - t0, 1))
            exit_code = controller.stop()
        finally:
            if web is not None:
                web.close()
            if controller is not None:
                controller.stop()
            sim.stop()
        t0 = time.monotonic()
        journal = Journal(store, create=False)
        try:
            result = compare(journal, plan, reports)
        finally:
            journal.close()
        compare_s = time.monotonic() - t0
    crash_list = [c for r in reports for c in r.crashes]
    restarts = sorted(c.restart_s for c in crash_list)
    webs = sorted(c.web_s for c in crash_list)
    return {
        "crashes": len(crash_list),
        "crash_points": dict(Counter(c.point for c in crash_list)),
        "sittings": len(reports),
        "seats": seats,
        "lines": lines,
        "baud": baud,
        "seed": seed,
        **result,
        "restart_p50_s": _round(_percentile(restarts, 0.5)),
        "restart_p99_s": _round(_percentile(restarts, 0.99)),
        "restart_max_s": _round(restarts[-1] if restarts else float("nan")),
        "web_p99_s": _round(_percentile(webs, 0.99)),
        "first_start_s": _round(first_start_s),
        "not_resumed": sum(1 for c in crash_list if not c.resumed),
        "dropped_by_consoles": sum(r.dropped for r in reports),
        "command_refusals": dict(sum((r.refusals for r in reports), Counter())),
        "pages": dict(sum((r.pages for r in reports), Counter())),
        "exports": sum(r.exports for r in reports),
        "controller_exit": exit_code,
        "seconds": round(time.monotonic() - started, 1),
        # where the wall time went: start-up (simulator, cards, first controller), each sitting (the
        # first is the baseline), the replays and the comparison
        "setup_s": round(setup_s, 1),
        "sitting_s": sitting_s,
        "compare_s": round(compare_s, 1),
        "unanswered_commands_s": round(sum(r.unanswered for r in reports), 1),
        "each": [
            {
                "sitting": c.sitting,
                "at": c.at,
                "delay_s": c.delay_s,
                "restart_s": _round(c.restart_s),
                "web_s": _round(c.web_s),
            }
            for c in crash_list
        ],
    }


def compare(journal: Any, plan: Plan, reports: list[SittingReport]) -> dict[str, Any]:
    """Replay every sitting's journal; the figures of the module docstring."""
    lost = duplicated = presses = 0
    refused: Counter[str] = Counter()
    offline: Counter[bool] = Counter()  # SeatWentOffline journaled: in the baseline (False), after (True)
    summaries = []
    for report in reports:
        snap, counts = replay(journal, report, refused, offline)
        lost += counts["lost"]
        duplicated += counts["duplicated"]
        presses += sum(report.presses.values())
        summaries.append(summary(snap))
    baseline = summaries[0]
    diffs = [f"sitting {i}: {d}" for i, s in enumerate(summaries[1:], 2) for d in differences(baseline, s)]
    script = differences(expected(plan), script_part(baseline))
    return {
        "lost": lost,
        "duplicated": duplicated,
        "diffs": len(diffs),
        "script_diffs": len(script),
        "diff_examples": [d[:200] for d in (diffs + [f"baseline vs script: {d}" for d in script])[:20]],
        "presses": presses,
        "refused_presses": dict(refused),
        "seats_offline_baseline": offline[False],
        "seats_offline_crashed": offline[True],
    }


def replay(
    journal: Any, report: SittingReport, refused: Counter[str], offline: Counter[bool]
) -> tuple[Snapshot, Counter[str]]:
    """The sitting's final state from its journal, and its lost and duplicated presses."""
    sitting = Sitting()
    taken: Counter[tuple[int, int | None, int | None]] = Counter()
    seen: dict[int, set[tuple[int | None, int | None]]] = {}
    for rec in journal.records(report.uid):
        event = ev.decode_input(rec.payload)
        effects = sitting.apply(event, rec.at_ms)
        if isinstance(event, ev.SeatWentOffline):
            offline[report.number > 1] += 1
        if not isinstance(event, ev.KeyPressed):
            continue
        key = (event.seat, event.boot, event.seq)
        first = effects[0] if effects else None
        if isinstance(first, Rejected):
            refused[first.reason] += 1
            if first.reason == "duplicate_event":
                continue  # a repeat of an event taken before is harmless; of one never taken, lost
        else:
            taken[key] += 1
        seen.setdefault(event.seat, set()).add((event.boot, event.seq))
    counts: Counter[str] = Counter()
    for seat in set(report.presses) | set(seen):
        made, held = report.presses.get(seat, 0), len(seen.get(seat, ()))
        counts["lost"] += max(0, made - held)
        counts["duplicated"] += max(0, held - made)
    counts["duplicated"] += sum(n - 1 for n in taken.values() if n > 1)
    return sitting.snapshot(), counts


def summary(snap: Snapshot) -> dict[str, Any]:
    """What must not depend on crashes: registrations, closed votes with per-name results, speeches."""
    votes = {}
    for r in snap.results:
        votes[str(r.number)] = {
            "title": r.title,
            "counts": list(r.counts),
            "did_not_vote": r.did_not_vote,
            "absent": r.absent,
            "registered": r.registered,
            "required": r.required,
            "adopted": r.adopted,
            "cancelled": r.cancelled,
            "per_name": {str(c.deputy): c.outcome.value for c in r.per_name},
        }
    return {
        "registrations": [list(r.registered) for r in snap.rounds],
        "votes": votes,
        "speeches": [[s.seat, s.deputy, s.kind.value, s.ended_by] for s in snap.speeches],
    }


def script_part(s: dict[str, Any]) -> dict[str, Any]:
    """A summary in the form of :func:`chamber.recovery_plan.expected`."""
    return {
        "registered": s["registrations"][0] if s["registrations"] else [],
        "votes": {
            n: {"title": v["title"], "counts": v["counts"], "per_name": v["per_name"]} for n, v in s["votes"].items()
        },
        "speeches": [sp[0] for sp in s["speeches"]],
    }


def differences(want: Any, got: Any, where: str = "") -> list[str]:
    """Every difference, one per leaf; lists of numbers (deputies, counts) compare as a whole."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got), key=str):
            if key not in got or key not in want:
                out.append(f"{where}/{key}: {'missing' if key not in got else 'extra'}")
            else:
                out += differences(want[key], got[key], f"{where}/{key}")
        return out
    if isinstance(want, list) and isinstance(got, list) and want and isinstance(want[0], list):
        out = [f"{where}[{i}]: {a} != {b}" for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b]
        if len(want) != len(got):
            out.append(f"{where}: {len(want)} entries != {len(got)}")
        return out
    return [] if want == got else [f"{where}: {want} != {got}"]


def _percentile(values: list[float], q: float) -> float:
    """The q-quantile by the nearest rank (the ceil(q x n)-th) of sorted ``values``."""
    if not values:
        return float("nan")
    return values[max(1, min(len(values), math.ceil(q * len(values)))) - 1]


def _round(value: float) -> float | None:
    return None if value != value else round(value, 3)  # NaN: nothing measured


def _until_up(web: Web, timeout: float = 30.0) -> None:
    from chamber.recovery_procs import Unanswered

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if web.get("/healthz")[0] == 200:
                return
        except Unanswered:
            pass
        time.sleep(0.05)
    raise TimeoutError("the controller's web server did not answer")


def run_from_cli(args: argparse.Namespace) -> int:
    """``chamber bench recovery``: check the options, run, print; exit 1 when a goal of correctness failed."""
    crashes = args.crashes
    problems = [
        "--crashes must be 0 … 10000" if not 0 <= crashes <= 10000 else "",
        "--seats must be at least --lines" if args.seats < args.lines else "",
        "--lines must be 1 or more" if args.lines < 1 else "",
    ]
    if any(problems):
        print("chamber bench recovery: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    result = bench_recovery(crashes=crashes, seats=args.seats, lines=args.lines, baud=args.baud, seed=args.seed)
    print(json.dumps(result, ensure_ascii=False) if args.json else "\n".join(f"{k:22} {v}" for k, v in result.items()))
    bad = result["lost"] or result["duplicated"] or result["diffs"] or result["script_diffs"] or result["not_resumed"]
    return 1 if bad else 0

"""``chamber bench``: the benchmarks behind docs/BENCHMARKS.md, one subcommand with a ``what`` argument.

* ``core``: the pure core, the journal and the engine end to end (chamber/bench.py); the journal's
  databases go to ``--dir`` (var/ by default: a tmpfs would make fsync free).
* ``bus``: the controller against simulated RS-485 lines (chamber/bench_bus.py); exit 1 on a lost
  press, 3 when the host fell behind and the timing is not valid.
* ``latency``, ``fanout``, ``export`` and ``recovery`` hand the parsed arguments to their own module's
  ``run_from_cli``, which checks its options and returns the exit code.

Bad options exit 2 naming each problem.  The benchmark modules are imported only when ``chamber bench``
runs, so that building the parser stays light.  All benchmarks share one parser's options; each help
text names the benchmarks that read it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_bench(args: argparse.Namespace) -> int:
    from chamber.bench import bench_core, bench_engine, bench_journal

    if args.what == "export":  # the signed protocol and the open data of a big sitting
        from protocol_export.bench_export import run_from_cli as run_export

        return run_export(args)
    if args.what == "recovery":  # SIGKILL the controller mid-sitting and compare (chamber/bench_recovery.py)
        from chamber.bench_recovery import run_from_cli as run_recovery

        return run_recovery(args)
    if args.what in ("latency", "fanout"):  # the web's figures (chamber/bench_web.py)
        from chamber.bench_web import run_from_cli

        return run_from_cli(args)
    if args.what == "bus":
        from chamber.bench_bus import bench_bus
        from chamber.config import STANDARD_BAUD_RATES

        problems = [
            "--lines must be 1 or more" if args.lines < 1 else "",
            "--seats must be at least --lines" if args.seats < args.lines else "",
            f"--baud must be one of {', '.join(map(str, STANDARD_BAUD_RATES))}"
            if args.baud not in STANDARD_BAUD_RATES
            else "",
            "--fault-rate must be 0 … 1" if not 0.0 <= args.fault_rate <= 1.0 else "",
            "--seconds must be more than 0" if args.seconds <= 0 else "",
            "--sim-procs must be 1 or more" if args.sim_procs < 1 else "",
        ]
        if any(problems):
            print("chamber bench bus: " + "; ".join(p for p in problems if p), file=sys.stderr)
            return 2

        bus = bench_bus(
            seats=args.seats,
            lines=args.lines,
            baud=args.baud,
            seconds=args.seconds,
            fault_rate=args.fault_rate,
            sim_procs=args.sim_procs,
        )
        print(json.dumps(bus) if args.json else "\n".join(f"{k:28} {v}" for k, v in bus.items()))
        if bus["lost_presses"]:
            return 1
        if not bus["valid"]:
            print(
                "chamber bench bus: consoles were declared offline without injected faults: the host fell behind"
                " and the timing is not valid; run again on a quieter machine",
                file=sys.stderr,
            )
            return 3
        return 0

    problems = [
        "--seats must be 1 or more" if args.seats < 1 else "",
        "--presses must be 1 or more" if args.presses < 1 else "",
        "--rounds must be 1 or more" if args.rounds < 1 else "",
        f"--dir {args.dir}: no such directory" if args.dir is not None and not Path(args.dir).is_dir() else "",
    ]
    if any(problems):
        print("chamber bench core: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    result = bench_core(seats=args.seats, presses=args.presses, rounds=args.rounds)
    if args.dir is None:
        args.dir = "var"
        Path(args.dir).mkdir(exist_ok=True)
    result["journal_dir"] = str(args.dir)
    result.update(bench_journal(directory=args.dir))
    if not args.no_engine:
        result.update(bench_engine(seats=args.seats, directory=args.dir))
    result["goal_events_per_s"] = 200_000
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")
    return 0 if result["recount_matches"] else 1


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``bench`` subcommand."""
    p = sub.add_parser("bench", help="benchmarks printing JSON")
    p.add_argument(
        "what",
        choices=["core", "bus", "latency", "fanout", "export", "recovery"],
        help="core: engine and journal; bus: controller vs simulated lines; latency: a press to the hall screen; "
        "fanout: one controller's patches to many hall screens through Redis and web processes; "
        "export: the signed protocol and the open data of a sitting of --votes roll-call votes on --seats seats; "
        "recovery: the controller killed with SIGKILL --crashes times mid-sitting, compared with a run without",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument("--seats", type=int, default=450)
    p.add_argument("--presses", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--lines", type=int, default=8, help="bus, latency: RS-485 lines")
    p.add_argument("--baud", type=int, default=115200, help="bus, latency: baud rate of every line")
    p.add_argument("--seconds", type=float, default=10.0, help="bus: length of the measured window")
    p.add_argument("--fault-rate", type=float, default=0.0, help="bus: CRC-error and dropped-reply rate per reply")
    p.add_argument(
        "--sim-procs",
        type=int,
        default=2,
        help="bus, latency: simulator processes, the lines dealt among them (default 2)",
    )
    p.add_argument("--no-engine", action="store_true", help="skip the end-to-end engine figure")
    p.add_argument("--crashes", type=int, default=10, help="recovery: SIGKILLs of the controller (default 10)")
    p.add_argument("--seed", type=int, default=1, help="recovery: the script's and the crash points' seed")
    p.add_argument("--clients", type=int, default=1000, help="fanout: hall pages (Socket.IO clients)")
    p.add_argument("--webs", type=int, default=2, help="fanout: web processes (chamber web)")
    p.add_argument("--client-procs", type=int, default=4, help="fanout: processes the clients are dealt among")
    p.add_argument("--gevent", action="store_true", help="fanout: web processes on gevent (chamber web --gevent)")
    p.add_argument(
        "--votes", type=int, default=None, help="latency, fanout: votes measured (default 3, 2); export: votes (100)"
    )
    p.add_argument(
        "--spread", type=float, default=None, help="latency, fanout: seconds within which every deputy presses"
    )
    p.add_argument(
        "--dir",
        default=None,
        help="directory for the journal benchmarks' databases (default: var/, where the default store lives; "
        "a tmpfs would make fsync free and the figure meaningless); export: for its journal and the signed "
        "PDF it leaves (default var/bench)",
    )
    p.set_defaults(func=cmd_bench)

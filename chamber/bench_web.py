"""``chamber bench latency`` and ``chamber bench fanout``: the web's figures, measured on the real path.

Both start real processes and talk to them over loopback; nothing is simulated that a chamber runs for
real, except the deputies and their consoles (hardware_sim, with RS-485 wire timing).  Every time is
``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process on the machine), so a time taken in
one process is compared with one taken in another.

How it works
------------
This module is their command line: :func:`run_from_cli` checks the options, runs one and prints its
figures.  The rest is in modules of their own, each saying how it works:

* chamber.bench_latency: ``chamber bench latency``, from a deputy's press to the hall page that shows
  it (simulated consoles, the controller and its web server, a hall page and a secretary's console);
* chamber.bench_fanout: ``chamber bench fanout``, patches from the controller through Redis and
  ``chamber web`` processes to many hall pages;
* chamber.bench_web_procs: the benchmarks' side of their child processes (``Worker``, JSON lines
  on stdin and stdout; ``chamber web``, its health, CPU seconds) and the figures' small helpers;
* chamber.bench_web_workers: what runs inside those processes
  (``python -m chamber.bench_web_workers sim|hall|clients``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys

from chamber.bench_fanout import bench_fanout
from chamber.bench_latency import bench_latency


def run_from_cli(args: argparse.Namespace) -> int:
    """``chamber bench latency|fanout``: check the options, run, print; exit 1 when a press was lost or
    an update not delivered, 2 for a bad option."""
    from chamber.config import STANDARD_BAUD_RATES

    name = f"chamber bench {args.what}"
    spread = args.spread if args.spread is not None else (1.0 if args.what == "latency" else 1.5)
    problems = [
        "--seats must be at least --lines" if args.seats < max(args.lines, 1) else "",
        "--lines must be 1 or more" if args.lines < 1 else "",
        f"--baud must be one of {', '.join(map(str, STANDARD_BAUD_RATES))}"
        if args.baud not in STANDARD_BAUD_RATES
        else "",
        "--votes must be 1 or more" if args.votes is not None and args.votes < 1 else "",
        "--spread must be 0 … 60 s" if not 0 <= spread <= 60 else "",
        "--clients must be 1 or more" if args.clients < 1 else "",
        "--webs must be 1 or more" if args.webs < 1 else "",
        "--client-procs must be 1 or more" if args.client_procs < 1 else "",
        "--gevent needs the gevent package" if args.gevent and importlib.util.find_spec("gevent") is None else "",
        "--sim-procs must be 1 or more" if args.sim_procs < 1 else "",
    ]
    if any(problems):
        print(f"{name}: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    if args.what == "latency":
        result = bench_latency(
            args.seats,
            args.lines,
            args.baud,
            spread_s=spread,
            rounds=args.votes or 3,
            sim_procs=args.sim_procs,
        )
        failed = result["lost"] > 0 or result["counted"] != result["presses"]
    else:
        result = bench_fanout(
            args.clients,
            seats=args.seats,
            webs=args.webs,
            procs=min(args.client_procs, args.clients),
            votes=args.votes or 2,
            spread_s=spread,
            green=args.gevent,
        )
        failed = result["delivered"] < 1.0
    print(json.dumps(result, ensure_ascii=False) if args.json else "\n".join(f"{k:28} {v}" for k, v in result.items()))
    return 1 if failed else 0

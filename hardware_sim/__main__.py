"""``python -m hardware_sim``: run the simulated consoles of a config until SIGTERM or SIGINT.

How it works
------------
:func:`main` loads the config, starts a :class:`~hardware_sim.simulator.Simulator` and the press API
(:mod:`hardware_sim.http_api`), prints ONE JSON line to stdout::

    {"lines": {"A": "/dev/pts/3", "B": "/dev/pts/5"}, "http": "http://127.0.0.1:40123"}

flushes it (a parent process reads it to learn where to connect), then sleeps until SIGTERM or SIGINT
and stops everything cleanly.  ``chamber sim`` calls :func:`main` with its own argv.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from chamber.config import ConfigError, load_config
from hardware_sim import press_cli
from hardware_sim.http_api import PressApi
from hardware_sim.simulator import Simulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hardware_sim", description="Simulated seat consoles.")
    parser.add_argument("--config", default="config.toml", help="config file (default: config.toml)")
    parser.add_argument("--wire-time", action="store_true", help="emulate wire time (bytes x 11 / baud + t3.5)")
    parser.add_argument("--turnaround-ms", type=float, default=0.3, help="console turnaround (default 0.3 ms)")
    parser.add_argument("--http-port", type=int, default=0, help="press API port on 127.0.0.1 (0: a free port)")
    parser.add_argument("--link-dir", default=None, help="make symlinks DIR/line-<id> to the ptys")
    parser.add_argument("--tcp", action="store_true", help="serve RTU over TCP on loopback instead of ptys")
    parser.add_argument("--line", action="append", default=None, help="serve only this line (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault injection (default 1)")
    parser.add_argument(
        "--pymodbus",
        action="store_true",
        help="let a pymodbus server answer each line (the reference; slower) instead of the consoles directly",
    )
    parser.add_argument(
        "--no-realtime",
        action="store_true",
        help="with --wire-time, keep the bus loop at normal priority (by default it asks for SCHED_FIFO)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if argv and argv[0] in press_cli.COMMANDS:  # talk to a running simulator instead of starting one
        return press_cli.main(argv)
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.turnaround_ms < 0 or not 0 <= args.http_port <= 65535:
        print("--turnaround-ms must be >= 0 and --http-port 0 … 65535", file=sys.stderr)
        return 2
    sim = Simulator(
        config,
        wire_time=args.wire_time,
        turnaround_ms=args.turnaround_ms,
        seed=args.seed,
        link_dir=args.link_dir,
        tcp=args.tcp,
        only_lines=args.line,
        pymodbus=args.pymodbus,
        realtime=args.wire_time and not args.no_realtime,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    api: PressApi | None = None
    try:
        sim.start()
        api = PressApi(sim, port=args.http_port)
        api.start()
        print(json.dumps({"lines": sim.lines, "http": api.url}), flush=True)
        while not done.wait(0.5):
            pass
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    finally:
        if api is not None:
            api.stop()
        sim.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())

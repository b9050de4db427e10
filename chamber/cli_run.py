"""``chamber run`` (the controller daemon) and ``chamber demo`` (a scripted sitting).

* ``run`` loads the config and hands it to :func:`chamber.daemon.run` inside
  :func:`chamber.systemd.supervised` (under systemd: READY=1, the watchdog, STOPPING=1).  ``--demo`` is
  ``--simulate --wire-time --autopilot --open-sitting`` with the store moved to var/demo/ beside the
  config and a secretary ``demo`` given a new password (:func:`_demo_setup`), so that a demo never
  touches the council's own journal.  An engine that refuses to start (a journal failing verification)
  exits 2 with its reason.
* ``demo`` runs the scripted sitting of chamber/demo.py through the real engine and journal, or with
  ``--bus`` through simulated consoles on virtual RS-485 lines (chamber/demo_bus.py).

The daemon, the web stack and the simulators are imported only when a command runs.  The two parsers
are added separately because ``chamber --help`` lists ``run`` and ``demo`` apart (chamber/cli.py keeps
the order).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chamber.cli_config import DEFAULT_CONFIG, load_or_exit

if TYPE_CHECKING:  # imported where used, so that check-config starts fast
    from chamber.config import Config


def cmd_run(args: argparse.Namespace) -> int:
    from chamber.config import Config
    from chamber.daemon import run
    from chamber.engine import EngineError

    config = load_or_exit(args.config)
    assert isinstance(config, Config)
    if args.autopilot and not args.simulate:
        print("chamber run: --autopilot needs --simulate (it presses the simulated consoles' keys)", file=sys.stderr)
        return 2
    login: tuple[str, str] | None = None
    if args.demo:
        config, login = _demo_setup(config, Path(args.config).resolve().parent)
    from chamber.systemd import supervised

    try:
        with supervised() as on_started:  # under systemd: READY=1, the watchdog on its health, STOPPING=1
            return run(
                config,
                simulate=args.simulate or args.demo,
                wire_time=args.wire_time or args.demo,
                open_sitting=args.open_sitting or args.demo,
                sim_http_port=args.sim_http_port,
                web=not args.no_web,
                web_port=args.web_port,
                autopilot=args.autopilot or args.demo,
                demo_login=login,
                metrics_host=args.metrics_host,
                metrics_port=args.metrics_port,
                on_started=on_started,
            )
    except EngineError as exc:  # e.g. a journal that fails verification: nothing is resumed from it
        print(f"chamber run: {exc}", file=sys.stderr)
        return 2


def _demo_setup(config: Config, base: Path) -> tuple[Config, tuple[str, str]]:
    """``chamber run --demo``: the config with its store moved to var/demo/ beside the config file (the
    council's own journal is never touched by a demo), and a secretary ``demo`` with a new password
    for this run."""
    import secrets

    from chamber.journal import Journal
    from display.auth import UserStore

    directory = base / "var" / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'chamber.db'}"
    config = config.model_copy(update={"store": config.store.model_copy(update={"url": url})})
    password = secrets.token_urlsafe(9)
    with Journal(url) as journal:  # makes the schema (the users' table with it) on a first run
        users = UserStore(journal.engine)
        if users.get("demo") is None:
            users.add("demo", "secretary", password)
        else:
            users.set_password("demo", password)
    return config, ("demo", password)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port 0..65535 (0: any free one), got {text!r}")
    return int(text)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.bus:
        from chamber.demo_bus import run_bus_demo

        return run_bus_demo(args.config, args.db)
    from chamber.demo import run_demo

    return run_demo(args.config, args.db, fast=args.fast)


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``run`` subcommand."""
    p = sub.add_parser("run", help="run the controller daemon (engine, journal, one loop per line)")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--simulate", action="store_true", help="start simulated consoles on virtual serial lines")
    p.add_argument("--wire-time", action="store_true", help="with --simulate: emulate RS-485 wire timing")
    p.add_argument(
        "--sim-http-port", type=int, default=0, help="with --simulate: press API port on 127.0.0.1 (0: a free one)"
    )
    p.add_argument(
        "--open-sitting", action="store_true", help="open a sitting with the config's roster if none is open"
    )
    p.add_argument("--no-web", action="store_true", help="do not serve the web console, hall screen and pages")
    # also here, where a unit file's ExecStart puts it (the global option must come before "run")
    p.add_argument("--log-format", choices=["text", "json"], default=argparse.SUPPRESS, help="as chamber --log-format")
    p.add_argument("--web-port", type=_port, default=None, help="web port instead of [web] port (0: a free one)")
    p.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        help="serve Prometheus metrics on this port (0: a free one), on a listener of their own (docs/operations.md)",
    )
    p.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of the metrics listener (default 127.0.0.1: this machine)"
    )
    p.add_argument(
        "--autopilot", action="store_true", help="with --simulate: simulated deputies insert cards, register and vote"
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="the whole simulated chamber for a demo: --simulate --wire-time --autopilot --open-sitting, the "
        "journal in var/demo/, a user 'demo' (secretary) with a new password, the URLs printed",
    )
    p.set_defaults(func=cmd_run)


def add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``demo`` subcommand."""
    p = sub.add_parser("demo", help="run a scripted sitting through the real engine and journal")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--db", default=None, help="database URL (default: a fresh var/demo-*.db)")
    p.add_argument("--fast", action="store_true", help="no pauses between steps")
    p.add_argument("--bus", action="store_true", help="through simulated consoles on virtual RS-485 lines")
    p.set_defaults(func=cmd_demo)

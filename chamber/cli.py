"""The ``chamber`` command: check-config, journal verify, replay, backup, restore, bench, demo, scan, card, run,
web, users, keys init, sign, verify, protocol, sheet, publish.

How it works
------------
:func:`build_parser` builds one argparse parser; each subcommand's module adds its own sub-parsers with
``add_parsers`` and sets its handler as ``func``, a small function taking the parsed arguments and
returning the process exit code.  :func:`main` parses, sets up logging and calls ``func``:

* chamber/cli_store.py: ``journal verify``, ``replay``, ``backup``, ``restore``
* chamber/cli_bench.py: ``bench``
* chamber/cli_run.py: ``run`` and ``demo``
* chamber/cli_users.py: ``users add|list|passwd|remove``
* chamber/cli_hardware.py: ``scan`` and ``card``
* chamber/cli_signing.py: ``keys init``, ``sign``, ``verify``
* protocol_export (commands, pdf_commands, publish): ``opendata``, ``chapters``, ``protocol``, ``sheet``,
  ``publish``
* here: ``check-config``, and ``sim`` and ``web``, which :func:`main` hands their own arguments before
  parsing (each has its own options and ``--help``).

:func:`build_parser` adds the sub-parsers in the order ``chamber --help`` lists them.  Heavy imports happen
inside the handlers, so that ``chamber check-config`` starts fast on the controller.  Errors a person can
fix (a wrong config, a tampered journal) print a specific message and exit non-zero; they never end in a
traceback.  chamber/cli_config.py holds what the handlers share: the default config file, loading it,
the store URL.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from chamber import cli_bench, cli_hardware, cli_run, cli_signing, cli_store, cli_users
from chamber.cli_config import DEFAULT_CONFIG, load_or_exit, store_url

# What other code and the tests import from here, where it was before the subcommands had modules of their own
from chamber.cli_hardware import _usb_id as _usb_id  # tests/test_cli.py
from chamber.cli_users import USER_ROLES as USER_ROLES  # tests/test_web_auth.py

_store_url = store_url  # protocol_export's commands and pdf_commands


def cmd_check_config(args: argparse.Namespace) -> int:
    from chamber.config import Config

    config = load_or_exit(args.file)
    assert isinstance(config, Config)
    print(
        f"{args.file}: OK — {config.council.name}: composition {config.council.composition}, "
        f"{len(config.deputies)} deputies, {len(config.seats)} seats on {len(config.lines)} line(s)"
    )
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from hardware_sim.__main__ import main as sim_main

    code: int = sim_main(args.rest)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chamber", description="Council-chamber voting system")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    parser.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="json: one JSON object per log line (time, level, logger, message, extra fields)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a config file; non-zero exit on any error")
    p.add_argument("file", nargs="?", default=DEFAULT_CONFIG)
    p.set_defaults(func=cmd_check_config)

    cli_store.add_parsers(sub)  # journal, replay, backup, restore
    cli_bench.add_parsers(sub)
    cli_run.add_run_parser(sub)
    cli_users.add_parsers(sub)

    p = sub.add_parser("sim", help="run the hardware simulator alone (options: chamber sim --help)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sim)

    # for the list in chamber --help only: main() hands "web ..." to display/web_main.py before parsing
    p = sub.add_parser(
        "web", help="a web process of a scaled-out chamber, [web] message_queue (options: chamber web --help)"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)

    cli_hardware.add_parsers(sub)  # scan, card
    cli_run.add_demo_parser(sub)
    cli_signing.add_parsers(sub)  # keys, sign, verify
    from protocol_export.commands import add_parsers as add_export_parsers  # opendata, chapters (light)

    add_export_parsers(sub, DEFAULT_CONFIG)
    from protocol_export.pdf_commands import add_parsers as add_pdf_parsers  # protocol, sheet (light)

    add_pdf_parsers(sub, DEFAULT_CONFIG)
    from protocol_export.publish import add_parsers as add_publish_parsers  # publish (light)

    add_publish_parsers(sub, DEFAULT_CONFIG)
    return parser


def _global_log_format_to_web(argv: list[str]) -> list[str]:
    """``chamber --log-format json web ...`` as ``chamber web --log-format json ...``: the web process parses
    its own options (display/web_main.py), the global one included."""
    if argv[:1] == ["--log-format"] and argv[2:3] == ["web"]:
        return ["web", *argv[:2], *argv[3:]]
    if argv[:1] and argv[0].startswith("--log-format=") and argv[1:2] == ["web"]:
        return ["web", argv[0], *argv[2:]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _global_log_format_to_web(argv)
    if argv[:1] == ["sim"]:  # the simulator's own options, untouched (argparse would take "--config" as ours)
        from hardware_sim.__main__ import main as sim_main

        return sim_main(argv[1:])
    if argv[:1] == ["web"]:  # a web process has its own options and logging (display/web_main.py)
        if "--gevent" in argv[1:]:  # before the web stack is imported: see display/web_main.py, «--gevent»
            try:
                from gevent import monkey

                monkey.patch_all()
            except ImportError:
                pass  # web_main says what is missing
        from display.web_main import main as web_main

        return web_main(argv[1:])
    args = build_parser().parse_args(argv)
    from chamber.logs import configure as configure_logging

    configure_logging(logging.INFO if args.verbose or args.command == "run" else logging.WARNING, args.log_format)
    func: Callable[[argparse.Namespace], int] = args.func
    from chamber.journal import StoreUnavailable

    try:
        return func(args)
    except KeyboardInterrupt:
        return 130
    except StoreUnavailable as exc:  # a wrong [store] url, a directory without rights, a server down
        print(f"chamber: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

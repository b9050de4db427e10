"""``chamber scan`` and ``chamber card``: the hardware checked from the command line.

* ``scan`` polls the consoles of the config's lines (or of one ``--port``/``--gateway``) through
  :mod:`terminals.scan` and prints which answer, their firmware, errors and round-trip times (``--json``:
  the same as JSON).  Exit 1 when a configured console is silent or not what the config says (without a
  config: when no unit answers), 2 for options that do not fit.
* ``card read`` waits for a card on the USB reader (:mod:`terminals.cardreader`) and prints its UID,
  with ``--config`` also whose card it is; ``card list`` lists the readers found.  A reader that cannot
  be opened, or no card in time, exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys

from chamber.cli_config import DEFAULT_CONFIG, load_or_exit


def cmd_scan(args: argparse.Namespace) -> int:
    from chamber.config import Config
    from terminals import scan

    config: Config | None = None
    if args.config is not None or (args.port is None and args.gateway is None):
        loaded = load_or_exit(args.config or DEFAULT_CONFIG)
        assert isinstance(loaded, Config)
        config = loaded
    try:
        units = scan.parse_units(args.units) if args.units else None
        targets = scan.plan_scan(
            config, args.line, args.port, args.gateway, args.baud, args.parity, units, args.timeout_ms
        )
    except ValueError as err:
        print(str(err), file=sys.stderr)
        return 2
    reports = [scan.run_target(target, attempts=args.attempts) for target in targets]
    ok = all(report.ok for report in reports)
    if args.json:
        print(json.dumps({"ok": ok, "lines": [r.to_dict() for r in reports]}, ensure_ascii=False, indent=2))
    else:
        print(scan.format_reports(reports, show_absent=args.all))
    return 0 if ok else 1


# argparse names this function in its error ("invalid _usb_id value: 'zz'"): keep its name
def _usb_id(text: str) -> int:
    if not text.isascii():  # int() takes any script's digits
        raise ValueError(text)
    value = int(text, 16)  # "0x072f" and "072f" alike
    if not 0 <= value <= 0xFFFF:
        raise ValueError(text)
    return value


def cmd_card(args: argparse.Namespace) -> int:
    from chamber.config import Config
    from terminals.cardreader import CardReader, CardReaderError, find_readers

    try:
        if args.card_command == "list":
            readers = find_readers()
            if not readers:
                print("no card reader found on USB (is it plugged in? lsusb lists it)", file=sys.stderr)
                return 1
            print("\n".join(readers))
            return 0
        config = load_or_exit(args.config) if args.config else None
        with CardReader(args.vendor, args.product) as reader:
            print(f"present a card to reader {reader.ids} (waiting {args.timeout:g} s) ...", file=sys.stderr)
            uid = reader.read_uid(args.timeout)
    except CardReaderError as err:
        print(f"card reader: {err}", file=sys.stderr)
        return 1
    if uid is None:
        print(f"no card presented within {args.timeout:g} s", file=sys.stderr)
        return 1
    if not isinstance(config, Config):
        print(uid)
        return 0
    for deputy in config.deputies:
        if uid in deputy.cards:
            seat = f", seat {deputy.seat}" if deputy.seat is not None else ""
            print(f"{uid}: deputy {deputy.full_name} (id {deputy.id}{seat})")
            return 0
    print(f"{uid}: not enrolled (no deputy in {args.config} has this card; add it to a deputy's cards)")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``scan`` and ``card`` (``read``, ``list``) subcommands."""
    p = sub.add_parser("scan", help="bus diagnostics: which consoles answer, firmware, errors, round-trip times")
    p.add_argument("--config", default=None, help=f"config whose lines and seats to scan (default {DEFAULT_CONFIG})")
    p.add_argument("--line", help="scan only this line (required with --port/--gateway when the config has several)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="serial device to scan instead of the line's, e.g. /dev/ttyUSB0")
    where.add_argument("--gateway", help="RTU-over-TCP gateway HOST:PORT to scan instead of the line's")
    p.add_argument("--baud", type=int, help="baud rate (default: the line's, or 115200 without a config)")
    p.add_argument("--parity", choices=["N", "E", "O"], help="parity (default: the line's, or E)")
    p.add_argument("--units", help="unit ids to poll: 1-247 or 1,2,5-9 (default: the config's units on the line)")
    p.add_argument("--timeout-ms", type=int, help="reply timeout per request (default: the line's, or 50)")
    p.add_argument("--attempts", type=int, default=2, help="tries per request before a unit counts as silent")
    p.add_argument("--all", action="store_true", help="also list unit ids that did not answer")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("card", help="the USB card reader at the secretary's desk")
    csub = p.add_subparsers(dest="card_command", required=True)
    p = csub.add_parser("read", help="print the UID of the next card presented (and whose card it is)")
    p.add_argument("--vendor", type=_usb_id, default=0xFFFF, help="USB vendor id, hex (default 0xffff; see lsusb)")
    p.add_argument("--product", type=_usb_id, default=0x0035, help="USB product id, hex (default 0x0035)")
    p.add_argument("--config", default=None, help="config file: say which deputy the card belongs to")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a card (default 30)")
    p.set_defaults(func=cmd_card)
    p = csub.add_parser("list", help="list USB card readers (and HID keyboards that may be readers)")
    p.set_defaults(func=cmd_card)

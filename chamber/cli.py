"""The ``chamber`` command: check-config, journal verify, replay, backup, restore, bench, demo, scan, card, run,
web, users, keys init, sign, verify, protocol, sheet, publish.

Each subcommand is a small function taking the parsed arguments and returning
the process exit code; heavy imports happen inside them so that
``chamber check-config`` starts fast on the controller.  Errors a person can
fix (a wrong config, a tampered journal) print a specific message and exit
non-zero; they never end in a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used, so that check-config starts fast
    from chamber.chain import Head, SittingCheck
    from chamber.config import Config
    from chamber.journal import Journal

DEFAULT_CONFIG = "config.toml"
# display.auth.ROLES, written out so that building the parser does not import the web stack (a test
# keeps the two equal)
USER_ROLES = ("secretary", "chair", "operator", "observer")


def _load(path: str) -> object:
    from chamber.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as err:
        print(str(err), file=sys.stderr)
        raise SystemExit(2) from None


def _store_url(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    from chamber.config import Config

    config = _load(args.config)
    assert isinstance(config, Config)
    return config.store.url


def cmd_check_config(args: argparse.Namespace) -> int:
    from chamber.config import Config

    config = _load(args.file)
    assert isinstance(config, Config)
    print(
        f"{args.file}: OK — {config.council.name}: composition {config.council.composition}, "
        f"{len(config.deputies)} deputies, {len(config.seats)} seats on {len(config.lines)} line(s)"
    )
    return 0


def _head_arg(text: str) -> Head:
    from chamber.chain import parse_head

    try:
        return parse_head(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected [SEQ:]HASH as journal verify prints it: {err}") from None


def _unreadable(exc: Exception) -> int:
    """The store went away or refused a read half-way (a server stopped, a table without rights)."""
    print(f"chamber: the store cannot be read: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def cmd_journal_verify(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal

    if args.expect_head is not None and not args.sitting:
        print("chamber journal verify: --expect-head needs --sitting (a head belongs to one sitting)", file=sys.stderr)
        return 2
    journal = Journal(_store_url(args), create=False)
    try:
        return _verify(journal, args.sitting, args.expect_head)
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    finally:
        journal.close()


def _verify(journal: Journal, only: str | None, expected: Head | None) -> int:
    """Print each sitting's verdict (an intact one with its head, ``SEQ:HASH``, to be kept elsewhere)."""
    known = journal.all_sittings()
    if only and only not in known:
        print(f"sitting {only}: no such sitting in this journal", file=sys.stderr)
        return 1
    bad = 0
    if not only:
        for p in journal.store_problems():
            bad += 1
            print(f"journal: {p.kind}: {p.message}")
    for uid in [only] if only else known:
        check = journal.check(uid, expected)
        if check.problems:
            bad += 1
            print(f"sitting {uid}: {len(check.problems)} problem(s)")
            for p in check.problems:
                print(f"  {p}")
        else:
            head = f"{len(check.records)} records, head {check.head}" if check.head else "empty"
            print(f"sitting {uid}: intact ({head})")
    if not known:
        print("the journal holds no sittings")
    return 1 if bad else 0


def cmd_replay(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal

    journal = Journal(_store_url(args), create=False)
    try:
        return _replay(journal, args)
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    finally:
        journal.close()


def _replay(journal: Journal, args: argparse.Namespace) -> int:
    known = journal.all_sittings()
    uid = args.sitting or (known[-1] if known else None)
    if uid is None:
        print("the journal holds no sittings", file=sys.stderr)
        return 1
    if uid not in known:
        print(f"sitting {uid}: no such sitting in this journal", file=sys.stderr)
        return 1
    check = journal.check(uid, args.expect_head)
    if check.problems:
        # A state computed from a journal that was tampered with is not the sitting's state.
        print(f"sitting {uid}: the journal fails verification ({len(check.problems)} problem(s)):", file=sys.stderr)
        for p in check.problems:
            print(f"  {p}", file=sys.stderr)
        if not args.force:
            print("not replayed; --force replays it anyway", file=sys.stderr)
            return 1
    return _print_replay(check, args.json)


def _print_replay(check: SittingCheck, as_json: bool) -> int:
    """Replay the well-formed records of the chain, in seq order (malformed ones were reported, not replayed)."""
    import msgspec

    from chamber.core.events import decode_input
    from chamber.core.sitting import Sitting
    from chamber.report import describe

    sitting = Sitting()
    for rec in check.records:
        try:
            event = decode_input(rec.payload)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
            print(f"sitting {check.sitting}: record {rec.seq} ({rec.type}) cannot be decoded: {exc}", file=sys.stderr)
            return 1
        sitting.apply(event, rec.at_ms)
    if as_json:
        sys.stdout.write(msgspec.json.encode(sitting.snapshot()).decode() + "\n")
    else:
        damaged = " (journal NOT intact)" if check.problems else ""
        print(f"sitting {check.sitting}: {len(check.records)} records replayed{damaged}")
        print(describe(sitting))
    return 1 if check.problems else 0


def cmd_backup(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from chamber.backup import BackupError, backup

    url = _store_url(args)
    out = Path(args.out)
    try:
        summary = backup(url, out, force=args.force)
    except BackupError as exc:
        print(f"chamber backup: {exc}", file=sys.stderr)
        return exc.code
    shown = make_url(url).render_as_string(hide_password=True)
    print(f"backup of {shown} written to {out} ({out.stat().st_size} bytes), read back:")
    for line in summary.lines():
        print(f"  {line}")
    if summary.problems:  # written all the same: a copy of a damaged journal is evidence
        print("chamber backup: the store's journal fails verification (the backup holds it as it is)", file=sys.stderr)
        return 1
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from chamber.backup import BackupError, restore

    try:
        backup_summary, store_summary = restore(Path(args.file), _store_url(args), force=args.force)
    except BackupError as exc:
        print(f"chamber restore: {exc}", file=sys.stderr)
        return exc.code
    print(f"restored {args.file}; the store now holds:")
    for line in store_summary.lines():
        print(f"  {line}")
    if (store_summary.heads, store_summary.users, store_summary.problems) != (
        backup_summary.heads,
        backup_summary.users,
        [],
    ):
        print("chamber restore: the restored store does not match the backup (above)", file=sys.stderr)
        return 1
    return 0


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
    from pathlib import Path

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


def cmd_demo(args: argparse.Namespace) -> int:
    if args.bus:
        from chamber.demo_bus import run_bus_demo

        return run_bus_demo(args.config, args.db)
    from chamber.demo import run_demo

    return run_demo(args.config, args.db, fast=args.fast)


def cmd_run(args: argparse.Namespace) -> int:
    from chamber.config import Config
    from chamber.daemon import run
    from chamber.engine import EngineError

    config = _load(args.config)
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


def _read_password(args: argparse.Namespace, name: str) -> str | None:
    """The new password: one line from stdin with --password-stdin (for scripts), else asked twice
    without echo.  None (after saying why) when the two do not match."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("the same again: ") != first:
        print("chamber users: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return first


def cmd_users(args: argparse.Namespace) -> int:
    """Users of the web console, in the store's ``web_users`` table (display.auth)."""
    from chamber.journal import Journal
    from display.auth import UserError, UserStore

    journal = Journal(_store_url(args))  # opened as the daemon does: the schema is brought up to date
    try:
        users = UserStore(journal.engine)
        if args.users_command == "list":
            rows = users.all()
            for user in rows:
                print(f"{user.name}\t{user.role}")
            if not rows:
                print("no users yet: chamber users add NAME --role secretary", file=sys.stderr)
            return 0
        if args.users_command == "remove":
            users.remove(args.name)
            print(f"user {args.name} removed")
            return 0
        password = _read_password(args, args.name)
        if password is None:
            return 1
        if args.users_command == "add":
            users.add(args.name, args.role, password)
            print(f"user {args.name} ({args.role}) added")
        else:
            users.set_password(args.name, password)
            print(f"password of {args.name} changed; their open sessions end")
        return 0
    except UserError as exc:
        print(f"chamber users: {exc}", file=sys.stderr)
        return 1
    finally:
        journal.close()


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port 0..65535 (0: any free one), got {text!r}")
    return int(text)


def cmd_sim(args: argparse.Namespace) -> int:
    from hardware_sim.__main__ import main as sim_main

    code: int = sim_main(args.rest)
    return code


def cmd_scan(args: argparse.Namespace) -> int:
    from chamber.config import Config
    from terminals import scan

    config: Config | None = None
    if args.config is not None or (args.port is None and args.gateway is None):
        loaded = _load(args.config or DEFAULT_CONFIG)
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
        config = _load(args.config) if args.config else None
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


def cmd_keys(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import keys_init

    return keys_init(args)


def cmd_sign(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import sign

    return sign(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import verify

    return verify(args)


def _add_signing_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """keys init, sign, verify (protocol_export.sign_commands)."""
    keys = sub.add_parser("keys", help="signing keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    p = ksub.add_parser("init", help="make a self-signed demo certificate and key; prints the [signing] lines")
    p.add_argument("--out", default="var/signing", help="directory to write into (default: var/signing)")
    p.add_argument("--council-name", help="the certificate's organisation (default: [council] name of --config)")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file the printed lines are for")
    p.add_argument("--pkcs12", action="store_true", help="write a PKCS#12 file encrypted with --passphrase-env")
    p.add_argument("--passphrase-env", default="CHAMBER_SIGNING_PASSPHRASE", help="variable holding the passphrase")
    p.add_argument("--force", action="store_true", help="replace existing files")
    p.set_defaults(func=cmd_keys)

    p = sub.add_parser("sign", help="render a sitting's protocol (or a vote's result sheet) from the journal, signed")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file: [signing] certificate, [store] url")
    p.add_argument("--db", help="database URL (overrides the config)")
    p.add_argument("--sitting", required=True, help="sitting uid (journal verify lists them)")
    p.add_argument("--vote", type=int, help="sign this vote's one-page result sheet instead of the protocol")
    p.add_argument("--out", required=True, help="the signed PDF to write")
    p.add_argument("--recordings", metavar="DIR", help="speech recordings to list (default: [recording] directory)")
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser("verify", help="check a signed PDF: signatures and, given the store, the journal it came from")
    p.add_argument("file", help="the signed PDF")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--db", help="database URL: re-render the document from this journal and compare")
    store.add_argument("--config", help="config file whose [store] to compare with")
    p.add_argument("--trust", action="append", default=[], metavar="CERT", help="trust anchor (PEM/DER); repeatable")
    p.add_argument("--require-trust", action="store_true", help="an untrusted certificate is a problem (exit 1)")
    p.add_argument("--recordings", metavar="DIR", help="speech recordings to compare (default: the config's)")
    p.set_defaults(func=cmd_verify)


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

    def store_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=DEFAULT_CONFIG, help="config file whose [store] url to use")
        p.add_argument("--db", help="database URL (overrides the config), e.g. sqlite:///var/chamber.db")
        p.add_argument("--sitting", help="sitting uid (default: all for verify, the newest for replay)")
        p.add_argument(
            "--expect-head",
            type=_head_arg,
            metavar="[SEQ:]HASH",
            help="the sitting's head as verify printed it and the protocol records it: the journal must end "
            "there (catches a cut tail with a rewritten chain head; verify needs --sitting)",
        )

    journal = sub.add_parser("journal", help="journal tools")
    jsub = journal.add_subparsers(dest="journal_command", required=True)
    p = jsub.add_parser("verify", help="check every record's hash chain; names any changed, removed, reordered")
    store_args(p)
    p.set_defaults(func=cmd_journal_verify)

    p = sub.add_parser("replay", help="print the state a sitting's journal leads to")
    store_args(p)
    p.add_argument("--json", action="store_true", help="print the full snapshot as JSON")
    p.add_argument("--force", action="store_true", help="replay a journal that fails verification (exit 1 still)")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("backup", help="a consistent copy of the store (journal, users) as one SQLite file")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file whose [store] url to back up")
    p.add_argument("--db", help="database URL (overrides the config)")
    p.add_argument("--out", required=True, help="the backup file to write (an SQLite database)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="put a backup into a store (stop the controller first)")
    p.add_argument("file", help="a file chamber backup wrote")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file whose [store] url to restore into")
    p.add_argument("--db", help="database URL (overrides the config)")
    p.add_argument("--force", action="store_true", help="replace what a non-empty store holds")
    p.set_defaults(func=cmd_restore)

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

    p = sub.add_parser("users", help="users of the web console (stored in the journal's database)")
    usub = p.add_subparsers(dest="users_command", required=True)

    def users_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=DEFAULT_CONFIG, help="config file whose [store] url to use")
        p.add_argument("--db", help="database URL (overrides the config)")

    p = usub.add_parser("add", help="add a user (the password is asked for, or read from stdin)")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=USER_ROLES, help="what the user may do on the console")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    users_args(p)
    p.set_defaults(func=cmd_users)
    p = usub.add_parser("list", help="list users and their roles")
    users_args(p)
    p.set_defaults(func=cmd_users)
    p = usub.add_parser("passwd", help="change a user's password (their open sessions end)")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    users_args(p)
    p.set_defaults(func=cmd_users)
    p = usub.add_parser("remove", help="remove a user (their open sessions end)")
    p.add_argument("name")
    users_args(p)
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("sim", help="run the hardware simulator alone (options: chamber sim --help)")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_sim)

    p = sub.add_parser(
        "web", help="a web process of a scaled-out chamber, [web] message_queue (options: chamber web --help)"
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)

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

    p = sub.add_parser("demo", help="run a scripted sitting through the real engine and journal")
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--db", default=None, help="database URL (default: a fresh var/demo-*.db)")
    p.add_argument("--fast", action="store_true", help="no pauses between steps")
    p.add_argument("--bus", action="store_true", help="through simulated consoles on virtual RS-485 lines")
    p.set_defaults(func=cmd_demo)

    _add_signing_parsers(sub)
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

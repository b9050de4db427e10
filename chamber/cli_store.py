"""``chamber journal verify``, ``replay``, ``backup`` and ``restore``: the store's journal checked, read
back and copied.

* ``journal verify`` checks every sitting's hash chain (or one, ``--sitting``) and prints each verdict;
  an intact sitting with its head, ``SEQ:HASH``, the value to keep elsewhere and give back as
  ``--expect-head`` (a cut tail with a rewritten chain head is caught only against it).  Exit 1 when
  anything fails.
* ``replay`` applies a sitting's records to a fresh :class:`chamber.core.sitting.Sitting` and prints
  the state (``--json``: the full snapshot).  A journal that fails verification is not replayed unless
  ``--force``, and then still exits 1: its state is not the sitting's.
* ``backup`` and ``restore`` call :mod:`chamber.backup` and print the summary it reads back.

verify and replay open the store read-only (``create=False``); a store that goes away or refuses a read
half-way exits 2 with the error in one line, as a wrong config does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from chamber.cli_config import DEFAULT_CONFIG, store_url

if TYPE_CHECKING:  # imported where used, so that check-config starts fast
    from chamber.chain import Head, SittingCheck
    from chamber.journal import Journal


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
    journal = Journal(store_url(args), create=False)
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

    journal = Journal(store_url(args), create=False)
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

    url = store_url(args)
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
        backup_summary, store_summary = restore(Path(args.file), store_url(args), force=args.force)
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


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``journal`` (its ``verify``), ``replay``, ``backup`` and ``restore`` subcommands."""

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

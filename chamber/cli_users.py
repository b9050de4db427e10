"""``chamber users add|list|passwd|remove``: the web console's users, in the store's ``web_users`` table.

The store is opened as the daemon opens it (its schema brought up to date), and the users are kept by
:class:`display.auth.UserStore`, which hashes the passwords and ends a user's open sessions when the
password changes or the user is removed.  A new password is read as one line from stdin with
``--password-stdin`` (for scripts), else asked twice without echo; a refusal of the user store (a
name taken, a password too short) exits 1 with its reason.
"""

from __future__ import annotations

import argparse
import sys

from chamber.cli_config import DEFAULT_CONFIG, store_url

# display.auth.ROLES, written out so that building the parser does not import the web stack (a test
# keeps the two equal)
USER_ROLES = ("secretary", "chair", "operator", "observer")


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

    journal = Journal(store_url(args))  # opened as the daemon does: the schema is brought up to date
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


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``users`` subcommand and its four: add, list, passwd, remove."""
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

"""``chamber keys init``, ``sign`` and ``verify``: the parsers of the signing commands.

The commands themselves live in :mod:`protocol_export.sign_commands`; each ``cmd_*`` here imports it
only when called, because it imports cryptography and the config's models at once, and building the
parser must stay light (``chamber check-config`` builds the whole parser and must start fast).
"""

from __future__ import annotations

import argparse

from chamber.cli_config import DEFAULT_CONFIG


def cmd_keys(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import keys_init

    return keys_init(args)


def cmd_sign(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import sign

    return sign(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from protocol_export.sign_commands import verify

    return verify(args)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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

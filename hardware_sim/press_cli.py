"""``chamber sim press|card|fault|state``: the press API from the command line.

A running simulator (``chamber sim`` or ``chamber run --simulate``) listens on
loopback; these commands send it one request each and print its JSON answer,
so a trainer or a shell script can press a deputy's button without a browser.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

COMMANDS = ("press", "card", "presence", "fault", "state")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chamber sim", description="Talk to a running simulator's press API.")
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--url", required=True, help='the "http" address the simulator printed')
    p.add_argument("--seat", type=int)
    p.add_argument("--key", help="register, yes, no, abstain, speak, reply, order, p1..p9 or a key code")
    p.add_argument("--uid", help="card UID in hex; omit with `card` to remove the card")
    p.add_argument("--present", choices=("yes", "no"))
    p.add_argument("--line")
    p.add_argument("--unit", type=int)
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="fault: dead=true, crc_rate=0.05")
    return p


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def request_for(args: argparse.Namespace) -> tuple[str, dict[str, Any] | None]:
    if args.command == "state":
        return "/state", None
    if args.command == "press":
        return "/press", {"seat": args.seat, "key": args.key}
    if args.command == "card":
        return "/card", {"seat": args.seat, "uid": args.uid}
    if args.command == "presence":
        return "/presence", {"seat": args.seat, "present": args.present == "yes"}
    body: dict[str, Any] = {"line": args.line}
    if args.unit is not None:
        body["unit"] = args.unit
    for item in args.set:
        name, _, value = item.partition("=")
        body[name] = _value(value)
    return "/fault", body


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    path, body = request_for(args)
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            print(resp.read().decode())
        return 0
    except urllib.error.HTTPError as err:  # the API's 400 carries a JSON error that says what is wrong
        print(err.read().decode(), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as err:
        print(f"cannot reach the simulator at {args.url}: {err}", file=sys.stderr)
        return 1

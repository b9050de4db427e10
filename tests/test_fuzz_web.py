"""Fuzzing the web side with hypothesis: every HTTP route (read from Flask's url_map, so a new route is
fuzzed without editing this file) and every Socket.IO event, with random and garbage input, against a
real engine over a SQLite journal.

What must hold: no answer is a 5xx and no handler raises; every refusal is a 4xx (HTTP) or a refusal
object (``{"ok": false, "reason", "message"}`` in the ack, an ``error`` event for a forgery); the
reasons are codes the pages have words for; the connection stays up.

Examples per test are few by default (the suite must stay fast); ``CHAMBER_FUZZ_EXAMPLES=N`` runs N
each (docs/reliability/security.md gives the counts of the last long run).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from test_web_app import csrf_of, events, make_env, open_registered_sitting

from chamber.core import events as ev
from display import commands as cmd
from display import reasons

CAMPAIGN = int(os.environ.get("CHAMBER_FUZZ_EXAMPLES", "0") or 0)


def budget(default: int) -> settings:
    return settings(
        max_examples=CAMPAIGN or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


class World:
    """One app for a whole test (made once: hypothesis runs many examples in one test call)."""

    def __init__(self, tmp: Path) -> None:
        self.env = make_env(tmp, simulator_url="http://127.0.0.1:9")
        self.client, self.sock = self.env.console("secretary", "anna")
        # made before the fuzz, whose failed log-ins soon rate-limit this address
        self.operator = self.env.console("operator", "fuzz_operator")[1]
        open_registered_sitting(self.env, self.sock)
        self.env.command(self.sock, {"type": "OpenVote", "title": "Про бюджет"})
        self.env.command(self.sock, {"type": "CloseVote"})
        self.uid = self.env.web.publisher._current_sitting() or "none"
        self.anonymous = self.env.app.test_client()
        self.hall = self.env.socket("/hall")

    def close(self) -> None:
        self.env.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("fuzz_web"))
    try:
        yield w
    finally:
        w.close()


# --- strategies ----------------------------------------------------------------------------------

header_text = hs.text(alphabet=hs.characters(codec="latin-1", exclude_characters="\r\n"), max_size=60)
garbage_text = hs.one_of(
    hs.text(max_size=80),
    hs.sampled_from(["..", "../../etc/passwd", "%2e%2e%2f", "\x00", "протокол.pdf", "SHA256SUMS", "<script>", "-1"]),
    hs.text(alphabet="0123456789", min_size=1, max_size=30),
)
json_values = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.floats(allow_nan=False) | hs.text(max_size=40),
    lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def url_for(rule: Any, draw: Any, uid: str) -> str:
    url = str(rule.rule)
    for var in rule.arguments:
        conv = rule._converters[var]
        kind = type(conv).__name__
        if kind == "IntegerConverter":
            value = str(draw(hs.integers(min_value=0, max_value=10**20)))
        elif var == "uid":
            value = draw(hs.sampled_from([uid, uid[:-1] + "0"]) | garbage_text.filter(lambda t: "/" not in t))
        else:
            value = draw(garbage_text)
        if not value or (kind != "PathConverter" and "/" in value):
            value = "x"
        value = urllib.parse.quote(value, safe="/" if kind == "PathConverter" else "")  # as a browser sends it
        for form in (f"<{var}>", f"<int:{var}>", f"<path:{var}>"):
            url = url.replace(form, value)
    return url


@hs.composite
def http_requests(draw: Any, rules: list[Any], uid: str) -> dict[str, Any]:
    rule = draw(hs.sampled_from(rules))
    method = draw(hs.sampled_from(sorted((rule.methods or set()) | {"POST", "GET", "DELETE", "PUT"})))
    headers = {}
    if draw(hs.booleans()):
        headers["X-CSRF-Token"] = draw(header_text)  # (the test client itself refuses CR and LF)
    if draw(hs.booleans()):
        headers["Range"] = draw(hs.sampled_from(["bytes=0-10", "bytes=-5", "bytes=99999999-", "bytes=a-b", "x"]))
    if draw(hs.booleans()):
        headers["X-Forwarded-Proto"] = draw(hs.sampled_from(["https", "http", "gopher", ""]))
    query = draw(hs.dictionaries(hs.sampled_from(["lang", "next", "n", "page"]), garbage_text, max_size=3))
    body: dict[str, Any] = {}
    kind = draw(hs.sampled_from(["none", "form", "json", "raw"]))
    if kind == "form":
        body["data"] = draw(hs.dictionaries(hs.sampled_from(["name", "password", "csrf_token", "next"]), garbage_text))
    elif kind == "json":
        body["json"] = draw(json_values)
    elif kind == "raw":
        body["data"] = draw(hs.binary(max_size=200))
        headers["Content-Type"] = draw(hs.sampled_from(["application/json", "multipart/form-data", "text/plain"]))
    return {
        "method": method,
        "path": url_for(rule, draw, uid),
        "headers": headers,
        "query_string": query,
        "who": draw(hs.sampled_from(["anonymous", "secretary", "secretary+token"])),
        **body,
    }


def rules_of(world: World) -> list[Any]:
    return [r for r in world.env.app.url_map.iter_rules()]


def test_every_route_is_fuzzed(world: World) -> None:
    endpoints = {r.endpoint for r in rules_of(world)}
    assert {"login", "logout", "seat_action", "public_file", "public_vote", "api_state", "static"} <= endpoints


def test_http_routes_never_fail(world: World) -> None:
    rules = rules_of(world)
    seen: set[str] = set()

    @budget(300)
    @given(http_requests(rules, world.uid))
    def one(req: dict[str, Any]) -> None:
        who = req.pop("who")
        client = world.anonymous if who == "anonymous" else world.client
        if who == "secretary+token":
            req["headers"]["X-CSRF-Token"] = csrf_of(client)
        if req["path"] == "/logout":
            req["method"] = "GET"  # the fuzz must not log its own secretary out (test_security_http does)
        resp = client.open(req.pop("path"), **req)
        assert resp.status_code < 500, (req, resp.status_code, resp.get_data(as_text=True)[:300])
        if resp.status_code >= 400 and resp.is_json and req["method"] != "HEAD":
            body = resp.get_json()
            assert body["ok"] is False and body["reason"] and body["message"], body
        seen.add(f"{req['method']} {resp.status_code}")

    one()
    assert world.client.get("/console").status_code == 200  # the fuzz did not log the secretary out


# --- socket events ---------------------------------------------------------------------------------

KNOWN = sorted(cmd.ENGINE_COMMANDS | set(cmd.WEB_COMMANDS) | cmd.NOT_FROM_WEB)
FIELDS = ["seat", "title", "kind", "duration_s", "threshold", "items", "number", "reason", "id", "csv", "deputy",
          "extra_s", "limit_s", "proposals", "subject", "item", "key", "uid", "csrf", "command_id"]  # fmt: skip


def _fields_of(kind: str) -> list[str]:
    cls = cmd.WEB_COMMANDS.get(kind) or ev.INPUT_TYPES.get(kind)
    return [f.name for f in msgspec.structs.fields(cls)] if cls is not None else []


field_values = hs.one_of(
    hs.integers(min_value=-3, max_value=12),
    hs.integers(),
    hs.text(max_size=40),
    hs.sampled_from(["roll_call", "secret", "open", "rating", "speech", "2/3", "1/2", "", "1", None, True]),
    json_values,
)


@hs.composite
def typed_commands(draw: Any) -> dict[str, Any]:
    """A command of a known type with (mostly) its own fields, each any value."""
    kind = draw(hs.sampled_from(KNOWN))
    names = _fields_of(kind) + draw(hs.lists(hs.sampled_from(FIELDS), max_size=2))
    body = {name: draw(field_values) for name in names if draw(hs.integers(0, 3))}
    return {"type": kind, **body}


commands = hs.one_of(
    typed_commands(),
    json_values,
    hs.fixed_dictionaries(
        {"type": hs.sampled_from(KNOWN) | hs.text(max_size=20)},
        optional={f: json_values for f in FIELDS},
    ),
)
event_names = hs.sampled_from(["command", "resync", "state", "patch", "connect", "disconnect", "x"]) | hs.text(
    max_size=20
)
REASONS = reasons.CORE_REASONS | reasons.WEB_REASONS


def check_reply(reply: Any) -> None:
    assert isinstance(reply, dict), reply
    if reply.get("ok") is True:
        return
    assert reply["ok"] is False and reply["reason"] in REASONS and reply["message"], reply
    assert reply["reason"] != "internal_error", reply


def test_console_commands_never_fail(world: World) -> None:
    env, sock, operator = world.env, world.sock, world.operator

    @budget(300)
    @given(commands, hs.booleans())
    def one(command: Any, as_operator: bool) -> None:
        s = operator if as_operator else sock
        reply = s.emit("command", command, namespace="/console", callback=True)
        check_reply(reply)
        for error in events(s, "/console", "error"):
            check_reply(error)
        if env.engine.snapshot().phase.value == "no_sitting":
            open_registered_sitting(env, sock)

    one()
    assert sock.is_connected("/console") and operator.is_connected("/console")


def test_socket_events_and_raw_packets_never_fail(world: World) -> None:
    env = world.env

    @budget(300)
    @given(
        hs.sampled_from(["/hall", "/console"]),
        event_names,
        hs.lists(json_values, max_size=3),
        hs.one_of(hs.none(), hs.text(max_size=60), hs.binary(max_size=60).map(lambda b: b.decode("latin-1"))),
    )
    def one(namespace: str, name: str, args: list[Any], raw: str | None) -> None:
        sock = world.hall if namespace == "/hall" else world.sock
        events(sock, namespace)
        if raw is not None:
            env.socketio.server._handle_eio_message(sock.eio_sid, f"2{namespace}," + raw)
        else:
            packet = f"2{namespace}," + json.dumps([name, *args])
            env.socketio.server._handle_eio_message(sock.eio_sid, packet)
        for message in sock.get_received(namespace):
            if message["name"] == "error":
                check_reply(message["args"][0])
        if env.engine.snapshot().phase.value == "no_sitting":
            open_registered_sitting(env, world.sock)

    one()
    assert world.sock.is_connected("/console") and world.hall.is_connected("/hall")

"""Forged, replayed and malformed Socket.IO events against the real namespaces and a real engine.

Each one is refused with an ``error`` event (or, for a command, a refusal in its ack too) and a
warning in the log, and nothing is applied: the store's every row is as before.  What "replayed"
means here is display/command_ids.py's: the same command (by its ``command_id``) delivered again in
the same log-in session is not carried out again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import simple_websocket
from test_security_roles import Spy, table_rows
from test_web_app import Env, csrf_of, events, make_env, open_registered_sitting

from display import command_ids
from display.app import WebServer


def raw(env: Env, sock: Any, text: str) -> None:
    """A Socket.IO packet straight onto the connection, as a hand-made client would send it."""
    env.socketio.server._handle_eio_message(sock.eio_sid, text)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- events that do not exist, on every namespace ---------------------------------------------------

FORGED_EVENTS = ["vote", "state", "patch", "error", "admin", "command ", "COMMAND", "x" * 5000, "", "🗳"]
RESERVED = ["connect", "disconnect", "connect_error", "disconnecting"]


@pytest.mark.parametrize("namespace", ["/hall", "/console"])
def test_unknown_and_reserved_event_names_are_refused(
    env: Env, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, secretary = env.console()
    open_registered_sitting(env, secretary)
    sock = secretary if namespace == "/console" else env.socket("/hall")
    spy, before = Spy(env), table_rows(env)
    caplog.set_level(logging.WARNING)
    for name in FORGED_EVENTS + RESERVED:
        events(sock, namespace)
        caplog.clear()
        raw(env, sock, f"2{namespace}," + json.dumps([name, {"type": "CloseSitting"}]))
        [error] = events(sock, namespace, "error")
        assert error["ok"] is False and error["reason"] in ("read_only", "bad_command"), (name, error)
        assert error["event"] == name[:60] or error["event"] == "<malformed>", (name, error)
        assert any(f"{namespace} event" in m and "refused" in m for m in warnings(caplog)), name
    assert spy.inputs == [] and table_rows(env) == before
    # the page's own connection still works: a forged "disconnect" did not end it, a forged
    # "connect" did not take its CSRF token away
    if namespace == "/console":
        assert env.command(sock, {"type": "OpenRegistration"})["ok"] is True


# --- malformed packets and commands ------------------------------------------------------------------

MALFORMED_PACKETS = [
    '2/console,["command",{"type":',  # JSON that does not parse
    '2/console,{"type":"OpenVote"}',  # not an array
    "2/console,[]",  # no event name
    "2/console,[42]",  # a name that is no string
    '2/console,[null,{"type":"OpenVote"}]',
    "2/console,",  # nothing at all
    '2/console,"command"',
    "2/console,1e999999",
]

BAD_COMMANDS: list[Any] = [
    None,
    42,
    "OpenVote",
    "{not json",
    [{"type": "OpenVote"}],
    {},
    {"type": None},
    {"type": 7},
    {"type": ["OpenVote"]},
    {"type": "DropTable"},
    {"type": "OpenVote", "kind": "by_show_of_hands"},
    {"type": "OpenVote", "duration_s": "sixty"},
    {"type": "OpenVote", "duration_s": 1.5},
    {"type": "OpenVote", "threshold": "3/2"},
    {"type": "OpenVote", "title": {"$ne": 1}},
    {"type": "OpenVote", "is_admin": True},
    {"type": "GrantFloor", "seat": 2.5},
    {"type": "GrantFloor", "seat": "1; DROP TABLE journal"},
    {"type": "SetAgenda", "items": "1,Бюджет"},
    {"type": "OpenSitting", "roster": {"deputies": []}},
    {"type": "AcknowledgeAlert", "id": "1"},
    {"type": "ImportAgenda", "csv": 5},
    {"type": "OpenVote", "command_id": "../../etc"},
    {"type": "OpenVote", "command_id": ""},
    {"type": "OpenVote", "command_id": 5},
    {"type": "OpenVote", "command_id": "x" * 65},
    {"type": "OpenVote", "kind": "rating", "proposals": {"a": 1}},
]


def test_malformed_packets_and_commands_are_refused(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    _, sock = env.console()
    open_registered_sitting(env, sock)
    spy, before = Spy(env), table_rows(env)
    caplog.set_level(logging.WARNING)
    for text in MALFORMED_PACKETS:
        events(sock, "/console")
        caplog.clear()
        raw(env, sock, text)
        [error] = events(sock, "/console", "error")
        assert error["reason"] == "bad_command", (text, error)
        assert warnings(caplog), text
    for command in BAD_COMMANDS:
        events(sock, "/console")
        caplog.clear()
        reply = sock.emit("command", command, namespace="/console", callback=True)
        assert reply["ok"] is False and reply["reason"] == "bad_command", (command, reply)
        assert reply["message"] and reply["detail"]
        [error] = events(sock, "/console", "error")
        assert error["reason"] == "bad_command"
        assert any("refused" in m for m in warnings(caplog)), command
    assert spy.inputs == [] and table_rows(env) == before
    assert sock.is_connected("/console")


def test_a_command_without_its_csrf_token_is_never_applied(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    client, secretary = env.console()
    open_registered_sitting(env, secretary)
    spy, before = Spy(env), table_rows(env)
    caplog.set_level(logging.WARNING)
    bare = env.socket("/console", client)  # the session's cookie, but no token in the auth
    forged = env.socket("/console", client, {"csrf": "forged"})
    cases: list[tuple[Any, dict[str, Any]]] = [
        (bare, {"type": "OpenVote"}),
        (bare, {"type": "OpenVote", "csrf": ""}),
        (bare, {"type": "OpenVote", "csrf": None}),
        (bare, {"type": "OpenVote", "csrf": "forged"}),
        (forged, {"type": "OpenVote"}),
        (secretary, {"type": "OpenVote", "csrf": "forged"}),  # a wrong one counts even after a good auth
    ]
    for sock, command in cases:
        events(sock, "/console")
        reply = env.command(sock, command)
        assert reply["reason"] == "csrf", (command, reply)
        assert events(sock, "/console", "error")[0]["reason"] == "csrf"
    assert sum("csrf" in m for m in warnings(caplog)) >= 6
    assert spy.inputs == [] and table_rows(env) == before


# --- replayed commands -------------------------------------------------------------------------------


def speech_limit(env: Env) -> int:
    [speaking] = env.web.publisher.hall.whole(0)["speakers"]["speaking"]
    return int(speaking["limit_s"])


def test_without_an_id_a_repeated_command_is_applied_twice(env: Env) -> None:
    """Why command ids exist: the sitting's rules do not refuse every repeat.  A second ExtendSpeech
    gives the speaker the extra time again; the server cannot tell it from a second click."""
    _, sock = env.console()
    open_registered_sitting(env, sock)
    assert env.command(sock, {"type": "GrantFloor", "seat": 2, "limit_s": 60})["ok"]
    for _ in range(2):
        assert env.command(sock, {"type": "ExtendSpeech", "seat": 2, "extra_s": 30})["ok"]
    env.publisher.tick()
    assert speech_limit(env) == 120


def test_a_replayed_command_id_is_applied_once(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    client, sock = env.console()
    open_registered_sitting(env, sock)
    assert env.command(sock, {"type": "GrantFloor", "seat": 2, "limit_s": 60})["ok"]
    extend = {"type": "ExtendSpeech", "seat": 2, "extra_s": 30, "command_id": "a1b2c3"}
    first = env.command(sock, extend)
    assert first["ok"] is True and "replayed" not in first
    spy, before = Spy(env), table_rows(env)
    caplog.set_level(logging.WARNING)
    # the same packet again, on the same connection and on another of the same session
    other = env.socket("/console", client, {"csrf": csrf_of(client)})
    for s in (sock, other, sock):
        again = s.emit("command", extend, namespace="/console", callback=True)
        assert again == {**first, "replayed": True}
    assert spy.inputs == [] and table_rows(env) == before
    assert sum("sent command a1b2c3 again" in m for m in warnings(caplog)) == 3
    env.publisher.tick()
    assert speech_limit(env) == 90
    # a refusal is remembered too: the repeat gets the same refusal, still not run again
    bad = {"type": "RevokeFloor", "seat": 4, "command_id": "r-1"}
    refused = env.command(sock, bad)
    assert refused["reason"] == "not_speaking"
    assert sock.emit("command", bad, namespace="/console", callback=True) == {**refused, "replayed": True}
    # a new id is a new command
    assert env.command(sock, {**extend, "command_id": "a1b2c4"})["ok"]
    env.publisher.tick()
    assert speech_limit(env) == 120


def test_command_ids_belong_to_their_session(env: Env) -> None:
    """Another user's session (or a new log-in) sending the same id runs its own command: ids are
    per session, so nobody can block another's commands by guessing ids."""
    _, anna = env.console("secretary", "anna")
    open_registered_sitting(env, anna)
    _, petro = env.console("chair", "petro")
    assert env.command(anna, {"type": "GrantFloor", "seat": 2, "limit_s": 60, "command_id": "same"})["ok"]
    assert env.command(petro, {"type": "GrantFloor", "seat": 3, "limit_s": 60, "command_id": "same"})["ok"]
    env.publisher.tick()
    speaking = env.web.publisher.hall.whole(0)["speakers"]["speaking"]
    assert sorted(s["seat"] for s in speaking) == [2, 3]


def test_a_repeat_while_the_first_still_runs_is_refused() -> None:
    seen = command_ids.SeenCommands()
    assert seen.claim("s", "c") is None
    running = seen.claim("s", "c")
    assert running is not None and command_ids.running(running)
    seen.settle("s", "c", {"ok": True, "seq": 5})
    assert seen.claim("s", "c") == {"ok": True, "seq": 5}
    seen.release("s", "d")  # nothing to release
    assert seen.claim("s", "d") is None
    seen.release("s", "d")  # its run raised: a repeat may run
    assert seen.claim("s", "d") is None


def test_the_memory_of_ids_is_bounded() -> None:
    seen = command_ids.SeenCommands(per_session=3, sessions=2)
    for i in range(5):
        assert seen.claim("s", f"c{i}") is None
    assert seen.claim("s", "c4") is not None and seen.claim("s", "c0") is None  # the oldest forgotten
    for s in ("t", "u"):
        seen.claim(s, "x")
    assert seen.claim("s", "c4") is None  # session s was the oldest of three: forgotten


def test_logging_out_forgets_the_sessions_ids(env: Env) -> None:
    client, sock = env.console()
    open_registered_sitting(env, sock)
    env.command(sock, {"type": "GrantFloor", "seat": 2, "limit_s": 60, "command_id": "g"})
    [who] = env.web.sockets.values()
    assert env.web.seen.claim(who.session_id, "g") is not None
    client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert env.web.seen.claim(who.session_id, "g") is None


# --- huge payloads on a real server -----------------------------------------------------------------


def test_a_packet_over_the_size_limit_closes_only_its_connection(tmp_path: Path) -> None:
    """max_http_buffer_size (1 MiB): a bigger message ends that websocket; the server serves on."""
    env = make_env(tmp_path)
    server = WebServer(env.app, env.socketio, "127.0.0.1", 0)
    server.start()
    try:
        before = table_rows(env)
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        ws = simple_websocket.Client.connect(url)
        try:
            assert ws.receive(timeout=10).startswith("0{")
            ws.send("40/hall,")
            ws.receive(timeout=10)
            ws.send('42/hall,["command",{"csv":"' + "x" * (2 * 1024 * 1024) + '"}]')
            deadline = time.monotonic() + 10
            closed = False
            while time.monotonic() < deadline and not closed:
                try:
                    ws.receive(timeout=1)
                except simple_websocket.ConnectionClosed:
                    closed = True
            assert closed
        finally:
            with contextlib.suppress(simple_websocket.ConnectionClosed):
                ws.close()
        with urllib.request.urlopen(server.url("/healthz"), timeout=10) as resp:
            assert json.loads(resp.read()) == {"ok": True}
        assert table_rows(env) == before
    finally:
        server.stop()
        env.close()

"""The role matrix of docs/web-protocol.md, end to end: every command the console can send, sent as
every role (and as nobody) through the real ``/console`` Socket.IO namespace to a real engine over a
SQLite journal.

An allowed command reaches the engine (a spy on ``engine.submit`` sees it; the engine may still refuse
it by the sitting's rules, with one of its own reasons); a refused one gets ``forbidden`` in its ack and
an ``error`` event, leaves a warning naming the user, the role and the command in the log, and is
never applied: the engine is not asked and the journal (every row of every table) is unchanged.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from typing import Any

import pytest
from test_web_app import Env, events, open_registered_sitting

from display import commands as cmd
from display import reasons

#: A well-formed body of every command the web may send: a new command fails
#: ``test_every_command_has_a_body`` until it has one here, so none escapes the matrix.
BODIES: dict[str, dict[str, Any]] = {
    "AnnounceResult": {},
    "CancelVote": {"reason": "помилка в проєкті"},
    "ChairPriority": {},
    "ClearResult": {},
    "CloseRegistration": {},
    "CloseSitting": {},
    "CloseVote": {},
    "ExtendSpeech": {"seat": 2, "extra_s": 30},
    "GrantFloor": {"seat": 2, "limit_s": 60},
    "NextSpeaker": {},
    "OpenRegistration": {},
    "OpenSitting": {"title": "Позачергове засідання"},
    "OpenVote": {"title": "Про бюджет"},
    "RegisterDeputy": {"deputy": 1, "reason": "пульт не працює"},
    "RequestFloor": {"seat": 3},
    "RevokeFloor": {"seat": 2},
    "SetAgenda": {"items": [{"number": "1", "title": "Про бюджет", "draft": "757/2"}]},
    "SetCurrentItem": {"number": "1"},
    "WithdrawRequest": {"seat": 3},
    "AcknowledgeAlert": {"id": 1},
    "ImportAgenda": {"csv": "1,Про бюджет,757/2\n"},
}
ROLES = ("secretary", "chair", "operator", "observer")
ALL_COMMANDS = sorted(cmd.ENGINE_COMMANDS | set(cmd.WEB_COMMANDS))


def table_rows(env: Env) -> list[str]:
    """Every row of every table of the store, as SQL (the journal, the sittings, the chain heads...)."""
    url = str(env.journal.engine.url)
    path = url.removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        return [line for line in con.iterdump() if line.startswith("INSERT")]
    finally:
        con.close()


class Spy:
    """Every input handed to the engine (wrapping the real ``submit``: the engine still runs it)."""

    def __init__(self, env: Env) -> None:
        self.inputs: list[Any] = []
        real = env.engine.submit

        def submit(event: Any) -> Any:
            self.inputs.append(event)
            return real(event)

        env.engine.submit = submit  # type: ignore[method-assign]


def test_every_command_has_a_body() -> None:
    assert set(BODIES) == set(ALL_COMMANDS)
    assert not set(BODIES) & cmd.NOT_FROM_WEB


def test_every_command_as_every_role(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    _, secretary = env.console("secretary", "anna")
    open_registered_sitting(env, secretary)
    socks = {"secretary": secretary}
    for role in ROLES[1:]:
        socks[role] = env.console(role, f"user_{role}")[1]
    spy = Spy(env)
    caplog.set_level(logging.WARNING)
    allowed = refused = 0
    for kind in ALL_COMMANDS:
        for role in ROLES:
            sock = socks[role]
            events(sock, "/console")
            caplog.clear()
            before_rows, before_inputs = table_rows(env), len(spy.inputs)
            reply = env.command(sock, {"type": kind, **BODIES[kind]})
            if cmd.allowed(role, kind):
                allowed += 1
                assert reply.get("reason") not in ("forbidden", "bad_command"), (role, kind, reply)
                if kind == "AcknowledgeAlert":  # the web's own: the alert book answers, not the engine
                    assert reply["ok"] or reply["reason"] == "unknown_alert", reply
                    assert len(spy.inputs) == before_inputs
                else:
                    assert [type(i).__name__ for i in spy.inputs[before_inputs:]] == [
                        "SetAgenda" if kind == "ImportAgenda" else kind
                    ], (role, kind, reply)
                    assert reply["ok"] or reply["reason"] in reasons.CORE_REASONS, (role, kind, reply)
                    if env.engine.snapshot().phase.value == "no_sitting":  # CloseSitting went through
                        open_registered_sitting(env, secretary)
                continue
            refused += 1
            assert reply["ok"] is False and reply["reason"] == "forbidden", (role, kind, reply)
            assert role in reply["message"]
            [error] = events(sock, "/console", "error")
            assert error["event"] == "command" and error["reason"] == "forbidden"
            assert len(spy.inputs) == before_inputs, (role, kind)
            assert table_rows(env) == before_rows, (role, kind)
            lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert any(f"user_{role} ({role}) refused: forbidden" in m and kind in m for m in lines), lines
    # the matrix of docs/web-protocol.md: secretary and chair everything, the operator the floor and
    # the alerts, the observer nothing
    assert (allowed, refused) == (2 * 21 + 8, 13 + 21)


def test_no_role_sends_a_seat_or_engine_input(env: Env) -> None:
    socks = {role: env.console(role, f"user_{role}")[1] for role in ROLES}
    open_registered_sitting(env, socks["secretary"])
    spy, before = Spy(env), table_rows(env)
    forged = {"seat": 1, "key": 3, "uid": "00000001", "vote": 1, "counts": [5, 0, 0], "reason": "x"}
    for kind in sorted(cmd.NOT_FROM_WEB):
        for role, sock in socks.items():
            events(sock, "/console")
            reply = env.command(sock, {"type": kind, **forged})
            assert reply["reason"] == "bad_command", (role, kind, reply)
            assert events(sock, "/console", "error")[-1]["reason"] == "bad_command"
    assert spy.inputs == [] and table_rows(env) == before


def test_nobody_logged_in_cannot_connect_nor_command(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    """Anonymous: the /console connection is refused; a command packet pushed onto the wire without a
    connection, and a ``command`` on the public namespace, are refused too; nothing is applied."""
    _, secretary = env.console()
    open_registered_sitting(env, secretary)
    spy, before = Spy(env), table_rows(env)
    caplog.set_level(logging.WARNING)
    client = env.app.test_client()
    anonymous = env.socket("/console", client)
    assert not anonymous.is_connected("/console")
    assert any("without a log-in refused" in r.getMessage() for r in caplog.records)
    hall = env.socket("/hall", client)
    for kind in ALL_COMMANDS:
        events(hall, "/hall")
        hall.emit("command", {"type": kind, **BODIES[kind]}, namespace="/hall")
        [error] = events(hall, "/hall", "error")
        assert error["reason"] == "read_only", (kind, error)
        # the same command as a raw packet for /console, which this client never joined
        packet = "2/console," + json.dumps(["command", {"type": kind}])
        env.socketio.server._handle_eio_message(hall.eio_sid, packet)
    assert spy.inputs == [] and table_rows(env) == before
    assert sum("/hall event 'command'" in r.getMessage() for r in caplog.records) == len(ALL_COMMANDS)
    dropped = [r for r in caplog.records if "is not connected to namespace /console" in r.getMessage()]
    assert len(dropped) == len(ALL_COMMANDS)  # python-socketio drops them; the log says so

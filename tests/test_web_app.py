"""The web server: routes, the /hall and /console namespaces, the publisher's patches, the virtual seat,
the public pages from the journal, a real server on a socket and ``chamber run`` serving the pages.

Everything runs against a real Engine over a temporary SQLite journal.  The publisher's thread is not
started in these tests: they call ``publisher.tick()`` themselves, so every patch is the one the test
asked for (no sleeping in the hope that a thread got there).
"""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import simple_websocket
from flask import Flask
from flask.testing import FlaskClient
from flask_socketio import SocketIO, SocketIOTestClient
from test_web_state import web_config
from waiting import wait_for

from chamber.config import Config
from chamber.core import events as ev
from chamber.core.snapshot import Snapshot
from chamber.core.values import Key
from chamber.engine import Engine
from chamber.journal import Journal
from display import reasons
from display.app import WebServer, create_app
from display.publisher import Publisher

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


@dataclass
class Env:
    """A started engine over a fresh journal, and the web app made for it."""

    config: Config
    journal: Journal
    engine: Engine
    app: Flask
    socketio: SocketIO
    sockets: list[SocketIOTestClient] = field(default_factory=list)

    @property
    def web(self) -> Any:
        return self.app.extensions["chamber"]

    @property
    def publisher(self) -> Publisher:
        publisher: Publisher = self.web.publisher
        return publisher

    def close(self) -> None:
        for s in self.sockets:
            for ns in ("/hall", "/console"):
                if s.is_connected(ns):
                    s.disconnect(ns)
        self.engine.stop()
        self.journal.close()

    def user(self, name: str = "anna", role: str = "secretary") -> str:
        self.web.users.add(name, role, PASSWORD)
        return name

    def login(self, client: FlaskClient, name: str = "anna", role: str | None = "secretary") -> str:
        """Log ``client`` in (making the user first unless ``role`` is None); the session's CSRF token."""
        if role is not None:
            self.user(name, role)
        token = csrf_of(client)
        resp = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
        assert resp.status_code == 302, resp.text
        return csrf_of(client)

    def socket(self, namespace: str, client: FlaskClient | None = None, auth: dict[str, Any] | None = None) -> Any:
        s = self.socketio.test_client(self.app, namespace=namespace, flask_test_client=client, auth=auth)
        self.sockets.append(s)
        return s

    def console(self, role: str = "secretary", name: str = "anna") -> tuple[FlaskClient, Any]:
        """A logged-in browser with its /console connection (CSRF in the auth, as console.js sends it)."""
        client = self.app.test_client()
        token = self.login(client, name, role)
        sock = self.socket("/console", client, {"csrf": token, "lang": "uk"})
        assert sock.is_connected("/console")
        return client, sock

    def command(self, sock: Any, command: dict[str, Any]) -> dict[str, Any]:
        """Send a command; once the engine took it, wait (bounded) for the snapshot that shows it."""
        before = self.engine.snapshot()
        reply: dict[str, Any] = sock.emit("command", command, namespace="/console", callback=True)
        if "seq" in reply or reply.get("reason") in reasons.CORE_REASONS:
            self.published(before)
        return reply

    def seat_event(self, event: ev.Input, accepted: bool = True) -> None:
        """What a line loop does (the web never can): a console's event into the engine."""
        before = self.engine.snapshot()
        outcome = self.engine.execute(event)
        assert outcome.accepted is accepted, outcome
        self.published(before)

    def published(self, before: Snapshot) -> None:
        """The engine publishes a new snapshot after every input it applied: a command at once, a seat
        event within its cap, SNAPSHOT_EVERY_MS (and the command's after its Future is answered)."""
        wait_for(lambda: self.engine.snapshot() is not before, timeout=10, what="the engine's next snapshot")


def make_env(tmp_path: Path, seats: int = 5, **kwargs: Any) -> Env:
    config = web_config(seats)
    journal = Journal(f"sqlite:///{tmp_path / 'store' / 'chamber.db'}")
    engine = Engine(journal)
    engine.start()
    app, socketio = create_app(engine, config, **kwargs)
    app.config["TESTING"] = True
    return Env(config, journal, engine, app, socketio)


def csrf_of(client: FlaskClient) -> str:
    """The session's CSRF token (a GET of the log-in page makes one)."""
    with client.session_transaction() as s:
        if "csrf" not in s:
            client.get("/login")
    with client.session_transaction() as s:
        return str(s["csrf"])


def events(sock: Any, namespace: str, name: str | None = None) -> list[Any]:
    got = sock.get_received(namespace)
    return [m["args"][0] for m in got if name is None or m["name"] == name]


def open_registered_sitting(env: Env, sock: Any, seats: int = 5) -> None:
    assert env.command(sock, {"type": "OpenSitting", "title": "Пленарне засідання"})["ok"]
    for i in range(1, seats + 1):
        env.seat_event(ev.CardInserted(seat=i, uid=f"{i:08X}"))
    assert env.command(sock, {"type": "OpenRegistration"})["ok"]
    for i in range(1, seats + 1):
        env.seat_event(ev.KeyPressed(seat=i, key=Key.REGISTER))
    assert env.command(sock, {"type": "CloseRegistration"})["ok"]


# --- routes -------------------------------------------------------------------------------------------


def test_pages_anyone_may_see(env: Env) -> None:
    client = env.app.test_client()
    for path in ("/", "/hall", "/overlay", "/login", "/public"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/healthz").json == {"ok": True}
    state: dict[str, Any] = client.get("/api/state").json or {}
    assert state["phase"] == "no_sitting" and state["rev"] >= 1 and "console" not in state
    assert state["council"]["name"] == "Тестова міська рада"
    assert "Тестова" in client.get("/api/state").get_data(as_text=True)  # UTF-8, not \\u escapes


def test_the_console_needs_a_log_in(env: Env) -> None:
    client = env.app.test_client()
    resp = client.get("/console")
    assert resp.status_code == 302 and resp.headers["Location"] == "/login?next=/console"
    env.login(client)
    resp = client.get("/console")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    assert csrf_of(client) in resp.get_data(as_text=True)  # the page carries its token for the socket


def test_the_language_comes_from_the_query_and_is_remembered(env: Env) -> None:
    client = env.app.test_client()
    resp = client.get("/hall?lang=en")
    assert 'lang="en"' in resp.get_data(as_text=True)
    assert "lang=en" in resp.headers["Set-Cookie"]
    assert 'lang="en"' in client.get("/hall").get_data(as_text=True)
    assert 'lang="uk"' in client.get("/hall?lang=uk").get_data(as_text=True)
    assert 'lang="uk"' in client.get("/hall?lang=xx").get_data(as_text=True)


def test_a_log_in_returns_only_to_a_page_of_this_site(env: Env) -> None:
    env.user()
    for target, expected in (
        ("/hall", "/hall"),
        ("//evil.example/x", "/console"),
        ("https://evil.example", "/console"),
    ):
        client = env.app.test_client()
        token = csrf_of(client)
        resp = client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token, "next": target})
        assert resp.headers["Location"] == expected, target


# --- /hall ------------------------------------------------------------------------------------------


def test_hall_gets_the_state_then_patches_with_consecutive_revs(env: Env) -> None:
    hall = env.socket("/hall")
    [state] = events(hall, "/hall", "state")
    assert state["phase"] == "no_sitting" and isinstance(state["clock_ms"], int)
    rev = state["rev"]
    _, sock = env.console()
    env.command(sock, {"type": "OpenSitting", "title": "Засідання"})
    env.publisher.tick()
    [patch] = events(hall, "/hall", "patch")
    assert patch["rev"] == rev + 1
    assert patch["phase"] == "idle" and patch["sitting"] == {"open": True, "number": 1, "title": "Засідання"}
    env.publisher.tick()  # nothing changed: nothing sent
    assert events(hall, "/hall") == []
    env.seat_event(ev.CardInserted(seat=3, uid="00000003"))
    env.publisher.tick()
    [patch] = events(hall, "/hall", "patch")
    assert patch == {"seats": {"3": {"deputy": 3}}, "rev": rev + 2, "clock_ms": patch["clock_ms"]}
    hall.emit("resync", namespace="/hall")
    [again] = events(hall, "/hall", "state")
    assert again["rev"] == rev + 2 and again["seats"]["3"]["deputy"] == 3


def test_hall_is_read_only_every_event_is_refused_and_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    hall = env.socket("/hall")
    events(hall, "/hall")
    caplog.set_level(logging.WARNING, logger="display.app")
    reply = hall.emit("command", {"type": "OpenSitting"}, namespace="/hall", callback=True)
    assert reply["ok"] is False and reply["reason"] == "read_only"
    [error] = events(hall, "/hall", "error")
    assert error["event"] == "command" and error["reason"] == "read_only"
    hall.emit("patch", {"phase": "vote_open"}, namespace="/hall")
    assert events(hall, "/hall", "error")[0]["event"] == "patch"
    assert env.engine.snapshot().phase.value == "no_sitting"  # nothing applied
    assert sum("/hall event" in r.getMessage() and "refused" in r.getMessage() for r in caplog.records) == 2


# --- /console ----------------------------------------------------------------------------------------


def test_console_refuses_a_connection_without_a_log_in(env: Env) -> None:
    client = env.app.test_client()
    sock = env.socket("/console", client)
    assert not sock.is_connected("/console")
    sock2 = env.socket("/console")
    assert not sock2.is_connected("/console")


def test_console_state_carries_the_user_and_the_console_part(env: Env) -> None:
    _, sock = env.console(role="chair", name="ivan")
    [state] = events(sock, "/console", "state")
    console = state["console"]
    assert console["user"] == {"name": "ivan", "role": "chair"}
    assert set(console) == {
        "user", "not_voted", "seat_health", "alerts", "max_open_mics", "lines", "simulator", "sitting_uid",
    }  # fmt: skip
    assert console["simulator"] is False and sorted(console["seat_health"], key=int) == ["1", "2", "3", "4", "5"]
    assert console["sitting_uid"] is None  # no sitting yet: the export panel has nothing to link


def test_the_export_panel_links_the_open_sittings_files_and_then_the_last_ones(env: Env) -> None:
    """The console state names the sitting whose files the export panel links (/public/files/<uid>/...):
    the open one, and once it is closed still that one, also for a web app started afterwards."""
    client, sock = env.console()
    page = client.get("/console").text
    assert 'data-export="protocol"' in page and 'data-export="sheet"' in page and "без електронного підпису" in page
    open_registered_sitting(env, sock)
    env.publisher.tick()
    uid = env.engine.sitting_uid
    assert uid is not None
    [patch] = [p for p in events(sock, "/console", "patch") if "sitting_uid" in p.get("console", {})]
    assert patch["console"]["sitting_uid"] == uid
    assert env.command(sock, {"type": "CloseSitting"})["ok"]
    env.publisher.tick()
    assert env.publisher.console.whole(0)["console"]["sitting_uid"] == uid  # closed, still the one to export
    later = Publisher(env.engine, env.web.chamber, lambda *a, **k: None, clock=lambda: 0)
    assert later.console.whole(0)["console"]["sitting_uid"] == uid  # a restart finds it in the journal


def test_a_whole_vote_through_the_console(env: Env) -> None:
    _, sock = env.console()
    hall = env.socket("/hall")
    open_registered_sitting(env, sock)
    env.publisher.tick()
    events(sock, "/console")
    events(hall, "/hall")
    reply = env.command(sock, {"type": "OpenVote", "kind": "roll_call", "title": "Про бюджет", "duration_s": 0})
    assert reply == {"ok": True, "seq": reply["seq"]}
    env.seat_event(ev.KeyPressed(seat=2, key=Key.YES))
    env.publisher.tick()
    [cpatch] = events(sock, "/console", "patch")
    assert cpatch["console"]["not_voted"] == [1, 3, 4, 5]
    assert cpatch["seats"]["2"] == {"voted": True}
    [hpatch] = events(hall, "/hall", "patch")
    assert "console" not in hpatch and hpatch["vote"]["open"] is True and hpatch["vote"]["cast"] == 1
    for seat in (1, 3, 4):
        env.seat_event(ev.KeyPressed(seat=seat, key=Key.YES))
    assert env.command(sock, {"type": "CloseVote"})["ok"]
    assert env.command(sock, {"type": "AnnounceResult"})["ok"]
    env.publisher.tick()
    [hpatch] = events(hall, "/hall", "patch")
    result = hpatch["vote"]["result"]
    assert result["adopted"] is True and result["result_uk"] == "Прийнято" and result["counts"] == [4, 0, 0]
    assert hpatch["seats"]["1"]["choice"] == "yes" and hpatch["phase"] == "result_shown"
    # the journal has it all, and the public pages read it from there
    client = env.app.test_client()
    uid = env.engine.sitting_uid
    assert uid is not None
    page = client.get(f"/public/sitting/{uid}")
    assert page.status_code == 200
    assert client.get(f"/public/vote/{uid}/1").status_code == 200
    assert client.get(f"/public/vote/{uid}/2").status_code == 404
    assert client.get("/public/sitting/nope").status_code == 404
    assert client.get("/public/deputy/1").status_code == 200
    assert client.get("/public/deputy/99").status_code == 404


def test_the_public_archive_replays_the_journal_and_follows_it(env: Env) -> None:
    _, sock = env.console()
    open_registered_sitting(env, sock)
    archive = env.web.archive
    uid = env.engine.sitting_uid
    assert uid is not None
    first = archive.summary(uid)
    assert first["votes"] == 0 and first["open"] is True and first["number"] == 1
    env.command(sock, {"type": "OpenVote", "kind": "roll_call", "title": "Про бюджет", "duration_s": 0})
    env.seat_event(ev.KeyPressed(seat=1, key=Key.NO))
    env.command(sock, {"type": "CloseVote"})
    later = archive.summary(uid)
    assert later["votes"] == 1 and later["records"] > first["records"]
    last = env.journal.last_record(uid)
    assert last is not None and later["head"] == f"{later['records']}:{last.hash}"
    snap = archive.replayed(uid).snapshot
    assert snap.results[0].counts == (0, 1, 0)
    assert snap == env.engine.snapshot()  # the replay reaches the live state exactly


def test_alerts_reach_the_console_and_are_acknowledged(env: Env) -> None:
    _, sock = env.console()
    assert env.command(sock, {"type": "OpenSitting"})["ok"]
    env.seat_event(ev.CardInserted(seat=1, uid="00000002"), accepted=False)  # deputy 2's card at seat 1
    env.publisher.tick()
    [patch] = [p for p in events(sock, "/console", "patch") if "alerts" in p.get("console", {})]
    [alert] = patch["console"]["alerts"]
    assert alert["kind"] == "wrong_seat" and alert["seat"] == 1 and alert["deputy"] == 2
    assert alert["acknowledged"] is False
    assert env.command(sock, {"type": "AcknowledgeAlert", "id": alert["id"]}) == {"ok": True}
    env.publisher.tick()
    [patch] = events(sock, "/console", "patch")
    assert patch["console"]["alerts"][0]["acknowledged"] is True


def test_forged_console_events_are_refused_with_an_error_and_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    _, sock = env.console()
    events(sock, "/console")
    caplog.set_level(logging.WARNING)
    # a console event from the web
    reply = env.command(sock, {"type": "KeyPressed", "seat": 1, "key": 2})
    assert reply["reason"] == "bad_command"
    assert events(sock, "/console", "error")[0]["reason"] == "bad_command"
    # an unknown type, and an event this namespace does not have
    assert env.command(sock, {"type": "DropTable"})["reason"] == "bad_command"
    sock.emit("vote", {"seat": 1}, namespace="/console")
    errors = events(sock, "/console", "error")
    assert [e["event"] for e in errors] == ["command", "vote"]
    # JSON that does not parse, straight onto the wire
    env.socketio.server._handle_eio_message(sock.eio_sid, '2/console,["command",{"type":')
    [error] = events(sock, "/console", "error")
    assert error["reason"] == "bad_command" and "JSON" in error["detail"]
    # an event that is not an array
    env.socketio.server._handle_eio_message(sock.eio_sid, '2/console,{"type":"OpenVote"}')
    assert events(sock, "/console", "error")[0]["reason"] == "bad_command"
    assert env.engine.snapshot().phase.value == "no_sitting"  # nothing reached the engine
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) >= 5


def test_an_observer_reads_but_cannot_open_a_vote(env: Env) -> None:
    _, secretary = env.console()
    open_registered_sitting(env, secretary)
    env.publisher.tick()  # a page that connects gets the state the publisher sent last
    _, observer = env.console(role="observer", name="olha")
    [state] = events(observer, "/console", "state")
    assert state["console"]["user"]["role"] == "observer" and state["phase"] == "idle"
    reply = env.command(observer, {"type": "OpenVote", "title": "Про бюджет"})
    assert reply["reason"] == "forbidden" and "observer" in reply["message"]
    assert events(observer, "/console", "error")[0]["reason"] == "forbidden"
    assert env.engine.snapshot().phase.value == "idle"


def test_an_operator_gives_the_floor_but_does_not_vote(env: Env) -> None:
    _, secretary = env.console()
    open_registered_sitting(env, secretary)
    _, operator = env.console(role="operator", name="petro")
    assert env.command(operator, {"type": "GrantFloor", "seat": 2, "limit_s": 60})["ok"] is True
    assert env.command(operator, {"type": "OpenVote"})["reason"] == "forbidden"
    assert env.command(operator, {"type": "SetAgenda", "items": []})["reason"] == "forbidden"


def test_a_command_without_the_csrf_token_is_refused(env: Env) -> None:
    client = env.app.test_client()
    token = env.login(client)
    sock = env.socket("/console", client)  # no token in the auth
    assert sock.is_connected("/console")
    events(sock, "/console")
    reply = env.command(sock, {"type": "OpenSitting"})
    assert reply["reason"] == "csrf"
    assert events(sock, "/console", "error")[0]["reason"] == "csrf"
    assert env.command(sock, {"type": "OpenSitting", "csrf": "forged"})["reason"] == "csrf"
    assert env.command(sock, {"type": "OpenSitting", "csrf": token})["ok"] is True
    wrong = env.socket("/console", client, {"csrf": "forged"})  # a wrong token in the auth counts for nothing
    assert env.command(wrong, {"type": "CloseSitting"})["reason"] == "csrf"


def test_the_role_is_read_on_every_command(env: Env) -> None:
    _, sock = env.console()
    env.web.users.set_role("anna", "observer")
    assert env.command(sock, {"type": "OpenSitting"})["reason"] == "forbidden"


def test_logging_out_ends_the_console_connections_of_that_session(env: Env) -> None:
    client, sock = env.console()
    copied = {c.key: c.value for c in (client._cookies or {}).values()}
    resp = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert resp.status_code == 302
    assert not sock.is_connected("/console")
    # the cookie as it was before the log-out (copied by someone) opens nothing any more
    other = env.app.test_client()
    for key, value in copied.items():
        other.set_cookie(key, value)
    assert other.get("/console").status_code == 302


# --- the virtual seat ----------------------------------------------------------------------------------


class _FakePressApi(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _reply(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.calls.append(("GET", self.path, None))
        self._reply({"1": {"led_names": ["card_ok"], "mode_name": "idle"}, "2": {}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append(("POST", self.path, body))
        self._reply(body)


def test_the_virtual_seat_presses_through_the_simulator(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakePressApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _FakePressApi.calls.clear()
    env = make_env(tmp_path, simulator_url=f"http://127.0.0.1:{server.server_port}")
    try:
        client = env.app.test_client()
        assert client.get("/seat/1").status_code == 302  # logged in only
        token = env.login(client)
        page = client.get("/seat/1")
        assert page.status_code == 200
        assert client.get("/seat/99").status_code == 404
        assert client.get("/seat/1/state").json == {"led_names": ["card_ok"], "mode_name": "idle"}
        headers = {"X-CSRF-Token": token}
        resp = client.post("/seat/1/press", json={"key": "yes", "seat": 4}, headers=headers)
        assert resp.status_code == 200
        assert ("POST", "/press", {"key": "yes", "seat": 1}) in _FakePressApi.calls  # the page's own seat only
        client.post("/seat/1/card", json={}, headers=headers)
        assert ("POST", "/card", {"uid": "00000001", "seat": 1}) in _FakePressApi.calls  # its deputy's card
        assert client.post("/seat/1/press", json={"key": "yes"}).status_code == 400  # no CSRF token
        assert client.post("/seat/1/reboot", json={}, headers=headers).status_code == 404
        console = env.socket("/console", client, {"csrf": token})
        assert events(console, "/console", "state")[0]["console"]["simulator"] is True
        watcher = env.app.test_client()
        watcher_token = env.login(watcher, name="olha", role="observer")
        assert watcher.get("/seat/1").status_code == 200  # an observer may look
        calls = len(_FakePressApi.calls)
        refused = watcher.post("/seat/1/press", json={"key": "no"}, headers={"X-CSRF-Token": watcher_token})
        assert refused.status_code == 403 and refused.json["reason"] == "forbidden"
        assert refused.json["message"] == "Ваша роль (observer) не дозволяє цю дію"
        assert len(_FakePressApi.calls) == calls  # nothing reached the simulator
    finally:
        env.close()
        server.shutdown()


def test_without_the_simulator_there_is_no_virtual_seat(env: Env) -> None:
    client = env.app.test_client()
    env.login(client)
    assert client.get("/seat/1").status_code == 404


# --- served for real --------------------------------------------------------------------------------------


def test_a_real_server_speaks_socket_io_over_a_websocket(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    server = WebServer(env.app, env.socketio, "127.0.0.1", 0)
    server.start()
    try:
        with urllib.request.urlopen(server.url("/healthz"), timeout=10) as resp:
            assert json.loads(resp.read()) == {"ok": True}
        ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket")
        try:
            assert ws.receive(timeout=10).startswith("0{")  # engine.io open
            ws.send("40/hall,")
            got = [ws.receive(timeout=10), ws.receive(timeout=10)]
            [state_msg] = [m for m in got if m.startswith("42/hall,")]
            name, state = json.loads(state_msg[len("42/hall,") :])
            assert name == "state" and state["council"]["name"] == "Тестова міська рада"  # UTF-8 on the wire
            env.engine.execute(ev.OpenSitting(roster=env.config.roster(), title="Наживо"))
            patch_msg = ws.receive(timeout=10)  # the publisher's thread sends it within its 100 ms
            name, patch = json.loads(patch_msg[len("42/hall,") :])
            assert name == "patch" and patch["rev"] == state["rev"] + 1 and patch["sitting"]["title"] == "Наживо"
        finally:
            ws.close()
    finally:
        server.stop()
        env.close()


def test_chamber_run_serves_the_pages_and_logs_where(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text(text.replace('url = "sqlite:///var/chamber.db"', 'url = "sqlite:///state/chamber.db"'))
    command = [sys.executable, "-m", "chamber.cli", "run", "--config", str(cfg), "--simulate", "--open-sitting"]
    proc = subprocess.Popen(
        [*command, "--web-port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    log: list[str] = []
    deadline = time.monotonic() + 60
    url = None
    for line in proc.stderr:
        log.append(line)
        m = re.search(r"web: console (http://127\.0\.0\.1:\d+)/console", line)
        if m:
            url = m.group(1)
            break
        assert time.monotonic() < deadline, "".join(log)
    try:
        assert url is not None, "".join(log)
        assert "hall screen " + url + "/hall" in log[-1]
        with urllib.request.urlopen(url + "/api/state", timeout=10) as resp:
            state = json.loads(resp.read())
        assert state["sitting"]["open"] is True and len(state["seats"]) == 43
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, "".join(log) + rest
    assert "web: no users yet" in "".join(log) + rest


def test_chamber_run_without_the_web(tmp_path: Path) -> None:
    from chamber.cli import build_parser

    args = build_parser().parse_args(["run", "--no-web", "--web-port", "8181"])
    assert args.no_web is True and args.web_port == 8181
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--web-port", "70000"])


def test_line_health_is_a_copy_of_the_loops_counters() -> None:
    from collections import Counter
    from types import SimpleNamespace

    from display.publisher import line_health

    links = [SimpleNamespace(seat=1, errors=Counter(crc=2)), SimpleNamespace(seat=2, errors=Counter())]
    loop = SimpleNamespace(line_id="A", links=links, stats=SimpleNamespace(cycles=7, errors=Counter(timeout=1)))
    health = line_health([loop])
    links[0].errors["crc"] += 1  # the loop's thread counts on; the copy does not move
    assert health.seat_errors == {1: {"crc": 2}}
    assert health.lines == {"A": {"cycles": 7, "errors": {"timeout": 1}}}


def test_a_web_port_in_use_is_logged_and_the_controller_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    from types import SimpleNamespace

    from chamber.daemon import start_web

    env = make_env(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        controller = SimpleNamespace(engine=env.engine, lines={})
        with caplog.at_level(logging.ERROR, logger="chamber.daemon"):
            assert start_web(controller, env.config, port=taken.getsockname()[1]) is None  # type: ignore[arg-type]
        assert any("the controller runs without the web pages" in r.getMessage() for r in caplog.records)
        server = start_web(controller, env.config, port=0)  # type: ignore[arg-type]
        assert server is not None
        try:
            with urllib.request.urlopen(server.url("/healthz"), timeout=10) as resp:
                assert resp.status == 200
        finally:
            server.stop()
    finally:
        taken.close()
        env.close()

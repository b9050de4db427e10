"""Scale-out (display/scaleout.py, display/web_main.py): a controller and two web processes on one Redis.

Everything is real: a redis-server on a free loopback port (the ``redis_url`` fixture), the engine over
a temporary SQLite journal, two web processes' apps served by Werkzeug on loopback ports, and browsers
played by python-socketio's ``AsyncClient`` over websocket (an asyncio loop in a thread of its own; the
tests talk to it synchronously).  The controller's publisher thread is not started: the tests call
``tick()`` themselves, so every patch is one the test asked for, and they wait (bounded) for what the
other side must see, never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import importlib.util
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import socketio
from test_web_state import config_text
from waiting import wait_for

from chamber.config import Config, ConfigError, parse_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Engine
from chamber.journal import Journal
from chamber.redis_local import free_port
from display import state as st
from display.app import WebServer
from display.auth import load_secret_key
from display.scaleout import (
    CHANNEL,
    COMMANDS,
    CONSUMER,
    GROUP,
    INFLIGHT,
    CommandConsumer,
    ControllerQueue,
    QueueRunner,
    Signer,
    done_key,
    reply_key,
    state_key,
)
from display.web_main import ScaledWeb, create_web_app

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
SEATS = 5


# --- browsers ---------------------------------------------------------------------------------------------


class Loop:
    """An asyncio loop in a thread: the Socket.IO clients live in it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-browsers", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Browser:
    """A page's Socket.IO connection, keeping the state as live.js does (state, then patches by rev)."""

    def __init__(self, loop: Loop, base: str, namespace: str, *, cookie: str | None = None, auth: Any = None) -> None:
        self.loop, self.base, self.namespace = loop, base, namespace
        self.cookie, self.auth = cookie, auth
        self.events: list[tuple[str, Any]] = []
        self.state: dict[str, Any] | None = None
        self.gaps = 0
        self._lock = threading.Lock()
        self.client = socketio.AsyncClient(reconnection=False)
        for name in ("state", "patch", "error"):
            self.client.on(name, self._handler(name), namespace=namespace)

    def _handler(self, name: str) -> Any:
        async def handle(data: Any) -> None:
            with self._lock:
                self.events.append((name, data))
                if name == "state":
                    self.state = data
                elif name == "patch" and self.state is not None:
                    if data["rev"] == self.state["rev"] + 1:
                        self.state = st.apply_patch(self.state, data)
                    elif data["rev"] > self.state["rev"] + 1:
                        self.gaps += 1

        return handle

    def connect(self) -> Browser:
        headers = {"Cookie": f"chamber_session={self.cookie}"} if self.cookie else {}
        self.loop.run(
            self.client.connect(
                self.base,
                namespaces=[self.namespace],
                transports=["websocket"],
                headers=headers,
                auth=self.auth,
                wait_timeout=15,
            )
        )
        return self

    @property
    def connected(self) -> bool:
        return bool(self.client.connected) and self.namespace in self.client.namespaces

    def command(self, command: dict[str, Any]) -> dict[str, Any]:
        reply: dict[str, Any] = self.loop.run(
            self.client.call("command", command, namespace=self.namespace, timeout=20)
        )
        return reply

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.events]

    def wait_rev(self, rev: int) -> dict[str, Any]:
        wait_for(lambda: self.state is not None and self.state["rev"] >= rev, timeout=15, what=f"rev {rev} on the page")
        assert self.state is not None
        return self.state

    def disconnect(self) -> None:
        if self.client.connected:
            self.loop.run(self.client.disconnect())


# --- the chamber ------------------------------------------------------------------------------------------


@dataclass
class Scaled:
    config: Config
    url: str
    store: str
    journal: Journal
    engine: Engine
    queue: ControllerQueue
    redis: redis.Redis
    webs: list[ScaledWeb] = field(default_factory=list)
    servers: list[WebServer] = field(default_factory=list)
    loop: Loop = field(default_factory=Loop)
    browsers: list[Browser] = field(default_factory=list)

    @property
    def secret(self) -> bytes:
        assert self.config.web.secret_key_file is not None
        return load_secret_key(self.config.web.secret_key_file)

    def tick(self) -> int:
        """One publisher pass; waits until both web processes' mirrors have its revision."""
        pub = self.queue.publisher
        pub.tick()
        rev = pub.hall.rev
        for web in self.webs:
            wait_for(lambda w=web: w.manager.mirrors["/hall"].rev == rev, timeout=15, what=f"rev {rev} in a mirror")
        return rev

    def execute(self, event: ev.Input) -> None:
        before = self.engine.snapshot()
        self.engine.execute(event)
        wait_for(lambda: self.engine.snapshot() is not before, timeout=10, what="the engine's next snapshot")

    def base(self, i: int) -> str:
        return self.servers[i].url("")

    def browser(self, i: int, namespace: str = "/hall", **kwargs: Any) -> Browser:
        b = Browser(self.loop, self.base(i), namespace, **kwargs).connect()
        self.browsers.append(b)
        return b

    def log_in(self, web: int = 0, name: str = "anna", role: str = "secretary") -> tuple[Any, str, str]:
        """A Flask test client logged in on web process ``web``: (client, session cookie, CSRF token)."""
        if self.webs[0].web.users.get(name) is None:
            self.webs[0].web.users.add(name, role, PASSWORD)
        client = self.webs[web].app.test_client()
        client.get("/login")
        resp = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": csrf_of(client)})
        assert resp.status_code == 302, resp.text
        cookie = client.get_cookie("chamber_session")
        assert cookie is not None
        return client, cookie.value, csrf_of(client)

    def console(self, web: int, cookie: str, csrf: str) -> Browser:
        return self.browser(web, "/console", cookie=cookie, auth={"csrf": csrf, "lang": "uk"})

    def records(self, kind: str) -> list[Any]:
        uid = self.engine.sitting_uid or (self.journal.sittings() or [""])[-1]
        return [r for r in self.journal.records(uid) if r.type == kind]

    def close(self) -> None:
        for b in self.browsers:
            with contextlib.suppress(Exception):  # a connection the server closed already
                b.disconnect()
        self.loop.close()
        for server in self.servers:
            server.stop()
        for web in self.webs:
            web.close()
        self.queue.consumer.stop()
        self.engine.stop()
        self.journal.close()
        self.redis.close()


def csrf_of(client: Any) -> str:
    with client.session_transaction() as s:
        return str(s["csrf"])


def scaled_config(tmp_path: Path, url: str, seats: int = SEATS) -> Config:
    key = tmp_path / "secret_key"
    extra = f'[web]\nmessage_queue = "{url}"\nsecret_key_file = "{key}"\n'
    return parse_config(config_text(seats, extra=extra))


def start(tmp_path: Path, url: str, webs: int = 2) -> Scaled:
    config = scaled_config(tmp_path, url)
    store = f"sqlite:///{tmp_path / 'chamber.db'}"
    journal = Journal(store)
    engine = Engine(journal)
    engine.start()
    assert config.web.secret_key_file is not None
    queue = ControllerQueue(engine, config, url, secret=load_secret_key(config.web.secret_key_file))
    queue.consumer.start()  # the publisher's thread is not started: the tests tick
    client = redis.Redis.from_url(url, decode_responses=True)
    env = Scaled(config, url, store, journal, engine, queue, client)
    try:
        for _ in range(webs):
            web = create_web_app(config, url, store_url=store)
            env.webs.append(web)
            server = WebServer(web.app, web.socketio, "127.0.0.1", 0)
            server.start()
            env.servers.append(server)
    except BaseException:
        env.close()
        raise
    return env


@pytest.fixture
def scaled(tmp_path: Path, redis_url: str) -> Iterator[Scaled]:
    env = start(tmp_path, redis_url)
    try:
        yield env
    finally:
        env.close()


def open_sitting(env: Scaled) -> None:
    env.execute(ev.OpenSitting(roster=env.config.roster(), number=1, title="Засідання"))
    for seat in range(1, SEATS + 1):
        env.execute(ev.CardInserted(seat=seat, uid=f"{seat:08X}"))


# --- states and patches ----------------------------------------------------------------------------------


def test_a_page_on_any_web_process_gets_the_whole_state_at_once_then_the_patches(scaled: Scaled) -> None:
    open_sitting(scaled)
    rev = scaled.tick()
    stored = json.loads(scaled.redis.get(state_key("/hall")) or "{}")
    assert stored["rev"] == rev and stored["phase"] == "idle"
    pages = [scaled.browser(0), scaled.browser(1)]
    for page in pages:
        assert page.names()[0] == "state"  # at once, before any change
        state = page.wait_rev(rev)
        whole = scaled.queue.publisher.hall.whole(0)
        # what the page holds is the controller's state (a null member and a missing one are the same to it)
        assert st.without_nulls({**state, "clock_ms": 0}) == st.without_nulls({**whole, "clock_ms": 0})
    scaled.execute(ev.OpenRegistration())
    scaled.execute(ev.KeyPressed(seat=3, key=Key.REGISTER))
    rev2 = scaled.tick()
    assert rev2 == rev + 1
    for page in pages:
        state = page.wait_rev(rev2)
        assert state["registration"]["registered"] == 1 and state["registration"]["open"] is True
        assert page.names() == ["state", "patch"] and page.gaps == 0


def test_a_page_that_reconnects_gets_the_current_state(scaled: Scaled) -> None:
    open_sitting(scaled)
    scaled.tick()
    page = scaled.browser(0)
    page.disconnect()
    scaled.execute(ev.OpenRegistration())
    rev = scaled.tick()
    again = scaled.browser(1)  # to the other web process, as a proxy may send it
    assert again.names()[0] == "state"
    assert again.wait_rev(rev)["registration"]["open"] is True


def test_a_gap_in_revs_makes_the_web_process_send_everyone_the_stored_state(scaled: Scaled) -> None:
    open_sitting(scaled)
    rev = scaled.tick()
    page = scaled.browser(0)
    page.wait_rev(rev)
    # A patch lost on the way (Redis reconnecting): the next one the web processes see skips a rev.
    later = {**scaled.queue.publisher.hall.whole(1), "rev": rev + 2, "phase": "registration"}
    scaled.redis.set(state_key("/hall"), json.dumps(later))
    writer = socketio.RedisManager(scaled.url, channel=CHANNEL, write_only=True)
    writer.emit("patch", {"rev": rev + 2, "clock_ms": 1, "phase": "registration"}, namespace="/hall")
    wait_for(lambda: page.names().count("state") == 2, timeout=15, what="the whole state sent again")
    assert page.state is not None and page.state["rev"] == rev + 2 and page.state["phase"] == "registration"
    assert all(web.manager.reloads == 1 for web in scaled.webs)
    # a patch older than the state read (it was in flight) is dropped, not forwarded
    writer.emit("patch", {"rev": rev + 1, "clock_ms": 1, "phase": "idle"}, namespace="/hall")
    writer.emit("patch", {"rev": rev + 3, "clock_ms": 2, "phase": "vote_open"}, namespace="/hall")
    page.wait_rev(rev + 3)
    assert page.names().count("patch") == 1 and page.state is not None and page.state["phase"] == "vote_open"


def test_a_restarted_controller_carries_on_from_the_stored_rev(scaled: Scaled) -> None:
    open_sitting(scaled)
    rev = scaled.tick()
    page = scaled.browser(0)
    page.wait_rev(rev)
    scaled.queue.consumer.stop()
    engine_journal = scaled.engine.journal
    scaled.queue = ControllerQueue(scaled.engine, scaled.config, scaled.url, secret=scaled.secret)  # as after a restart
    scaled.queue.consumer.start()
    assert scaled.queue.publisher.hall.rev == rev  # resumed: the same state, no new patch
    scaled.execute(ev.OpenRegistration())
    assert scaled.tick() == rev + 1
    state = page.wait_rev(rev + 1)
    assert state["registration"]["open"] is True and page.gaps == 0
    assert all(web.manager.reloads == 0 for web in scaled.webs)  # seamless: no state sent again
    assert engine_journal is scaled.journal


# --- commands --------------------------------------------------------------------------------------------


def test_a_command_through_either_web_process_is_executed_once_and_answered_by_the_engine(scaled: Scaled) -> None:
    _client, cookie, csrf = scaled.log_in(0)
    first = scaled.console(0, cookie, csrf)
    second = scaled.console(1, cookie, csrf)  # the same session, on the other process: the key is shared
    reply = first.command({"type": "OpenSitting", "title": "Засідання"})
    assert reply == {"ok": True, "seq": 1}
    assert len(scaled.records("OpenSitting")) == 1
    reply = second.command({"type": "OpenRegistration"})
    assert reply["ok"] is True
    [record] = scaled.records("OpenRegistration")
    assert reply["seq"] == record.seq
    # the engine's refusal comes back with its reason, in the session's language
    reply = first.command({"type": "OpenVote", "title": "Про бюджет"})
    assert reply["ok"] is False and reply["reason"] == "not_allowed" and "етап" in reply["message"]
    assert scaled.queue.consumer.executed == 3
    assert scaled.redis.xpending(COMMANDS, GROUP)["pending"] == 0


def test_checks_stay_in_the_web_process(scaled: Scaled) -> None:
    _client, cookie, csrf = scaled.log_in(0, "olga", "observer")
    page = scaled.console(1, cookie, csrf)
    reply = page.command({"type": "OpenSitting", "title": "Засідання"})
    assert reply["ok"] is False and reply["reason"] == "forbidden"
    reply = page.command({"type": "KeyPressed", "seat": 1, "key": 1})
    assert reply["reason"] == "bad_command"
    assert scaled.redis.xlen(COMMANDS) == 0  # nothing reached the stream
    assert scaled.queue.consumer.executed == 0


def test_a_redelivered_command_is_answered_again_not_executed_again(scaled: Scaled) -> None:
    _client, cookie, csrf = scaled.log_in(0)
    page = scaled.console(0, cookie, csrf)
    assert page.command({"type": "OpenSitting", "title": "Засідання"})["ok"]
    [(entry_id, fields)] = scaled.redis.xrange(COMMANDS)
    cid = json.loads(fields["cmd"])["id"]
    scaled.redis.xadd(COMMANDS, fields)  # the same signed command again (a retry, a replay)
    wait_for(lambda: scaled.redis.llen(reply_key(cid)) == 1, timeout=15, what="the stored reply sent again")
    assert json.loads(scaled.redis.lpop(reply_key(cid)) or "{}") == {"ok": True, "seq": 1}
    assert len(scaled.records("OpenSitting")) == 1 and scaled.queue.consumer.executed == 1
    assert entry_id != scaled.redis.xrange(COMMANDS)[-1][0]


def test_a_command_handed_out_again_by_a_redis_that_lost_its_writes_is_not_executed_again(scaled: Scaled) -> None:
    _client, cookie, csrf = scaled.log_in(0)
    page = scaled.console(0, cookie, csrf)
    assert page.command({"type": "OpenSitting", "title": "Засідання"})["ok"]
    [(_entry_id, fields)] = scaled.redis.xrange(COMMANDS)
    cid = json.loads(fields["cmd"])["id"]
    scaled.redis.delete(done_key(cid))  # as if Redis came back without its last second of writes
    scaled.redis.xadd(COMMANDS, fields)
    wait_for(lambda: scaled.redis.llen(reply_key(cid)) == 1, timeout=15, what="the remembered reply")
    assert len(scaled.records("OpenSitting")) == 1 and scaled.queue.consumer.executed == 1


def test_a_redis_that_comes_back_empty_is_set_up_again(scaled: Scaled) -> None:
    _client, cookie, csrf = scaled.log_in(0)
    page = scaled.console(1, cookie, csrf)
    scaled.redis.flushall()  # a restart without persistence: no stream, no consumer group, no states
    reply = page.command({"type": "OpenSitting", "title": "Засідання"})
    assert reply == {"ok": True, "seq": 1}
    assert len(scaled.records("OpenSitting")) == 1


def test_an_unsigned_or_forged_command_is_refused(scaled: Scaled) -> None:
    forged = Signer(b"not the key of this chamber")
    command = {"id": "f1", "at_ms": int(time.time() * 1000), "user": "x", "role": "secretary", "lang": "uk"}
    scaled.redis.xadd(COMMANDS, forged.seal({**command, "body": {"type": "OpenSitting", "title": "Засідання"}}))
    scaled.redis.xadd(COMMANDS, {"cmd": "{}", "sig": "00"})
    wait_for(lambda: scaled.redis.xinfo_groups(COMMANDS)[0]["entries-read"] == 2, timeout=15, what="both read")
    wait_for(lambda: scaled.redis.xpending(COMMANDS, GROUP)["pending"] == 0, timeout=15, what="both acknowledged")
    assert scaled.journal.sittings() == [] and scaled.queue.consumer.executed == 0


def _stalled(env: Scaled) -> CommandConsumer:
    """A consumer that is not running: the test hands it the entries the way its thread would."""
    env.queue.consumer.stop()
    return env.queue.consumer


def _add(env: Scaled, body: dict[str, Any], cid: str) -> str:
    signer = Signer(env.secret)
    command = {"id": cid, "at_ms": int(time.time() * 1000), "user": "anna", "role": "secretary", "lang": "en"}
    entry_id: str = env.redis.xadd(COMMANDS, signer.seal({**command, "body": body}))
    return entry_id


def _deliver(env: Scaled) -> list[tuple[str, dict[str, str]]]:
    got = env.redis.xreadgroup(GROUP, CONSUMER, {COMMANDS: ">"}, count=10)
    return [(entry_id, fields) for _stream, entries in got for entry_id, fields in entries]


class _Crash(Exception):
    """The controller dies here."""


def _crash(*_: Any, **__: Any) -> Any:
    raise _Crash


def _restart(env: Scaled) -> CommandConsumer:
    """A new consumer over the same engine, journal and Redis, as a restarted controller has."""
    old = env.queue.consumer
    consumer = CommandConsumer(env.queue.client, old.runner, env.engine, env.journal, Signer(env.secret))
    assert isinstance(old.runner, QueueRunner)
    old.runner._before_submit = consumer.before_submit
    return consumer


def test_a_crash_after_the_journal_write_does_not_execute_the_command_again(scaled: Scaled) -> None:
    consumer = _stalled(scaled)
    _add(scaled, {"type": "OpenSitting", "title": "Засідання"}, "c1")
    [(entry_id, fields)] = _deliver(scaled)
    consumer._finish = _crash  # type: ignore[method-assign]  # dies after the engine, before the ack
    with pytest.raises(_Crash):
        consumer.handle(entry_id, fields)
    assert len(scaled.records("OpenSitting")) == 1
    marker = json.loads(scaled.redis.get(INFLIGHT) or "{}")
    assert marker["id"] == "c1" and marker["type"] == "OpenSitting"
    restarted = _restart(scaled)
    restarted.recover()  # what start() does first
    assert len(scaled.records("OpenSitting")) == 1 and restarted.executed == 0
    assert json.loads(scaled.redis.lpop(reply_key("c1")) or "{}") == {"ok": True, "seq": 1}
    assert scaled.redis.get(INFLIGHT) is None and scaled.redis.get(done_key("c1")) is not None
    assert scaled.redis.xpending(COMMANDS, GROUP)["pending"] == 0


def test_a_crash_before_the_journal_write_executes_the_command_after_the_restart(scaled: Scaled) -> None:
    consumer = _stalled(scaled)
    open_sitting(scaled)
    _add(scaled, {"type": "OpenRegistration"}, "c2")
    [(entry_id, fields)] = _deliver(scaled)
    runner = consumer.runner
    assert isinstance(runner, QueueRunner)

    def dies_before_the_engine(command: ev.Input, **_: Any) -> Any:
        consumer.before_submit(command, "anna", "secretary", "en")  # the marker is written ...
        raise _Crash  # ... and the engine never gets the command

    real_submit = runner._submit
    runner._submit = dies_before_the_engine  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        consumer.handle(entry_id, fields)
    runner._submit = real_submit  # type: ignore[method-assign]
    assert scaled.records("OpenRegistration") == [] and scaled.redis.get(INFLIGHT) is not None
    restarted = _restart(scaled)
    restarted.recover()
    assert len(scaled.records("OpenRegistration")) == 1 and restarted.executed == 1
    reply = json.loads(scaled.redis.lpop(reply_key("c2")) or "{}")
    assert reply["ok"] is True and reply["seq"] == scaled.records("OpenRegistration")[0].seq


def test_a_journaled_command_the_core_refused_is_answered_with_its_reason_after_a_crash(scaled: Scaled) -> None:
    consumer = _stalled(scaled)
    open_sitting(scaled)
    _add(scaled, {"type": "CloseRegistration"}, "c3")  # registration is not open: journaled and refused
    [(entry_id, fields)] = _deliver(scaled)
    consumer._finish = _crash  # type: ignore[method-assign]
    with pytest.raises(_Crash):
        consumer.handle(entry_id, fields)
    restarted = _restart(scaled)
    restarted.recover()
    reply = json.loads(scaled.redis.lpop(reply_key("c3")) or "{}")
    assert reply["ok"] is False and reply["reason"] == "not_allowed" and "phase" in reply["message"]
    assert len(scaled.records("CloseRegistration")) == 1


def test_a_command_older_than_its_ttl_is_not_executed(scaled: Scaled) -> None:
    consumer = _stalled(scaled)
    _add(scaled, {"type": "OpenSitting", "title": "Засідання"}, "late")
    [(entry_id, fields)] = _deliver(scaled)
    consumer.ttl_ms = 0
    time.sleep(0.01)  # the entry's stream id is in Redis's milliseconds: let one pass
    consumer.handle(entry_id, fields)
    reply = json.loads(scaled.redis.lpop(reply_key("late")) or "{}")
    assert reply["ok"] is False and reply["reason"] == "timeout"
    assert scaled.journal.sittings() == [] and consumer.executed == 0


def test_no_controller_means_a_timeout_for_the_browser_and_no_late_execution(scaled: Scaled) -> None:
    _stalled(scaled)
    for web in scaled.webs:
        web.web.runner.timeout_s = 0.5
    _client, cookie, csrf = scaled.log_in(0)
    reply = scaled.console(0, cookie, csrf).command({"type": "OpenSitting", "title": "Засідання"})
    assert reply["ok"] is False and reply["reason"] == "timeout"
    restarted = _restart(scaled)
    restarted.ttl_ms = 0  # it came up after the command's time: the vote must not open by itself now
    time.sleep(0.01)
    restarted.recover()
    [(entry_id, fields)] = _deliver(scaled)
    restarted.handle(entry_id, fields)
    assert scaled.journal.sittings() == [] and restarted.executed == 0


# --- sessions ---------------------------------------------------------------------------------------------


def test_a_log_out_on_one_web_process_ends_the_session_on_every_one(scaled: Scaled) -> None:
    client, cookie, csrf = scaled.log_in(0)
    elsewhere = scaled.console(1, cookie, csrf)
    assert elsewhere.connected
    resp = client.post("/logout", data={"csrf_token": csrf})
    assert resp.status_code == 302
    wait_for(lambda: not elsewhere.connected, timeout=15, what="the other process closing the console socket")
    other = scaled.webs[1].app.test_client()
    other.set_cookie("chamber_session", cookie)
    assert other.get("/console").status_code == 302  # the copied cookie is refused there too


def test_log_in_failures_are_counted_across_web_processes(scaled: Scaled) -> None:
    scaled.webs[0].web.users.add("anna", "secretary", PASSWORD)
    for i in range(5):
        client = scaled.webs[i % 2].app.test_client()
        client.get("/login")
        resp = client.post("/login", data={"name": "anna", "password": "wrong!", "csrf_token": csrf_of(client)})
        assert resp.status_code == 401
    client = scaled.webs[1].app.test_client()
    client.get("/login")
    resp = client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": csrf_of(client)})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1


# --- config -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "message"),
    [
        ('message_queue = "http://127.0.0.1:6379"\nsecret_key_file = "k"', "must be a Redis URL"),
        ('message_queue = "redis://127.0.0.1:70000/0"\nsecret_key_file = "k"', "port must be 1"),
        ('message_queue = "redis://127.0.0.1:6379/0"', "needs secret_key_file"),
    ],
)
def test_the_message_queue_setting_is_checked(web: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config_text(3, extra=f"[web]\n{web}\n"))


def test_redis_and_rediss_urls_are_taken() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://:secret@redis.example.org:6380/2", "redis://[::1]"):
        config = parse_config(config_text(3, extra=f'[web]\nmessage_queue = "{url}"\nsecret_key_file = "k"\n'))
        assert config.web.message_queue == url


# --- the commands ------------------------------------------------------------------------------------


def _read_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _gevent_installed() -> bool:
    return importlib.util.find_spec("gevent") is not None


@pytest.mark.parametrize(
    "green",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(
                not _gevent_installed(), reason="chamber web --gevent needs the optional gevent package"
            ),
        ),
    ],
    ids=["threads", "gevent"],
)
def test_chamber_run_and_chamber_web_on_one_redis(tmp_path: Path, redis_url: str, green: bool) -> None:
    """The real commands: `chamber run` publishes through Redis and serves no pages; two `chamber web`
    processes serve the same state and take a secretary's command to the one engine."""
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///var/chamber.db"', 'url = "sqlite:///state/chamber.db"')
    scaled_web = f'[web]\nmessage_queue = "{redis_url}"\nsecret_key_file = "state/key"\n'
    cfg = tmp_path / "config.toml"
    cfg.write_text(text.replace("[web]\n", scaled_web, 1), encoding="utf-8")
    base = [sys.executable, "-m", "chamber.cli"]
    procs: list[subprocess.Popen[str]] = []
    try:
        run = subprocess.Popen(
            [*base, "run", "--config", str(cfg), "--simulate", "--open-sitting"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
        )
        procs.append(run)
        assert run.stderr is not None
        log: list[str] = []
        deadline = time.monotonic() + 60
        for line in run.stderr:  # the process logs this line once running, or exits
            log.append(line)
            if "web: scaled out through" in line:
                break
            assert time.monotonic() < deadline, "".join(log)
        assert "scaled out through" in "".join(log), "".join(log)
        ports = [free_port(), free_port()]
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [*base, "web", "--config", str(cfg), "--port", str(port), *(["--gevent"] if green else [])],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=tmp_path,
                )
            )
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url in urls:
            wait_for(lambda url=url: _up(url), timeout=30, what=f"chamber web on {url}")
        wait_for(
            lambda: all(_read_json(u + "/api/state").get("sitting", {}).get("open") for u in urls),
            timeout=30,
            what="the open sitting on both web processes",
        )
        states = [_read_json(u + "/api/state") for u in urls]
        assert states[0]["rev"] == states[1]["rev"] and len(states[0]["seats"]) == 43
        users = subprocess.run(
            [*base, "users", "add", "anna", "--role", "secretary", "--password-stdin", "--config", str(cfg)],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert users.returncode == 0, users.stderr
        loop = Loop()
        try:
            cookie, csrf = _log_in_over_http(urls[0])
            console = Browser(loop, urls[1], "/console", cookie=cookie, auth={"csrf": csrf, "lang": "en"}).connect()
            reply = console.command({"type": "OpenRegistration"})
            assert reply["ok"] is True and reply["seq"] > 1, reply
            wait_for(
                lambda: _read_json(urls[0] + "/api/state")["phase"] == "registration",
                timeout=15,
                what="the registration shown by the other web process",
            )
            console.disconnect()
        finally:
            loop.close()
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.communicate(timeout=30)  # the controller's log is read to its end: a full pipe would stall it
    assert [proc.returncode for proc in procs] == [0, 0, 0]


def _up(url: str) -> bool:
    try:
        return bool(_read_json(url + "/healthz").get("ok"))
    except OSError:
        return False


def _log_in_over_http(url: str) -> tuple[str, str]:
    """Log in as a browser does (the form's CSRF token, the session cookie); (cookie, csrf)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(url + "/login", timeout=10).read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None, page[:500]
    form = urllib.parse.urlencode({"name": "anna", "password": PASSWORD, "csrf_token": token.group(1)}).encode()
    console = opener.open(url + "/login", data=form, timeout=10).read().decode()  # redirected to /console
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', console)  # the page's own token, as console.js reads it
    cookie = next(c.value for c in jar if c.name == "chamber_session")
    assert csrf is not None, console[:2000]
    return str(cookie), csrf.group(1)


def test_a_controller_whose_redis_is_down_runs_on_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from display.scaleout import start_controller_queue

    config = scaled_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nobody listens there
    journal = Journal(f"sqlite:///{tmp_path / 'chamber.db'}")
    engine = Engine(journal)
    engine.start()
    try:
        with caplog.at_level(logging.ERROR, logger="display.scaleout"):
            queue = start_controller_queue(engine, config)
            assert queue is not None
            engine.execute(ev.OpenSitting(roster=config.roster(), number=1, title="Засідання"))
            queue.publisher.tick()  # a change to publish, and no Redis: said once, not raised
            queue.publisher.tick()
            queue.stop()
        messages = [r.getMessage() for r in caplog.records]
        assert sum("cannot publish to Redis" in m for m in messages) == 1
        assert any("cannot reach the command stream" in m for m in messages)
        assert engine.snapshot().phase.value == "idle"  # the chamber itself never waited for Redis
    finally:
        engine.stop()
        journal.close()

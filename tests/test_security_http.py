"""The HTTP side's defences, over every route the app has: CSRF on every state-changing method of
every route (listed from Flask's url_map, so a new route is covered without editing this file),
session fixation, the log-in rate limits with their figures, and the session cookie's flags.

tests/test_web_auth.py has the unit tests of display.auth; these go through the app as a browser does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from test_security_roles import table_rows
from test_web_app import PASSWORD, Env, csrf_of, make_env, open_registered_sitting

from display.app import create_app
from display.auth import LoginGuard
from display.web import SAFE_METHODS, SESSION_HOURS

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = make_env(tmp_path, simulator_url="http://127.0.0.1:9")  # /seat/... exists only with a simulator
    try:
        yield e
    finally:
        e.close()


def concrete(rule: Any) -> str:
    """A URL of ``rule`` with each of its variables filled in with a plausible value."""
    values = {"int": "1", "path": "x/y", "default": "press", "string": "press"}
    url = str(rule.rule)
    for conv in re.findall(r"<([^>]+)>", url):
        kind = conv.split(":")[0] if ":" in conv else "default"
        url = url.replace(f"<{conv}>", values.get(kind, "press"))
    return url


def every_state_changing_request(env: Env) -> list[tuple[str, str]]:
    """(method, url) for every route and every method other than GET, HEAD and OPTIONS, including
    those the route does not serve (the check must come before the routing's own 405)."""
    out = []
    for rule in env.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(STATE_CHANGING):
            out.append((method, concrete(rule)))
    return out


def test_every_state_changing_request_needs_the_csrf_token(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    client = env.app.test_client()
    token = env.login(client)
    _, sock = env.console(name="ivan")
    open_registered_sitting(env, sock)
    requests = every_state_changing_request(env)
    posts = {url for m, url in requests if m == "POST"}
    assert {"/login", "/logout", "/seat/1/press"} <= posts  # the routes that take a POST are there
    caplog.set_level(logging.WARNING, logger="display.app")
    before = table_rows(env)
    for method, url in requests:
        for headers, data in [
            ({}, {}),  # none
            ({"X-CSRF-Token": "x" + token}, {}),  # a wrong one
            ({}, {"csrf_token": ""}),  # an empty one
            ({"X-CSRF-Token": token.upper()}, {}),  # nearly
        ]:
            caplog.clear()
            resp = client.open(url, method=method, headers=headers, data=data)
            assert resp.status_code == 400, (method, url, headers, resp.status_code)
            assert any("CSRF token missing or wrong" in r.getMessage() for r in caplog.records), (method, url)
    assert client.get("/console").status_code == 200  # the log-out without a token did not log out
    assert table_rows(env) == before
    # with the token the same requests pass the check (and get what the route says: 302, 404, 405, 502...)
    for method, url in requests:
        if url == "/logout":
            continue
        resp = client.open(url, method=method, headers={"X-CSRF-Token": csrf_of(client)})
        assert resp.status_code != 400 or url == "/login", (method, url, resp.status_code)


def test_a_safe_method_changes_nothing(env: Env) -> None:
    """GET, HEAD and OPTIONS on every route (those are not CSRF-checked): no log-out, no store write."""
    client = env.app.test_client()
    env.login(client)
    before = table_rows(env)
    for rule in env.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(SAFE_METHODS):
            resp = client.open(concrete(rule), method=method)
            assert resp.status_code < 500, (method, rule.rule)
    assert client.get("/console").status_code == 200
    assert table_rows(env) == before


# --- session fixation -----------------------------------------------------------------------------


def cookie_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("chamber_session")
    return None if cookie is None else cookie.value


def with_cookie(env: Env, value: str) -> FlaskClient:
    other = env.app.test_client()
    other.set_cookie("chamber_session", value)
    return other


def test_the_session_changes_at_log_in_and_dies_at_log_out(env: Env) -> None:
    victim = env.app.test_client()
    planted_token = csrf_of(victim)
    planted = cookie_of(victim)  # the cookie an attacker could have planted before the log-in
    assert planted is not None
    token = env.login(victim)
    logged_in = cookie_of(victim)
    assert logged_in is not None and logged_in != planted and token != planted_token
    with victim.session_transaction() as s:
        session_id = s["sid"]
    # the planted cookie is still anonymous: no console, no /console connection
    attacker = with_cookie(env, planted)
    assert attacker.get("/console").status_code == 302
    assert not env.socket("/console", attacker, {"csrf": planted_token}).is_connected("/console")
    # a copy of the logged-in cookie works until the log-out, then never again
    thief = with_cookie(env, logged_in)
    assert thief.get("/console").status_code == 200
    assert victim.post("/logout", data={"csrf_token": token}).status_code == 302
    assert session_id in env.web.revoked
    assert thief.get("/console").status_code == 302
    assert not env.socket("/console", thief, {"csrf": token}).is_connected("/console")
    # logging in again gives yet another session
    env.login(victim, role=None)
    with victim.session_transaction() as s:
        assert s["sid"] != session_id


def test_a_log_out_outlives_a_restart_that_keeps_the_session_key(env: Env) -> None:
    """The log-outs are in the store: a web app started afresh on it, with the same session key, still
    refuses the copied cookie of a session that logged out, and takes one that did not."""
    leaver, stayer = env.app.test_client(), env.app.test_client()
    token = env.login(leaver)
    env.login(stayer, name="olha", role="operator")
    copied, kept = cookie_of(leaver), cookie_of(stayer)
    assert copied is not None and kept is not None
    assert leaver.post("/logout", data={"csrf_token": token}).status_code == 302
    again, _ = create_app(env.engine, env.config)  # the restart: a new process's web app, same store
    again.config.update(TESTING=True, SECRET_KEY=env.app.config["SECRET_KEY"])  # [web] secret_key_file
    thief, colleague = again.test_client(), again.test_client()
    thief.set_cookie("chamber_session", copied)
    colleague.set_cookie("chamber_session", kept)
    assert colleague.get("/console").status_code == 200  # a session that did not log out lives on
    assert thief.get("/console").status_code == 302  # the logged-out one does not


def test_a_forged_session_cookie_is_anonymous(env: Env) -> None:
    env.user("anna")
    client = env.app.test_client()
    env.login(client, role=None)
    good = cookie_of(client)
    assert good is not None
    payload = good.rpartition(".")
    for forged in [good[:-2] + ("AA" if not good.endswith("AA") else "BB"), payload[0] + ".", "x", ""]:
        assert with_cookie(env, forged).get("/console").status_code == 302, forged


# --- log-in rate limits --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def attempt(env: Env, address: str, name: str, password: str) -> int:
    client = env.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)}).status_code


def test_log_in_rate_limits_and_their_figures(env: Env) -> None:
    """5 failures a minute per name and per address; the sixth try within the minute is 429 whatever
    the password; a minute after the fifth failure the key may try again.  So one address can test at
    most 5 passwords a minute (300 an hour) over all names, and one name gets at most 5 a minute from
    all addresses together."""
    clock = Clock()
    env.web.guard = LoginGuard(limit=5, window_s=60.0, clock=clock)
    env.user("anna")
    env.user("ivan", "chair")
    # one address spraying many names
    for i in range(5):
        assert attempt(env, "192.0.2.1", f"name{i}", "wrong-password") == 401
    assert attempt(env, "192.0.2.1", "ivan", PASSWORD) == 429
    # many addresses guessing one name
    for i in range(5):
        assert attempt(env, f"198.51.100.{i}", "anna", "wrong-password") == 401
    assert attempt(env, "198.51.100.200", "anna", PASSWORD) == 429
    assert attempt(env, "198.51.100.200", "ivan", PASSWORD) == 302  # another name from a fresh address
    clock.now += 59.0
    assert attempt(env, "192.0.2.1", "ivan", PASSWORD) == 429
    clock.now += 1.0  # a minute after the failures
    assert attempt(env, "192.0.2.1", "ivan", PASSWORD) == 302
    assert attempt(env, "198.51.100.201", "anna", PASSWORD) == 302
    # the figure: over ten minutes of trying once a second from one address, 50 guesses are checked
    checked = 0
    for _ in range(600):
        clock.now += 1.0
        status = attempt_fast(env, "203.0.113.9", "anna")
        checked += status != 429
    assert checked == 50


def attempt_fast(env: Env, address: str, name: str) -> int:
    """A failed log-in through the guard exactly as the route uses it, without paying for argon2."""
    guard = env.web.guard
    if guard.retry_after(name, address) is not None:
        return 429
    guard.failed(name, address)
    return 401


# --- the cookie ----------------------------------------------------------------------------------


def test_the_logged_in_cookie_flags(env: Env) -> None:
    env.user("anna")
    for headers, secure in [({}, False), ({"X-Forwarded-Proto": "https"}, True)]:
        client = env.app.test_client()
        token = csrf_of(client)
        resp = client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token}, headers=headers)
        assert resp.status_code == 302
        [cookie] = [c for c in resp.headers.getlist("Set-Cookie") if c.startswith("chamber_session=")]
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite", "path", "expires"} <= flags
        assert "SameSite=Lax" in cookie and ("secure" in flags) is secure
        assert "Domain" not in cookie  # this host only
        with client.session_transaction() as s:
            assert s.permanent
        assert env.app.permanent_session_lifetime.total_seconds() == SESSION_HOURS * 3600
        for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
            assert header in resp.headers
        assert resp.headers["Cache-Control"] == "no-store"

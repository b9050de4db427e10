"""Who may use the console (display.auth and the log-in routes): users in the store with argon2 hashes,
log-in rate limits, CSRF on every POST, the session cookie's flags, the session key file, sessions that
end with a password change, and ``chamber users``."""

from __future__ import annotations

import io
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask.testing import FlaskClient
from test_web_app import PASSWORD, Env, csrf_of, make_env
from test_web_state import web_config

from chamber.cli import USER_ROLES, main
from chamber.engine import Engine
from chamber.journal import Journal
from display import auth
from display.app import create_app


@pytest.fixture
def store(journal_url: str) -> Iterator[auth.UserStore]:
    """The users' table in a fresh store, SQLite and PostgreSQL (conftest's ``journal_url``)."""
    journal = Journal(journal_url)
    try:
        yield auth.UserStore(journal.engine)
    finally:
        journal.close()


# --- users ----------------------------------------------------------------------------------------


def test_users_are_stored_with_argon2id_hashes(store: auth.UserStore) -> None:
    user = store.add("anna", "secretary", PASSWORD)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    assert "password_hash" not in repr(user)
    assert store.authenticate("anna", PASSWORD) == user
    assert store.authenticate("anna", PASSWORD + "!") is None
    assert store.authenticate("nobody", PASSWORD) is None
    assert store.authenticate("bad name with spaces", PASSWORD) is None
    assert [(u.name, u.role) for u in store.all()] == [("anna", "secretary")]


@pytest.mark.parametrize(
    ("name", "role", "password", "why"),
    [
        ("anna", "secretary", "short", "at least 8"),
        ("anna", "admin", PASSWORD, "one of secretary, chair, operator, observer"),
        ("an na", "chair", PASSWORD, "user name"),
        ("", "chair", PASSWORD, "user name"),
        ("a" * 65, "chair", PASSWORD, "user name"),
        ("anna", "chair", "x" * (auth.MAX_PASSWORD + 1), "at most"),
    ],
)
def test_users_that_cannot_be_added(store: auth.UserStore, name: str, role: str, password: str, why: str) -> None:
    with pytest.raises(auth.UserError, match=why):
        store.add(name, role, password)


def test_a_name_is_taken_once(store: auth.UserStore) -> None:
    store.add("олена.k", "chair", PASSWORD)  # Ukrainian letters are letters
    with pytest.raises(auth.UserError, match="exists already"):
        store.add("олена.k", "observer", PASSWORD)


def test_a_changed_password_changes_the_sessions_stamp(store: auth.UserStore) -> None:
    before = store.add("anna", "chair", PASSWORD)
    store.set_password("anna", "another password")
    after = store.get("anna")
    assert after is not None and after.stamp != before.stamp
    assert store.authenticate("anna", PASSWORD) is None and store.authenticate("anna", "another password")
    store.set_role("anna", "observer")
    assert store.get("anna").role == "observer"  # type: ignore[union-attr]
    store.remove("anna")
    assert store.get("anna") is None
    with pytest.raises(auth.UserError, match="no user"):
        store.remove("anna")
    with pytest.raises(auth.UserError, match="no user"):
        store.set_password("anna", PASSWORD)


def test_a_hash_made_with_weaker_parameters_is_redone_at_the_next_log_in(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'users.db'}")
    try:
        weak = auth.UserStore(journal.engine, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        old = weak.add("anna", "chair", PASSWORD)
        strong = auth.UserStore(journal.engine)
        assert strong.authenticate("anna", PASSWORD) is not None
        new = strong.get("anna")
        assert new is not None and new.password_hash != old.password_hash
        assert not PasswordHasher().check_needs_rehash(new.password_hash)
    finally:
        journal.close()


# --- rate limits ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_a_minute_then_a_wait() -> None:
    clock = Clock()
    guard = auth.LoginGuard(limit=5, window_s=60, clock=clock)
    for _ in range(5):
        assert guard.retry_after("anna", "10.0.0.1") is None
        guard.failed("anna", "10.0.0.1")
        clock.now += 1
    wait = guard.retry_after("anna", "10.0.0.1")
    assert wait is not None and 55 <= wait <= 57
    assert guard.retry_after("anna", "10.0.0.2") is not None  # the name is locked from anywhere
    assert guard.retry_after("ivan", "10.0.0.1") is not None  # and the address for any name
    assert guard.retry_after("ivan", "10.0.0.2") is None
    clock.now += 60
    assert guard.retry_after("anna", "10.0.0.1") is None


def test_a_good_log_in_clears_the_names_count_not_the_addresses() -> None:
    clock = Clock()
    guard = auth.LoginGuard(limit=2, window_s=60, clock=clock)
    guard.failed("anna", "a")
    guard.succeeded("anna")
    guard.failed("anna", "b")
    assert guard.retry_after("anna", "c") is None
    guard.failed("ivan", "a")
    assert guard.retry_after("petro", "a") is not None


def test_the_limiter_does_not_grow_without_end() -> None:
    limiter = auth.RateLimiter(limit=5, window_s=60)
    limiter.MAX_KEYS = 100
    for i in range(1000):
        limiter.failed(f"name{i}", float(i))
    assert len(limiter._fails) <= 100


def from_address(env: Env, address: str) -> FlaskClient:
    client = env.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def post_login(client: FlaskClient, name: str, password: str) -> tuple[int, str, dict[str, str]]:
    resp = client.post("/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)})
    return resp.status_code, resp.get_data(as_text=True), dict(resp.headers)


def test_log_in_is_rate_limited_with_a_clear_message(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.user("anna")
    client = from_address(env, "192.0.2.7")
    caplog.set_level(logging.WARNING, logger="display.app")
    for _ in range(5):
        status, body, _ = post_login(client, "anna", "guess-guess")
        assert status == 401 and "Невірне ім&#39;я або пароль" in body  # escaped by the template
    status, body, headers = post_login(client, "anna", PASSWORD)  # even the right password now
    assert status == 429 and "Забагато невдалих спроб входу; спробуйте через" in body
    assert 1 <= int(headers["Retry-After"]) <= 61
    assert any("too many failures" in r.getMessage() for r in caplog.records)
    assert sum("failed log-in as 'anna' from 192.0.2.7" in r.getMessage() for r in caplog.records) == 5
    # from another address the name is still locked; another name from there is not
    other = from_address(env, "192.0.2.8")
    assert post_login(other, "anna", PASSWORD)[0] == 429
    env.user("ivan", "chair")
    assert post_login(other, "ivan", PASSWORD)[0] == 302
    # in English when the page is
    english = from_address(env, "192.0.2.7")
    english.set_cookie("lang", "en")
    assert "Too many failed log-in attempts" in post_login(english, "ivan", PASSWORD)[1]


# --- CSRF and the cookie ------------------------------------------------------------------------------


def test_every_post_needs_the_csrf_token(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.user("anna")
    client = env.app.test_client()
    caplog.set_level(logging.WARNING, logger="display.app")
    resp = client.post("/login", data={"name": "anna", "password": PASSWORD})
    assert resp.status_code == 400 and "session" not in resp.headers.get("Location", "")
    assert client.get("/console").status_code == 302  # not logged in
    token = csrf_of(client)
    wrong = {"name": "anna", "password": PASSWORD, "csrf_token": "x" + token}
    assert client.post("/login", data=wrong).status_code == 400
    token = csrf_of(client)  # the form came back with a new token
    assert client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token}).status_code == 302
    resp = client.post("/logout")
    assert resp.status_code == 400 and resp.json is not None and resp.json["reason"] == "csrf"
    assert client.get("/console").status_code == 200  # still logged in
    assert sum("CSRF token missing or wrong" in r.getMessage() for r in caplog.records) == 3


def test_a_log_in_makes_a_new_session(env: Env) -> None:
    """A session planted before the log-in (a fixed token) does not carry over."""
    client = env.app.test_client()
    planted = csrf_of(client)
    token = env.login(client)
    assert token != planted


def test_the_session_cookie_is_httponly_lax_and_secure_behind_tls(env: Env) -> None:
    client = env.app.test_client()
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    proxied = env.app.test_client()
    cookie = proxied.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie
    direct = env.app.test_client()
    assert "Secure" in direct.get("/login", base_url="https://localhost").headers["Set-Cookie"]


def test_secure_cookies_by_flag(tmp_path: Path) -> None:
    e = make_env(tmp_path, secure_cookies=True)
    try:
        assert "Secure" in e.app.test_client().get("/login").headers["Set-Cookie"]
    finally:
        e.close()


def test_a_new_password_ends_the_sessions_opened_with_the_old_one(env: Env) -> None:
    client, sock = env.console()
    env.web.users.set_password("anna", "a brand new password")
    assert client.get("/console").status_code == 302
    assert env.command(sock, {"type": "OpenSitting"})["reason"] == "not_logged_in"
    assert env.socket("/console", client).is_connected("/console") is False
    client2, _ = env.console(name="ivan", role="chair")
    env.web.users.remove("ivan")
    assert client2.get("/console").status_code == 302


# --- the session key ------------------------------------------------------------------------------


def test_the_session_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"
    key = auth.load_secret_key(str(path))
    assert len(key) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert auth.load_secret_key(str(path)) == key  # the same key after a restart: sessions survive it
    assert auth.load_secret_key(None) != auth.load_secret_key(None)  # random per start without a file


def test_a_session_key_file_too_short_or_readable_by_others(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    short = tmp_path / "short"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        auth.load_secret_key(str(short))
    loose = tmp_path / "loose"
    loose.write_text("k" * 64)
    loose.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="display.auth"):
        auth.load_secret_key(str(loose))
    assert any("readable by others" in r.getMessage() for r in caplog.records)


def test_the_app_uses_the_configured_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    config = web_config(3, extra=f'[web]\nsecret_key_file = "{key_file}"\n')
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    engine = Engine(journal)
    try:
        app, _ = create_app(engine, config)
        assert app.config["SECRET_KEY"] == key_file.read_bytes().strip()
    finally:
        journal.close()


def test_tokens_compare_in_constant_time_and_never_empty() -> None:
    token = auth.new_token()
    assert auth.same_token(token, token) and not auth.same_token(token, token + "x")
    assert not auth.same_token("", "") and not auth.same_token(None, None) and not auth.same_token(token, 5)


# --- chamber users ------------------------------------------------------------------------------------


def test_chamber_users_add_list_passwd_remove(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "anna", "--role", "secretary", "--password-stdin", "--db", db]) == 0
    assert "user anna (secretary) added" in capsys.readouterr().out
    answers = iter(["another password", "another password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["users", "add", "ivan", "--role", "operator", "--db", db]) == 0
    assert main(["users", "list", "--db", db]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["anna\tsecretary", "ivan\toperator"]
    mismatch = iter(["one password", "other password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(mismatch))
    assert main(["users", "passwd", "anna", "--db", db]) == 1
    assert "differ" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a new password\n"))
    assert main(["users", "passwd", "anna", "--password-stdin", "--db", db]) == 0
    journal = Journal(db)
    try:
        assert auth.UserStore(journal.engine).authenticate("anna", "a new password") is not None
    finally:
        journal.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "olha", "--role", "chair", "--password-stdin", "--db", db]) == 1
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "anna", "--role", "chair", "--password-stdin", "--db", db]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["users", "remove", "ivan", "--db", db]) == 0
    assert main(["users", "remove", "ivan", "--db", db]) == 1
    with pytest.raises(SystemExit):
        main(["users", "add", "x", "--role", "admin", "--db", db])


def test_the_cli_knows_the_same_roles_as_the_server() -> None:
    assert USER_ROLES == auth.ROLES

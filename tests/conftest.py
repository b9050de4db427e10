"""Shared fixtures: a real PostgreSQL server for the store tests, and a fresh journal URL per backend."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from browser import chromium_browser, chromium_page, playwright_loop_hidden  # noqa: F401  (the system Chromium)
from psycopg import sql
from redis_server import redis_url  # noqa: F401  (fixture: a real redis-server)

if TYPE_CHECKING:
    from test_web_app import Env


def _pg_bin_dir() -> Path | None:
    """The bin directory of the newest PostgreSQL installed from the Debian packages."""
    root = Path("/usr/lib/postgresql")
    found: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for d in root.iterdir():
            b = d / "bin"
            if (b / "initdb").exists() and (b / "pg_ctl").exists():
                try:
                    key = tuple(int(x) for x in d.name.split("."))
                except ValueError:
                    continue
                found.append((key, b))
    return max(found)[1] if found else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], as_postgres: bool) -> subprocess.CompletedProcess[str]:
    full = ["runuser", "-u", "postgres", "--", *cmd] if as_postgres else cmd
    return subprocess.run(full, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """Start a throwaway PostgreSQL server on a free loopback port; yield a URL of database ``chamber``."""
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin. "
            "`make test` installs the Debian package `postgresql` (or run: apt-get install postgresql).",
            pytrace=False,
        )
    as_postgres = os.geteuid() == 0  # initdb refuses to run as root
    if as_postgres:
        try:
            pg_user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail(
                "Running as root but there is no `postgres` user to run the server as; "
                "`make test` installs the Debian package `postgresql`, which creates it.",
                pytrace=False,
            )

    tmp = Path(tempfile.mkdtemp(prefix="chamber-pg-"))
    tmp.chmod(0o755)
    data = tmp / "data"
    data.mkdir(mode=0o700)
    log = tmp / "server.log"
    if as_postgres:
        os.chown(tmp, pg_user.pw_uid, pg_user.pw_gid)
        os.chown(data, pg_user.pw_uid, pg_user.pw_gid)

    started = False
    try:
        init = _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",  # only the one-off init; the server below runs with fsync=on
            ],
            as_postgres,
        )
        if init.returncode != 0:
            pytest.fail(f"initdb failed:\n{init.stdout}\n{init.stderr}", pytrace=False)

        port = 0
        last_error = ""
        for _ in range(3):  # another process may grab the port between probing and starting
            port = _free_port()
            options = f"-c listen_addresses=127.0.0.1 -c unix_socket_directories={tmp} -p {port} -c fsync=on"
            start = _run(
                [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-o", options, "start"],
                as_postgres,
            )
            if start.returncode == 0:
                started = True
                break
            last_error = f"{start.stdout}\n{start.stderr}\n{log.read_text() if log.exists() else ''}"
        if not started:
            pytest.fail(f"could not start PostgreSQL:\n{last_error}", pytrace=False)

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE chamber")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/chamber"
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], as_postgres)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A started engine over a fresh journal and the web app made for it (``test_web_app.make_env``); a
    test file that needs other options defines an ``env`` of its own."""
    from test_web_app import make_env

    e = make_env(tmp_path)
    try:
        yield e
    finally:
        e.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty store: a new SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'journal.db'}"
        return
    base: str = request.getfixturevalue("pg_url")
    name = f"t_{uuid.uuid4().hex[:16]}"
    server = base.rsplit("/", 1)[0]
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# The session Playwright's loop is hidden from tests that do not use the browser through all of their
# setup, call and teardown (tests/browser.py says why); a fixture could not cover wider-scoped fixtures.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with playwright_loop_hidden(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with playwright_loop_hidden(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    with playwright_loop_hidden(item):
        yield

"""A real Redis server for tests (the Socket.IO message queue when several web processes share the fan-out).

How it works
------------
:class:`RedisServer` starts the Debian package's ``redis-server`` on a free port of 127.0.0.1 with
everything that would outlive the test switched off (``--save ""``: no RDB snapshots,
``--appendonly no``: no AOF) and its working directory and log in a temporary directory.  It waits,
with a deadline, until the server answers ``PING`` with ``+PONG`` (a plain RESP exchange on a socket:
the fixture needs no client library to know the server is up), and :meth:`RedisServer.stop`
terminates it (SIGTERM, then SIGKILL after 5 s) and removes the directory.

A free port is found by binding port 0 and closing; another process may take it before the server
binds, so a server that exits at start-up is retried on a new port (three times, as the PostgreSQL
fixture does).

``redis_url`` (function scope: every test gets an empty server and no stray subscribers) yields
``redis://127.0.0.1:PORT/0``.  When ``redis-server`` is not installed it fails and says that
``make test`` installs the package.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pong(port: int) -> bool:
    """True when a Redis server on the port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process on a free loopback port (see the module docstring)."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.dir = Path(tempfile.mkdtemp(prefix="chamber-redis-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.dir / "redis.log"
        problem = ""
        for _ in range(3):  # another process may take the port between probing and binding
            self.port = _free_port()
            options = {
                "bind": "127.0.0.1",
                "port": str(self.port),
                "save": "",  # no RDB snapshots
                "appendonly": "no",
                "dir": str(self.dir),
                "logfile": str(log),
                "daemonize": "no",
            }
            self.process = subprocess.Popen(
                [self.executable, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if _pong(self.port):
                    return
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
            code = self.process.poll()
            stderr = self._end()
            text = log.read_text(errors="replace") if log.exists() else ""
            what = f"exited with status {code}" if code is not None else f"no PONG within {START_TIMEOUT_S} s"
            problem = f"{what}\n{stderr}\n{text}".strip()
        self.stop()
        pytest.fail(f"could not start redis-server:\n{problem}", pytrace=False)

    def _end(self) -> str:
        """Terminate the process (if any) and return what it wrote to stderr."""
        process, self.process = self.process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        err = process.stderr.read() if process.stderr is not None else b""
        if process.stderr is not None:
            process.stderr.close()
        return err.decode(errors="replace")

    def stop(self) -> None:
        self._end()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_server_executable() -> str:
    """The path of redis-server, or fail the test saying how to install it."""
    found = shutil.which("redis-server", path="/usr/bin:/usr/sbin:/usr/local/bin")
    if found is None:
        pytest.fail(
            "redis-server not found: `make test` installs the Debian package `redis-server` "
            "(or run: apt-get install redis-server).",
            pytrace=False,
        )
    return found


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh redis-server on a free 127.0.0.1 port, answering PING; yields its URL (database 0)."""
    server = RedisServer(redis_server_executable())
    try:
        server.start()
        yield server.url
    finally:
        server.stop()

"""A throw-away Redis server on a free loopback port, for the web benchmarks and the tests.

How it works
------------
:class:`RedisServer` starts the Debian package's ``redis-server`` on a free port of 127.0.0.1 with
everything that would outlive it switched off (``--save ""``: no RDB snapshots, ``--appendonly no``:
no AOF) and its working directory and log in a temporary directory.  It waits, with a deadline, until
the server answers ``PING`` with ``+PONG`` (a plain RESP exchange on a socket: no client library is
needed to know the server is up), and :meth:`RedisServer.stop` terminates it (SIGTERM, then SIGKILL
after 5 s) and removes the directory.

A free port is found by binding port 0 and closing; another process may take it before the server
binds, so a server that exits at start-up is retried on a new port (three times).  A server that
cannot be started raises :class:`RedisUnavailable` with redis-server's own words (its stderr and
log); tests/redis_server.py turns that into a failed test.

This is not how a chamber runs Redis in production: there it is the distribution's service, with the
persistence the operator chose (docs/BENCHMARKS.md and display/scaleout.py say which guarantees
depend on it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 10.0
SEARCH_PATH = "/usr/bin:/usr/sbin:/usr/local/bin"


class RedisUnavailable(RuntimeError):
    """redis-server is not installed, or did not start."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pong(port: int) -> bool:
    """True when a Redis server on the loopback port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_executable() -> str:
    """The path of redis-server; :class:`RedisUnavailable` saying how to install it when missing."""
    found = shutil.which("redis-server", path=SEARCH_PATH)
    if found is None:
        raise RedisUnavailable(
            "redis-server not found: `make test` installs the Debian package `redis-server` "
            "(or run: apt-get install redis-server)."
        )
    return found


class RedisServer:
    """One redis-server process on a free loopback port (see the module docstring)."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or redis_server_executable()
        self.dir = Path(tempfile.mkdtemp(prefix="chamber-redis-"))
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = self.dir / "redis.log"
        problem = ""
        for _ in range(3):  # another process may take the port between probing and binding
            self.port = free_port()
            options = {
                "bind": "127.0.0.1",
                "port": str(self.port),
                "save": "",  # no RDB snapshots
                "appendonly": "no",
                "dir": str(self.dir),
                "logfile": str(log),
                "daemonize": "no",
                # a thousand benchmark clients' web processes, each with a few connections, stay far
                # below this; the default (10 000) would do too, it is said here so nobody wonders
                "maxclients": "10000",
            }
            self.process = subprocess.Popen(
                [self.executable, *(arg for name, value in options.items() for arg in (f"--{name}", value))],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if pong(self.port):
                    return self
                if self.process.poll() is not None:
                    break
                time.sleep(0.02)
            code = self.process.poll()
            stderr = self._end()
            text = log.read_text(errors="replace") if log.exists() else ""
            what = f"exited with status {code}" if code is not None else f"no PONG within {START_TIMEOUT_S} s"
            problem = f"{what}\n{stderr}\n{text}".strip()
        self.stop()
        raise RedisUnavailable(f"could not start redis-server:\n{problem}")

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

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

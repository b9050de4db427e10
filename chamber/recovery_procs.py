"""The processes ``chamber bench recovery`` runs and how it talks to them.

How it works
------------
* :class:`SimApi`: the simulator (``python -m hardware_sim --wire-time``, a process of its own that
  outlives every controller) through its press API on one kept-alive HTTP connection: presses, cards,
  unacknowledged events (``/pending``) and each line's reply count (``/stats``).
* :class:`Controller`: the real controller, ``python -m chamber.cli run --config FILE`` — engine,
  SQLite journal, the I/O loop on the simulator's ptys, the web server — started in a session of its
  own, so that a crash is ``SIGKILL`` to its whole process group (the controller and the worker that
  renders PDFs for the web app), as systemd's default ``KillMode=control-group`` ends a crashed unit.
  :meth:`Controller.crash` kills, reaps, starts a new one at once and returns how long the chamber was
  without a controller, measured as below.
* Restart time: from the ``SIGKILL`` until *every* line's simulator has answered a request of the new
  controller (the line's ``replies`` counter in ``/stats`` moved).  The controller's engine replays the
  journal and resumes the open sitting before its I/O loop starts (chamber.engine.Engine.start, then
  the loop in chamber.daemon.start_controller), so a line's first poll means the sitting is resumed;
  the driver then checks that the web state shows the sitting where it was.
* :class:`Web`: the controller's web server as a secretary and the public use it: the log-in form
  (urllib), ``/api/state`` (the hall's whole state), pages, and console commands over the ``/console``
  Socket.IO namespace (python-socketio's AsyncClient on a loop thread of its own).  The session key
  is in a file (``[web] secret_key_file``), so one log-in outlives every restart, as a real console's
  does.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

START_TIMEOUT_S = 30.0


class SimApi:
    """The simulator's press API on one kept-alive connection (one caller at a time: a lock)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None:
                    self._conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                try:
                    self._conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                    resp = self._conn.getresponse()
                    raw = resp.read()
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
                    continue
                if resp.status != 200:
                    raise RuntimeError(f"simulator {method} {path}: HTTP {resp.status} {raw[:200]!r}")
                return json.loads(raw)
        raise AssertionError("unreachable")

    def press(self, seat: int, key: int) -> bool:
        """Press a key on a seat's console; False when the console dropped it (its FIFO full)."""
        return bool(self._call("POST", "/press", {"seat": seat, "key": key})["latched"])

    def card(self, seat: int, uid: str) -> None:
        self._call("POST", "/card", {"seat": seat, "uid": uid})

    def pending(self) -> int:
        """Key events the consoles hold that no controller has acknowledged yet."""
        return int(self._call("GET", "/pending")["total"])

    def replies(self) -> dict[str, int]:
        """Per line, the replies the simulator has sent a controller."""
        return {line: int(s["replies"]) for line, s in self._call("GET", "/stats").items()}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class Simulator:
    """``python -m hardware_sim`` with wire timing, for the whole run."""

    def __init__(self, config: Path, log: Path) -> None:
        args = [sys.executable, "-m", "hardware_sim", "--config", str(config), "--http-port", "0"]
        args += ["--wire-time", "--turnaround-ms", "0"]
        self._log = log.open("ab")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RuntimeError(f"the simulator did not start; see {log}")
        info = json.loads(first)
        self.lines: dict[str, str] = info["lines"]
        self.api = SimApi(info["http"])

    def stop(self) -> None:
        self.api.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()


class Controller:
    """``chamber run`` as a process of its own; see the module docstring."""

    def __init__(self, config: Path, log: Path, sim: SimApi) -> None:
        self.config, self.log, self.sim = config, log, sim
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> float:
        """Start it and wait for the first reply on every line; the seconds that took."""
        before = self.sim.replies()
        t0 = time.monotonic()
        self._spawn()
        return self._first_polls(before, t0)

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chamber.cli", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # its own process group: the crash takes its PDF worker too
            )
        self.starts += 1

    def _first_polls(self, before: dict[str, int], t0: float) -> float:
        while True:
            now = self.sim.replies()
            if all(now[line] > before[line] for line in before):
                return time.monotonic() - t0
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the controller exited ({self.proc.returncode}); see {self.log}")
            if time.monotonic() - t0 > START_TIMEOUT_S:
                raise TimeoutError(f"no line was polled within {START_TIMEOUT_S:.0f} s; see {self.log}")
            time.sleep(0.005)

    def crash(self) -> float:
        """SIGKILL (the whole process group), then a new controller at once: seconds from the kill until
        every line has been polled by the new one."""
        assert self.proc is not None
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        before = self.sim.replies()  # nothing answers a dead controller: the count stands still
        self._spawn()
        return self._first_polls(before, t0)

    def stop(self) -> int | None:
        """SIGTERM, as systemd stops it; SIGKILL after 20 s.  The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


class Unanswered(Exception):
    """The controller did not answer (dead, restarting): the caller looks at the state again later."""


class Web:
    """The web server of the controller, as the secretary's console and the public use it."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base, self.user, self.password = base, user, password
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="recovery-web", daemon=True)
        self._thread.start()
        self._console: Any = None
        self._gone: asyncio.Future[None] | None = None  # done when the console connection ends
        self._hall: Any = None
        self._session: Any = None  # one aiohttp session for every Socket.IO client: closed once, at the end

    # --- plain HTTP ------------------------------------------------------------------------------

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """Status and body; raises Unanswered when nothing answers."""
        try:
            with self.opener.open(self.base + path, timeout=timeout) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read()
        except (OSError, http.client.HTTPException) as exc:
            raise Unanswered(str(exc)) from exc

    def state(self) -> dict[str, Any]:
        status, body = self.get("/api/state")
        if status != 200:
            raise Unanswered(f"/api/state: HTTP {status}")
        result: dict[str, Any] = json.loads(body)
        return result

    def log_in(self) -> None:
        """The log-in form, as a browser fills it in; then the console page's CSRF token."""
        _, page = self.get("/login")
        token = _hidden_csrf(page)
        form = urllib.parse.urlencode({"name": self.user, "password": self.password, "csrf_token": token}).encode()
        with self.opener.open(self.base + "/login", data=form, timeout=10) as resp:
            page = resp.read()  # followed the redirect to /console
        found = re.search(rb'"csrf": "([^"]+)"', page)
        if found is None:
            raise RuntimeError("log-in failed: the console page carries no CSRF token")
        self.csrf = found.group(1).decode()

    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    # --- console commands over Socket.IO --------------------------------------------------------------

    def command(self, command: dict[str, Any], timeout: float = 8.0) -> dict[str, Any]:
        """Send a console command; its reply, or Unanswered when the controller gave none."""
        fut = asyncio.run_coroutine_threadsafe(self._command(command, timeout), self._loop)
        try:
            return fut.result(timeout + 5)
        except Unanswered:
            raise
        except Exception as exc:
            raise Unanswered(f"{type(exc).__name__}: {exc}") from exc

    async def _command(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        import socketio

        try:
            if self._console is None or not self._console.connected:
                if self._console is not None:
                    with contextlib.suppress(Exception):
                        await self._console.disconnect()
                client = socketio.AsyncClient(reconnection=False, http_session=await self._http())
                gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                async def on_disconnect(*_reason: Any) -> None:
                    if not gone.done():
                        gone.set_result(None)

                client.on("disconnect", on_disconnect, namespace="/console")
                self._gone = gone
                await client.connect(
                    self.base,
                    namespaces=["/console"],
                    transports=["websocket"],
                    headers={"Cookie": self.cookie()},
                    auth={"csrf": self.csrf, "lang": "en"},
                    wait_timeout=5,
                )
                self._console = client
            # A controller killed with the command on its way never answers it: the wait ends when the
            # connection does, not after the whole timeout (which made a run's wall time jump by 8 s a
            # time).  The caller looks at the state before it sends the command again.
            ended = self._gone
            assert ended is not None
            call = asyncio.ensure_future(self._console.call("command", command, namespace="/console", timeout=timeout))
            await asyncio.wait({call, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not call.done():
                call.cancel()
                raise Unanswered("the connection ended" if ended.done() else f"no reply within {timeout} s")
            reply: dict[str, Any] = call.result()
            return reply
        except Exception as exc:
            if self._console is not None:
                with contextlib.suppress(Exception):
                    await self._console.disconnect()
            self._console = None
            raise Unanswered(f"{type(exc).__name__}: {exc}") from exc

    def open_hall(self, counts: Counter[str]) -> None:
        """A hall screen's Socket.IO connection (``/hall``), reconnecting by itself; counts what it gets."""
        import socketio

        async def connect() -> Any:
            client = socketio.AsyncClient(
                reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5, http_session=await self._http()
            )

            async def on_state(_data: Any) -> None:
                counts["hall_states"] += 1

            async def on_patch(_data: Any) -> None:
                counts["hall_patches"] += 1

            client.on("state", on_state, namespace="/hall")
            client.on("patch", on_patch, namespace="/hall")
            await client.connect(self.base, namespaces=["/hall"], transports=["websocket"], wait_timeout=5)
            return client

        try:
            self._hall = asyncio.run_coroutine_threadsafe(connect(), self._loop).result(10)
        except Exception:
            counts["hall_connect_failed"] += 1  # the controller may be restarting: the pages still load

    async def _http(self) -> Any:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def close_hall(self) -> None:
        hall, self._hall = self._hall, None
        if hall is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(hall.disconnect(), self._loop).result(5)

    def close(self) -> None:
        self.close_hall()

        async def down() -> None:
            if self._console is not None:
                with contextlib.suppress(Exception):
                    await self._console.disconnect()
            if self._session is not None:
                await self._session.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(down(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def _hidden_csrf(page: bytes) -> str:
    found = re.search(rb'name="csrf_token" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("the log-in page carries no CSRF token")
    return found.group(1).decode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

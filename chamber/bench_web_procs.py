"""The web benchmarks' side of their child processes, and the small helpers their figures share.

How it works
------------
* :class:`Worker`: a child process spoken to in JSON lines: a request is a line on its stdin, an answer a
  line on its stdout (by default ``python -m chamber.bench_web_workers``, whose side of the talk is
  there); its stderr goes to a log file in the bench's temporary directory.  Every read is bounded
  (``WORKER_TIMEOUT_S`` unless told otherwise): a worker that hangs, dies or answers ``{"error": ...}``
  is an error that shows its log.  With ``talks=False`` it is a process of its own whose output only
  goes to the log, ended by SIGTERM: :func:`web_process` starts ``chamber web`` itself that way.
* :func:`healthy_check` asks a web process's ``/healthz``; :func:`cpu_all` reads the CPU seconds of
  the workers, of this process and of redis-server (Linux /proc).
* :func:`percentile` (by the nearest rank), :func:`ms` and :func:`wait_until` (a predicate polled up to
  a deadline): the small helpers of chamber.bench_latency and chamber.bench_fanout.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chamber.core.values import Key

CHOICES = (Key.YES, Key.NO, Key.ABSTAIN)  # the keys a deputy votes with in the benchmarks' votes
WORKER_TIMEOUT_S = 30.0


# --- worker processes ------------------------------------------------------------------------------------


class Worker:
    """A child process spoken to in JSON lines on its stdin and stdout (its stderr goes to a file, shown
    if it fails)."""

    def __init__(
        self,
        args: Sequence[str],
        log_dir: Path,
        name: str,
        *,
        command: Sequence[str] = (sys.executable, "-m", "chamber.bench_web_workers"),
        talks: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._err = self.log.open("wb")
        self.talks = talks  # False: a process of its own (``chamber web``) whose output only goes to the log
        # how long ``stop`` waits before SIGKILL: a web process closing 500 websockets takes seconds, and
        # the bench's time is better spent elsewhere (it has no state to lose)
        self.grace_s = 5.0 if talks else 1.0
        self.proc = subprocess.Popen(
            [*command, *args],
            stdin=subprocess.PIPE if talks else subprocess.DEVNULL,
            stdout=subprocess.PIPE if talks else self._err,
            stderr=self._err,
            env=env,
        )
        self._buf = bytearray()

    def read(self, timeout: float = WORKER_TIMEOUT_S) -> dict[str, Any]:
        """The next JSON line from the worker (bounded: a worker that hangs or dies is an error)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no answer within {timeout:.0f} s; see {self.log}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"{self.name} exited ({self.proc.poll()}): {self._tail()}")
                self._buf += chunk
        line, _, rest = self._buf.partition(b"\n")
        self._buf = bytearray(rest)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name}: {reply['error']}")
        return reply

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def ask(self, message: dict[str, Any], timeout: float = WORKER_TIMEOUT_S) -> dict[str, Any]:
        self.send(message)
        return self.read(timeout)

    def cpu_s(self) -> float:
        return _cpu_s(self.proc.pid)

    def _tail(self) -> str:
        self._err.flush()
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-2000:]

    def request_stop(self) -> None:
        """Ask the process to end, without waiting (``stop`` waits): several end at once."""
        if self.proc.poll() is None:
            try:
                if self.talks:
                    self.send({"do": "stop"})
                else:
                    self.proc.terminate()  # SIGTERM: `chamber web` stops cleanly on it
            except (OSError, ValueError):
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.request_stop()
                self.proc.wait(self.grace_s)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                if self.talks:  # a worker that did not take its stop: SIGTERM first
                    self.proc.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(5)
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self._err.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def web_process(cfg_path: Path, port: int, tmp: Path, name: str, env: dict[str, str], *, green: bool) -> Worker:
    """``chamber web`` itself, as an operator starts it."""
    command = (sys.executable, "-m", "chamber.cli", "web")
    args = ["--config", str(cfg_path), "--port", str(port), *(["--gevent"] if green else [])]
    return Worker(args, tmp, name, command=command, talks=False, env=env)


def healthy_check(url: str) -> Callable[[], bool]:
    return lambda: _healthy(url)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def cpu_all(workers: Iterable[Worker], redis_pid: int | None) -> dict[str, float]:
    out = {w.name: w.cpu_s() for w in workers if w.proc.poll() is None}
    out["self"] = time.process_time()
    out["redis"] = _cpu_s(redis_pid) if redis_pid is not None else 0.0
    return out


# --- the figures' small helpers ----------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile by the nearest rank (0 < q <= 1) of sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q * len(values) + 0.5)))
    return values[rank - 1]


def ms(value: float) -> float:
    """Seconds as milliseconds, to a tenth (the unit of every figure)."""
    return round(value * 1000, 1)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; TimeoutError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"the chamber did not reach {what} within {timeout:.0f} s")
        time.sleep(0.02)

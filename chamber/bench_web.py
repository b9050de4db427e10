"""``chamber bench latency`` and ``chamber bench fanout``: the web's figures, measured on the real path.

Both start real processes and talk to them over loopback; nothing is simulated that a chamber runs for
real, except the deputies and their consoles (hardware_sim, with RS-485 wire timing).  Every time is
``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process on the machine), so a time taken in
one process is compared with one taken in another.

latency
-------
* The simulator runs in two processes of its own (``python -m chamber.bench_web sim``, the lines
  dealt between them as ``bench bus`` does), wire timing on, turnaround 0.  In each, the deputies of
  its seats are hardware_sim's :class:`~hardware_sim.deputies.Deputies`: every press goes through the
  simulated console and its press log keeps the moment the key went down.
* The controller runs here, as ``chamber run`` starts it: the engine with its SQLite journal, the
  I/O loop (``terminals.ioloop``) serving every line on the simulator's ptys, and the web server
  (display.app) with its publisher thread.
* A hall page and a secretary's console run in a process of their own (``python -m chamber.bench_web
  hall``): python-socketio's AsyncClient over websocket, keeping the hall state from ``state`` and
  ``patch`` the way display/static/js/live.js does, noting when each seat first shows ``voted``.

The sitting: every card in, registration, then ``rounds`` (3) roll-call votes opened with no time
limit.  In each, every deputy presses one choice key (За / Проти / Утримався) at a moment drawn
uniformly within ``spread_s`` (1 s); once every seat shows, the secretary closes the vote through
``/console`` and then announces the result (the hall screen shows a result from the announcement on).

* ``p50_ms``, ``p90_ms``, ``p99_ms``, ``max_ms``: from a press (the simulator's time) to the hall
  update that shows its seat voted; ``engine_p50_ms``/``engine_p99_ms``: from the press to the engine
  applying it (a subscriber of the engine notes the moment) — the bus's share; the rest is the
  snapshot, the publisher's tick and the socket;
* ``cycle_ms``: the busiest line's median poll cycle while the deputies press (a press waits up to one
  cycle for its console's next poll, so the goal p99 <= cycle_ms + 50 reads: at most 50 ms after the
  poll);
* ``close_to_result_ms``: from the secretary's ``CloseVote`` leaving the console page to the hall
  update carrying the result, the worst of the votes (``close_to_result_ms_each``);
  ``announce_to_shown_ms``: from ``AnnounceResult`` to the hall in phase ``result_shown``.  Both are
  sent right after a patch arrived, the worst moment of the publisher's 100 ms tick;
* ``presses`` (latched by the consoles), ``lost``: presses whose seat never showed voted,
  ``counted``: the votes in the results (must equal ``presses``).

fanout
------
* A redis-server on a free loopback port (chamber.redis_local), a controller here (engine, journal,
  display.scaleout.ControllerQueue: the publisher's thread through the write-only manager), ``webs``
  web processes (``chamber web``, the real command) and ``procs`` client processes (``python -m
  chamber.bench_web clients``) holding ``clients`` python-socketio AsyncClients over websocket on
  ``/hall``, dealt round-robin over the web processes.
* Once every client has its first ``state``, and ``SETTLE_S`` later (the log-ins' own work done), the
  sitting runs: ``votes`` roll-call votes, each opened, every deputy pressing once within ``spread_s``
  (KeyPressed submitted to the engine as a line loop does, with console event numbers), closed and
  announced; the publisher turns that into patches (at most one per 100 ms) as in a real sitting.
  ``green``: the web processes run as ``chamber web --gevent``.
* The manager's ``emit`` is timed for each patch; every client notes the rev and the moment of each
  patch it receives.  ``p50_ms``/``p99_ms``: over every (client, patch) delivery, emit to receipt;
  ``delivered`` = deliveries / (clients x patches published in the window); ``updates``, and
  ``updates_per_s`` over the window.
* ``cpu_s``: CPU seconds spent in the window by the web processes, the clients and the controller
  (the clients share the machine's cores with the servers here: on a real network they would not).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from chamber.bench_bus import bench_config_text
from chamber.core import events as ev
from chamber.core.values import Key

CHOICES = (Key.YES, Key.NO, Key.ABSTAIN)
PASSWORD = "bench password 1"
WORKER_TIMEOUT_S = 30.0
SETTLE_S = 1.0  # fanout: between the last client's first state and the measured window


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
        command: Sequence[str] = (sys.executable, "-m", "chamber.bench_web"),
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


def _percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile by the nearest rank (0 < q <= 1) of sorted ``values``."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q * len(values) + 0.5)))
    return values[rank - 1]


def _ms(value: float) -> float:
    return round(value * 1000, 1)


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"the chamber did not reach {what} within {timeout:.0f} s")
        time.sleep(0.02)


# --- latency -----------------------------------------------------------------------------------------------


def bench_latency(
    seats: int = 450,
    lines: int = 8,
    baud: int = 115200,
    *,
    spread_s: float = 1.0,
    rounds: int = 3,
    sim_procs: int = 2,
    seed: int = 1,
) -> dict[str, Any]:
    """Press-to-hall latency on the real path (see the module docstring)."""
    from chamber.config import load_config
    from chamber.daemon import start_controller
    from display.app import WebServer, create_app
    from display.auth import UserStore

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="chamber-latency-") as tmp_name:
        tmp = Path(tmp_name)
        cfg_path = tmp / "bench.toml"
        cfg_path.write_text(bench_config_text(seats, lines, baud), encoding="utf-8")
        config = load_config(cfg_path)
        groups: dict[int, list[str]] = {}
        for i, line in enumerate(config.lines):
            groups.setdefault(i % max(sim_procs, 1), []).append(line.id)
        workers: list[Worker] = []
        controller = None
        server = None
        hall: Worker | None = None
        applied: dict[int, float] = {}  # seat -> when the engine applied its first choice in the vote
        latencies: list[float] = []
        engine_lat: list[float] = []
        cycles: list[float] = []
        closes: list[float | None] = []
        announces: list[float | None] = []
        pressed = dropped = counted = patches = resyncs = 0
        waited = 0.0
        try:
            sims = []
            for n, ids in groups.items():
                args = ["sim", "--config", str(cfg_path), "--seed", str(seed + n)]
                for line_id in ids:
                    args += ["--line", line_id]
                sims.append(Worker(args, tmp, f"sim{n}"))
            workers += sims
            ports: dict[str, str] = {}
            for sim in sims:
                ports.update(sim.read()["lines"])
            for sim in sims:
                sim.ask({"do": "arrive"})
            store = f"sqlite:///{tmp / 'journal.db'}"
            controller = start_controller(config, ports=ports, store_url=store)
            engine = controller.engine
            engine.execute(ev.OpenSitting(roster=config.roster(), number=1, title="Бенчмарк"))
            _wait(lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == seats, 60, "every card in")
            engine.execute(ev.OpenRegistration())
            for sim in sims:
                sim.ask({"do": "register"})
            _wait(lambda: engine.snapshot().registered == seats, 60, "every deputy registered")
            engine.execute(ev.CloseRegistration())
            UserStore(controller.journal.engine).add("bench", "secretary", PASSWORD)
            app, socketio = create_app(controller, config)
            server = WebServer(app, socketio, "127.0.0.1", 0)
            server.start()
            cookie, csrf = _log_in(app)
            hall = Worker(["hall", "--url", server.url(""), "--cookie", cookie, f"--csrf={csrf}"], tmp, "hall")
            workers.append(hall)
            hall.read()  # connected, with its first state

            def note(event: ev.Input, effects: tuple[Any, ...]) -> None:
                # on the engine's thread, right after the press is journaled and applied
                if type(event) is ev.KeyPressed and event.key in CHOICES and event.seat not in applied:
                    applied[event.seat] = time.monotonic()

            engine.subscribe(note)
            loops = list(controller.lines.values())
            for _ in range(rounds):
                applied.clear()  # between votes: no press is on its way
                outcome = engine.execute(ev.OpenVote(title="Бенчмарк", duration_s=0))
                assert outcome.accepted, outcome
                number = hall.ask({"do": "wait_vote_open"})["number"]
                marks = [lp.stats.cycles for lp in loops]
                presses: list[list[Any]] = []
                for sim in sims:
                    sim.send({"do": "vote", "spread_s": spread_s})
                for sim in sims:
                    presses += sim.read(timeout=spread_s + WORKER_TIMEOUT_S)["presses"]
                latched = [p for p in presses if p[3]]
                shown = hall.ask({"do": "wait_voted", "count": len(latched), "timeout": 20.0}, timeout=30)
                cycles += [c for lp, mark in zip(loops, marks, strict=True) for c in _busiest(lp, loops, mark)]
                closed = hall.ask({"do": "close", "number": number}, timeout=30)
                report = hall.ask({"do": "report"})
                voted_at: dict[str, float] = report["voted_at"]
                latencies += [voted_at[str(seat)] - t for seat, _key, t, _ok in latched if str(seat) in voted_at]
                engine_lat += [applied[seat] - t for seat, _key, t, _ok in latched if seat in applied]
                pressed += len(latched)
                dropped += len(presses) - len(latched)
                counted += closed["counted"]
                closes.append(closed["close_to_result_ms"])
                announces.append(closed["announce_to_shown_ms"])
                patches += report["patches"]
                resyncs += report["resyncs"]
                waited = max(waited, shown["waited_s"])
        finally:
            if hall is not None:
                hall.stop()
            if server is not None:
                server.stop()
            if controller is not None:
                controller.stop()  # before the simulators: consoles vanishing under it are not news
            for worker in workers:
                worker.stop()
    latencies.sort()
    engine_lat.sort()
    cycle_ms = statistics.median(cycles) * 1000 if cycles else float("nan")
    worst_close = None if None in closes else max(c for c in closes if c is not None)
    worst_announce = None if None in announces else max(a for a in announces if a is not None)
    return {
        "seats": seats,
        "lines": lines,
        "baud": baud,
        "spread_s": spread_s,
        "rounds": rounds,
        "presses": pressed,
        "dropped_by_consoles": dropped,
        "shown": len(latencies),
        "lost": pressed - len(latencies),
        "counted": counted,
        "p50_ms": _ms(_percentile(latencies, 0.50)),
        "p90_ms": _ms(_percentile(latencies, 0.90)),
        "p99_ms": _ms(_percentile(latencies, 0.99)),
        "max_ms": _ms(latencies[-1]) if latencies else None,
        "engine_p50_ms": _ms(_percentile(engine_lat, 0.50)),
        "engine_p99_ms": _ms(_percentile(engine_lat, 0.99)),
        "cycle_ms": round(cycle_ms, 1),
        "cycles": len(cycles),
        "close_to_result_ms": worst_close,
        "close_to_result_ms_each": closes,
        "announce_to_shown_ms": worst_announce,
        "hall_patches": patches,
        "hall_resyncs": resyncs,
        "wait_voted_s": waited,
        "goal_p99_ms": round(cycle_ms + 50, 1),
        "goal_close_to_result_ms": round(cycle_ms + 100, 1),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _busiest(loop: Any, loops: list[Any], mark: int) -> list[float]:
    """The cycles since ``mark`` of ``loop`` if it is one of the busiest lines (most seats), else none."""
    most = max(len(lp.links) for lp in loops)
    cycles: list[float] = loop.stats.cycles_since(mark) if len(loop.links) == most else []
    return cycles


def _log_in(app: Any) -> tuple[str, str]:
    """The session cookie and CSRF token of the bench's secretary (made through the app's own log-in)."""
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as s:
        token = str(s["csrf"])
    resp = client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token})
    if resp.status_code != 302:
        raise RuntimeError(f"the bench's log-in failed: HTTP {resp.status_code}")
    cookie = client.get_cookie("chamber_session")
    with client.session_transaction() as s:
        token = str(s["csrf"])
    return str(cookie.value), token


# --- fanout ----------------------------------------------------------------------------------------------


def bench_fanout(
    clients: int = 1000,
    *,
    seats: int = 450,
    webs: int = 2,
    procs: int = 4,
    votes: int = 2,
    spread_s: float = 1.5,
    seed: int = 1,
    fast_queues: bool = True,
    green: bool = False,
) -> dict[str, Any]:
    """Patches from the controller through Redis and the web processes to ``clients`` hall pages."""
    from chamber.config import load_config
    from chamber.engine import Engine
    from chamber.journal import Journal
    from chamber.redis_local import RedisServer, free_port
    from display.auth import load_secret_key
    from display.scaleout import ControllerQueue

    started = time.monotonic()
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="chamber-fanout-") as tmp_name, RedisServer() as redis_server:
        tmp = Path(tmp_name)
        cfg_path = tmp / "bench.toml"
        text = bench_config_text(seats, max(1, (seats + 56) // 57), 115200)
        key_file = tmp / "secret_key"
        text += f'\n[web]\nmessage_queue = "{redis_server.url}"\nsecret_key_file = "{key_file}"\n'
        text += f'\n[store]\nurl = "sqlite:///{tmp / "journal.db"}"\n'
        cfg_path.write_text(text, encoding="utf-8")
        config = load_config(cfg_path)
        journal = Journal(config.store.url)
        engine = Engine(journal)
        engine.start()
        queue: ControllerQueue | None = None
        workers: list[Worker] = []
        try:
            # The web processes start (a second or two of imports) while the sitting is set up; the
            # store exists already (the journal above made it), so they do not race to create it.
            ports = [free_port() for _ in range(webs)]
            env = dict(os.environ, CHAMBER_FAST_QUEUES="1" if fast_queues else "0")
            for n, port in enumerate(ports):
                workers.append(_web_process(cfg_path, port, tmp, f"web{n}", env, green=green))
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            engine.execute(ev.OpenSitting(roster=config.roster(), number=1, title="Бенчмарк"))
            for seat in range(1, seats + 1):
                engine.submit(ev.CardInserted(seat=seat, uid=f"{seat:08X}"))
            engine.execute(ev.OpenRegistration())
            for seat in range(1, seats + 1):
                engine.submit(ev.KeyPressed(seat=seat, key=Key.REGISTER, seq=1, boot=1))
            engine.execute(ev.CloseRegistration())
            queue = ControllerQueue(engine, config, redis_server.url, secret=load_secret_key(str(key_file)))
            emitted: dict[int, float] = {}
            _time_emits(queue, emitted)
            queue.start()
            # the client processes start importing now too; their pages connect once the web answers
            per_proc = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
            client_workers = [
                Worker(["clients", "--count", str(n), "--offset", str(i), "--urls", ",".join(urls)], tmp, f"clients{i}")
                for i, n in enumerate(per_proc)
                if n
            ]
            workers += client_workers
            for url in urls:
                _wait(_healthy_check(url), 30, f"the web process on {url}")
            for w in client_workers:
                w.send({"do": "connect"})
            connected = [w.read(timeout=60) for w in client_workers]
            connect_s = time.monotonic() - started
            failed = sum(c["failed"] for c in connected)
            # The connections' own work (the states sent, decoded, the garbage they leave) settles first:
            # the window measures the fan-out of patches, not the tail of a thousand log-ins.
            time.sleep(SETTLE_S)
            first_rev = queue.publisher.hall.rev + 1
            redis_pid = redis_server.process.pid if redis_server.process is not None else None
            cpu0 = _cpu_all(workers, redis_pid)
            window = time.monotonic()
            seq = 1
            for _ in range(votes):
                seq += 1
                _vote(engine, seats, spread_s, seq, rng)
            last_rev = queue.publisher.hall.rev
            window_s = time.monotonic() - window
            _wait(lambda: all(w.proc.poll() is None for w in client_workers), 1, "clients alive")
            reported = time.monotonic()
            results = [w.ask({"do": "report", "last_rev": last_rev}, timeout=60) for w in client_workers]
            cpu1 = _cpu_all(workers, redis_pid)
            stopping = time.monotonic()
        finally:
            for worker in workers:  # the clients' disconnects and the web processes' ends overlap
                worker.request_stop()
            for worker in workers:
                worker.stop()
            if queue is not None:
                queue.stop()
            engine.stop()
            journal.close()
        stopped = time.monotonic()
    revs = [rev for rev in range(first_rev, last_rev + 1) if rev in emitted]
    latencies: list[float] = []
    received = 0
    for result in results:
        for rev, t in result["received"]:
            if first_rev <= rev <= last_rev and rev in emitted:
                received += 1
                latencies.append(t - emitted[rev])
    latencies.sort()
    expected = (clients - failed) * len(revs)
    cpu = {name: round(cpu1[name] - cpu0[name], 2) for name in cpu0}
    return {
        "clients": clients,
        "connected": clients - failed,
        "seats": seats,
        "webs": webs,
        "client_procs": len(per_proc),
        "gevent": green,
        "fast_queues": fast_queues and not green,
        "updates": len(revs),
        "updates_per_s": round(len(revs) / window_s, 1) if window_s else None,
        "window_s": round(window_s, 2),
        "p50_ms": _ms(_percentile(latencies, 0.50)),
        "p90_ms": _ms(_percentile(latencies, 0.90)),
        "p99_ms": _ms(_percentile(latencies, 0.99)),
        "max_ms": _ms(latencies[-1]) if latencies else None,
        "delivered": round(received / expected, 4) if expected else 0.0,
        "deliveries": received,
        "connect_s": round(connect_s, 1),  # from the start: Redis, controller, web processes, clients
        "report_s": round(stopping - reported, 1),
        "stop_s": round(stopped - stopping, 1),
        "cpu_s": {
            "web": round(sum(v for k, v in cpu.items() if k.startswith("web")), 2),
            "clients": round(sum(v for k, v in cpu.items() if k.startswith("clients")), 2),
            "controller_and_redis": round(cpu["self"] + cpu["redis"], 2),
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _time_emits(queue: Any, emitted: dict[int, float]) -> None:
    """Note the moment each hall patch leaves the controller (wraps the write-only manager's emit)."""
    manager = queue.manager
    emit = manager.emit

    def timed(event: str, data: Any, namespace: str | None = None, **kwargs: Any) -> Any:
        if event == "patch" and namespace == "/hall":
            emitted[int(data["rev"])] = time.monotonic()
        return emit(event, data, namespace=namespace, **kwargs)

    manager.emit = timed


def _web_process(cfg_path: Path, port: int, tmp: Path, name: str, env: dict[str, str], *, green: bool) -> Worker:
    """``chamber web`` itself, as an operator starts it."""
    command = (sys.executable, "-m", "chamber.cli", "web")
    args = ["--config", str(cfg_path), "--port", str(port), *(["--gevent"] if green else [])]
    return Worker(args, tmp, name, command=command, talks=False, env=env)


def _healthy_check(url: str) -> Callable[[], bool]:
    return lambda: _healthy(url)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _cpu_all(workers: Iterable[Worker], redis_pid: int | None) -> dict[str, float]:
    out = {w.name: w.cpu_s() for w in workers if w.proc.poll() is None}
    out["self"] = time.process_time()
    out["redis"] = _cpu_s(redis_pid) if redis_pid is not None else 0.0
    return out


def _vote(engine: Any, seats: int, spread_s: float, seq: int, rng: random.Random) -> None:
    """One roll-call vote: opened, every deputy pressing once within ``spread_s`` (as the line loops
    submit presses), closed once every press is applied."""
    outcome = engine.execute(ev.OpenVote(title="Бенчмарк", duration_s=0))
    assert outcome.accepted, outcome
    plan = sorted((rng.uniform(0, spread_s), seat) for seat in range(1, seats + 1))
    start = time.monotonic()
    futures = []
    for offset, seat in plan:
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        futures.append(engine.submit(ev.KeyPressed(seat=seat, key=rng.choice(CHOICES), seq=seq, boot=1)))
    for fut in futures:
        fut.result(10)
    time.sleep(0.3)  # the last presses' patch goes out before the result's (the publisher's 100 ms tick)
    assert engine.execute(ev.CloseVote()).accepted
    time.sleep(0.3)  # as a secretary looks at the result before announcing it
    assert engine.execute(ev.AnnounceResult()).accepted
    time.sleep(0.3)  # and the hall shows it a while before the next vote opens


# --- the command line --------------------------------------------------------------------------------------


def run_from_cli(args: argparse.Namespace) -> int:
    """``chamber bench latency|fanout``: check the options, run, print; exit 1 when a press was lost or
    an update not delivered, 2 for a bad option."""
    from chamber.config import STANDARD_BAUD_RATES

    name = f"chamber bench {args.what}"
    spread = args.spread if args.spread is not None else (1.0 if args.what == "latency" else 1.5)
    problems = [
        "--seats must be at least --lines" if args.seats < max(args.lines, 1) else "",
        "--lines must be 1 or more" if args.lines < 1 else "",
        f"--baud must be one of {', '.join(map(str, STANDARD_BAUD_RATES))}"
        if args.baud not in STANDARD_BAUD_RATES
        else "",
        "--votes must be 1 or more" if args.votes is not None and args.votes < 1 else "",
        "--spread must be 0 … 60 s" if not 0 <= spread <= 60 else "",
        "--clients must be 1 or more" if args.clients < 1 else "",
        "--webs must be 1 or more" if args.webs < 1 else "",
        "--client-procs must be 1 or more" if args.client_procs < 1 else "",
        "--gevent needs the gevent package" if args.gevent and importlib.util.find_spec("gevent") is None else "",
        "--sim-procs must be 1 or more" if args.sim_procs < 1 else "",
    ]
    if any(problems):
        print(f"{name}: " + "; ".join(p for p in problems if p), file=sys.stderr)
        return 2
    if args.what == "latency":
        result = bench_latency(
            args.seats,
            args.lines,
            args.baud,
            spread_s=spread,
            rounds=args.votes or 3,
            sim_procs=args.sim_procs,
        )
        failed = result["lost"] > 0 or result["counted"] != result["presses"]
    else:
        result = bench_fanout(
            args.clients,
            seats=args.seats,
            webs=args.webs,
            procs=min(args.client_procs, args.clients),
            votes=args.votes or 2,
            spread_s=spread,
            green=args.gevent,
        )
        failed = result["delivered"] < 1.0
    print(json.dumps(result, ensure_ascii=False) if args.json else "\n".join(f"{k:28} {v}" for k, v in result.items()))
    return 1 if failed else 0


# --- the worker processes' side ---------------------------------------------------------------------------


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _commands() -> Iterable[dict[str, Any]]:
    for line in sys.stdin:
        if line.strip():
            message: dict[str, Any] = json.loads(line)
            if message.get("do") == "stop":
                return
            yield message


def sim_main(args: argparse.Namespace) -> int:
    """``sim``: simulated consoles of some lines (wire timing on) and their deputies."""
    from chamber.config import load_config
    from hardware_sim.deputies import Deputies, Schedule
    from hardware_sim.simulator import Simulator

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    config = load_config(args.config)
    sim = Simulator(config, wire_time=True, turnaround_ms=0.0, seed=args.seed, only_lines=args.line)
    sim.start()
    try:
        deputies = Deputies(sim, seed=args.seed)
        rng = random.Random(args.seed)
        _say({"lines": sim.lines})
        for message in _commands():
            what = message.get("do")
            if what == "arrive":
                _say({"arrived": len(deputies.arrive(1.0))})
            elif what == "register":
                _say({"registered": deputies.register_all()})
            elif what == "vote":
                spread = float(message["spread_s"])
                plan = [(rng.uniform(0, spread), d.seat, rng.choice(CHOICES)) for d in deputies.present()]
                before = len(deputies.press_log)

                def press(seat: int, key: Key) -> None:
                    deputies.press(seat, key)  # logged with the moment the key went down

                Schedule(plan, press).join(spread + 10)
                log = deputies.press_log[before:]
                _say({"presses": [[p.seat, p.key, p.time, p.latched] for p in log]})
            else:
                _say({"error": f"unknown request {what!r}"})
    finally:
        sim.stop()
    return 0


class _Page:
    """A page's state from ``state`` and ``patch`` events, as live.js keeps it."""

    def __init__(self) -> None:
        from display.state import apply_patch

        self._apply = apply_patch
        self.state: dict[str, Any] | None = None
        self.patches = 0
        self.resyncs = 0
        self.voted_at: dict[str, float] = {}
        self.changed = asyncio.Event()

    def on_state(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        self.state = data
        for seat, view in (data.get("seats") or {}).items():
            if view.get("voted") and seat not in self.voted_at:
                self.voted_at[seat] = now
        self.changed.set()

    def on_patch(self, data: dict[str, Any]) -> bool:
        """Apply a patch; False when it does not follow the state held (the page then asks for the state)."""
        now = time.monotonic()
        if self.state is None or data["rev"] <= self.state["rev"]:
            return True
        if data["rev"] != self.state["rev"] + 1:
            self.resyncs += 1
            return False
        self.state = self._apply(self.state, data)
        self.patches += 1
        for seat, view in (data.get("seats") or {}).items():
            if isinstance(view, dict) and view.get("voted") is True and seat not in self.voted_at:
                self.voted_at[seat] = now
        self.changed.set()
        return True

    async def until(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.state is None or not predicate(self.state):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                return False
        return True


async def _hall(args: argparse.Namespace) -> int:
    import socketio

    page = _Page()
    hall = socketio.AsyncClient(reconnection=False)
    console = socketio.AsyncClient(reconnection=False)
    hall.on("state", page.on_state, namespace="/hall")

    async def on_patch(data: dict[str, Any]) -> None:
        if not page.on_patch(data):
            await hall.emit("resync", namespace="/hall")

    hall.on("patch", on_patch, namespace="/hall")
    await hall.connect(args.url, namespaces=["/hall"], transports=["websocket"], wait_timeout=20)
    headers = {"Cookie": f"chamber_session={args.cookie}"}
    auth = {"csrf": args.csrf, "lang": "en"}
    await console.connect(
        args.url, namespaces=["/console"], transports=["websocket"], headers=headers, auth=auth, wait_timeout=20
    )
    await page.until(lambda s: True, 20)
    _say({"connected": True})
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            message = json.loads(line)
            what = message.get("do")
            if what == "stop":
                break
            if what == "wait_vote_open":
                await page.until(lambda s: bool((s.get("vote") or {}).get("open")), 20)
                page.voted_at.clear()  # the vote's own presses from here (the patch opening it cleared the seats)
                vote = (page.state or {}).get("vote") or {}
                _say({"number": vote.get("number")})
            elif what == "wait_voted":
                t0 = time.monotonic()
                count = int(message["count"])

                def enough(_state: dict[str, Any], n: int = count) -> bool:
                    return len(page.voted_at) >= n

                await page.until(enough, float(message["timeout"]))
                _say({"shown": len(page.voted_at), "waited_s": round(time.monotonic() - t0, 2)})
            elif what == "close":
                number = message["number"]
                t0 = time.monotonic()
                reply = await console.call("command", {"type": "CloseVote"}, namespace="/console", timeout=20)
                t_ack = time.monotonic()
                if not reply.get("ok"):
                    _say({"error": f"CloseVote refused: {reply}"})
                    continue

                def has_result(s: dict[str, Any], number: Any = number) -> bool:
                    vote = s.get("vote") or {}
                    return vote.get("number") == number and vote.get("result") is not None

                shown = await page.until(has_result, 20)
                t1 = time.monotonic()
                result = ((page.state or {}).get("vote") or {}).get("result") or {}
                # the hall shows a result once the secretary announces it (phase result_shown)
                t2 = time.monotonic()
                reply = await console.call("command", {"type": "AnnounceResult"}, namespace="/console", timeout=20)
                announced = bool(reply.get("ok")) and await page.until(lambda s: s.get("phase") == "result_shown", 20)
                t3 = time.monotonic()
                _say(
                    {
                        "close_to_result_ms": _ms(t1 - t0) if shown else None,
                        "close_ack_ms": _ms(t_ack - t0),
                        "announce_to_shown_ms": _ms(t3 - t2) if announced else None,
                        "counted": sum(result.get("counts") or []),
                    }
                )
            elif what == "report":
                _say({"voted_at": page.voted_at, "patches": page.patches, "resyncs": page.resyncs})
            else:
                _say({"error": f"unknown request {what!r}"})
    finally:
        await console.disconnect()
        await hall.disconnect()
    return 0


async def _clients(args: argparse.Namespace) -> int:
    """``clients``: ``count`` hall pages; each notes (rev -> time) of every patch it receives."""
    import aiohttp
    import socketio

    urls = args.urls.split(",")
    received: list[dict[int, float]] = [{} for _ in range(args.count)]  # per page: rev -> when it came
    newest = [0] * args.count  # the highest rev each page has seen
    first_rev = [0] * args.count  # the rev of each page's first state (0: none yet)
    pages: list[Any] = []
    failures: Counter[str] = Counter()
    have_state = asyncio.Event()
    pending = args.count
    gate = asyncio.Semaphore(args.concurrency)

    # One HTTP session (connection pool) for all the pages of this process: a browser has its own,
    # but making 250 of them here would only burn the CPU the servers beside us are measured on.
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def one(i: int) -> None:
        nonlocal pending
        got = received[i]
        client = socketio.AsyncClient(reconnection=False, http_session=session)

        def on_state(data: dict[str, Any]) -> None:
            nonlocal pending
            if not first_rev[i]:
                first_rev[i] = int(data.get("rev", 0)) or -1
                pending -= 1
                if pending == 0:
                    have_state.set()

        def on_patch(data: dict[str, Any]) -> None:
            rev = int(data["rev"])
            got[rev] = time.monotonic()
            newest[i] = max(newest[i], rev)

        client.on("state", on_state, namespace="/hall")
        client.on("patch", on_patch, namespace="/hall")
        async with gate:
            try:
                await client.connect(
                    urls[(args.offset + i) % len(urls)], namespaces=["/hall"], transports=["websocket"], wait_timeout=30
                )
                pages.append(client)
            except Exception as exc:  # counted and reported, not hidden
                failures[type(exc).__name__] += 1
                pending -= 1
                if pending == 0:
                    have_state.set()

    loop = asyncio.get_running_loop()
    go = json.loads(await loop.run_in_executor(None, sys.stdin.readline) or "{}")  # the web processes answer
    if go.get("do") != "connect":
        return 0
    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(args.count)))
    with contextlib.suppress(TimeoutError):  # said below: "with_state" counts the pages that have one
        await asyncio.wait_for(have_state.wait(), 30)
    _say(
        {
            "connected": len(pages),
            "failed": args.count - len(pages),
            "failures": dict(failures),
            "with_state": sum(1 for r in first_rev if r),
            "connect_s": round(time.monotonic() - t0, 2),
        }
    )
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        message = json.loads(line)
        if message.get("do") == "report":
            last = int(message["last_rev"])
            end = time.monotonic() + 10
            # the last patch may still be on its way to some pages (bounded: a lost one is not waited for)
            while any(c and n < last for n, c in zip(newest, first_rev, strict=True)) and time.monotonic() < end:
                await asyncio.sleep(0.02)
            _say({"received": [[rev, t] for got in received for rev, t in got.items()]})
        elif message.get("do") == "stop":
            break
    await asyncio.gather(*(page.disconnect() for page in pages), return_exceptions=True)
    await session.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chamber.bench_web")
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("sim")
    p.add_argument("--config", required=True)
    p.add_argument("--line", action="append", default=None)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("hall")
    p.add_argument("--url", required=True)
    p.add_argument("--cookie", required=True)
    p.add_argument("--csrf", required=True)
    p = sub.add_parser("clients")
    p.add_argument("--urls", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=128)  # handshakes under way at once, per process
    args = parser.parse_args(argv)
    try:
        if args.what == "sim":
            return sim_main(args)
        return asyncio.run(_hall(args) if args.what == "hall" else _clients(args))
    except Exception as exc:
        _say({"error": f"{type(exc).__name__}: {exc}"})
        raise


if __name__ == "__main__":
    sys.exit(main())

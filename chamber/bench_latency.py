"""``chamber bench latency``: from a deputy's press to the hall page that shows it, on the real path.

It starts real processes and talks to them over loopback; nothing is simulated that a chamber runs for
real, except the deputies and their consoles (hardware_sim, with RS-485 wire timing).  Every time is
``time.monotonic()`` (CLOCK_MONOTONIC, one clock for every process on the machine), so a time taken in
one process is compared with one taken in another.

How it works
------------
* The simulator runs in two processes of its own (``python -m chamber.bench_web_workers sim``, the
  lines dealt between them as ``bench bus`` does), wire timing on, turnaround 0.  In each, the deputies
  of its seats are hardware_sim's :class:`~hardware_sim.deputies.Deputies`: every press goes through the
  simulated console and its press log keeps the moment the key went down.
* The controller runs here, as ``chamber run`` starts it: the engine with its SQLite journal, the
  I/O loop (``terminals.ioloop``) serving every line on the simulator's ptys, and the web server
  (display.app) with its publisher thread.
* A hall page and a secretary's console run in a process of their own (``python -m
  chamber.bench_web_workers hall``): python-socketio's AsyncClient over websocket, keeping the hall
  state from ``state`` and ``patch`` the way display/static/js/live.js does, noting when each seat
  first shows ``voted``.

The sitting: every card in, registration, then ``rounds`` (3) roll-call votes opened with no time
limit.  In each, every deputy presses one choice key (За / Проти / Утримався) at a moment drawn
uniformly within ``spread_s`` (1 s); once every seat shows, the secretary closes the vote through
``/console`` and then announces the result (the hall screen shows a result from the announcement on).

The figures
-----------
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
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from chamber.bench_bus import bench_config_text
from chamber.bench_web_procs import CHOICES, WORKER_TIMEOUT_S, Worker, ms, percentile, wait_until
from chamber.core import events as ev

PASSWORD = "bench password 1"


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
            wait_until(
                lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == seats, 60, "every card in"
            )
            engine.execute(ev.OpenRegistration())
            for sim in sims:
                sim.ask({"do": "register"})
            wait_until(lambda: engine.snapshot().registered == seats, 60, "every deputy registered")
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
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p90_ms": ms(percentile(latencies, 0.90)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(latencies[-1]) if latencies else None,
        "engine_p50_ms": ms(percentile(engine_lat, 0.50)),
        "engine_p99_ms": ms(percentile(engine_lat, 0.99)),
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

"""``chamber bench fanout``: patches from the controller through Redis and the web processes to many hall pages.

It starts real processes and talks to them over loopback.  Every time is ``time.monotonic()``
(CLOCK_MONOTONIC, one clock for every process on the machine), so the moment a patch leaves the
controller is compared with the moment a client process received it.

How it works
------------
* A redis-server on a free loopback port (chamber.redis_local), a controller here (engine, journal,
  display.scaleout.ControllerQueue: the publisher's thread through the write-only manager), ``webs``
  web processes (``chamber web``, the real command) and ``procs`` client processes (``python -m
  chamber.bench_web_workers clients``) holding ``clients`` python-socketio AsyncClients over websocket
  on ``/hall``, dealt round-robin over the web processes.
* Once every client has its first ``state``, and ``SETTLE_S`` later (the log-ins' own work done), the
  sitting runs: ``votes`` roll-call votes, each opened, every deputy pressing once within ``spread_s``
  (KeyPressed submitted to the engine as a line loop does, with console event numbers), closed and
  announced; the publisher turns that into patches (at most one per 100 ms) as in a real sitting.
  ``green``: the web processes run as ``chamber web --gevent``.

The figures
-----------
* The manager's ``emit`` is timed for each patch; every client notes the rev and the moment of each
  patch it receives.  ``p50_ms``/``p99_ms``: over every (client, patch) delivery, emit to receipt;
  ``delivered`` = deliveries / (clients x patches published in the window); ``updates``, and
  ``updates_per_s`` over the window.
* ``cpu_s``: CPU seconds spent in the window by the web processes, the clients and the controller
  (the clients share the machine's cores with the servers here: on a real network they would not).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from chamber.bench_bus import bench_config_text
from chamber.bench_web_procs import CHOICES, Worker, cpu_all, healthy_check, ms, percentile, wait_until, web_process
from chamber.core import events as ev
from chamber.core.values import Key

SETTLE_S = 1.0  # between the last client's first state and the measured window


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
                workers.append(web_process(cfg_path, port, tmp, f"web{n}", env, green=green))
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
                wait_until(healthy_check(url), 30, f"the web process on {url}")
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
            cpu0 = cpu_all(workers, redis_pid)
            window = time.monotonic()
            seq = 1
            for _ in range(votes):
                seq += 1
                _vote(engine, seats, spread_s, seq, rng)
            last_rev = queue.publisher.hall.rev
            window_s = time.monotonic() - window
            wait_until(lambda: all(w.proc.poll() is None for w in client_workers), 1, "clients alive")
            reported = time.monotonic()
            results = [w.ask({"do": "report", "last_rev": last_rev}, timeout=60) for w in client_workers]
            cpu1 = cpu_all(workers, redis_pid)
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
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p90_ms": ms(percentile(latencies, 0.90)),
        "p99_ms": ms(percentile(latencies, 0.99)),
        "max_ms": ms(latencies[-1]) if latencies else None,
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

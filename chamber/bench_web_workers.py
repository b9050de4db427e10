"""What runs inside the web benchmarks' worker processes: ``python -m chamber.bench_web_workers sim|hall|clients``.

chamber.bench_latency and chamber.bench_fanout start these as :class:`chamber.bench_web_procs.Worker`
and speak to them in JSON lines: a request (``{"do": ...}``) is a line on the process's stdin, an
answer a line on its stdout.  ``{"do": "stop"}`` or the end of stdin ends it; a failure is said as
``{"error": ...}``, which the bench's side raises.

How it works
------------
* ``sim`` (:func:`sim_main`): hardware_sim's simulated consoles of some lines (wire timing on,
  turnaround 0) and their :class:`~hardware_sim.deputies.Deputies`.  It says its lines' ptys first,
  then answers ``arrive`` (every card in), ``register`` (every present deputy presses Реєстрація) and ``vote``
  (every present deputy presses one choice key at a moment drawn within ``spread_s``; the answer is the
  press log: seat, key, the moment the key went down, latched by the console or not).
* ``hall``: a hall page and a secretary's console (python-socketio AsyncClients over websocket).  The
  page keeps its state from ``state`` and ``patch`` as display/static/js/live.js does (:class:`_Page`),
  noting when each seat first shows ``voted``; the console closes the vote and announces the result
  through ``/console``, timed to the hall updates that show them.
* ``clients``: ``count`` hall pages on one HTTP session, dealt round-robin over the web processes'
  ``urls`` from ``offset``, at most ``concurrency`` handshakes at once, connecting once told to; each
  page notes the rev and the moment of every patch it receives, reported once every page has the last
  rev (waited for 10 s at most).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from chamber.bench_web_procs import CHOICES, ms
from chamber.core.values import Key


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
                        "close_to_result_ms": ms(t1 - t0) if shown else None,
                        "close_ack_ms": ms(t_ack - t0),
                        "announce_to_shown_ms": ms(t3 - t2) if announced else None,
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
    parser = argparse.ArgumentParser(prog="python -m chamber.bench_web_workers")
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

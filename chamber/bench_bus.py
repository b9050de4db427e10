"""``chamber bench bus``: the real controller polling simulated consoles with wire timing.

The simulator runs in processes of its own (``python -m hardware_sim``, two by
default, the lines dealt between them) with wire emulation on, so its CPU does
not count against the controller's, and every frame takes the time it would
take on a real RS-485 line.  The controller is
the real one: the engine with its SQLite journal and the one I/O loop
(``terminals.ioloop``) serving every line's protocol machine, talking to the
simulator's ptys through the serial transport.

Measured, side by side in one run:
- ``cycle_ms``: median time for the busiest line to poll each of its seats once;
- ``wire_limit_ms``: the same cycle computed from the frames and the baud rate
  alone, turnaround 0: seats x ((request + reply bytes) x 11 / baud + 2 x t3.5);
- ``ratio`` = cycle_ms / wire_limit_ms;
- ``cpu_per_poll_us``: the I/O loop's thread CPU time over all polls (every
  line's polls, writes and broadcasts are served by that one thread);
- ``wakeups_per_poll``: how often the loop's selector returned, per poll (one
  wake-up serves every line whose reply or deadline has come);
- ``python_us_per_idle_poll`` / ``python_us_per_changed_poll``: the protocol
  machine's own work per poll, driven in memory with no I/O and no clock
  (``poll_work_us``), and ``generator_us_per_poll``: what the generator that
  carries a transaction costs by itself;
- ``sim_reply_late_ms``: how late, on average, the simulator delivered a reply
  against its own wire clock (the instrument's error), and ``ratio_net_of_sim``:
  the ratio with that taken out of each poll of the busiest line;
- ``timeouts`` and ``offline_verdicts`` in the window (0 without faults: a
  console declared offline is only probed, which would shorten the cycle);
- ``presses`` made through the simulator's press API while the vote is open and
  ``lost_presses``: presses the console reported as taken by the simulator
  but never journaled by the engine (each press carries its console event
  number, so a press journaled twice cannot hide one lost; the journal is
  replayed, and a press the sitting refused as a repeat of one it never took
  counts as lost too; other refusals are listed in ``refused_presses``);
- ``valid``: false when consoles were declared offline in a run without
  injected faults (the host fell behind; the timing figures mean nothing).
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.events import decode_input
from chamber.core.sitting import Sitting
from chamber.core.values import Key
from terminals.registers import POLL_COUNT
from terminals.rtu import t35_seconds

POLL_BYTES = 8 + 5 + 2 * POLL_COUNT


def bench_config_text(seats: int, lines: int, baud: int, timeout_ms: int = 10, retries: int = 2) -> str:
    """A config.toml for a chamber of ``seats`` seats spread evenly over ``lines`` lines."""
    out = [
        "[council]",
        'name = "Bench council"',
        f"composition = {seats}",
        "head_votes = true",
        "head_in_composition = true",
        "",
        "[rules]",
        "vote_duration_s = 600",
        "",
    ]
    for i in range(lines):
        out += [
            "[[lines]]",
            f'id = "L{i + 1}"',
            f'port = "/dev/null-bench-{i + 1}"',
            f"baud = {baud}",
            'parity = "E"',
            f"timeout_ms = {timeout_ms}",
            f"retries = {retries}",
            "",
        ]
    per_line = [0] * lines
    for s in range(1, seats + 1):
        line = (s - 1) % lines
        per_line[line] += 1
        out += ["[[seats]]", f"id = {s}", f'line = "L{line + 1}"', f"unit = {per_line[line]}", ""]
        out += [
            "[[deputies]]",
            f"id = {s}",
            f'full_name = "Депутат {s}"',
            f'cards = ["{s:08X}"]',
            f"seat = {s}",
            "",
        ]
    return "\n".join(out)


def wire_limit_ms(seats_on_line: int, baud: int) -> float:
    per_poll = POLL_BYTES * 11 / baud + 2 * t35_seconds(baud)
    return seats_on_line * per_poll * 1000


class SimProcess:
    def __init__(self, config_path: Path, wire_time: bool = True, lines: list[str] | None = None) -> None:
        args = [sys.executable, "-m", "hardware_sim", "--config", str(config_path), "--http-port", "0"]
        if wire_time:
            args += ["--wire-time", "--turnaround-ms", "0"]
        for line_id in lines or ():
            args += ["--line", line_id]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the simulator did not start")
        info = json.loads(line)
        self.lines: dict[str, str] = info["lines"]
        self.http: str = info["http"]

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.http + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read() or b"{}")
            return result

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wake_floor_us(baud: int, rounds: int = 300) -> float:
    """CPU this machine charges a thread that only waits as a poll waits: for the reply, then the silence.

    Measured in the same run as the bus figures, so that ``cpu_per_poll_us`` can be read against
    what the machine charges for the two timed wake-ups of a poll when no work is done at all
    (tens of microseconds on virtual machines, a few on bare metal).
    """
    reply_wait = POLL_BYTES * 11 / baud + t35_seconds(baud)
    t0 = time.thread_time()
    for _ in range(rounds):
        time.sleep(reply_wait)
        time.sleep(t35_seconds(baud))
    return (time.thread_time() - t0) / rounds * 1e6


def poll_work_us(consoles: int = 57, polls: int = 100_000) -> dict[str, float]:
    """CPU of the real ``LineMachine`` per idle poll and per changed reply, driven in memory: no port, no
    clock, no silences (t3.5 set to 0), each reply fed as soon as its request is out."""
    from terminals import rtu
    from terminals.links import ConsoleLink
    from terminals.machine import LineMachine
    from terminals.state import TX

    links = [ConsoleLink(unit, unit) for unit in range(1, consoles + 1)]
    idle = {link.unit: rtu.with_crc(bytes([link.unit, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0])) for link in links}
    touched = {link.unit: rtu.with_crc(bytes([link.unit, 4, 8, 0, 2, 0, 0, 0, 0, 0, 0])) for link in links}
    machine = LineMachine("bench", links, baud=115200)
    machine.t35 = 0.0  # no silences: only the work is timed
    for link in links:
        link.last_reply, link.status, link.card_seq = idle[link.unit], 0, 0
    machine.opened(0.0)
    frame = machine.step(0.0)
    assert frame is not None
    feed, step, outbox = machine.feed, machine.step, machine.outbox
    t0 = time.thread_time()
    for _ in range(polls):
        feed(idle[frame[0]], 0.0)
        frame = step(0.0)
        assert frame is not None
    unchanged = (time.thread_time() - t0) / polls * 1e6
    assert machine.stats.unchanged >= polls - 1
    t0 = time.thread_time()
    for i in range(polls):  # the presence sensor toggles at every poll: decoded, an event queued
        feed((idle, touched)[(i // consoles) % 2][frame[0]], 0.0)
        frame = step(0.0)
        assert frame is not None
        outbox.clear()  # the I/O loop hands them to the engine: not the machine's work
    changed = (time.thread_time() - t0) / polls * 1e6

    # The generator plumbing alone: a sub-generator per poll, one yield and one send, as _poll is driven.
    op = (TX, links[0].poll, links[0].poll_len)

    def one() -> Any:
        return (yield op)

    def turns() -> Any:
        while True:
            yield from one()

    gen = turns()
    next(gen)
    t0 = time.thread_time()
    for _ in range(polls):
        gen.send(b"")
    plumbing = (time.thread_time() - t0) / polls * 1e6
    return {
        "python_us_per_idle_poll": round(unchanged, 2),
        "python_us_per_changed_poll": round(changed, 2),
        "generator_us_per_poll": round(plumbing, 2),
    }


def bench_bus(
    seats: int = 450,
    lines: int = 8,
    baud: int = 115200,
    seconds: float = 10.0,
    fault_rate: float = 0.0,
    press_rate: float = 40.0,
    seed: int = 1,
    sim_procs: int = 2,
) -> dict[str, Any]:
    from chamber.daemon import start_controller

    rng = random.Random(seed)
    floor_us = wake_floor_us(baud)
    work = poll_work_us()
    with tempfile.TemporaryDirectory(prefix="chamber-bus-") as tmp:
        cfg_path = Path(tmp) / "bench.toml"
        cfg_path.write_text(bench_config_text(seats, lines, baud), encoding="utf-8")
        config: Config = load_config(cfg_path)
        # The lines are dealt among ``sim_procs`` simulator processes (default 2: on two cores, one
        # process for all eight lines delivered replies 0.3-0.7 ms late against its own wire clock,
        # two processes 0.2-0.4 ms; one process per line cost more in scheduling than it saved).
        groups: dict[str, list[str]] = {}
        for i, line in enumerate(config.lines):
            groups.setdefault(f"sim{i % max(sim_procs, 1)}", []).append(line.id)
        procs = {name: SimProcess(cfg_path, lines=ids if len(groups) > 1 else None) for name, ids in groups.items()}
        line_group = {line_id: name for name, ids in groups.items() for line_id in ids}
        sim = _Sims(procs, {seat.id: line_group[seat.line] for seat in config.seats}, line_group)
        controller = None
        try:
            for seat in range(1, seats + 1):
                sim.post("/card", {"seat": seat, "uid": f"{seat:08X}"})
            controller = start_controller(config, ports=sim.lines, store_url=f"sqlite:///{Path(tmp) / 'j.db'}")
            engine = controller.engine
            engine.execute(ev.OpenSitting(roster=config.roster()))
            _wait(lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == seats, 60, "every card in")
            engine.execute(ev.OpenRegistration())
            for seat in range(1, seats + 1):
                sim.post("/press", {"seat": seat, "key": int(Key.REGISTER)})
            _wait(lambda: engine.snapshot().registered == seats, 60, "every deputy registered")
            engine.execute(ev.CloseRegistration())
            engine.execute(ev.OpenVote(duration_s=0))
            if fault_rate:
                for line_id in sim.lines:
                    sim.post("/fault", {"line": line_id, "crc_rate": fault_rate, "drop_rate": fault_rate})
            # measurement window: only what happens from here counts
            loops = list(controller.lines.values())
            io = controller.io
            assert io is not None
            base = [(lp.stats.polls, lp.stats.cycles) for lp in loops]
            cpu0, wakeups0 = io.cpu_s, io.wakeups
            errors0 = sum((lp.stats.errors for lp in loops), Counter())
            late0 = _sim_lateness(sim)
            presses = 0
            t_end = time.perf_counter() + seconds
            keys = (Key.YES, Key.NO, Key.ABSTAIN)
            while time.perf_counter() < t_end:
                sim.post("/press", {"seat": rng.randint(1, seats), "key": int(rng.choice(keys))})
                presses += 1
                time.sleep(rng.expovariate(press_rate))
            stats = [(lp.stats.polls, lp.stats.cycles_since(mark)) for lp, (_, mark) in zip(loops, base, strict=True)]
            cpu, wakeups = io.cpu_s - cpu0, io.wakeups - wakeups0
            errors = sum((lp.stats.errors for lp in loops), Counter())
            errors.subtract(errors0)
            late = _sim_lateness(sim)
            if fault_rate:
                for line_id in sim.lines:
                    sim.post("/fault", {"line": line_id, "crc_rate": 0.0, "drop_rate": 0.0})
            _wait(
                lambda: _pending(sim) == 0, 60, "every console's events acknowledged"
            )  # every console's FIFO drained and acknowledged
            time.sleep(0.5)
            uid = engine.sitting_uid or ""
        finally:
            if controller is not None:
                controller.stop()
            sim.stop()
        from chamber.journal import Journal

        journal = Journal(f"sqlite:///{Path(tmp) / 'j.db'}")
        try:
            # Replayed, so that a press journaled but refused as a repeat of one never taken (numbering
            # gone wrong) counts as lost like one never seen; other refusals are counted by reason.
            taken: set[tuple[int, int | None]] = set()
            refused: Counter[str] = Counter()
            journaled = 0
            vote_open = False
            replay = Sitting()
            for rec in journal.records(uid):
                event = decode_input(rec.payload)
                effects = replay.apply(event, rec.at_ms)
                if rec.type == "OpenVote":
                    vote_open = True
                if vote_open and isinstance(event, ev.KeyPressed):
                    journaled += 1
                    key = (event.seat, event.seq)
                    first = effects[0] if effects else None
                    if key in taken:
                        continue  # the same console event journaled again (a re-read): harmless
                    if isinstance(first, Rejected):
                        refused[first.reason] += 1
                        if first.reason == "duplicate_event":
                            continue  # never taken before, yet refused as a repeat: the press is lost
                    taken.add(key)
        finally:
            journal.close()
    busiest = max(len(lp.links) for lp in loops)
    cycles = [c for _, cyc in stats for c in cyc]
    busiest_cycles = [c for lp, (_, cyc) in zip(loops, stats, strict=True) if len(lp.links) == busiest for c in cyc]
    polls = sum(p for p, _ in stats) - sum(p for p, _ in base)
    cycle_ms = statistics.median(busiest_cycles) * 1000 if busiest_cycles else float("nan")
    limit = wire_limit_ms(busiest, baud)
    sim_late_ms = (late[1] - late0[1]) / max(late[0] - late0[0], 1)
    return {
        "seats": seats,
        "lines": lines,
        "baud": baud,
        "fault_rate": fault_rate,
        "seconds": seconds,
        "cycle_ms": round(cycle_ms, 2),
        "cycle_ms_p90": round(sorted(busiest_cycles)[int(0.9 * len(busiest_cycles))] * 1000, 2)
        if busiest_cycles
        else None,
        "wire_limit_ms": round(limit, 2),
        "ratio": round(cycle_ms / limit, 3),
        "cycles": len(cycles),
        "polls": polls,
        "cpu_per_poll_us": round(cpu / polls * 1e6, 1) if polls else None,
        "wakeups_per_poll": round(wakeups / polls, 2) if polls else None,
        "wake_floor_us": round(floor_us, 1),
        **work,
        "presses": presses,
        "journaled_presses": len(taken),
        "lost_presses": presses - len(taken),
        "duplicate_journal_records": journaled - len(taken) - refused["duplicate_event"],
        "refused_presses": dict(refused),
        # faults the controller saw in the window: a console declared offline is then only probed,
        # which would make a cycle shorter than the wire limit assumes, so these should be 0 without
        # --fault-rate
        # the simulator's own lateness in delivering replies against its wire clock (mean per reply):
        # part of cycle_ms that the instrument adds, not the controller
        "sim_reply_late_ms": round(sim_late_ms, 3),
        # the ratio with that lateness taken out of every poll of the busiest line: an upper bound of
        # what the controller itself costs (the simulator's delay in noticing a request is still in it)
        "ratio_net_of_sim": round((cycle_ms - busiest * sim_late_ms) / limit, 3),
        "timeouts": errors["timeout"],
        "offline_verdicts": errors["offline"],
        # Without injected faults a console declared offline is the machine falling behind (a loaded
        # host), and a cycle that skips it is shorter than the wire allows: the timing is not valid.
        "valid": fault_rate > 0 or errors["offline"] == 0,
    }


class _Sims:
    """The simulator processes (each serving some of the lines) behind one press API."""

    def __init__(self, sims: dict[str, SimProcess], seat_sim: dict[int, str], line_sim: dict[str, str]) -> None:
        self.sims = sims
        self.seat_sim = seat_sim
        self.line_sim = line_sim
        self.lines = {line_id: path for sim in sims.values() for line_id, path in sim.lines.items()}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send to the process that serves the body's seat or line."""
        name = self.seat_sim[int(body["seat"])] if "seat" in body else self.line_sim[str(body["line"])]
        return self.sims[name].post(path, body)

    def stop(self) -> None:
        for sim in self.sims.values():
            sim.stop()


def _sim_lateness(sims: _Sims) -> tuple[int, float]:
    """Replies timed against the wire clock, and their lateness summed in ms, over every line."""
    count, total = 0, 0.0
    for sim in sims.sims.values():
        with urllib.request.urlopen(sim.http + "/stats", timeout=10) as resp:
            for line in json.loads(resp.read()).values():
                count += int(line["timed_replies"])
                total += float(line["late_ms_total"])
    return count, total


def _pending(sims: _Sims) -> int:
    total = 0
    for sim in sims.sims.values():
        # /pending, not /state: decoding every console's state many times a second starves the
        # simulator's wire threads, and the consoles then miss the controller's timeouts
        with urllib.request.urlopen(sim.http + "/pending", timeout=10) as resp:
            total += int(json.loads(resp.read())["total"])
    return total


def _wait(predicate: Any, timeout: float, what: str = "the expected state") -> None:
    t_end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > t_end:
            raise TimeoutError(f"the chamber did not reach {what} within {timeout:.0f} s")
        time.sleep(0.05)

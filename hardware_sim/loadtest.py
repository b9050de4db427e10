"""``python -m hardware_sim.loadtest``: how well the simulator alone keeps wire time under full load.

How it works
------------
It writes a council of ``--seats`` consoles on ``--lines`` lines (128 units a line at most), starts the
simulator on it as ``chamber bench bus`` does (``python -m hardware_sim --wire-time --turnaround-ms 0``,
the lines dealt among ``--sim-procs`` processes, default one), and polls every line itself from one
thread: the idle poll (function 04, IR 0 … 3) of each console in turn, the next request written the
moment the previous reply is complete, so the simulator's bus clock is the only thing pacing a line.
The driver is a few lines of Python on ``epoll``, not the controller, so what it measures is the
simulator's share alone.  Over ``--seconds`` (after a one-second warm-up) it reports, as JSON:

* ``sim_reply_late_ms`` (mean), ``sim_reply_late_max_ms``: how late the simulator wrote replies against
  its own wire clock (its ``/stats``, the figure ``chamber bench bus`` reports under the same name);
* ``ratio``: the time one poll took on a line, against the wire limit of a poll,
  (8 + 13) x 11 / baud + 2 x t3.5 (what a perfect simulator and an instant master would achieve);
* ``reply_ms_p50`` / ``p99`` / ``max``: request written to reply read, as the driver saw it: the wire
  limit of one poll (each request is written as the previous reply is read, so it waits the t3.5
  after that reply too: 5.5 ms at 115200 baud), plus every delay on both sides;
* ``sim_cpu_percent``: the simulator processes' CPU time over the window, in percent of one core, and
  ``sim_cpu_us_per_poll``; the same for the driver; ``timeouts``: polls with no reply within 50 ms.

Run it as ``python -m hardware_sim.loadtest --seats 4096 --lines 32 --baud 115200``.  ``--pymodbus``
and ``--no-realtime`` are passed on to the simulator; an older simulator without those flags works
without them (its ``/stats`` has no ``late_ms_max``: reported as null).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import tty
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from terminals.rtu import read_registers, t35_seconds

POLL_BYTES = 8 + 13
REPLY_BYTES = 13
TIMEOUT_S = 0.05
UNITS_PER_LINE = 128


def council(seats: int, lines: int, baud: int) -> str:
    """A config of ``seats`` consoles dealt round-robin over ``lines`` lines."""
    out = ['[council]\nname = "Навантаження"', f"composition = {seats}", ""]
    for n in range(1, lines + 1):
        out += ["[[lines]]", f'id = "L{n}"', f'port = "/dev/null-{n}"', f"baud = {baud}", ""]
    for s in range(1, seats + 1):
        out += ["[[seats]]", f"id = {s}", f'line = "L{(s - 1) % lines + 1}"', f"unit = {(s - 1) // lines + 1}", ""]
    for s in range(1, seats + 1):
        out += ["[[deputies]]", f"id = {s}", f'full_name = "Депутат {s}"', f'cards = ["{s:08X}"]', f"seat = {s}", ""]
    return "\n".join(out)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stats(url: str) -> tuple[int, float, float | None]:
    with urllib.request.urlopen(url + "/stats", timeout=10) as resp:
        stats: dict[str, dict[str, Any]] = json.loads(resp.read())
    n = sum(int(line["timed_replies"]) for line in stats.values())
    total = sum(float(line["late_ms_total"]) for line in stats.values())
    peaks = [float(line["late_ms_max"]) for line in stats.values() if "late_ms_max" in line]
    return n, total, max(peaks) if peaks else None


class _Line:
    def __init__(self, path: str, units: int) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.requests = [read_registers(unit, 0, 4) for unit in range(1, units + 1)]
        self.turn = 0
        self.buf = b""
        self.sent_at = 0.0
        self.polls = 0
        self.timeouts = 0
        self.reply_s: list[float] = []

    def send(self, now: float) -> None:
        self.buf = b""
        self.sent_at = now
        os.write(self.fd, self.requests[self.turn % len(self.requests)])
        self.turn += 1


def drive(paths: dict[str, str], units: dict[str, int], seconds: float) -> dict[str, _Line]:
    """Poll every line back to back for ``seconds``; the lines with their counts."""
    lines = {line_id: _Line(path, units[line_id]) for line_id, path in paths.items()}
    by_fd = {line.fd: line for line in lines.values()}
    poller = select.epoll()
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    start = time.perf_counter()
    for line in lines.values():
        line.send(start)
    end = start + seconds
    try:
        while (now := time.perf_counter()) < end:
            for fd, _ in poller.poll(0.01):
                line = by_fd[fd]
                line.buf += os.read(fd, 256)
                if len(line.buf) >= REPLY_BYTES:
                    line.polls += 1
                    got = time.perf_counter()
                    line.reply_s.append(got - line.sent_at)
                    line.send(got)
            now = time.perf_counter()
            for line in lines.values():
                if now - line.sent_at > TIMEOUT_S:
                    line.timeouts += 1
                    line.send(now)
    finally:
        poller.close()
        for line in lines.values():
            os.close(line.fd)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hardware_sim.loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--seats", type=int, default=4096)
    parser.add_argument("--lines", type=int, default=32)
    parser.add_argument("--baud", type=int, default=115200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sim-procs", type=int, default=1, help="simulator processes, the lines dealt among them")
    parser.add_argument("--pymodbus", action="store_true", help="let pymodbus answer in the simulator")
    parser.add_argument("--no-realtime", action="store_true", help="keep the simulator's loop at normal priority")
    args = parser.parse_args(argv)
    if args.lines < 1 or args.sim_procs < 1 or not args.lines <= args.seats <= args.lines * UNITS_PER_LINE:
        print(f"--lines and --sim-procs >= 1; --seats from --lines to --lines x {UNITS_PER_LINE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="sim-load-") as tmp:
        cfg = Path(tmp) / "council.toml"
        cfg.write_text(council(args.seats, args.lines, args.baud), encoding="utf-8")
        line_ids = [f"L{n}" for n in range(1, args.lines + 1)]
        groups = [line_ids[i :: args.sim_procs] for i in range(args.sim_procs)]
        procs: list[tuple[subprocess.Popen[str], dict[str, Any]]] = []
        try:
            for group in groups:
                cmd = [sys.executable, "-m", "hardware_sim", "--config", str(cfg), "--http-port", "0"]
                cmd += ["--wire-time", "--turnaround-ms", "0", *(a for line_id in group for a in ("--line", line_id))]
                cmd += ["--pymodbus"] if args.pymodbus else []
                cmd += ["--no-realtime"] if args.no_realtime else []
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
                assert proc.stdout is not None
                procs.append((proc, json.loads(proc.stdout.readline())))
            paths = {line_id: path for _, info in procs for line_id, path in info["lines"].items()}
            units = {line_id: len(range(n, args.seats + 1, args.lines)) for n, line_id in enumerate(line_ids, 1)}
            drive(paths, units, 1.0)  # warm-up: every console answered once, the caches and the scheduler settled
            before = [_stats(info["http"]) for _, info in procs]
            cpu0 = [_cpu_s(proc.pid) for proc, _ in procs]
            own0 = time.process_time()
            lines = drive(paths, units, args.seconds)
            own = time.process_time() - own0
            cpu = sum(_cpu_s(proc.pid) for proc, _ in procs) - sum(cpu0)
            after = [_stats(info["http"]) for _, info in procs]
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(10)
    polls = sum(line.polls for line in lines.values())
    replies = sorted(t for line in lines.values() for t in line.reply_s) or [0.0]
    timed = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    late = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    peaks = [a[2] for a in after if a[2] is not None]
    limit_ms = (POLL_BYTES * 11 / args.baud + 2 * t35_seconds(args.baud)) * 1000
    per_poll_ms = args.seconds * 1000 * args.lines / max(polls, 1)
    result = {
        "seats": args.seats,
        "lines": args.lines,
        "baud": args.baud,
        "sim_procs": args.sim_procs,
        "pymodbus": args.pymodbus,
        "seconds": args.seconds,
        "polls": polls,
        "timeouts": sum(line.timeouts for line in lines.values()),
        "poll_ms": round(per_poll_ms, 3),
        "wire_limit_poll_ms": round(limit_ms, 3),
        "ratio": round(per_poll_ms / limit_ms, 3),
        "sim_reply_late_ms": round(late / max(timed, 1), 3),
        "sim_reply_late_max_ms": round(max(peaks), 3) if peaks else None,  # since start, warm-up included
        "reply_ms_p50": round(replies[len(replies) // 2] * 1000, 3),
        "reply_ms_p99": round(replies[int(len(replies) * 0.99)] * 1000, 3),
        "reply_ms_max": round(replies[-1] * 1000, 3),
        "sim_cpu_percent": round(cpu / args.seconds * 100, 1),
        "sim_cpu_us_per_poll": round(cpu / max(polls, 1) * 1e6, 1),
        "driver_cpu_percent": round(own / args.seconds * 100, 1),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The web benchmarks (chamber/bench_web.py), small and bounded: the same real processes as the full runs
(simulated consoles with wire timing, the controller and its web server, python-socketio clients over
websocket; for fanout a redis-server, ``chamber web`` processes and client processes), a 43-seat chamber
and 50 clients, so they finish in seconds.  They check that nothing is lost and that every figure is
there and sane; the goals themselves are the full runs' (docs/BENCHMARKS.md), not a shared test
machine's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chamber.bench_fanout import bench_fanout
from chamber.bench_latency import bench_latency
from chamber.cli import main

LATENCY_KEYS = {"p50_ms", "p99_ms", "cycle_ms", "close_to_result_ms", "presses", "lost"}
FANOUT_KEYS = {"p50_ms", "p99_ms", "delivered"}


def test_latency_every_press_shows_on_the_hall() -> None:
    result = bench_latency(43, 2, 115200, spread_s=0.5, rounds=1)
    assert set(result) >= LATENCY_KEYS
    assert result["presses"] == 43 and result["lost"] == 0 and result["counted"] == 43
    assert result["hall_resyncs"] == 0
    assert 0 < result["engine_p50_ms"] <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 5000
    assert result["cycle_ms"] > 0 and result["cycles"] > 0
    assert result["close_to_result_ms"] is not None and 0 < result["close_to_result_ms"] < 5000
    assert result["announce_to_shown_ms"] is not None
    assert result["elapsed_s"] < 25


def test_fanout_every_client_gets_every_update() -> None:
    result = bench_fanout(50, seats=43, webs=2, procs=2, votes=1, spread_s=0.5)
    assert set(result) >= FANOUT_KEYS
    assert result["connected"] == 50 and result["delivered"] == 1.0
    assert result["updates"] >= 3  # the vote opened, presses shown, closed, announced
    assert result["deliveries"] == 50 * result["updates"]
    assert 0 < result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 5000
    assert result["elapsed_s"] < 25


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (
            ["bench", "latency", "--seats", "20", "--lines", "1", "--votes", "1", "--spread", "0.3", "--json"],
            LATENCY_KEYS,
        ),
        (
            ["bench", "fanout", "--clients", "10", "--seats", "20", "--client-procs", "1", "--votes", "1", "--json"],
            FANOUT_KEYS,
        ),
    ],
)
def test_the_command_prints_one_json_object(argv: list[str], keys: set[str], capsys: Any) -> None:
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert keys <= set(result)


def test_bad_options_are_refused(capsys: Any) -> None:
    assert main(["bench", "fanout", "--clients", "0"]) == 2
    assert "--clients must be 1 or more" in capsys.readouterr().err
    assert main(["bench", "latency", "--seats", "4", "--lines", "8"]) == 2
    assert "--seats must be at least --lines" in capsys.readouterr().err

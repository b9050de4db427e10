"""The Prometheus metrics of ``chamber run`` (display/metrics.py) and the web process's JSON logs.

The exposition is read as Prometheus reads it (prometheus_client's own parser) from the real listener
of a real controller on the simulator, and its values must move with what happens on the lines: cycles
counted as the line polls, every registration press timed once to the publisher's patch, journal
appends timed, CRC errors and a dead console counted on their line.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.daemon import Controller, start_controller, start_web
from chamber.engine import Engine
from chamber.journal import Journal
from display.app import WebServer
from display.metrics import ControllerCollector, ControllerMetrics, MetricsServer, start_metrics
from hardware_sim.simulator import Simulator
from terminals.state import Buckets

ROOT = Path(__file__).resolve().parent.parent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """Every sample of the exposition at ``url``, by name and sorted labels."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@dataclass
class Chamber:
    config: Config
    sim: Simulator
    controller: Controller
    web: WebServer
    metrics: ControllerMetrics
    server: MetricsServer


@pytest.fixture
def chamber(tmp_path: Path) -> Iterator[Chamber]:
    """What ``chamber run --simulate --open-sitting --metrics-port 0`` starts, in this process."""
    config = load_config(ROOT / "config.toml")
    sim = Simulator(config)
    sim.start()
    ctl = start_controller(config, ports=dict(sim.lines), store_url=f"sqlite:///{tmp_path / 'j.db'}", open_sitting=True)
    web = start_web(ctl, config, port=0)
    assert web is not None
    metrics, server = start_metrics(ctl, "127.0.0.1", 0)
    assert server is not None
    metrics.follow(web.web.publisher)
    try:
        yield Chamber(config, sim, ctl, web, metrics, server)
    finally:
        server.stop()
        web.stop()
        ctl.stop()
        sim.stop()


def test_the_metrics_move_with_a_real_controller_on_the_simulator(chamber: Chamber) -> None:
    config, sim, ctl, url = chamber.config, chamber.sim, chamber.controller, chamber.server.url
    engine = ctl.engine
    assert chamber.server.host == "127.0.0.1"  # the IT person's, not the hall network's
    first = scrape(url)
    for line in ("A", "B"):
        assert value(first, "chamber_consoles", line=line) == len(config.seats_on(line))
        assert value(first, "chamber_line_errors_total", line=line, kind="crc") == 0
    assert value(first, "chamber_engine_queue_depth") >= 0
    assert value(first, "chamber_journal_failures_total") == 0
    assert value(first, "chamber_press_to_display_seconds_count") == 0
    assert any(name == "process_cpu_seconds_total" for name, _ in first)

    # cycles: the histogram counts every round the line completes
    wait_for(lambda: value(scrape(url), "chamber_line_cycle_seconds_count", line="A") >= 5, what="cycles counted")
    samples = scrape(url)
    counted = value(samples, "chamber_line_cycle_seconds_count", line="A")
    assert counted <= ctl.lines["A"].stats.cycles
    assert value(samples, "chamber_line_cycle_seconds_bucket", line="A", le="+Inf") == counted
    assert 0 < value(samples, "chamber_line_cycle_seconds_sum", line="A") < counted * 1.0
    assert value(samples, "chamber_line_polls_total", line="A") > 0

    # every registration press is timed once, from its journal time to the patch that shows it
    appends_before = value(samples, "chamber_journal_append_seconds_count")
    seated = [d for d in config.deputies if d.seat is not None]
    for d in seated:
        sim.insert_card(d.seat or 0, d.cards[0])
    wait_for(lambda: sum(1 for s in engine.snapshot().seats if s.deputy is not None) == len(seated), what="cards")
    assert engine.execute(ev.OpenRegistration()).accepted
    for d in seated:
        assert sim.press(d.seat or 0, Key.REGISTER)
    wait_for(lambda: engine.snapshot().registered == len(seated), what="every registration")

    def timed() -> float:
        return value(scrape(url), "chamber_press_to_display_seconds_count")

    wait_for(lambda: timed() == len(seated), what="every press timed")
    time.sleep(0.3)  # and not one more: a press is timed by the first patch that shows it only
    samples = scrape(url)
    assert value(samples, "chamber_press_to_display_seconds_count") == len(seated)
    # on an idle simulator every press is on the screen well within a second
    assert value(samples, "chamber_press_to_display_seconds_bucket", le="1.0") == len(seated)
    assert 0 <= value(samples, "chamber_press_to_display_seconds_sum") < len(seated) * 1.0
    appended = value(samples, "chamber_journal_append_seconds_count") - appends_before
    assert appended >= 2  # the command, the cards and the presses came in batches, each one append
    assert value(samples, "chamber_journal_append_seconds_sum") > 0
    figures = {
        name: round(value(samples, f"{name}_sum", **labels) / value(samples, f"{name}_count", **labels), 4)
        for name, labels in (
            ("chamber_press_to_display_seconds", {}),
            ("chamber_journal_append_seconds", {}),
            ("chamber_line_cycle_seconds", {"line": "A"}),
        )
    }
    print(json.dumps({"mean_s": figures, "presses": len(seated), "appends": appended}))  # pytest -s

    # CRC errors counted on their line (few: three in a row would take a console offline)
    sim.set_fault("A", crc_rate=0.05)
    wait_for(lambda: value(scrape(url), "chamber_line_errors_total", line="A", kind="crc") >= 3, what="crc counted")
    sim.clear_faults("A")
    assert value(scrape(url), "chamber_line_errors_total", line="B", kind="crc") == 0
    wait_for(lambda: value(scrape(url), "chamber_consoles_offline", line="A") == 0, what="every console answering")
    # a dead console: offline on its line, after its timeouts
    timeouts = value(scrape(url), "chamber_line_errors_total", line="A", kind="timeout")
    seat = config.seats_on("A")[1]
    sim.set_fault("A", unit=seat.unit, dead=True)
    wait_for(lambda: not ctl.lines["A"].by_seat[seat.id].online, what="the dead console offline")
    samples = scrape(url)
    assert value(samples, "chamber_consoles_offline", line="A") == 1
    assert value(samples, "chamber_line_errors_total", line="A", kind="offline") >= 1
    assert value(samples, "chamber_line_errors_total", line="A", kind="timeout") >= timeouts + 3
    assert value(samples, "chamber_consoles_offline", line="B") == 0
    sim.clear_faults("A")
    wait_for(lambda: value(scrape(url), "chamber_consoles_offline", line="A") == 0, what="back online")


def test_queue_depth_is_what_waits_for_the_engine(tmp_path: Path) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'j.db'}")
    engine = Engine(journal)  # not started: what is submitted waits
    try:
        collector = ControllerCollector({}, engine)

        def depth() -> float:
            [family] = [m for m in collector.collect() if m.name == "chamber_engine_queue_depth"]
            return family.samples[0].value

        assert depth() == 0
        for _ in range(3):
            engine.submit(ev.Tick())
        assert depth() == 3
    finally:
        journal.close()


def test_cycle_buckets_are_cumulative_and_a_bound_is_inclusive() -> None:
    hist = Buckets((0.1, 0.5))
    for seconds in (0.05, 0.1, 0.3, 0.5, 2.0):
        hist.observe(seconds)
    counts, total = hist.snapshot()
    assert counts == [2, 4, 5]  # <= 0.1, <= 0.5, +Inf
    assert total == pytest.approx(2.95)


def config_copy(tmp_path: Path) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///var/chamber.db"', 'url = "sqlite:///state/chamber.db"')
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_chamber_run_serves_the_metrics_on_loopback_when_asked(tmp_path: Path) -> None:
    cfg = config_copy(tmp_path)
    command = [sys.executable, "-m", "chamber.cli", "run", "--config", str(cfg), "--simulate", "--no-web"]
    proc = subprocess.Popen(
        [*command, "--metrics-port", "0", "--log-format", "json"], stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stderr is not None
    log: list[str] = []
    url = ""
    try:
        deadline = time.monotonic() + 30
        for line in proc.stderr:
            log.append(line)
            if m := re.search(r"Prometheus exposition on (http://127\.0\.0\.1:\d+/metrics)", line):
                url = m.group(1)
                break
            assert time.monotonic() < deadline, "".join(log)
        assert url, "".join(log)
        wait_for(lambda: value(scrape(url), "chamber_line_cycle_seconds_count", line="B") > 0, what="cycles")
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, "".join(log) + rest
    entries = [json.loads(line) for line in [*log, *rest.splitlines()] if line.strip()]
    assert any(e["logger"] == "display.metrics" for e in entries)
    with pytest.raises(OSError):  # stopped with the daemon
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.parametrize("where", ["after", "before"])
def test_chamber_web_logs_json_when_asked(tmp_path: Path, where: str) -> None:
    """``chamber web`` honours ``--log-format json`` as ``chamber run`` does, after ``web`` or before it."""
    cfg = config_copy(tmp_path)  # the example has no [web] message_queue: a web process says so, logged
    options = ["--log-format", "json"]
    argv = ["web", "--config", str(cfg), *options] if where == "after" else [*options, "web", "--config", str(cfg)]
    proc = subprocess.run(
        [sys.executable, "-m", "chamber.cli", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert proc.returncode != 0
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(
        e["logger"] == "display.web_main" and e["level"] == "ERROR" and "message_queue" in e["message"] for e in entries
    ), proc.stderr
    assert all({"time", "level", "logger", "message", "thread"} <= set(e) for e in entries)

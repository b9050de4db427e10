"""Prometheus metrics of ``chamber run``, on a listener of their own (``--metrics-port``).

Where they are served, and why there
------------------------------------
Not on the hall's web port: that one is reachable from the hall network (the secretary's machine, the
hall screen, the stream PC), while the metrics are for the IT person's monitoring, which does not log
in.  ``MetricsServer`` is prometheus_client's own HTTP server in a thread of its own, bound to
127.0.0.1 unless ``--metrics-host`` says otherwise (a Prometheus on the controller itself, or one
reaching it through an SSH tunnel or a management interface).  Every path answers with the exposition
(``/metrics`` is what Prometheus asks for).  The metrics carry no choice, seat or deputy: counts per
line and timings only, so a secret ballot stays secret in them too.

What is measured, and where
---------------------------
* ``chamber_line_cycle_seconds`` (histogram, per ``line``): how long each full round of polls took,
  counted by the line's machine as it completes the round (``terminals.state.Buckets``: counting only,
  the machine stays sans-IO) and read at scrape time;
* ``chamber_line_errors_total`` (counter, per ``line`` and ``kind``: timeout, crc, truncated,
  offline, open, line_down, ...) and ``chamber_line_polls_total``: the line's own counters;
* ``chamber_consoles_offline`` and ``chamber_consoles`` (gauges, per ``line``);
* ``chamber_press_to_display_seconds`` (histogram): from the time a press was journaled at (the
  engine's clock, the record's ``at_ms``) to the publisher's emit of the first patch built from a
  snapshot that contains it, on the same clock (``PressLatency``, below);
* ``chamber_engine_queue_depth`` (gauge): inputs waiting for the engine's thread, at scrape time;
* ``chamber_journal_append_seconds`` (histogram): each journal append (one batch, its fsync or
  COMMIT included), as the engine times it; ``chamber_journal_failures_total`` the appends that failed;
* the process's CPU, memory and open files (prometheus_client's ``process_*``).

How a press is followed to the screen (``PressLatency``)
--------------------------------------------------------
Three callbacks, none of which waits: an engine subscriber notes each accepted ``KeyPressed`` with its
journal time (the sitting's clock just after it); the engine's snapshot watcher moves what was noted
into the generation of the snapshot just published (every input applied so far is in it); the
publisher's tick hook, given the snapshot it built its patches from, takes every generation up to that
one and, when a patch went out, observes now minus each press's time (a tick that sent nothing had
nothing new to show: those presses are dropped, not counted late).  Presses the publisher never gets
to are bounded in number (``MAX_PENDING``).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from chamber.core import effects as fx
from chamber.core import events as ev

log = logging.getLogger("display.metrics")

DEFAULT_HOST = "127.0.0.1"
PRESS_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
APPEND_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
#: error kinds exported from the start (at 0), so a rate over them exists before the first fault
KNOWN_ERRORS = ("timeout", "crc", "truncated", "offline", "open", "line_down")
#: snapshot generations kept for the publisher; more only when it has stopped (then they are dropped)
MAX_PENDING = 4096


class EngineView(Protocol):
    """What the metrics read of ``chamber.engine.Engine``."""

    journal_failures: int
    sitting: Any

    def subscribe(self, fn: Callable[[ev.Input, tuple[fx.Effect, ...]], None]) -> None: ...
    def watch_snapshots(self, fn: Callable[[], None]) -> None: ...
    def watch_appends(self, fn: Callable[[float, int], None]) -> None: ...
    def snapshot(self) -> Any: ...
    def time_ms(self) -> int: ...
    def queue_depth(self) -> int: ...


class LineView(Protocol):
    @property
    def line_id(self) -> str: ...
    @property
    def links(self) -> list[Any]: ...
    @property
    def stats(self) -> Any: ...


class ControllerCollector(Collector):
    """The lines' and the engine's counters, read at scrape time (they are counted where they happen)."""

    def __init__(self, lines: Mapping[str, LineView], engine: EngineView) -> None:
        self.lines = dict(lines)
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        cycle = HistogramMetricFamily(
            "chamber_line_cycle_seconds", "Duration of one full round of polls of a line", labels=["line"]
        )
        errors = CounterMetricFamily(
            "chamber_line_errors", "Faults counted on a line, by kind", labels=["line", "kind"]
        )
        polls = CounterMetricFamily("chamber_line_polls", "Polls of consoles sent on a line", labels=["line"])
        offline = GaugeMetricFamily("chamber_consoles_offline", "Consoles not answering, per line", labels=["line"])
        consoles = GaugeMetricFamily("chamber_consoles", "Consoles configured, per line", labels=["line"])
        for line_id, line in self.lines.items():
            st = line.stats
            counts, total = st.cycle_hist.snapshot()
            bounds = [repr(float(b)) for b in st.cycle_hist.bounds] + ["+Inf"]
            cycle.add_metric([line_id], list(zip(bounds, counts, strict=True)), total)
            seen = {**dict.fromkeys(KNOWN_ERRORS, 0), **dict(st.errors)}  # one copy: the loop keeps counting
            for kind, n in sorted(seen.items()):
                errors.add_metric([line_id, kind], n)
            polls.add_metric([line_id], st.polls)
            links = list(line.links)
            offline.add_metric([line_id], sum(1 for link in links if not link.online))
            consoles.add_metric([line_id], len(links))
        yield from (cycle, errors, polls, offline, consoles)
        yield GaugeMetricFamily(
            "chamber_engine_queue_depth", "Inputs waiting for the engine's thread", value=self.engine.queue_depth()
        )
        yield CounterMetricFamily(
            "chamber_journal_failures", "Journal appends that failed", value=self.engine.journal_failures
        )


class PressLatency:
    """Press-to-display latency (the module docstring says how); ``observe`` gets seconds."""

    def __init__(self, engine: EngineView, observe: Callable[[float], None]) -> None:
        self.engine = engine
        self.observe = observe
        self._noted: list[int] = []  # engine thread only: journal times of presses since the last snapshot
        self._lock = threading.Lock()
        self._generation = 0
        self._recent: deque[tuple[Any, int]] = deque(maxlen=16)  # (snapshot, its generation), newest last
        self._pending: deque[tuple[int, list[int]]] = deque(maxlen=MAX_PENDING)  # (generation, press times)

    def attach(self) -> None:
        self.engine.subscribe(self.on_effects)
        self.engine.watch_snapshots(self.on_snapshot)

    def on_effects(self, event: ev.Input, effects: tuple[fx.Effect, ...]) -> None:
        """Engine subscriber: note an accepted press with the time it was journaled at."""
        if type(event) is ev.KeyPressed and not (effects and type(effects[0]) is fx.Rejected):
            self._noted.append(self.engine.sitting.clock)

    def on_snapshot(self) -> None:
        """Engine snapshot watcher: the presses noted so far are in the snapshot just published."""
        snap = self.engine.snapshot()
        noted, self._noted = self._noted, []
        with self._lock:
            self._generation += 1
            self._recent.append((snap, self._generation))
            if noted:
                self._pending.append((self._generation, noted))

    def on_tick(self, snapshot: Any, sent: bool) -> None:
        """Publisher hook, after each send: ``snapshot`` is what it was built from, ``sent`` whether a
        patch went out."""
        with self._lock:
            generation = next((g for s, g in reversed(self._recent) if s is snapshot), None)
            if generation is None:
                return  # a snapshot from before we watched, or one long gone: nothing of ours is in it
            shown: list[int] = []
            while self._pending and self._pending[0][0] <= generation:
                shown += self._pending.popleft()[1]
        if sent and shown:
            now = self.engine.time_ms()
            for at_ms in shown:
                self.observe(max(now - at_ms, 0) / 1000)


class ControllerMetrics:
    """The registry of one controller: collectors, histograms, and the hooks that feed them."""

    def __init__(self, lines: Mapping[str, LineView], engine: EngineView) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(ControllerCollector(lines, engine))
        ProcessCollector(registry=self.registry)
        self.press_to_display = Histogram(
            "chamber_press_to_display_seconds",
            "From a press's journal time to the publisher's emit of the patch that shows it",
            buckets=PRESS_BUCKETS_S,
            registry=self.registry,
        )
        self.journal_append = Histogram(
            "chamber_journal_append_seconds",
            "Duration of one journal append (a batch of inputs, durable write included)",
            buckets=APPEND_BUCKETS_S,
            registry=self.registry,
        )
        engine.watch_appends(lambda seconds, _records: self.journal_append.observe(seconds))
        self.presses = PressLatency(engine, self.press_to_display.observe)

    def follow(self, publisher: Any) -> None:
        """Time the presses to ``publisher``'s emits (display.publisher.Publisher, or the controller's
        QueuePublisher of a scale-out).  Without one (``--no-web``) nothing is noted and the histogram
        stays empty."""
        self.presses.attach()
        publisher.tick_hooks.append(self.presses.on_tick)


class MetricsServer:
    """prometheus_client's HTTP server for ``registry`` on ``host:port`` (0: a free port), in a thread."""

    def __init__(self, registry: CollectorRegistry, host: str = DEFAULT_HOST, port: int = 0) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port: int = self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def start_metrics(controller: Any, host: str, port: int) -> tuple[ControllerMetrics, MetricsServer | None]:
    """The controller's metrics, served on ``host:port``; the server is None when it cannot listen (said in
    the log: the hall votes on without it)."""
    metrics = ControllerMetrics(controller.lines, controller.engine)
    try:
        server = MetricsServer(metrics.registry, host, port)
    except OSError as exc:
        log.error("metrics: cannot serve on %s:%d: %s; running without them", host, port, exc.strerror or exc)
        return metrics, None
    log.info("metrics: Prometheus exposition on %s", server.url)
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.info("metrics: listening on %s, not only on this machine: firewall it to the monitoring host", host)
    return metrics, server

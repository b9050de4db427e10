"""``chamber run``: the controller daemon — engine, journal, one I/O loop for every RS-485 line.

It loads and checks config.toml, opens the store, replays the journal
(resuming an open sitting), starts one ``terminals.ioloop.IOLoop`` (one thread)
serving every configured line, each line's protocol a sans-IO
``terminals.machine.LineMachine``, and routes the engine's effects to the line
that serves each seat (chamber-wide effects to every line).  With ``--simulate`` it first starts hardware_sim on
virtual serial lines made from the same config, so one command runs a whole
simulated chamber.  Every ``HEALTH_EVERY_S`` it logs one line per RS-485 line
(consoles answering, median cycle, errors by kind, seats offline, microphone
units not answering), and the totals once more when it stops.  SIGTERM or
SIGINT stops it cleanly: the I/O loop stops after its current wake-up, the
engine finishes its queue, the journal closes.  With ``[recording] enabled`` the
speech recorder (protocol_export.recording) listens on its own thread and
finishes its files after the engine stops.

Unless ``--no-web``, the same process serves the web pages (display.app) on ``[web] host:port``
(``--web-port`` overrides the port; 0 picks a free one) once the controller runs, and logs their
URLs.  A web server that cannot listen (the port taken, a broken session key file) is an error in
the log, not a stop: the consoles in the hall still vote without it.  It stops first, before the
engine it submits commands to.  With ``[web] message_queue`` the pages are served by ``chamber web``
processes instead, and this process publishes the states and executes their commands through Redis
(display.scaleout).

With ``metrics_port`` (``chamber run --metrics-port``) the Prometheus metrics (display.metrics) are served
on a listener of their own, on 127.0.0.1 unless ``metrics_host`` says otherwise; the press-to-display
latency follows the publisher of the web server or of the scale-out.  ``on_started(controller)`` is
called once the controller runs, before the web starts: chamber.systemd's supervision says READY=1 there
and watches the controller's health.
"""

from __future__ import annotations

import logging
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from chamber.config import Config
from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.engine import Engine
from chamber.journal import Journal
from terminals.generic import GenericLink
from terminals.ioloop import IOLoop, Line
from terminals.links import ConsoleLink
from terminals.state import LineStats
from terminals.transport import SerialTransport, TcpTransport, Transport

if TYPE_CHECKING:  # the web stack is imported only when the web is served, the recorder when it records
    from display.app import WebServer
    from display.metrics import ControllerMetrics, MetricsServer
    from display.publisher import Publisher
    from display.scaleout import ControllerQueue
    from protocol_export.recording import Recorder

log = logging.getLogger("chamber.daemon")

_BROADCAST_EFFECTS = (fx.ModeChanged, fx.SittingOpened, fx.SittingClosed)
HEALTH_EVERY_S = 60.0


class _LineView(Protocol):
    @property
    def line_id(self) -> str: ...
    @property
    def links(self) -> list[ConsoleLink]: ...
    @property
    def stats(self) -> LineStats: ...


def line_health(loop: _LineView, since_cycle: int = 0) -> str:
    """One log line on a line's health (a ``Line`` or its machine); the cycle median covers the rounds
    after the ``since_cycle``-th."""
    st = loop.stats
    offline = [link.seat for link in loop.links if not link.online]
    mics_down = [link.seat for link in loop.links if link.mic_unit is not None and not link.mic_online]
    cycles = st.cycles_since(since_cycle)
    errors = dict(st.errors)  # a copy in one step: the lines' thread keeps counting
    parts = [
        f"line {loop.line_id}: {len(loop.links) - len(offline)} of {len(loop.links)} consoles answering",
        f"cycle median {statistics.median(cycles) * 1000:.1f} ms" if cycles else "no full cycle yet",
        f"{st.polls} polls, {st.writes} writes, {st.broadcasts} broadcasts",
        "errors: " + (", ".join(f"{kind} {n}" for kind, n in sorted(errors.items()) if n) or "none"),
    ]
    if offline:
        more = f" and {len(offline) - 10} more" if len(offline) > 10 else ""
        parts.append("offline seats " + ", ".join(map(str, offline[:10])) + more)
    if mics_down:
        parts.append("microphone units not answering at seats " + ", ".join(map(str, mics_down)))
    return "; ".join(parts)


@dataclass
class Controller:
    """Everything `chamber run` starts, so tests and benchmarks can start it the same way."""

    config: Config
    engine: Engine
    journal: Journal
    lines: dict[str, Line] = field(default_factory=dict)
    recorder: Recorder | None = None  # [recording] enabled: the speech recorder
    io: IOLoop | None = None  # the one thread that serves every line

    def stop(self) -> None:
        if self.io is not None:
            self.io.stop()
        self.engine.stop()
        if self.recorder is not None:  # after the engine: the last speeches' ends are in its queue
            self.recorder.stop()
        self.journal.close()


def make_transport(config: Config, line_id: str, override: str | None = None) -> Transport:
    line = config.line(line_id)
    target = override or line.port or line.gateway
    assert target is not None
    if override is None and line.gateway is not None:
        host, port = line.gateway_address
        return TcpTransport(host, port)
    if not target.startswith("/") and ":" in target:  # "host:port" from a simulator serving TCP
        host, _, port_text = target.rpartition(":")
        return TcpTransport(host, int(port_text))
    # A simulator's pty carries no parity, and Linux refuses to set even parity on it again after
    # the first open; a real port uses the line's settings.
    parity = "N" if override is not None else line.parity
    return SerialTransport(target, line.baud, parity, line.stopbits, line.low_latency)


def build_lines(
    config: Config, submit: Callable[[ev.Input], Any], ports: dict[str, str] | None = None
) -> tuple[IOLoop, dict[str, Line]]:
    """The I/O loop (not started) and its line per configured line, by id."""
    io = IOLoop(submit)
    lines = {}
    # a generic module has a card switch, not a reader: its card is the assigned deputy's first card
    # (the config guarantees one for every generic seat)
    assigned_card = {d.seat: d.cards[0] for d in config.deputies if d.seat is not None and d.cards}
    for line in config.lines:
        links = [
            GenericLink(seat.id, seat.unit, assigned_card[seat.id], seat.chair)
            if seat.generic
            else ConsoleLink(seat.id, seat.unit, seat.mic_unit, seat.chair)
            for seat in config.seats_on(line.id)
        ]
        lines[line.id] = io.add_line(
            line.id,
            make_transport(config, line.id, (ports or {}).get(line.id)),
            links,
            baud=line.baud,
            timeout_s=line.timeout_ms / 1000,
            retries=line.retries,
        )
    return io, lines


def router(config: Config, lines: dict[str, Line]) -> Callable[[ev.Input, tuple[fx.Effect, ...]], None]:
    """An engine subscriber that hands each effect to the line serving its seat."""
    seat_line = {seat.id: lines[seat.line] for seat in config.seats}
    every = list(lines.values())

    def route(_: ev.Input, effects: tuple[fx.Effect, ...]) -> None:
        for effect in effects:
            if isinstance(effect, _BROADCAST_EFFECTS) or (type(effect) is fx.ConsoleText and effect.seat is None):
                for line in every:
                    line.post(effect)
                continue
            seat = getattr(effect, "seat", None)
            target = seat_line.get(seat) if isinstance(seat, int) else None
            if target is not None:
                target.post(effect)

    return route


def start_controller(
    config: Config,
    *,
    ports: dict[str, str] | None = None,
    store_url: str | None = None,
    open_sitting: bool = False,
) -> Controller:
    journal = Journal(store_url or config.store.url)
    engine = Engine(journal)
    controller = Controller(config, engine, journal)
    try:
        controller.io, controller.lines = build_lines(config, engine.submit, ports)
        engine.subscribe(router(config, controller.lines))
        if config.recording.enabled:  # subscribed before the engine starts: a resumed speech is recorded too
            from protocol_export.recording import start_recording

            controller.recorder = start_recording(config, engine)
        engine.start()
        controller.io.start()
        if open_sitting and engine.sitting_uid is None:
            outcome = engine.execute(ev.OpenSitting(roster=config.roster(), number=1, title="Засідання"))
            log.info("sitting opened: %s", outcome.accepted)
    except BaseException:
        controller.stop()  # what started stops, the journal closes: nothing half-running is left
        raise
    return controller


def start_web(
    controller: Controller, config: Config, *, port: int | None = None, simulator_url: str | None = None
) -> WebServer | None:
    """Serve the pages for ``controller`` on ``[web] host`` and ``port`` (default ``[web] port``); None when
    the server cannot start, said in the log (the controller runs on without it)."""
    from display.app import WebServer, create_app

    host = config.web.host
    port = config.web.port if port is None else port
    try:
        app, socketio = create_app(controller, config, simulator_url=simulator_url)
        server = WebServer(app, socketio, host, port)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.error("web: cannot serve on %s:%d: %s; the controller runs without the web pages", host, port, why)
        return None
    if not server.web.users.all():  # before the pages' URLs, so whoever reads up to them has seen it
        log.warning("web: no users yet: add the first on this machine with `chamber users add NAME --role secretary`")
    server.start()
    log.info(
        "web: console %s, hall screen %s, stream overlay %s, public pages %s",
        server.url("/console"),
        server.url("/hall"),
        server.url("/overlay"),
        server.url("/public"),
    )
    if host in ("0.0.0.0", "::"):
        log.info(
            "web: listening on every interface (%s); put a TLS proxy in front if it is reachable from outside", host
        )
    return server


def demo_banner(server: WebServer, login: tuple[str, str], *, simulated: bool) -> str:
    """What a newcomer reads in the terminal after ``make demo``: every page and a login."""
    pages = [
        ("start page (what to try) / з чого почати", "/"),
        ("secretary console / пульт секретаря", "/console"),
        ("hall screen 1920x1080 / екран залу", "/hall"),
        ("stream overlay (OBS) / титри трансляції", "/overlay"),
        ("public pages / публічні сторінки", "/public"),
    ]
    if simulated:
        pages.append(("virtual seat 1 / віртуальний пульт", "/seat/1"))
    width = max(len(name) for name, _ in pages)
    lines = ["", "=" * 72, "The simulated chamber is running (Ctrl+C stops it).", ""]
    lines += [f"  {name.ljust(width)}  {server.url(path)}" for name, path in pages]
    lines += ["", f"  login / вхід: {login[0]}   password / пароль: {login[1]}", "=" * 72, ""]
    return "\n".join(lines)


def simulator_eeprom(store_url: str) -> Path:
    """Where the simulated consoles keep their power-up counts: beside an SQLite store, else in var/."""
    prefix = "sqlite:///"
    if store_url.startswith(prefix) and len(store_url) > len(prefix) and ":memory:" not in store_url:
        return Path(store_url[len(prefix) :].split("?")[0]).parent / "simulator-eeprom.json"
    return Path("var") / "simulator-eeprom.json"


def run(
    config: Config,
    *,
    simulate: bool = False,
    wire_time: bool = False,
    open_sitting: bool = False,
    sim_http_port: int = 0,
    web: bool = True,
    web_port: int | None = None,
    autopilot: bool = False,
    demo_login: tuple[str, str] | None = None,
    metrics_host: str = "127.0.0.1",
    metrics_port: int | None = None,
    on_started: Callable[[Controller], None] | None = None,
) -> int:
    # the libraries' start-up chatter (migration plugins, server banners) is not news to the IT person
    for noisy in ("alembic", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    ports: dict[str, str] | None = None
    stoppers: list[Callable[[], None]] = []
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        done.set()

    # Before anything starts: a SIGTERM while the journal is replayed or the lines open must still
    # end in a clean stop of whatever has started, not in the default kill.
    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    controller: Controller | None = None
    metrics_server: MetricsServer | None = None
    web_server: WebServer | None = None
    web_queue: ControllerQueue | None = None  # [web] message_queue: web processes serve the pages
    simulator_url: str | None = None
    try:
        if simulate:
            from hardware_sim.http_api import PressApi
            from hardware_sim.simulator import Simulator

            # The simulated consoles' power-up counts outlive this process, as a console's EEPROM outlives
            # a power cut: a restarted daemon must not meet consoles whose boot it has journaled.
            sim = Simulator(config, wire_time=wire_time, eeprom=simulator_eeprom(config.store.url))
            sim.start()
            stoppers.append(sim.stop)
            ports = dict(sim.lines)
            for line_id, path in ports.items():
                log.info("simulated line %s on %s", line_id, path)
            api = PressApi(sim, port=sim_http_port)
            api.start()
            stoppers.append(api.stop)
            simulator_url = api.url
            log.info(
                "simulated consoles' press API on %s (chamber sim press --url %s --seat 1 --key yes)",
                api.url,
                api.url,
            )
            if autopilot:  # simulated deputies: cards in, and they answer registrations and votes
                from hardware_sim.deputies import Autopilot

                pilot = Autopilot(sim, seed=int(time.time()))
                pilot.start()
                stoppers.append(pilot.stop)
                log.info("simulated deputies: %d in the hall, %d absent", len(pilot.present), len(pilot.absent))
        if not done.is_set():
            controller = start_controller(config, ports=ports, open_sitting=open_sitting)
            log.info("controller running: %d line(s), %d seats", len(controller.lines), len(config.seats))
            if on_started is not None:
                on_started(controller)
            metrics: ControllerMetrics | None = None
            if metrics_port is not None:
                from display.metrics import start_metrics

                metrics, metrics_server = start_metrics(controller, metrics_host, metrics_port)
            publisher: Publisher | None = None
            if web and config.web.message_queue:
                from display.scaleout import start_controller_queue

                web_queue = start_controller_queue(controller, config, simulator_url=simulator_url)
                if web_queue is not None:
                    publisher = web_queue.publisher
            elif web:
                web_server = start_web(controller, config, port=web_port, simulator_url=simulator_url)
                if web_server is not None:
                    publisher = web_server.web.publisher
                if web_server is not None and demo_login is not None:
                    print(demo_banner(web_server, demo_login, simulated=simulator_url is not None), flush=True)
            if metrics is not None and publisher is not None:
                metrics.follow(publisher)
            marks = dict.fromkeys(controller.lines, 0)
            while not done.wait(HEALTH_EVERY_S):
                for line_id, loop in controller.lines.items():
                    log.info("%s", line_health(loop, marks[line_id]))
                    marks[line_id] = loop.stats.cycles
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        if web_server is not None:  # first: it submits to the engine, which stops next
            web_server.stop()
        if web_queue is not None:  # the same: it executes the web processes' commands
            web_queue.stop()
        if controller is not None:
            controller.stop()
            for loop in controller.lines.values():
                log.info("totals: %s", line_health(loop))
        for stop in reversed(stoppers):  # the simulator after the controller that talks to it
            stop()
        for signum, handler in previous.items():  # a caller that runs on (a test) keeps its own handlers
            if handler is not None:  # None: not set from Python, nothing to put back
                signal.signal(signum, handler)
    log.info("stopped")
    return 0

"""``chamber web``: a web process of a scaled-out chamber — pages and Socket.IO, no engine.

How it works
------------
:func:`create_web_app` builds the very app ``chamber run`` serves (display.app.create_app: the same
routes, templates, namespaces, log-in, CSRF and role checks) on a stand-in engine that has only the
journal (public pages and users come from the store, which every web process opens), and then puts
the scale-out parts of display.scaleout where the single-process parts were:

* the SocketIO's client manager becomes a :class:`~display.scaleout.MirrorManager` on Redis channel
  ``CHANNEL`` (what the controller's write-only manager publishes on), and the publisher a
  :class:`~display.scaleout.MirrorPublisher` serving connections from its mirrors;
* the command runner a :class:`~display.scaleout.RemoteRunner` (checks here, execution in the
  controller through the command stream);
* the log-out set and the log-in rate limit their Redis-backed versions, shared by all web processes.

create_app builds a publisher of its own over the stand-in's empty snapshot before the swap; it sends
its one patch to nobody (no connection exists yet, and the manager then is still the in-memory one)
and is never started.

Every web process must sign sessions with the same key (``[web] secret_key_file``, which the config
check requires with a message queue) and the proxy in front must keep each browser on one process
(Socket.IO starts with long-polling: nginx ``ip_hash``, or any sticky sessions).

``--gevent``
-----------
In the threading mode every websocket costs three OS threads (Werkzeug's handler, simple-websocket's
reader, Engine.IO's writer), and every patch wakes each connection's writer: on a two-core virtual
machine that was ~0.1 ms of CPU per delivered patch.  ``chamber web --gevent`` has the ``chamber``
command patch the standard library with gevent (``gevent.monkey.patch_all()``) before anything of the
web stack is imported, so the same app, the same threading code and Werkzeug's server run on
greenlets: about a third of the CPU per delivery (docs/BENCHMARKS.md).  It is for web processes only:
they have no serial lines (the controller never patches; gevent's cooperative reads would deadlock
pyserial's line loops, see docs/web-protocol.md).  An argon2 log-in check then holds the process for
its ~50 ms, as it is CPU work without a switch.

Engine.IO's per-connection queues
---------------------------------
In the threading mode every websocket has a writer thread fed through a ``queue.Queue``, whose
``put`` and ``get`` are Python code around a ``threading.Condition``.  With a thousand hall screens a
patch means a thousand ``put``s and a thousand woken writers; ``FAST_QUEUES`` swaps the queue class
for :class:`FastQueue`, the C ``queue.SimpleQueue`` with the two methods Engine.IO also calls
(``task_done``, and ``join`` when a socket closes).  It roughly halved the web processes' CPU per
delivered patch in ``chamber bench fanout`` (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask_socketio import SocketIO

from chamber.config import Config
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.journal import Journal
from display.app import SESSION_HOURS, Web, WebServer, create_app
from display.scaleout import (
    SIMULATOR,
    CommandLink,
    MirrorManager,
    MirrorPublisher,
    RemoteRunner,
    SharedLoginGuard,
    SharedRevocations,
    Signer,
    connect,
    without_password,
)

log = logging.getLogger("display.web_main")

# CHAMBER_FAST_QUEUES=0 keeps Engine.IO's own queue class (for measuring the two side by side)
FAST_QUEUES = os.environ.get("CHAMBER_FAST_QUEUES", "1") != "0"
JOIN_TIMEOUT_S = 10.0  # a closing socket waits this long at most for its writer to send what is queued


class FastQueue(queue.SimpleQueue[Any]):
    """``queue.SimpleQueue`` (C) with what Engine.IO calls of ``queue.Queue`` besides put/get."""

    def task_done(self) -> None:
        return None  # nothing waits on the count: join below watches the queue itself

    def join(self) -> None:
        # Queue.join waits until the writer has taken everything; a closing socket puts None last and
        # its writer exits on it, so an empty queue is the same moment (bounded, should the writer be gone)
        end = time.monotonic() + JOIN_TIMEOUT_S
        while not self.empty() and time.monotonic() < end:
            time.sleep(0.005)


class _NoEngine:
    """What create_app needs of an engine where there is none: the journal (public pages, users), a
    snapshot for the publisher it builds and that is replaced, subscribing as a no-op."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self._snapshot = Sitting().snapshot()
        self.sitting_uid: str | None = None

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def subscribe(self, _fn: object) -> None:
        return None

    def submit(self, _event: object) -> Any:
        raise RuntimeError("a web process has no engine: its commands go through the message queue")


@dataclass
class ScaledWeb:
    """A web process's app and the scale-out parts behind it."""

    app: Flask
    socketio: SocketIO
    web: Web
    manager: MirrorManager
    publisher: MirrorPublisher
    revocations: SharedRevocations
    journal: Journal
    client: Any
    _closed: bool = field(default=False)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.revocations.stop()
        self.manager.close()
        self.client.close()
        self.journal.close()


def green() -> bool:
    """True when gevent has patched this process (``chamber web --gevent``)."""
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("threading"))


def create_web_app(
    config: Config,
    url: str,
    *,
    store_url: str | None = None,
    secure_cookies: bool = False,
    fast_queues: bool = FAST_QUEUES,
) -> ScaledWeb:
    """The app of one web process on message queue ``url`` (nothing served yet: see :class:`WebServer`)."""
    journal = Journal(store_url or config.store.url)
    try:
        app, socketio = create_app(_NoEngine(journal), config, secure_cookies=secure_cookies)
    except BaseException:
        journal.close()
        raise
    web: Web = app.extensions["chamber"]
    client = connect(url)
    server = socketio.server
    assert server is not None
    if fast_queues and not green():  # on greenlets a queue is gevent's, and a wake-up costs no thread switch
        server.eio._async = {**server.eio._async, "queue": FastQueue}
    manager = MirrorManager(url, client)
    server.manager = manager
    manager.set_server(server)

    def sockets() -> dict[str, Any]:
        with web.lock:
            return dict(web.sockets)

    publisher = MirrorPublisher(manager, server, sockets)
    web.publisher = publisher  # type: ignore[assignment]  # the same interface, served from the mirrors
    secret = app.config["SECRET_KEY"]
    web.runner = RemoteRunner(
        config,
        web.chamber,
        CommandLink(client, Signer(secret if isinstance(secret, bytes) else secret.encode())),
        publisher,
    )
    revocations = SharedRevocations(client, SESSION_HOURS * 3600)
    web.revoked = revocations  # the shared log-outs in place of the stored ones
    web.guard = SharedLoginGuard(client)

    def close_session(session_id: str) -> None:
        with web.lock:
            gone = [sid for sid, who in web.sockets.items() if who.session_id == session_id]
        for sid in gone:
            server.disconnect(sid, namespace="/console", ignore_queue=True)

    # The listener runs from the start (the library would start it at the first connection), so the
    # mirrors are current before any page asks for them; then the keys fill in what came before.
    server.manager_initialized = True
    manager.initialize()
    manager.load()
    revocations.listen(close_session)
    simulator = client.get(SIMULATOR)
    if isinstance(simulator, str) and simulator:
        web.simulator_url = simulator.rstrip("/")
    return ScaledWeb(app, socketio, web, manager, publisher, revocations, journal, client)


def run_web(config: Config, *, port: int | None = None, host: str | None = None) -> int:
    """Serve one web process until SIGTERM or SIGINT; 2 when it cannot start."""
    url = config.web.message_queue
    if not url:
        log.error("chamber web needs [web] message_queue (a redis:// URL) in the config")
        return 2
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host = host or config.web.host
    port = config.web.port if port is None else port
    scaled = create_web_app(config, url)
    try:
        server = WebServer(scaled.app, scaled.socketio, host, port)
    except OSError as exc:
        log.error("web: cannot serve on %s:%d: %s", host, port, exc.strerror or exc)
        scaled.close()
        return 2
    server.start()
    log.info(
        "web process on %s (console %s, hall %s), message queue %s%s",
        server.url(""),
        server.url("/console"),
        server.url("/hall"),
        without_password(url),
        ", on gevent" if green() else "",
    )
    try:
        done.wait()
    finally:
        server.stop()
        scaled.close()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``chamber web --config FILE [--port N] [--host H]`` (also ``python -m display.web_main``)."""
    from chamber.config import ConfigError, load_config
    from chamber.logs import FORMATS
    from chamber.logs import configure as configure_logging

    parser = argparse.ArgumentParser(
        prog="chamber web", description="A web process of a scaled-out chamber ([web] message_queue)."
    )
    parser.add_argument("--config", default="config.toml", help="the chamber's config.toml (default: config.toml)")
    parser.add_argument("--port", type=int, default=None, help="port instead of [web] port (several processes)")
    parser.add_argument("--host", default=None, help="address instead of [web] host")
    parser.add_argument(
        "--gevent", action="store_true", help="serve on gevent's greenlets (needs the gevent package; see above)"
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="json: one JSON object per log line, as chamber run --log-format json (chamber/logs.py)",
    )
    args = parser.parse_args(argv)
    if args.gevent and not green():
        print(
            "chamber web --gevent: gevent has not patched this process (it is not installed, or this was not "
            "started as `chamber web`: the patch must come before the web stack is imported)",
            file=sys.stderr,
        )
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port must be 0 … 65535")
    configure_logging(logging.INFO, args.log_format)
    for noisy in ("alembic", "werkzeug"):  # a request line per page and websocket is not news
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return run_web(config, port=args.port, host=args.host)


if __name__ == "__main__":
    sys.exit(main())

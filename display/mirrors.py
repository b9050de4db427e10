"""A web process's mirrors of the controller's states (display.scaleout, «What a browser gets»).

``MirrorManager`` is the web process's Socket.IO client manager: a ``RedisManager`` whose listener
applies every patch to the namespace's ``Mirror`` before forwarding it, and reads the stored state
again on a gap in ``rev``; ``MirrorStream`` and ``MirrorPublisher`` serve the namespaces and
``/api/state`` from the mirrors in place of display.publisher's ``Stream`` and ``Publisher``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis
import socketio
from redis.exceptions import RedisError

from chamber.engine import SteadyClock
from display import state as st
from display.publisher import AlertBook
from display.queue_base import (
    CHANNEL,
    NAMESPACES,
    load_state,
)

log = logging.getLogger("display.scaleout")  # one log name for the scale-out (see display.scaleout)


# --- the web side: the mirrors ----------------------------------------------------------------------


class Mirror:
    """One namespace's whole state as this web process last forwarded it (``rev`` and ``clock_ms`` in it)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.state: st.JSON | None = None

    @property
    def rev(self) -> int:
        return int(self.state["rev"]) if self.state is not None else -1

    @property
    def clock_ms(self) -> int:
        return int(self.state.get("clock_ms", 0)) if self.state is not None else 0


class MirrorManager(socketio.RedisManager):  # type: ignore[misc]  # python-socketio has no type hints
    """The web process's client manager: a RedisManager whose listener keeps the mirrors (module docstring).

    ``lock`` orders forwarding a patch and sending a whole state to a new connection.  ``on_reload`` is
    called (under the lock) when a mirror was read again from its key; it sends the whole state to the
    pages this process serves.
    """

    def __init__(self, url: str, client: redis.Redis, *, namespaces: Iterable[str] = NAMESPACES) -> None:
        super().__init__(url, channel=CHANNEL)
        self.client = client
        self.mirrors = {ns: Mirror(ns) for ns in namespaces}
        self.lock = threading.Lock()
        self.on_reload: Callable[[Mirror], None] = lambda mirror: None
        self.reloads = 0  # how often a mirror was read again (a gap, a restart): tests and logs
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop the listener (within half a second) and drop the connections."""
        self._closed.set()

    def _listen(self) -> Iterator[Any]:
        """RedisManager's subscription loop, with a way out: ``close`` ends it (the library's never does,
        and a web process that stops, or a test, would leave it retrying against a Redis that is gone)."""
        retry_s = 1.0
        while not self._closed.is_set():
            try:
                self._redis_connect()
                self.pubsub.subscribe(self.channel)
                retry_s = 1.0
                while not self._closed.is_set():
                    message = self.pubsub.get_message(timeout=0.5)
                    if message is not None and message.get("type") == "message":
                        yield message["data"]
            except Exception as exc:  # the library's own loop retries on anything too
                if self._closed.is_set():
                    break
                log.error("scale-out: cannot receive from Redis: %s (retrying in %.0f s)", exc, retry_s)
                self._closed.wait(retry_s)
                retry_s = min(retry_s * 2, 30.0)
        with contextlib.suppress(Exception):  # closing a connection that already failed
            self.pubsub.close()

    def _thread(self) -> None:
        """PubSubManager's dispatch loop, ending quietly when ``_listen`` ends (its own logs an error)."""
        for raw in self._listen():
            try:
                data = raw if isinstance(raw, dict) else self.json.loads(raw)
            except ValueError:
                continue
            if not isinstance(data, dict) or "method" not in data:
                continue
            try:
                if data["method"] == "callback":
                    self._handle_callback(data)
                elif data.get("host_id") != self.host_id:
                    handler = {
                        "emit": self._handle_emit,
                        "disconnect": self._handle_disconnect,
                        "enter_room": self._handle_enter_room,
                        "leave_room": self._handle_leave_room,
                        "close_room": self._handle_close_room,
                    }.get(data["method"])
                    if handler is not None:
                        handler(data)
            except Exception:  # one bad message must not end the fan-out
                log.exception("scale-out: handling a message from Redis failed")

    def load(self) -> None:
        """Read every mirror from its key (at start; the listener corrects it from then on)."""
        with self.lock:
            for mirror in self.mirrors.values():
                if mirror.state is None:
                    mirror.state = load_state(self.client, mirror.namespace)

    def _handle_emit(self, message: dict[str, Any]) -> None:
        mirror = self.mirrors.get(message.get("namespace") or "/")
        if mirror is None or message.get("event") != "patch" or message.get("room") is not None:
            super()._handle_emit(message)
            return
        data = message.get("data")
        patch = data[0] if isinstance(data, list) and len(data) == 1 else None
        if not isinstance(patch, dict) or not isinstance(patch.get("rev"), int):
            log.error("scale-out: a patch on %s without a rev dropped", mirror.namespace)
            return
        with self.lock:
            if self._advance(mirror, patch):
                super()._handle_emit(message)

    def _advance(self, mirror: Mirror, patch: st.JSON) -> bool:
        """Apply ``patch`` to the mirror; True when it is the next one and is to be forwarded."""
        if mirror.state is not None and patch["rev"] == mirror.rev + 1:
            mirror.state = st.apply_patch(mirror.state, patch)
            return True
        try:
            stored = load_state(self.client, mirror.namespace)
        except RedisError as exc:
            log.error(
                "scale-out: %s: rev %d after %d, and the key cannot be read: %s",
                mirror.namespace,
                patch["rev"],
                mirror.rev,
                exc,
            )
            return False
        if stored is None:
            log.error("scale-out: %s: rev %d after %d and no state stored", mirror.namespace, patch["rev"], mirror.rev)
            return False
        if mirror.state is not None and stored["rev"] == mirror.rev:
            return False  # an old patch, already part of the state read last time
        log.info(
            "scale-out: %s: patch rev %d after rev %d: state read again (rev %d) and sent to every page",
            mirror.namespace,
            patch["rev"],
            mirror.rev,
            stored["rev"],
        )
        mirror.state = stored
        self.reloads += 1
        self.on_reload(mirror)
        return False


class MirrorStream:
    """What the namespaces and ``/api/state`` use of a publisher's Stream, served from a mirror."""

    def __init__(self, manager: MirrorManager, namespace: str, emit_local: Callable[..., Any]) -> None:
        self._manager = manager
        self._mirror = manager.mirrors[namespace]
        self.namespace = namespace
        self._emit_local = emit_local

    @property
    def rev(self) -> int:
        return self._mirror.rev

    def whole(self, clock_ms: int) -> st.JSON:
        with self._manager.lock:
            state = self._mirror.state
            return {} if state is None else {**state, "clock_ms": clock_ms}

    def send_whole(self, to: str, clock_ms: int, console_extra: st.JSON | None = None) -> None:
        with self._manager.lock:
            state = self._mirror.state
            if state is None:  # nothing published yet: the page gets the state when the first patch comes
                return
            whole = {**state, "clock_ms": clock_ms}
            if console_extra is not None:
                whole["console"] = {**whole.get("console", {}), **console_extra}
            self._emit_local("state", whole, namespace=self.namespace, to=to)


class MirrorPublisher:
    """Stands in for display.publisher.Publisher in a web process: the same ``hall``, ``console`` and
    ``now_ms``; nothing to build or tick (the controller does that)."""

    def __init__(self, manager: MirrorManager, server: Any, sockets: Callable[[], dict[str, Any]]) -> None:
        self.manager = manager
        self._server = server
        self._sockets = sockets  # /console sid -> Identity (display.web.Web.sockets, copied under its lock)
        self._clock = SteadyClock()
        self.alerts = AlertBook()  # unused: alerts live in the controller's publisher
        self.hall = MirrorStream(manager, "/hall", self._emit_local)
        self.console = MirrorStream(manager, "/console", self._emit_local)
        manager.on_reload = self._send_everyone

    def _emit_local(self, event: str, data: st.JSON, *, namespace: str, to: str | None = None) -> None:
        # only to this process's own connections: through Redis every web process would decode it
        self._server.emit(event, data, namespace=namespace, to=to, ignore_queue=True)

    def now_ms(self) -> int:
        """The engine's time as pages count from: never before the last state's own."""
        latest = max((m.clock_ms for m in self.manager.mirrors.values()), default=0)
        return max(self._clock(), latest)

    def _send_everyone(self, mirror: Mirror) -> None:
        """(Under the manager's lock.)  The whole state to every page of ``mirror``'s namespace here."""
        assert mirror.state is not None
        whole = {**mirror.state, "clock_ms": self.now_ms()}
        if mirror.namespace != "/console":
            self._emit_local("state", whole, namespace=mirror.namespace)
            return
        for sid, who in self._sockets().items():
            user = {"user": {"name": who.name, "role": who.role}}
            self._emit_local(
                "state", {**whole, "console": {**whole.get("console", {}), **user}}, namespace="/console", to=sid
            )

    def on_effects(self, *_: object) -> None:  # the interface of Publisher; a web process has no engine
        return None

    def tick(self, monotonic: float | None = None) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self, timeout: float = 5.0) -> None:
        return None

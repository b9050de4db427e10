"""The controller's end of a scale-out (display.scaleout, «States and patches»): ``QueuePublisher``
publishes every patch through python-socketio's write-only ``RedisManager`` after writing the stream's
whole state to its key, and carries on from the stored states after a restart; ``ControllerQueue`` is
what ``chamber run`` starts with ``[web] message_queue`` in place of a web server: that publisher and
the command consumer (display.command_stream)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import redis
import socketio
from redis.exceptions import RedisError

from chamber.config import Config
from chamber.engine import SteadyClock
from display import state as st
from display.command_stream import CommandConsumer, QueueRunner
from display.publisher import Publisher, Stream
from display.queue_base import (
    CHANNEL,
    SIMULATOR,
    Signer,
    connect,
    load_state,
    state_key,
    without_password,
)

log = logging.getLogger("display.scaleout")  # one log name for the scale-out (see display.scaleout)


# --- the controller side: publishing --------------------------------------------------------------------


class QueuePublisher(Publisher):
    """The controller's publisher with Redis behind it (see the module docstring, «States and patches»).

    The streams hand their patches to ``_collect``; after each send (``tick``) ``_flush`` writes each
    stream's whole state to its key and then publishes the patch, in that order, from the publisher's
    thread.  When it sends is the ordinary publisher's business (``Publisher.step``)."""

    def __init__(
        self,
        source: Any,
        chamber: st.Chamber,
        client: redis.Redis,
        manager: socketio.RedisManager,
        **kwargs: Any,
    ) -> None:
        self._client = client
        self._manager = manager
        self._pending: list[tuple[str, st.JSON]] = []
        self._ready = False  # Publisher.__init__ ticks once; that tick waits until the streams are resumed
        self._failing = False
        super().__init__(source, chamber, self._collect, **kwargs)
        for stream in (self.hall, self.console):
            try:
                stored = load_state(client, stream.namespace)
            except RedisError as exc:
                # the web processes see rev 1 after whatever they hold and read the state again
                log.error(
                    "scale-out: the stored %s state cannot be read (%s): starting from rev 0", stream.namespace, exc
                )
                continue
            if stored is not None:
                _resume(stream, stored)
                log.info("scale-out: %s carries on from rev %d", stream.namespace, stream.rev)
        self._ready = True
        self.tick()

    def _collect(self, event: str, data: st.JSON, namespace: str = "/", to: str | None = None, **_: Any) -> None:
        if event == "patch" and to is None:
            self._pending.append((namespace, data))
        else:  # the controller serves no pages: nobody is connected to it to send a state to
            log.debug("scale-out: %s to %s on %s not sent from the controller", event, to, namespace)

    def tick(self, monotonic: float | None = None) -> bool:
        if not self._ready:
            return False
        sent = super().tick(monotonic)
        self._flush()
        return sent

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for namespace, patch in pending:
            stream = self.hall if namespace == self.hall.namespace else self.console
            whole = stream.whole(int(patch["clock_ms"]))
            try:
                # the key first: a web process that sees this patch and reads the key finds at least its rev
                self._client.set(state_key(namespace), msgspec.json.encode(whole))
                self._manager.emit("patch", patch, namespace=namespace)
            except RedisError as exc:
                # the key is written again with the next change; web processes that missed this patch
                # see the gap in rev and read it then
                if not self._failing:
                    log.error("scale-out: cannot publish to Redis: %s (retrying with the next change)", exc)
                self._failing = True
                return
            if self._failing:
                log.info("scale-out: publishing to Redis again")
                self._failing = False


def _resume(stream: Stream, stored: st.JSON) -> None:
    """Start ``stream`` where the stored state left it: its rev, and the state pages hold (less the
    per-send ``rev`` and ``clock_ms``), so the first patch is a diff against it."""
    state = {k: v for k, v in stored.items() if k not in ("rev", "clock_ms")}
    # Stream has no public way to start elsewhere than rev 0; these are its own two fields, under its lock
    with stream._lock:
        stream._state = state
        stream._rev = int(stored["rev"])


class ControllerQueue:
    """What ``chamber run`` starts when ``[web] message_queue`` is set: the publisher through Redis and
    the command consumer, in place of a web server in its own process."""

    def __init__(
        self,
        controller: Any,
        config: Config,
        url: str,
        *,
        secret: bytes,
        simulator_url: str | None = None,
        health: Callable[[], st.Health] | None = None,
    ) -> None:
        engine = getattr(controller, "engine", controller)
        self.client = connect(url)
        self.manager = socketio.RedisManager(url, channel=CHANNEL, write_only=True, json=st.Utf8Json)
        chamber = st.chamber_of(config)
        self.publisher = QueuePublisher(
            engine,
            chamber,
            self.client,
            self.manager,
            clock=SteadyClock(),
            health=health,
            simulator=simulator_url is not None,
        )
        engine.subscribe(self.publisher.on_effects)
        runner = QueueRunner(
            engine,
            config,
            chamber,
            self.publisher.alerts,
            before_submit=lambda *args: self.consumer.before_submit(*args),
        )
        self.consumer = CommandConsumer(self.client, runner, engine, engine.journal, Signer(secret))
        self.simulator_url = simulator_url

    def start(self) -> None:
        try:  # where web processes send a virtual seat's presses (the press API is this machine's loopback)
            if self.simulator_url is not None:
                self.client.set(SIMULATOR, self.simulator_url)
            else:
                self.client.delete(SIMULATOR)
        except RedisError as exc:
            log.error("scale-out: Redis cannot be reached (%s): the pages wait for it, the hall votes on", exc)
        self.consumer.start()
        self.publisher.start()

    def stop(self) -> None:
        self.consumer.stop()
        self.publisher.stop()
        try:
            if self.simulator_url is not None:
                self.client.delete(SIMULATOR)
        except RedisError:
            pass
        self.client.close()


def start_controller_queue(
    controller: Any, config: Config, *, simulator_url: str | None = None
) -> ControllerQueue | None:
    """``chamber run`` with ``[web] message_queue``: publish and take commands through Redis; None (said in
    the log) when that cannot start — the consoles in the hall vote on without it."""
    from display.auth import load_secret_key
    from display.publisher import line_health

    url = config.web.message_queue
    assert url is not None
    lines = list(getattr(controller, "lines", {}).values())
    try:
        queue = ControllerQueue(
            controller,
            config,
            url,
            secret=load_secret_key(config.web.secret_key_file),
            simulator_url=simulator_url,
            health=(lambda: line_health(lines)) if lines else None,
        )
        queue.start()
    except (OSError, ValueError, RedisError) as exc:
        log.error("web: the message queue cannot start (%s); the controller runs without the web pages", exc)
        return None
    log.info(
        "web: scaled out through %s: states published, console commands taken from the stream; serve the "
        "pages with one or more `chamber web --config FILE --port N`",
        without_password(url),
    )
    return queue

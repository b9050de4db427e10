"""The publisher: one thread that turns the engine's snapshots into ``state`` and ``patch`` events.

When it wakes and sends
-----------------------
The engine signals each new snapshot it publishes (``Engine.watch_snapshots``: on the engine thread
the publisher's callback only sets a ``threading.Event``); the filing or acknowledging of an alert
sets the same event.  The thread waits on that event and, when it is set, sends at once if its last
send was at least ``INTERVAL_S`` (100 ms) ago, else at that last send + ``INTERVAL_S``: a lone press
shows at once (leading edge), a burst goes out at most ten patches a second per stream, and what the
burst ends with is sent at the end of the slot it fell in (trailing edge: the held send reads the
snapshot *then*, so it carries everything published meanwhile).  With nothing happening the thread
sleeps until the next line-health sample (``HEALTH_EVERY_S``), or ``HEALTH_EVERY_S`` with no line
health: no busy loop.  A source that cannot signal (no ``watch_snapshots``) is polled every
``INTERVAL_S``.  ``step`` is one pass of that loop at a given monotonic time and says how long the
thread may sleep; tests call it (or ``tick``) directly with their own clock.

What a send is (``tick``)
-------------------------
It reads ``engine.snapshot()``, the engine's latest immutable snapshot.  Only when that object is a
new one (identity: the engine publishes a new object when, and only when, something changed) does it
build the public state again (display.state) and compute the merge patch against the state last sent;
an empty patch sends nothing.  Each page stream (``/hall``: the public state; ``/console``: the public
state plus ``console``) is a ``Stream`` with its own ``rev``, counted up by one per patch it sends, so
a page that misses one sees the gap and asks for the whole state (``resync``).  A stream sends a patch
and hands out a whole state under one lock, so a page never gets a state older than a patch it
already holds.

Alerts come from the engine's effects: ``on_effects`` is an engine subscriber (it runs on the engine
thread, so it only files the ``Alert`` in the ``AlertBook`` under a lock).  The book numbers them,
keeps the newest ``MAX_ALERTS`` and marks them acknowledged (the web-only ``AcknowledgeAlert``); each
carries its detail in Ukrainian and English beside the engine's own (display.alert_words).

Line and seat health (poll cycles, error counters) come from the lines (``terminals.ioloop.Line``),
whose I/O thread keeps counting while we read: they are copied once per ``HEALTH_EVERY_S`` (1 s), not
on every send, so a chamber where nothing happens does not send a patch ten times a second for a cycle
counter.

After each pass ``tick`` calls each of ``tick_hooks`` with the snapshot it built from and whether a
patch went out (display.metrics times the presses to the screen with it); a hook only records.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.snapshot import Snapshot
from display import alert_words
from display import state as st

log = logging.getLogger("display.publisher")

INTERVAL_S = 0.1  # the least time between two sends: at most ten patches a second on a stream
HEALTH_EVERY_S = 1.0  # line health is sampled this often; also the longest sleep of a watching thread
MAX_ALERTS = 200

Emit = Callable[..., Any]  # socketio.emit(event, data, namespace=..., to=...)


class SnapshotSource(Protocol):
    def snapshot(self) -> Snapshot: ...


class AlertBook:
    """The alerts the secretary sees, numbered from 1, newest last; thread-safe."""

    def __init__(self, keep: int = MAX_ALERTS, notify: Callable[[], None] | None = None) -> None:
        self._keep = keep
        self._notify = notify  # called after every change (the publisher's wake-up: it only sets an Event)
        self._alerts: list[st.JSON] = []
        self._next = 1
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change: the publisher rebuilds the console part only then

    def add(self, alert: fx.Alert, at_ms: int) -> int:
        uk, en = alert_words.words(alert.kind, alert.detail)  # the secretary reads a sentence in her language
        with self._lock:
            number = self._next
            self._next += 1
            self._alerts.append(
                {
                    "id": number,
                    "kind": alert.kind,
                    "detail": alert.detail,
                    "detail_uk": uk,
                    "detail_en": en,
                    "seat": alert.seat,
                    "deputy": alert.deputy,
                    "at_ms": at_ms,
                    "acknowledged": False,
                }
            )
            del self._alerts[: -self._keep]
            self.version += 1
        if self._notify is not None:
            self._notify()
        return number

    def acknowledge(self, number: int) -> bool:
        with self._lock:
            found = changed = False
            for i, alert in enumerate(self._alerts):
                if alert["id"] == number:
                    found = True
                    if not alert["acknowledged"]:
                        # a new dict: the one sent before stays as it was, so the patch sees the change
                        self._alerts[i] = {**alert, "acknowledged": True}
                        self.version += 1
                        changed = True
                    break
        if changed and self._notify is not None:
            self._notify()
        return found

    def items(self) -> list[st.JSON]:
        with self._lock:
            return list(self._alerts)


class Stream:
    """One page stream: the state last sent, its ``rev``, and the emitter of its events."""

    def __init__(self, namespace: str, emit: Emit) -> None:
        self.namespace = namespace
        self._emit = emit
        self._state: st.JSON = {}
        self._rev = 0
        self._lock = threading.Lock()

    @property
    def rev(self) -> int:
        return self._rev

    def publish(self, new: st.JSON, clock_ms: int) -> st.JSON | None:
        """Send the patch from the last state to ``new`` to every page on the namespace; None if equal."""
        with self._lock:
            patch = st.merge_patch(self._state, new)
            if not patch:
                return None
            self._rev += 1
            self._state = new
            patch["rev"] = self._rev
            patch["clock_ms"] = clock_ms
            self._emit("patch", patch, namespace=self.namespace)
            return patch

    def whole(self, clock_ms: int) -> st.JSON:
        with self._lock:
            return {**self._state, "rev": self._rev, "clock_ms": clock_ms}

    def send_whole(self, to: str, clock_ms: int, console_extra: st.JSON | None = None) -> None:
        """Send the whole state to one connection (``console_extra`` goes into its ``console`` key)."""
        with self._lock:
            state = {**self._state, "rev": self._rev, "clock_ms": clock_ms}
            if console_extra is not None:
                state["console"] = {**state.get("console", {}), **console_extra}
            self._emit("state", state, namespace=self.namespace, to=to)


class Publisher:
    """Builds and sends the two streams.  ``tick`` is one send; ``step`` decides when (the module
    docstring says how); the thread loops ``step``.  Tests call either with their own clock."""

    def __init__(
        self,
        source: SnapshotSource,
        chamber: st.Chamber,
        emit: Emit,
        *,
        clock: Callable[[], int],
        health: Callable[[], st.Health] | None = None,
        simulator: bool = False,
        hall_namespace: str = "/hall",
        console_namespace: str = "/console",
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.chamber = chamber
        self.clock = clock
        self._monotonic = monotonic
        self._wake = threading.Event()  # set (from any thread) when there may be something new to send
        self.alerts = AlertBook(notify=self._wake.set)
        self.hall = Stream(hall_namespace, emit)
        self.console = Stream(console_namespace, emit)
        self._health_source = health
        self._simulator = simulator
        self._snap: Snapshot | None = None
        self._public: st.JSON = {}
        self._health = st.NO_HEALTH
        self._health_at = float("-inf")
        self._alerts_seen = -1
        self._console_dirty = True
        self._sitting_uid: str | None = None  # the export links' sitting: open, or the last one
        self._held = False  # woken, and the send held until its slot (_sent_at + INTERVAL_S)
        self._sent_at = float("-inf")  # when the last tick that sent a patch ran
        self._next_pass = float("-inf")  # when to look without being woken (health, or a polled source)
        watch = getattr(source, "watch_snapshots", None)  # the Engine has it; a bare snapshot source may not
        self._watching = callable(watch)
        if callable(watch):
            watch(self._wake.set)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.tick_hooks: list[Callable[[Snapshot, bool], None]] = []  # (snapshot sent from, a patch went out)
        self.tick()  # a page that connects before the thread's first pass gets a real state

    # --- engine side ------------------------------------------------------------------------------

    def on_effects(self, _input: ev.Input, effects: tuple[fx.Effect, ...]) -> None:
        """Engine subscriber (runs on the engine thread): file the alerts, nothing more (filing one
        wakes the publisher through the book)."""
        for effect in effects:
            if type(effect) is fx.Alert:
                self.alerts.add(effect, self.clock())

    # --- one send -----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        """The engine's time as pages count from: never before the snapshot's own."""
        snap = self._snap
        return max(self.clock(), snap.clock if snap is not None else 0)

    def tick(self, monotonic: float | None = None) -> bool:
        """Send what changed since the last send, to each stream; True if a patch went out."""
        snap = self.source.snapshot()
        if snap is not self._snap:
            self._snap = snap
            self._public = st.public_state(snap, self.chamber)
            self._console_dirty = True
            self._sitting_uid = self._current_sitting() or self._sitting_uid
        mono = self._monotonic() if monotonic is None else monotonic
        # the same sum as step's deadline, so a pass woken for the sample always takes it
        if self._health_source is not None and mono >= self._health_at + HEALTH_EVERY_S:
            self._health_at = mono
            health = self._health_source()
            if health != self._health:
                self._health = health
                self._console_dirty = True
        if self.alerts.version != self._alerts_seen:
            self._alerts_seen = self.alerts.version
            self._console_dirty = True
        clock_ms = self.now_ms()
        sent = self.hall.publish(self._public, clock_ms) is not None
        if self._console_dirty:
            self._console_dirty = False
            part = st.console_part(
                snap,
                self.chamber,
                alerts=self.alerts.items(),
                health=self._health,
                simulator=self._simulator,
                sitting_uid=self._sitting_uid,
            )
            sent = self.console.publish({**self._public, "console": part}, clock_ms) is not None or sent
        for hook in self.tick_hooks:
            try:
                hook(snap, sent)
            except Exception:  # a broken hook must not stop the pages
                log.exception("publisher: tick hook %r failed", hook)
        return sent

    def _current_sitting(self) -> str | None:
        """The engine's open sitting; with none open, the journal's last (what the secretary exports
        after closing it, or after a restart).  A source without either (a test's) has none."""
        uid = getattr(self.source, "sitting_uid", None)
        if isinstance(uid, str):
            return uid
        if self._sitting_uid is not None:
            return None  # the one kept from before stays
        journal = getattr(self.source, "journal", None)
        try:
            sittings = journal.sittings() if journal is not None else []
        except Exception:  # the export links are a convenience: a store that cannot say leaves them out
            log.exception("publisher: the journal's sittings cannot be read")
            return None
        return sittings[-1] if sittings and isinstance(sittings[-1], str) else None

    # --- when to send -----------------------------------------------------------------------------

    def step(self, monotonic: float) -> float:
        """One pass of the thread at ``monotonic`` (seconds): send now if woken (or a health sample or a
        poll is due) and the last send was at least ``INTERVAL_S`` ago; returns the seconds to sleep
        before the next pass (the held send's slot, else the next sample or poll)."""
        if self._wake.is_set():
            # cleared before the send reads the snapshot: one published while it builds wakes us again
            self._wake.clear()
            self._held = True
        if monotonic >= self._next_pass:
            self._held = True
        if self._held:
            due = self._sent_at + INTERVAL_S
            if monotonic < due:
                return due - monotonic
            self._held = False
            self._next_pass = monotonic + (HEALTH_EVERY_S if self._watching else INTERVAL_S)
            if self.tick(monotonic):
                self._sent_at = monotonic
            if self._health_source is not None:
                self._next_pass = min(self._next_pass, self._health_at + HEALTH_EVERY_S)
        return max(self._next_pass - monotonic, 0.0)

    # --- the thread --------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="display-publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()  # out of its wait now
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pause = self.step(self._monotonic())
            except Exception:  # a defect in building a state must not stop the pages for the sitting
                log.exception("publisher: building or sending the state failed")
                self._held = False
                pause = INTERVAL_S
            # While a send is held for its slot the engine's next snapshots need not wake us: the held
            # send reads the newest one when it goes.  Otherwise any signal ends the sleep.
            (self._stop if self._held else self._wake).wait(pause)


def line_health(lines: Iterable[Any]) -> st.Health:
    """A copy of the lines' counters (``terminals.ioloop.Line``): each Counter copied in one step, as the
    lines' I/O thread keeps counting."""
    seat_errors: dict[int, dict[str, int]] = {}
    out: dict[str, st.JSON] = {}
    for loop in lines:
        for link in loop.links:
            errors = dict(link.errors)
            if errors:
                seat_errors[link.seat] = errors
        out[loop.line_id] = {"cycles": loop.stats.cycles, "errors": dict(loop.stats.errors)}
    return st.Health(seat_errors=seat_errors, lines=out)

"""Scale-out: the controller and several web processes sharing one Redis (``[web] message_queue``).

Who does what
-------------
The controller (``chamber run``) owns the engine, as always.  With a message queue configured it
serves no pages itself: it *publishes* and it *executes*.  Web processes (``chamber web``, any number,
display/web_main.py) serve the pages and the Socket.IO namespaces; they have no engine.  Everything
between them goes through Redis:

* **States and patches.**  The controller's :class:`QueuePublisher` is the ordinary publisher
  (display.publisher: at most one patch per stream and 100 ms, each with its ``rev``) whose patches go out
  through python-socketio's write-only ``RedisManager`` on channel :data:`CHANNEL`, the channel every
  web process's SocketIO listens on.  Before each patch is published, the stream's whole state (with
  that patch's ``rev``) is written to the key ``chamber:state:<namespace>``: whoever sees patch R on
  the channel finds at least R in the key.  A restarted controller reads those keys and carries on from
  them (same ``rev`` sequence, first patch a diff against what the pages hold), so pages connected to
  the web processes do not even notice it.

* **What a browser gets.**  Each web process keeps a mirror of each stream (:class:`MirrorManager`, a
  ``RedisManager`` whose listener applies every patch to the mirror before forwarding it).  A browser
  that connects or reconnects is sent the mirror at once as its ``state``; sending it and forwarding a
  patch take the same lock, so a page gets state R and then exactly patches R+1, R+2, ...  A patch
  whose ``rev`` is not the next one (a message lost while Redis was reconnecting, a web process that
  has just started, a controller that started over with an empty Redis) makes the web process read
  the key again and send the whole state to every page it serves; a patch older than the mirror
  (already in a state read from the key) is dropped.  Null members are absent from a mirror, as from
  a page's own state after a merge patch (a page treats a missing key as null).

* **Commands, exactly once.**  A web process checks a console command as the single-process server
  does (log-in, role, CSRF, shape; display.commands), then adds it to the Redis stream
  ``chamber:commands`` with a unique id, the user, role and language, its time, and an HMAC made with
  the session key file all processes share (``[web] secret_key_file``), and waits on the list
  ``chamber:reply:<id>`` (BLPOP, ``SUBMIT_TIMEOUT_S``).  The controller's :class:`CommandConsumer`
  reads the stream in a consumer group, one command at a time, and for each:

  1. refuses a bad signature (somebody who can write to Redis is not thereby a secretary);
  2. if ``chamber:done:<id>`` exists, the command ran already: its stored reply is sent again, the
     entry acknowledged, nothing executed (a redelivery or a replayed message);
  3. if the entry is older than ``COMMAND_TTL_S`` by Redis's own clock (its stream id), it is not
     executed and answered ``timeout``: the browser was told "no answer in time", and a vote must not
     open by itself minutes later;
  4. otherwise writes the marker ``chamber:inflight`` (the id, and where the journal ended: sitting
     and seq) and runs the command through the ordinary CommandRunner, which submits it to the engine
     (the engine journals it before applying it);
  5. in one MULTI: stores the reply under ``chamber:done:<id>`` (a day), deletes the marker, pushes
     the reply to ``chamber:reply:<id>`` and acknowledges the stream entry.

  On start, before reading anything new, the consumer settles a marker left by a crash: it looks in
  the journal, after the recorded position, for a record with exactly the command's type and payload
  (only the consumer submits web commands, one at a time, so nothing else can have written it).  Found:
  the command was executed; its reply is rebuilt by replaying the sitting to that record (accepted, or
  refused with the core's reason) and stored as done.  Not found: it was not, and the pending stream
  entry (Redis keeps it in the group's pending list until acknowledged) is executed now if still
  within its TTL.

  The consumer also remembers the ids (and replies) of the last ``RECENT_IDS`` commands it finished,
  for a Redis that comes back having lost its last writes and hands an executed command out again.

  What this guarantees: a command is applied at most once, and exactly once if the controller reads it
  within ``COMMAND_TTL_S`` (and the journal can be written), across controller crashes at any point,
  as long as Redis keeps what it acknowledged (Redis running; or restarted with ``appendonly yes`` +
  ``appendfsync always``).  Why: before the engine sees a command, Redis holds its delivery and the
  marker; after, the journal holds the command and Redis its done marker.  When Redis loses
  acknowledged writes (a restart without persistence, or ``appendfsync everysec`` losing its last
  second), a command in flight can be lost (the browser gets ``timeout``), and it is executed twice
  only if the controller restarted as well within that lost window: then neither the marker (for the
  journal check) nor the consumer's memory of the id is left.  A command the engine refused without
  journaling it (no sitting open) is not in the journal, so after a crash it may be tried once more;
  nothing of the first try was recorded or applied.  A Redis that comes back empty (no stream, no
  group) is set up again by the consumer.

* **Sessions.**  The session cookie is signed with the shared key file, users are read from the store,
  and two things that were per process become shared: a log-out (``chamber:revoked:<session>``, kept
  for the session lifetime, announced on ``chamber:logout`` so every web process closes that session's
  console sockets) and the log-in rate limit (:class:`SharedLoginGuard`: a sorted set per user name and
  per address, so N web processes do not give a guesser N times the tries).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
import socketio
from redis.exceptions import RedisError, ResponseError

from chamber.config import Config
from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.events import decode_input, encode_input
from chamber.core.sitting import Sitting
from chamber.engine import SteadyClock
from chamber.journal import Journal
from display import state as st
from display.auth import LoginGuard
from display.commands import (
    SUBMIT_TIMEOUT_S,
    CommandRunner,
    ImportAgenda,
    Refused,
    Result,
    agenda_from_csv,
)
from display.publisher import AlertBook, Publisher, Stream

log = logging.getLogger("display.scaleout")

#: The Socket.IO channel on Redis: the controller's write-only manager publishes on it, every web
#: process's SocketIO listens on it.
CHANNEL = "chamber-socketio"
NAMESPACES = ("/hall", "/console")
COMMANDS = "chamber:commands"  # the command stream
GROUP = "controller"  # its consumer group (one controller)
CONSUMER = "controller"
INFLIGHT = "chamber:inflight"  # the command being executed (at most one: the consumer is sequential)
SIMULATOR = "chamber:simulator"  # the simulator's press API URL while `chamber run --simulate` runs
LOGOUT_CHANNEL = "chamber:logout"

#: A command older than this (by Redis's clock) is not executed: the web process waits
#: ``SUBMIT_TIMEOUT_S`` (10 s) for the reply, and a command must not start after the browser gave up.
COMMAND_TTL_S = SUBMIT_TIMEOUT_S - 2.0
#: A signed command whose own time is further than this from the controller's clock is refused: with
#: the done markers (kept a day) a captured message cannot be replayed later.
REPLAY_WINDOW_MS = 10 * 60 * 1000
DONE_TTL_S = 24 * 3600
REPLY_TTL_S = 60  # a reply nobody popped (the web process gave up) disappears
STREAM_MAXLEN = 10_000  # approximate: the stream is a queue, not an archive
READ_BLOCK_MS = 500  # how long one XREADGROUP waits: the consumer notices a stop within this
RECENT_IDS = 10_000  # command ids the consumer remembers itself, beside Redis's done markers
_SIGNING_CONTEXT = b"chamber command stream v1"


def state_key(namespace: str) -> str:
    return f"chamber:state:{namespace}"


def reply_key(command_id: str) -> str:
    return f"chamber:reply:{command_id}"


def done_key(command_id: str) -> str:
    return f"chamber:done:{command_id}"


def revoked_key(session_id: str) -> str:
    return f"chamber:revoked:{session_id}"


def connect(url: str) -> redis.Redis:
    """A Redis client (thread-safe: a connection pool) that hands back ``str``.

    The socket timeout is longer than any blocking call made with it (BLPOP waits ``SUBMIT_TIMEOUT_S``),
    so a Redis that disappears surfaces as an error, not a thread stuck for ever.
    """
    client: redis.Redis = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=SUBMIT_TIMEOUT_S + 20,
        health_check_interval=30,
    )
    return client


def load_state(client: redis.Redis, namespace: str) -> st.JSON | None:
    """The whole state last stored for ``namespace`` (with ``rev`` and ``clock_ms``), or None."""
    raw = client.get(state_key(namespace))
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        log.error("scale-out: %s holds no JSON; ignored", state_key(namespace))
        return None
    if not isinstance(value, dict) or not isinstance(value.get("rev"), int):
        log.error("scale-out: %s is not a state with a rev; ignored", state_key(namespace))
        return None
    return value


# --- signing --------------------------------------------------------------------------------------------


class BadCommand(ValueError):
    """A stream entry that is not a command signed by one of our web processes."""


class Signer:
    """HMAC-SHA256 over the command's JSON text, with a key derived from the session key file."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _SIGNING_CONTEXT, hashlib.sha256).digest()

    def seal(self, command: Mapping[str, Any]) -> dict[str, str]:
        text = json.dumps(command, ensure_ascii=False, separators=(",", ":"))
        return {"cmd": text, "sig": hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()}

    def open(self, fields: Mapping[str, str]) -> dict[str, Any]:
        text, sig = fields.get("cmd"), fields.get("sig")
        if not isinstance(text, str) or not isinstance(sig, str):
            raise BadCommand("no cmd or sig field")
        expected = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise BadCommand("wrong signature")
        try:
            command = json.loads(text)
        except ValueError as exc:
            raise BadCommand(f"not JSON: {exc}") from None
        shape = {"id": str, "at_ms": int, "user": str, "role": str, "lang": str, "body": dict}
        if not isinstance(command, dict) or any(not isinstance(command.get(k), t) for k, t in shape.items()):
            raise BadCommand("missing or mistyped fields")
        return command


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


# --- the controller side: commands ---------------------------------------------------------------------


class QueueRunner(CommandRunner):
    """The controller's CommandRunner: every input is announced to ``before_submit`` (the in-flight
    marker) right before it goes to the engine."""

    def __init__(self, *args: Any, before_submit: Callable[[ev.Input, str, str, str], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._before_submit = before_submit

    def _submit(self, command: ev.Input, *, user: str, role: str, lang: str) -> Result:
        self._before_submit(command, user, role, lang)
        return super()._submit(command, user=user, role=role, lang=lang)


@dataclass(frozen=True, slots=True)
class Inflight:
    """The marker of the command being executed: its id, and where the journal ended before it."""

    id: str
    sitting: str | None
    seq: int
    type: str
    payload: str  # the input's journal form (encode_input), as text
    user: str
    role: str
    lang: str


class CommandConsumer:
    """Reads the command stream and executes each command once (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        runner: CommandRunner,
        engine: Any,
        journal: Journal,
        signer: Signer,
        *,
        ttl_s: float = COMMAND_TTL_S,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.client = client
        self.runner = runner
        self.engine = engine
        self.journal = journal
        self.signer = signer
        self.ttl_ms = int(ttl_s * 1000)
        self.clock_ms = clock_ms
        self.executed = 0  # commands run through the engine by this process (tests and logs)
        self._current: str | None = None  # the id of the command being run (the consumer is sequential)
        self._settled = False  # the group exists and what a crash left is settled
        # The replies of the commands this process finished, newest last: a Redis that lost its last
        # writes (its done markers and the group's delivery record) may hand one out again as new.
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Settle what a crash left, then read new commands in a thread of its own (which does the
        settling itself, once Redis answers, when it cannot be reached now)."""
        try:
            self._ensure_group()
            self.recover()
            self._settled = True
        except RedisError as exc:
            log.error("scale-out: cannot reach the command stream: %s (retrying every second)", exc)
        self._thread = threading.Thread(target=self._run, name="scaleout-commands", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _ensure_group(self) -> None:
        try:
            # from the stream's start: a command added just before the controller came up is still
            # executed (within its TTL); older ones are answered "timeout" once and acknowledged
            self.client.xgroup_create(COMMANDS, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                if not self._settled:  # Redis was not up at the start, or came back empty
                    self._ensure_group()
                    self.recover()
                    self._settled = True
                got = self.client.xreadgroup(GROUP, CONSUMER, {COMMANDS: ">"}, count=16, block=READ_BLOCK_MS)
                for entry_id, fields in _entries(got):
                    self.handle(entry_id, fields)
                if failing:
                    log.info("scale-out: command stream readable again")
                    failing = False
            except RedisError as exc:
                if "NOGROUP" in str(exc):  # a Redis restarted without its data: the stream is made again
                    self._settled = False
                if not failing:
                    log.error("scale-out: cannot read the command stream: %s (retrying every second)", exc)
                failing = True
                self._stop.wait(1.0)
            except Exception:  # a defect must not stop the secretary's commands for the rest of the sitting
                log.exception("scale-out: handling a command failed")
                self._stop.wait(1.0)

    # --- recovery ------------------------------------------------------------------------------------

    def recover(self) -> None:
        """Settle the in-flight marker a crash left, then the entries delivered but never acknowledged."""
        raw = self.client.get(INFLIGHT)
        if raw is not None:
            try:
                marker = Inflight(**json.loads(raw))
            except (ValueError, TypeError) as exc:
                log.error("scale-out: unreadable in-flight marker %r dropped: %s", raw[:200], exc)
                self.client.delete(INFLIGHT)
            else:
                self._settle(marker)
        pending = self.client.xreadgroup(GROUP, CONSUMER, {COMMANDS: "0"}, count=1000)
        for entry_id, fields in _entries(pending):
            if fields:  # an entry trimmed from the stream since its delivery has no fields left
                self.handle(entry_id, fields)
            else:
                self.client.xack(COMMANDS, GROUP, entry_id)

    def _settle(self, marker: Inflight) -> None:
        found = self._find_in_journal(marker)
        if found is None:
            log.warning(
                "scale-out: command %s (%s) was in flight at a crash and is not in the journal: not executed; "
                "it runs now if still within its time",
                marker.id,
                marker.type,
            )
            self.client.delete(INFLIGHT)
            return
        sitting, seq, rejected = found
        if rejected is None:
            reply: dict[str, Any] = {"ok": True, "seq": seq}
        else:
            reply = self.runner.refusal(rejected.reason, rejected.detail, marker.lang, seat=rejected.seat)
        log.warning(
            "scale-out: command %s (%s) was in flight at a crash and is in the journal (sitting %s, seq %d): "
            "executed once, not again",
            marker.id,
            marker.type,
            sitting,
            seq,
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.set(done_key(marker.id), json.dumps(reply, ensure_ascii=False), ex=DONE_TTL_S)
        pipe.delete(INFLIGHT)
        pipe.execute()

    def _find_in_journal(self, marker: Inflight) -> tuple[str, int, Rejected | None] | None:
        """Where the journal holds the marker's command, and whether the core refused it; None if nowhere."""
        payload = marker.payload.encode()
        sittings = self.journal.sittings()
        if marker.sitting is None:
            candidates = sittings  # no sitting had records when it was marked: any there is now is newer
        elif marker.sitting in sittings:
            candidates = sittings[sittings.index(marker.sitting) :]
        else:
            return None
        for uid in candidates:
            after = marker.seq if uid == marker.sitting else 0
            for rec in self.journal.records(uid, after_seq=after):
                if rec.type == marker.type and bytes(rec.payload) == payload:
                    return uid, rec.seq, _rejection_at(self.journal, uid, rec.seq)
        return None

    # --- one command -----------------------------------------------------------------------------------

    def handle(self, entry_id: str, fields: Mapping[str, str]) -> None:
        try:
            command = self.signer.open(fields)
        except BadCommand as exc:
            log.error("scale-out: stream entry %s refused: %s (not from one of our web processes?)", entry_id, exc)
            # an id we can trust is not there; with a good signature missing, nobody we know waits either
            self.client.xack(COMMANDS, GROUP, entry_id)
            return
        cid = command["id"]
        done: Any = self.client.get(done_key(cid)) or self._recent.get(cid)
        if done is not None:
            log.info("scale-out: command %s was executed already; its reply is sent again", cid)
            self._finish(entry_id, cid, done, store=False)
            return
        now = self.clock_ms()
        redis_now_ms = _redis_ms(self.client)
        age_ms = redis_now_ms - int(entry_id.split("-", 1)[0])
        lang = command["lang"]
        if age_ms > self.ttl_ms or abs(now - command["at_ms"]) > REPLAY_WINDOW_MS:
            log.warning("scale-out: command %s is %d ms old: not executed", cid, age_ms)
            why = f"the command waited {age_ms / 1000:.1f} s for the controller and was not carried out"
            reply = self.runner.refusal("timeout", why, lang)
        else:
            self._current = cid
            try:
                result = self.runner.run(command["body"], user=command["user"], role=command["role"], lang=lang)
            finally:
                self._current = None
            reply = result.reply
            self.executed += 1
        self._finish(entry_id, cid, json.dumps(reply, ensure_ascii=False), store=True)

    def before_submit(self, command: ev.Input, user: str, role: str, lang: str) -> None:
        """The in-flight marker, written right before the engine gets the input (QueueRunner calls it)."""
        if self._current is None:
            return  # not a stream command (nothing else uses this runner, but be safe)
        uid = self.engine.sitting_uid
        if uid is None:
            sittings = self.journal.sittings()
            uid = sittings[-1] if sittings else None
        last = self.journal.last_record(uid) if uid is not None else None
        marker = Inflight(
            id=self._current,
            sitting=uid,
            seq=last.seq if last is not None else 0,
            type=type(command).__name__,
            payload=encode_input(command).decode(),
            user=user,
            role=role,
            lang=lang,
        )
        self.client.set(INFLIGHT, json.dumps(_asdict(marker), ensure_ascii=False))

    def _finish(self, entry_id: str, cid: str, reply: str, *, store: bool) -> None:
        self._recent[cid] = reply
        self._recent.move_to_end(cid)
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        pipe = self.client.pipeline(transaction=True)
        if store:
            pipe.set(done_key(cid), reply, ex=DONE_TTL_S)
            pipe.delete(INFLIGHT)
        pipe.rpush(reply_key(cid), reply)
        pipe.expire(reply_key(cid), REPLY_TTL_S)
        pipe.xack(COMMANDS, GROUP, entry_id)
        pipe.execute()


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The (id, fields) of an XREADGROUP reply (RESP2: a list of [stream, entries]; RESP3: a dict)."""
    streams = reply.values() if isinstance(reply, dict) else [entries for _name, entries in reply or ()]
    out: list[tuple[str, dict[str, str]]] = []
    for entries in streams:
        if isinstance(entries, list) and entries and isinstance(entries[0], list) and len(entries) == 1:
            entries = entries[0]  # RESP3 wraps each stream's entries once more
        for entry_id, fields in entries or ():
            out.append((str(entry_id), dict(fields or {})))
    return out


def _asdict(marker: Inflight) -> dict[str, Any]:
    return {name: getattr(marker, name) for name in Inflight.__slots__}


def _redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def _rejection_at(journal: Journal, sitting: str, seq: int) -> Rejected | None:
    """The core's refusal of record ``seq`` of ``sitting``, replayed from the journal (None: accepted)."""
    replay = Sitting()
    effects: tuple[Any, ...] = ()
    for rec in journal.records(sitting):
        effects = tuple(replay.apply(decode_input(rec.payload), rec.at_ms))
        if rec.seq == seq:
            break
    first = effects[0] if effects else None
    return first if isinstance(first, Rejected) else None


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


def without_password(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


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


# --- the web side: commands, log-outs, log-in limits ---------------------------------------------------------


class CommandLink:
    """A web process's end of the command stream: add a signed command, wait for its reply."""

    def __init__(self, client: redis.Redis, signer: Signer) -> None:
        self.client = client
        self.signer = signer

    def call(
        self, body: Mapping[str, Any], *, user: str, role: str, lang: str, timeout_s: float
    ) -> dict[str, Any] | None:
        """The controller's reply, or None when none came within ``timeout_s``; RedisError when Redis is down."""
        cid = uuid.uuid4().hex
        command = {
            "id": cid,
            "at_ms": time.time_ns() // 1_000_000,
            "user": user,
            "role": role,
            "lang": lang,
            "body": dict(body),
        }
        fields: dict[Any, Any] = self.signer.seal(command)
        self.client.xadd(COMMANDS, fields, maxlen=STREAM_MAXLEN, approximate=True)
        got = self.client.blpop([reply_key(cid)], timeout=timeout_s)
        if got is None:
            return None
        reply = json.loads(got[1])
        return reply if isinstance(reply, dict) else None


class RemoteRunner(CommandRunner):
    """A web process's CommandRunner: the same checks (shape, role, decoding) here, the execution in the
    controller through the command stream; the browser's ack is the controller's reply."""

    def __init__(
        self, config: Config, chamber: st.Chamber, link: CommandLink, publisher: MirrorPublisher, **kwargs: Any
    ) -> None:
        super().__init__(None, config, chamber, publisher.alerts, **kwargs)
        self.link = link
        self.publisher = publisher

    def _context(self) -> dict[str, object]:
        """The numbers some refusals name, from the hall's mirror (there is no engine here)."""
        hall = self.publisher.hall.whole(0)
        registration = hall.get("registration") or {}
        composition = registration.get("composition") or self.chamber.composition
        return {
            "registered": registration.get("registered", "?"),
            "composition": composition,
            "needed": self.chamber.quorum.required(composition),
            "max_open_mics": self.chamber.max_open_mics,
            "phase": hall.get("phase", "?"),
        }

    def run(self, obj: object, *, user: str, role: str, lang: str) -> Result:
        checked = self.checked(obj, user=user, role=role, lang=lang)
        if isinstance(checked, Result):
            return checked
        body, kind, command = checked
        if isinstance(command, ImportAgenda):
            try:
                agenda_from_csv(command.csv)  # the secretary hears about a broken file without a round trip
            except Refused as exc:
                return Result(self.refusal(exc.code, exc.why, lang))
        try:
            reply = self.link.call(body, user=user, role=role, lang=lang, timeout_s=self.timeout_s)
        except RedisError as exc:
            log.error("web: %s (%s) %s: the message queue cannot be reached: %s", user, role, kind, exc)
            return Result(self.refusal("engine_error", f"the message queue cannot be reached: {exc}", lang))
        if reply is None:
            log.error("web: %s (%s) %s: no answer from the controller in %.0f s", user, role, kind, self.timeout_s)
            return Result(self.refusal("timeout", f"no answer in {self.timeout_s:.0f} s", lang))
        return Result(reply)


class SharedRevocations:
    """The logged-out session ids, shared by every web process (``display.app.Web.revoked`` in their place).

    ``add`` stores the id for the session lifetime and announces it; :meth:`listen` (a thread) closes
    the console sockets this process holds for an announced session.  When Redis cannot say, a session
    counts as logged out: the console fails closed (its commands need Redis anyway).
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, session_id: str) -> None:
        try:
            self.client.set(revoked_key(session_id), "1", ex=self.ttl_s)
            self.client.publish(LOGOUT_CHANNEL, session_id)
        except RedisError as exc:
            log.error("web: a log-out could not be shared with the other web processes: %s", exc)

    def __contains__(self, session_id: object) -> bool:
        if not isinstance(session_id, str):
            return False
        try:
            return bool(self.client.exists(revoked_key(session_id)))
        except RedisError as exc:
            log.error("web: cannot ask Redis whether a session was logged out (%s): treated as logged out", exc)
            return True

    def listen(self, close_session: Callable[[str], None]) -> None:
        self._thread = threading.Thread(target=self._listen, args=(close_session,), name="scaleout-logout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _listen(self, close_session: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(LOGOUT_CHANNEL)
                try:
                    while not self._stop.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if message is not None and isinstance(message.get("data"), str):
                            close_session(message["data"])
                finally:
                    pubsub.close()
            except RedisError as exc:
                log.error("web: log-out announcements cannot be received: %s (retrying)", exc)
                self._stop.wait(1.0)


class SharedLoginGuard(LoginGuard):
    """display.auth.LoginGuard over Redis: failed log-ins per user name and per address within a sliding
    window, counted by every web process together (a sorted set of failure times per key).  When Redis
    cannot be reached it falls back to this process's own in-memory count (the parent class)."""

    def __init__(self, client: redis.Redis, limit: int = 5, window_s: float = 60.0) -> None:
        super().__init__(limit, window_s)
        self.client = client
        self.limit = limit
        self.window_s = window_s

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return f"chamber:login:u:{name}", f"chamber:login:a:{address}"

    def retry_after(self, name: str, address: str) -> int | None:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._keys(name, address):
                pipe.zremrangebyscore(key, "-inf", now - self.window_s)
                pipe.zrange(key, -self.limit, -1, withscores=True)
            results = pipe.execute()
        except RedisError as exc:
            log.error("web: log-in limits from Redis unavailable (%s): this process's own count", exc)
            return super().retry_after(name, address)
        # the limit-th newest failure leaves the window at its time + window: then one more try is allowed
        waits = [entries[0][1] + self.window_s - now for entries in results[1::2] if len(entries) >= self.limit]
        return int(max(0.0, *waits)) + 1 if waits else None

    def failed(self, name: str, address: str) -> None:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._keys(name, address):
                pipe.zadd(key, {uuid.uuid4().hex: now})
                pipe.expire(key, int(self.window_s) + 1)
            pipe.execute()
        except RedisError:
            super().failed(name, address)

    def succeeded(self, name: str) -> None:
        try:
            self.client.delete(self._keys(name, "")[0])
        except RedisError:
            super().succeeded(name)

"""The command stream of a scale-out (display.scaleout, «Commands, exactly once»): its two ends.

* The controller's: ``CommandConsumer`` reads ``chamber:commands`` in a consumer group and executes
  each command once through ``QueueRunner`` (the ordinary CommandRunner that writes the in-flight
  marker right before the engine gets the input), settling what a crash left from the journal.
* A web process's: ``CommandLink`` adds a signed command and waits for its reply; ``RemoteRunner`` is
  the CommandRunner of a web process: the checks here, the execution in the controller.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from chamber.config import Config
from chamber.core import events as ev
from chamber.core.effects import Rejected
from chamber.core.events import decode_input, encode_input
from chamber.core.sitting import Sitting
from chamber.journal import Journal
from display import state as st
from display.commands import (
    CommandRunner,
    ImportAgenda,
    Refused,
    Result,
    agenda_from_csv,
)
from display.mirrors import MirrorPublisher
from display.queue_base import (
    COMMAND_TTL_S,
    COMMANDS,
    CONSUMER,
    DONE_TTL_S,
    GROUP,
    INFLIGHT,
    READ_BLOCK_MS,
    RECENT_IDS,
    REPLAY_WINDOW_MS,
    REPLY_TTL_S,
    STREAM_MAXLEN,
    BadCommand,
    Signer,
    done_key,
    reply_key,
)

log = logging.getLogger("display.scaleout")  # one log name for the scale-out (see display.scaleout)


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

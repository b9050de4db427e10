"""The engine: the one owner of the sitting, fed by a queue, journaling before it acts.

Producers (the line loops, the web console, the CLI) call ``submit`` from any
thread and get a Future of the ``Outcome``.  One thread takes inputs off the
queue and, for each batch:

1. stamps it with the time (wall clock in ms, never running backwards);
2. turns each input into its journal form (a secret choice loses its value);
3. appends the batch to the journal in one durable transaction (group commit);
4. only then applies each input to the Sitting and hands the effects to the
   subscribers (the line loops light LEDs, the display shows results) and to
   the caller's Future.

If the journal write fails nothing is applied and nothing acknowledged: the
consoles still hold their latched presses and report them again.  Commands
are batched alone, seat events together, so a batch cannot change what a
secret choice's journal form must be halfway through.

A store that stops (a full disk, a lost connection, a server down) stops the
acknowledgements and nothing else: every batch fails with ``EngineError`` and
the engine goes on trying with the next one.  The first failure of an outage
is an ``Alert(kind="store_failed")`` handed to the subscribers (the secretary's
alert book) and an error in the log; the repeats, one per poll while presses
are retaken, are only counted (``journal_failures``).  The first append that
works again raises ``store_restored``.  A failed COMMIT (``CommitInDoubt``)
may have stored the batch all the same: before its next append the engine
reads what the journal holds past its last record and applies the batches it
finds there as they were submitted, so the live sitting never differs from a
replay of its journal (the presses of such a batch are read again from the
consoles and journaled as repeats, which count once).  Each append names the
seq it expects the chain to be at, so a record it has not applied can never be
built upon.

On start the engine replays the newest sitting's journal and resumes where it
stopped, an open vote included.  A secret vote found unfinished is annulled
(its choices were never stored) and the annulment journaled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass

import msgspec

from chamber.core import events as ev
from chamber.core.effects import Alert, Effect, Rejected, SealSecretTally
from chamber.core.events import decode_input, encode_input
from chamber.core.phases import Phase
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.journal import CommitInDoubt, Journal, JournalConflict

log = logging.getLogger("chamber.engine")

SEAT_EVENTS = ev.SEAT_EVENTS
MAX_BATCH = 512
# While presses come in, a new snapshot at most this often: the publisher sends the newest one when its
# 100 ms slot comes, so this is how stale a patch can be.  Building one costs 0.1-0.7 ms of CPU at 450 seats
# (docs/BENCHMARKS.md: 20 ms against 50 ms took 20-30 ms off the web's median and p90, no cost seen on the
# bus cycle; 10 ms gained little more for twice the builds).
SNAPSHOT_EVERY_MS = 20
#: Batches whose COMMIT failed kept to be looked for in the journal; a store failing at every commit
#: for long keeps only the newest (one that came through and was dropped here is then a JournalConflict).
MAX_UNSURE = 256
#: a due deadline (a timed vote's end) whose input could not be journaled is tried again this much later,
#: not at once: with the store down it would stay due, and the engine would spin on it
STORE_RETRY_MS = 250

#: An adapter fed every input (in its journal form: a secret choice arrives without its key) with its
#: effects (in a secret vote ``ChoiceAccepted`` carries option -1: taken, value not shown).
Subscriber = Callable[[ev.Input, tuple[Effect, ...]], None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one input."""

    input: ev.Input
    effects: tuple[Effect, ...]
    seq: int | None  # journal sequence number; None when not journaled (no sitting open)

    @property
    def accepted(self) -> bool:
        return not (self.effects and type(self.effects[0]) is Rejected)

    @property
    def rejection(self) -> Rejected | None:
        first = self.effects[0] if self.effects else None
        return first if isinstance(first, Rejected) else None


class EngineError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class _Unsure:
    """A batch whose COMMIT failed: it may be in the journal all the same."""

    uid: str
    events: list[ev.Input]
    forms: list[ev.Input]
    now: int


class SteadyClock:
    """Wall-clock milliseconds read once, then carried on by the monotonic clock: an NTP step (or a
    hand-set clock) during a sitting cannot stop a timed vote or a speech limit, nor move them."""

    def __init__(self) -> None:
        self._wall0 = time.time_ns()
        self._mono0 = time.monotonic_ns()

    def __call__(self) -> int:
        return (self._wall0 + time.monotonic_ns() - self._mono0) // 1_000_000


class Engine:
    def __init__(self, journal: Journal, clock: Callable[[], int] | None = None) -> None:
        self.journal = journal
        self._clock = clock or SteadyClock()
        self._offset = 0  # added to the clock: grows when it is found behind the journal's time
        self._last_time = 0
        self.sitting = Sitting()
        self.sitting_uid: str | None = None
        self._queue: queue.SimpleQueue[tuple[ev.Input, Future[Outcome]] | None] = queue.SimpleQueue()
        self._held: tuple[ev.Input, Future[Outcome]] | None = None
        self._subscribers: list[Subscriber] = []
        self._thread: threading.Thread | None = None
        self._snapshot: Snapshot = self.sitting.snapshot()
        self._snapshot_at = 0
        self._dirty = False
        self._snapshot_watchers: list[Callable[[], None]] = []
        self._append_watchers: list[Callable[[float, int], None]] = []
        self.journal_failures = 0  # failed appends since the start
        self._outage_failures = 0  # failed appends since the last one that worked
        self._deadlines_after = 0  # engine time before which a due deadline is not tried again
        self._last_seq = 0  # the seq of the sitting's last record applied
        self._doubt: list[_Unsure] = []  # batches whose COMMIT failed, oldest first
        #: The journal sequence number of the input being handed to the subscribers (None when it is not
        #: journaled, or for the outputs a resumed sitting starts with); read it only from a subscriber.
        self.current_seq: int | None = None

    # --- life cycle ------------------------------------------------------------------------------

    def recover(self) -> int:
        """Replay the newest unfinished sitting from the journal; returns the records replayed."""
        sittings = self.journal.sittings()
        unlisted = [uid for uid in self.journal.all_sittings() if uid not in sittings]
        if unlisted:  # a sitting's row is written with its first record: a missing one was deleted
            raise EngineError(
                f"the journal holds records of sitting(s) {', '.join(unlisted)} missing from its list of "
                "sittings; refusing to start (chamber journal verify shows the details)"
            )
        if not sittings:
            return 0
        uid = sittings[-1]
        problems = self.journal.verify(uid)
        if problems:
            lines = "\n".join(f"  {p}" for p in problems[:20])
            raise EngineError(f"journal of sitting {uid} fails verification; refusing to resume:\n{lines}")
        sitting = Sitting()
        count = 0
        for rec in self.journal.records(uid):
            try:
                event = decode_input(rec.payload)
            except msgspec.DecodeError as exc:  # written by a newer version, or forged with its hashes
                raise EngineError(f"journal of sitting {uid}: record {rec.seq} cannot be decoded: {exc}") from exc
            sitting.apply(event, rec.at_ms)
            self._last_time = max(self._last_time, rec.at_ms)
            self._last_seq = rec.seq
            count += 1
        self.now()  # a clock behind the journal is offset now, so resumed deadlines fall when they should
        if sitting.phase is Phase.NO_SITTING:
            log.info("last sitting %s is closed (%d records); waiting for a new one", uid, count)
            return count
        self.sitting = sitting
        self.sitting_uid = uid
        self._snapshot = sitting.snapshot()
        log.info("resumed sitting %s at phase %s after %d records", uid, sitting.phase, count)
        return count

    def start(self) -> None:
        self.recover()
        # The adapters start knowing nothing: tell them what the consoles must show now (the mode, and
        # for a resumed sitting its LEDs and microphones), before any input is taken.
        self._fan_out(ev.Tick(), self.sitting.console_outputs())
        self._thread = threading.Thread(target=self._run, name="chamber-engine", daemon=True)
        self._thread.start()
        vote = self.sitting.vote
        if vote is not None and vote.secret and vote.number not in self.sitting.results:
            self.submit(ev.AnnulSecretVote(reason="controller restarted while the secret vote was unfinished"))

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def subscribe(self, fn: Subscriber) -> None:
        """``fn(input, effects)`` runs on the engine thread: it must only hand work on.  It may read the
        sitting (``self.sitting``, just after this input) and ``current_seq`` there, and nowhere else."""
        self._subscribers.append(fn)

    def watch_snapshots(self, fn: Callable[[], None]) -> None:
        """``fn()`` runs on the engine thread each time a new snapshot is published: it must only signal
        (set a ``threading.Event``), the reader then calls ``snapshot()`` on its own thread."""
        self._snapshot_watchers.append(fn)

    def watch_appends(self, fn: Callable[[float, int], None]) -> None:
        """``fn(seconds, records)`` runs on the engine thread after each journal append that succeeded (its
        duration, durable write included): it must only record (the metrics' histogram)."""
        self._append_watchers.append(fn)

    def queue_depth(self) -> int:
        """Inputs submitted and not yet taken by the engine's thread (any thread; approximate)."""
        return self._queue.qsize()

    def time_ms(self) -> int:
        """The engine's clock now (ms), as the next input would be stamped; any thread may read it, it
        moves nothing (an adapter that timestamps what it hears, e.g. the speech recorder, uses it)."""
        return self._time()

    # --- producers ---------------------------------------------------------------------------------

    def submit(self, event: ev.Input) -> Future[Outcome]:
        fut: Future[Outcome] = Future()
        self._queue.put((event, fut))
        return fut

    def execute(self, event: ev.Input, timeout: float = 10.0) -> Outcome:
        return self.submit(event).result(timeout)

    def snapshot(self) -> Snapshot:
        """The latest published immutable snapshot (at most SNAPSHOT_EVERY_MS old while busy)."""
        return self._snapshot

    # --- the owner thread --------------------------------------------------------------------------

    def _time(self) -> int:
        return self._clock() + self._offset

    def now(self) -> int:
        """The time of the next input: never before the last one journaled.  A clock found behind it
        (set back by hand, or the journal written by a faster clock) is offset to carry on from the
        journal's time at the clock's pace; holding time still instead would stop every deadline."""
        t = self._time()
        if t < self._last_time:
            self._offset += self._last_time - t
            t = self._last_time
        self._last_time = t
        return t

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                self._publish(force=True)
                return
            if batch:
                try:
                    self.process(batch)
                except Exception as exc:  # a defect outside the core's own guard: answer, log, go on
                    log.exception("engine: processing %d input(s) failed", len(batch))
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(EngineError(f"internal error: {type(exc).__name__}: {exc}"))
            self._publish(force=False)

    def _next_batch(self) -> list[tuple[ev.Input, Future[Outcome]]] | None:
        first = self._held
        self._held = None
        if first is None:
            due = max(self.sitting.next_deadline(), self._deadlines_after)
            wait = (due - self._time()) / 1000
            try:
                # dirty: wake when the cap allows the trailing snapshot (not a whole cap after this batch)
                hold = (self._snapshot_at + SNAPSHOT_EVERY_MS - self._time()) / 1000 if self._dirty else 1.0
                first = self._queue.get(timeout=max(min(wait, hold), 0.0))
            except queue.Empty:
                if due <= self._time():
                    return [(ev.Tick(), Future())]
                return []
            if first is None:
                return None
        batch = [first]
        if not isinstance(first[0], SEAT_EVENTS):
            return batch
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None or not isinstance(item[0], SEAT_EVENTS):
                self._held = item if item is not None else None
                if item is None:
                    self._queue.put(None)
                break
            batch.append(item)
        return batch

    def process(self, batch: list[tuple[ev.Input, Future[Outcome]]]) -> None:
        """Journal then apply one batch (runs on the owner thread; tests may call it directly)."""
        now = self.now()
        try:
            self._settle_doubt()
        except Exception as exc:  # the store is still unreachable, or holds what we did not write
            self._store_failed(exc, batch)
            return
        sitting = self.sitting
        opening = sitting.phase is Phase.NO_SITTING and isinstance(batch[0][0], ev.OpenSitting)
        if opening:
            self.sitting_uid = f"{time.strftime('%Y%m%d', time.gmtime(now / 1000))}-{uuid.uuid4().hex[:12]}"
            self._last_seq = 0
        journaled = sitting.phase is not Phase.NO_SITTING or self.sitting_uid is not None
        seqs: list[int | None] = [None] * len(batch)
        # What is journaled is also what the subscribers see: a secret choice's key goes to neither.
        forms = [sitting.journal_form(item[0]) for item in batch]
        if journaled and self.sitting_uid is not None:
            uid = self.sitting_uid
            started = time.perf_counter()
            try:
                records = self.journal.append(
                    uid, [(now, type(f).__name__, encode_input(f)) for f in forms], after_seq=self._last_seq
                )
            except Exception as exc:  # the store is down or full: act on nothing we could not record
                if isinstance(exc, CommitInDoubt):  # maybe stored after all: look before the next append
                    self._doubt.append(_Unsure(uid, [item[0] for item in batch], forms, now))
                    del self._doubt[:-MAX_UNSURE]
                if opening:  # the sitting did not open: what comes next must not go into its journal
                    self.sitting_uid = None
                self._store_failed(exc, batch)
                return
            took = time.perf_counter() - started
            for watch in self._append_watchers:
                try:
                    watch(took, len(records))
                except Exception:  # a broken watcher must not undo an append that succeeded
                    log.exception("append watcher %r failed", watch)
            self._doubt.clear()
            self._store_ok()
            seqs = [r.seq for r in records]
            self._last_seq = records[-1].seq
        self._apply(batch, seqs, forms, now, opening)

    def _apply(
        self,
        batch: list[tuple[ev.Input, Future[Outcome]]],
        seqs: list[int | None],
        forms: list[ev.Input],
        now: int,
        opening: bool,
    ) -> None:
        """Apply a journaled (or unjournaled: no sitting) batch and hand its effects on."""
        sitting = self.sitting
        sealed: list[ev.Input] = []
        for (event, fut), seq, form in zip(batch, seqs, forms, strict=True):
            effects = sitting.apply(event, now)
            self._dirty = True
            for effect in effects:
                if type(effect) is SealSecretTally:
                    sealed.append(ev.SecretTallySealed(vote=effect.vote, counts=effect.counts))
                elif type(effect) is Rejected:
                    log.info("rejected %s: %s (%s)", effect.input, effect.reason, effect.detail)
            self.current_seq = seq
            self._fan_out(form, effects)
            self.current_seq = None
            fut.set_result(Outcome(event, effects, seq))
        if opening and sitting.phase is Phase.NO_SITTING:  # refused (a bad title): no sitting opened
            self.sitting_uid = None
        elif sitting.phase is Phase.NO_SITTING and self.sitting_uid is not None and sitting.roster is not None:
            log.info("sitting %s closed", self.sitting_uid)
            self.sitting = Sitting()
            self.sitting_uid = None
            self._last_seq = 0
            self._publish(force=True)
        if any(not isinstance(item[0], (*SEAT_EVENTS, ev.Tick)) for item in batch):
            self._publish(force=True)  # commands show at once; presses at the capped rate
        for seal in sealed:
            self.process([(seal, Future())])

    # --- store failures ------------------------------------------------------------------------------

    def _store_failed(self, exc: Exception, batch: list[tuple[ev.Input, Future[Outcome]]]) -> None:
        """Answer the batch with the error; the first failure of an outage is an alert and an error in the
        log, the repeats (every poll retakes the latched presses) only counted."""
        self.journal_failures += 1
        self._outage_failures += 1
        self._deadlines_after = self._time() + STORE_RETRY_MS
        why = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        if self._outage_failures == 1:
            log.error("journal append failed, %d input(s) not applied or acknowledged: %s", len(batch), why)
            detail = f"the journal cannot be written: {why}; presses are not acknowledged until it can"
            self._fan_out(ev.Tick(), (Alert(kind="store_failed", detail=detail),))
        else:
            log.debug("journal append failed again (%d in this outage): %s", self._outage_failures, why)
        for _, fut in batch:
            if not fut.done():
                fut.set_exception(EngineError(f"journal write failed: {why}"))

    def _store_ok(self) -> None:
        if not self._outage_failures:
            return
        failed, self._outage_failures = self._outage_failures, 0
        log.warning("journal writable again after %d failed append(s)", failed)
        detail = f"the journal is written again after {failed} failed attempt(s); latched presses are taken now"
        self._fan_out(ev.Tick(), (Alert(kind="store_restored", detail=detail),))

    def _settle_doubt(self) -> None:
        """After a COMMIT that failed (``CommitInDoubt``) the records may be stored all the same: read what
        the journal holds past the last record applied, and apply the batches found there as they were
        submitted (the original inputs, so a secret choice keeps its key), so that the live sitting and a
        replay of its journal agree.  The Futures of those inputs had failed: their presses are read again
        and journaled as repeats.  Records that are no batch of ours mean another writer: JournalConflict."""
        if not self._doubt:
            return
        uid = self._doubt[0].uid
        found = list(self.journal.records(uid, after_seq=self._last_seq))
        if not found:
            return
        i = 0
        for unsure in list(self._doubt):
            want = [(unsure.now, type(f).__name__, encode_input(f)) for f in unsure.forms]
            got = [(r.at_ms, r.type, r.payload) for r in found[i : i + len(want)]]
            if unsure.uid != uid or got != want:
                continue
            log.warning("journal: %d input(s) whose commit failed were stored after all: applied", len(want))
            opening = self.sitting.phase is Phase.NO_SITTING and isinstance(unsure.events[0], ev.OpenSitting)
            if opening:
                self.sitting_uid = uid
            seqs: list[int | None] = [r.seq for r in found[i : i + len(want)]]
            self._last_seq = found[i + len(want) - 1].seq
            i += len(want)
            self._apply([(e, Future()) for e in unsure.events], seqs, unsure.forms, unsure.now, opening)
            if i == len(found):
                self._doubt.clear()
                return
        raise JournalConflict(
            f"sitting {uid}: the journal holds records from seq {found[i].seq} that this engine did not "
            "write; restart the controller to resume from the journal"
        )

    def _fan_out(self, event: ev.Input, effects: Iterable[Effect]) -> None:
        effects = tuple(effects)
        for fn in self._subscribers:
            try:
                fn(event, effects)
            except Exception:  # a broken adapter must not stop the chamber
                log.exception("effect subscriber %r failed", fn)

    def _publish(self, *, force: bool) -> None:
        if not self._dirty:
            return
        now = self._time()
        # A batch of presses after a quiet spell is published at once (leading edge); within the cap the
        # snapshot waits for the next batch or for _next_batch's timeout at the cap's end (trailing edge).
        if force or now - self._snapshot_at >= SNAPSHOT_EVERY_MS:
            self._snapshot = self.sitting.snapshot()
            self._snapshot_at = now
            self._dirty = False
            for fn in self._snapshot_watchers:
                try:
                    fn()
                except Exception:  # a broken watcher must not stop the chamber
                    log.exception("snapshot watcher %r failed", fn)

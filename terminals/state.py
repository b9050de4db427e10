"""The state of one RS-485 line and the transaction primitives its protocol code is written with.

Nothing here does I/O, sleeps, reads a clock or touches a thread: time comes in as ``now`` (set by
``terminals.machine.LineMachine`` each time it is driven) and bytes go out as *operations* that a
generator yields.  A transaction sequence is written as a generator::

    card = yield from state.exchange(link, rtu.read_registers(...), rtu.parse_registers)

``exchange`` yields ``(TX, frame, expected_length)`` and is sent back the reply bytes (``b""`` when
nothing came before the deadline); the machine does the waiting.  The other operations are
``(BROADCAST, frame, 0)`` (no reply; the consoles' turnaround follows) and ``(IDLE, until, 0)`` (nothing
to do before ``until``, or until the engine posts something).  The modules that make the protocol
(``terminals.native``, ``generic``, ``outputs``, ``readback``) take a ``LineState``, so none of them
imports the machine that drives them, and none of them can block.

Engine inputs leave through ``outbox``: ``(event, group)`` pairs that the I/O loop submits to the engine.
Key events of one console read together share an ``AckGroup``; the loop completes the group (every
Future settled) and posts the verdict back as :meth:`LineState.ack` or :meth:`LineState.retake`.
Engine-side inputs (effects, acks, retakes) are queued in ``inbox`` and applied at the start of the
next turn, between transactions, never while a console's reply is half decoded.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chamber.core import effects as fx
from chamber.core import events as ev
from terminals import rtu, texts
from terminals.links import ConsoleLink
from terminals.registers import seq_after
from terminals.rtu import t35_seconds

log = logging.getLogger("terminals.line")

#: operation kinds yielded by the protocol's generators
TX = 0  # (TX, frame, expected reply length): send and collect the reply
BROADCAST = 1  # (BROADCAST, frame, 0): send to unit 0, no reply
IDLE = 2  # (IDLE, until, 0): nothing to send before ``until`` (an inbox item ends it early)

Op = tuple[int, Any, int]
T = TypeVar("T")
#: a transaction sequence: yields operations, is sent replies, returns its result
Exchange = Generator[Op, bytes, T]

CYCLES_KEPT = 100_000
#: upper bounds (seconds) of the cycle-time buckets: a few consoles at 921 600 baud take milliseconds a
#: round, 128 at 19 200 baud or a line of dead consoles seconds
CYCLE_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Buckets:
    """A cumulative histogram kept by counting alone (no clock, no I/O): ``counts[i]`` is how many values
    were <= ``bounds[i]``, the last count every value (+Inf), as the Prometheus exposition wants them.
    One thread observes; another may read ``snapshot`` meanwhile (each list copied in one step)."""

    __slots__ = ("_counts", "bounds", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative: one increment per value
        self.total = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def snapshot(self) -> tuple[list[int], float]:
        """(cumulative counts, one per bound and one for +Inf; the sum of the values)."""
        counts, total = list(self._counts), self.total
        out, running = [], 0
        for n in counts:
            running += n
            out.append(running)
        return out, total


@dataclass
class LineStats:
    polls: int = 0
    unchanged: int = 0  # replies identical to the previous one: not decoded
    writes: int = 0
    broadcasts: int = 0
    cycles: int = 0  # full rounds of polls so far
    # the duration of each of the last CYCLES_KEPT rounds (older ones drop out)
    cycle_s: deque[float] = field(default_factory=lambda: deque(maxlen=CYCLES_KEPT))
    cycle_hist: Buckets = field(default_factory=lambda: Buckets(CYCLE_BUCKETS_S))  # every round since start
    garbage_bytes: int = 0  # bytes that arrived when no reply was expected (noise, late replies)
    reopens: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def cycles_since(self, mark: int) -> list[float]:
        """The durations of the rounds completed after the ``mark``-th (as many as are still kept)."""
        n = min(self.cycles - mark, len(self.cycle_s))
        return list(self.cycle_s)[-n:] if n > 0 else []


class AckGroup:
    """Key events of one console handed to the engine together: ``seq`` (the newest of them) may be
    acknowledged once every one is journaled.  ``futures`` is filled by whoever submits the events."""

    __slots__ = ("boot", "epoch", "futures", "link", "seq", "size")

    def __init__(self, link: ConsoleLink, seq: int, boot: int | None, size: int) -> None:
        self.link = link
        self.seq = seq
        self.boot = boot
        self.epoch = link.epoch  # the reading these events came from (see ``LineState.apply_retake``)
        self.size = size
        self.futures: list[Future[Any]] = []


#: ``Reread.say`` bits: what the line itself tells of a console, not a sensor of it: whether the console
#: answers (``SeatWentOffline``/``SeatCameOnline``), that it restarted, and whether its separate
#: microphone unit answers (``MicUnitChanged``).  The machine says them again as they stand when the
#: console is next polled or probed (``LineMachine._say_again``).
SAY_REACH = 1
SAY_RESTART = 2
SAY_MIC = 4


class Reread:
    """A change handed to the engine that no console keeps for us: if it is not journaled (the store is
    down or full), the loop posts ``("reread", (link, boot, mask, say))`` and the machine reports it
    again, so it is not lost (a key press is latched at the console until its ACK; a card, a sensor or
    the console's own silence is not).  ``mask``: the STATUS (native) or input (generic) bit of the
    sensor to read again; None: the card.  ``say`` (``SAY_*`` bits; then ``mask`` is unused): what the
    line saw of the console, said again at its next poll or probe.  Without this, a console that came
    back while the store was down stayed offline in the sitting, and its deputy's presses were refused
    as ``seat_offline``."""

    __slots__ = ("boot", "link", "mask", "say")

    def __init__(self, link: ConsoleLink, mask: int | None, say: int = 0) -> None:
        self.link = link
        self.boot = link.boot
        self.mask = mask
        self.say = say


class LineState:
    """What one line knows and queues; the protocol modules read and change it, the machine drives it."""

    def __init__(
        self,
        line_id: str,
        links: Sequence[ConsoleLink],
        *,
        baud: int,
        timeout_s: float = 0.05,
        retries: int = 2,
        text_show_s: float = texts.TEXT_SHOW_S,
    ) -> None:
        self.line_id = line_id
        self.links = list(links)
        self.by_seat = {link.seat: link for link in self.links}
        # Broadcasts only on a line of native consoles: off-the-shelf modules on a mixed line would hear
        # a unit-0 write to holding registers too, and many keep their own settings there.
        self.broadcasts = all(not link.generic for link in self.links)
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.t35 = t35_seconds(baud)
        self.char_s = 11 / baud
        self.stats = LineStats()
        self.now = 0.0  # the time the machine was last driven at
        self.next_tx = 0.0  # no frame may start before this (t3.5 silence, turnaround, back-off)
        self.outbox: list[tuple[ev.Input, AckGroup | Reread | None]] = []  # engine inputs for the loop to submit
        self.inbox: deque[tuple[str, Any]] = deque()  # engine-side inputs, applied between turns
        self.writes: list[ConsoleLink] = []  # links with something to write, in arrival order
        self.broadcast: dict[int, list[int]] = {}  # register -> values, for unit 0
        self.mode_told = False  # a chamber mode went out since start (the first always does)
        self.answered = False  # the last failed exchange got a well-formed refusal (see exchange)
        self.texts = texts.SeatTexts(text_show_s)  # refusals shown on the console's text line, then cleared

    # --- engine side ------------------------------------------------------------------------------------

    def post_effect(self, effect: fx.Effect) -> None:
        self.inbox.append(("effect", effect))

    def ack(self, link: ConsoleLink, seq: int, boot: int | None, epoch: int) -> None:
        """The events of ``link`` up to ``seq``, numbered under ``boot`` and read in ``epoch``, are
        journaled: acknowledge them."""
        self.inbox.append(("ack", (link, seq, boot, epoch)))

    def retake(self, link: ConsoleLink, boot: int | None, epoch: int) -> None:
        """The engine could not journal events of ``link`` read in ``epoch``: read them again."""
        self.inbox.append(("retake", (link, boot, epoch)))

    def submit(self, event: ev.Input, group: AckGroup | Reread | None = None) -> None:
        self.outbox.append((event, group))

    def reread(self, link: ConsoleLink, boot: int | None, mask: int | None, say: int = 0) -> None:
        """A change at ``link`` was not journaled: report it again (see :class:`Reread`)."""
        self.inbox.append(("reread", (link, boot, mask, say)))

    def apply_reread(self, link: ConsoleLink, boot: int | None, mask: int | None, say: int = 0) -> None:
        if say:  # what the line saw: true whatever the console's numbering
            link.unsaid |= say
            return
        if boot != link.boot:
            return  # restarted since: everything is read afresh anyway
        if mask is None:
            link.card_seq = None  # the next decode reads the card and reports it, in or out
        elif link.status is not None:
            link.status ^= mask  # the next decode sees that sensor change and reports its state
        link.last_reply = None

    def apply_ack(self, link: ConsoleLink, seq: int, boot: int | None, epoch: int) -> None:
        # Not across a restart: the old numbers would free the new numbering's events.  Not across a
        # retake either: this ACK would free the earlier events the engine could not journal, which the
        # re-read is taking to it again (and a second failure would lose them).
        if boot == link.boot and epoch == link.epoch and link.taken is not None and not seq_after(seq, link.taken):
            link.ack_due = link.acked = seq
            self.want_write(link)

    def apply_retake(self, link: ConsoleLink, boot: int | None, epoch: int) -> None:
        if boot == link.boot and epoch == link.epoch:
            link.epoch += 1  # verdicts still on their way about the old reading are dropped
            link.taken = link.acked = None
            link.last_reply = None

    # --- protocol helpers ---------------------------------------------------------------------------------

    def want_write(self, link: ConsoleLink) -> None:
        if link not in self.writes:
            self.writes.append(link)

    def fault(self, link: ConsoleLink | None, kind: str) -> None:
        """Count a failed transaction.  The line is then silent for t3.5 before the next frame, as after
        any reply or timeout (the machine sets ``next_tx`` when it hands the reply over); bytes arriving
        meanwhile are garbage, dropped and counted."""
        self.stats.errors[kind] += 1
        if link is not None:
            link.errors[kind] += 1

    def exchange(
        self,
        link: ConsoleLink | None,
        frame: bytes,
        parse: Callable[[bytes, bytes], T],
        attempts: int | None = None,
    ) -> Exchange[T | None]:
        """One request with retries (``attempts`` in all; default: the line's retries + 1); the parsed
        reply, or None if every attempt failed.  Faults count against ``link`` and the line (None: the
        line only).  After a failure, :attr:`answered` says whether the device gave any sign of life (a
        Modbus exception or a wrong echo) rather than only silence and garbled frames."""
        op = (TX, frame, rtu.expected_length(frame))
        self.answered = False
        for attempt in range(self.retries + 1 if attempts is None else attempts):
            if attempt:
                self.next_tx += self.t35 * attempt  # back off a little more each time
            reply = yield op
            if not reply:
                self.fault(link, "timeout")
                continue
            try:
                return parse(frame, reply)
            except rtu.FrameError as exc:
                self.fault(link, exc.kind)
                if isinstance(exc, (rtu.ExceptionResponse, rtu.EchoMismatch)):
                    self.answered = True  # the device is there: it refused, or echoed something else
        return None


def check_write(request: bytes, reply: bytes) -> bool:
    rtu.check_write(request, reply)
    return True

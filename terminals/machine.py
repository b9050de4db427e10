"""The protocol of one RS-485 line as a sans-IO state machine: time and bytes in, bytes and events out.

Like h11 for HTTP, ``LineMachine`` never reads a clock, sleeps, or touches a port or a thread.  Whoever
drives it (``terminals.ioloop.IOLoop`` in the daemon, a fake clock in the tests) does three things:

* ``frame = machine.step(now)``: run the protocol as far as it can go at ``now``; a frame returned
  must be written to the line at once (one at most per call);
* ``machine.feed(data, now)``: bytes read from the line.  While a reply is expected they collect into
  it (complete once the length its header announces is in); at any other time they are garbage (a
  late reply, noise after a fault) and are counted and dropped;
* call ``step`` again when ``machine.deadline`` has come (or bytes arrived, or the engine posted).

Engine inputs leave through ``machine.outbox`` (``terminals.state``); engine effects, ACKs and
retakes come in as ``post_effect`` / ``ack`` / ``retake`` and are applied at the start of the next turn.

How a turn runs
---------------
The protocol is one generator, ``_turns``, written as the blocking loop it replaces: each yield is a
transaction (``(TX, frame, expected)``, sent the reply), a broadcast or an idle wait, and ``step``
turns the yields into deadlines.  Each turn

1. applies what the engine posted (effects become wanted outputs and queued writes via
   ``terminals.outputs``; acknowledgements of journaled events; retakes);
2. sends a pending broadcast (chamber mode, text) to unit 0 (only on a line of native consoles);
3. serves one console with pending writes (ACK + outputs in one write when it can), so LED feedback
   is not held back a whole cycle by the polls;
4. when due, reads back the outputs of one device that has no restart flag (``terminals.readback``);
5. when due, clears the text lines of refusals whose time is up (``terminals.texts``);
6. polls the next console in turn with its precomputed request.  A reply byte-identical to the
   previous one means nothing changed and is not decoded; a changed one goes to
   ``terminals.native.decode`` or ``terminals.generic.decode`` (their follow-up reads are
   ``yield from``).

Timing kept per line: a frame starts no earlier than t3.5 after the last reply (or its deadline), a
broadcast is followed by its length on the wire + t3.5 + the consoles' turnaround, a failed
transaction by t3.5 of silence, and each retry by a further t3.5 x attempt of back-off.  A reply is
awaited for its wire time + the line's timeout.

A console that does not answer a poll or a write after the configured retries is reported offline
(``SeatWentOffline``) and then only probed with back-off (0.5 to 4 s, one try each), so a dead console
costs the others one timeout per probe; when it answers it is reported online, re-read and rewritten.
A round with no console to ask yields an idle wait until the first probe (or read-back, or text to
clear) is due, which an engine input ends early: a line whose consoles are all offline does not spin.

The transport's fate is told too: ``opened(now)``, ``open_failed(now, why)`` and ``line_down(now, why)``
report every online console offline when the line is lost and answer when to try to open it again
(0.5 s doubling to 5 s; a line that fails within ``REOPEN_SETTLED_S`` of opening was not really back).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Sequence
from typing import Any

from chamber.core import events as ev
from terminals import generic, native, outputs, readback, rtu, texts
from terminals.links import ConsoleLink
from terminals.registers import (
    BROADCAST_TURNAROUND_S,
    BROADCAST_UNIT,
    HR_ACK,
    HR_LEDS,
    HR_MIC,
    HR_MODE,
    HR_TEXT,
    encode_text,
)
from terminals.state import (
    BROADCAST,
    IDLE,
    SAY_MIC,
    SAY_REACH,
    SAY_RESTART,
    TX,
    Exchange,
    LineState,
    LineStats,
    Op,
    Reread,
    check_write,
)

__all__ = [
    "PROBE_MAX_S",
    "PROBE_MIN_S",
    "REOPEN_MAX_S",
    "REOPEN_MIN_S",
    "REOPEN_SETTLED_S",
    "LineMachine",
    "LineStats",
]

log = logging.getLogger("terminals.line")

PROBE_MIN_S = 0.5
PROBE_MAX_S = 4.0
REOPEN_MIN_S = 0.5
REOPEN_MAX_S = 5.0
#: a line that fails within this long after opening was not really back: keep backing off
REOPEN_SETTLED_S = 10.0

# what the machine is doing between two calls of ``step``
_DOWN = 0  # the transport is closed: nothing runs
_READY = 1  # an operation is pending (``_op``): sent when ``next_tx`` comes
_AWAIT = 2  # a request went out: collecting its reply until ``_reply_by``
_IDLE = 3  # nothing to do until ``deadline`` or an engine input


class LineMachine(LineState):
    def __init__(
        self,
        line_id: str,
        links: Sequence[ConsoleLink],
        *,
        baud: int,
        timeout_s: float = 0.05,
        retries: int = 2,
        text_show_s: float = texts.TEXT_SHOW_S,
        now: float = 0.0,
    ) -> None:
        super().__init__(line_id, links, baud=baud, timeout_s=timeout_s, retries=retries, text_show_s=text_show_s)
        self.now = now
        # outputs of devices without a restart flag, read back on a slow round (terminals.readback)
        self.readback = readback.Readback(self, self.links, now)
        #: when ``step`` must be called again though no byte arrives (inf: only bytes or posts matter)
        self.deadline = math.inf
        self._state = _DOWN
        self._gen: Generator[Op, Any, None] | None = None
        self._op: Op = (IDLE, 0.0, 0)
        self._request = b""
        self._expect = 0
        self._rx = b""
        self._reply_by = 0.0
        self._turn = 0
        self._cycle_start = now
        self._opened_at = -math.inf
        self._reopen_delay = REOPEN_MIN_S

    # --- engine side ------------------------------------------------------------------------------------

    def _posted(self) -> None:
        if self._state == _IDLE:
            self.deadline = self.now  # end the idle wait: the turn applies it
        elif self._state == _DOWN:
            self._drain_inbox()  # no turn runs: keep the wanted outputs current for when it is back

    def post_effect(self, effect: Any) -> None:
        super().post_effect(effect)
        self._posted()

    def ack(self, link: ConsoleLink, seq: int, boot: int | None, epoch: int) -> None:
        super().ack(link, seq, boot, epoch)
        self._posted()

    def retake(self, link: ConsoleLink, boot: int | None, epoch: int) -> None:
        super().retake(link, boot, epoch)
        self._posted()

    def reread(self, link: ConsoleLink, boot: int | None, mask: int | None, say: int = 0) -> None:
        super().reread(link, boot, mask, say)
        self._posted()

    def _drain_inbox(self) -> None:
        inbox = self.inbox
        while inbox:
            kind, item = inbox.popleft()
            if kind == "effect":
                outputs.apply(self, item, self.now)
            elif kind == "ack":
                self.apply_ack(*item)
            elif kind == "retake":  # the engine could not journal: read the events again
                self.apply_retake(*item)
            elif kind == "reread":  # a change the console does not keep was not journaled: report it again
                self.apply_reread(*item)

    # --- the transport's side -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._state != _DOWN

    def opened(self, now: float, name: str = "") -> None:
        """The transport is open: start the turns (the first frame goes out at once)."""
        if self.stats.reopens or self.stats.errors["open"]:
            log.warning("line %s: %s open again", self.line_id, name)
        else:
            log.info("line %s: %s open, %d consoles", self.line_id, name, len(self.links))
        self.stats.reopens += 1
        self.now = now
        self._opened_at = now
        self.next_tx = now
        self._rx = b""
        self._gen = self._turns()
        self._state = _READY
        self._op = next(self._gen)
        self.deadline = now

    def open_failed(self, now: float, why: str) -> float:
        """The transport cannot be opened; when to try again."""
        self.now = now
        self.stats.errors["open"] += 1
        if self.stats.errors["open"] == 1:
            log.error("line %s: %s (retrying every %.1f-%.0f s)", self.line_id, why, REOPEN_MIN_S, REOPEN_MAX_S)
        for link in self.links:  # never reached (the adapter is missing at start): the engine must know
            if link.online:
                self._went_offline(link, "port cannot be opened")
        return now + self._back_off()

    def line_down(self, now: float, why: str) -> float:
        """The open transport failed (closed by the driver); when to try to open it again."""
        log.error("line %s: %s; reopening", self.line_id, why)
        self.now = now
        self.stats.errors["line_down"] += 1
        self._stop_turns()
        # Every console on the line is unreachable now; the engine must know.  They come back through
        # the ordinary probe once the port is open again.
        for link in self.links:
            if link.online:
                self._went_offline(link, "line down")
        if now - self._opened_at < REOPEN_SETTLED_S:
            # it failed soon after opening (a gateway that accepts and drops, a flapping adapter):
            # back off before the next try instead of reconnecting in a tight loop
            return now + self._back_off()
        self._reopen_delay = REOPEN_MIN_S
        return now

    def _back_off(self) -> float:
        delay = self._reopen_delay
        self._reopen_delay = min(delay * 2, REOPEN_MAX_S)
        return delay

    def _stop_turns(self) -> None:
        if self._gen is not None:
            self._gen.close()  # a transaction sequence cut short: nothing in it was half taken
        self._gen = None
        self._state = _DOWN
        self.deadline = math.inf
        self._rx = b""
        self._drain_inbox()

    # --- driving ------------------------------------------------------------------------------------------

    def feed(self, data: bytes, now: float) -> None:
        """Bytes read from the line at ``now``."""
        if self._state != _AWAIT:
            self.stats.garbage_bytes += len(data)  # nothing asked for them: noise, a reply too late
            return
        rx = self._rx + data
        self._rx = rx
        # no Modbus reply is shorter than 5 bytes; an exception reply is exactly 5
        if len(rx) >= 5 and len(rx) >= (5 if rx[1] & 0x80 else self._expect):
            self.deadline = now  # complete: decode it at the next step

    def step(self, now: float) -> bytes | None:
        """Run as far as possible at ``now``; the frame to write at once, or None (then wait for
        ``deadline``, a byte, or a post)."""
        self.now = now
        state = self._state
        if state == _AWAIT:
            rx = self._rx
            if now < self._reply_by and not (len(rx) >= 5 and len(rx) >= (5 if rx[1] & 0x80 else self._expect)):
                self.deadline = self._reply_by
                return None
            self._rx = b""
            self.next_tx = now + self.t35
            self._state = _READY
            self._resume(rx)
        elif state == _IDLE:
            if now < self.deadline and not self.inbox:
                return None
            self._state = _READY
            self._resume(None)
        elif state == _DOWN:
            return None
        return self._advance(now)

    def _resume(self, value: Any) -> None:
        assert self._gen is not None
        self._op = self._gen.send(value)

    def _advance(self, now: float) -> bytes | None:
        idles = 0
        while True:
            kind, what, expect = self._op
            if kind == TX:
                if now < self.next_tx:
                    self.deadline = self.next_tx
                    return None
                self._state = _AWAIT
                self._request = what
                self._expect = expect
                self._reply_by = self.deadline = now + (len(what) + expect) * self.char_s + self.timeout_s
                frame: bytes = what
                return frame
            if kind == BROADCAST:
                if now < self.next_tx:
                    self.deadline = self.next_tx
                    return None
                # no reply to a broadcast; the consoles need their turnaround before the next frame
                self.next_tx = now + len(what) * self.char_s + self.t35 + BROADCAST_TURNAROUND_S
                frame = what
                self._resume(None)
                self.deadline = now  # the next operation is decided: step again (it waits for next_tx)
                return frame
            # IDLE
            if now >= what or self.inbox:
                idles += 1
                if idles > 1000:  # a defect, never the protocol: fail loudly rather than hang the loop
                    raise RuntimeError(f"line {self.line_id}: the protocol spins without waiting")
                self._resume(None)
                continue
            self._state = _IDLE
            self.deadline = what
            return None

    # --- the turns ----------------------------------------------------------------------------------------

    def _turns(self) -> Generator[Op, Any, None]:
        links = self.links
        count = len(links)
        poll_ops = [(TX, link.poll, link.poll_len) for link in links]
        idle_turns = 0
        readback_ = self.readback
        texts_ = self.texts
        self._cycle_start = self.now
        if not count:  # a line without consoles (a config being built up): only the engine's posts
            while True:
                self._drain_inbox()
                yield (IDLE, math.inf, 0)
        while True:
            if self.inbox:
                self._drain_inbox()
            if self.broadcast:
                yield from self._send_broadcasts()
            if self.writes:
                yield from self._serve_writes(self.writes.pop(0))
            if readback_.due <= self.now:
                yield from readback_.step()
            if texts_.due <= self.now:
                outputs.clear_texts(self, self.now)
            turn = self._turn
            link = links[turn]
            op = poll_ops[turn]
            turn += 1
            if turn == count:
                turn = 0
                self.record_cycle(self.now - self._cycle_start)
                self._cycle_start = self.now
            self._turn = turn
            if link.online or self.now >= link.next_probe:
                if link.unsaid:  # at a poll or a probe: as often as the console is asked, no more
                    self._say_again(link)
                yield from self._poll(link, op)
                idle_turns = 0
                if link.write_failed and link.online:
                    link.write_failed = False
                    self.want_write(link)
            else:
                idle_turns += 1
                if idle_turns >= count and not self.writes and not self.broadcast:
                    # a whole round with nothing to ask: wait for the first thing due, not spin
                    until = min(min(lk.next_probe for lk in links), readback_.due, texts_.due)
                    yield (IDLE, until, 0)
                    idle_turns = 0

    def record_cycle(self, seconds: float) -> None:
        st = self.stats
        st.cycles += 1
        if st.cycles == 1:
            answering = sum(1 for link in self.links if link.online)
            log.info(
                "line %s: %d of %d consoles answering, first cycle %.0f ms",
                self.line_id,
                answering,
                len(self.links),
                seconds * 1000,
            )
        st.cycle_s.append(seconds)
        st.cycle_hist.observe(seconds)

    def _poll(self, link: ConsoleLink, op: Op) -> Exchange[None]:
        """Poll one console; a changed reply is decoded by its profile."""
        self.stats.polls += 1
        attempts = self.retries + 1 if link.online else 1  # probing a dead console: one try
        frame = link.poll
        for attempt in range(attempts):
            if attempt:
                self.next_tx += self.t35 * attempt  # back off a little more each time
            reply = yield op
            if reply == link.last_reply:
                self.stats.unchanged += 1
                return  # byte-identical to a reply already checked and decoded: nothing changed
            if not reply:
                self.fault(link, "timeout")
                continue
            try:
                if link.generic:
                    bits = rtu.parse_bits(frame, reply)
                else:
                    regs = rtu.parse_registers(frame, reply)
            except rtu.FrameError as exc:
                self.fault(link, exc.kind)
                continue
            if not link.online:
                self._came_online(link)
            if link.generic:
                assert isinstance(link, generic.GenericLink)
                generic.decode(self, link, sum(1 << i for i, on in enumerate(bits) if on))
                link.last_reply = reply
            elif (yield from native.decode(self, link, regs)):
                link.last_reply = reply
            return
        self._no_answer(link, attempts)

    def _no_answer(self, link: ConsoleLink, attempts: int) -> None:
        """Every attempt of a poll failed: report the console offline, or probe it later."""
        if link.online:
            self._went_offline(link, f"no valid reply after {attempts} attempts")
        else:
            link.probe_interval = min(max(link.probe_interval * 2, PROBE_MIN_S), PROBE_MAX_S)
            link.next_probe = self.now + link.probe_interval

    def _went_offline(self, link: ConsoleLink, why: str) -> None:
        log.warning("line %s: seat %d (unit %d) offline: %s", self.line_id, link.seat, link.unit, why)
        link.online = False
        link.forget()
        link.probe_interval = PROBE_MIN_S
        link.next_probe = self.now + PROBE_MIN_S
        self.stats.errors["offline"] += 1
        self.submit(ev.SeatWentOffline(seat=link.seat), Reread(link, None, SAY_REACH))

    def _came_online(self, link: ConsoleLink) -> None:
        log.warning("line %s: seat %d (unit %d) back online", self.line_id, link.seat, link.unit)
        link.online = True
        link.forget()
        # Only unreachable, as far as we know: the console keeps its event numbering (a restart shows in
        # STATUS.RESTARTED, and terminals.native reports that on its own).
        self.submit(ev.SeatCameOnline(seat=link.seat, restarted=False), Reread(link, None, SAY_REACH))
        self.want_write(link)

    def _say_again(self, link: ConsoleLink) -> None:
        """Report again what the engine could not journal of ``link`` (``link.unsaid``: the ``SAY_*``
        bits of ``Reread.say``), as it stands now: a console that went offline and came back meanwhile
        is reported online; the engine takes a report of the state a seat is in already without a
        second alert."""
        unsaid, link.unsaid = link.unsaid, 0
        if unsaid & (SAY_REACH | SAY_RESTART):
            if link.online:
                restarted = bool(unsaid & SAY_RESTART)
                self.submit(
                    ev.SeatCameOnline(seat=link.seat, restarted=restarted),
                    Reread(link, None, SAY_RESTART if restarted else SAY_REACH),
                )
            else:
                self.submit(ev.SeatWentOffline(seat=link.seat), Reread(link, None, SAY_REACH))
        if unsaid & SAY_MIC and link.mic_unit is not None:
            self.submit(ev.MicUnitChanged(seat=link.seat, online=link.mic_online), Reread(link, None, SAY_MIC))

    # --- writes -------------------------------------------------------------------------------------------

    def _send_broadcasts(self) -> Exchange[None]:
        for register, values in sorted(self.broadcast.items()):
            if len(values) == 1:
                frame = rtu.write_register(BROADCAST_UNIT, register, values[0])
            else:
                frame = rtu.write_registers(BROADCAST_UNIT, register, values)
            yield (BROADCAST, frame, 0)
            self.stats.broadcasts += 1
            if register == HR_MODE:
                for link in self.links:
                    link.mode_broadcast(values[0])
                    if link.dirty:  # a choice taken since the mode was set: the broadcast just cleared it
                        self.want_write(link)
        self.broadcast.clear()

    def _serve_writes(self, link: ConsoleLink) -> Exchange[None]:
        if link.generic:
            assert isinstance(link, generic.GenericLink)
            if not (yield from generic.serve_writes(self, link)):
                yield from self._unwritten(link)
            return
        if not link.online:
            return  # rewritten in full when it comes back
        wanted = link.outputs()
        ack = link.ack_due
        ok: Any = True
        if ack is not None:
            # ACK_BOOT in the same frame: a console that restarted since the poll these events came
            # from (its new numbering may reuse the number) ignores the ACK instead of freeing new events
            head = [ack] if link.boot is None else [link.boot, ack]
            tail = [*wanted] if link.written != wanted else []
            frame = rtu.write_registers(link.unit, HR_ACK - len(head) + 1, [*head, *tail])
            ok = yield from self.exchange(link, frame, check_write)
        elif link.written != wanted:
            ok = yield from self._write_outputs(link, wanted)
        if ok is None:
            yield from self._unwritten(link)
            return
        self.stats.writes += 1
        if ack is not None and link.ack_due == ack:
            link.ack_due = None
        link.written = wanted
        if link.text is not None:
            text = link.text
            frame = rtu.write_registers(link.unit, HR_TEXT, encode_text(text))
            if (yield from self.exchange(link, frame, check_write)) is None:
                yield from self._unwritten(link)
                return
            if link.text == text:
                link.text = None
        if link.mic_unit is not None and link.mic_online and link.mic_written != link.mic:
            mic = link.mic
            if (yield from self.exchange(None, rtu.write_register(link.mic_unit, HR_MIC, mic), check_write)) is None:
                readback.mic_unit_lost(self, link, "a write of MIC failed")  # the read-back round revives it
                return
            link.mic_written = mic

    def _unwritten(self, link: ConsoleLink) -> Exchange[None]:
        """A write to ``link`` failed every attempt.

        With no sign of life (only silence and garbled replies) the console is polled at once: dead, it
        is reported offline now (then probed with back-off, re-read and rewritten in full when it answers
        again), not when its turn comes round; a dead console with an ACK due was flagged 2.5 s after it
        died that way on a 22-console line.  Alive (it answers polls, or refused the write with a Modbus
        exception or a wrong echo), the write is tried again after its next poll in turn: retried at
        every turn, a console deaf to writes would cost the whole line its timeouts each turn."""
        if not self.answered:
            yield from self._poll(link, (TX, link.poll, link.poll_len))
        if link.online:
            link.write_failed = True

    def _write_outputs(self, link: ConsoleLink, wanted: tuple[int, int, int, int]) -> Exchange[Any]:
        written = link.written
        if written is not None:
            changed = [i for i in range(4) if written[i] != wanted[i]]
            if len(changed) == 1:
                i = changed[0]
                frame = rtu.write_register(link.unit, HR_LEDS + i, wanted[i])
                return (yield from self.exchange(link, frame, check_write))
        return (yield from self.exchange(link, rtu.write_registers(link.unit, HR_LEDS, list(wanted)), check_write))

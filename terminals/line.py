"""One loop per RS-485 line: poll every console, turn register changes into events, write effects.

The loop runs in its own thread and owns its transport: one transaction at a
time, as a half-duplex bus demands.  Each turn it

1. takes what other threads posted (effects from the engine, which
   ``terminals.outputs`` turns into wanted outputs and queued writes;
   acknowledgements of journaled events) from its inbox;
2. sends a pending broadcast (chamber mode, text) to unit 0;
3. serves one console with pending writes (ACK + outputs in one write when it
   can), so LED feedback is not held back a whole cycle by the polls;
4. polls the next console in turn with its precomputed request.  A reply
   byte-identical to the previous one means nothing changed and is not decoded.
5. when due, reads back the outputs of one device that has no restart flag
   (a separate microphone unit, a generic module), so a power cut there does
   not leave a microphone or an LED dark (``terminals.readback``);
6. when due, clears a console's text line that said why a press or card was
   refused (``terminals.texts``: the refusal is written at once, cleared later
   by ``terminals.outputs.clear_texts``).

Events (key presses with their console sequence numbers, cards, presence) go
to the engine through ``submit``; the console's events are acknowledged only
after the engine has journaled them (its Future completes), so a press is
never lost between the console and the journal, and one repeated after a
failure is recognised by its sequence number.

A console that does not answer a poll after the configured retries is
reported offline (``SeatWentOffline``) and then only probed with back-off (0.5
to 4 s), so a dead console costs the others one timeout per probe.  When it
answers again it is reported online and everything is re-read and rewritten.
Garbage on the line, CRC errors, wrong units, exception replies and timeouts
are counted per line and per console; a transport failure (USB adapter
unplugged, gateway down) closes the port and reopens it with back-off.

Seats with ``profile = "generic"`` (off-the-shelf DI/DO modules) are
``terminals.generic.GenericLink``s: the loop picks the poll function per
console once, at start (``_polls``), so a native poll pays nothing for them,
and hands their writes to ``terminals.generic.serve_writes``.  A changed reply
of a native console is decoded by ``terminals.native.decode``, of a module by
``terminals.generic.decode``.  A line of native consoles only uses broadcasts;
a mixed one writes each console on its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from chamber.core import effects as fx
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
    seq_after,
)
from terminals.rtu import t35_seconds
from terminals.transport import LineDown, Transport

log = logging.getLogger("terminals.line")

Submit = Callable[[ev.Input], "Future[Any]"]
PROBE_MIN_S = 0.5
PROBE_MAX_S = 4.0
REOPEN_MIN_S = 0.5
REOPEN_MAX_S = 5.0
#: a line that fails within this long after opening was not really back: keep backing off
REOPEN_SETTLED_S = 10.0
CYCLES_KEPT = 100_000
#: longest sleep of a line whose consoles are all offline and not yet due for a probe (effects wait that long)
IDLE_WAIT_S = 0.05


@dataclass
class LineStats:
    polls: int = 0
    unchanged: int = 0  # replies identical to the previous one: not decoded
    writes: int = 0
    broadcasts: int = 0
    cycles: int = 0  # full rounds of polls so far
    # the duration of each of the last CYCLES_KEPT rounds (older ones drop out)
    cycle_s: deque[float] = field(default_factory=lambda: deque(maxlen=CYCLES_KEPT))
    cpu_s: float = 0.0  # thread CPU time spent by the loop
    garbage_bytes: int = 0
    reopens: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def cycles_since(self, mark: int) -> list[float]:
        """The durations of the rounds completed after the ``mark``-th (as many as are still kept)."""
        n = min(self.cycles - mark, len(self.cycle_s))
        return list(self.cycle_s)[-n:] if n > 0 else []


class LineLoop:
    def __init__(
        self,
        line_id: str,
        transport: Transport,
        links: Sequence[ConsoleLink],
        submit: Submit,
        *,
        baud: int,
        timeout_s: float = 0.05,
        retries: int = 2,
        text_show_s: float = texts.TEXT_SHOW_S,
    ) -> None:
        self.line_id = line_id
        self.transport = transport
        self.links = list(links)
        self.by_seat = {link.seat: link for link in self.links}
        # the poll function of each console, by turn: native, or the generic profile's
        self._polls: list[Callable[[Any], None]] = [
            self._poll_generic if link.generic else self.poll for link in self.links
        ]
        # Broadcasts only on a line of native consoles: off-the-shelf modules on a mixed line would hear
        # a unit-0 write to holding registers too, and many keep their own settings there.
        self._broadcasts = all(not link.generic for link in self.links)
        self.submit = submit
        self.baud = baud
        self.timeout_s = timeout_s
        self.retries = retries
        self.t35 = t35_seconds(baud)
        self.char_s = 11 / baud
        self.stats = LineStats()
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._writes: list[ConsoleLink] = []  # links with something to write, in arrival order
        self._broadcast: dict[int, list[int]] = {}  # register -> values
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open = False
        self._next_tx = 0.0
        self._reopen_delay = REOPEN_MIN_S
        self._opened_at = 0.0
        self._turn = 0
        self._mode_told = False
        # outputs of devices without a restart flag, read back on a slow round (terminals.readback)
        self.readback = readback.Readback(self, self.links)
        self.texts = texts.SeatTexts(text_show_s)  # refusals shown on the console's text line, then cleared

    # --- other threads ----------------------------------------------------------------------------

    def post(self, effect: fx.Effect) -> None:
        """Hand an engine effect to this line (thread-safe, never blocks)."""
        self._inbox.put(("effect", effect))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"line-{self.line_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        cpu0 = time.thread_time()
        cycle_start = time.perf_counter()
        idle_turns = 0
        try:
            while not self._stop.is_set():
                if not self._open and not self._reopen():
                    continue
                try:
                    self._drain_inbox()
                    if self._broadcast:
                        self._send_broadcasts()
                    if self._writes:
                        self._serve_writes(self._writes.pop(0))
                    now = time.perf_counter()
                    if self.readback.due <= now:
                        self.readback.step()
                    if self.texts.due <= now:
                        outputs.clear_texts(self, now)
                    link = self.links[self._turn]
                    poll = self._polls[self._turn]
                    self._turn += 1
                    if self._turn == len(self.links):
                        self._turn = 0
                        now = time.perf_counter()
                        self._record_cycle(now - cycle_start)
                        cycle_start = now
                    if link.online or time.perf_counter() >= link.next_probe:
                        poll(link)
                        idle_turns = 0
                    else:
                        idle_turns += 1
                        if idle_turns >= len(self.links) and not self._writes and not self._broadcast:
                            self._idle_wait()  # a whole round with nothing to ask: do not spin
                            idle_turns = 0
                except LineDown as exc:
                    self._line_down(exc)
                self.stats.cpu_s = time.thread_time() - cpu0
        finally:
            self.transport.close()
            self._open = False

    def _idle_wait(self) -> None:
        """Every console is offline and none is due for a probe: sleep until the first one is."""
        soonest = min(link.next_probe for link in self.links)
        self._stop.wait(min(max(soonest - time.perf_counter(), 0.0005), IDLE_WAIT_S))

    def _record_cycle(self, seconds: float) -> None:
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

    def _reopen(self) -> bool:
        try:
            self.transport.open()
        except LineDown as exc:
            self.stats.errors["open"] += 1
            if self.stats.errors["open"] == 1:
                log.error("line %s: %s (retrying every %.1f-%.0f s)", self.line_id, exc, REOPEN_MIN_S, REOPEN_MAX_S)
            for link in self.links:  # never reached (the adapter is missing at start): the engine must know
                if link.online:
                    self._went_offline(link, "port cannot be opened")
            self._stop.wait(self._reopen_delay)
            self._reopen_delay = min(self._reopen_delay * 2, REOPEN_MAX_S)
            return False
        if self.stats.reopens or self.stats.errors["open"]:
            log.warning("line %s: %s open again", self.line_id, self.transport.name)
        else:
            log.info("line %s: %s open, %d consoles", self.line_id, self.transport.name, len(self.links))
        self.stats.reopens += 1
        self._open = True
        self._opened_at = time.perf_counter()
        self.stats.garbage_bytes += self.transport.discard()
        return True

    def _line_down(self, exc: LineDown) -> None:
        log.error("line %s: %s; reopening", self.line_id, exc)
        self.stats.errors["line_down"] += 1
        self.transport.close()
        self._open = False
        # Every console on the line is unreachable now; the engine must know.  They come back
        # through the ordinary probe once the port is open again.
        for link in self.links:
            if link.online:
                self._went_offline(link, "line down")
        if time.perf_counter() - self._opened_at < REOPEN_SETTLED_S:
            # it failed soon after opening (a gateway that accepts and drops, a flapping adapter):
            # back off before the next try instead of reconnecting in a tight loop
            self._stop.wait(self._reopen_delay)
            self._reopen_delay = min(self._reopen_delay * 2, REOPEN_MAX_S)
        else:
            self._reopen_delay = REOPEN_MIN_S

    # --- inbox ------------------------------------------------------------------------------------

    def _drain_inbox(self) -> None:
        inbox = self._inbox
        while True:
            try:
                kind, item = inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "effect":
                outputs.apply(self, item)
            elif kind == "ack":
                link, seq, boot = item
                # Not across a restart: the old numbers would free the new numbering's events.
                if boot == link.boot and link.taken is not None and not seq_after(seq, link.taken):
                    link.ack_due = seq
                    self._want_write(link)
            elif kind == "retake":  # the engine could not journal: read the events again
                link, boot = item
                if boot == link.boot:
                    link.taken = None
                    link.last_reply = None

    def _want_write(self, link: ConsoleLink) -> None:
        if link not in self._writes:
            self._writes.append(link)

    # --- transactions -------------------------------------------------------------------------------

    def _transact(self, frame: bytes, expect: int) -> bytes:
        wait = self._next_tx - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        transport = self.transport
        transport.write(frame)
        deadline = time.perf_counter() + (len(frame) + expect) * self.char_s + self.timeout_s
        reply = transport.read_reply(lambda head: rtu.length_after_header(frame, head), deadline)
        self._next_tx = time.perf_counter() + self.t35
        return reply

    def _fault(self, link: ConsoleLink | None, kind: str) -> None:
        self.stats.errors[kind] += 1
        if link is not None:
            link.errors[kind] += 1
        # Let the line fall silent, then drop whatever is left (a late reply, noise).
        time.sleep(self.t35)
        self.stats.garbage_bytes += self.transport.discard()

    def exchange(
        self,
        link: ConsoleLink | None,
        frame: bytes,
        parse: Callable[[bytes, bytes], Any],
        attempts: int | None = None,
    ) -> Any:
        """One request with retries (``attempts`` in all; default: the line's retries + 1); the parsed
        reply, or None if every attempt failed.  Faults count against ``link`` and the line (None: the
        line only)."""
        expect = rtu.expected_length(frame)
        for attempt in range(self.retries + 1 if attempts is None else attempts):
            if attempt:
                time.sleep(self.t35 * attempt)  # back off a little more each time
            reply = self._transact(frame, expect)
            if not reply:
                self._fault(link, "timeout")
                continue
            try:
                return parse(frame, reply)
            except rtu.FrameError as exc:
                self._fault(link, exc.kind)
        return None

    def _send_broadcasts(self) -> None:
        for register, values in sorted(self._broadcast.items()):
            if len(values) == 1:
                frame = rtu.write_register(BROADCAST_UNIT, register, values[0])
            else:
                frame = rtu.write_registers(BROADCAST_UNIT, register, values)
            wait = self._next_tx - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            self.transport.write(frame)
            self.stats.broadcasts += 1
            # no reply to a broadcast; the consoles need their turnaround before the next frame
            self._next_tx = time.perf_counter() + len(frame) * self.char_s + self.t35 + BROADCAST_TURNAROUND_S
            if register == HR_MODE:
                for link in self.links:
                    link.mode_broadcast(values[0])
                    if link.dirty:  # a choice taken since the mode was set: the broadcast just cleared it
                        self._want_write(link)
        self._broadcast.clear()

    def _serve_writes(self, link: ConsoleLink) -> None:
        if link.generic:
            assert isinstance(link, generic.GenericLink)
            generic.serve_writes(self, link)
            return
        if not link.online:
            return  # rewritten in full when it comes back
        outputs = link.outputs()
        ack = link.ack_due
        ok: Any = True
        if ack is not None and link.written != outputs:
            ok = self.exchange(link, rtu.write_registers(link.unit, HR_ACK, [ack, *outputs]), _check_write)
        elif ack is not None:
            ok = self.exchange(link, rtu.write_register(link.unit, HR_ACK, ack), _check_write)
        elif link.written != outputs:
            ok = self._write_outputs(link, outputs)
        if ok is None:
            self._want_write(link)  # try again on a later turn; the poll will tell if it is dead
            return
        self.stats.writes += 1
        if ack is not None and link.ack_due == ack:
            link.ack_due = None
        link.written = outputs
        if link.text is not None:
            text = link.text
            if self.exchange(link, rtu.write_registers(link.unit, HR_TEXT, encode_text(text)), _check_write) is None:
                self._want_write(link)
                return
            if link.text == text:
                link.text = None
        if link.mic_unit is not None and link.mic_online and link.mic_written != link.mic:
            if self.exchange(None, rtu.write_register(link.mic_unit, HR_MIC, link.mic), _check_write) is None:
                readback.mic_unit_lost(self, link, "a write of MIC failed")  # the read-back round revives it
                return
            link.mic_written = link.mic

    def _write_outputs(self, link: ConsoleLink, outputs: tuple[int, int, int, int]) -> Any:
        written = link.written
        if written is not None:
            changed = [i for i in range(4) if written[i] != outputs[i]]
            if len(changed) == 1:
                i = changed[0]
                return self.exchange(link, rtu.write_register(link.unit, HR_LEDS + i, outputs[i]), _check_write)
        return self.exchange(link, rtu.write_registers(link.unit, HR_LEDS, list(outputs)), _check_write)

    # --- polling ----------------------------------------------------------------------------------

    def poll(self, link: ConsoleLink) -> None:
        self._poll(link, rtu.parse_registers, self._decode)

    def _poll_generic(self, link: generic.GenericLink) -> None:
        self._poll(link, rtu.parse_bits, self._decode_generic)

    def _decode_generic(self, link: ConsoleLink, bits: list[bool]) -> bool:
        assert isinstance(link, generic.GenericLink)
        generic.decode(self, link, sum(1 << i for i, on in enumerate(bits) if on))
        return True

    def _poll(self, link: Any, parse: Callable[[bytes, bytes], Any], act: Callable[[Any, Any], bool]) -> None:
        """Poll one console: ``parse`` checks the reply, ``act`` turns a changed one into events."""
        self.stats.polls += 1
        attempts = self.retries + 1 if link.online else 1  # probing a dead console: one try
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.t35 * attempt)
            reply = self._transact(link.poll, link.poll_len)
            if reply == link.last_reply:
                self.stats.unchanged += 1
                return  # byte-identical to a reply already checked and decoded: nothing changed
            if not reply:
                self._fault(link, "timeout")
                continue
            try:
                values = parse(link.poll, reply)
            except rtu.FrameError as exc:
                self._fault(link, exc.kind)
                continue
            if not link.online:
                self._came_online(link)
            if act(link, values):
                link.last_reply = reply
            return
        self._no_answer(link, attempts)

    def _no_answer(self, link: ConsoleLink, attempts: int) -> None:
        """Every attempt of a poll failed: report the console offline, or probe it later."""
        if link.online:
            self._went_offline(link, f"no valid reply after {attempts} attempts")
        else:
            link.probe_interval = min(max(link.probe_interval * 2, PROBE_MIN_S), PROBE_MAX_S)
            link.next_probe = time.perf_counter() + link.probe_interval

    def _went_offline(self, link: ConsoleLink, why: str) -> None:
        log.warning("line %s: seat %d (unit %d) offline: %s", self.line_id, link.seat, link.unit, why)
        link.online = False
        link.forget()
        link.probe_interval = PROBE_MIN_S
        link.next_probe = time.perf_counter() + PROBE_MIN_S
        self.stats.errors["offline"] += 1
        self.submit(ev.SeatWentOffline(seat=link.seat))

    def _came_online(self, link: ConsoleLink) -> None:
        log.warning("line %s: seat %d (unit %d) back online", self.line_id, link.seat, link.unit)
        link.online = True
        link.forget()
        # Only unreachable, as far as we know: the console keeps its event numbering (a restart shows in
        # STATUS.RESTARTED, and terminals.native reports that on its own).
        self.submit(ev.SeatCameOnline(seat=link.seat, restarted=False))
        self._want_write(link)

    def _decode(self, link: ConsoleLink, regs: list[int]) -> bool:
        return native.decode(self, link, regs)


def _check_write(request: bytes, reply: bytes) -> bool:
    rtu.check_write(request, reply)
    return True

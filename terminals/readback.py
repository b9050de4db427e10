"""Read-back of outputs on devices that cannot say they restarted: separate microphone units, generic modules.

A native console sets STATUS.RESTARTED when it powers up, the next poll sees it, and the line
rewrites everything.  Two kinds of device on a line have no such flag, and one of them is never
polled at all, so the line reads their outputs back on a slow round (``READBACK_S`` per device,
spread evenly: at most one read-back per turn of the line machine, none while nothing is due).
:meth:`Readback.step` is a generator on the line's state (``terminals.state``), driven by the
machine like every transaction sequence; time comes in as ``now``:

* **A separate microphone unit** (register map section 6): HR MIC, one register, function 03.
  A value other than the one last written means the unit restarted (its MIC reads 0 after power-up)
  or something else wrote it: logged, counted in the line's ``errors["output_lost"]`` and rewritten.
  No valid reply after the line's retries: the unit is reported once (a warning, ``errors
  ["mic_unit_offline"]``, ``ConsoleLink.mic_online`` false), no write is tried at it any more (a dead
  unit must not cost the line three timeouts a turn), and it is read again a round later with a
  single try; when it answers it is rewritten and reported back.  The seat's console stays online:
  a deputy without a working microphone can still register and vote.
* **A generic DI/DO module** (section 8): coils 0 … 6, function 01, only while some coil should be
  on.  A module that lost power has every coil off, which is then right anyway, so an idle chamber
  pays nothing.  A difference is logged, counted (``output_lost``) and rewritten.  No reply: the poll
  of the module decides whether it is offline, as for any console.

The faults of a read-back are counted in the line's totals, not against the seat's console.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from chamber.core import events as ev
from terminals import rtu
from terminals.generic import COIL_COUNT, COIL_FIRST, GenericLink
from terminals.links import ConsoleLink
from terminals.registers import HR_MIC
from terminals.state import SAY_MIC, Exchange, LineState, Reread

log = logging.getLogger("terminals.line")

#: every device with outputs to check is read back once per this many seconds
READBACK_S = 5.0


class Readback:
    """The round of read-backs of one line; the machine drives :meth:`step` when :attr:`due`."""

    def __init__(self, line: LineState, links: Sequence[ConsoleLink], now: float, every_s: float | None = None) -> None:
        self.line = line
        self.links = [link for link in links if link.generic or link.mic_unit is not None]
        every = READBACK_S if every_s is None else every_s
        self.gap_s = every / max(len(self.links), 1)
        self.due = now + self.gap_s if self.links else float("inf")
        self._turn = 0

    def step(self) -> Exchange[None]:
        link = self.links[self._turn]
        self._turn = (self._turn + 1) % len(self.links)
        if isinstance(link, GenericLink):
            yield from self._coils(link)
        else:
            yield from self._mic(link)
        self.due = self.line.now + self.gap_s

    # --- the two kinds ----------------------------------------------------------------------------

    def _mic(self, link: ConsoleLink) -> Exchange[None]:
        line = self.line
        unit = link.mic_unit
        assert unit is not None
        attempts = None if link.mic_online else 1
        frame = rtu.read_registers(unit, HR_MIC, 1, function=3)
        values = yield from line.exchange(None, frame, rtu.parse_registers, attempts)
        if values is None:
            if link.mic_online:
                mic_unit_lost(line, link, "no valid reply to a read-back")
            return
        if not link.mic_online:
            log.warning("line %s: seat %d: microphone unit %d answers again", line.line_id, link.seat, unit)
            link.mic_online = True
            link.mic_written = None
            line.want_write(link)
            line.submit(ev.MicUnitChanged(seat=link.seat, online=True), Reread(link, None, SAY_MIC))
            return
        written = link.mic_written
        if written is not None and values[0] != written:
            self._lost(link, unit, f"MIC reads {values[0]}, {written} was written")
            link.mic_written = None

    def _coils(self, link: GenericLink) -> Exchange[None]:
        written = link.coils_written
        if not link.online or not written:
            return  # unknown (a write is on its way) or all off, which a restarted module shows too
        frame = rtu.read_bits(link.unit, COIL_FIRST, COIL_COUNT, function=1)
        bits = yield from self.line.exchange(None, frame, rtu.parse_bits)
        if bits is None:
            return  # the poll tells whether the module is offline
        coils = sum(1 << i for i, on in enumerate(bits) if on)
        if coils != written and link.coils_written == written:
            self._lost(link, link.unit, f"coils read {coils:07b}, {written:07b} were written")
            link.coils_written = None

    def _lost(self, link: ConsoleLink, unit: int, what: str) -> None:
        line = self.line
        log.warning(
            "line %s: seat %d: unit %d lost its outputs (%s; restarted?): rewriting",
            line.line_id,
            link.seat,
            unit,
            what,
        )
        line.stats.errors["output_lost"] += 1
        line.want_write(link)


def mic_unit_lost(line: LineState, link: ConsoleLink, why: str) -> None:
    """Stop writing a separate microphone unit that does not answer; the read-back round revives it."""
    log.warning("line %s: seat %d: microphone unit %s not answering: %s", line.line_id, link.seat, link.mic_unit, why)
    link.mic_online = False
    line.stats.errors["mic_unit_offline"] += 1
    line.submit(ev.MicUnitChanged(seat=link.seat, online=False), Reread(link, None, SAY_MIC))

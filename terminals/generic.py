"""The generic profile: a seat built from an off-the-shelf Modbus DI/DO module (register map section 8).

What the module offers, and how the controller uses it
------------------------------------------------------
* **Poll.**  One function-02 read of discrete inputs 0 … 6 per cycle (a precomputed 8-byte request,
  a 6-byte reply): DI 0 … 4 are the keys За, Проти, Утримався, Реєстрація and request to speak,
  DI 5 the card switch, DI 6 the presence sensor.  As with a native console, a reply byte-identical
  to the previous one means nothing changed and is not decoded.
* **Decode.**  The inputs are levels, so the controller makes events from their changes against the
  last decoded bits (``GenericLink.status``): a rising edge on DI 0 … 4 is a key press, reported as
  ``KeyPressed(seq=None)`` (the module numbers nothing, so there is no duplicate check and no ACK);
  DI 5 on is ``CardInserted`` with the first card of the deputy assigned to the seat (the config
  guarantees there is one: a card switch has no UID), off is ``CardRemoved``; a change of DI 6 is
  ``PresenceChanged``.  On the first decode after start, a return from offline or a new sitting
  (``status`` is None) card and presence are reported as they are and held keys are *not* presses:
  no edge was seen.
* **Outputs.**  The same effects as for a native console set the wanted LEDs and microphone
  (``ConsoleLink.apply_effect``); they map to coils 0 … 5 (LEDs За, Проти, Утримався, registered,
  request ring, microphone ring: the native LED bits 0 … 5) and coil 6 (microphone relay), written
  with one function-15 write of coils 0 … 6 when they differ from what was last written.  There is
  no broadcast: when the chamber mode changes, ``GenericLink.set_mode`` clears the choice LEDs in
  the wanted state and the line queues a write for each module whose coils changed.

Limits (stated in the register map): a press shorter than one poll cycle can be missed; a press
handed to an engine that fails to journal it is not read again (there is nothing to re-read); the
warning and card-accepted LEDs, the text line and rating keys do not exist; a module has no restart
flag, so one that loses power and comes back between two polls is found by the line's read-back of
its coils (``terminals.readback``, every 5 s while some coil should be on) and rewritten then.

Retries, dead-module detection and back-off, fault counters and the online/offline events are the
line machine's own (``terminals.machine``: ``LineState.exchange`` and ``fault``, ``_came_online``,
``_no_answer``), so a generic module is treated exactly like a native console there.  The machine polls
a ``GenericLink`` with function 02 instead of its native read, hands changed bits to :func:`decode`
(no follow-up read, so a plain function), and drives :func:`serve_writes` (a generator on the line's
state, like every transaction sequence) instead of its native writes.
"""

from __future__ import annotations

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from terminals import rtu
from terminals.links import ConsoleLink
from terminals.registers import Led, Mode
from terminals.state import Exchange, LineState, Reread, check_write

# --- the module's map (docs/console-register-map.md section 8) ----------------------------------------
DI_FIRST = 0
DI_COUNT = 7  # one read of DI 0..6
DI_CARD = 1 << 5
DI_PRESENCE = 1 << 6
#: (input bit, key) for DI 0..4
KEY_INPUTS: tuple[tuple[int, Key], ...] = (
    (1 << 0, Key.YES),
    (1 << 1, Key.NO),
    (1 << 2, Key.ABSTAIN),
    (1 << 3, Key.REGISTER),
    (1 << 4, Key.SPEAK),
)
DI_KEYS = 0b11111
COIL_FIRST = 0
COIL_COUNT = 7  # one write of coils 0..6
#: LEDs on coils 0..5: the same bit positions as the native LEDS register (YES … MIC ring)
LED_COILS = int(Led.YES | Led.NO | Led.ABSTAIN | Led.REGISTERED | Led.REQUEST | Led.MIC)
MIC_COIL = 6


class GenericLink(ConsoleLink):
    """A seat served by a generic DI/DO module.

    ``status`` holds the discrete inputs last decoded (bit *i* = DI *i*; None: unknown, report card
    and presence again); ``coils_written`` the coils last written (None: unknown, write them).
    """

    generic = True

    __slots__ = ("card_uid", "coils_written")

    def __init__(self, seat: int, unit: int, card_uid: str, chair: bool = False) -> None:
        super().__init__(seat, unit, None, chair)
        self.poll = rtu.read_bits(unit, DI_FIRST, DI_COUNT, function=2)
        self.poll_len = rtu.expected_length(self.poll)
        self.card_uid = card_uid  # the first card of the deputy assigned to the seat
        self.coils_written: int | None = None

    def coils(self) -> int:
        """The wanted coils 0..6 as a bit mask."""
        return (self.leds & LED_COILS) | (self.mic << MIC_COIL)

    @property
    def dirty(self) -> bool:
        return self.coils_written != self.coils()

    def forget(self) -> None:
        super().forget()
        self.coils_written = None

    def set_mode(self, mode: int) -> bool:
        """Mirror what a native console does on a MODE write; True if the coils must be written."""
        before = self.coils()
        if mode != self.mode:
            self.leds &= ~int(Led.CHOICES)
            if (mode & 0xFF) == Mode.REGISTRATION:
                self.leds &= ~int(Led.REGISTERED)
            self.proposals = 0
        self.mode = mode
        return self.coils() != before

    def apply_effect(self, effect: fx.Effect) -> bool:
        """As for a native console, but only a change of the coils counts (no text line, no P-keys)."""
        before = self.coils()
        super().apply_effect(effect)
        self.text = None
        self.proposals = 0
        return self.coils() != before


def coil_bits(coils: int) -> list[bool]:
    return [bool(coils >> i & 1) for i in range(COIL_COUNT)]


def decode(line: LineState, link: GenericLink, inputs: int) -> None:
    """Turn a change of the discrete inputs into events (card before keys: a card and a press seen in
    the same poll must reach the engine in that order)."""
    previous = link.status
    link.status = inputs
    seat = link.seat
    submit = line.submit
    changed = 0xFF if previous is None else inputs ^ previous
    if changed & DI_PRESENCE:
        submit(ev.PresenceChanged(seat=seat, present=bool(inputs & DI_PRESENCE)), Reread(link, DI_PRESENCE))
    if changed & DI_CARD:
        if inputs & DI_CARD:
            link.card_inserted()
            submit(ev.CardInserted(seat=seat, uid=link.card_uid), Reread(link, DI_CARD))
        else:  # on the first read too: the sitting may hold a deputy here whose card left unseen
            link.card_removed()
            submit(ev.CardRemoved(seat=seat), Reread(link, DI_CARD))
    if previous is not None:
        pressed = inputs & ~previous & DI_KEYS
        if pressed:
            for bit, key in KEY_INPUTS:
                if pressed & bit:
                    submit(ev.KeyPressed(seat=seat, key=key, seq=None))
    if link.dirty:
        line.want_write(link)


def serve_writes(line: LineState, link: GenericLink) -> Exchange[bool]:
    """Write coils 0..6 with one function-15 write if they differ from what was last written; False if
    the write failed every attempt (``LineMachine._unwritten`` decides what follows)."""
    if not link.online:
        return True  # rewritten in full when it comes back
    coils = link.coils()
    if coils == link.coils_written:
        return True
    frame = rtu.write_coils(link.unit, COIL_FIRST, coil_bits(coils))
    if (yield from line.exchange(link, frame, check_write)) is None:
        return False
    line.stats.writes += 1
    link.coils_written = coils
    return True

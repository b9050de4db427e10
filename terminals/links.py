"""What the controller knows about one console on a line, and how effects become its outputs.

A ``ConsoleLink`` holds the precomputed idle-poll frame, the last reply
(to skip decoding an unchanged console), the event sequence numbers taken and
acknowledged, the card sequence, health counters, and the outputs twice: as
wanted (from the engine's effects) and as last written.  ``apply_effect``
turns one core effect into wanted output bits; the line's machine
(``terminals.machine``) writes the difference.  Nothing here does I/O.  A seat built from an off-the-shelf DI/DO
module is a subclass, ``terminals.generic.GenericLink`` (``generic`` is True).
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from chamber.core import effects as fx
from terminals import rtu
from terminals.registers import (
    POLL_COUNT,
    POLL_START,
    Led,
    Mode,
    mode_word,
)

MODE_OF = {
    fx.Mode.IDLE: Mode.IDLE,
    fx.Mode.REGISTRATION: Mode.REGISTRATION,
    fx.Mode.VOTE_YES_NO: Mode.VOTE_YES_NO,
    fx.Mode.VOTE_RATING: Mode.VOTE_RATING,
}
CHOICE_LED = (Led.YES, Led.NO, Led.ABSTAIN)


class ConsoleLink:
    #: False: a native console (register map sections 1-7).  ``terminals.generic.GenericLink`` says True.
    generic: ClassVar[bool] = False

    __slots__ = (
        "ack_due",
        "acked",
        "boot",
        "card_out",
        "card_seq",
        "chair",
        "epoch",
        "errors",
        "last_reply",
        "leds",
        "mic",
        "mic_online",
        "mic_unit",
        "mic_written",
        "mode",
        "next_probe",
        "online",
        "poll",
        "poll_len",
        "probe_interval",
        "proposals",
        "seat",
        "status",
        "taken",
        "text",
        "unit",
        "unsaid",
        "write_failed",
        "written",
    )

    def __init__(self, seat: int, unit: int, mic_unit: int | None = None, chair: bool = False) -> None:
        self.seat = seat
        self.unit = unit
        self.mic_unit = mic_unit if mic_unit != unit else None
        self.chair = chair
        self.poll = rtu.read_registers(unit, POLL_START, POLL_COUNT, function=4)
        self.poll_len = rtu.expected_length(self.poll)
        self.last_reply: bytes | None = None
        self.online = True  # the engine assumes a seat online until told otherwise
        self.next_probe = 0.0
        self.probe_interval = 0.0
        self.status: int | None = None
        self.card_seq: int | None = None
        self.card_out = False  # the last card read found the slot empty
        self.boot: int | None = None  # the console's boot (IR 3 high byte): its events' numbering
        self.taken: int | None = None  # newest event sequence number handed to the engine
        self.ack_due: int | None = None  # journaled, to be acknowledged to the console
        # how many times the events were read again after the engine could not journal them: an ACK or
        # a retake decided about an earlier reading is dropped (an ACK frees every event up to it, also
        # earlier ones the re-read is still taking to the engine)
        self.epoch = 0
        self.acked: int | None = None  # the newest event known journaled (its ACK decided)
        self.errors: Counter[str] = Counter()
        # outputs wanted ...
        self.leds = 0
        self.proposals = 0
        self.mic = 0
        self.mode = mode_word(Mode.IDLE)
        self.text: str | None = None  # a text line waiting to be written
        # ... and as last written (None: unknown, write everything)
        self.written: tuple[int, int, int, int] | None = None
        self.mic_written: int | None = None
        self.mic_online = True  # a separate microphone unit answers (terminals.readback tells otherwise)
        # a write failed every attempt: tried again after the console's next poll in turn, not at every
        # turn (each failure costs the whole line its timeouts)
        self.write_failed = False
        # what the line reported of this console that the engine could not journal, to say again at its
        # next poll or probe (``terminals.state.SAY_*`` bits)
        self.unsaid = 0

    def outputs(self) -> tuple[int, int, int, int]:
        mic = 0 if self.mic_unit is not None else self.mic  # a separate mic unit gets its own write
        return (self.leds, self.proposals, mic, self.mode)

    @property
    def dirty(self) -> bool:
        return (
            self.ack_due is not None
            or self.text is not None
            or self.written != self.outputs()
            or (self.mic_unit is not None and self.mic_online and self.mic_written != self.mic)
        )

    def forget(self) -> None:
        """The console restarted or came back: re-read everything, rewrite everything."""
        self.last_reply = None
        self.status = None
        self.card_seq = None
        self.taken = None
        self.ack_due = None
        self.acked = None
        self.written = None
        self.mic_written = None
        self.write_failed = False

    def set_mode(self, mode: int) -> bool:
        """The chamber mode changed; True if this console needs a write of its own (never, here:
        a broadcast of MODE reaches it, or on a mixed line the loop writes it anyway)."""
        if mode != self.mode:
            self.leds &= ~int(Led.CHOICES)  # a new vote starts dark
            if (mode & 0xFF) == Mode.REGISTRATION:
                self.leds &= ~int(Led.REGISTERED)  # a new registration round starts unlit
            self.proposals = 0
        self.mode = mode
        return False

    def mode_broadcast(self, mode: int) -> None:
        """MODE reached the console by broadcast: it cleared its choice LEDs itself (datasheet section 4)."""
        if self.written is not None:
            self.written = (self.written[0] & ~int(Led.CHOICES), 0, self.written[2], mode)

    def apply_effect(self, effect: fx.Effect) -> bool:
        """Update the wanted outputs; True if something changed."""
        before = (self.leds, self.proposals, self.mic, self.text)
        t = type(effect)
        if t is fx.ChoiceAccepted:
            assert isinstance(effect, fx.ChoiceAccepted)
            if effect.option < 0:  # a secret ballot: all three lit say "taken" and show no choice
                self.leds |= Led.CHOICES
            elif (self.mode & 0xFF) == Mode.VOTE_RATING:
                self.proposals = 1 << effect.option
            else:
                self.leds = (self.leds & ~int(Led.CHOICES)) | int(CHOICE_LED[effect.option])
        elif t is fx.Registered or t is fx.CardAccepted:
            # An acceptance that arrives after this loop saw the card leave (in and out within one
            # journal commit) must not light the LEDs of an empty slot.
            if not self.card_out:
                self.leds |= Led.REGISTERED if t is fx.Registered else Led.CARD_OK
        elif t is fx.MicOn:
            self.mic = 1
            self.leds = (self.leds | Led.MIC) & ~Led.WARN & ~Led.REQUEST
        elif t is fx.MicOff:
            self.mic = 0
            self.leds &= ~(Led.MIC | Led.WARN)
        elif t is fx.RequestLed:
            assert isinstance(effect, fx.RequestLed)
            self.leds = self.leds | Led.REQUEST if effect.on else self.leds & ~Led.REQUEST
        elif t is fx.SpeechWarning or t is fx.SpeechTimeUp:
            self.leds |= Led.WARN
        elif t is fx.ConsoleText:
            assert isinstance(effect, fx.ConsoleText)
            self.text = effect.text
        return before != (self.leds, self.proposals, self.mic, self.text)

    def card_removed(self) -> None:
        self.card_out = True
        self.leds &= ~(Led.CARD_OK | Led.REGISTERED)

    def card_inserted(self) -> None:
        self.card_out = False


def mode_of(effect: fx.ModeChanged) -> int:
    return mode_word(MODE_OF[effect.mode], effect.proposals)

"""The firmware of one simulated seat console (or chair console, or separate microphone unit).

How it works
------------
:class:`ConsoleModel` is the state a real console keeps in its RAM, and the rules its firmware
follows, exactly as ``docs/console-register-map.md`` states them (the numbers come from
:mod:`terminals.registers`).  It is the single source of truth: nothing else stores console state.

* People act on it from any thread: :meth:`ConsoleModel.press` (or :meth:`key_down` /
  :meth:`key_up`), :meth:`insert_card`, :meth:`remove_card`, :meth:`set_presence`,
  :meth:`power_cycle`.  A key press is latched at key-down into a FIFO of 16 events with 16-bit
  wrapping sequence numbers; a 17th press without an ACK is dropped, counted in ERR_OVERFLOW and
  raises STATUS.OVERFLOW.
* The Modbus side reaches it through :meth:`read_registers` / :meth:`write_registers`: called by
  :func:`hardware_sim.slave.answer` in the simulator's loop (the default), or, with pymodbus
  answering, by the ``action`` callback (:meth:`action`) on every access *before* pymodbus serves
  it: for a read the callback renders the requested registers into pymodbus's live register list, so
  the reply is whatever the model holds at that instant; for a write it applies the values to the
  model (ACK, LEDs, MODE side effects, TEXT).  Broadcast writes (unit 0) are delivered to
  :meth:`write_registers` by the wire (``hardware_sim.wire``) with ``broadcast=True``.
* Addresses outside the map answer Modbus exception 02 (illegal data address): function 04 reads
  IR 0 … 69, function 03 reads HR 256 … 287, functions 06/16 write HR 256 … 287.
* One :class:`threading.Lock` guards everything, so a press from a test thread and a poll served on
  the simulator's loop (or pymodbus's event loop) never see a half-updated console.

One ambiguity of the datasheet is settled here: when one function-16 write carries both MODE and
LEDS/PROPOSAL_LEDS (the controller's combined write of HR 257 … 260), MODE's side effect (clearing
the choice LEDs and proposal LEDs) is applied first and the LED values written in the same frame
win.  Otherwise a combined write could never light a choice LED.

:class:`MicUnitModel` is the separate microphone unit (DEVICE_TYPE 3): STATUS.MIC_ON, MIC, identity
and error counters; it has no keys, no card slot and ignores broadcasts of MODE and TEXT.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.constants import ExcCodes

from chamber.core.values import Key
from terminals import registers as r

FW_MAJOR = 1
FW_MINOR = 0
FW_PATCH = 3
MAX_UID_BYTES = 2 * r.CARD_UID_REGS  # 10: what CARD_UID can hold

IR_LAST = r.IR_KEYS_HELD_HI  # 69: the last input register of the map
HR_FIRST = r.HR_ACK_BOOT  # 255
HR_LAST = r.HR_TEXT + r.TEXT_REGS - 1  # 287
#: How many registers the pymodbus device has (one shared block from address 0).
REGISTER_SPACE = 300

_CARD, _PRESENCE, _MIC_ON = int(r.Status.CARD), int(r.Status.PRESENCE), int(r.Status.MIC_ON)
_OVERFLOW, _RESTARTED = int(r.Status.OVERFLOW), int(r.Status.RESTARTED)

_SEAT_KEYS = frozenset(int(k) for k in Key if k not in (Key.PRIORITY, Key.NEXT))
_CHAIR_KEYS = frozenset(int(k) for k in Key)


@dataclass(frozen=True)
class ConsoleState:
    """A decoded, immutable view of a console (for the HTTP API, tests and logs)."""

    unit: int
    device_type: int
    powered: bool
    status: int
    leds: int
    proposal_leds: int
    mic: bool
    mode: int
    proposals: int
    text: str
    card: str | None
    presence: bool
    pending: tuple[tuple[int, int], ...]  # (seq, key) oldest first
    err_overflow: int
    err_crc: int


class ConsoleModel:
    """One seat (or chair) console's firmware state, per the datasheet.  Thread-safe."""

    def __init__(
        self,
        unit: int,
        *,
        device_type: r.DeviceType = r.DeviceType.SEAT,
        presence_sensor: bool = False,
        has_mic: bool = True,
        serial: int = 0,
        seq_start: int = 0,
        power_ups: int = 1,
        on_power_up: Callable[[int], None] | None = None,
    ) -> None:
        self.unit = unit
        self.device_type = r.DeviceType(device_type)
        self.presence_sensor = presence_sensor
        self.serial = serial & 0xFFFFFFFF
        self.seq_start = seq_start & 0xFFFF
        caps = r.Caps(0)
        if self.device_type in (r.DeviceType.SEAT, r.DeviceType.CHAIR):
            caps |= r.Caps.CARD | r.Caps.TEXT | r.Caps.RATING_KEYS
            if presence_sensor:
                caps |= r.Caps.PRESENCE
        if has_mic:
            caps |= r.Caps.MIC
        if self.device_type == r.DeviceType.CHAIR:
            caps |= r.Caps.CHAIR_KEYS
        self.caps = caps
        self._has_mic = bool(caps & r.Caps.MIC)
        self._keys = _CHAIR_KEYS if self.device_type == r.DeviceType.CHAIR else _SEAT_KEYS
        self._lock = threading.Lock()
        # physical state: survives a power cut
        self._card: bytes | None = None
        self._presence = False
        self._power_ups = (power_ups - 1) & 0xFFFF
        self._on_power_up = on_power_up  # the count is kept where a power cut cannot reach it (EEPROM)
        self._powered = True
        # RAM state: reset at power-up
        self._fifo: deque[tuple[int, int]] = deque()
        self._next_seq = 0
        self._overflow = False
        self._restarted = True
        self._card_seq = 0
        self._keys_held = 0
        self._ack = 0
        self._leds = 0
        self._proposal_leds = 0
        self._mic = 0
        self._mode = 0
        self._text = [0] * r.TEXT_REGS
        self._err_crc = 0
        self._err_frame = 0
        self._err_overflow = 0
        self._power_up()

    # ------------------------------------------------------------------ power

    def _power_up(self) -> None:
        """What the firmware does at boot (lock held or not yet shared)."""
        self._fifo.clear()
        self._next_seq = self.seq_start
        self._overflow = False
        self._restarted = True
        self._card_seq = 0
        self._keys_held = 0
        self._ack = 0
        self._leds = 0
        self._proposal_leds = 0
        self._mic = 0
        self._mode = 0
        self._text = [0] * r.TEXT_REGS
        self._err_crc = 0
        self._err_frame = 0
        self._err_overflow = 0
        self._power_ups = (self._power_ups + 1) & 0xFFFF
        self._powered = True
        if self._on_power_up is not None:
            self._on_power_up(self._power_ups)

    def power_cycle(self) -> None:
        """Cut the power and restore it: RAM state lost, RESTARTED set, POWER_UPS + 1.

        The card stays in the slot and the presence sensor keeps its state (they are physical).
        """
        with self._lock:
            self._power_up()

    def power_off(self) -> None:
        """The console goes dark: it answers nothing until :meth:`power_on`."""
        with self._lock:
            self._powered = False

    def power_on(self) -> None:
        """Power restored after :meth:`power_off`: the console boots (as :meth:`power_cycle`)."""
        with self._lock:
            if not self._powered:
                self._power_up()

    @property
    def power_ups(self) -> int:
        """POWER_UPS (IR 67): its low byte is the BOOT the idle poll shows in IR 3."""
        with self._lock:
            return self._power_ups

    @property
    def powered(self) -> bool:
        with self._lock:
            return self._powered

    # ------------------------------------------------------------------ people

    def key_down(self, key: int) -> bool:
        """A key goes down: the event is latched.  False when the FIFO was full (the press is lost)."""
        code = int(key)
        if code not in self._keys:
            raise ValueError(f"key {code} does not exist on a {self.device_type.name.lower()} console")
        with self._lock:
            if not self._powered:
                return False
            self._keys_held |= 1 << (code - 1)
            if len(self._fifo) >= r.FIFO_SIZE:
                self._err_overflow = (self._err_overflow + 1) & 0xFFFF
                self._overflow = True
                return False
            self._fifo.append((self._next_seq, code))
            self._next_seq = (self._next_seq + 1) & 0xFFFF
            return True

    def key_up(self, key: int) -> None:
        """A key is released (only KEYS_HELD changes)."""
        with self._lock:
            self._keys_held &= ~(1 << (int(key) - 1))

    def press(self, key: int) -> bool:
        """Tap a key (down and up).  False when the console dropped the press (FIFO full, or no power)."""
        latched = self.key_down(key)
        self.key_up(key)
        return latched

    def insert_card(self, uid_hex: str) -> None:
        """Put a card (UID as hex, 1 … 10 bytes; ':' and spaces allowed) into the slot."""
        if not self.caps & r.Caps.CARD:
            raise ValueError("this device has no card slot")
        uid = parse_uid(uid_hex)
        with self._lock:
            if self._card is not None:
                raise ValueError(f"a card ({self._card.hex().upper()}) is already in the slot")
            self._card = uid
            self._card_seq = (self._card_seq + 1) & 0xFF

    def remove_card(self) -> str | None:
        """Take the card out; returns its UID (None if the slot was empty, which changes nothing)."""
        with self._lock:
            if self._card is None:
                return None
            uid = self._card.hex().upper()
            self._card = None
            self._card_seq = (self._card_seq + 1) & 0xFF
            return uid

    def set_presence(self, present: bool) -> None:
        """Hold or release the presence sensor."""
        with self._lock:
            self._presence = bool(present)

    # ------------------------------------------------------------------ views

    @property
    def card(self) -> str | None:
        with self._lock:
            return None if self._card is None else self._card.hex().upper()

    def count_crc_error(self) -> None:
        """The console heard a frame with a bad CRC (the wire tells every console on the line)."""
        with self._lock:
            self._err_crc = (self._err_crc + 1) & 0xFFFF

    def count_frame_error(self) -> None:
        with self._lock:
            self._err_frame = (self._err_frame + 1) & 0xFFFF

    def _status(self) -> int:
        # plain ints: IntFlag's | is a Python-level call, and this runs for every idle poll
        status = 0
        if self._card is not None:
            status |= _CARD
        if self._presence and self.presence_sensor:
            status |= _PRESENCE
        if self._mic and self._has_mic:
            status |= _MIC_ON
        if self._overflow:
            status |= _OVERFLOW
        if self._restarted:
            status |= _RESTARTED
        return status | (self._mode & 0b111) << r.MODE_ECHO_SHIFT

    def pending_count(self) -> int:
        """How many key events the console holds, not yet acknowledged (cheap: no decoding)."""
        with self._lock:
            return len(self._fifo)

    def _head(self) -> int:
        return self._fifo[0][0] if self._fifo else self._next_seq

    def _register(self, addr: int) -> int:
        """The value of one register (lock held)."""
        if addr == r.IR_STATUS:
            return self._status()
        if addr == r.IR_EVT_HEAD:
            return self._head()
        if addr == r.IR_EVT_INFO:
            return (len(self._fifo) << 8 | self._fifo[0][1]) if self._fifo else 0
        if addr == r.IR_CARD_SEQ:  # BOOT in the high byte: a new one at every power-up
            return (self._power_ups & 0xFF) << 8 | self._card_seq
        if r.IR_FIFO <= addr < r.IR_FIFO + r.FIFO_SIZE:
            i = addr - r.IR_FIFO
            return self._fifo[i][1] if i < len(self._fifo) else 0
        if addr == r.IR_CARD_LEN:
            return 0 if self._card is None else len(self._card)
        if r.IR_CARD_UID <= addr < r.IR_CARD_UID + r.CARD_UID_REGS:
            if self._card is None:
                return 0
            raw = self._card.ljust(MAX_UID_BYTES, b"\0")
            i = 2 * (addr - r.IR_CARD_UID)
            return raw[i] << 8 | raw[i + 1]
        fixed = {
            r.IR_PROFILE: r.PROFILE_ID,
            r.IR_DEVICE_TYPE: int(self.device_type),
            r.IR_FW_VERSION: FW_MAJOR << 8 | FW_MINOR,
            r.IR_FW_PATCH: FW_PATCH,
            r.IR_SERIAL_HI: self.serial >> 16,
            r.IR_SERIAL_LO: self.serial & 0xFFFF,
            r.IR_CAPS: int(self.caps),
            r.IR_ERR_CRC: self._err_crc,
            r.IR_ERR_FRAME: self._err_frame,
            r.IR_ERR_OVERFLOW: self._err_overflow,
            r.IR_POWER_UPS: self._power_ups,
            r.IR_KEYS_HELD: self._keys_held & 0xFFFF,
            r.IR_KEYS_HELD_HI: self._keys_held >> 16,
            r.HR_ACK_BOOT: self._power_ups & 0xFF,
            r.HR_ACK: self._ack,
            r.HR_LEDS: self._leds,
            r.HR_PROPOSAL_LEDS: self._proposal_leds,
            r.HR_MIC: self._mic,
            r.HR_MODE: self._mode,
        }
        if addr in fixed:
            return fixed[addr]
        if r.HR_TEXT <= addr < r.HR_TEXT + r.TEXT_REGS:
            return self._text[addr - r.HR_TEXT]
        return 0  # reserved

    # ------------------------------------------------------------------ Modbus side

    def read_registers(self, function_code: int, address: int, count: int) -> list[int] | ExcCodes:
        """The values a read of ``count`` registers from ``address`` returns (or a Modbus exception)."""
        end = address + count - 1
        if function_code == 4:
            ok = address >= 0 and end <= IR_LAST
        elif function_code == 3:
            ok = address >= HR_FIRST and end <= HR_LAST
        else:
            ok = False
        if not ok or count < 1:
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            return [self._register(a) for a in range(address, end + 1)]

    def write_registers(self, address: int, values: list[int], *, broadcast: bool = False) -> ExcCodes | None:
        """Apply a write of HR ``address`` … (function 06 or 16).  Returns a Modbus exception or None.

        A broadcast (unit 0) is accepted only for MODE and TEXT, as the datasheet says; other
        broadcast registers are ignored.
        """
        end = address + len(values) - 1
        if not values or address < HR_FIRST or end > HR_LAST:
            return ExcCodes.ILLEGAL_ADDRESS
        regs = {address + i: int(v) & 0xFFFF for i, v in enumerate(values)}
        with self._lock:
            if not self._powered:
                return None
            self._apply(regs, broadcast)
        return None

    def _apply(self, regs: dict[int, int], broadcast: bool) -> None:
        """Apply written registers (lock held).  MODE first: values written in the same frame win."""
        if r.HR_MODE in regs:
            self._mode = regs[r.HR_MODE]
            self._leds &= ~int(r.Led.CHOICES)
            self._proposal_leds = 0
            if not broadcast:  # only the controller's write to this unit says it saw the restart
                self._restarted = False
        for addr in range(r.HR_TEXT, r.HR_TEXT + r.TEXT_REGS):
            if addr in regs:
                self._text[addr - r.HR_TEXT] = regs[addr]
        if broadcast:
            return
        if r.HR_ACK in regs:
            self._ack = regs[r.HR_ACK]
            # Written with ACK_BOOT, the ACK is for the numbering of that boot: after a power-up the new
            # numbering may reuse its number, and an ACK meant for the old one must not free new events.
            if r.HR_ACK_BOOT not in regs or regs[r.HR_ACK_BOOT] == self._power_ups & 0xFF:
                self._take_ack(regs[r.HR_ACK])
        if r.HR_LEDS in regs:
            self._leds = regs[r.HR_LEDS]
        if r.HR_PROPOSAL_LEDS in regs:
            self._proposal_leds = regs[r.HR_PROPOSAL_LEDS]
        if r.HR_MIC in regs:
            self._mic = regs[r.HR_MIC]  # raw, so the function-06 echo repeats what was written

    def _take_ack(self, seq: int) -> None:
        """Drop every pending event from EVT_HEAD up to ``seq``; outside the pending window: ignore."""
        if not self._fifo:
            return
        distance = (seq - self._fifo[0][0]) & 0xFFFF
        if distance >= len(self._fifo):
            return
        for _ in range(distance + 1):
            self._fifo.popleft()
        self._overflow = False

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """The pymodbus ``SimDevice.action``: render reads into ``registers``, apply writes to the model."""
        if function_code in (3, 4) or (function_code in (6, 16) and set_values is None):
            # pymodbus reads the register back after a function-06 write to build its echo
            values = self.read_registers(4 if function_code == 4 else 3, address, count)
            if isinstance(values, ExcCodes):
                return values
            offset = address - start_address
            registers[offset : offset + count] = values
            return None
        if function_code in (6, 16) and set_values is not None:
            return self.write_registers(address, [int(v) for v in set_values])
        return ExcCodes.ILLEGAL_FUNCTION

    def state(self) -> ConsoleState:
        """A decoded snapshot of the console."""
        with self._lock:
            raw = b"".join(v.to_bytes(2, "big") for v in self._text)
            return ConsoleState(
                unit=self.unit,
                device_type=int(self.device_type),
                powered=self._powered,
                status=self._status(),
                leds=self._leds,
                proposal_leds=self._proposal_leds,
                mic=bool(self._mic),
                mode=self._mode & 0xFF,
                proposals=self._mode >> 8,
                text=raw.rstrip(b"\0").decode("cp1251", errors="replace"),
                card=None if self._card is None else self._card.hex().upper(),
                presence=self._presence,
                pending=tuple(self._fifo),
                err_overflow=self._err_overflow,
                err_crc=self._err_crc,
            )


class MicUnitModel(ConsoleModel):
    """A separate microphone unit (DEVICE_TYPE 3): MIC, STATUS.MIC_ON, identity, error counters.

    Writes: HR MIC only (anything else is exception 02).  Reads: the whole map, unimplemented
    registers read 0.
    """

    def __init__(self, unit: int, *, serial: int = 0, power_ups: int = 1) -> None:
        super().__init__(unit, device_type=r.DeviceType.MIC_UNIT, has_mic=True, serial=serial, power_ups=power_ups)
        self._keys = frozenset()

    def write_registers(self, address: int, values: list[int], *, broadcast: bool = False) -> ExcCodes | None:
        if broadcast:
            return None  # MODE and TEXT mean nothing to a microphone unit
        if address != r.HR_MIC or len(values) != 1:
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            if self._powered:
                self._mic = int(values[0]) & 0xFFFF
        return None

    def _status(self) -> int:
        # The datasheet gives a microphone unit STATUS bit 2 only (no RESTARTED: it has no MODE);
        # a restart shows in POWER_UPS.
        return int(r.Status.MIC_ON) if self._mic else 0


def parse_uid(uid_hex: str) -> bytes:
    """A card UID from hex text ("04:A1:B2:C3" or "04A1B2C3"): 1 … 10 bytes, or ValueError."""
    text = uid_hex.replace(":", "").replace(" ", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"card UID must be hex, got {uid_hex!r}") from None
    if not 1 <= len(raw) <= MAX_UID_BYTES:
        raise ValueError(f"card UID must be 1 … {MAX_UID_BYTES} bytes (the map's CARD_UID), got {len(raw)}")
    return raw

"""A simulated off-the-shelf Modbus DI/DO module used as a seat (register map section 8, "generic").

How it works
------------
:class:`GenericModuleModel` is an 8-input/8-output RS-485 module as sold for PLC work, wired to a
seat: keys За, Проти, Утримався, Реєстрація and request to speak on discrete inputs 0 … 4, a card
switch on DI 5, a presence sensor on DI 6; LEDs on coils 0 … 5 and the microphone relay on coil 6.
The inputs are plain levels: nothing is latched, nothing is numbered.

* People act on it from any thread.  :meth:`press` raises the key's input and drops it again
  ``hold_s`` later (0.15 s by default, a human press) from a :class:`threading.Timer`, so whether the
  controller sees the press depends on it polling within that window — the profile's stated limit.
  :meth:`key_down` / :meth:`key_up` hold a key by hand.  :meth:`insert_card` / :meth:`remove_card`
  toggle DI 5 (the UID is remembered for the simulator's views only: the module cannot report it);
  :meth:`set_presence` sets DI 6.  Physical inputs survive :meth:`power_cycle`; coils do not.
* The Modbus side is a pymodbus 3.16 ``SimDevice`` with one *shared* block (a single register at
  address 0) and ``use_bit_addressing=True``: pymodbus then maps bit address *a* to bit ``a % 16`` of
  register ``a // 16``, so function 02 of DI 0 … 6 and function 15 of coils 0 … 6 both land in
  register 0, bits 0 … 6.  (With ``use_bit_addressing=False`` a shared block takes the bit address as
  a *register* address, which only happens to work for address 0.)  Because discrete inputs and
  coils share that register, :meth:`action` renders the right one into it before every read
  (function 02: the inputs; 01: the coils) and takes the written bits for function 05/15 into the
  model; pymodbus only formats the frames.  pymodbus calls the action with the *bit* address and the
  number of *registers* spanned, so the action checks the address (and, for writes, the bit count
  from ``set_values``) against the module's 8 inputs and 8 coils: anything else is exception 02.
  Functions other than 01, 02, 05 and 15 get exception 01.
* Without pymodbus (the simulator's default) :mod:`hardware_sim.slave` answers through
  :meth:`read_bits` and :meth:`write_coils`, the same checks the action makes.
* Broadcasts of the native profile (MODE, TEXT to unit 0) reach it through the wire's
  ``write_registers(..., broadcast=True)`` and are ignored, as a module without those holding
  registers would.
* One lock guards the state; :meth:`state` gives the same :class:`~hardware_sim.console.ConsoleState`
  as a native console, with the LED coils as ``leds`` (coils 0 … 5 are the native LED bits 0 … 5), coil 6
  as ``mic``, the discrete inputs as ``status`` and ``device_type`` :data:`GENERIC_DEVICE_TYPE` (0).
"""

from __future__ import annotations

import threading

from pymodbus.constants import ExcCodes

from chamber.core.values import Key
from hardware_sim.console import ConsoleState
from terminals.generic import DI_CARD, DI_PRESENCE, KEY_INPUTS, LED_COILS, MIC_COIL

#: ``ConsoleState.device_type`` of a generic module (no native device type: it has no identity registers).
GENERIC_DEVICE_TYPE = 0
INPUTS = 8  # an 8-in / 8-out module
COILS = 8
HOLD_S = 0.15
_KEY_BIT = {key: bit for bit, key in KEY_INPUTS}


class GenericModuleModel:
    """One DI/DO module at a seat.  Thread-safe."""

    def __init__(self, unit: int, *, hold_s: float = HOLD_S) -> None:
        self.unit = unit
        self.hold_s = hold_s
        self._lock = threading.Lock()
        self._inputs = 0  # physical: keys held, card switch, presence
        self._card: str | None = None  # the card in the slot (the module only sees "a card is in")
        self._coils = 0
        self._powered = True
        self._err_crc = 0
        self._err_frame = 0
        self._timers: dict[int, threading.Timer] = {}  # input bit -> its pending release

    # ------------------------------------------------------------------ power

    @property
    def powered(self) -> bool:
        with self._lock:
            return self._powered

    def power_cycle(self) -> None:
        """Power cut and back: the coils drop (relays and LEDs off); inputs are physical and stay."""
        with self._lock:
            self._coils = 0
            self._powered = True

    def power_off(self) -> None:
        with self._lock:
            self._powered = False

    def power_on(self) -> None:
        with self._lock:
            if not self._powered:
                self._coils = 0
                self._powered = True

    # ------------------------------------------------------------------ people

    @staticmethod
    def _bit(key: int) -> int:
        try:
            return _KEY_BIT[Key(int(key))]
        except (KeyError, ValueError):
            names = ", ".join(key.name.lower() for key in _KEY_BIT)
            raise ValueError(f"key {int(key)} does not exist on a generic module (keys: {names})") from None

    def key_down(self, key: int) -> bool:
        """Hold a key down.  False if it was down already (no new edge)."""
        bit = self._bit(key)
        with self._lock:
            if self._inputs & bit:
                return False
            self._inputs |= bit
            return True

    def key_up(self, key: int) -> None:
        bit = self._bit(key)
        with self._lock:
            self._inputs &= ~bit
            timer = self._timers.pop(bit, None)
        if timer is not None:
            timer.cancel()

    def press(self, key: int, hold_s: float | None = None) -> bool:
        """Press a key and let go ``hold_s`` (default :attr:`hold_s`) later.

        Returns at once.  False when the key is still down from an earlier press (no new edge) or the
        module has no power; True does *not* mean the controller saw it (nothing is latched).
        """
        bit = self._bit(key)
        hold = self.hold_s if hold_s is None else hold_s
        with self._lock:
            if self._inputs & bit or not self._powered:
                return False
            self._inputs |= bit
            timer = threading.Timer(hold, self._release, (bit,))
            timer.daemon = True
            self._timers[bit] = timer
            timer.start()
        return True

    def _release(self, bit: int) -> None:
        with self._lock:
            self._inputs &= ~bit
            self._timers.pop(bit, None)

    def release_all(self) -> None:
        """Let go of every key now (cancels pending releases); the simulator calls it when it stops."""
        with self._lock:
            timers = list(self._timers.values())
            self._timers.clear()
            self._inputs &= DI_CARD | DI_PRESENCE
        for timer in timers:
            timer.cancel()

    def insert_card(self, uid_hex: str = "") -> None:
        """Put a card in: DI 5 on.  ``uid_hex`` is kept for the simulator's views; the module cannot read it."""
        with self._lock:
            if self._card is not None:
                raise ValueError("a card is already in the slot")
            self._card = uid_hex.replace(":", "").replace(" ", "").upper()
            self._inputs |= DI_CARD

    def remove_card(self) -> str | None:
        """Take the card out (DI 5 off); returns what was inserted (None if the slot was empty)."""
        with self._lock:
            uid, self._card = self._card, None
            self._inputs &= ~DI_CARD
            return uid

    def set_presence(self, present: bool) -> None:
        with self._lock:
            self._inputs = self._inputs | DI_PRESENCE if present else self._inputs & ~DI_PRESENCE

    # ------------------------------------------------------------------ views

    @property
    def card(self) -> str | None:
        with self._lock:
            return self._card

    def inputs(self) -> int:
        with self._lock:
            return self._inputs

    def coils(self) -> int:
        with self._lock:
            return self._coils

    def count_crc_error(self) -> None:
        with self._lock:
            self._err_crc += 1

    def count_frame_error(self) -> None:
        with self._lock:
            self._err_frame += 1

    def state(self) -> ConsoleState:
        with self._lock:
            return ConsoleState(
                unit=self.unit,
                device_type=GENERIC_DEVICE_TYPE,
                powered=self._powered,
                status=self._inputs,
                leds=self._coils & LED_COILS,
                proposal_leds=0,
                mic=bool(self._coils >> MIC_COIL & 1),
                mode=0,
                proposals=0,
                text="",
                card=self._card,
                presence=bool(self._inputs & DI_PRESENCE),
                pending=(),
                err_overflow=0,
                err_crc=self._err_crc,
            )

    # ------------------------------------------------------------------ Modbus side

    def write_registers(self, address: int, values: list[int], *, broadcast: bool = False) -> ExcCodes | None:
        """The wire delivers native broadcasts (MODE, TEXT) here: the module has no such registers."""
        return None if broadcast else ExcCodes.ILLEGAL_FUNCTION

    def read_bits(self, function_code: int, address: int, count: int) -> list[bool] | ExcCodes:
        """``count`` bits from ``address`` of the inputs (function 02) or the coils (01).

        An address past the module's 8 inputs or 8 coils is exception 02; bits past them read 0 (the
        pymodbus block the bits come from is one 16-bit register: :mod:`hardware_sim.slave` checks that).
        """
        if address >= (INPUTS if function_code == 2 else COILS):
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            value = self._inputs if function_code == 2 else self._coils
        return [bool(value >> (address + i) & 1) for i in range(count)]

    def write_coils(self, address: int, bits: list[bool]) -> ExcCodes | None:
        """Set coils ``address`` … (functions 05 and 15); past the 8 coils: exception 02."""
        if address + len(bits) > COILS:
            return ExcCodes.ILLEGAL_ADDRESS
        with self._lock:
            if not self._powered:
                return None
            coils = self._coils
            for i, on in enumerate(bits):
                bit = 1 << (address + i)
                coils = coils | bit if on else coils & ~bit
            self._coils = coils
        return None

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """The pymodbus ``SimDevice.action`` (shared block, bit addressing; see the module docstring)."""
        offset = address // 16 - start_address
        if function_code in (1, 2) or (function_code in (5, 15) and set_values is None):
            if address >= (INPUTS if function_code == 2 else COILS):
                return ExcCodes.ILLEGAL_ADDRESS
            with self._lock:
                registers[offset] = self._inputs if function_code == 2 else self._coils
            return None
        if function_code in (5, 15) and set_values is not None:
            return self.write_coils(address, [bool(v) for v in set_values])
        return ExcCodes.ILLEGAL_FUNCTION

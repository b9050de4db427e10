"""The consoles answering Modbus RTU requests themselves: request frame in, reply frame out, no I/O.

How it works
------------
:func:`answer` is the slave side of one transaction.  The wire (:mod:`hardware_sim.wire`) has already
cut the request off the byte stream, checked its CRC and found the device it addresses (a
:class:`~hardware_sim.console.ConsoleModel`, :class:`~hardware_sim.console.MicUnitModel` or
:class:`~hardware_sim.generic.GenericModuleModel`); :func:`answer` decodes the PDU, calls the model
(``read_registers`` / ``write_registers`` of a console, ``read_bits`` / ``write_coils`` of a module)
and encodes the reply with the project's RTU codec (:func:`terminals.rtu.with_crc`: table CRC).
It is a few microseconds of Python per request, where forwarding the request to a pymodbus server
over a second pty cost a second process-internal hop, an asyncio wake-up and pymodbus's decoding.

The answers are the pymodbus 3.16 server's answers for the devices :mod:`hardware_sim.simulator`
builds for it (``Simulator(..., pymodbus=True)``), byte for byte, including the order of its checks:

1. the PDU: a register write of more than 123 registers, or of a byte count other than twice the
   register count, is exception 03 (the same for a coil write whose byte count is not ceil(n / 8));
2. the register block: a native console's device holds registers 0 … ``REGISTER_SPACE`` - 1 without
   bit addressing, a generic module's one register with bit addressing (bit *a* = bit *a* % 16 of
   register *a* // 16); an access reaching past its block is exception 02;
3. the model: whatever it answers, exception 01 for a function it does not implement (a console has
   no coils or discrete inputs, a module no registers), 02 for an address outside its map.

One deliberate difference: a read of 0 or more than 125 registers, and a read or write of 0 or more
than 2000 coils or discrete inputs, cannot even be decoded by pymodbus, which then answers exception
01 with function code 0x80 (no function at all); here it is exception 03 under the request's
function, as the Modbus application protocol says.  ``tests/test_sim_slave.py`` sends the same
requests to both and compares every reply, this difference included.
"""

from __future__ import annotations

import struct
from typing import Protocol

from pymodbus.constants import ExcCodes

from hardware_sim.console import REGISTER_SPACE, ConsoleModel
from terminals.rtu import with_crc

MAX_READ_REGISTERS = 125  # functions 03 and 04 (Modbus application protocol 6.3, 6.4)
MAX_WRITE_REGISTERS = 123  # function 16 (Modbus application protocol 6.12)
MAX_BITS = 2000  # functions 01, 02 and 15 as pymodbus decodes them
GENERIC_SPACE = 1  # a generic module's device: one register, bit-addressed

_HEADER = struct.Struct(">HH")


class BitDevice(Protocol):
    """What :func:`answer` needs of a generic DI/DO module."""

    def read_bits(self, function_code: int, address: int, count: int) -> list[bool] | ExcCodes: ...

    def write_coils(self, address: int, bits: list[bool]) -> ExcCodes | None: ...


def exception(unit: int, function_code: int, code: int) -> bytes:
    """An exception reply: the function code with its high bit set, then the exception code."""
    return with_crc(bytes((unit, function_code | 0x80, code)))


def answer(device: ConsoleModel | BitDevice, frame: bytes) -> bytes:
    """The reply of ``device`` to the request ``frame`` (unit, PDU, good CRC; its length already cut)."""
    unit, fc = frame[0], frame[1]
    if isinstance(device, ConsoleModel):
        return _frame(unit, fc, _register_device(device, fc, frame))
    return _frame(unit, fc, _bit_device(device, fc, frame))


def _frame(unit: int, fc: int, result: bytes | int) -> bytes:
    """The reply frame: the PDU's data after the function code, or an exception code."""
    if isinstance(result, int):
        return exception(unit, fc, result)
    return with_crc(bytes((unit, fc)) + result)


def _bit_span(address: int, count: int, bit_addressing: bool) -> tuple[int, int]:
    """(first register, registers spanned) of a bit access, as pymodbus's block computes them."""
    first = address // 16 if bit_addressing else address
    return first, (address % 16 + count + 15) // 16


def _write_multiple_ok(fc: int, frame: bytes) -> int | None:
    """The PDU checks of functions 15 and 16 before any block is touched (None: fine, else a code)."""
    count, byte_count = int.from_bytes(frame[4:6], "big"), frame[6]
    payload = len(frame) - 9
    if fc == 16:
        if not 1 <= count <= MAX_WRITE_REGISTERS or byte_count != 2 * count or payload != byte_count:
            return int(ExcCodes.ILLEGAL_VALUE)
        return None
    if not 1 <= count <= MAX_BITS:
        return int(ExcCodes.ILLEGAL_VALUE)  # pymodbus: 0x80 / 01 (see the module docstring)
    if byte_count != (count + 7) // 8 or payload != byte_count:
        return int(ExcCodes.ILLEGAL_VALUE)
    return None


def _register_device(console: ConsoleModel, fc: int, frame: bytes) -> bytes | int:
    """A native console (or microphone unit): registers 0 … REGISTER_SPACE - 1, no bit addressing."""
    address, count = _HEADER.unpack_from(frame, 2)
    if fc in (3, 4):
        if not 1 <= count <= MAX_READ_REGISTERS:
            return int(ExcCodes.ILLEGAL_VALUE)  # pymodbus: 0x80 / 01 (see the module docstring)
        values = console.read_registers(fc, address, count)
        if isinstance(values, ExcCodes):
            return int(values)
        return bytes((2 * count,)) + struct.pack(f">{count}H", *values)
    if fc == 6:
        done = console.write_registers(address, [count])  # the "count" field is the value
        if done is not None:
            return int(done)
        echo = console.read_registers(3, address, 1)  # the echo is the register read back, as pymodbus does
        if isinstance(echo, ExcCodes):
            return int(echo)
        return _HEADER.pack(address, echo[0])
    if fc == 16:
        bad = _write_multiple_ok(fc, frame)
        if bad is not None:
            return bad
        values = list(struct.unpack_from(f">{count}H", frame, 7))
        done = console.write_registers(address, values)
        return int(done) if done is not None else _HEADER.pack(address, count)
    # coils and discrete inputs: the console has none (01) once the access fits the block (else 02)
    if fc in (1, 2) and not 1 <= count <= MAX_BITS:
        return int(ExcCodes.ILLEGAL_VALUE)
    if fc == 15:
        bad = _write_multiple_ok(fc, frame)
        if bad is not None:
            return bad
    first, span = _bit_span(address, 1 if fc == 5 else count, False)
    return int(ExcCodes.ILLEGAL_ADDRESS if first + span > REGISTER_SPACE else ExcCodes.ILLEGAL_FUNCTION)


def _bit_device(module: BitDevice, fc: int, frame: bytes) -> bytes | int:
    """A generic DI/DO module: one bit-addressed register; functions 01, 02, 05 and 15."""
    address, count = _HEADER.unpack_from(frame, 2)
    if fc in (3, 4, 6, 16):
        if fc in (3, 4) and not 1 <= count <= MAX_READ_REGISTERS:
            return int(ExcCodes.ILLEGAL_VALUE)  # pymodbus: 0x80 / 01 (see the module docstring)
        if fc == 16:
            bad = _write_multiple_ok(fc, frame)
            if bad is not None:
                return bad
        n = 1 if fc == 6 else count
        return int(ExcCodes.ILLEGAL_ADDRESS if address + n > GENERIC_SPACE else ExcCodes.ILLEGAL_FUNCTION)
    if fc in (1, 2):
        if not 1 <= count <= MAX_BITS:
            return int(ExcCodes.ILLEGAL_VALUE)
        first, span = _bit_span(address, count, True)
        if first + span > GENERIC_SPACE:
            return int(ExcCodes.ILLEGAL_ADDRESS)
        bits = module.read_bits(fc, address, count)
        if isinstance(bits, ExcCodes):
            return int(bits)
        return _pack_bits(bits)
    if fc == 5:
        first, span = _bit_span(address, 1, True)
        if first + span > GENERIC_SPACE:
            return int(ExcCodes.ILLEGAL_ADDRESS)
        done = module.write_coils(address, [bool(count)])  # any value but 0 is "on", as pymodbus takes it
        if done is not None:
            return int(done)
        echo = module.read_bits(1, address, 1)  # read back for the echo, as pymodbus does
        if isinstance(echo, ExcCodes):
            return int(echo)
        return _HEADER.pack(address, 0xFF00 if echo[0] else 0)
    if fc == 15:
        bad = _write_multiple_ok(fc, frame)
        if bad is not None:
            return bad
        first, span = _bit_span(address, count, True)
        if first + span > GENERIC_SPACE:
            return int(ExcCodes.ILLEGAL_ADDRESS)
        data = int.from_bytes(frame[7:-2], "little")
        done = module.write_coils(address, [bool(data >> i & 1) for i in range(count)])
        return int(done) if done is not None else _HEADER.pack(address, count)
    return int(ExcCodes.ILLEGAL_FUNCTION)


def _pack_bits(bits: list[bool]) -> bytes:
    """Byte count and the bits, bit 0 of the first byte first."""
    value = 0
    for i, bit in enumerate(bits):
        if bit:
            value |= 1 << i
    nbytes = (len(bits) + 7) // 8
    return bytes((nbytes,)) + value.to_bytes(nbytes, "little")

"""Modbus RTU framing as a slave on the simulated line sees it: character time, the 3.5-character
silence, CRC-16, and the length of a request or a response from its function code.

Written here on its own, not imported from terminals.rtu, so that the simulator is an independent
implementation the controller's frames are checked against.
"""

from __future__ import annotations


def char_time(baud: int) -> float:
    """Seconds one character takes on the wire: 11 bits (start, 8 data, parity or 2nd stop, stop)."""
    return 11.0 / baud


def t35(baud: int) -> float:
    """The 3.5-character inter-frame silence; fixed at 1.75 ms above 19200 baud (the spec's advice)."""
    return 3.5 * char_time(baud) if baud <= 19200 else 0.00175


def crc16(data: bytes) -> bytes:
    """Modbus CRC-16 of ``data``, as the two bytes sent on the wire (low byte first)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def crc_ok(frame: bytes) -> bool:
    return len(frame) >= 4 and crc16(frame[:-2]) == frame[-2:]


def request_length(buf: bytes | bytearray) -> int | None:
    """Length of the request frame at the start of ``buf``: >0 known, 0 need more bytes, None unknown fc."""
    if len(buf) < 2:
        return 0
    fc = buf[1]
    if 1 <= fc <= 6:
        return 8
    if fc in (15, 16):
        return 0 if len(buf) < 7 else 9 + buf[6]
    return None


def response_length(buf: bytes | bytearray) -> int | None:
    """Length of the response frame at the start of ``buf`` (same convention as :func:`request_length`)."""
    if len(buf) < 2:
        return 0
    fc = buf[1]
    if fc & 0x80:
        return 5
    if 1 <= fc <= 4:
        return 0 if len(buf) < 3 else 5 + buf[2]
    if fc in (5, 6, 15, 16):
        return 8
    return None

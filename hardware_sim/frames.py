"""Modbus RTU framing as a slave on the simulated line sees it: character time, the 3.5-character
silence, and the length of a request or a response from its function code.

The framing is written here on its own, as a slave cuts frames (an unknown function code has no
length: the wire then waits for the silence), not taken from the controller's
``terminals.rtu.request_frame_length``, which sizes more function codes than a console implements.
The CRC is the project's table-driven one (:func:`terminals.rtu.crc16`, tested against literal
frames in ``tests/test_rtu.py``): the bit-by-bit CRC that was here cost 8 µs a frame, a quarter of
the simulator's whole time per poll.  What the simulator's frames are checked against is pymodbus
(``tests/test_sim_slave.py``), whose own CRC checks every request the wire forwards to it.
"""

from __future__ import annotations

from terminals.rtu import crc_ok

__all__ = ["char_time", "crc_ok", "request_length", "response_length", "t35"]


def char_time(baud: int) -> float:
    """Seconds one character takes on the wire: 11 bits (start, 8 data, parity or 2nd stop, stop)."""
    return 11.0 / baud


def t35(baud: int) -> float:
    """The 3.5-character inter-frame silence; fixed at 1.75 ms above 19200 baud (the spec's advice)."""
    return 3.5 * char_time(baud) if baud <= 19200 else 0.00175


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

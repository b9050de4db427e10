"""Fuzzing the RTU decoder (terminals.rtu): what a reply can be on a noisy RS-485 line.

For a request of every kind the controller sends (read registers 3/4, read bits 1/2, writes 5/6/15/16),
a reply is drawn as: the valid reply (built here byte by byte, with a bitwise CRC written in this
file, not rtu's tables), the valid reply with 1 to 3 bits flipped, cut short, cut short with a fresh
CRC, from another unit, an exception reply of any code, the valid reply with a byte count changed
and the CRC fixed, or random bytes.

Invariants:

* a parser returns a value only for a reply whose CRC is right, from the unit asked, of the function
  asked, of the length its byte count says; a valid reply round-trips (the registers or bits it was
  built from; a write's echo passes), and the length functions agree with its length;
* anything else raises ``rtu.FrameError`` (never another exception) with a ``kind`` from the known set;
  1 to 3 flipped bits are always a ``crc`` error (CRC-16 catches every error of up to 3 bits in a
  frame this short); another unit with a valid CRC is ``wrong_unit``; an exception reply is
  ``exception`` with its code;
* the stream-length functions return None, a length of 4..256, or raise ``FrameError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from fuzz_budget import budget
from hypothesis import given
from hypothesis import strategies as st
from test_rtu import bitwise_crc

from terminals import rtu

KINDS = {"crc", "truncated", "wrong_unit", "wrong_function", "bad_length", "echo", "unknown_function", "exception"}


def framed(body: bytes) -> bytes:
    return body + struct.pack("<H", bitwise_crc(body))


UNITS = st.integers(1, 247)


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[bytes, bytes, object]:
    """(request, its valid reply, what the parser must return)."""
    unit = draw(UNITS)
    kind = draw(st.sampled_from(["regs", "bits", "single", "coil", "multi", "coils"]))
    if kind == "regs":
        function = draw(st.sampled_from([3, 4]))
        values = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=125))
        request = rtu.read_registers(unit, draw(st.integers(0, 0x10000 - len(values))), len(values), function)
        reply = framed(bytes([unit, function, 2 * len(values)]) + struct.pack(f">{len(values)}H", *values))
        return request, reply, values
    if kind == "bits":
        function = draw(st.sampled_from([1, 2]))
        bits = draw(st.lists(st.booleans(), min_size=1, max_size=2000))
        request = rtu.read_bits(unit, draw(st.integers(0, 0x10000 - len(bits))), len(bits), function)
        packed = bytearray((len(bits) + 7) // 8)
        for i, on in enumerate(bits):
            packed[i // 8] |= on << (i % 8)
        # the unused high bits of the last byte are padding: whatever the device puts there is ignored
        if len(bits) % 8:
            packed[-1] |= draw(st.integers(0, 255)) & (0xFF << (len(bits) % 8)) & 0xFF
        return request, framed(bytes([unit, function, len(packed)]) + packed), bits
    address = draw(st.integers(0, 0xFF00))
    if kind == "single":
        request = rtu.write_register(unit, address, draw(st.integers(0, 0xFFFF)))
        return request, request, None  # the reply echoes the request
    if kind == "coil":
        request = rtu.write_coil(unit, address, draw(st.booleans()))
        return request, request, None
    if kind == "multi":
        values = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=123))
        request = rtu.write_registers(unit, address, values)
    else:
        bits = draw(st.lists(st.booleans(), min_size=1, max_size=1968))
        request = rtu.write_coils(unit, min(address, 0x10000 - len(bits)), bits)
    return request, framed(request[:6]), None  # the reply echoes address and quantity


def parser_of(request: bytes) -> Callable[[bytes, bytes], object]:
    return {1: rtu.parse_bits, 2: rtu.parse_bits, 3: rtu.parse_registers, 4: rtu.parse_registers}.get(
        request[1], rtu.check_write
    )


def refused(request: bytes, reply: bytes) -> rtu.FrameError:
    """The parser's FrameError for ``reply`` (failing the test if it returns or raises anything else)."""
    try:
        value = parser_of(request)(request, reply)
    except rtu.FrameError as exc:
        assert exc.kind in KINDS, exc.kind
        assert str(exc), "a FrameError without a message"
        return exc
    raise AssertionError(f"reply {reply.hex(' ')} to {request.hex(' ')} was taken: {value!r}")


def lengths_sane(buf: bytes) -> None:
    for length_of in (rtu.response_frame_length, rtu.request_frame_length):
        try:
            length = length_of(buf)
        except rtu.FrameError as exc:
            assert exc.kind in KINDS
            continue
        assert length is None or 4 <= length <= rtu.MAX_FRAME, length


@budget(300)
@given(exchange=exchanges())
def test_a_valid_reply_round_trips(exchange: tuple[bytes, bytes, object]) -> None:
    request, reply, expected = exchange
    assert rtu.crc16(reply[:-2]) == bitwise_crc(reply[:-2]) and rtu.crc_ok(reply)
    value = parser_of(request)(request, reply)
    assert value == expected  # check_write returns None
    assert rtu.expected_length(request) == len(reply)
    assert rtu.length_after_header(request, reply[:2]) == len(reply)
    assert rtu.response_frame_length(reply) == len(reply)
    assert rtu.request_frame_length(request) == len(request)


@budget(500)
@given(exchange=exchanges(), data=st.data())
def test_flipped_bits_are_a_crc_error(exchange: tuple[bytes, bytes, object], data: st.DataObject) -> None:
    request, reply, _ = exchange
    flips = data.draw(st.sets(st.integers(0, 8 * len(reply) - 1), min_size=1, max_size=3), label="bits flipped")
    spoilt = bytearray(reply)
    for bit in flips:
        spoilt[bit // 8] ^= 1 << (bit % 8)
    assert refused(request, bytes(spoilt)).kind == "crc"
    lengths_sane(bytes(spoilt))


@budget(500)
@given(exchange=exchanges(), data=st.data())
def test_a_short_reply_is_refused(exchange: tuple[bytes, bytes, object], data: st.DataObject) -> None:
    request, reply, _ = exchange
    cut = data.draw(st.integers(0, len(reply) - 1), label="bytes kept")
    short = reply[:cut]
    kind = refused(request, short).kind
    assert kind == "truncated" if cut < 5 else kind in ("crc", "truncated", "bad_length")
    if cut >= 3:  # the CRC made right for what is left: the byte count or the length still gives it away
        kind = refused(request, framed(reply[: cut - 2])).kind
        assert kind in ("truncated", "bad_length", "echo"), kind
    lengths_sane(short)


@budget(300)
@given(exchange=exchanges(), unit=st.integers(0, 255))
def test_a_reply_from_another_unit_is_refused(exchange: tuple[bytes, bytes, object], unit: int) -> None:
    request, reply, _ = exchange
    if unit == request[0]:
        return
    assert refused(request, framed(bytes([unit]) + reply[1:-2])).kind == "wrong_unit"


@budget(300)
@given(exchange=exchanges(), code=st.integers(0, 255), extra=st.binary(max_size=4))
def test_an_exception_reply_carries_its_code(exchange: tuple[bytes, bytes, object], code: int, extra: bytes) -> None:
    request, _, _ = exchange
    exc = refused(request, framed(bytes([request[0], request[1] | 0x80, code]) + extra))
    if extra:
        assert exc.kind == "bad_length"
        return
    assert isinstance(exc, rtu.ExceptionResponse) and exc.kind == "exception"
    assert (exc.unit, exc.function, exc.code) == (request[0], request[1], code)
    assert rtu.response_frame_length(bytes([request[0], request[1] | 0x80, code])) == rtu.EXCEPTION_LENGTH
    assert rtu.length_after_header(request, bytes([request[0], request[1] | 0x80])) == rtu.EXCEPTION_LENGTH


@budget(300)
@given(exchange=exchanges(), data=st.data())
def test_a_changed_header_with_a_valid_crc_is_refused(
    exchange: tuple[bytes, bytes, object], data: st.DataObject
) -> None:
    """Function code or byte count changed (or a write's echo), the CRC made right: a lie on the wire."""
    request, reply, _ = exchange
    body = bytearray(reply[:-2])
    at = data.draw(st.integers(1, min(5, len(body) - 1)), label="byte changed")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[at]), label="new value")
    if at == 1 and new == request[1] | 0x80:
        return  # an exception reply: tested above
    body[at] = new
    spoilt = framed(bytes(body))
    if request[1] in (1, 2, 3, 4) and at > 2:
        parser_of(request)(request, spoilt)  # register or bit data: any value is a valid reading
        return
    assert refused(request, spoilt).kind in ("wrong_function", "bad_length", "truncated", "echo")


@budget(1000)
@given(exchange=exchanges(), junk=st.binary(max_size=300), valid_crc=st.booleans())
def test_random_bytes_are_refused_as_frame_errors(
    exchange: tuple[bytes, bytes, object], junk: bytes, valid_crc: bool
) -> None:
    request, reply, _ = exchange
    if valid_crc:
        junk = framed(junk)
    if junk == reply:
        return
    try:
        parser_of(request)(request, junk)
    except rtu.FrameError as exc:
        assert exc.kind in KINDS
    else:  # taken: then it is a well-formed reply to this request
        assert rtu.crc_ok(junk) and junk[0] == request[0] and junk[1] == request[1]
        assert len(junk) == rtu.expected_length(request)
    lengths_sane(junk)
    if len(junk) >= 2:
        length = rtu.length_after_header(request, junk[:2])
        assert length in (rtu.EXCEPTION_LENGTH, rtu.expected_length(request))

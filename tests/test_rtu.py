"""terminals.rtu: literal frames, cross-checks against pymodbus 3.16, every error class, fuzzing, stream framing."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ModbusPDU
from pymodbus.pdu import ExceptionResponse as PmExceptionResponse
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadCoilsResponse,
    ReadDiscreteInputsRequest,
    ReadDiscreteInputsResponse,
    WriteMultipleCoilsRequest,
    WriteMultipleCoilsResponse,
    WriteSingleCoilRequest,
    WriteSingleCoilResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadHoldingRegistersResponse,
    ReadInputRegistersRequest,
    ReadInputRegistersResponse,
    WriteMultipleRegistersRequest,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterRequest,
    WriteSingleRegisterResponse,
)

from terminals import rtu
from terminals.rtu import (
    EXCEPTION_LENGTH,
    BadLength,
    CrcError,
    EchoMismatch,
    ExceptionResponse,
    FrameError,
    Truncated,
    UnknownFunction,
    WrongFunction,
    WrongUnit,
    check_write,
    crc16,
    crc_ok,
    expected_length,
    length_after_header,
    parse_bits,
    parse_registers,
    read_bits,
    read_registers,
    request_frame_length,
    response_frame_length,
    with_crc,
    write_coil,
    write_coils,
    write_register,
    write_registers,
)

H = bytes.fromhex

# pymodbus: one framer to build frames (encoding does not depend on the side), one server-side decoder
PM_BUILD = FramerRTU(DecodePDU(is_server=False))
PM_SERVER = FramerRTU(DecodePDU(is_server=True))


def pm_frame(pdu: ModbusPDU) -> bytes:
    return PM_BUILD.buildFrame(pdu)


def pm_decode_request(frame: bytes) -> ModbusPDU:
    used, pdu = PM_SERVER.handleFrame(frame, 0, 0)
    assert used == len(frame)
    assert pdu is not None
    return pdu


def bitwise_crc(data: bytes) -> int:
    """Textbook bit-at-a-time Modbus CRC, the reference for the table-driven one."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


# --- literal frames -------------------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x4B37
    assert crc16(memoryview(b"123456789")) == 0x4B37
    assert crc16(b"") == 0xFFFF


@pytest.mark.parametrize("length", [*range(0, 20), 255, 256, 257, 300, 513])
def test_crc_matches_bitwise_reference(length: int) -> None:
    rng = random.Random(length)
    for _ in range(20):
        data = rng.randbytes(length)
        assert crc16(data) == bitwise_crc(data)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (read_registers(1, 0, 10, function=3), "01 03 00 00 00 0A C5 CD"),
        (read_registers(17, 8, 1), "11 04 00 08 00 01 B2 98"),
        (read_registers(17, 107, 3, function=3), "11 03 00 6B 00 03 76 87"),
        (write_register(17, 1, 3), "11 06 00 01 00 03 9A 9B"),
        (read_bits(17, 0x13, 0x25, function=1), "11 01 00 13 00 25 0E 84"),
        (read_bits(17, 0xC4, 0x16), "11 02 00 C4 00 16 BA A9"),
        (write_coil(17, 0xAC, True), "11 05 00 AC FF 00 4E 8B"),
        (write_coils(17, 0x13, [True, False, True, True, False, False, True, True, True, False]),
         "11 0F 00 13 00 0A 02 CD 01 BF 0B"),
        (write_registers(17, 1, [0x000A, 0x0102]), "11 10 00 01 00 02 04 00 0A 01 02 C6 F0"),
    ],
)  # fmt: skip
def test_literal_requests(frame: bytes, expected: str) -> None:
    assert frame == H(expected)
    assert crc_ok(frame)


def test_with_crc_is_little_endian() -> None:
    assert with_crc(H("01 03 00 00 00 0A")) == H("01 03 00 00 00 0A C5 CD")
    assert crc16(H("01 03 00 00 00 0A")) == 0xCDC5


def test_literal_responses() -> None:
    # Modbus spec-style examples: read holding registers 107..109 of unit 17
    request = read_registers(17, 107, 3, function=3)
    assert parse_registers(request, with_crc(H("11 03 06 AE 41 56 52 43 40"))) == [0xAE41, 0x5652, 0x4340]
    # the controller's idle poll: 4 input registers
    poll = read_registers(5, 0, 4)
    assert parse_registers(poll, with_crc(H("05 04 08 80 00 00 07 02 03 00 01"))) == [0x8000, 7, 0x0203, 1]
    # read coils 20..56 of unit 17: CD 6B B2 0E 1B, 37 bits
    coils = read_bits(17, 0x13, 0x25, function=1)
    bits = parse_bits(coils, with_crc(H("11 01 05 CD 6B B2 0E 1B")))
    assert len(bits) == 37
    assert bits[:8] == [True, False, True, True, False, False, True, True]
    assert bits[32:] == [True, True, False, True, True]
    check_write(write_register(17, 1, 3), H("11 06 00 01 00 03 9A 9B"))
    check_write(write_registers(17, 1, [10, 0x102]), with_crc(H("11 10 00 01 00 02")))


def test_crc_ok() -> None:
    assert crc_ok(H("01 03 00 00 00 0A C5 CD"))
    assert not crc_ok(H("01 03 00 00 00 0A CD C5"))
    assert not crc_ok(b"")
    assert not crc_ok(b"\xff\xff")  # a bare CRC of nothing is not a frame


# --- request builders: validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: read_registers(0, 0, 1), "unit 0"),
        (lambda: read_registers(248, 0, 1), "unit 248"),
        (lambda: read_registers(1, 0, 0), "count 0"),
        (lambda: read_registers(1, 0, 126), "count 126"),
        (lambda: read_registers(1, 0, 1, function=6), "function 6"),
        (lambda: read_registers(1, -1, 1), "address -1"),
        (lambda: read_registers(1, 65536, 1), "address 65536"),
        (lambda: read_registers(1, 65535, 2), "past address 65535"),
        (lambda: read_bits(0, 0, 1), "unit 0"),
        (lambda: read_bits(1, 0, 2001), "count 2001"),
        (lambda: read_bits(1, 0, 8, function=3), "function 3"),
        (lambda: write_register(-1, 0, 0), "unit -1"),
        (lambda: write_register(1, 0, 65536), "value 65536"),
        (lambda: write_register(1, 0, -1), "value -1"),
        (lambda: write_registers(1, 0, []), "count 0"),
        (lambda: write_registers(1, 0, [0] * 124), "count 124"),
        (lambda: write_registers(1, 0, [1, 70000]), "0..65535"),
        (lambda: write_coils(1, 0, []), "count 0"),
        (lambda: write_coils(1, 0, [True] * 1969), "count 1969"),
        (lambda: write_coil(248, 0, True), "unit 248"),
    ],
)
def test_builders_validate(call: Callable[[], bytes], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_broadcast_writes_allowed() -> None:
    assert write_register(0, 260, 2)[0] == 0
    assert write_registers(0, 272, [0] * 16)[0] == 0
    assert write_coil(0, 1, False)[0] == 0
    assert write_coils(0, 1, [True])[0] == 0


# --- pymodbus cross-checks ----------------------------------------------------------------------------------


def _random_cases(seed: int) -> random.Random:
    return random.Random(seed)


def test_read_requests_equal_pymodbus() -> None:
    rng = _random_cases(1)
    for _ in range(400):
        unit = rng.randint(1, 247)
        count = rng.randint(1, 125)
        address = rng.randint(0, 0x10000 - count)
        for function, cls in ((3, ReadHoldingRegistersRequest), (4, ReadInputRegistersRequest)):
            ours = read_registers(unit, address, count, function=function)
            assert ours == pm_frame(cls(address=address, count=count, dev_id=unit))
            pdu = pm_decode_request(ours)
            assert (type(pdu), pdu.dev_id, pdu.address, pdu.count) == (cls, unit, address, count)
            assert expected_length(ours) == 5 + 2 * count
        count = rng.randint(1, 2000)
        address = rng.randint(0, 0x10000 - count)
        for function, bcls in ((1, ReadCoilsRequest), (2, ReadDiscreteInputsRequest)):
            ours = read_bits(unit, address, count, function=function)
            assert ours == pm_frame(bcls(address=address, count=count, dev_id=unit))
            pdu = pm_decode_request(ours)
            assert (type(pdu), pdu.dev_id, pdu.address, pdu.count) == (bcls, unit, address, count)
            assert expected_length(ours) == 5 + (count + 7) // 8


def test_write_requests_equal_pymodbus() -> None:
    rng = _random_cases(2)
    for _ in range(400):
        unit = rng.randint(0, 247)
        address = rng.randint(0, 0xFFFF)
        value = rng.randint(0, 0xFFFF)
        ours = write_register(unit, address, value)
        assert ours == pm_frame(WriteSingleRegisterRequest(address=address, registers=[value], dev_id=unit))
        pdu = pm_decode_request(ours)
        assert (type(pdu), pdu.dev_id, pdu.address, list(pdu.registers)) == (
            WriteSingleRegisterRequest,
            unit,
            address,
            [value],
        )

        on = rng.random() < 0.5
        ours = write_coil(unit, address, on)
        assert ours == pm_frame(WriteSingleCoilRequest(address=address, bits=[on], dev_id=unit))
        pdu = pm_decode_request(ours)
        assert (type(pdu), pdu.dev_id, pdu.address, list(pdu.bits)) == (WriteSingleCoilRequest, unit, address, [on])

        count = rng.randint(1, 123)
        address = rng.randint(0, 0x10000 - count)
        values = [rng.randint(0, 0xFFFF) for _ in range(count)]
        ours = write_registers(unit, address, values)
        assert ours == pm_frame(WriteMultipleRegistersRequest(address=address, registers=values, dev_id=unit))
        pdu = pm_decode_request(ours)
        assert (type(pdu), pdu.dev_id, pdu.address, pdu.count, list(pdu.registers)) == (
            WriteMultipleRegistersRequest,
            unit,
            address,
            count,
            values,
        )

        count = rng.randint(1, 1968)
        address = rng.randint(0, 0x10000 - count)
        bits = [rng.random() < 0.5 for _ in range(count)]
        ours = write_coils(unit, address, bits)
        assert ours == pm_frame(WriteMultipleCoilsRequest(address=address, bits=bits, dev_id=unit))
        pdu = pm_decode_request(ours)
        assert (type(pdu), pdu.dev_id, pdu.address, pdu.count, list(pdu.bits)) == (
            WriteMultipleCoilsRequest,
            unit,
            address,
            count,
            bits,
        )
        for frame in (write_register(unit, 1, 2), write_coil(unit, 1, True), ours):
            assert expected_length(frame) == 8


def test_parse_pymodbus_register_responses() -> None:
    rng = _random_cases(3)
    for _ in range(400):
        unit = rng.randint(1, 247)
        count = rng.randint(1, 125)
        registers = [rng.randint(0, 0xFFFF) for _ in range(count)]
        for function, cls in ((3, ReadHoldingRegistersResponse), (4, ReadInputRegistersResponse)):
            request = read_registers(unit, rng.randint(0, 0x10000 - count), count, function=function)
            response = pm_frame(cls(registers=registers, dev_id=unit))
            assert len(response) == expected_length(request)
            assert parse_registers(request, response) == registers


def test_parse_pymodbus_bit_responses() -> None:
    rng = _random_cases(4)
    for _ in range(400):
        unit = rng.randint(1, 247)
        count = rng.randint(1, 2000)
        bits = [rng.random() < 0.5 for _ in range(count)]
        for function, cls in ((1, ReadCoilsResponse), (2, ReadDiscreteInputsResponse)):
            request = read_bits(unit, rng.randint(0, 0x10000 - count), count, function=function)
            response = pm_frame(cls(bits=bits, dev_id=unit))
            assert len(response) == expected_length(request)
            assert parse_bits(request, response) == bits


def test_parse_pymodbus_write_responses() -> None:
    rng = _random_cases(5)
    for _ in range(300):
        unit = rng.randint(1, 247)
        address = rng.randint(0, 0xFFFF)
        value = rng.randint(0, 0xFFFF)
        on = rng.random() < 0.5
        count = rng.randint(1, min(123, 0x10000 - address))
        cases: list[tuple[bytes, ModbusPDU]] = [
            (write_register(unit, address, value), WriteSingleRegisterResponse(address=address, registers=[value])),
            (write_coil(unit, address, on), WriteSingleCoilResponse(address=address, bits=[on])),
            (write_registers(unit, address, [7] * count), WriteMultipleRegistersResponse(address=address, count=count)),
            (write_coils(unit, address, [on] * count), WriteMultipleCoilsResponse(address=address, count=count)),
        ]
        for request, pdu in cases:
            pdu.dev_id = unit  # pymodbus's write responses default to dev_id 0 (see the report)
            check_write(request, pm_frame(pdu))
        # a wrong echo from pymodbus: another value / address / quantity
        bad = WriteSingleRegisterResponse(address=address, registers=[value ^ 1], dev_id=unit)
        with pytest.raises(EchoMismatch):
            check_write(write_register(unit, address, value), pm_frame(bad))
        bad = WriteMultipleRegistersResponse(address=address ^ 1, count=count, dev_id=unit)
        with pytest.raises(EchoMismatch):
            check_write(write_registers(unit, address, [7] * count), pm_frame(bad))


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6, 8, 10, 11])
def test_parse_pymodbus_exception_responses(code: int) -> None:
    requests = [
        read_registers(9, 0, 4),
        read_registers(9, 256, 4, function=3),
        read_bits(9, 0, 7),
        read_bits(9, 0, 7, function=1),
        write_register(9, 260, 2),
        write_registers(9, 257, [1, 2, 3, 4]),
        write_coil(9, 6, True),
        write_coils(9, 0, [True] * 7),
    ]
    parsers: dict[int, Callable[[bytes, bytes], object]] = {
        1: parse_bits,
        2: parse_bits,
        3: parse_registers,
        4: parse_registers,
        5: check_write,
        6: check_write,
        15: check_write,
        16: check_write,
    }
    for request in requests:
        response = pm_frame(PmExceptionResponse(request[1], code, device_id=9))
        assert len(response) == EXCEPTION_LENGTH == length_after_header(request, response[:2])
        assert response_frame_length(response) == EXCEPTION_LENGTH
        with pytest.raises(ExceptionResponse) as caught:
            parsers[request[1]](request, response)
        assert caught.value.code == code
        assert caught.value.kind == "exception"
        assert rtu.EXCEPTION_NAMES[code] in str(caught.value)


def test_exception_messages() -> None:
    names = {1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "device failure"}
    names |= {5: "acknowledge", 6: "busy"}
    request = read_registers(3, 0, 4)
    for code, name in names.items():
        with pytest.raises(ExceptionResponse, match=name):
            parse_registers(request, with_crc(bytes([3, 0x84, code])))
    with pytest.raises(ExceptionResponse, match="unknown") as caught:
        parse_registers(request, with_crc(bytes([3, 0x84, 0x77])))
    assert caught.value.code == 0x77


# --- every error class ---------------------------------------------------------------------------------------

POLL = read_registers(5, 0, 4)
POLL_REPLY = with_crc(H("05 04 08 00 01 00 02 00 03 00 04"))
BITS = read_bits(5, 0, 11)
BITS_REPLY = with_crc(H("05 02 02 FF 07"))
WRITE = write_registers(5, 257, [1, 2, 3, 4])
WRITE_REPLY = with_crc(WRITE[:6])
SINGLE = write_register(5, 260, 0x0302)
SINGLE_REPLY = SINGLE

GOOD: list[tuple[Callable[[bytes, bytes], object], bytes, bytes]] = [
    (parse_registers, POLL, POLL_REPLY),
    (parse_bits, BITS, BITS_REPLY),
    (check_write, WRITE, WRITE_REPLY),
    (check_write, SINGLE, SINGLE_REPLY),
    (check_write, write_coil(5, 3, True), write_coil(5, 3, True)),
    (check_write, write_coils(5, 0, [True] * 9), with_crc(write_coils(5, 0, [True] * 9)[:6])),
]


def test_good_replies() -> None:
    assert parse_registers(POLL, POLL_REPLY) == [1, 2, 3, 4]
    assert parse_bits(BITS, BITS_REPLY) == [True] * 8 + [True, True, True]
    for parse, request, response in GOOD:
        parse(request, response)


@pytest.mark.parametrize(("parse", "request_", "response"), GOOD)
def test_flipped_bit_anywhere_is_a_crc_error(
    parse: Callable[[bytes, bytes], object], request_: bytes, response: bytes
) -> None:
    for position in range(len(response) * 8):
        damaged = bytearray(response)
        damaged[position // 8] ^= 1 << (position % 8)
        with pytest.raises(CrcError) as caught:
            parse(request_, bytes(damaged))
        assert caught.value.kind == "crc"


@pytest.mark.parametrize(("parse", "request_", "response"), GOOD)
def test_truncation_at_every_length(parse: Callable[[bytes, bytes], object], request_: bytes, response: bytes) -> None:
    for cut in range(len(response)):
        with pytest.raises(FrameError) as caught:
            parse(request_, response[:cut])
        # fewer than 5 bytes is Truncated; beyond that the tail is not a CRC of the rest
        assert isinstance(caught.value, Truncated if cut < 5 else (CrcError, Truncated))


def test_truncated_with_a_valid_crc() -> None:
    # a short frame whose own CRC is right: the byte count is right, the data is missing
    with pytest.raises(Truncated):
        parse_registers(POLL, with_crc(POLL_REPLY[:7]))
    with pytest.raises(Truncated):
        check_write(WRITE, with_crc(WRITE[:4]))


def test_too_long_is_bad_length() -> None:
    with pytest.raises(BadLength):
        parse_registers(POLL, with_crc(POLL_REPLY[:-2] + b"\0\0"))
    with pytest.raises(BadLength):
        parse_bits(BITS, with_crc(BITS_REPLY[:-2] + b"\0"))
    with pytest.raises(BadLength):
        check_write(WRITE, with_crc(WRITE_REPLY[:-2] + b"\0"))
    with pytest.raises(BadLength):  # an exception reply has exactly 5 bytes
        parse_registers(POLL, with_crc(H("05 84 02 00")))


@pytest.mark.parametrize(("parse", "request_", "response"), GOOD)
def test_wrong_unit(parse: Callable[[bytes, bytes], object], request_: bytes, response: bytes) -> None:
    for unit in (0, 4, 6, 247, 255):
        with pytest.raises(WrongUnit) as caught:
            parse(request_, with_crc(bytes([unit]) + response[1:-2]))
        assert caught.value.kind == "wrong_unit"


@pytest.mark.parametrize(("parse", "request_", "response"), GOOD)
def test_wrong_function(parse: Callable[[bytes, bytes], object], request_: bytes, response: bytes) -> None:
    for function in range(256):
        if function in (request_[1], request_[1] | 0x80):
            continue
        with pytest.raises(WrongFunction) as caught:
            parse(request_, with_crc(response[:1] + bytes([function]) + response[2:-2]))
        assert caught.value.kind == "wrong_function"


def test_byte_count_mismatch() -> None:
    for byte_count in (0, 2, 6, 7, 9, 10, 255):
        body = H("05 04") + bytes([byte_count]) + POLL_REPLY[3:-2]
        with pytest.raises(BadLength) as caught:
            parse_registers(POLL, with_crc(body))
        assert caught.value.kind == "bad_length"
    for byte_count in (0, 1, 3, 255):
        with pytest.raises(BadLength):
            parse_bits(BITS, with_crc(H("05 02") + bytes([byte_count]) + H("FF 07")))


def test_write_echo_mismatch() -> None:
    for position in range(2, 6):
        for request, reply in ((WRITE, WRITE_REPLY), (SINGLE, SINGLE_REPLY)):
            wrong = bytearray(reply[:-2])
            wrong[position] ^= 0x10
            with pytest.raises(EchoMismatch) as caught:
                check_write(request, with_crc(bytes(wrong)))
            assert caught.value.kind == "echo"


def test_kinds_and_hierarchy() -> None:
    kinds = {
        CrcError: "crc",
        Truncated: "truncated",
        WrongUnit: "wrong_unit",
        WrongFunction: "wrong_function",
        BadLength: "bad_length",
        ExceptionResponse: "exception",
        EchoMismatch: "echo",
        UnknownFunction: "unknown_function",
    }
    for cls, kind in kinds.items():
        assert issubclass(cls, FrameError)
        assert cls.kind == kind


def test_check_order_crc_before_unit_and_exception() -> None:
    # a wrong unit with a bad CRC is a CRC error (the unit byte itself may be the damaged one)
    damaged = bytearray(with_crc(H("06 84 02")))
    damaged[-1] ^= 1
    with pytest.raises(CrcError):
        parse_registers(POLL, bytes(damaged))
    # a wrong unit's exception is WrongUnit, not ExceptionResponse
    with pytest.raises(WrongUnit):
        parse_registers(POLL, with_crc(H("06 84 02")))
    # an exception for another function is WrongFunction
    with pytest.raises(WrongFunction):
        parse_registers(POLL, with_crc(H("05 83 02")))


def test_bad_requests_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        parse_registers(b"\x05\x04", POLL_REPLY)
    with pytest.raises(ValueError):
        parse_registers(BITS, with_crc(H("05 02 02 FF 07")))
    with pytest.raises(ValueError):
        parse_bits(POLL, POLL_REPLY)
    with pytest.raises(ValueError):
        check_write(POLL, POLL_REPLY)
    with pytest.raises(ValueError):
        expected_length(with_crc(H("05 2B 0E 01 00")[:-1]))
    with pytest.raises(ValueError):
        length_after_header(POLL, b"\x05")


def test_length_after_header() -> None:
    assert length_after_header(POLL, POLL_REPLY[:2]) == len(POLL_REPLY) == 13
    assert length_after_header(POLL, H("05 84")) == 5
    assert length_after_header(BITS, BITS_REPLY[:2]) == len(BITS_REPLY) == 7
    assert length_after_header(WRITE, WRITE_REPLY[:2]) == 8


# --- fuzz: garbage never escapes as anything but FrameError ----------------------------------------------------

UNITS = st.integers(1, 247)
WORDS = st.integers(0, 0xFFFF)
REQUESTS = st.one_of(
    st.builds(read_registers, UNITS, st.integers(0, 0xFF00), st.integers(1, 125), st.sampled_from([3, 4])),
    st.builds(read_bits, UNITS, st.integers(0, 0xF800), st.integers(1, 2000), st.sampled_from([1, 2])),
    st.builds(write_register, UNITS, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.builds(write_registers, UNITS, st.integers(0, 0xFF00), st.lists(WORDS, min_size=1, max_size=123)),
    st.builds(write_coil, UNITS, st.integers(0, 0xFFFF), st.booleans()),
    st.builds(write_coils, UNITS, st.integers(0, 0xF800), st.lists(st.booleans(), min_size=1, max_size=1968)),
)
PARSERS: list[Callable[[bytes, bytes], object]] = [parse_registers, parse_bits, check_write]


def _parsers_for(request: bytes) -> list[Callable[[bytes, bytes], object]]:
    return [{1: parse_bits, 2: parse_bits, 3: parse_registers, 4: parse_registers}.get(request[1], check_write)]


@st.composite
def garbage_replies(draw: st.DrawFn, request: bytes) -> bytes:
    """Raw garbage, or garbage behind the right unit/function (and maybe byte count) with a valid CRC."""
    tail = draw(st.binary(max_size=300))
    style = draw(st.integers(0, 3))
    if style == 0:
        return tail
    head = request[:1] + bytes([draw(st.sampled_from([request[1], request[1] | 0x80, draw(st.integers(0, 255))]))])
    if style == 2:
        head += bytes([draw(st.integers(0, 255))])
    return with_crc(head + tail[: draw(st.integers(0, 260))]) if style != 3 else head + tail


@settings(max_examples=1500, deadline=None)
@given(data=st.data(), request=REQUESTS)
def test_fuzz_parsers(data: st.DataObject, request: bytes) -> None:
    response = data.draw(garbage_replies(request))
    for parse in _parsers_for(request):
        with contextlib.suppress(FrameError):
            parse(request, response)
    for length_of in (response_frame_length, request_frame_length):
        try:
            length = length_of(response)
        except FrameError:
            continue
        assert length is None or 4 <= length <= rtu.MAX_FRAME


@settings(max_examples=1500, deadline=None)
@given(buf=st.binary(max_size=300))
def test_fuzz_frame_length(buf: bytes) -> None:
    for length_of in (response_frame_length, request_frame_length):
        try:
            length = length_of(buf)
        except FrameError:
            continue
        assert length is None or 4 <= length <= rtu.MAX_FRAME
        if length is None:
            assert len(buf) < 11


@settings(max_examples=500, deadline=None)
@given(request=REQUESTS, data=st.data())
def test_fuzz_wrong_parser(request: bytes, data: st.DataObject) -> None:
    """Feeding a valid reply to a parser for another kind of request is a FrameError or a ValueError, nothing else."""
    response = data.draw(garbage_replies(request))
    for parse in PARSERS:
        with contextlib.suppress(FrameError, ValueError):
            parse(request, response)


# --- frame boundaries on a stream --------------------------------------------------------------------------------


def _split_stream(stream: bytes, cuts: list[int], length_of: Callable[[bytes], int | None]) -> list[bytes]:
    """Feed ``stream`` in chunks ending at ``cuts``; cut frames off the front as soon as their length is known."""
    frames: list[bytes] = []
    buf = b""
    start = 0
    for end in [*cuts, len(stream)]:
        buf += stream[start:end]
        start = end
        while True:
            length = length_of(buf)
            if length is None or length > len(buf):
                break
            frames.append(buf[:length])
            buf = buf[length:]
    assert buf == b""
    return frames


REQUEST_STREAM = [
    read_registers(1, 0, 4),
    write_registers(2, 257, [1, 2, 3, 4]),
    read_bits(3, 0, 7),
    write_coils(4, 0, [True, False] * 9),
    write_register(0, 260, 2),
    write_coil(5, 6, True),
    read_registers(6, 16, 16, function=3),
    with_crc(H("07 17 00 00 00 02 01 00 00 02 04 00 01 00 02")),  # fc 23 read/write multiple
    with_crc(H("08 16 00 04 00 F2 00 25")),  # fc 22 mask write
    with_crc(H("09 07")),  # fc 7 read exception status
    with_crc(H("0A 08 00 00 A5 37")),  # fc 8 diagnostics, return query data
    write_registers(11, 272, list(range(16))),
]
RESPONSE_STREAM = [
    POLL_REPLY,
    WRITE_REPLY,
    BITS_REPLY,
    with_crc(H("05 83 02")),
    SINGLE_REPLY,
    pm_frame(ReadHoldingRegistersResponse(registers=list(range(125)), dev_id=7)),
    pm_frame(ReadCoilsResponse(bits=[True] * 2000, dev_id=8)),
    with_crc(H("07 17 04 00 01 00 02")),
    with_crc(H("09 07 6D")),
    with_crc(H("0A 08 00 00 A5 37")),
    with_crc(H("0B 18 00 06 00 02 01 B8 12 84")),  # fc 24 read FIFO queue
]


@pytest.mark.parametrize(
    ("frames", "length_of"), [(REQUEST_STREAM, request_frame_length), (RESPONSE_STREAM, response_frame_length)]
)
def test_stream_split_at_every_position(frames: list[bytes], length_of: Callable[[bytes], int | None]) -> None:
    for frame in frames:
        assert crc_ok(frame)
        assert length_of(frame) == len(frame)
    stream = b"".join(frames)
    assert _split_stream(stream, [], length_of) == frames
    for cut in range(len(stream) + 1):
        assert _split_stream(stream, [cut], length_of) == frames
    assert _split_stream(stream, list(range(len(stream))), length_of) == frames  # byte by byte
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(len(stream)), 5))
        assert _split_stream(stream, cuts, length_of) == frames


def test_frame_length_needs_more_bytes() -> None:
    assert request_frame_length(b"") is None
    assert request_frame_length(b"\x01") is None
    assert request_frame_length(b"\x01\x04") == 8
    assert request_frame_length(b"\x01\x10\x01\x01\x00\x04") is None
    assert request_frame_length(b"\x01\x10\x01\x01\x00\x04\x08") == 17
    assert response_frame_length(b"\x01") is None
    assert response_frame_length(b"\x01\x04") is None
    assert response_frame_length(b"\x01\x04\x08") == 13
    assert response_frame_length(b"\x01\x84") == 5
    assert response_frame_length(b"\x01\x10") == 8


def test_frame_length_unknown_function() -> None:
    for function in (0, 9, 0x2B, 0x41, 0x7F, 0x80, 0x84):
        with pytest.raises(UnknownFunction):
            request_frame_length(bytes([1, function]))
    for function in (0, 9, 0x2B, 0x41):
        with pytest.raises(FrameError):
            response_frame_length(bytes([1, function]))
    with pytest.raises(BadLength):  # 255 bytes of registers cannot fit a 256-byte frame
        request_frame_length(H("01 10 00 00 00 7F FF"))


def test_frame_length_matches_pymodbus() -> None:
    """Our stream sizing agrees with pymodbus's own RTU frame-size tables for the functions both know."""
    for frame in REQUEST_STREAM:
        pdu_class = DecodePDU(is_server=True).lookupPduClass(frame)
        assert pdu_class is not None
        assert pdu_class.calculateRtuFrameSize(frame) == request_frame_length(frame) == len(frame)
    for frame in RESPONSE_STREAM:
        pdu_class = DecodePDU(is_server=False).lookupPduClass(frame)
        if pdu_class is None or frame[1] == 24:  # pymodbus cannot size a FIFO-queue reply
            continue
        assert pdu_class.calculateRtuFrameSize(frame) == response_frame_length(frame) == len(frame)

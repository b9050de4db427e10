"""The consoles' direct answers (hardware_sim.slave) against pymodbus's, byte for byte.

Two simulators of the same council run side by side: one whose consoles answer through the project's
RTU codec in the simulator's loop (the default), one where a pymodbus 3.16 server answers for them
(``pymodbus=True``, the reference).  Every request below goes to both over their ptys, as raw bytes
written here; the replies must be the same bytes (or both none), and the consoles must be left in the
same state after each.  The requests cover every function code the consoles and the generic modules
implement, every exception they give (functions they lack, addresses past the map or past pymodbus's
register block, bad counts and byte counts), the odd values pymodbus accepts (a coil written with
0x1234), and broadcasts of MODE and TEXT.

The one difference on purpose: registers read in a count of 0 or over 125, coils or discrete inputs
read, or coils written, in a count of 0 or over 2000.  pymodbus cannot decode such a request and
answers exception 01 with function code 0x80; the direct path answers exception 03 under the
request's function, as the Modbus application protocol says.  The test asserts exactly that
difference, so it fails if either side changes.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
from test_sim import DEPUTIES

from chamber.config import Config, load_config
from chamber.core.values import Key
from hardware_sim.frames import response_length
from hardware_sim.simulator import Simulator
from terminals import registers as r
from terminals.rtu import with_crc

CONFIG = """
[council]
name = "Рада для порівняння"
composition = 5

[[lines]]
id = "A"
port = "/dev/null-A"
baud = 19200

[[seats]]
id = 1
line = "A"
unit = 1
presence_sensor = true

[[seats]]
id = 2
line = "A"
unit = 2
mic_unit = 20

[[seats]]
id = 3
line = "A"
unit = 3
chair = true

[[seats]]
id = 4
line = "A"
unit = 4
profile = "generic"
presence_sensor = true

[[seats]]
id = 5
line = "A"
unit = 5
profile = "generic"
"""
CONFIG += (
    DEPUTIES
    + """
[[deputies]]
id = 5
full_name = "П'ять П'ятий"
cards = ["99AABBCC"]
seat = 5
"""
)

NO_REPLY_S = 0.05  # after the simulator has taken the request: time enough for bytes that should not come
REPLY_TIMEOUT_S = 5.0  # a reply that is due may be slow on a loaded machine (pymodbus's side above all)


def pdu(unit: int, fc: int, *fields: int, data: bytes = b"") -> bytes:
    """A request frame: unit, function, 16-bit fields, then raw data, with its CRC."""
    return with_crc(bytes((unit, fc)) + struct.pack(f">{len(fields)}H", *fields) + data)


def write_regs(
    unit: int, address: int, values: list[int], count: int | None = None, nbytes: int | None = None
) -> bytes:
    """Function 16, with the count and byte count fields overridable to make bad requests."""
    n = len(values) if count is None else count
    body = struct.pack(f">{len(values)}H", *values)
    return with_crc(
        bytes((unit, 16)) + struct.pack(">HHB", address, n, 2 * len(values) if nbytes is None else nbytes) + body
    )


def write_coils(unit: int, address: int, count: int, packed: bytes, nbytes: int | None = None) -> bytes:
    head = struct.pack(">HHB", address, count, len(packed) if nbytes is None else nbytes)
    return with_crc(bytes((unit, 15)) + head + packed)


def requests() -> list[bytes]:
    """Every request of the comparison, in order (writes change what later reads see)."""
    out: list[bytes] = []
    native = (1, 2, 3, 20)
    for unit in native:
        for address, count in [
            (0, 4), (0, 70), (16, 16), (32, 6), (48, 7), (64, 6), (69, 1), (60, 20), (70, 1),
            (0, 125), (290, 20), (299, 1), (300, 1), (65535, 1), (256, 4),
        ]:  # fmt: skip
            out.append(pdu(unit, 4, address, count))
        for address, count in [(256, 5), (272, 16), (256, 32), (255, 1), (288, 1), (299, 2), (0, 4), (256, 125)]:
            out.append(pdu(unit, 3, address, count))
        for address, value in [
            (r.HR_LEDS, int(r.Led.YES | r.Led.REGISTERED)), (r.HR_PROPOSAL_LEDS, 0b101), (r.HR_MIC, 1),
            (r.HR_MIC, 7), (r.HR_MODE, r.mode_word(r.Mode.VOTE_YES_NO)), (r.HR_TEXT, 0xC0C1), (261, 5),
            (287, 0x4142), (288, 1), (0, 1), (300, 1), (65535, 0xFFFF), (r.HR_ACK, 0), (r.HR_ACK, 1), (r.HR_ACK, 9),
        ]:  # fmt: skip
            out.append(pdu(unit, 6, address, value))
        out += [
            write_regs(unit, r.OUTPUTS_START, [int(r.Led.NO), 0b11, 0, r.mode_word(r.Mode.VOTE_RATING, 3)]),
            write_regs(unit, r.HR_TEXT, r.encode_text("Питання 7: бюджет")),
            write_regs(unit, r.HR_ACK, list(range(32))),
            write_regs(unit, r.HR_ACK_BOOT, [0, 1, int(r.Led.NO)]),  # ACK_BOOT: another boot's ACK
            write_regs(unit, r.HR_ACK_BOOT, [1, 1]),  # the console's own boot (1: its first power-up)
            write_regs(unit, 286, [1, 2, 3]),  # past HR 287
            write_regs(unit, 299, [1, 2]),  # past pymodbus's block as well
            write_regs(unit, r.HR_LEDS, [], count=0, nbytes=0),
            write_regs(unit, r.HR_LEDS, [1, 2], count=3),  # byte count is not twice the count
            write_regs(unit, r.HR_LEDS, [0] * 124),  # more than 123 registers
            write_regs(unit, r.HR_MIC, [1]),
        ]
        for fc in (1, 2):
            out += [pdu(unit, fc, 0, 8), pdu(unit, fc, 299, 1), pdu(unit, fc, 300, 1), pdu(unit, fc, 290, 200)]
        out += [pdu(unit, 5, 0, 0xFF00), pdu(unit, 5, 299, 0), pdu(unit, 5, 300, 0xFF00)]
        out += [write_coils(unit, 0, 8, b"\x0f"), write_coils(unit, 0, 8, b"\x0f\x00")]
        out += [write_coils(unit, 300, 1, b"\x01")]
    for unit in (4, 5):
        for fc in (1, 2):
            for address, count in [(0, 8), (0, 7), (3, 4), (0, 16), (0, 17), (7, 1), (8, 1), (15, 1), (16, 1), (5, 11)]:
                out.append(pdu(unit, fc, address, count))
        for address, value in [(0, 0xFF00), (6, 0xFF00), (6, 0), (7, 0x1234), (3, 0xFF00), (8, 0xFF00), (16, 0xFF00)]:
            out.append(pdu(unit, 5, address, value))
        out.append(pdu(unit, 1, 0, 8))
        out += [
            write_coils(unit, 0, 7, b"\x55"),
            write_coils(unit, 5, 3, b"\x05"),
            write_coils(unit, 6, 3, b"\x07"),  # past coil 7
            write_coils(unit, 0, 7, b"\x55\x00"),  # byte count too big
            write_coils(unit, 0, 20, b"\xff\xff\x0f"),  # past the module's register
            write_coils(unit, 9, 1, b"\x01"),
        ]
        out.append(pdu(unit, 1, 0, 8))
        for fc, address, count in [(3, 0, 1), (3, 0, 2), (4, 1, 1), (4, 0, 125), (3, 2, 4)]:
            out.append(pdu(unit, fc, address, count))
        out += [pdu(unit, 6, 0, 5), pdu(unit, 6, 1, 5), write_regs(unit, 0, [1]), write_regs(unit, 0, [1, 2])]
        out += [write_regs(unit, 0, [1], count=2)]
    out += [
        write_regs(0, r.HR_MODE, [r.mode_word(r.Mode.REGISTRATION)]),  # broadcasts: no reply from anyone
        pdu(0, 6, r.HR_MODE, r.mode_word(r.Mode.VOTE_YES_NO)),
        write_regs(0, r.HR_TEXT, r.encode_text("Голосування")),
        write_regs(0, r.HR_LEDS, [0xFF]),  # not accepted as a broadcast: ignored
        pdu(1, 4, 0, 4),
        pdu(99, 4, 0, 4),  # nobody at unit 99
    ]
    return out


#: The requests pymodbus cannot decode (a count of 0, or over 125 registers or 2000 bits), and the function.
DECODE_FAILURES = (
    [(pdu(unit, fc, 0, count), fc) for unit in (1, 4) for fc in (1, 2) for count in (0, 2001)]
    + [(pdu(unit, fc, 0, count), fc) for unit in (1, 4) for fc in (3, 4) for count in (0, 126)]
    + [(write_coils(unit, 0, 0, b""), 15) for unit in (1, 4)]
)


class Port:
    """A raw master on one simulator's line."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.port = serial.Serial(sim.lines["A"], baudrate=19200, parity="N", timeout=0)
        self.sent = 0

    def taken(self) -> bool:
        """The simulator has taken every request sent so far (its wire counts each good frame)."""
        return int(self.sim.stats()["A"]["requests"]) >= self.sent  # type: ignore[call-overload]

    def ask(self, frame: bytes) -> bytes:
        """Send a request; the whole reply as its length says, or b"" when none came.

        A request to a unit on the line always gets a reply (data or an exception), in either
        simulator: wait for it.  A broadcast or a request for an absent unit gets none: wait until
        the simulator has taken it, then a little longer for bytes that must not come."""
        self.port.reset_input_buffer()
        self.port.write(frame)
        self.sent += 1
        expect = frame[0] not in (0, 99)
        got = b""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            got += self.port.read(256)
            need = response_length(got)
            if need and len(got) >= need:
                time.sleep(0.003)  # anything after the reply would be a difference too
                return got + self.port.read(256)
            if not expect and quiet_until is None and self.taken():
                quiet_until = time.monotonic() + NO_REPLY_S
            if quiet_until is not None and time.monotonic() > quiet_until:
                break
            time.sleep(0.0005)
        return got


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path: Path = tmp_path_factory.mktemp("slave") / "council.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


@pytest.fixture
def pair(config: Config) -> Iterator[tuple[Simulator, Simulator, Port, Port]]:
    direct, reference = Simulator(config), Simulator(config, pymodbus=True)
    with direct, reference:
        ports = Port(direct), Port(reference)
        try:
            for sim in (direct, reference):  # the same people did the same things at both
                sim.insert_card(1, "0A1B2C3D")
                sim.insert_card(2, "04A1B2C3D4E5F6")
                sim.insert_card(4, "55667788")
                sim.set_presence(1, True)
                sim.set_presence(4, True)
                for key in (Key.REGISTER, Key.YES, Key.SPEAK):
                    assert sim.press(1, key)
                assert sim.press(3, Key.PRIORITY)
                sim.module(5).key_down(Key.NO)
            yield direct, reference, ports[0], ports[1]
        finally:
            for port in ports:
                port.port.close()


def test_the_direct_answers_are_pymodbus_answers(pair: tuple[Simulator, Simulator, Port, Port]) -> None:
    direct, reference, to_direct, to_reference = pair
    replied = 0
    for frame in requests():
        mine, theirs = to_direct.ask(frame), to_reference.ask(frame)
        assert mine == theirs, f"request {frame.hex(' ')}: direct {mine.hex(' ')}, pymodbus {theirs.hex(' ')}"
        assert direct.state() == reference.state(), f"the consoles differ after {frame.hex(' ')}"
        replied += bool(mine)
    assert replied > 250  # most requests are answered (with data or an exception)
    assert direct.stats() == reference.stats()
    state = direct.state()
    assert state[1]["mode"] == r.Mode.VOTE_YES_NO and state[1]["text"] == "Голосування"  # the broadcasts
    assert direct.module(4).coils() == reference.module(4).coils() != 0


def test_the_one_difference_counts_pymodbus_cannot_decode(pair: tuple[Simulator, Simulator, Port, Port]) -> None:
    _, _, to_direct, to_reference = pair
    for frame, fc in DECODE_FAILURES:
        unit = frame[0]
        assert to_reference.ask(frame) == with_crc(bytes((unit, 0x80, 0x01))), frame.hex(" ")
        assert to_direct.ask(frame) == with_crc(bytes((unit, fc | 0x80, 0x03))), frame.hex(" ")

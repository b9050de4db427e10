"""hardware_sim: simulated consoles answering real Modbus RTU frames on ptys.

The tests are a raw Modbus master: hand-built frames (with a local CRC helper) written with pyserial
to the pty the simulator gives out, replies read back byte for byte.  Wire emulation is off except in
the one timing test.  One test drives the simulator with Debian's ``mbpoll``, a master nobody here wrote.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from chamber.config import Config, load_config
from chamber.core.values import Key
from hardware_sim.console import ConsoleModel
from hardware_sim.deputies import Deputies
from hardware_sim.http_api import PressApi
from hardware_sim.simulator import Simulator
from terminals import registers as r

CONFIG = """
[council]
name = "Тестова рада"
composition = 4

[[lines]]
id = "A"
port = "/dev/ttyUSB0"
baud = 19200

[[lines]]
id = "B"
gateway = "127.0.0.1:4001"
baud = 9600

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
line = "B"
unit = 1
"""
#: the four deputies of the test chamber (test_sim_slave builds its chamber with them too)
DEPUTIES = """
[[deputies]]
id = 1
full_name = "Один Перший"
cards = ["0A1B2C3D"]
seat = 1

[[deputies]]
id = 2
full_name = "Два Другий"
cards = ["04A1B2C3D4E5F6"]
seat = 2

[[deputies]]
id = 3
full_name = "Три Третій"
cards = ["11223344"]
seat = 3
role = "head"

[[deputies]]
id = 4
full_name = "Чотири Четвертий"
cards = ["55667788"]
seat = 4
"""
CONFIG += DEPUTIES

NO_REPLY_S = 0.15  # no simulated console takes this long unless told to (slow_ms)


# --------------------------------------------------------------------------- a tiny Modbus master


def crc(data: bytes) -> bytes:
    value = 0xFFFF
    for byte in data:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return struct.pack("<H", value)


def frame(*parts: int | bytes) -> bytes:
    body = b"".join(p if isinstance(p, bytes) else bytes([p]) for p in parts)
    return body + crc(body)


def read_req(unit: int, fc: int, addr: int, count: int) -> bytes:
    return frame(unit, fc, struct.pack(">HH", addr, count))


def write1_req(unit: int, addr: int, value: int) -> bytes:
    return frame(unit, 6, struct.pack(">HH", addr, value))


def writen_req(unit: int, addr: int, values: list[int]) -> bytes:
    return frame(
        unit, 16, struct.pack(">HHB", addr, len(values), 2 * len(values)), struct.pack(f">{len(values)}H", *values)
    )


class Master:
    """Raw bytes to and from the controller's end of a simulated line."""

    def __init__(self, path: str, baud: int = 19200) -> None:
        self.port = serial.Serial(path, baudrate=baud, parity="N", timeout=0)  # a pty carries no parity

    def close(self) -> None:
        self.port.close()

    def send(self, data: bytes) -> None:
        self.port.reset_input_buffer()
        self.port.write(data)

    def recv(self, n: int, timeout: float = 1.0) -> bytes:
        """Up to n bytes, waiting at most ``timeout``."""
        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            out += self.port.read(n - len(out))
            if len(out) < n:
                time.sleep(0.0005)
        return out

    def recv_all(self, silence: float = 0.05, timeout: float = 1.0) -> bytes:
        """Everything that arrives until ``silence`` passes without a byte."""
        out = b""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline:
            chunk = self.port.read(256)
            if chunk:
                out += chunk
                last = time.monotonic()
            elif (out and time.monotonic() - last > silence) or (not out and time.monotonic() - last > timeout):
                break
            time.sleep(0.0005)
        return out

    def read(self, unit: int, fc: int, addr: int, count: int) -> list[int]:
        self.send(read_req(unit, fc, addr, count))
        reply = self.recv(5 + 2 * count)
        assert len(reply) == 5 + 2 * count, f"short reply {reply.hex()}"
        assert crc(reply[:-2]) == reply[-2:], f"bad CRC in {reply.hex()}"
        assert reply[:3] == bytes([unit, fc, 2 * count])
        return list(struct.unpack(f">{count}H", reply[3:-2]))

    def ir(self, unit: int, addr: int, count: int = 1) -> list[int]:
        return self.read(unit, 4, addr, count)

    def hr(self, unit: int, addr: int, count: int = 1) -> list[int]:
        return self.read(unit, 3, addr, count)

    def write(self, unit: int, addr: int, *values: int) -> None:
        req = write1_req(unit, addr, values[0]) if len(values) == 1 else writen_req(unit, addr, list(values))
        self.send(req)
        reply = self.recv(8)
        assert len(reply) == 8 and crc(reply[:-2]) == reply[-2:], f"bad write reply {reply.hex()}"
        assert reply[1] == req[1]

    def nothing(self, wait: float = NO_REPLY_S) -> bytes:
        return self.recv(1, wait)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return load_config(path)


@pytest.fixture(params=[False, True], ids=["direct", "pymodbus"])
def sim(config: Config, request: pytest.FixtureRequest) -> Iterator[Simulator]:
    """The simulator with its consoles answering directly, and again with pymodbus answering for them."""
    s = Simulator(config, pymodbus=request.param)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def bus(sim: Simulator) -> Iterator[Master]:
    m = Master(sim.lines["A"])
    try:
        yield m
    finally:
        m.close()


# --------------------------------------------------------------------------- the register map


def test_idle_poll_reads_ir_0_to_3(bus: Master) -> None:
    status, head, info, card_seq = bus.ir(1, r.POLL_START, r.POLL_COUNT)
    assert status == r.Status.RESTARTED
    assert (head, info, card_seq) == (0, 0, 1 << 8)  # IR 3: BOOT 1 (the first power-up), CARD_SEQ 0
    assert bus.ir(1, 0, 4) == bus.ir(1, 0, 4)  # an idle console answers the same bytes


def test_identity_of_seat_chair_and_mic_unit(bus: Master) -> None:
    seat = bus.ir(1, r.IDENTITY_START, r.IDENTITY_COUNT)
    assert seat[0] == r.PROFILE_ID and seat[1] == r.DeviceType.SEAT
    assert seat[6] & r.Caps.PRESENCE and seat[6] & r.Caps.MIC and not seat[6] & r.Caps.CHAIR_KEYS
    assert not bus.ir(2, r.IR_CAPS)[0] & r.Caps.MIC  # seat 2's microphone is a separate unit
    chair = bus.ir(3, r.IDENTITY_START, r.IDENTITY_COUNT)
    assert chair[1] == r.DeviceType.CHAIR and chair[6] & r.Caps.CHAIR_KEYS
    mic = bus.ir(20, r.IDENTITY_START, r.IDENTITY_COUNT)
    assert mic[1] == r.DeviceType.MIC_UNIT and mic[6] == r.Caps.MIC
    assert bus.ir(1, r.IR_POWER_UPS)[0] == 1


def test_press_latched_with_sequence_and_ack_drops_it(sim: Simulator, bus: Master) -> None:
    assert sim.press(1, "yes") and sim.press(1, Key.REGISTER)
    _, head, info, _ = bus.ir(1, 0, 4)
    assert head == 0 and info == (2 << 8 | Key.YES)
    assert bus.ir(1, r.IR_FIFO, 3) == [Key.YES, Key.REGISTER, 0]
    bus.write(1, r.HR_ACK, 5)  # outside the pending window (0, 1): ignored
    assert bus.ir(1, r.IR_EVT_INFO)[0] >> 8 == 2
    bus.write(1, r.HR_ACK, 0)
    _, head, info, _ = bus.ir(1, 0, 4)
    assert head == 1 and info == (1 << 8 | Key.REGISTER)
    bus.write(1, r.HR_ACK, 1)
    _, head, info, _ = bus.ir(1, 0, 4)
    assert head == 2 and info == 0  # empty: EVT_HEAD is the next sequence number


def test_an_ack_for_another_boot_is_ignored() -> None:
    """Register map section 4: ACK written with ACK_BOOT in one frame applies only if ACK_BOOT is the
    console's BOOT; a console that restarted since (its new numbering reuses the numbers) keeps its
    new events.  ACK alone (version 2) applies as before."""
    console = ConsoleModel(1)
    boot = console.read_registers(4, r.IR_CARD_SEQ, 1)[0] >> 8
    assert console.read_registers(3, r.HR_ACK_BOOT, 1) == [boot]
    console.press(Key.YES)
    console.press(Key.NO)
    assert console.write_registers(r.HR_ACK_BOOT, [(boot - 1) & 0xFF, 0]) is None  # the old boot's ACK 0
    assert console.read_registers(4, r.IR_EVT_HEAD, 2) == [0, 2 << 8 | Key.YES]  # nothing freed
    assert console.write_registers(r.HR_ACK_BOOT, [boot, 0, int(r.Led.YES)]) is None
    assert console.read_registers(4, r.IR_EVT_HEAD, 2) == [1, 1 << 8 | Key.NO]
    assert console.read_registers(3, r.HR_LEDS, 1) == [int(r.Led.YES)]
    assert console.write_registers(r.HR_ACK, [1]) is None
    assert console.read_registers(4, r.IR_EVT_HEAD, 2) == [2, 0]


def test_chair_keys_only_on_the_chair(sim: Simulator) -> None:
    assert sim.press(3, "priority")
    with pytest.raises(ValueError):
        sim.press(1, Key.PRIORITY)


def test_seventeen_presses_without_ack_overflow(sim: Simulator, bus: Master) -> None:
    for _ in range(16):
        assert sim.press(1, Key.YES)
    assert not sim.press(1, Key.NO)  # the 17th is dropped
    status, head, info, _ = bus.ir(1, 0, 4)
    assert status & r.Status.OVERFLOW and info >> 8 == 16
    assert bus.ir(1, r.IR_ERR_OVERFLOW)[0] == 1
    bus.write(1, r.HR_ACK, head + 15)
    status, _, info, _ = bus.ir(1, 0, 4)
    assert not status & r.Status.OVERFLOW and info == 0
    assert bus.ir(1, r.IR_ERR_OVERFLOW)[0] == 1  # the counter stays


def test_sequence_numbers_wrap() -> None:
    console = ConsoleModel(1, seq_start=0xFFFE)
    for key in (Key.YES, Key.NO, Key.ABSTAIN):
        console.press(key)
    assert console.read_registers(4, r.IR_EVT_HEAD, 2) == [0xFFFE, 3 << 8 | Key.YES]
    assert console.write_registers(r.HR_ACK, [0x0000]) is None  # 0xFFFE, 0xFFFF, 0x0000
    assert console.read_registers(4, r.IR_EVT_HEAD, 2) == [0x0001, 0]


def test_card_insert_and_remove(sim: Simulator, bus: Master) -> None:
    sim.insert_card(2, "04A1B2C3D4E5F6")
    status, _, _, card_seq = bus.ir(2, 0, 4)
    assert status & r.Status.CARD and card_seq == 1 << 8 | 1
    regs = bus.ir(2, r.IR_CARD_LEN, r.CARD_READ_COUNT)
    assert regs[0] == 7 and r.decode_uid(regs[0], regs[1:]) == "04A1B2C3D4E5F6"
    assert sim.remove_card(2) == "04A1B2C3D4E5F6"
    status, _, _, card_seq = bus.ir(2, 0, 4)
    assert not status & r.Status.CARD and card_seq == 1 << 8 | 2
    assert bus.ir(2, r.IR_CARD_LEN, 2) == [0, 0]
    sim.insert_card(1, "0A1B2C3D")
    sim.move_card(1, 2)
    assert sim.console(1).card is None and sim.console(2).card == "0A1B2C3D"
    with pytest.raises(ValueError):
        sim.insert_card(2, "11223344")  # the slot is taken


def test_presence_sensor(sim: Simulator, bus: Master) -> None:
    sim.set_presence(1, True)
    assert bus.ir(1, r.IR_STATUS)[0] & r.Status.PRESENCE
    sim.set_presence(1, False)
    assert not bus.ir(1, r.IR_STATUS)[0] & r.Status.PRESENCE


def test_mode_write_clears_choice_leds_and_restarted(bus: Master) -> None:
    bus.write(1, r.HR_LEDS, r.Led.YES | r.Led.REGISTERED, 0b101, 1)
    assert bus.hr(1, r.HR_LEDS, 3) == [r.Led.YES | r.Led.REGISTERED, 0b101, 1]
    assert bus.ir(1, r.IR_STATUS)[0] & r.Status.MIC_ON
    bus.write(1, r.HR_MODE, r.mode_word(r.Mode.VOTE_YES_NO))
    assert bus.hr(1, r.HR_LEDS, 4) == [r.Led.REGISTERED, 0, 1, r.Mode.VOTE_YES_NO]
    assert not bus.ir(1, r.IR_STATUS)[0] & r.Status.RESTARTED
    # one write of 257..260: the LEDs written with MODE win over MODE's clearing
    bus.write(1, r.OUTPUTS_START, r.Led.NO, 0, 0, r.mode_word(r.Mode.VOTE_YES_NO))
    assert bus.hr(1, r.HR_LEDS)[0] == r.Led.NO


def test_text_line(sim: Simulator, bus: Master) -> None:
    bus.write(1, r.HR_TEXT, *r.encode_text("Питання 3: бюджет"))
    assert sim.console(1).state().text == "Питання 3: бюджет"


def test_broadcast_mode_reaches_every_console_of_the_line(sim: Simulator, bus: Master) -> None:
    for unit in (1, 2, 3):
        bus.write(unit, r.HR_LEDS, r.Led.YES)
    bus.send(writen_req(0, r.HR_MODE, [r.mode_word(r.Mode.VOTE_RATING, 3)]))
    assert bus.nothing() == b""  # no reply to a broadcast
    bus.send(writen_req(0, r.HR_TEXT, r.encode_text("Голосування")))
    assert bus.nothing() == b""
    for seat in (1, 2, 3):
        state = sim.console(seat).state()
        assert (state.mode, state.proposals, state.leds, state.text) == (r.Mode.VOTE_RATING, 3, 0, "Голосування")
        # a broadcast does not tell a console that the controller saw it restart: only its own write does
        assert state.status & r.Status.RESTARTED
    assert sim.console(4).state().mode == r.Mode.IDLE  # another line
    assert sim.stats()["A"]["broadcasts"] == 2
    bus.send(write1_req(0, r.HR_MODE, r.mode_word(r.Mode.IDLE)))  # function 06 as a broadcast too
    bus.nothing()
    assert sim.console(2).state().mode == r.Mode.IDLE
    bus.write(2, r.HR_MODE, r.mode_word(r.Mode.IDLE))
    assert not sim.console(2).state().status & r.Status.RESTARTED
    assert sim.console(1).state().status & r.Status.RESTARTED


def test_power_cycle_sets_restarted(sim: Simulator, bus: Master) -> None:
    sim.insert_card(1, "0A1B2C3D")
    sim.press(1, Key.YES)
    bus.write(1, r.HR_MODE, r.mode_word(r.Mode.REGISTRATION))
    assert not bus.ir(1, 0)[0] & r.Status.RESTARTED
    sim.power_cycle(1)
    status, _, info, card_word = bus.ir(1, 0, 4)
    assert status & r.Status.RESTARTED and status & r.Status.CARD and info == 0
    assert bus.ir(1, r.IR_POWER_UPS)[0] == 2 and r.boot_of(card_word) == 2  # a new boot in the idle poll
    assert bus.hr(1, r.HR_MODE)[0] == r.Mode.IDLE
    sim.console(1).power_off()
    bus.send(read_req(1, 4, 0, 4))
    assert bus.nothing() == b""
    sim.console(1).power_on()
    assert bus.ir(1, r.IR_POWER_UPS)[0] == 3


def test_bad_requests(sim: Simulator, bus: Master) -> None:
    bus.send(read_req(99, 4, 0, 4))  # nobody at unit 99
    assert bus.nothing() == b""
    bad = bytearray(read_req(1, 4, 0, 4))
    bad[-1] ^= 0xFF
    bus.send(bytes(bad))
    assert bus.nothing() == b""
    assert bus.ir(1, r.IR_ERR_CRC)[0] == 1 and bus.ir(2, r.IR_ERR_CRC)[0] == 1  # every console heard it
    bus.send(read_req(1, 4, 60, 20))  # past IR 69
    assert bus.recv(5) == frame(1, 0x84, 2)
    bus.send(write1_req(1, r.IR_STATUS, 1))  # input registers are not writable
    assert bus.recv(5) == frame(1, 0x86, 2)
    bus.send(write1_req(20, r.HR_LEDS, 1))  # a microphone unit has only MIC
    assert bus.recv(5) == frame(20, 0x86, 2)
    bus.write(20, r.HR_MIC, 1)
    assert bus.ir(20, r.IR_STATUS)[0] == r.Status.MIC_ON
    assert sim.state()[2]["mic"] is True
    assert bus.ir(1, 0, 4)  # the line still works
    assert sim.stats()["A"]["no_device"] == 1 and sim.stats()["A"]["bad_frames"] == 1


# --------------------------------------------------------------------------- faults


def test_fault_dead(sim: Simulator, bus: Master) -> None:
    sim.set_fault("A", unit=2, dead=True)
    bus.send(read_req(2, 4, 0, 4))
    assert bus.nothing() == b""
    assert bus.ir(1, 0, 4)  # the others answer
    sim.set_fault("A", dead=True)
    bus.send(read_req(1, 4, 0, 4))
    assert bus.nothing() == b""
    sim.clear_faults("A")
    assert bus.ir(2, 0, 4)
    assert sim.stats()["A"]["faults"]["dead"] == 2  # type: ignore[index]


def test_fault_crc(sim: Simulator, bus: Master) -> None:
    sim.set_fault("A", crc_rate=1.0)
    bus.send(read_req(1, 4, 0, 4))
    reply = bus.recv(13)
    assert len(reply) == 13 and crc(reply[:-2]) != reply[-2:]
    sim.set_fault("A", crc_rate=0.0)
    assert bus.ir(1, 0, 4)


def test_fault_drop_after_the_console_acted(sim: Simulator, bus: Master) -> None:
    sim.press(1, Key.YES)
    sim.set_fault("A", unit=1, drop_rate=1.0)
    bus.send(write1_req(1, r.HR_ACK, 0))
    assert bus.nothing() == b""
    assert sim.console(1).state().pending == ()  # the ACK was taken; only the reply was lost
    assert sim.stats()["A"]["faults"]["drop"] == 1  # type: ignore[index]


def test_fault_slow(sim: Simulator, bus: Master) -> None:
    sim.set_fault("A", slow_ms=120)
    start = time.monotonic()
    bus.send(read_req(1, 4, 0, 4))
    reply = bus.recv(13, timeout=2.0)
    assert len(reply) == 13 and time.monotonic() - start >= 0.12


def test_fault_noise_and_garbage(sim: Simulator, bus: Master) -> None:
    sim.set_fault("A", noise_rate=1.0)
    bus.send(read_req(1, 4, 0, 4))
    got = bus.recv_all()
    assert len(got) > 13, "noise bytes come before the reply"
    reply = got[-13:]
    assert reply[:3] == bytes([1, 4, 8]) and crc(reply[:-2]) == reply[-2:]
    sim.set_fault("A", noise_rate=0.0)
    sim.set_fault("A", garbage=b"\xde\xad\xbe\xef")  # one-shot, unsolicited
    assert bus.recv(4) == b"\xde\xad\xbe\xef"
    sim.set_fault("A", garbage=5)
    assert len(bus.recv(5)) == 5
    assert bus.nothing() == b""
    faults = sim.stats()["A"]["faults"]
    assert faults["noise"] == 1 and faults["garbage"] == 2  # type: ignore[index]


def test_fault_validation(sim: Simulator) -> None:
    with pytest.raises(ValueError):
        sim.set_fault("A", crc_rate=2.0)
    with pytest.raises(ValueError):
        sim.set_fault("A", explode=True)
    with pytest.raises(ValueError):
        sim.set_fault("A", unit=77, dead=True)
    with pytest.raises(KeyError):
        sim.set_fault("Z", dead=True)


# --------------------------------------------------------------------------- wire time


def test_wire_time_at_9600_baud(config: Config) -> None:
    """Back-to-back polls on line B (9600 baud) take at least the wire limit, and not much more."""
    char = 11 / 9600
    t35 = 3.5 * char
    with Simulator(config, wire_time=True, turnaround_ms=0.3, realtime=True) as s:  # as the CLI with --wire-time
        bus = Master(s.lines["B"], 9600)
        try:
            start = time.perf_counter()
            bus.send(read_req(1, 4, 0, 4))
            assert len(bus.recv(13)) == 13
            first = time.perf_counter() - start
            assert first >= (8 + 13) * char + t35 + 0.0003  # request, t3.5, turnaround, reply
            n = 8
            start = time.perf_counter()
            for _ in range(n):
                bus.send(read_req(1, 4, 0, 4))
                assert len(bus.recv(13)) == 13
            cycle = (time.perf_counter() - start) / n
            stats = s.stats()["B"]
        finally:
            bus.close()
    # every reply was timed against the wire clock, and the lateness is summed for the benchmark
    assert stats["timed_replies"] == n + 1
    assert 0.0 <= float(stats["late_ms_total"]) < (n + 1) * 8.0  # type: ignore[arg-type]
    limit = (8 + 13) * char + 2 * t35
    assert limit <= cycle < limit + 0.008, f"cycle {cycle * 1000:.2f} ms, wire limit {limit * 1000:.2f} ms"


# --------------------------------------------------------------------------- a master nobody here wrote


def test_mbpoll_reads_the_simulated_console(sim: Simulator) -> None:
    mbpoll = shutil.which("mbpoll")
    if mbpoll is None:
        pytest.fail(
            "mbpoll not found: `make test` installs the Debian package `mbpoll` (or: apt-get install mbpoll)",
            pytrace=False,
        )
    sim.press(1, Key.YES)
    sim.press(1, Key.NO)
    cmd = [mbpoll, "-m", "rtu", "-a", "1", "-b", "19200", "-P", "even", "-t", "3", "-r", "1", "-c", "4"]
    result = subprocess.run([*cmd, "-o", "1", "-1", sim.lines["A"]], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stdout + result.stderr
    values = {}
    for line in result.stdout.splitlines():
        if line.startswith("["):
            ref, value = line.split(":", 1)
            values[int(ref.strip("[]"))] = int(value.split()[0])
    assert values == {1: 0x8000, 2: 0, 3: 2 << 8 | Key.YES, 4: 1 << 8}  # IR 3: BOOT 1, no card change


# --------------------------------------------------------------------------- HTTP API


def _http(api: PressApi, method: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, object]:
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_http_api(sim: Simulator, bus: Master) -> None:
    api = PressApi(sim)
    api.start()
    try:
        assert _http(api, "GET", "/lines") == (200, sim.lines)
        assert _http(api, "POST", "/press", {"seat": 1, "key": "yes"})[0] == 200
        assert _http(api, "POST", "/press", {"seat": 1, "key": 3})[0] == 200
        assert bus.ir(1, r.IR_FIFO, 2) == [Key.YES, Key.NO]
        assert _http(api, "GET", "/pending") == (200, {"total": 2, "seats": {"1": 2}})
        assert _http(api, "POST", "/card", {"seat": 2, "uid": "0A1B2C3D"})[0] == 200
        assert sim.console(2).card == "0A1B2C3D"
        assert _http(api, "POST", "/presence", {"seat": 1, "present": True})[0] == 200
        bus.write(1, r.HR_TEXT, *r.encode_text("Реєстрація"))
        bus.write(1, r.HR_LEDS, r.Led.REGISTERED)
        status, state = _http(api, "GET", "/state")
        assert status == 200 and isinstance(state, dict)
        assert state["1"]["text"] == "Реєстрація" and state["1"]["led_names"] == ["registered"]
        assert state["1"]["presence"] is True and state["2"]["card"] == "0A1B2C3D"
        assert _http(api, "POST", "/card", {"seat": 2, "uid": None}) == (200, {"seat": 2, "removed": "0A1B2C3D"})
        assert _http(api, "POST", "/fault", {"line": "A", "unit": 3, "dead": True})[0] == 200
        bus.send(read_req(3, 4, 0, 4))
        assert bus.nothing() == b""
        assert _http(api, "POST", "/clear_faults", {})[0] == 200
        assert bus.ir(3, 0, 4)
        for path, body, raw in [
            ("/press", None, b"{not json"),
            ("/press", None, b"[1, 2]"),
            ("/press", {"seat": 99, "key": "yes"}, None),
            ("/press", {"seat": "1", "key": "yes"}, None),
            ("/press", {"seat": 1, "key": "maybe"}, None),
            ("/press", {"seat": 1, "key": 99}, None),
            ("/press", {"seat": 1, "key": "priority"}, None),  # not a chair console
            ("/press", {"seat": 1}, None),
            ("/card", {"seat": 1, "uid": "xyz"}, None),
            ("/card", {"seat": 1}, None),
            ("/presence", {"seat": 1, "present": "yes"}, None),
            ("/fault", {"line": "Q", "dead": True}, None),
            ("/fault", {"line": "A", "crc_rate": 5}, None),
            ("/fault", {"line": "A", "bogus": 1}, None),
            ("/fault", {"line": "A"}, None),
        ]:
            status, answer = _http(api, "POST", path, body, raw)
            assert status == 400, (path, body, raw, answer)
            assert isinstance(answer, dict) and answer["error"]
        assert _http(api, "GET", "/nowhere")[0] == 404
        assert bus.ir(1, 0, 4)  # still alive
    finally:
        api.stop()


# --------------------------------------------------------------------------- deputies, TCP, CLI, clean stop


def test_deputies_arrive_register_and_vote(sim: Simulator) -> None:
    people = Deputies(sim, seed=7)
    assert len(people.arrive(1.0)) == 4
    assert sim.console(1).state().presence  # seat 1 has a presence sensor
    assert people.register_all() == 4
    schedule = people.vote(1, 1, 1, 0, reaction_s=(0.01, 0.3))
    assert schedule.join(5)
    votes = people.presses()
    assert len(votes) == 8 and all(p.latched for p in votes)
    assert {p.key for p in votes[4:]} <= {Key.YES, Key.NO, Key.ABSTAIN}
    assert len(people.request_floor(2)) == 2
    assert sum(len(sim.console(s).state().pending) for s in (1, 2, 3, 4)) == 10


def test_tcp_mode(config: Config) -> None:
    with Simulator(config, tcp=True) as s:
        host, port = s.lines["A"].rsplit(":", 1)
        s.press(3, Key.NEXT)
        with socket.create_connection((host, int(port)), timeout=2) as conn:
            conn.sendall(read_req(3, 4, 0, 4))
            reply = b""
            while len(reply) < 13:
                chunk = conn.recv(64)
                assert chunk
                reply += chunk
            conn.sendall(read_req(99, 4, 0, 4))  # nobody there: the gateway's exception 0x0B
            assert conn.recv(64) == frame(99, 0x84, 0x0B)
        assert crc(reply[:-2]) == reply[-2:]
        assert struct.unpack(">4H", reply[3:11])[2] == 1 << 8 | Key.NEXT


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("pymodbus", [False, True], ids=["direct", "pymodbus"])
def test_stop_is_clean(config: Config, tmp_path: Path, pymodbus: bool) -> None:
    threads_before = set(threading.enumerate())
    fds_before = _fds()
    s = Simulator(config, link_dir=tmp_path / "sim", pymodbus=pymodbus)
    s.start()
    link = tmp_path / "sim" / "line-A"
    assert link.is_symlink() and os.readlink(link) == s.lines["A"]
    bus = Master(str(link))
    assert bus.ir(1, 0, 4)
    bus.close()
    # one bus loop for both lines; with pymodbus also the servers' asyncio loop
    assert len(set(threading.enumerate()) - threads_before) == (2 if pymodbus else 1)
    s.stop()
    deadline = time.monotonic() + 2
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert set(threading.enumerate()) - threads_before == set()
    assert _fds() - fds_before == set()
    assert not link.exists() and not link.is_symlink()
    assert s.lines == {}


def test_main_prints_one_json_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hardware_sim", "--config", str(cfg), "--link-dir", str(tmp_path / "sim")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info["lines"]) == {"A", "B"} and info["http"].startswith("http://127.0.0.1:")
        port = int(info["http"].rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/press", body=json.dumps({"seat": 4, "key": "abstain"}))
        assert conn.getresponse().status == 200
        conn.close()
        bus = Master(str(tmp_path / "sim" / "line-B"), 9600)
        assert bus.ir(1, r.IR_EVT_INFO)[0] == 1 << 8 | Key.ABSTAIN
        bus.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert not (tmp_path / "sim" / "line-A").is_symlink()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_press_from_the_command_line(sim: Simulator, capsys: pytest.CaptureFixture[str]) -> None:
    from hardware_sim.__main__ import main as sim_main

    api = PressApi(sim)
    api.start()
    try:
        assert sim_main(["press", "--url", api.url, "--seat", "1", "--key", "yes"]) == 0
        assert sim.console(1).state().pending[-1][1] == Key.YES
        assert sim_main(["press", "--url", api.url, "--seat", "999", "--key", "yes"]) == 1
        assert "seat" in capsys.readouterr().err
        assert sim_main(["fault", "--url", api.url, "--line", "A", "--unit", "1", "--set", "dead=true"]) == 0
        assert sim_main(["state", "--url", api.url]) == 0
    finally:
        api.stop()


def test_power_up_counts_outlive_the_simulator_when_kept_in_a_file(config: Config, tmp_path: Path) -> None:
    """A console's POWER_UPS is in EEPROM: a new simulator (a restarted ``chamber run --simulate``)
    must not bring back boots the controller's journal has seen."""
    eeprom = tmp_path / "eeprom.json"
    first = Simulator(config, eeprom=eeprom)
    console = first.console(1)
    assert isinstance(console, ConsoleModel)
    console.power_cycle()
    assert console.power_ups == 2
    second = Simulator(config, eeprom=eeprom)
    again = second.console(1)
    assert isinstance(again, ConsoleModel) and again.power_ups == 3
    other = second.console(2)
    assert isinstance(other, ConsoleModel) and other.power_ups == 2
    eeprom.write_text("not json", encoding="utf-8")  # a broken file is logged and starts afresh
    assert Simulator(config, eeprom=eeprom).console(1)

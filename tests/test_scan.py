"""Bus diagnostics against an in-memory line of consoles that answer real Modbus RTU frames."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from chamber.cli import main
from chamber.config import load_config
from terminals import registers as reg
from terminals import rtu, scan
from terminals.scan import ScanTarget, parse_units, plan_scan, scan_line

ROOT = Path(__file__).resolve().parent.parent
BAUD = 115200


def native_console(
    serial: int = 1234,
    fw: tuple[int, int, int] = (1, 4, 2),
    status: int = 0,
    card: bytes = b"",
    crc_errors: int = 0,
    device_type: reg.DeviceType = reg.DeviceType.SEAT,
) -> dict[int, int]:
    """The input registers of a native console (the datasheet's map)."""
    regs = {a: 0 for a in range(0, 70)}
    regs[reg.IR_STATUS] = status | (reg.Status.CARD if card else 0)
    regs[reg.IR_CARD_SEQ] = 1 if card else 0
    regs[reg.IR_CARD_LEN] = len(card)
    raw = card.ljust(10, b"\0")
    for i in range(reg.CARD_UID_REGS):
        regs[reg.IR_CARD_UID + i] = raw[2 * i] << 8 | raw[2 * i + 1]
    regs[reg.IR_PROFILE] = reg.PROFILE_ID
    regs[reg.IR_DEVICE_TYPE] = device_type
    regs[reg.IR_FW_VERSION] = fw[0] << 8 | fw[1]
    regs[reg.IR_FW_PATCH] = fw[2]
    regs[reg.IR_SERIAL_HI], regs[reg.IR_SERIAL_LO] = serial >> 16, serial & 0xFFFF
    regs[reg.IR_CAPS] = reg.Caps.CARD | reg.Caps.MIC
    regs[reg.IR_ERR_CRC] = crc_errors
    regs[reg.IR_POWER_UPS] = 7
    return regs


class FakeLine:
    """A Transport whose far end is a dict of consoles: unit -> input registers.

    Units not in the dict stay silent; ``corrupt`` units answer with a broken CRC; ``impostor`` maps a
    unit to the unit id its reply carries (a second console with a wrong id answering).
    """

    name = "fake"

    def __init__(self, consoles: dict[int, dict[int, int]], corrupt: set[int] | None = None) -> None:
        self.consoles = consoles
        self.corrupt = corrupt or set()
        self.impostor: dict[int, int] = {}
        self.requests: list[bytes] = []
        self.opened = False
        self._reply = b""

    def open(self) -> None:
        self.opened = True

    def close(self) -> None:
        self.opened = False

    def write(self, frame: bytes) -> None:
        assert self.opened and rtu.crc_ok(frame)
        self.requests.append(frame)
        unit, function, address, count = struct.unpack(">BBHH", frame[:6])
        self._reply = b""
        regs = self.consoles.get(unit)
        if regs is None:
            return
        values = [regs.get(a) for a in range(address, address + count)]
        if function != 4:
            body = bytes([unit, function | 0x80, 1])
        elif any(v is None for v in values):
            body = bytes([unit, 0x84, 2])  # illegal data address
        else:
            body = bytes([self.impostor.get(unit, unit), 4, 2 * count]) + struct.pack(f">{count}H", *values)
        reply = rtu.with_crc(body)
        if unit in self.corrupt:
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        self._reply = reply

    def read_reply(self, target: Callable[[bytes], int], deadline: float) -> bytes:
        reply, self._reply = self._reply, b""
        if len(reply) >= 2:
            assert target(reply) == len(reply)
        return reply

    def discard(self) -> int:
        return 0


def scan_units(line: FakeLine, units: list[int]) -> dict[int, scan.ConsoleInfo]:
    line.open()
    return {info.unit: info for info in scan_line(line, BAUD, units, timeout_s=0.01)}


def test_present_and_absent_units_and_identity() -> None:
    first = native_console(serial=0x0001_0002, fw=(2, 1, 7), card=bytes.fromhex("04A3B2C1"))
    line = FakeLine({1: first, 3: native_console()})
    found = scan_units(line, [1, 2, 3])
    one, two, three = found[1], found[2], found[3]
    assert one.present and one.native and not two.present and three.present
    assert one.profile == reg.PROFILE_ID and one.device_type == "seat"
    assert one.firmware == "2.1.7" and one.serial == 0x0001_0002 and one.caps == ["card", "mic"]
    assert one.counters == {"crc": 0, "frame": 0, "overflow": 0, "power_ups": 7}
    assert one.card_present and one.card_uid == "04A3B2C1" and three.card_present is False
    assert one.rtt_ms is not None and one.wire_ms == pytest.approx((21 * 11 / BAUD + 0.00175) * 1000, abs=0.001)
    assert one.errors == {} and two.errors == {} and two.notes == []  # silence from an empty unit id is no error
    # identity, counters, 5 idle polls, card for unit 1; 2 attempts for the silent unit 2
    assert sum(1 for r in line.requests if r[0] == 1) == 8 and sum(1 for r in line.requests if r[0] == 2) == 2


def test_profile_mismatch_and_refused_identity_mean_not_native() -> None:
    foreign = native_console()
    foreign[reg.IR_PROFILE] = 0x0102
    generic_module = {a: 0 for a in range(8)}  # a DI/DO module without register 48
    found = scan_units(FakeLine({4: foreign, 5: generic_module}), [4, 5])
    assert found[4].present and found[4].native is False and found[4].firmware is None
    assert any("not a native console; maybe a generic DI/DO module" in n and "0x0102" in n for n in found[4].notes)
    assert found[5].present and found[5].native is False and found[5].errors == {"exception": 1}
    assert "illegal data address" in found[5].notes[0] and "generic DI/DO module" in found[5].notes[0]


def test_crc_errors_are_counted() -> None:
    found = scan_units(FakeLine({6: native_console()}, corrupt={6}), [6])
    info = found[6]
    assert not info.present and info.errors == {"crc": 2}
    assert any("never with a valid frame" in n for n in info.notes)
    assert any("termination" in n for n in info.notes)


def test_console_side_counters_and_wrong_unit() -> None:
    line = FakeLine({7: native_console(crc_errors=3), 8: native_console()})
    line.impostor[8] = 9
    found = scan_units(line, [7, 8])
    assert found[7].counters["crc"] == 3 and any("3 CRC" in n for n in found[7].notes)
    assert found[8].errors == {"wrong_unit": 2} and not found[8].present
    assert any("two consoles with the same unit id?" in n for n in found[8].notes)


def test_parse_units() -> None:
    assert parse_units("1,2,5-9") == [1, 2, 5, 6, 7, 8, 9]
    assert parse_units("3, 1-2") == [1, 2, 3]
    assert len(parse_units("1-247")) == 247
    for bad in ("0", "248", "5-3", "x", "1-", "١-٣"):  # Arabic-Indic digits are digits to int()
        with pytest.raises(ValueError, match="--units"):
            parse_units(bad)
    with pytest.raises(ValueError, match="--gateway"):
        plan_scan(None, gateway="127.0.0.1:٤٠٠١")


def test_plan_from_the_example_config() -> None:
    config = load_config(ROOT / "config.toml")
    targets = plan_scan(config)
    assert [t.line for t in targets] == ["A", "B"]
    assert targets[0].units == list(range(1, 23)) and targets[0].configured[1] == "seat 1"
    assert targets[1].gateway == ("192.168.10.20", 4001) and targets[1].timeout_s == 0.1
    only_b = plan_scan(config, line="B", port="/dev/ttyUSB1", baud=9600, units=[1, 2])
    assert len(only_b) == 1 and only_b[0].port == "/dev/ttyUSB1" and only_b[0].gateway is None
    assert only_b[0].baud == 9600 and only_b[0].units == [1, 2]
    with pytest.raises(ValueError, match="--line"):
        plan_scan(config, port="/dev/ttyUSB0")
    with pytest.raises(ValueError, match="no line 'C'"):
        plan_scan(config, line="C")
    bare = plan_scan(None, port="/dev/ttyUSB0", parity="N")
    assert bare[0].units == list(range(1, 248)) and bare[0].stopbits == 2 and bare[0].baud == 115200


def _fake_lines(monkeypatch: pytest.MonkeyPatch, lines: dict[str, FakeLine]) -> None:
    def make(target: ScanTarget) -> FakeLine:
        return lines[target.line]

    monkeypatch.setattr(scan, "make_transport", make)


def test_cli_json_reports_missing_and_unexpected(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line_a = FakeLine({u: native_console(serial=u) for u in [*range(1, 23), 30] if u != 3})
    line_b = FakeLine({u: native_console(serial=100 + u) for u in range(1, 21)})
    line_b.consoles[21] = native_console(device_type=reg.DeviceType.CHAIR)  # the chair's console, seat 43
    _fake_lines(monkeypatch, {"A": line_a, "B": line_b})
    config = str(ROOT / "config.toml")

    assert main(["scan", "--config", config, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    a, b = data["lines"]
    assert a["line"] == "A" and a["missing"] == ["seat 3 (unit 3)"] and a["ok"] is False
    assert b["ok"] is True and b["missing"] == [] and len(b["consoles"]) == 21
    assert a["consoles"][0]["serial"] == 1 and a["consoles"][0]["firmware"] == "1.4.2"

    assert main(["scan", "--config", config, "--line", "A", "--units", "1-2,30", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [line["line"] for line in data["lines"]] == ["A"]
    assert data["lines"][0]["unexpected"] == [30] and data["ok"] is True

    line_a.consoles[3] = native_console(serial=3)
    assert main(["scan", "--config", config]) == 0
    out = capsys.readouterr().out
    assert "Лінія / line A" in out and "відповіли / answered: 22 of 22" in out and "1.4.2" in out

    line_b.consoles[21] = native_console()  # a seat console where the config puts the chair's
    line_b.consoles[20][reg.IR_PROFILE] = 0x1111
    assert main(["scan", "--config", config, "--line", "B"]) == 1
    out = capsys.readouterr().out
    assert "WRONG DEVICE: seat 43 (chair) (unit 21): the config expects a chair, the unit says it is a seat" in out
    assert "WRONG DEVICE: seat 42 (unit 20): not a native console" in out


def test_cli_table_names_silent_seats_and_bad_arguments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_lines(monkeypatch, {"A": FakeLine({1: native_console()}), "B": FakeLine({})})
    assert main(["scan", "--config", str(ROOT / "config.toml"), "--line", "B", "--units", "1-3"]) == 1
    out = capsys.readouterr().out
    assert "НЕ ВІДПОВІЛИ / NO REPLY from configured: seat 23 (unit 1)" in out and "NO REPLY" in out

    assert main(["scan", "--config", str(ROOT / "config.toml"), "--units", "1-300"]) == 2
    assert "unit ids are 1..247" in capsys.readouterr().err


def test_cli_line_down_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-port")
    assert main(["scan", "--port", missing, "--units", "1", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and "cannot open" in data["lines"][0]["error"]
    assert main(["scan", "--port", missing, "--units", "1"]) == 1
    assert "LINE DOWN" in capsys.readouterr().out


def test_generic_modules_where_the_config_puts_them_are_no_wrong_device(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from test_generic import CONFIG  # line M: modules 1-3, native 4 and the chair 5; line G: modules 1-2

    path = tmp_path / "council.toml"
    path.write_text(CONFIG, encoding="utf-8")
    module = {a: 0 for a in range(8)}  # answers with an exception to the native identity read
    line_m = FakeLine({1: dict(module), 2: dict(module), 3: dict(module), 4: native_console()})
    line_m.consoles[5] = native_console(device_type=reg.DeviceType.CHAIR)
    _fake_lines(monkeypatch, {"M": line_m, "G": FakeLine({1: dict(module), 2: dict(module)})})
    assert main(["scan", "--config", str(path)]) == 0, capsys.readouterr().out
    capsys.readouterr()
    line_m.consoles[2] = native_console()  # a native console where the config puts a module
    assert main(["scan", "--config", str(path), "--line", "M"]) == 1
    out = capsys.readouterr().out
    assert "WRONG DEVICE: seat 2 (unit 2): the config expects a generic DI/DO module, a native console answers" in out

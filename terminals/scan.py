"""Bus diagnostics for the IT person: which consoles answer on a line, and how healthy the line is.

``scan_line`` polls each unit id in turn with the ordinary Modbus RTU frames of the native profile
(docs/console-register-map.md): the identity block (IR 48..54), the error counters (IR 64..69),
STATUS and the card (IR 0..3, IR 32..37), then times five idle polls and compares their median
round trip with the time the bytes need on the wire at the line's baud.  Every timeout, CRC error,
reply from the wrong unit and exception reply is counted per unit, with a hint at the usual cause
(docs/wiring.md, "Reading the scan").  It uses only ``terminals.rtu`` and a ``Transport``, so it
runs against real hardware, an RTU-over-TCP gateway or a test double alike.

``plan_scan`` turns the config (and command-line overrides) into ``ScanTarget`` s, ``run_target``
scans one and compares the answers with the seats the config puts on that line.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from terminals import registers as reg
from terminals import rtu
from terminals.rtu import t35_seconds
from terminals.transport import LineDown, SerialTransport, TcpTransport, Transport

if TYPE_CHECKING:
    from chamber.config import Config

__all__ = [
    "ConsoleInfo",
    "LineReport",
    "ScanTarget",
    "format_reports",
    "make_transport",
    "parse_units",
    "plan_scan",
    "run_target",
    "scan_line",
]

RTT_POLLS = 5
TURNAROUND_MS = 1.0  # the datasheet: a console starts its reply within 1 ms after t3.5
NOT_NATIVE = "not a native console; maybe a generic DI/DO module"


def wire_ms(baud: int, request_bytes: int = 8, reply_bytes: int = 13) -> float:
    """The shortest possible round trip: request and reply on the wire plus the t3.5 between them."""
    return ((request_bytes + reply_bytes) * 11 / baud + t35_seconds(baud)) * 1000


@dataclass
class ConsoleInfo:
    """What one unit id answered; ``present`` means at least one valid frame came back."""

    unit: int
    present: bool = False
    native: bool | None = None
    profile: int | None = None
    device_type: str | None = None
    firmware: str | None = None
    serial: int | None = None
    caps: list[str] = field(default_factory=list)
    status: int | None = None
    card_present: bool | None = None
    card_uid: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    keys_held: list[int] = field(default_factory=list)
    rtt_ms: float | None = None
    wire_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seat: str | None = None  # what the config says this unit is ("seat 5", "seat 5 microphone")


class _Probe:
    """Request/response with error counting for one unit."""

    def __init__(self, transport: Transport, baud: int, timeout_s: float, attempts: int) -> None:
        self.transport = transport
        self.char_s = 11 / baud
        self.t35 = t35_seconds(baud)
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.last_rtt = 0.0

    def read(self, info: ConsoleInfo, errors: Counter[str], address: int, count: int) -> list[int] | None:
        """The registers, or None when every attempt failed; raises ``rtu.ExceptionResponse``."""
        request = rtu.read_registers(info.unit, address, count)
        budget = (len(request) + rtu.expected_length(request)) * self.char_s + self.timeout_s
        for _ in range(self.attempts):
            self.transport.discard()
            start = time.perf_counter()
            self.transport.write(request)
            reply = self.transport.read_reply(lambda head: rtu.length_after_header(request, head), start + budget)
            self.last_rtt = time.perf_counter() - start
            time.sleep(self.t35)  # the silence before the next frame
            if not reply:
                errors["timeout"] += 1
                continue
            try:
                regs = rtu.parse_registers(request, reply)
            except rtu.ExceptionResponse:
                errors["exception"] += 1
                info.present = True
                raise
            except rtu.WrongUnit:
                errors["wrong_unit"] += 1
                note = f"reply from unit {reply[0]} to a request for unit {info.unit}: "
                note += "two consoles with the same unit id?"
                if note not in info.notes:
                    info.notes.append(note)
                continue
            except rtu.FrameError as exc:
                errors[exc.kind] += 1
                continue
            info.present = True
            return regs
        return None


def _flags(value: int, flags: type[reg.Caps]) -> list[str]:
    return [str(flag.name).lower() for flag in flags if value & flag]


def _identify(info: ConsoleInfo, regs: list[int]) -> None:
    profile, device_type, version, patch, serial_hi, serial_lo, caps = regs
    info.profile = profile
    info.native = profile == reg.PROFILE_ID
    if not info.native:
        info.notes.append(f"PROFILE is {profile:#06x}, not {reg.PROFILE_ID:#06x}: {NOT_NATIVE}")
        return
    try:
        info.device_type = reg.DeviceType(device_type).name.lower()
    except ValueError:
        info.device_type = f"unknown ({device_type})"
    info.firmware = f"{version >> 8}.{version & 0xFF}.{patch}"
    info.serial = serial_hi << 16 | serial_lo
    info.caps = _flags(caps, reg.Caps)


def _read_health(probe: _Probe, info: ConsoleInfo, errors: Counter[str]) -> None:
    counters = probe.read(info, errors, reg.COUNTERS_START, reg.COUNTERS_COUNT)
    if counters is not None:
        crc, framing, overflow, power_ups, held_lo, held_hi = counters
        info.counters = {"crc": crc, "frame": framing, "overflow": overflow, "power_ups": power_ups}
        held = held_hi << 16 | held_lo
        info.keys_held = [bit + 1 for bit in range(21) if held >> bit & 1]
        if crc or framing:
            info.notes.append(f"the console counted {crc} CRC and {framing} framing errors (since power-up)")
        if overflow:
            info.notes.append(f"{overflow} key presses dropped: the FIFO filled up (no controller polling?)")
        if info.keys_held:
            info.notes.append(f"key(s) {', '.join(map(str, info.keys_held))} held right now: a stuck key?")
    rtts: list[float] = []
    for _ in range(RTT_POLLS):
        status = probe.read(info, errors, reg.POLL_START, reg.POLL_COUNT)
        if status is not None:
            rtts.append(probe.last_rtt)
            info.status = status[0]
    if rtts:
        info.rtt_ms = round(statistics.median(rtts) * 1000, 3)
        slack = info.wire_ms + TURNAROUND_MS + 2.0
        if info.rtt_ms > slack:
            info.notes.append(
                f"slow: round trip {info.rtt_ms:.1f} ms vs {info.wire_ms:.1f} ms on the wire "
                "(FTDI latency timer, a gateway, or a slow console)"
            )
    if info.status is not None:
        info.card_present = bool(info.status & reg.Status.CARD)
        if info.status & reg.Status.OVERFLOW:
            info.notes.append("STATUS.OVERFLOW: key events were lost at the console")
        if info.card_present:
            card = probe.read(info, errors, reg.IR_CARD_LEN, reg.CARD_READ_COUNT)
            if card is not None and card[0]:
                info.card_uid = reg.decode_uid(card[0], card[1:])


def scan_line(
    transport: Transport, baud: int, units: Iterable[int], timeout_s: float, attempts: int = 2
) -> list[ConsoleInfo]:
    """Poll every unit id on an open transport; one ``ConsoleInfo`` per unit, in the order given."""
    probe = _Probe(transport, baud, timeout_s, attempts)
    found: list[ConsoleInfo] = []
    for unit in units:
        info = ConsoleInfo(unit=unit, wire_ms=round(wire_ms(baud), 3))
        errors: Counter[str] = Counter()
        try:
            identity = probe.read(info, errors, reg.IDENTITY_START, reg.IDENTITY_COUNT)
            if identity is not None:
                _identify(info, identity)
                if info.native:
                    _read_health(probe, info, errors)
        except rtu.ExceptionResponse as exc:
            info.native = False
            info.notes.append(f"refuses the identity registers ({exc}): {NOT_NATIVE}")
        if not info.present:
            garbled = sum(n for kind, n in errors.items() if kind != "timeout")
            if garbled:
                info.notes.append("something answers, but never with a valid frame: noise, wrong baud or parity?")
            else:
                errors.pop("timeout", None)  # silence from an absent unit is not an error
        if errors["crc"]:
            info.notes.append("CRC errors: check termination, biasing and stub length")
        info.errors = {kind: n for kind, n in sorted(errors.items()) if n}
        found.append(info)
    return found


# --- lines from the config, and the report -------------------------------------------------------------


@dataclass
class ScanTarget:
    line: str
    port: str | None
    gateway: tuple[str, int] | None
    baud: int
    parity: str = "E"
    stopbits: int = 1
    low_latency: bool = True
    timeout_s: float = 0.05
    units: list[int] = field(default_factory=list)
    configured: dict[int, str] = field(default_factory=dict)  # unit -> "seat 5"
    expected_types: dict[int, str] = field(default_factory=dict)  # unit -> "seat", "chair", "mic_unit", "generic"

    @property
    def where(self) -> str:
        if self.gateway is not None:
            return f"{self.gateway[0]}:{self.gateway[1]}"
        return str(self.port)


@dataclass
class LineReport:
    line: str
    where: str
    baud: int
    framing: str
    consoles: list[ConsoleInfo] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # configured and scanned, but no valid answer
    unexpected: list[int] = field(default_factory=list)  # answered, not in the config
    wrong_kind: list[str] = field(default_factory=list)  # configured, answered, but not the console expected
    error: str | None = None  # the line could not be opened / went down
    configured_scan: bool = False  # the units came from the config (else: no config to compare with)

    @property
    def ok(self) -> bool:
        """Every configured console answered; without a config: at least one unit answered."""
        if self.error is not None or self.missing or self.wrong_kind:
            return False
        return self.configured_scan or any(c.present for c in self.consoles)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def parse_units(text: str) -> list[int]:
    """``"1-247"``, ``"1,2,5-9"`` -> sorted unit ids; ValueError with a readable message."""
    units: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        low, dash, high = part.partition("-")
        try:
            if not part.isascii():  # int() takes any script's digits: "١-٣" would be 1-3
                raise ValueError(part)
            first, last = (int(low), int(high)) if dash else (int(part), int(part))
        except ValueError:
            raise ValueError(f"--units: {part!r} is not a unit id or a range such as 5-9") from None
        if not 1 <= first <= last <= rtu.MAX_UNIT:
            raise ValueError(f"--units: {part!r}: unit ids are 1..{rtu.MAX_UNIT}, ranges low-high")
        units.update(range(first, last + 1))
    return sorted(units)


def make_transport(target: ScanTarget) -> Transport:
    if target.gateway is not None:
        return TcpTransport(*target.gateway)
    assert target.port is not None
    return SerialTransport(target.port, target.baud, target.parity, target.stopbits, target.low_latency)


def plan_scan(
    config: Config | None,
    line: str | None = None,
    port: str | None = None,
    gateway: str | None = None,
    baud: int | None = None,
    parity: str | None = None,
    units: list[int] | None = None,
    timeout_ms: int | None = None,
) -> list[ScanTarget]:
    """The lines to scan: the config's (or one of them), with command-line overrides; ValueError on misuse."""
    address: tuple[str, int] | None = None
    if gateway is not None:
        host, _, number = gateway.rpartition(":")
        if not host or not (number.isascii() and number.isdigit()):  # "٣" is a digit to isdigit()
            raise ValueError(f"--gateway must be HOST:PORT, got {gateway!r}")
        address = (host.strip("[]"), int(number))
    if config is None:
        if port is None and address is None:
            raise ValueError("give --config (scan its lines) or --port / --gateway")
        par = parity or "E"
        return [
            ScanTarget(line=line or "-", port=port, gateway=address, baud=baud or 115200, parity=par,
                       stopbits=2 if par == "N" else 1, timeout_s=(timeout_ms or 50) / 1000,
                       units=units or list(range(1, rtu.MAX_UNIT + 1)))
        ]  # fmt: skip
    lines = config.lines
    if line is not None:
        lines = [item for item in config.lines if item.id == line]
        if not lines:
            raise ValueError(f"no line {line!r} in {config.source}; lines: {', '.join(i.id for i in config.lines)}")
    elif (port or address) and len(lines) > 1:
        raise ValueError("--port / --gateway replace one line's connection: say which with --line")
    targets: list[ScanTarget] = []
    for item in lines:
        configured: dict[int, str] = {}
        expected: dict[int, str] = {}
        for seat in config.seats_on(item.id):
            configured[seat.unit] = f"seat {seat.id}" + (" (chair)" if seat.chair else "")
            expected[seat.unit] = "generic" if seat.generic else "chair" if seat.chair else "seat"
            if seat.mic_unit is not None and seat.mic_unit != seat.unit:
                configured[seat.mic_unit] = f"seat {seat.id} microphone"
                expected[seat.mic_unit] = "mic_unit"
        own = port is None and address is None
        targets.append(
            ScanTarget(
                line=item.id,
                port=item.port if own else port,
                gateway=(item.gateway_address if item.gateway else None) if own else address,
                baud=baud or item.baud,
                parity=parity or item.parity,
                stopbits=item.stopbits,
                low_latency=item.low_latency,
                timeout_s=(timeout_ms or item.timeout_ms) / 1000,
                units=units or sorted(configured),
                configured=configured,
                expected_types=expected,
            )
        )
    return targets


def run_target(target: ScanTarget, attempts: int = 2) -> LineReport:
    """Open the line, scan it, close it, and compare the answers with the config."""
    report = LineReport(
        line=target.line,
        where=target.where,
        baud=target.baud,
        framing=f"8{target.parity}{target.stopbits}" if target.gateway is None else "set on the gateway",
        configured_scan=bool(target.configured),
    )
    transport = make_transport(target)
    try:
        transport.open()
        report.consoles = scan_line(transport, target.baud, target.units, target.timeout_s, attempts)
    except LineDown as exc:
        report.error = str(exc)
        return report
    finally:
        transport.close()
    for info in report.consoles:
        info.seat = target.configured.get(info.unit)
        if info.seat is None and info.present:
            report.unexpected.append(info.unit)
        elif info.seat is not None and not info.present:
            report.missing.append(f"{info.seat} (unit {info.unit})")
        elif info.seat is not None and target.expected_types.get(info.unit) == "generic":
            if info.native:  # a module is expected: anything that answers but is not a native console fits
                report.wrong_kind.append(f"{info.seat} (unit {info.unit}): the config expects a generic DI/DO "
                                         "module, a native console answers")  # fmt: skip
        elif info.seat is not None and not info.native:
            report.wrong_kind.append(f"{info.seat} (unit {info.unit}): {NOT_NATIVE}")
        elif info.seat is not None and info.device_type != target.expected_types.get(info.unit, info.device_type):
            wanted = target.expected_types[info.unit]
            report.wrong_kind.append(f"{info.seat} (unit {info.unit}): the config expects a {wanted}, "
                                     f"the unit says it is a {info.device_type}")  # fmt: skip
    return report


def _row(info: ConsoleInfo) -> list[str]:
    state = "OK" if info.present and info.native else "FOREIGN" if info.present else "NO REPLY"
    card = "-" if info.card_present is None else (info.card_uid or "yes") if info.card_present else "no"
    rtt = f"{info.rtt_ms:.2f} / {info.wire_ms:.2f}" if info.rtt_ms is not None else "-"
    errors = " ".join(f"{k}={v}" for k, v in info.errors.items()) or "-"
    serial = f"{info.serial:08d}" if info.serial is not None else "-"
    counters = "/".join(str(info.counters.get(k, "")) for k in ("crc", "frame", "overflow")) if info.counters else "-"
    return [str(info.unit), info.seat or "-", state, info.device_type or "-", info.firmware or "-", serial, card,
            rtt, counters, errors]  # fmt: skip


HEADINGS = ["unit", "місце/seat", "стан/state", "type", "firmware", "serial", "картка/card", "RTT/wire ms",
            "crc/frame/ovf", "scan errors"]  # fmt: skip


def format_reports(reports: list[LineReport], show_absent: bool = False) -> str:
    """A readable table per line; units that did not answer and are not configured are left out."""
    out: list[str] = []
    for report in reports:
        out.append(f"Лінія / line {report.line}: {report.where}, {report.baud} baud, {report.framing}")
        if report.error is not None:
            out += [f"  ЛІНІЯ НЕДОСТУПНА / LINE DOWN: {report.error}", ""]
            continue
        shown = [c for c in report.consoles if c.present or c.seat is not None or c.errors or show_absent]
        rows = [HEADINGS] + [_row(c) for c in shown]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADINGS))]
        out += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        for info in shown:
            out += [f"  unit {info.unit}: {note}" for note in info.notes]
        answered = sum(c.present for c in report.consoles)
        out.append(f"  відповіли / answered: {answered} of {len(report.consoles)} unit id(s) scanned")
        if report.missing:
            out.append(f"  НЕ ВІДПОВІЛИ / NO REPLY from configured: {', '.join(report.missing)}")
        if report.wrong_kind:
            out += [f"  НЕ ТОЙ ПРИСТРІЙ / WRONG DEVICE: {what}" for what in report.wrong_kind]
        if report.unexpected:
            units = ", ".join(map(str, report.unexpected))
            out.append(f"  НЕ В КОНФІГУРАЦІЇ / not in the config: unit(s) {units}")
        out.append("")
    return "\n".join(out)

"""The simulator: every configured RS-485 line as a virtual serial port with real Modbus RTU slaves.

How it works
------------
For each ``[[lines]]`` entry of the config (whether it names a serial port or a gateway: the simulator
replaces the hardware either way) :class:`Simulator` builds:

* the console models of the line's seats (:class:`hardware_sim.console.ConsoleModel`, unit ids from
  the config; the chair seat is a chair console; a seat with ``mic_unit`` also gets a
  :class:`~hardware_sim.console.MicUnitModel` with that unit id);
* for a seat with ``profile = "generic"`` instead a :class:`hardware_sim.generic.GenericModuleModel`
  (an off-the-shelf DI/DO module: keys, card switch and presence on discrete inputs, LEDs and the
  microphone relay on coils; :meth:`Simulator.press` holds its key input for ``hold_s`` and lets go);
* a pty pair: the controller opens ``lines[line_id]`` (the slave end), the line's
  :class:`hardware_sim.wire.Wire` holds the master end.  The simulator keeps its own fd on the slave
  end open so a controller may close and reopen its port at will.

One :class:`hardware_sim.busloop.BusLoop` thread drives every wire of the simulator: one ``select``
over all the ptys, one heap of the times replies are due on the wire.  The consoles answer in that
thread through :mod:`hardware_sim.slave` (the project's RTU codec, no second hop), which is what
keeps a process serving 16 or 32 lines of 128 consoles on time (docs/simulator.md, "How it keeps up").

``pymodbus=True`` (``--pymodbus``) makes pymodbus 3.16 answer instead, the reference the direct
answers are checked against (``tests/test_sim_slave.py``): each line then also gets a second pty pair
and a ``ModbusSerialServer`` (RTU framer) on its slave end, whose devices are ``SimDevice``s with one
shared block of registers from address 0 and the model's ``action`` coroutine, so every read is
rendered from the model and every write applied to it (a generic module's block is one register,
bit-addressed: see :mod:`hardware_sim.generic`); the wire forwards each request to it and waits for
its reply.  Wire time, faults, broadcasts and stats are the wire's either way.

The pymodbus servers share one asyncio event loop in one more thread.  With ``tcp=True`` each line
is instead a ``ModbusTcpServer`` with the RTU framer (RTU over TCP, like a serial-to-Ethernet gateway)
on a free loopback port; there is no wire there (no wire time, no fault injection), broadcasts are
pymodbus's own (``broadcast_enable``) and a request for a unit that is not on the line gets exception
0x0B (gateway target failed to respond), as a serial-to-Ethernet gateway answers.

:meth:`Simulator.stop` stops the bus loop and the servers (threads joined), closes every fd and
removes the symlinks it made under ``link_dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import tty
from collections.abc import Callable, Collection
from pathlib import Path
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType

from chamber.config import Config, SeatConfig
from chamber.core.values import Key
from hardware_sim.busloop import BusLoop
from hardware_sim.console import REGISTER_SPACE, ConsoleModel, MicUnitModel
from hardware_sim.eeprom import PowerUpCounts
from hardware_sim.generic import HOLD_S, GenericModuleModel
from hardware_sim.wire import Wire
from terminals import registers as r

_KEY_NAMES = {k.name.lower(): k for k in Key} | {"speak": Key.SPEAK, "reply": Key.REPLY, "order": Key.ORDER}


def parse_key(key: Key | int | str) -> Key:
    """A key from a Key, its code (1 … 21) or its name ("yes", "register", "p3", "priority" …)."""
    if isinstance(key, bool):
        raise ValueError(f"not a key: {key!r}")
    if isinstance(key, int):
        try:
            return Key(key)
        except ValueError:
            raise ValueError(f"no key has code {key}; codes: {', '.join(str(int(k)) for k in Key)}") from None
    if isinstance(key, str):
        found = _KEY_NAMES.get(key.strip().lower())
        if found is None:
            raise ValueError(f"unknown key {key!r}; keys: {', '.join(sorted(_KEY_NAMES))}")
        return found
    raise ValueError(f"not a key: {key!r}")


async def _no_such_unit(
    function_code: int,
    start_address: int,
    address: int,
    count: int,
    registers: list[int],
    set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return ExcCodes.GATEWAY_NO_RESPONSE


class _Line:
    """Everything the simulator runs for one line."""

    def __init__(self, line_id: str, baud: int, parity: str, stopbits: int) -> None:
        self.id = line_id
        self.baud = baud
        self.parity = parity
        self.stopbits = stopbits
        self.consoles: dict[int, ConsoleModel | GenericModuleModel] = {}  # by unit id, mic units included
        self.fds: list[int] = []
        self.controller_path = ""
        self.server_path = ""
        self.wire: Wire | None = None
        self.server: ModbusSerialServer | ModbusTcpServer | None = None
        self.address = ""  # what the controller opens: a pty path or "host:port"
        self.link: Path | None = None


def _pty() -> tuple[int, int, str]:
    """A raw pty pair: (master fd, slave fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


class Simulator:
    """Simulated consoles for every line of ``config`` (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        wire_time: bool = False,
        turnaround_ms: float = 0.3,
        seed: int = 1,
        link_dir: str | os.PathLike[str] | None = None,
        tcp: bool = False,
        seq_start: int = 0,
        only_lines: Collection[str] | None = None,
        hold_s: float = HOLD_S,
        eeprom: str | os.PathLike[str] | None = None,
        pymodbus: bool = False,
        realtime: bool = False,
    ) -> None:
        self.config = config
        self.pymodbus = pymodbus
        self.realtime = realtime
        self.wire_time = wire_time
        self.turnaround_s = turnaround_ms / 1000.0
        self.seed = seed
        self.link_dir = Path(link_dir) if link_dir is not None else None
        self.tcp = tcp
        self.lines: dict[str, str] = {}
        # only_lines: serve some lines only (a benchmark runs one simulator process per line)
        served = [line for line in config.lines if only_lines is None or line.id in only_lines]
        self.seats: dict[int, SeatConfig] = {
            seat.id: seat for seat in config.seats if any(seat.line == line.id for line in served)
        }
        self._lines: dict[str, _Line] = {}
        self._consoles: dict[int, ConsoleModel | GenericModuleModel] = {}
        self._mics: dict[int, MicUnitModel] = {}
        self.power_ups = PowerUpCounts(eeprom)
        for index, line_cfg in enumerate(served):
            line = _Line(line_cfg.id, line_cfg.baud, line_cfg.parity, line_cfg.stopbits)
            for seat in config.seats_on(line_cfg.id):
                if seat.generic:
                    module = GenericModuleModel(seat.unit, hold_s=hold_s)
                    line.consoles[seat.unit] = module
                    self._consoles[seat.id] = module
                    continue
                console = ConsoleModel(
                    seat.unit,
                    device_type=r.DeviceType.CHAIR if seat.chair else r.DeviceType.SEAT,
                    presence_sensor=seat.presence_sensor,
                    has_mic=seat.mic_unit is None or seat.mic_unit == seat.unit,
                    serial=0x00C00000 + (index + 1) * 0x1000 + seat.unit,
                    seq_start=seq_start,
                    power_ups=self.power_ups.first(line_cfg.id, seat.unit),
                    on_power_up=self.power_ups.recorder(line_cfg.id, seat.unit),
                )
                line.consoles[seat.unit] = console
                self._consoles[seat.id] = console
                if seat.mic_unit is not None and seat.mic_unit != seat.unit:
                    mic = MicUnitModel(seat.mic_unit, serial=0x00D00000 + (index + 1) * 0x1000 + seat.mic_unit)
                    line.consoles[seat.mic_unit] = mic
                    self._mics[seat.id] = mic
            self._lines[line_cfg.id] = line
        self.power_ups.start()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._bus: BusLoop | None = None
        self._started = False

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Create the ptys, start the bus loop (and the pymodbus servers if any); fills :attr:`lines`."""
        if self._started:
            return
        self._started = True
        try:
            if self.tcp or self.pymodbus:
                self._start_asyncio()
            for line in self._lines.values():
                self._start_line(line)
            wires = [line.wire for line in self._lines.values() if line.wire is not None]
            if wires:
                self._bus = BusLoop(wires, realtime=self.realtime)
                self._bus.start()
        except BaseException:
            self.stop()
            raise

    def _start_asyncio(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready = threading.Event()

        def run_loop() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop_thread = threading.Thread(target=run_loop, name="sim-modbus-loop", daemon=True)
        self._loop_thread.start()
        ready.wait(5)

    def _start_line(self, line: _Line) -> None:
        if not self.tcp:
            ctrl_master, ctrl_slave, ctrl_path = _pty()
            line.fds += [ctrl_master, ctrl_slave]
            line.controller_path = ctrl_path
            server_fd = None
            if self.pymodbus:
                srv_master, srv_slave, srv_path = _pty()
                line.fds += [srv_master, srv_slave]
                line.server_path = srv_path
                server_fd = srv_master
                self._serve(line)
            line.wire = Wire(
                line.id,
                ctrl_master,
                line.baud,
                line.consoles,
                server_fd=server_fd,
                wire_time=self.wire_time,
                turnaround_s=self.turnaround_s,
                seed=self.seed * 1000 + len(self.lines),
            )
            line.address = ctrl_path
        else:
            self._serve(line)
        if self.link_dir is not None and not self.tcp:
            self.link_dir.mkdir(parents=True, exist_ok=True)
            link = self.link_dir / f"line-{line.id}"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(line.address)
            line.link = link
        self.lines[line.id] = line.address

    def _serve(self, line: _Line) -> None:
        """Start the line's pymodbus server: on its server pty, or (tcp) on a loopback port."""
        assert self._loop is not None
        devices = [
            SimDevice(
                id=unit,
                simdata=[SimData(address=0, count=1, values=0, datatype=DataType.REGISTERS)],
                use_bit_addressing=True,  # bit address a = bit a % 16 of register a // 16
                action=console.action,
            )
            if isinstance(console, GenericModuleModel)
            else SimDevice(
                id=unit,
                simdata=[SimData(address=0, count=REGISTER_SPACE, values=0, datatype=DataType.REGISTERS)],
                action=console.action,
            )
            for unit, console in sorted(line.consoles.items())
        ]
        if self.tcp:
            # pymodbus serves an unknown unit id from device 0; without one it logs a KeyError and answers
            # exception 04.  A gateway answers 0x0B (target device failed to respond): do that.
            devices.append(
                SimDevice(
                    id=0,
                    simdata=[SimData(address=0, count=0x10000, values=0, datatype=DataType.REGISTERS)],
                    action=_no_such_unit,
                )
            )
            line.address = asyncio.run_coroutine_threadsafe(self._serve_tcp(line, devices), self._loop).result(10)
        else:
            asyncio.run_coroutine_threadsafe(self._serve_serial(line, devices), self._loop).result(10)

    async def _serve_serial(self, line: _Line, devices: list[SimDevice]) -> None:
        server = ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=line.server_path,
            baudrate=line.baud,
            parity="N",  # a pty carries no parity, and Linux refuses PARENB on a pty (EINVAL) on reconfigure
            stopbits=line.stopbits,
        )
        line.server = server
        await server.serve_forever(background=True)

    async def _serve_tcp(self, line: _Line, devices: list[SimDevice]) -> str:
        server = ModbusTcpServer(devices, framer=FramerType.RTU, address=("127.0.0.1", 0), broadcast_enable=True)
        line.server = server
        await server.serve_forever(background=True)
        sockets = getattr(server.transport, "sockets", None) or []
        host, port = sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    def stop(self) -> None:
        """Stop everything: the bus loop and the servers' thread joined, fds closed, symlinks removed."""
        loop = self._loop
        for console in self._consoles.values():
            if isinstance(console, GenericModuleModel):
                console.release_all()  # no key-release timers outlive the simulator
        if self._bus is not None:
            self._bus.stop()
            self._bus = None
        for line in self._lines.values():
            line.wire = None
            if line.server is not None and loop is not None and loop.is_running():
                with contextlib.suppress(Exception):
                    asyncio.run_coroutine_threadsafe(line.server.shutdown(), loop).result(5)  # type: ignore[no-untyped-call]
            line.server = None
        if loop is not None:
            if loop.is_running():
                loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(5)
            if not loop.is_running():
                self._cancel_pending(loop)
                loop.close()
        self._loop = None
        self._loop_thread = None
        for line in self._lines.values():
            for fd in line.fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            line.fds.clear()
            if line.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    line.link.unlink()
                line.link = None
        self.lines.clear()
        self._started = False

    @staticmethod
    def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ seats and people

    def console(self, seat_id: int) -> ConsoleModel | GenericModuleModel:
        """The console model at a seat, or its generic module (KeyError for an unknown seat)."""
        try:
            return self._consoles[seat_id]
        except KeyError:
            raise KeyError(f"no seat {seat_id} in the config") from None

    def mic_unit(self, seat_id: int) -> MicUnitModel | None:
        """The seat's separate microphone unit, or None when the console is its own microphone."""
        self.console(seat_id)
        return self._mics.get(seat_id)

    def line_of(self, seat_id: int) -> str:
        self.console(seat_id)
        return self.seats[seat_id].line

    def module(self, seat_id: int) -> GenericModuleModel:
        """The generic module at a seat (KeyError for an unknown seat, ValueError for a native console)."""
        console = self.console(seat_id)
        if not isinstance(console, GenericModuleModel):
            raise ValueError(f"seat {seat_id} is a native console, not a generic module")
        return console

    def press(self, seat: int, key: Key | int | str) -> bool:
        """Tap a key at a seat.  False when the console dropped the press (FIFO full or powered off).

        At a generic module the key's input is held for the module's ``hold_s`` and released by a
        timer; False there also means the key was still down from the previous press.
        """
        return self.console(seat).press(parse_key(key))

    def insert_card(self, seat: int, uid: str) -> None:
        """Insert a card.  A generic module only closes its card switch; the UID is kept for views."""
        self.console(seat).insert_card(uid)

    def remove_card(self, seat: int) -> str | None:
        return self.console(seat).remove_card()

    def move_card(self, from_seat: int, to_seat: int) -> str:
        """Take the card out of one seat and put it into another (the anti-proxy test case)."""
        target = self.console(to_seat)
        if target.card is not None:
            raise ValueError(f"seat {to_seat} already has a card")
        uid = self.console(from_seat).remove_card()
        if uid is None:
            raise ValueError(f"seat {from_seat} has no card to move")
        target.insert_card(uid)
        return uid

    def set_presence(self, seat: int, present: bool) -> None:
        self.console(seat).set_presence(present)

    def power_cycle(self, seat: int) -> None:
        self.console(seat).power_cycle()

    # ------------------------------------------------------------------ faults and stats

    def _wire(self, line_id: str) -> Wire:
        if line_id not in self._lines:
            raise KeyError(f"no line {line_id!r}; lines: {', '.join(self._lines)}")
        wire = self._lines[line_id].wire
        if wire is None:
            raise ValueError(f"line {line_id!r} has no wire (not started, or served over TCP): no fault injection")
        return wire

    def set_fault(self, line: str, unit: int | None = None, **faults: Any) -> None:
        """Faults of a line, or of one unit on it: dead, crc_rate, drop_rate, slow_ms, noise_rate, garbage."""
        self._wire(line).set_faults(unit, **faults)

    def set_request_hook(self, line: str, hook: Callable[[int, bytes], None] | None) -> None:
        """Run ``hook(unit, frame)`` on the simulator's loop thread as each request arrives, before it is
        served (the bus is busy with that request meanwhile: tests use it to act between two polls)."""
        self._wire(line).set_request_hook(hook)

    def clear_faults(self, line: str | None = None, unit: int | None = None) -> None:
        """Remove faults: of one unit, of one line, or (no arguments) everywhere."""
        for line_id in [line] if line is not None else list(self._lines):
            wire = self._lines[line_id].wire if line_id in self._lines else None
            if wire is not None:
                wire.clear_faults(unit)
            elif line is not None:
                self._wire(line_id)

    def stats(self) -> dict[str, dict[str, object]]:
        """Per line: requests, replies, broadcasts, bad_frames, no_device, faults by kind."""
        return {line_id: line.wire.stats() for line_id, line in self._lines.items() if line.wire is not None}

    def pending(self) -> dict[int, int]:
        """Seats whose console holds unacknowledged key events, with how many (a generic module holds none).

        Cheap enough to ask many times a second while the bus is busy, unlike :meth:`state`."""
        out: dict[int, int] = {}
        for seat_id, console in self._consoles.items():
            if isinstance(console, ConsoleModel):
                n = console.pending_count()
                if n:
                    out[seat_id] = n
        return out

    def state(self) -> dict[int, dict[str, object]]:
        """Every seat's console decoded (LEDs, mic, mode, text, card …), for the HTTP API and tests."""
        out: dict[int, dict[str, object]] = {}
        for seat_id, console in sorted(self._consoles.items()):
            st = console.state()
            mic = self._mics.get(seat_id)
            generic = isinstance(console, GenericModuleModel)
            out[seat_id] = {
                "line": self.seats[seat_id].line,
                "unit": st.unit,
                "device_type": "generic" if generic else r.DeviceType(st.device_type).name.lower(),
                "powered": st.powered,
                "status": st.status,
                "leds": st.leds,
                "led_names": [str(led.name).lower() for led in r.Led if led is not r.Led.CHOICES and st.leds & led],
                "proposal_leds": st.proposal_leds,
                "mic": mic.state().mic if mic is not None else st.mic,
                "mode": st.mode,
                "mode_name": r.Mode(st.mode).name.lower() if st.mode in {int(m) for m in r.Mode} else str(st.mode),
                "proposals": st.proposals,
                "text": st.text,
                "card": st.card,
                "presence": st.presence,
                "pending": [[seq, key] for seq, key in st.pending],
                "err_overflow": st.err_overflow,
                "err_crc": st.err_crc,
            }
            if generic:  # no mode, text or event FIFO: say so instead of reporting zeros
                out[seat_id].update(mode=None, mode_name=None, text=None, pending=None, inputs=st.status)
        return out

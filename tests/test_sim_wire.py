"""hardware_sim.wire and hardware_sim.busloop with the time passed in: no pty, no thread, no sleep.

A :class:`Wire` takes the time from its caller, so these tests drive it as the bus loop would, with a
socket pair standing for the controller's pty, and check when each byte is due to the microsecond:
the wire clock of a poll, back-to-back polls, broadcasts, noise and slow replies, garbage, a frame
cut by the silence, a pymodbus server that does not answer.  The lateness figure is checked with a
clock injected into the wire.  The last tests run a real :class:`BusLoop` over two wires.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from hardware_sim.busloop import BusLoop
from hardware_sim.console import ConsoleModel
from hardware_sim.wire import SERVER_TIMEOUT_S, Phase, Wire
from terminals import registers as r
from terminals import rtu

BAUD = 115200
CHAR = 11 / BAUD
T35 = 0.00175
TURN = 0.0003
POLL = rtu.read_registers(1, 0, 4)  # 8 bytes; the reply is 13


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ends() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def make_wire(sock: socket.socket, clock: Clock | None = None, **kw: object) -> tuple[Wire, dict[int, ConsoleModel]]:
    consoles = {unit: ConsoleModel(unit) for unit in (1, 2)}
    wire = Wire("A", sock.fileno(), BAUD, consoles, wire_time=True, turnaround_s=TURN, clock=clock or Clock(), **kw)  # type: ignore[arg-type]
    return wire, consoles


def pending(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return b""


def test_a_poll_is_due_at_its_wire_time(ends: tuple[socket.socket, socket.socket]) -> None:
    ours, master = ends
    clock = Clock()
    wire, _ = make_wire(ours, clock)
    master.send(POLL)
    wire.on_readable(wire.controller_fd, 10.0)
    due = 10.0 + 8 * CHAR + T35 + TURN + 13 * CHAR
    assert wire.phase is Phase.DELIVERING and wire.deadline == pytest.approx(due, abs=1e-9)
    assert pending(master) == b""  # the reply is held until its wire time
    wire.on_timer(due - 1e-6)
    assert pending(master) == b""
    clock.now = due + 0.0002  # the write started 0.2 ms late
    wire.on_timer(due + 0.0002)
    reply = pending(master)
    assert rtu.parse_registers(POLL, reply)[0] == r.Status.RESTARTED
    assert wire.idle and wire.deadline is None
    assert wire.bus_free_at == pytest.approx(due + T35)
    stats = wire.stats()
    assert (stats["requests"], stats["replies"], stats["timed_replies"]) == (1, 1, 1)
    assert stats["late_ms_total"] == pytest.approx(0.2) and stats["late_ms_max"] == pytest.approx(0.2)


def test_the_next_request_waits_for_the_bus(ends: tuple[socket.socket, socket.socket]) -> None:
    """A request that comes before the bus is free starts when it is free (t3.5 after the reply)."""
    ours, master = ends
    wire, _ = make_wire(ours)
    master.send(POLL)
    wire.on_readable(wire.controller_fd, 0.0)
    first = wire.deadline
    assert first is not None
    master.send(rtu.read_registers(2, 0, 4))  # written before the first reply is out: it waits
    wire.on_readable(wire.controller_fd, 0.001)
    assert wire.deadline == first
    wire.on_timer(first)
    assert len(pending(master)) == 13
    assert wire.deadline == pytest.approx(first + T35 + 8 * CHAR + T35 + TURN + 13 * CHAR)


def test_a_broadcast_keeps_the_bus_busy_without_a_reply(ends: tuple[socket.socket, socket.socket]) -> None:
    ours, master = ends
    wire, consoles = make_wire(ours)
    frame = rtu.write_register(0, r.HR_MODE, r.mode_word(r.Mode.VOTE_YES_NO))
    master.send(frame)
    wire.on_readable(wire.controller_fd, 5.0)
    assert wire.idle and wire.deadline is None and pending(master) == b""
    assert all(c.state().mode == r.Mode.VOTE_YES_NO for c in consoles.values())
    assert wire.bus_free_at == pytest.approx(5.0 + len(frame) * CHAR + r.BROADCAST_TURNAROUND_S)


def test_noise_then_a_slow_reply(ends: tuple[socket.socket, socket.socket]) -> None:
    ours, master = ends
    wire, _ = make_wire(ours)
    wire.set_faults(noise_rate=1.0, slow_ms=2.0)
    master.send(POLL)
    wire.on_readable(wire.controller_fd, 0.0)
    noise_due = wire.deadline
    assert noise_due is not None and 8 * CHAR + 3 * CHAR <= noise_due <= 8 * CHAR + 12 * CHAR + 1e-9
    wire.on_timer(noise_due)
    noise = pending(master)
    assert 3 <= len(noise) <= 12
    reply_due = wire.deadline
    assert reply_due == pytest.approx(max(8 * CHAR + T35 + TURN + 0.002, noise_due + T35) + 13 * CHAR)
    wire.on_timer(reply_due)  # type: ignore[arg-type]
    assert len(pending(master)) == 13
    faults = wire.stats()["faults"]
    assert faults["noise"] == 1 and faults["slow"] == 1  # type: ignore[index]


def test_a_frame_cut_short_is_a_bad_frame_after_the_silence(ends: tuple[socket.socket, socket.socket]) -> None:
    ours, master = ends
    wire, consoles = make_wire(ours)
    master.send(POLL[:3])
    wire.on_readable(wire.controller_fd, 1.0)
    assert wire.deadline == pytest.approx(1.0 + T35)  # the 3.5-character silence ends the frame
    wire.on_timer(1.0 + T35)
    assert wire.stats()["bad_frames"] == 1 and wire.deadline is None
    assert consoles[1].read_registers(4, r.IR_ERR_FRAME, 1) == [1]  # 3 bytes: a framing error
    master.send(POLL)  # the line works on
    wire.on_readable(wire.controller_fd, 2.0)
    assert wire.phase is Phase.DELIVERING


def test_garbage_goes_out_when_the_bus_is_free(ends: tuple[socket.socket, socket.socket]) -> None:
    ours, master = ends
    wire, _ = make_wire(ours)
    master.send(POLL)
    wire.on_readable(wire.controller_fd, 0.0)
    due = wire.deadline
    assert due is not None
    wire.set_faults(garbage=b"\xde\xad")
    wire.poke(0.0001)  # busy with the poll: the garbage waits
    wire.on_timer(due)
    assert len(pending(master)) == 13
    assert wire.deadline == pytest.approx(due + T35 + 2 * CHAR)
    wire.on_timer(due + T35 + 2 * CHAR)
    assert pending(master) == b"\xde\xad" and wire.stats()["faults"]["garbage"] == 1  # type: ignore[index]


def test_a_server_that_does_not_answer_is_given_up(ends: tuple[socket.socket, socket.socket]) -> None:
    """With pymodbus answering, the transaction waits for it at most SERVER_TIMEOUT_S: no reply then."""
    ours, master = ends
    srv_ours, srv_theirs = socket.socketpair()
    try:
        wire, _ = make_wire(ours, server_fd=srv_ours.fileno())
        master.send(POLL)
        wire.on_readable(wire.controller_fd, 0.0)
        assert wire.phase is Phase.ASKING and srv_theirs.recv(64) == POLL
        assert wire.deadline == pytest.approx(SERVER_TIMEOUT_S)
        wire.on_timer(SERVER_TIMEOUT_S)
        assert wire.idle and pending(master) == b"" and wire.stats()["replies"] == 0
        master.send(POLL)  # this time it answers, in two pieces
        wire.on_readable(wire.controller_fd, 1.0)
        reply = srv_theirs.recv(64) and rtu.with_crc(bytes((1, 4, 8)) + bytes(8))
        srv_theirs.send(reply[:5])
        wire.on_readable(wire.server_fd, 1.0001)  # type: ignore[arg-type]
        assert wire.phase is Phase.ASKING
        srv_theirs.send(reply[5:])
        wire.on_readable(wire.server_fd, 1.0002)  # type: ignore[arg-type]
        assert wire.phase is Phase.DELIVERING
        wire.on_timer(wire.deadline)  # type: ignore[arg-type]
        assert pending(master) == reply
    finally:
        srv_ours.close()
        srv_theirs.close()


# --------------------------------------------------------------------------- the loop


def test_one_loop_serves_two_lines_at_their_wire_time() -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    wires = [make_wire(ours, clock=time.perf_counter)[0] for ours, _ in pairs]  # type: ignore[arg-type]
    loop = BusLoop(wires)
    loop.start()
    try:
        started = time.perf_counter()
        for _, master in pairs:
            master.send(POLL)
        for _, master in pairs:
            master.settimeout(2.0)
            assert len(master.recv(64)) == 13
        took = time.perf_counter() - started
        assert took >= 8 * CHAR + T35 + TURN + 13 * CHAR  # never early
    finally:
        loop.stop()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
    assert not loop.is_alive()
    assert all(w.stats()["timed_replies"] == 1 for w in wires)


def test_a_failing_request_hook_does_not_stop_the_line() -> None:
    ours, master = socket.socketpair()
    wire, _ = make_wire(ours, clock=time.perf_counter)  # type: ignore[arg-type]
    calls: list[int] = []

    def hook(unit: int, frame: bytes) -> None:
        calls.append(unit)
        if len(calls) == 1:
            raise RuntimeError("a test's hook went wrong")

    wire.set_request_hook(hook)
    loop = BusLoop([wire])
    loop.start()
    try:
        master.settimeout(2.0)
        master.send(POLL)  # the hook raises: logged, no reply to this one
        time.sleep(0.05)
        master.send(POLL)
        assert len(master.recv(64)) == 13
    finally:
        loop.stop()
        ours.close()
        master.close()
    assert calls == [1, 1]

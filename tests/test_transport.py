"""The two transports on their own: a serial port (a pty stands in for the USB adapter) and a TCP gateway.

What a line loop relies on: a reply is collected until it is complete or the deadline passes, a port
that cannot do FTDI low-latency mode is still used, whatever is waiting can be discarded, and a port
or gateway that goes away is a ``LineDown`` (never another exception).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminals import transport
from terminals.transport import LineDown, SerialTransport, TcpTransport


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)
    yield master, path
    with contextlib.suppress(OSError):  # a test may have closed it (the adapter unplugged)
        os.close(master)


def test_serial_port_without_low_latency_mode_is_still_used(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    port = SerialTransport(path, 115200, "N", 1, low_latency=True)  # a pty refuses the FTDI ioctl
    port.open()
    try:
        os.write(master, b"noise")
        time.sleep(0.05)
        assert port.discard() == 5
        port.write(b"\x01\x04\x00\x00\x00\x04\xf1\xc9")
        assert os.read(master, 64) == b"\x01\x04\x00\x00\x00\x04\xf1\xc9"

        def answer() -> None:
            os.write(master, b"\x01\x04\x08")
            time.sleep(0.02)  # the rest of the reply a little later, as bytes come off a wire
            os.write(master, bytes(8) + b"\x00\x00")

        threading.Thread(target=answer).start()
        reply = port.read_reply(lambda head: 13, time.perf_counter() + 1.0)
        assert len(reply) == 13
        start = time.perf_counter()
        assert port.read_reply(lambda head: 13, time.perf_counter() + 0.05) == b""  # silence: the deadline
        assert time.perf_counter() - start < 0.5
    finally:
        port.close()


def test_serial_port_that_goes_away_is_line_down(pty_pair: tuple[int, str], tmp_path: Path) -> None:
    with pytest.raises(LineDown, match="cannot open"):
        SerialTransport(str(tmp_path / "ttyUSB9"), 115200).open()
    master, path = pty_pair
    port = SerialTransport(path, 115200, "N", 1)
    port.open()
    os.close(master)  # the adapter is unplugged
    with pytest.raises(LineDown):
        port.write(b"\x01\x04\x00\x00\x00\x04\xf1\xc9")
        port.read_reply(lambda head: 13, time.perf_counter() + 0.2)
    port.close()


def test_tcp_gateway_reply_and_a_gateway_that_closes() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    host, port_no = server.getsockname()
    gateway = TcpTransport(host, port_no, connect_timeout=1.0)
    gateway.open()
    conn, _ = server.accept()
    try:
        gateway.write(b"\x01\x04\x00\x00\x00\x04\xf1\xc9")
        assert conn.recv(64) == b"\x01\x04\x00\x00\x00\x04\xf1\xc9"
        conn.sendall(b"\x01\x04\x08" + bytes(10))
        assert len(gateway.read_reply(lambda head: 13, time.perf_counter() + 1.0)) == 13
        conn.close()  # the gateway drops the connection
        with pytest.raises(LineDown):
            gateway.read_reply(lambda head: 13, time.perf_counter() + 0.5)
    finally:
        gateway.close()
        server.close()
    with pytest.raises(LineDown):
        TcpTransport("127.0.0.1", port_no, connect_timeout=0.5).open()  # nobody listens any more


def test_a_write_the_port_takes_in_parts_is_written_whole(pty_pair: tuple[int, str]) -> None:
    """The fd is non-blocking: a full transmit buffer takes part of a frame, or nothing for a while."""
    master, path = pty_pair
    port = SerialTransport(path, 115200, "N", 1, low_latency=False)
    port.open()
    data = bytes(range(256)) * 4096  # 1 MiB: far more than a pty buffers
    got = bytearray()

    def drain() -> None:
        while len(got) < len(data):
            time.sleep(0.001)  # a slow reader: the writer finds the buffer full again and again
            with contextlib.suppress(BlockingIOError):
                got.extend(os.read(master, 65536))

    os.set_blocking(master, False)
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        port.write(data)
        reader.join(10)
        assert bytes(got) == data
    finally:
        port.close()


def test_a_write_nobody_takes_is_a_line_fault_not_a_hang(
    pty_pair: tuple[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "WRITE_TIMEOUT_S", 0.2)
    _, path = pty_pair
    port = SerialTransport(path, 115200, "N", 1, low_latency=False)
    port.open()
    try:
        with pytest.raises(LineDown, match="write stalled"):
            port.write(bytes(1 << 20))  # nothing reads the other end
    finally:
        port.close()

"""Byte transports for one RS-485 line: a local serial port or an RTU-over-TCP gateway.

Two users, two ways of reading:

* the I/O loop (``terminals.ioloop``) serves every line from one thread: it opens a transport
  without waiting (``begin_open``; a gateway's TCP connect completes when its socket turns writable,
  then ``finish_open``), watches ``fileno()`` in its selector, and takes whatever has arrived with
  ``read_some()``, which never blocks;
* ``chamber scan`` asks one console at a time: ``read_reply`` collects a reply of a known length
  before a deadline with ``select``, and ``discard`` throws away stale bytes.

Both read the raw file descriptor or socket and take whatever has arrived in one call, so an
ordinary reply costs one wake-up and one ``read`` system call: that, not Python, should set the
poll's pace.  A frame is a few dozen bytes, which the kernel's buffer takes at once, so ``write``
returns at once too (it waits, within ``WRITE_TIMEOUT_S``, only for a transmit buffer that is full).

A transport that fails (USB adapter unplugged, gateway gone) raises ``LineDown``; the loop closes it
and opens it again later.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Protocol

import serial

log = logging.getLogger("terminals.transport")

#: A request frame is at most a few hundred bytes: a UART that will not take it in this long is stuck.
WRITE_TIMEOUT_S = 0.5


class LineDown(OSError):
    """The port or gateway is unusable; the loop reopens it with back-off."""


class Transport(Protocol):
    name: str

    def open(self) -> None: ...

    def begin_open(self) -> bool:
        """Start opening without blocking; True if open already, else ``finish_open`` once
        ``fileno()`` is writable."""
        ...

    def finish_open(self) -> None: ...

    def fileno(self) -> int: ...

    def read_some(self) -> bytes:
        """Whatever has arrived (b"" if nothing), never blocking; ``LineDown`` at end of stream."""
        ...

    def close(self) -> None: ...

    def write(self, frame: bytes) -> None: ...

    def read_reply(self, target: Callable[[bytes], int], deadline: float) -> bytes:
        """Bytes until ``len >= target(buf)`` or the deadline (``time.perf_counter``)."""
        ...

    def discard(self) -> int:
        """Drop whatever is waiting to be read; return how many bytes (line noise, late replies)."""
        ...


def _collect(read: Callable[[], bytes | None], fileno: int, target: Callable[[bytes], int], deadline: float) -> bytes:
    buf = b""
    need = 5  # no Modbus reply is shorter
    while True:
        # past the deadline, still take what has already arrived (one look, no waiting)
        remaining = max(deadline - time.perf_counter(), 0.0)
        ready, _, _ = select.select((fileno,), (), (), remaining)
        if not ready:
            return buf
        chunk = read()
        if chunk is None:  # woken with nothing to read
            continue
        if not chunk:
            raise LineDown("end of stream: the device or gateway went away")
        buf += chunk
        if len(buf) >= 2:
            need = target(buf)
        if len(buf) >= need:
            return buf


class SerialTransport:
    """A local serial port through pyserial (opened non-blocking; reads go to the fd directly)."""

    def __init__(
        self,
        port: str,
        baud: int,
        parity: str = "E",
        stopbits: int = 1,
        low_latency: bool = True,
    ) -> None:
        self.name = port
        self.port = port
        self.baud = baud
        self.parity = parity
        self.stopbits = stopbits
        self.low_latency = low_latency
        self._serial: serial.Serial | None = None
        self._fd = -1

    def open(self) -> None:
        try:
            ser = serial.Serial(
                self.port,
                baudrate=self.baud,
                parity={"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD}[self.parity],
                stopbits=serial.STOPBITS_TWO if self.stopbits == 2 else serial.STOPBITS_ONE,
                bytesize=serial.EIGHTBITS,
                timeout=0,
                write_timeout=1.0,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LineDown(f"cannot open {self.port}: {exc}") from exc
        if self.low_latency:
            # FTDI adapters buffer up to 16 ms before passing bytes on; low-latency mode makes it 1 ms.
            # A pty or an adapter without the ioctl refuses: that is fine, it only costs latency.
            try:
                ser.set_low_latency_mode(True)
            except (OSError, ValueError, AttributeError, serial.SerialException) as exc:
                log.debug("%s: low-latency mode not available: %s", self.port, exc)
        self._serial = ser
        self._fd = ser.fileno()

    def begin_open(self) -> bool:
        self.open()  # a local device opens at once
        return True

    def finish_open(self) -> None:
        pass

    def fileno(self) -> int:
        if self._fd < 0:
            raise LineDown(f"{self.port} is not open")
        return self._fd

    def read_some(self) -> bytes:
        if self._fd < 0:
            raise LineDown(f"{self.port} is not open")
        chunk = self._read_some()
        if chunk is None:
            return b""
        if not chunk:
            raise LineDown(f"{self.port}: end of stream: the device went away")
        return chunk

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                self._serial.close()
        self._serial = None
        self._fd = -1

    def write(self, frame: bytes) -> None:
        if self._fd < 0:
            raise LineDown(f"{self.port} is not open")
        written = 0
        try:
            written = os.write(self._fd, frame)
            if written == len(frame):
                return  # the usual case: the kernel's buffer takes a frame at once
        except BlockingIOError:
            pass
        except OSError as exc:
            raise LineDown(f"{self.port}: write failed: {exc}") from exc
        self._write_rest(memoryview(frame)[written:])

    def _write_rest(self, view: memoryview) -> None:
        """The bytes of a frame the transmit buffer did not take at once."""
        deadline = time.perf_counter() + WRITE_TIMEOUT_S
        try:
            while view:
                with contextlib.suppress(BlockingIOError):  # non-blocking fd: it may take part, or none
                    view = view[os.write(self._fd, view) :]
                if view:  # the transmit buffer is full: wait until it takes more, within reason
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0 or not select.select((), (self._fd,), (), remaining)[1]:
                        raise LineDown(f"{self.port}: write stalled: {len(view)} byte(s) not taken in time")
        except LineDown:
            raise
        except OSError as exc:
            raise LineDown(f"{self.port}: write failed: {exc}") from exc

    def read_reply(self, target: Callable[[bytes], int], deadline: float) -> bytes:
        if self._fd < 0:
            raise LineDown(f"{self.port} is not open")
        try:
            return _collect(self._read_some, self._fd, target, deadline)
        except LineDown:
            raise
        except (OSError, ValueError) as exc:  # select on a closed descriptor
            raise LineDown(f"{self.port}: {exc}") from exc

    def _read_some(self) -> bytes | None:
        try:
            return os.read(self._fd, 4096)  # b"": the adapter is gone (a pty whose other end closed)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise LineDown(f"{self.port}: read failed: {exc}") from exc

    def discard(self) -> int:
        if self._fd < 0:
            return 0
        dropped = 0
        try:
            while select.select((self._fd,), (), (), 0)[0]:
                chunk = os.read(self._fd, 4096)
                if not chunk:
                    break
                dropped += len(chunk)
        except BlockingIOError:
            pass
        except OSError as exc:
            raise LineDown(f"{self.port}: read failed: {exc}") from exc
        return dropped


class TcpTransport:
    """Modbus RTU frames over a TCP connection to an RS-485 gateway."""

    def __init__(self, host: str, port: int, connect_timeout: float = 2.0) -> None:
        self.name = f"{host}:{port}"
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except OSError as exc:
            raise LineDown(f"cannot connect to gateway {self.name}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock

    def begin_open(self) -> bool:
        """A non-blocking connect: a gateway that does not answer must not hold the other lines.
        (The address is resolved first, which blocks only for a host name that is not in /etc/hosts.)"""
        try:
            family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise LineDown(f"cannot connect to gateway {self.name}: {exc}") from exc
        sock.setblocking(False)
        error = sock.connect_ex(address)
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            raise LineDown(f"cannot connect to gateway {self.name}: {os.strerror(error)}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        return error == 0

    def finish_open(self) -> None:
        assert self._sock is not None
        error = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self.close()
            raise LineDown(f"cannot connect to gateway {self.name}: {os.strerror(error)}")

    def fileno(self) -> int:
        if self._sock is None:
            raise LineDown(f"gateway {self.name} is not connected")
        return self._sock.fileno()

    def read_some(self) -> bytes:
        if self._sock is None:
            raise LineDown(f"gateway {self.name} is not connected")
        chunk = self._recv()
        if chunk is None:
            return b""
        if not chunk:
            raise LineDown(f"gateway {self.name} closed the connection")
        return chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None

    def write(self, frame: bytes) -> None:
        if self._sock is None:
            raise LineDown(f"gateway {self.name} is not connected")
        try:
            self._sock.sendall(frame)
        except OSError as exc:
            raise LineDown(f"gateway {self.name}: send failed: {exc}") from exc

    def _recv(self) -> bytes | None:
        assert self._sock is not None
        try:
            return self._sock.recv(4096)  # b"": the gateway closed the connection
        except BlockingIOError:
            return None
        except OSError as exc:
            raise LineDown(f"gateway {self.name}: receive failed: {exc}") from exc

    def read_reply(self, target: Callable[[bytes], int], deadline: float) -> bytes:
        if self._sock is None:
            raise LineDown(f"gateway {self.name} is not connected")
        return _collect(self._recv, self._sock.fileno(), target, deadline)

    def discard(self) -> int:
        if self._sock is None:
            return 0
        dropped = 0
        while select.select((self._sock,), (), (), 0)[0]:
            chunk = self._recv()
            if chunk is None:
                break
            if not chunk:
                raise LineDown(f"gateway {self.name} closed the connection")
            dropped += len(chunk)
        return dropped

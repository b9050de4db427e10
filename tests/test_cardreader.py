"""The desk card reader, against a fake pyusb backend that plays a HID keyboard-emulation reader."""

from __future__ import annotations

import errno
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import usb.backend
import usb.core

from chamber.cli import main
from terminals.cardreader import (
    DEFAULT_PRODUCT_ID,
    DEFAULT_VENDOR_ID,
    CardReader,
    CardReaderError,
    KeyboardDecoder,
    find_readers,
)

ROOT = Path(__file__).resolve().parent.parent
EP_IN = 0x81
SHIFT = 0x02
USAGE = {**{c: 0x1E + i for i, c in enumerate("1234567890")}, **{c: 0x04 + i for i, c in enumerate("abcdef")}}
ENTER = 0x28


def typed(text: str, report_id: int | None = None) -> list[bytes]:
    """Keyboard reports typing ``text`` then Enter: a press and a release per key, letters shifted."""
    reports: list[bytes] = []
    for char in text:
        modifier = SHIFT if char.isupper() else 0
        reports.append(bytes([modifier, 0, USAGE[char.lower()], 0, 0, 0, 0, 0]))
        reports.append(bytes(8))
    reports += [bytes([0, 0, ENTER, 0, 0, 0, 0, 0]), bytes(8)]
    if report_id is not None:
        reports = [bytes([report_id]) + r for r in reports]
    return reports


def _desc(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(bLength=0, bDescriptorType=0, extra_descriptors=b"", **fields)


class FakeReaderBackend(usb.backend.IBackend):  # type: ignore[misc]
    """One HID keyboard device (or none) whose interrupt endpoint yields queued reports."""

    def __init__(
        self,
        devices: int = 1,
        vendor: int = DEFAULT_VENDOR_ID,
        product: int = DEFAULT_PRODUCT_ID,
        kernel_driver: bool = True,
        configured: bool = True,
        open_errno: int | None = None,
    ) -> None:
        self.devices = devices
        self.vendor, self.product = vendor, product
        self.kernel_driver = kernel_driver
        self.config_value = 1 if configured else 0
        self.open_errno = open_errno
        self.reports: deque[bytes] = deque()
        self.calls: list[str] = []

    def enumerate_devices(self) -> list[int]:
        return list(range(self.devices))

    def get_device_descriptor(self, dev: int) -> SimpleNamespace:
        return _desc(
            bcdUSB=0x0110, bDeviceClass=0, bDeviceSubClass=0, bDeviceProtocol=0, bMaxPacketSize0=8,
            idVendor=self.vendor, idProduct=self.product, bcdDevice=0x0100, iManufacturer=0, iProduct=0,
            iSerialNumber=0, bNumConfigurations=1, address=5 + dev, bus=1, port_number=None, port_numbers=None,
            speed=None,
        )  # fmt: skip

    def get_configuration_descriptor(self, dev: int, config: int) -> SimpleNamespace:
        if config != 0:
            raise IndexError(config)
        return _desc(wTotalLength=34, bNumInterfaces=1, bConfigurationValue=1, iConfiguration=0,
                     bmAttributes=0x80, bMaxPower=50)  # fmt: skip

    def get_interface_descriptor(self, dev: int, intf: int, alt: int, config: int) -> SimpleNamespace:
        if intf != 0 or alt != 0:
            raise IndexError((intf, alt))
        return _desc(bInterfaceNumber=0, bAlternateSetting=0, bNumEndpoints=1, bInterfaceClass=3,
                     bInterfaceSubClass=1, bInterfaceProtocol=1, iInterface=0)  # fmt: skip

    def get_endpoint_descriptor(self, dev: int, ep: int, intf: int, alt: int, config: int) -> SimpleNamespace:
        if ep != 0:
            raise IndexError(ep)
        return _desc(bEndpointAddress=EP_IN, bmAttributes=0x03, wMaxPacketSize=8, bInterval=10, bRefresh=0,
                     bSynchAddress=0)  # fmt: skip

    def open_device(self, dev: int) -> str:
        self.calls.append("open")
        if self.open_errno is not None:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, self.open_errno)
        return f"handle{dev}"

    def close_device(self, dev_handle: str) -> None:
        self.calls.append("close")

    def set_configuration(self, dev_handle: str, config_value: int) -> None:
        self.calls.append(f"set_configuration {config_value}")
        self.config_value = config_value

    def get_configuration(self, dev_handle: str) -> int:
        return self.config_value

    def claim_interface(self, dev_handle: str, intf: int) -> None:
        self.calls.append(f"claim {intf}")

    def release_interface(self, dev_handle: str, intf: int) -> None:
        self.calls.append(f"release {intf}")

    def is_kernel_driver_active(self, dev_handle: str, intf: int) -> bool:
        return self.kernel_driver

    def detach_kernel_driver(self, dev_handle: str, intf: int) -> None:
        self.calls.append(f"detach {intf}")
        self.kernel_driver = False

    def attach_kernel_driver(self, dev_handle: str, intf: int) -> None:
        self.calls.append(f"attach {intf}")
        self.kernel_driver = True

    def intr_read(self, dev_handle: str, ep: int, intf: int, buff: Any, timeout: int) -> int:
        assert ep == EP_IN and intf == 0 and timeout > 0
        if not self.reports:
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        report = self.reports.popleft()
        buff[: len(report)] = type(buff)(buff.typecode, report)
        return len(report)


def test_read_uid_decodes_the_typed_uid_and_restores_the_kernel_driver() -> None:
    backend = FakeReaderBackend()
    backend.reports.extend(typed("04A3B2C1"))
    with CardReader(DEFAULT_VENDOR_ID, DEFAULT_PRODUCT_ID, backend=backend) as reader:
        assert backend.calls[:3] == ["open", "detach 0", "claim 0"]
        assert reader.read_uid(1.0) == "04A3B2C1"
    assert "release 0" in backend.calls and "attach 0" in backend.calls and backend.calls[-1] == "close"


def test_two_cards_in_a_row_and_lower_case_hex() -> None:
    backend = FakeReaderBackend(kernel_driver=False, configured=False)
    backend.reports.extend(typed("04a3b2c1") + typed("3b2dc3cb"))
    with CardReader(backend=backend) as reader:
        assert reader.read_uid(1.0) == "04A3B2C1"
        assert reader.read_uid(1.0) == "3B2DC3CB"
        assert reader.read_uid(0.05) is None
    assert "set_configuration 1" in backend.calls and "detach 0" not in backend.calls


def test_timeout_returns_none() -> None:
    backend = FakeReaderBackend()
    with CardReader(backend=backend) as reader:
        assert reader.read_uid(0.05) is None
        backend.reports.extend(typed("12")[:2])  # a half-typed UID, no Enter yet
        assert reader.read_uid(0.05) is None


def test_decoder_report_ids_held_keys_and_repeated_digits() -> None:
    decoder = KeyboardDecoder()
    results = [decoder.feed(r) for r in typed("0011AB", report_id=1)]
    assert [r for r in results if r is not None] == ["0011AB"]
    # a key held across two reports counts once; Enter alone gives nothing
    decoder.reset()
    assert decoder.feed(bytes([0, 0, 0x1E, 0, 0, 0, 0, 0])) is None
    assert decoder.feed(bytes([0, 0, 0x1E, 0, 0, 0, 0, 0])) is None
    assert decoder.feed(bytes([0, 0, 0x1E, ENTER, 0, 0, 0, 0])) == "1"
    assert decoder.feed(bytes(8)) is None
    assert decoder.feed(bytes([0, 0, ENTER, 0, 0, 0, 0, 0])) is None


def test_no_device_names_the_ids() -> None:
    backend = FakeReaderBackend(devices=0)
    with pytest.raises(CardReaderError, match=r"no card reader with id 1234:abcd found \(is it plugged in\? lsusb"):
        CardReader(0x1234, 0xABCD, backend=backend).open()
    assert find_readers(backend) == []


def test_other_device_only_is_not_the_reader() -> None:
    backend = FakeReaderBackend(vendor=0x046D, product=0xC31C)  # some keyboard
    with pytest.raises(CardReaderError, match="no card reader with id ffff:0035"):
        CardReader(backend=backend).open()
    assert find_readers(backend) == ["046d:c31c bus 1 address 5: HID keyboard (a keyboard-emulation card reader, "
                                     "or an ordinary keyboard)"]  # fmt: skip


def test_enumerate_failure_is_a_card_reader_error() -> None:
    class Broken(FakeReaderBackend):
        def enumerate_devices(self) -> list[int]:
            raise usb.core.USBError("Input/Output Error", -1, errno.EIO)

    with pytest.raises(CardReaderError, match="Input/Output Error"):
        CardReader(backend=Broken()).open()
    with pytest.raises(CardReaderError, match="cannot list USB devices"):
        find_readers(Broken())


def test_permission_denied_gives_the_udev_rule() -> None:
    backend = FakeReaderBackend(open_errno=errno.EACCES)
    with pytest.raises(CardReaderError) as err:
        CardReader(backend=backend).open()
    message = str(err.value)
    assert "run as root or add a udev rule" in message
    assert 'SUBSYSTEM=="usb", ATTR{idVendor}=="ffff", ATTR{idProduct}=="0035", MODE="0660"' in message


def test_no_backend_names_libusb(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(*args: Any, **kwargs: Any) -> Any:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", no_backend)
    expected = r"no USB backend: install libusb-1.0-0 \(apt-get install libusb-1.0-0\)"
    with pytest.raises(CardReaderError, match=expected):
        CardReader().open()
    with pytest.raises(CardReaderError, match=expected):
        find_readers()


def test_list_names_a_known_reader() -> None:
    assert find_readers(FakeReaderBackend()) == [
        "ffff:0035 bus 1 address 5: card reader: SYC ID&IC USB Reader (125 kHz / 13.56 MHz, keyboard emulation)"
    ]


REAL_FIND = usb.core.find


def _use_backend(monkeypatch: pytest.MonkeyPatch, backend: FakeReaderBackend) -> None:
    """Make the CLI's ``usb.core.find(..., backend=None)`` use ``backend``."""

    def find(*args: Any, **kwargs: Any) -> Any:
        kwargs["backend"] = backend
        return REAL_FIND(*args, **kwargs)

    monkeypatch.setattr(usb.core, "find", find)


def test_cli_card_read_names_the_deputy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    backend = FakeReaderBackend()
    backend.reports.extend(typed("3b2dc3cb") + typed("04A3B2C1"))
    _use_backend(monkeypatch, backend)
    config = str(ROOT / "config.toml")
    assert main(["card", "read", "--config", config, "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "3B2DC3CB" in out and "deputy" in out
    assert main(["card", "read", "--config", config, "--timeout", "1", "--vendor", "0xffff"]) == 0
    assert "04A3B2C1" in (out := capsys.readouterr().out) and "not enrolled" in out
    assert main(["card", "read", "--timeout", "0.05"]) == 1
    assert "no card" in capsys.readouterr().err


def test_cli_card_errors_without_traceback(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _use_backend(monkeypatch, FakeReaderBackend(devices=0))
    assert main(["card", "read", "--vendor", "0x1234", "--product", "0xabcd", "--timeout", "0.05"]) == 1
    err = capsys.readouterr().err
    assert "no card reader with id 1234:abcd found" in err and "Traceback" not in err
    assert main(["card", "list"]) == 1
    assert "no card reader" in capsys.readouterr().err

    _use_backend(monkeypatch, FakeReaderBackend())
    assert main(["card", "list"]) == 0
    assert "ffff:0035" in capsys.readouterr().out

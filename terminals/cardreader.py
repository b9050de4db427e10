"""The USB card reader at the secretary's desk: enrol a card (learn its UID) and find whose card it is.

How it works
------------
Most desk readers (125 kHz EM-Marine and 13.56 MHz ISO 14443 alike) are USB HID *keyboards*: when a
card is presented they "type" its UID followed by Enter into whatever window has the focus.  Rather
than depend on a focused window, this module talks to the reader directly with pyusb (libusb):

1. find the device by vendor/product id (``lsusb`` shows them; the default is one common reader,
   see ``DEFAULT_VENDOR_ID``: pass your reader's ids when it is another model);
2. detach the kernel's keyboard driver (``usbhid``) from interface 0 while we read, so the UID is not
   also typed into a terminal, and attach it again on ``close()``;
3. claim interface 0 and read HID input reports from its interrupt IN endpoint;
4. decode the reports as a boot keyboard does: byte 0 the modifier keys (shift is ignored), bytes
   2..7 the usage codes of the keys held now.  A key counts when it appears in a report (a key held
   over several reports counts once); 0x1E..0x27 are the digits 1..9, 0; 0x04..0x09 the letters a..f;
   Enter (0x28, or keypad Enter 0x58) ends the UID.  Reports with a leading report id (9 bytes) are
   handled too.

The UID is returned as the reader types it, upper-cased: most 13.56 MHz readers type the UID in hex
("04A3B2C1"), which is what ``config.toml`` expects; some 125 kHz readers type a decimal number
instead: set such a reader to hex output (its maker's tool) or enrol what it types.

Errors a person can fix raise ``CardReaderError`` with the fix in the message: no libusb, no reader
plugged in, no permission (with the exact udev rule), reader busy.
"""

from __future__ import annotations

import contextlib
import errno
import time
from types import TracebackType
from typing import Any

import usb.core
import usb.util

__all__ = [
    "DEFAULT_PRODUCT_ID",
    "DEFAULT_VENDOR_ID",
    "KNOWN_READERS",
    "CardReader",
    "CardReaderError",
    "KeyboardDecoder",
    "find_readers",
    "udev_rule",
]

#: Example default: the "SYC ID&IC USB Reader" (lsusb: ffff:0035), a cheap and common keyboard-emulation
#: reader for 125 kHz and 13.56 MHz cards.  Any HID keyboard-emulation reader works: pass its ids.
DEFAULT_VENDOR_ID = 0xFFFF
DEFAULT_PRODUCT_ID = 0x0035

#: Readers recognised by id in ``find_readers`` (others show up as "HID keyboard").
KNOWN_READERS: dict[tuple[int, int], str] = {
    (0xFFFF, 0x0035): "SYC ID&IC USB Reader (125 kHz / 13.56 MHz, keyboard emulation)",
}

INTERFACE = 0
_HID_CLASS = 3
_BOOT_KEYBOARD_PROTOCOL = 1
_ENTER = (0x28, 0x58)
_USAGE_CHARS: dict[int, str] = {0x1E + i: "1234567890"[i] for i in range(10)}
_USAGE_CHARS.update({0x04 + i: "ABCDEF"[i] for i in range(6)})
_UDEV_FILE = "/etc/udev/rules.d/99-chamber-cardreader.rules"


class CardReaderError(Exception):
    """A problem with the card reader that a person can fix; the message says how."""


def udev_rule(vendor_id: int, product_id: int) -> str:
    """The udev rule that lets members of the plugdev group (and the desktop user) open the reader."""
    return (
        f'SUBSYSTEM=="usb", ATTR{{idVendor}}=="{vendor_id:04x}", ATTR{{idProduct}}=="{product_id:04x}", '
        f'MODE="0660", GROUP="plugdev", TAG+="uaccess"'
    )


def _ids(vendor_id: int, product_id: int) -> str:
    return f"{vendor_id:04x}:{product_id:04x}"


def _usb_error(exc: usb.core.USBError, vendor_id: int, product_id: int, doing: str) -> CardReaderError:
    """A ``CardReaderError`` saying what to do about a libusb error."""
    ids = _ids(vendor_id, product_id)
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return CardReaderError(
            f"permission denied {doing} card reader {ids}: run as root or add a udev rule: "
            f"{udev_rule(vendor_id, product_id)}  (put it in {_UDEV_FILE}, run "
            f"'sudo udevadm control --reload-rules && sudo udevadm trigger', re-plug the reader "
            f"and make sure your user is in the plugdev group)"
        )
    if code == errno.EBUSY:
        return CardReaderError(
            f"card reader {ids} is busy: another program has claimed it (another 'chamber card' or the daemon?): {exc}"
        )
    if code == errno.ENODEV:
        return CardReaderError(f"card reader {ids} went away while {doing} it (unplugged?)")
    return CardReaderError(f"USB error {doing} card reader {ids}: {exc}")


def _no_backend() -> CardReaderError:
    return CardReaderError("no USB backend: install libusb-1.0-0 (apt-get install libusb-1.0-0)")


def _keys_of(report: bytes) -> list[int]:
    """The usage codes of the keys held in one keyboard report (modifier byte and report id skipped)."""
    if len(report) >= 9 and len(report) % 8 == 1:  # a report id precedes the 8-byte boot report
        report = report[1:]
    return [code for code in report[2:8] if code > 0x03]  # 0: none, 1..3: rollover / error codes


class KeyboardDecoder:
    """Turns HID keyboard reports into UIDs: feed reports in order, get a UID when Enter is pressed."""

    def __init__(self) -> None:
        self._held: set[int] = set()
        self._typed: list[str] = []

    def reset(self) -> None:
        self._held.clear()
        self._typed.clear()

    def feed(self, report: bytes) -> str | None:
        """The UID finished by this report's Enter, if any; characters after it start the next UID."""
        keys = _keys_of(report)
        done: str | None = None
        for code in keys:
            if code in self._held:
                continue  # still held from the previous report: not a new press
            if code in _ENTER:
                if self._typed and done is None:
                    done = "".join(self._typed)
                self._typed.clear()
            else:
                char = _USAGE_CHARS.get(code)
                if char is not None:
                    self._typed.append(char)
        self._held = set(keys)
        return done


def _is_interrupt_in(endpoint: Any) -> bool:
    address = endpoint.bEndpointAddress
    return bool(
        usb.util.endpoint_direction(address) == usb.util.ENDPOINT_IN
        and usb.util.endpoint_type(endpoint.bmAttributes) == usb.util.ENDPOINT_TYPE_INTR
    )


class CardReader:
    """A HID keyboard-emulation card reader read directly over USB.

    ``backend`` is passed to ``usb.core.find`` (None: pyusb picks libusb); tests pass a fake one.
    """

    def __init__(self, vendor_id: int = DEFAULT_VENDOR_ID, product_id: int = DEFAULT_PRODUCT_ID, backend: Any = None):
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.backend = backend
        self._dev: Any = None
        self._endpoint = 0
        self._packet_size = 8
        self._detached = False
        self._decoder = KeyboardDecoder()

    @property
    def ids(self) -> str:
        return _ids(self.vendor_id, self.product_id)

    def open(self) -> None:
        """Find the reader, take it from the kernel's keyboard driver and claim interface 0."""
        if self._dev is not None:
            return
        try:
            dev = usb.core.find(idVendor=self.vendor_id, idProduct=self.product_id, backend=self.backend)
        except usb.core.NoBackendError:
            raise _no_backend() from None
        except usb.core.USBError as exc:
            raise _usb_error(exc, self.vendor_id, self.product_id, "looking for") from exc
        except (OSError, NotImplementedError) as exc:  # a backend that cannot enumerate
            raise CardReaderError(f"cannot list USB devices: {exc}") from exc
        if dev is None:
            raise CardReaderError(f"no card reader with id {self.ids} found (is it plugged in? lsusb lists it)")
        self._dev = dev
        try:
            self._claim(dev)
        except usb.core.USBError as exc:
            self.close()
            raise _usb_error(exc, self.vendor_id, self.product_id, "opening") from exc
        except CardReaderError:
            self.close()
            raise
        self._decoder.reset()

    def _claim(self, dev: Any) -> None:
        try:
            if dev.is_kernel_driver_active(INTERFACE):
                dev.detach_kernel_driver(INTERFACE)
                self._detached = True
        except NotImplementedError:  # a backend or OS without kernel drivers to detach
            pass
        try:
            config = dev.get_active_configuration()
        except usb.core.USBError:  # not configured yet
            dev.set_configuration()
            config = dev.get_active_configuration()
        interface = config[(INTERFACE, 0)]
        endpoint = usb.util.find_descriptor(interface, custom_match=_is_interrupt_in)
        if endpoint is None:
            raise CardReaderError(
                f"USB device {self.ids} has no interrupt IN endpoint on interface {INTERFACE}: "
                "it is not a HID keyboard-emulation card reader"
            )
        usb.util.claim_interface(dev, INTERFACE)
        self._endpoint = int(endpoint.bEndpointAddress)
        self._packet_size = max(8, int(endpoint.wMaxPacketSize))

    def read_uid(self, timeout_s: float) -> str | None:
        """The UID (upper-case hex, as typed) of the next card presented, or None after ``timeout_s``."""
        if self._dev is None:
            raise CardReaderError(f"card reader {self.ids} is not open")
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            try:
                data = self._dev.read(self._endpoint, self._packet_size, timeout=remaining_ms)
            except usb.core.USBTimeoutError:
                return None
            except usb.core.USBError as exc:
                if getattr(exc, "errno", None) == errno.ETIMEDOUT:
                    return None
                raise _usb_error(exc, self.vendor_id, self.product_id, "reading") from exc
            uid = self._decoder.feed(bytes(data))
            if uid is not None:
                return uid

    def close(self) -> None:
        """Release the interface and give the reader back to the kernel's keyboard driver."""
        dev, self._dev = self._dev, None
        if dev is None:
            return
        with contextlib.suppress(usb.core.USBError, NotImplementedError, ValueError):
            usb.util.release_interface(dev, INTERFACE)
        if self._detached:
            with contextlib.suppress(usb.core.USBError, NotImplementedError):
                dev.attach_kernel_driver(INTERFACE)
            self._detached = False
        with contextlib.suppress(usb.core.USBError, NotImplementedError):
            usb.util.dispose_resources(dev)

    def __enter__(self) -> CardReader:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _is_hid_keyboard(dev: Any) -> bool:
    try:
        for config in dev:
            for interface in config:
                if interface.bInterfaceClass == _HID_CLASS and interface.bInterfaceProtocol == _BOOT_KEYBOARD_PROTOCOL:
                    return True
    except (usb.core.USBError, NotImplementedError, IndexError):
        pass
    return False


def _product_name(dev: Any) -> str:
    """The device's product string, or "" when it cannot be read (no permission to open it)."""
    if not getattr(dev, "iProduct", 0):
        return ""
    try:
        return str(usb.util.get_string(dev, dev.iProduct) or "")
    except (usb.core.USBError, NotImplementedError, ValueError):
        return ""
    finally:
        with contextlib.suppress(usb.core.USBError, NotImplementedError):
            usb.util.dispose_resources(dev)


def find_readers(backend: Any = None) -> list[str]:
    """One line per USB device that is a known card reader or a HID keyboard (which may be a reader).

    Each line starts with ``vvvv:pppp``, the ids to pass to ``CardReader`` (``--vendor/--product``).
    """
    try:
        devices = list(usb.core.find(find_all=True, backend=backend))
    except usb.core.NoBackendError:
        raise _no_backend() from None
    except (OSError, NotImplementedError) as exc:  # usb.core.USBError is an OSError
        raise CardReaderError(f"cannot list USB devices: {exc}") from exc
    found: list[str] = []
    for dev in devices:
        vendor_id, product_id = int(dev.idVendor), int(dev.idProduct)
        known = KNOWN_READERS.get((vendor_id, product_id))
        if known is None and not _is_hid_keyboard(dev):
            continue
        where = f"bus {dev.bus} address {dev.address}" if dev.bus is not None else "USB"
        name = _product_name(dev)
        if known is not None:
            what = f"card reader: {known}"
        else:
            what = "HID keyboard (a keyboard-emulation card reader, or an ordinary keyboard)"
        found.append(f"{_ids(vendor_id, product_id)} {where}: {what}" + (f" [{name}]" if name else ""))
    return found

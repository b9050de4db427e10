"""The native console profile's register map, as constants (docs/console-register-map.md is the datasheet).

Input registers (function 04) and holding registers (03 read, 06/16 write)
use disjoint addresses, so a console whose firmware keeps one shared register
space (as the simulator's pymodbus devices do) and one with separate spaces
both implement the same map.  Key codes are ``chamber.core.values.Key``.
"""

from __future__ import annotations

import enum

PROFILE_ID = 0x4348  # "CH": answered in IR_PROFILE so a controller can tell a native console

# --- input registers (read with function 04) -----------------------------------------------------------
IR_STATUS = 0  # bit flags, see Status
IR_EVT_HEAD = 1  # sequence number (0..65535, wrapping) of the oldest unacknowledged key event
IR_EVT_INFO = 2  # high byte: unacknowledged events (0..16); low byte: key code of the oldest one
IR_CARD_SEQ = 3  # high byte: BOOT (power-ups, low byte); low byte: +1 (wrapping) on every card in or out
POLL_START = IR_STATUS
POLL_COUNT = 4  # the idle poll: one read of IR 0..3

IR_FIFO = 16  # 16 registers: key codes of the unacknowledged events, oldest first (seq EVT_HEAD + i)
FIFO_SIZE = 16

IR_CARD_LEN = 32  # UID length in bytes, 0 = no card
IR_CARD_UID = 33  # 5 registers: up to 10 UID bytes, big-endian, two per register
CARD_UID_REGS = 5
CARD_READ_COUNT = 1 + CARD_UID_REGS  # one read of IR 32..37

IR_PROFILE = 48  # PROFILE_ID
IR_DEVICE_TYPE = 49  # see DeviceType
IR_FW_VERSION = 50  # major << 8 | minor
IR_FW_PATCH = 51
IR_SERIAL_HI = 52
IR_SERIAL_LO = 53
IR_CAPS = 54  # see Caps
IDENTITY_START = IR_PROFILE
IDENTITY_COUNT = 7  # one read of IR 48..54

IR_ERR_CRC = 64  # frames with a bad CRC the console received
IR_ERR_FRAME = 65  # framing / parity errors
IR_ERR_OVERFLOW = 66  # key events dropped because the FIFO was full
IR_POWER_UPS = 67  # power-ups since manufacture
IR_KEYS_HELD = 68  # low word of a bitmap of keys held now: bit (code - 1)
IR_KEYS_HELD_HI = 69  # bits for codes 17..21
COUNTERS_START = IR_ERR_CRC
COUNTERS_COUNT = 6

# --- holding registers (read with 03, written with 06 or 16) ----------------------------------------
HR_ACK_BOOT = 255  # written with ACK in one frame: the ACK applies only if this equals the console's BOOT
HR_ACK = 256  # write seq s: the console drops every event from EVT_HEAD up to s inclusive
HR_LEDS = 257  # see Led
HR_PROPOSAL_LEDS = 258  # bit i: proposal key P(i+1) lit
HR_MIC = 259  # 1: microphone on; 0: off
HR_MODE = 260  # low byte: Mode; high byte: number of rating proposals.  Also accepted as a broadcast.
OUTPUTS_START = HR_LEDS
OUTPUTS_COUNT = 4  # LEDS, PROPOSAL_LEDS, MIC, MODE: one write of HR 257..260
HR_TEXT = 272  # 16 registers: 32 bytes of text in CP1251, NUL-padded; also accepted as a broadcast
TEXT_REGS = 16
TEXT_BYTES = 2 * TEXT_REGS

BROADCAST_UNIT = 0
#: After a broadcast the consoles need this long before the next frame (the datasheet's promise).
BROADCAST_TURNAROUND_S = 0.004


class Status(enum.IntFlag):
    CARD = 1 << 0  # a card is in the slot
    PRESENCE = 1 << 1  # the presence sensor is held
    MIC_ON = 1 << 2  # the microphone is live (feedback of HR_MIC)
    OVERFLOW = 1 << 8  # the FIFO overflowed since the last ACK (events were lost at the console)
    MODE_ECHO = 0b111 << 12  # bits 12-14: the low 3 bits of the MODE the console is in
    RESTARTED = 1 << 15  # set at power-up; cleared by the first write of HR_MODE


class Led(enum.IntFlag):
    YES = 1 << 0
    NO = 1 << 1
    ABSTAIN = 1 << 2
    REGISTERED = 1 << 3
    REQUEST = 1 << 4  # ring: waiting in the speaker queue
    MIC = 1 << 5  # ring: has the floor
    WARN = 1 << 6  # ring blinks: speech time almost up
    CARD_OK = 1 << 7  # the card was accepted
    CHOICES = YES | NO | ABSTAIN


class Mode(enum.IntEnum):
    IDLE = 0
    REGISTRATION = 1
    VOTE_YES_NO = 2
    VOTE_RATING = 3


class DeviceType(enum.IntEnum):
    SEAT = 1
    CHAIR = 2
    MIC_UNIT = 3


class Caps(enum.IntFlag):
    CARD = 1 << 0
    PRESENCE = 1 << 1
    MIC = 1 << 2
    TEXT = 1 << 3
    RATING_KEYS = 1 << 4
    CHAIR_KEYS = 1 << 5


MODE_ECHO_SHIFT = 12


def mode_echo(status: int) -> int:
    """The mode number the console reports being in (STATUS bits 12-14)."""
    return (status >> MODE_ECHO_SHIFT) & 0b111


def boot_of(card_word: int) -> int:
    """The console's boot from IR 3: the low byte of POWER_UPS, new at every power-up (and only then)."""
    return card_word >> 8


def mode_word(mode: Mode, proposals: int = 0) -> int:
    return (proposals & 0xFF) << 8 | int(mode)


def seq_after(a: int, b: int) -> bool:
    """True if 16-bit sequence number ``a`` comes after ``b`` (serial-number arithmetic, RFC 1982)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def encode_text(text: str) -> list[int]:
    """The TEXT registers for a string: CP1251 (Ukrainian letters included), cut to 32 bytes."""
    raw = text.encode("cp1251", errors="replace")[:TEXT_BYTES].ljust(TEXT_BYTES, b"\0")
    return [raw[i] << 8 | raw[i + 1] for i in range(0, TEXT_BYTES, 2)]


def decode_uid(length: int, regs: list[int]) -> str:
    raw = b"".join(r.to_bytes(2, "big") for r in regs)[:length]
    return raw.hex().upper()

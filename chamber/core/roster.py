"""Who sits where and by which rules: the roster a sitting is opened with.

The roster is copied into the journal's first record of every sitting, so a
sitting replays by the rules and the people it was opened with even if
config.toml has changed since.  chamber.config builds a Roster from the file.

``text_problem`` is the one rule for text that is shown or printed (names,
factions, titles): no control characters (C0, DEL, C1: line breaks, the ESC
and CSI that start terminal escape sequences), no Unicode line separators and
no bidirectional embeddings, overrides or isolates (they reorder the text as
shown).  The config loader and the OpenVote handler refuse such text with it.
"""

from __future__ import annotations

import msgspec

from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, SpeechKind, VoteSubject

# the abbreviations of the C0 (U+0000..U+001F) and C1 (U+0080..U+009F) control characters
_C0 = (  # noqa: SIM905 (a table to read, not a list to edit)
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()
_C1 = (  # noqa: SIM905
    "PAD HOP BPH NBH IND NEL SSA ESA HTS HTJ VTS PLD PLU RI SS2 SS3 "
    "DCS PU1 PU2 STS CCH MW SPA EPA SOS SGCI SCI CSI ST OSC PM APC"
).split()
_LINE_BREAKS = "\n\v\f\r\x85\u2028\u2029"
_ESCAPES = "\x1b\x90\x98\x9b\x9d\x9e\x9f"  # ESC, and the 8-bit DCS, SOS, CSI, OSC, PM, APC
_BIDI = {
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
}


def unshowable(char: str) -> bool:
    """A character text that is shown or printed must not contain (see ``text_problem``)."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or char in _BIDI or char in "\u2028\u2029"


def describe_char(char: str) -> str:
    """``U+001B (ESC: starts a terminal escape sequence)`` for a character ``unshowable`` refuses."""
    code = ord(char)
    if char in _BIDI:
        return f"U+{code:04X} ({_BIDI[char]}: reorders the text as shown)"
    if char in "\u2028\u2029":
        name = "LINE SEPARATOR" if char == "\u2028" else "PARAGRAPH SEPARATOR"
    elif code < 0x20:
        name = _C0[code]
    elif code == 0x7F:
        name = "DEL"
    else:
        name = _C1[code - 0x80]
    if char in _ESCAPES:
        what = "starts a terminal escape sequence"
    elif char in _LINE_BREAKS:
        what = "a line break"
    else:
        what = "a control character"
    return f"U+{code:04X} ({name}: {what})"


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """The first character of ``text`` that may not be shown or printed, e.g. ``U+001B (ESC: starts
    a terminal escape sequence) at character 5`` (counting from 1), or None when the text is fine.

    Names and titles are one line: every control character is refused, tab and newline included.
    ``multiline`` (longer texts such as reasons) allows newline and tab, nothing else.
    """
    for index, char in enumerate(text):
        if unshowable(char) and not (multiline and char in "\n\t"):
            return f"{describe_char(char)} at character {index + 1}"
    return None


class Deputy(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    full_name: str
    faction: str = ""
    cards: tuple[str, ...] = ()  # card UIDs, upper-case hex
    seat: int | None = None  # assigned seat
    open_data_id: str = ""  # identifier used in the open-data voting tables
    role: Role = Role.DEPUTY


class Seat(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    presence_sensor: bool = False
    chair: bool = False  # the presiding officer's console


def _default_thresholds() -> dict[VoteSubject, Threshold]:
    majority = Threshold(num=1, den=2, base=Base.COMPOSITION, strict=True)
    return {
        VoteSubject.BASIS: majority,
        VoteSubject.WHOLE: majority,
        VoteSubject.AMENDMENT: majority,
        VoteSubject.PROCEDURAL: Threshold(num=1, den=2, base=Base.REGISTERED, strict=True),
    }


def _default_speech_limits() -> dict[SpeechKind, int]:
    return {
        SpeechKind.REPORT: 900,
        SpeechKind.SPEECH: 180,
        SpeechKind.REPLY: 60,
        SpeechKind.POINT_OF_ORDER: 60,
    }


class Rules(msgspec.Struct, frozen=True, kw_only=True):
    quorum: Threshold = Threshold(num=1, den=2, base=Base.COMPOSITION, strict=True)
    thresholds: dict[VoteSubject, Threshold] = msgspec.field(default_factory=_default_thresholds)
    vote_duration_s: int = 20
    allow_change: bool = True  # may a deputy change the choice until the vote closes
    speech_limits_s: dict[SpeechKind, int] = msgspec.field(default_factory=_default_speech_limits)
    warning_s: int = 30  # warn this long before a speech's limit
    auto_mic_off: bool = True  # at the limit: switch the microphone off, or only signal
    max_open_mics: int = 2
    seating: Seating = Seating.ASSIGNED
    presence_required: bool = False  # a press counts only while the seat's presence sensor is held


class Council(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    edrpou: str = ""
    katottg: str = ""
    # where the council sits («м. Житомир, майдан Святого Михайла, 4/2»): journaled with the roster, so a
    # protocol rendered years later prints the place of that day ("" in journals from before the field)
    place: str = ""
    convocation: int = 8
    composition: int
    head_votes: bool = True  # the head presses buttons and the vote counts
    head_in_composition: bool = True


class Roster(msgspec.Struct, frozen=True, kw_only=True):
    council: Council
    deputies: tuple[Deputy, ...]
    seats: tuple[Seat, ...]
    rules: Rules = Rules()

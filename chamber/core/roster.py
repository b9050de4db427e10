"""Who sits where and by which rules: the roster a sitting is opened with.

The roster is copied into the journal's first record of every sitting, so a
sitting replays by the rules and the people it was opened with even if
config.toml has changed since.  chamber.config builds a Roster from the file.
"""

from __future__ import annotations

import msgspec

from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, SpeechKind, VoteSubject


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
    convocation: int = 8
    composition: int
    head_votes: bool = True  # the head presses buttons and the vote counts
    head_in_composition: bool = True


class Roster(msgspec.Struct, frozen=True, kw_only=True):
    council: Council
    deputies: tuple[Deputy, ...]
    seats: tuple[Seat, ...]
    rules: Rules = Rules()

"""Outputs of the sitting: what the edges must do after an input was applied.

Effects are immutable values.  The engine routes console effects (LEDs,
microphones, broadcasts, the console text line) to the line loops, alerts and
results to the display and the log, and ``SealSecretTally`` back into itself
as a journaled input.  A rejected input yields exactly one ``Rejected`` effect
with a stable reason code (for the UI and the counters) and an English detail.
"""

from __future__ import annotations

import enum

import msgspec


class _Effect(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    pass


class Rejected(_Effect, frozen=True, tag=True):
    input: str  # the input's type name
    reason: str  # stable code, e.g. "no_card", "vote_not_open"
    detail: str
    seat: int | None = None


class Mode(enum.StrEnum):
    """Chamber-wide console mode, broadcast to every console at once."""

    IDLE = "idle"
    REGISTRATION = "registration"
    VOTE_YES_NO = "vote_yes_no"
    VOTE_RATING = "vote_rating"


class ModeChanged(_Effect, frozen=True, tag=True):
    mode: Mode
    proposals: int = 0


class ChoiceAccepted(_Effect, frozen=True, tag=True):
    """Light the seat's choice LED (option index into yes/no/abstain or the proposals); -1 in a secret
    vote: a ballot was taken, its value is not shown."""

    seat: int
    option: int


class Registered(_Effect, frozen=True, tag=True):
    seat: int | None
    deputy: int


class CardAccepted(_Effect, frozen=True, tag=True):
    seat: int
    deputy: int


class MicOn(_Effect, frozen=True, tag=True):
    seat: int


class MicOff(_Effect, frozen=True, tag=True):
    seat: int
    reason: str


class RequestLed(_Effect, frozen=True, tag=True):
    """The seat's request-to-speak ring: lit while the seat waits in the queue."""

    seat: int
    on: bool


class SpeechWarning(_Effect, frozen=True, tag=True):
    seat: int
    remaining_s: int


class SpeechTimeUp(_Effect, frozen=True, tag=True):
    """The limit is reached but the rules say only to signal, not to cut the microphone."""

    seat: int


class Alert(_Effect, frozen=True, tag=True):
    kind: str  # "card_elsewhere", "unknown_card", "wrong_seat", "seat_offline", ...
    detail: str
    seat: int | None = None
    deputy: int | None = None


class VoteOpened(_Effect, frozen=True, tag=True):
    vote: int


class VoteClosed(_Effect, frozen=True, tag=True):
    vote: int
    adopted: bool | None  # None: a secret vote waiting for its sealed tally


class VoteCancelled(_Effect, frozen=True, tag=True):
    vote: int
    reason: str


class SealSecretTally(_Effect, frozen=True, tag=True):
    vote: int
    counts: tuple[int, ...]


class SittingOpened(_Effect, frozen=True, tag=True):
    """Terminals answer by reporting every seat's card and presence afresh."""

    number: int


class SittingClosed(_Effect, frozen=True, tag=True):
    number: int


class HeldOffline(_Effect, frozen=True, tag=True):
    """The sitting holds this seat's console (``mic_unit`` False) or its separate microphone unit
    (True) as not answering: sent with ``Sitting.console_outputs`` so that a controller starting up,
    which assumes every device answers, reports the device back when it does answer."""

    seat: int
    mic_unit: bool = False


class ConsoleText(_Effect, frozen=True, tag=True):
    """A short text line for every console (None: every console) or one seat."""

    text: str
    seat: int | None = None


Effect = (
    Rejected
    | ModeChanged
    | ChoiceAccepted
    | Registered
    | CardAccepted
    | MicOn
    | MicOff
    | RequestLed
    | SpeechWarning
    | SpeechTimeUp
    | Alert
    | VoteOpened
    | VoteClosed
    | VoteCancelled
    | SealSecretTally
    | ConsoleText
    | HeldOffline
    | SittingOpened
    | SittingClosed
)

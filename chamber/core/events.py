"""Inputs to the sitting: events from the consoles and commands from people.

Every input is an immutable msgspec struct tagged with its class name, so the
journal stores it as ``{"type": "KeyPressed", ...}`` and decodes it back to
the same value.  Events say what happened at a seat (past tense); commands say
what the secretary or chair asks for (imperative).  ``Input`` is the union of
all of them; ``INPUT_TYPES`` maps each tag to its class.  The deadline inputs
(``VoteTimeUp``, ``SpeechDue``) are made by the sitting itself and are not
part of ``Input``: see their section below.

Time is never a field of an input: it is passed to ``Sitting.apply`` next to
the input and stored beside it in the journal.
"""

from __future__ import annotations

import msgspec

from chamber.core.roster import Roster
from chamber.core.threshold import Threshold
from chamber.core.values import Key, SpeechKind, VoteKind, VoteSubject


class _Input(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    pass


# --- events reported by the seat consoles (terminals) -----------------------------------------------


class KeyPressed(_Input, frozen=True, tag=True):
    seat: int
    key: Key
    # The console's 16-bit event sequence number (None where the hardware has none).  A press
    # reported again after a controller crash, before its ACK reached the console, carries a
    # number already seen and is rejected as a duplicate instead of counted twice.
    seq: int | None = None
    # The console's boot (the low byte of its power-up count, register map IR 3): with ``seq`` the
    # event's identity, since a console numbers from 0 again after a power cut (None: journals written
    # before it existed, and hardware without event numbers).  See chamber.core.numbering.
    boot: int | None = None


class CardInserted(_Input, frozen=True, tag=True):
    seat: int
    uid: str


class CardRemoved(_Input, frozen=True, tag=True):
    seat: int


class PresenceChanged(_Input, frozen=True, tag=True):
    seat: int
    present: bool


class SeatWentOffline(_Input, frozen=True, tag=True):
    seat: int


class SeatCameOnline(_Input, frozen=True, tag=True):
    """A console answers again.  ``restarted``: it lost power meanwhile and counts its events from zero
    again (STATUS.RESTARTED), so the seat's duplicate check starts afresh; False: it was only
    unreachable (a cable, an adapter) and still holds the events it numbered before, some of them
    journaled already, which must stay recognisable as duplicates.  (True is the default because
    journals written before the field existed meant exactly that.)"""

    seat: int
    restarted: bool = True


class MicUnitChanged(_Input, frozen=True, tag=True):
    """A seat's separate microphone unit stopped answering (``online`` False) or answers again.  The
    console itself may be fine: the deputy can still vote, but will not be heard."""

    seat: int
    online: bool


class SecretBallotCast(_Input, frozen=True, tag=True):
    """The journal's form of a choice key pressed during a secret vote.

    It records that the seat took part, never what it chose; see
    ``Sitting.journal_form``.
    """

    seat: int
    seq: int | None = None  # the console's event number: says nothing about the choice
    boot: int | None = None  # the console's boot, as in KeyPressed


#: What the seat consoles report (the line loops' inputs; the engine journals a run of them together).
SEAT_EVENTS = (
    KeyPressed,
    CardInserted,
    CardRemoved,
    PresenceChanged,
    SeatWentOffline,
    SeatCameOnline,
    MicUnitChanged,
)


class Tick(_Input, frozen=True, tag=True):
    """Time has passed: lets deadlines (vote end, speech limits) fire with no other input."""


# --- deadlines: inputs the sitting makes itself, never given to it and never journaled --------------
#
# ``Sitting.apply`` makes these before the input it was given, when that input's time has reached a
# deadline, and runs them through the phase table like any input, each at its own time.  They
# follow from the state and the time alone, so a replay of the journal makes them again at the same
# points: journaling them would record twice what the records' times already say (and journals
# written before they existed hold none).  They are not in ``Input``, so no journal can decode one.


class VoteTimeUp(msgspec.Struct, frozen=True):
    """The open vote's time is up: applied at its deadline (the vote closes then, not when noticed)."""


class SpeechDue(msgspec.Struct, frozen=True):
    """A speech's warning or limit has come: applied at the time of the input that found it due (a
    speech that reached its limit still ends at its limit)."""


#: The deadline inputs, in the order ``Sitting.apply`` makes them when several are due at once.
DEADLINES = (VoteTimeUp, SpeechDue)


# --- commands from the secretary's or chair's console ----------------------------------------------


class AgendaItem(msgspec.Struct, frozen=True, kw_only=True):
    number: str  # "1", "12.3"
    title: str
    draft: str = ""  # draft decision number, e.g. "757/2"


class OpenSitting(_Input, frozen=True, tag=True):
    roster: Roster
    number: int = 1
    title: str = ""


class CloseSitting(_Input, frozen=True, tag=True):
    pass


class SetAgenda(_Input, frozen=True, tag=True):
    items: tuple[AgendaItem, ...]


class SetCurrentItem(_Input, frozen=True, tag=True):
    number: str | None  # None: no current item


class OpenRegistration(_Input, frozen=True, tag=True):
    pass


class CloseRegistration(_Input, frozen=True, tag=True):
    pass


class RegisterDeputy(_Input, frozen=True, tag=True):
    """The secretary registers a deputy by hand (e.g. a console is broken); journaled with a reason."""

    deputy: int
    reason: str


class OpenVote(_Input, frozen=True, tag=True):
    kind: VoteKind = VoteKind.ROLL_CALL
    subject: VoteSubject = VoteSubject.WHOLE
    title: str = ""
    item: str | None = None  # agenda item number; default: the current item
    threshold: Threshold | None = None  # default: the rules' threshold for the subject
    duration_s: int | None = None  # default: the rules' vote duration; 0 = until closed by hand
    proposals: tuple[str, ...] = ()  # rating votes: 2..9 proposals
    revote_of: int | None = None  # number of the vote this one repeats
    legal_basis: str = ""  # secret votes: the law that allows a secret ballot here


class CloseVote(_Input, frozen=True, tag=True):
    pass


class AnnounceResult(_Input, frozen=True, tag=True):
    pass


class ClearResult(_Input, frozen=True, tag=True):
    pass


class CancelVote(_Input, frozen=True, tag=True):
    reason: str


class SecretTallySealed(_Input, frozen=True, tag=True):
    """Counts of a closed secret vote, journaled by the engine right after the close.

    The only record of a secret vote's choices: aggregate counts, no seats.
    """

    vote: int
    counts: tuple[int, ...]


class AnnulSecretVote(_Input, frozen=True, tag=True):
    """A secret vote whose choices were lost (controller restarted while it was open)."""

    reason: str


class RequestFloor(_Input, frozen=True, tag=True):
    """The secretary adds a seat to the speaker queue."""

    seat: int
    kind: SpeechKind = SpeechKind.SPEECH


class WithdrawRequest(_Input, frozen=True, tag=True):
    seat: int


class GrantFloor(_Input, frozen=True, tag=True):
    seat: int
    kind: SpeechKind | None = None  # default: the kind the seat asked for, else a speech
    limit_s: int | None = None  # default: the rules' limit for the kind


class NextSpeaker(_Input, frozen=True, tag=True):
    pass


class RevokeFloor(_Input, frozen=True, tag=True):
    seat: int


class ExtendSpeech(_Input, frozen=True, tag=True):
    seat: int
    extra_s: int


class ChairPriority(_Input, frozen=True, tag=True):
    """Mute every deputy microphone (the chair's priority key)."""


Input = (
    KeyPressed
    | CardInserted
    | CardRemoved
    | PresenceChanged
    | SeatWentOffline
    | SeatCameOnline
    | MicUnitChanged
    | SecretBallotCast
    | Tick
    | OpenSitting
    | CloseSitting
    | SetAgenda
    | SetCurrentItem
    | OpenRegistration
    | CloseRegistration
    | RegisterDeputy
    | OpenVote
    | CloseVote
    | AnnounceResult
    | ClearResult
    | CancelVote
    | SecretTallySealed
    | AnnulSecretVote
    | RequestFloor
    | WithdrawRequest
    | GrantFloor
    | NextSpeaker
    | RevokeFloor
    | ExtendSpeech
    | ChairPriority
)

INPUT_TYPES: dict[str, type[_Input]] = {cls.__name__: cls for cls in Input.__args__}

_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[Input] = msgspec.json.Decoder(Input)


def encode_input(event: Input) -> bytes:
    """Canonical JSON bytes of an input (field order fixed by the struct definition)."""
    return _encoder.encode(event)


def decode_input(payload: bytes) -> Input:
    """Decode and validate journal bytes back to the input value; raises msgspec.ValidationError."""
    return _decoder.decode(payload)

"""Small value types shared by the whole domain core.

Everything here is an enum or an immutable struct with no behaviour beyond
labels.  Enum values are short stable strings (or small ints for keys) because
they are written into the journal and must never change meaning.
"""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """The sitting's phase.  Only the phase table (chamber.core.phases) moves a sitting between them."""

    NO_SITTING = "no_sitting"  # before the sitting is opened or after it is closed
    IDLE = "idle"  # open, nothing running: agenda, speeches
    REGISTRATION = "registration"
    VOTE_OPEN = "vote_open"
    VOTE_CLOSED = "vote_closed"  # result computed, seen by the secretary, not yet announced
    RESULT_SHOWN = "result_shown"  # announced on the hall screen


class Key(enum.IntEnum):
    """A key on a seat console (or on the chair console)."""

    REGISTER = 1
    YES = 2
    NO = 3
    ABSTAIN = 4
    SPEAK = 5  # request to speak (press again to withdraw)
    REPLY = 6  # request a short reply
    ORDER = 7  # point of order
    P1 = 11  # rating-vote proposal keys
    P2 = 12
    P3 = 13
    P4 = 14
    P5 = 15
    P6 = 16
    P7 = 17
    P8 = 18
    P9 = 19
    PRIORITY = 20  # chair: mute every deputy microphone
    NEXT = 21  # chair: give the floor to the next in the queue


class VoteKind(enum.StrEnum):
    ROLL_CALL = "roll_call"  # поіменне: per-name results published
    OPEN = "open"  # відкрите: counts shown, names not published
    SECRET = "secret"  # таємне: no choice is ever linked to a seat or deputy
    RATING = "rating"  # рейтингове: each deputy picks one of 2..9 proposals


class VoteSubject(enum.StrEnum):
    BASIS = "basis"  # за основу
    WHOLE = "whole"  # в цілому
    PROCEDURAL = "procedural"  # процедурне
    AMENDMENT = "amendment"  # поправка


class Outcome(enum.StrEnum):
    """What one deputy did in one vote, as published."""

    YES = "yes"
    NO = "no"
    ABSTAIN = "abstain"
    DID_NOT_VOTE = "did_not_vote"
    ABSENT = "absent"

    @property
    def label_uk(self) -> str:
        return _OUTCOME_UK[self]


_OUTCOME_UK = {
    Outcome.YES: "За",
    Outcome.NO: "Проти",
    Outcome.ABSTAIN: "Утримався",
    Outcome.DID_NOT_VOTE: "Не голосував",
    Outcome.ABSENT: "Відсутній",
}

#: Option index of each choice key in a yes/no/abstain vote.
YES_NO_OPTIONS: dict[Key, int] = {Key.YES: 0, Key.NO: 1, Key.ABSTAIN: 2}
YES_NO_OUTCOMES = (Outcome.YES, Outcome.NO, Outcome.ABSTAIN)
PROPOSAL_KEYS = (Key.P1, Key.P2, Key.P3, Key.P4, Key.P5, Key.P6, Key.P7, Key.P8, Key.P9)


class SpeechKind(enum.StrEnum):
    """Kinds of speech, in queue priority order (lower rank is served first)."""

    POINT_OF_ORDER = "point_of_order"  # з процедурного питання
    REPLY = "reply"  # репліка
    SPEECH = "speech"  # виступ
    REPORT = "report"  # доповідь (given by the secretary, never requested from a seat)

    @property
    def rank(self) -> int:
        return _SPEECH_RANK[self]


_SPEECH_RANK = {
    SpeechKind.POINT_OF_ORDER: 0,
    SpeechKind.REPLY: 1,
    SpeechKind.SPEECH: 2,
    SpeechKind.REPORT: 3,
}

#: Which request key asks for which kind of speech.
REQUEST_KEYS: dict[Key, SpeechKind] = {
    Key.SPEAK: SpeechKind.SPEECH,
    Key.REPLY: SpeechKind.REPLY,
    Key.ORDER: SpeechKind.POINT_OF_ORDER,
}


class Base(enum.StrEnum):
    """What a threshold fraction is taken of."""

    COMPOSITION = "composition"  # загальний склад ради
    REGISTERED = "registered"  # зареєстровані
    CAST = "cast"  # ті, хто проголосував (за + проти + утримався)
    CAST_WITHOUT_ABSTENTIONS = "cast_without_abstentions"  # за + проти


class Seating(enum.StrEnum):
    ASSIGNED = "assigned"  # a deputy's card works only at the deputy's own seat
    FREE = "free"


class Role(enum.StrEnum):
    DEPUTY = "deputy"
    HEAD = "head"  # міський (селищний, сільський) голова

"""What a deputy's console says when a press or a card is refused, and for how long.

The core refuses an input with a stable reason code (``Rejected.reason``); a deputy at the seat
sees only that the LED did not light.  This module turns the refusals of the seat's own inputs
into a short line on the console's text display (32 bytes, CP1251: one byte per Ukrainian letter),
shown for ``TEXT_SHOW_S`` seconds and then cleared.  The texts live here, at the edge, so the
core stays free of display wording and the journal is unchanged.

``SeatTexts`` keeps the clearing deadlines for one line; its machine (``terminals.machine``) asks
``due`` on each turn (one float comparison) and calls ``expired`` only when something is due.
"""

from __future__ import annotations

import math

from chamber.core import effects as fx

TEXT_SHOW_S = 5.0

# Refusals of inputs that come from the seat itself; a secretary's command refused is the console
# page's business, not the deputy's.
SEAT_INPUTS = frozenset({"KeyPressed", "SecretBallotCast", "CardInserted"})

REJECTION_TEXT: dict[str, str] = {
    "no_card": "Вставте картку",
    "no_presence": "Датчик присутності не активний",
    "vote_not_open": "Голосування не відкрите",
    "not_a_choice": "Ця клавіша тут не діє",
    "not_a_voter": "Без права голосу",
    "choice_final": "Голос уже враховано",
    "registration_not_open": "Реєстрацію не відкрито",
    "speaking": "Ви вже виступаєте",
    "not_chair": "Лише для головуючого",
    "unknown_card": "Картку не розпізнано",
    "card_elsewhere": "Картка вже в іншому пульті",
    "wrong_seat": "Це не ваше місце",
    "already_queued": "Ви вже в черзі",
    "not_queued": "Ви не в черзі",
    "not_allowed": "Зараз недоступно",
    "seat_offline": "Пульт не на зв'язку",
    "internal_error": "Збій, зверніться до секретаря",
    # duplicate_event is absent on purpose: it is a re-read after a restart, not a press of the deputy
}


def rejection_text(effect: fx.Rejected) -> str | None:
    """The console line for a refusal of the seat's own input, or None to show nothing."""
    if effect.input not in SEAT_INPUTS:
        return None
    return REJECTION_TEXT.get(effect.reason)


class SeatTexts:
    """Clearing deadlines of the texts shown on one line's consoles (used by the lines' thread only)."""

    def __init__(self, show_s: float = TEXT_SHOW_S) -> None:
        self.show_s = show_s
        self._until: dict[int, float] = {}  # seat -> when its text goes
        self.due = math.inf  # the earliest deadline; inf while nothing is shown

    def shown(self, seat: int, now: float) -> None:
        """A text was put on ``seat``'s console at ``now``: clear it ``show_s`` later."""
        until = now + self.show_s
        self._until[seat] = until
        self.due = min(self.due, until)

    def expired(self, now: float) -> list[int]:
        """The seats whose text is due to be cleared at ``now`` (forgotten here)."""
        gone = [seat for seat, until in self._until.items() if until <= now]
        for seat in gone:
            del self._until[seat]
        self.due = min(self._until.values(), default=math.inf)
        return gone

"""Console texts for refused inputs: they fit the display, and only the seat's own inputs get one."""

from __future__ import annotations

import math

import pytest

from chamber.core import effects as fx
from terminals.registers import TEXT_BYTES
from terminals.texts import REJECTION_TEXT, SeatTexts, rejection_text


@pytest.mark.parametrize("reason", sorted(REJECTION_TEXT))
def test_every_text_fits_the_display_in_cp1251(reason: str) -> None:
    raw = REJECTION_TEXT[reason].encode("cp1251")  # strict: a letter outside CP1251 would fail here
    assert 0 < len(raw) <= TEXT_BYTES


def test_only_refusals_of_the_seats_own_inputs_are_shown() -> None:
    press = fx.Rejected(input="KeyPressed", reason="vote_not_open", detail="", seat=3)
    assert rejection_text(press) == "Голосування не відкрите"
    card = fx.Rejected(input="CardInserted", reason="wrong_seat", detail="", seat=3)
    assert rejection_text(card) == "Це не ваше місце"
    command = fx.Rejected(input="GrantFloor", reason="not_queued", detail="", seat=3)
    assert rejection_text(command) is None  # the secretary's command: the console page says it
    reread = fx.Rejected(input="KeyPressed", reason="duplicate_event", detail="", seat=3)
    assert rejection_text(reread) is None  # not the deputy's doing


def test_texts_are_cleared_in_deadline_order() -> None:
    texts = SeatTexts(show_s=2.0)
    assert texts.due == math.inf
    texts.shown(1, now=10.0)
    texts.shown(2, now=11.0)
    assert texts.due == 12.0
    assert texts.expired(11.5) == []
    assert texts.expired(12.0) == [1] and texts.due == 13.0
    texts.shown(2, now=12.5)  # shown again: its time starts over
    assert texts.expired(13.0) == [] and texts.due == 14.5
    assert texts.expired(20.0) == [2] and texts.due == math.inf

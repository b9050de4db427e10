"""terminals.native on its own: a changed poll reply of a native console becomes the right events.

A stub stands in for the line loop (it records what is submitted and what is queued for writing), so
each case is one call of ``native.decode`` with the four registers of a poll reply.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from typing import Any

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from terminals import native
from terminals.line import LineStats
from terminals.links import ConsoleLink
from terminals.registers import CARD_READ_COUNT, Led, Status

CARD_SEQ = 3


class _Loop:
    line_id = "T"

    def __init__(self) -> None:
        self.events: list[ev.Input] = []
        self.writes: list[ConsoleLink] = []
        self.reads: list[bytes] = []
        self.stats = LineStats()
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def submit(self, event: ev.Input) -> Future[Any]:
        self.events.append(event)
        fut: Future[Any] = Future()
        fut.set_result(None)
        return fut

    def _want_write(self, link: ConsoleLink) -> None:
        self.writes.append(link)

    def exchange(self, link: ConsoleLink, frame: bytes, parse: Any) -> Any:
        self.reads.append(frame)
        return [0] * CARD_READ_COUNT  # the card registers: no card in the slot


def _decode(loop: _Loop, link: ConsoleLink, status: int, head: int = 1, count: int = 0, code: int = 0) -> bool:
    return native.decode(loop, link, [status, head, count << 8 | code, CARD_SEQ])  # type: ignore[arg-type]


def _link() -> ConsoleLink:
    link = ConsoleLink(seat=4, unit=4)
    link.card_seq = CARD_SEQ  # no card change in these replies
    return link


def test_a_console_that_powered_up_before_we_saw_it_resets_the_seat_numbering() -> None:
    loop, link = _Loop(), _link()
    assert _decode(loop, link, Status.RESTARTED | Status.PRESENCE)
    assert loop.events == [ev.SeatCameOnline(seat=4, restarted=True), ev.PresenceChanged(seat=4, present=True)]
    assert loop.writes == [link]  # MODE is written, which clears RESTARTED
    assert loop.stats.errors["restarted"] == 0  # not a restart we saw happen


def test_a_restart_seen_happen_is_counted_and_reported() -> None:
    loop, link = _Loop(), _link()
    assert _decode(loop, link, 0)
    assert loop.events == [ev.PresenceChanged(seat=4, present=False)]  # no restart: numbering kept
    loop.events.clear()
    assert _decode(loop, link, Status.RESTARTED)
    assert loop.events == [
        ev.SeatCameOnline(seat=4, restarted=True),
        ev.PresenceChanged(seat=4, present=False),
        ev.CardRemoved(seat=4),  # the card is read again: an empty slot is reported, the seat may hold a card
    ]
    assert loop.stats.errors["restarted"] == 1
    assert len(loop.reads) == 1  # everything is read again after a restart, the card included
    loop.events.clear()
    assert _decode(loop, link, Status.RESTARTED)  # still flagged (MODE not yet written): once is enough
    assert loop.events == []


def test_key_events_go_to_the_engine_once_with_their_numbers() -> None:
    loop, link = _Loop(), _link()
    assert _decode(loop, link, 0, head=41, count=1, code=int(Key.YES))
    assert loop.events[-1] == ev.KeyPressed(seat=4, key=Key.YES, seq=41)
    assert link.taken == 41
    n = len(loop.events)
    assert _decode(loop, link, 0, head=41, count=1, code=int(Key.YES))  # not yet acknowledged: not again
    assert len(loop.events) == n
    assert loop._inbox.get_nowait() == ("ack", (link, 41))  # the engine's Future completed: ACK queued


class _SplitLoop(_Loop):
    """The engine journals a console's events in two batches; the test settles each Future itself."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[Future[Any]] = []

    def submit(self, event: ev.Input) -> Future[Any]:
        fut = super().submit(event)
        if isinstance(event, ev.KeyPressed):  # (the presence report of a first poll is settled at once)
            fut = Future()
            self.futures.append(fut)
        return fut

    def exchange(self, link: ConsoleLink, frame: bytes, parse: Any) -> Any:
        return [int(Key.YES), int(Key.NO), int(Key.ABSTAIN)]  # the FIFO of three events


def _three_events(loop: _SplitLoop, link: ConsoleLink) -> None:
    assert _decode(loop, link, 0, head=10, count=3, code=int(Key.YES))
    assert [e.seq for e in loop.events if isinstance(e, ev.KeyPressed)] == [10, 11, 12]


def test_no_ack_until_every_event_is_journaled_and_none_if_one_failed() -> None:
    """An ACK of 12 frees 10 and 11 too: it may go only when all three are in the journal."""
    loop, link = _SplitLoop(), _link()
    _three_events(loop, link)
    loop.futures[2].set_result(None)  # the later batch first
    loop.futures[0].set_result(None)
    assert loop._inbox.empty()
    loop.futures[1].set_exception(OSError("disk full"))  # this batch could not be journaled
    assert loop._inbox.get_nowait() == ("retake", link)  # read them all again; no ACK
    assert loop._inbox.empty()

    loop, link = _SplitLoop(), _link()
    _three_events(loop, link)
    for fut in loop.futures:
        fut.set_result(None)
    assert loop._inbox.get_nowait() == ("ack", (link, 12))


def test_an_acceptance_arriving_after_the_card_left_does_not_light_an_empty_slot() -> None:
    link = _link()
    link.card_removed()  # this loop read the slot empty ...
    assert not link.apply_effect(fx.CardAccepted(seat=4, deputy=4))  # ... then the engine's late answer
    assert not link.apply_effect(fx.Registered(seat=4, deputy=4))
    assert not link.leds & (Led.CARD_OK | Led.REGISTERED)
    link.card_inserted()
    assert link.apply_effect(fx.CardAccepted(seat=4, deputy=4)) and link.leds & Led.CARD_OK


def test_a_secret_ballot_lights_all_three_choice_leds() -> None:
    link = _link()
    assert link.apply_effect(fx.ChoiceAccepted(seat=4, option=-1))
    assert link.leds & Led.CHOICES == Led.CHOICES  # taken; which one is not shown, nor kept here

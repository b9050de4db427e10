"""terminals.native on its own: a changed poll reply of a native console becomes the right events.

A stub stands in for the line loop (it records what is submitted and what is queued for writing), so
each case is one call of ``native.decode`` with the four registers of a poll reply.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from typing import Any

from test_line_faults import ScriptedTransport

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Outcome
from terminals import native
from terminals.line import LineLoop, LineStats
from terminals.links import ConsoleLink
from terminals.registers import CARD_READ_COUNT, Led, Status

CARD_SEQ = 3  # boot 0, card sequence 3


def journaled(event: ev.Input, seq: int | None = 1) -> Outcome:
    """What the engine answers for an input it journaled (as record ``seq``) and applied."""
    return Outcome(event, (), seq)


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
        fut.set_result(journaled(event))
        return fut

    def _want_write(self, link: ConsoleLink) -> None:
        self.writes.append(link)

    def exchange(self, link: ConsoleLink, frame: bytes, parse: Any) -> Any:
        self.reads.append(frame)
        return [0] * CARD_READ_COUNT  # the card registers: no card in the slot


def _decode(
    loop: _Loop, link: ConsoleLink, status: int, head: int = 1, count: int = 0, code: int = 0, boot: int = 0
) -> bool:
    card_word = boot << 8 | CARD_SEQ
    return native.decode(loop, link, [status, head, count << 8 | code, card_word])  # type: ignore[arg-type]


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
    assert loop.events[-1] == ev.KeyPressed(seat=4, key=Key.YES, seq=41, boot=0)
    assert link.taken == 41
    n = len(loop.events)
    assert _decode(loop, link, 0, head=41, count=1, code=int(Key.YES))  # not yet acknowledged: not again
    assert len(loop.events) == n
    assert loop._inbox.get_nowait() == ("ack", (link, 41, 0))  # the engine's Future completed: ACK queued


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
    loop.futures[2].set_result(journaled(ev.Tick()))  # the later batch first
    loop.futures[0].set_result(journaled(ev.Tick()))
    assert loop._inbox.empty()
    loop.futures[1].set_exception(OSError("disk full"))  # this batch could not be journaled
    assert loop._inbox.get_nowait() == ("retake", (link, 0))  # read them all again; no ACK
    assert loop._inbox.empty()

    loop, link = _SplitLoop(), _link()
    _three_events(loop, link)
    for fut in loop.futures:
        fut.set_result(journaled(ev.Tick()))
    assert loop._inbox.get_nowait() == ("ack", (link, 12, 0))


def test_no_ack_for_a_press_that_was_neither_journaled_nor_refused() -> None:
    """The console is told "taken" only for a press whose verdict stands in the journal."""
    loop, link = _SplitLoop(), _link()
    _three_events(loop, link)
    loop.futures[0].set_result(journaled(ev.Tick()))
    loop.futures[1].set_result(journaled(ev.Tick(), seq=None))  # applied, not journaled: never so
    loop.futures[2].set_result(journaled(ev.Tick()))
    assert loop._inbox.get_nowait() == ("retake", (link, 0))
    # With no sitting open nothing is journaled, and a refused press is acknowledged: nothing could
    # ever count it, and kept it would block the presses behind it.
    refused = fx.Rejected(input="KeyPressed", reason="not_allowed", detail="no sitting", seat=4)
    assert native.settled(Outcome(ev.Tick(), (refused,), None))
    assert not native.settled(Outcome(ev.Tick(), (), None))


def test_a_restart_that_only_the_boot_shows_is_seen() -> None:
    """A write of MODE addressed to the console cleared RESTARTED before this poll (restated outputs at
    start-up, a write queued for it): the new boot in IR 3 still tells, and its events carry it."""
    loop, link = _Loop(), _link()
    assert _decode(loop, link, 0, head=7, count=1, code=int(Key.YES), boot=5)
    assert link.taken == 7 and link.boot == 5
    loop.events.clear()
    assert _decode(loop, link, 0, head=0, count=1, code=int(Key.NO), boot=6)  # numbered from 0 again
    assert loop.stats.errors["restarted"] == 1
    assert loop.events[0] == ev.SeatCameOnline(seat=4, restarted=True)
    assert loop.events[-1] == ev.KeyPressed(seat=4, key=Key.NO, seq=0, boot=6)  # not skipped as taken
    assert link.taken == 0


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


def test_an_acknowledgement_does_not_cross_a_restart() -> None:
    """The engine answers for events of the old numbering after the console restarted: their ACK (or
    a retake) is dropped, or ACK 3 would free new events 0 … 3 that are not journaled yet."""
    link = _link()
    loop = LineLoop("T", ScriptedTransport(), [link], _Loop().submit, baud=115200)
    link.boot, link.taken = 6, 3  # restarted (boot 5 -> 6) and four new events taken since
    loop._inbox.put(("ack", (link, 3, 5)))
    loop._inbox.put(("retake", (link, 5)))
    loop._drain_inbox()
    assert link.ack_due is None and link.taken == 3
    loop._inbox.put(("ack", (link, 3, 6)))
    loop._drain_inbox()
    assert link.ack_due == 3

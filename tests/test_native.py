"""The native console profile through the real line machine, with time passed in.

Each case puts a console (``tests/line_harness.FakeConsole``) in some state, drives the real
``LineMachine`` for a few milliseconds of fake time (polls, follow-up reads, writes) and checks what
reached the engine and what went onto the wire: events with their numbers, a card read, an ACK only
after the journal, MODE written to a console that restarted.
"""

from __future__ import annotations

from line_harness import Driver, FakeConsole

from chamber.core import effects as fx
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Outcome
from terminals import native
from terminals.links import ConsoleLink
from terminals.machine import LineMachine
from terminals.registers import HR_ACK, HR_MODE, IR_CARD_LEN, IR_EVT_HEAD, Led, Status

CARD_SEQ = 3  # boot 0, card sequence 3
TICK = 0.05  # fake seconds: ten polls of one console or so


def journaled(event: ev.Input, seq: int | None = 1) -> Outcome:
    """What the engine answers for an input it journaled (as record ``seq``) and applied."""
    return Outcome(event, (), seq)


def _line(console: FakeConsole, *, manual: bool = False) -> tuple[Driver, ConsoleLink]:
    link = ConsoleLink(seat=4, unit=console.unit)
    link.card_seq = CARD_SEQ  # no card change in these replies unless a test makes one
    link.boot = None
    machine = LineMachine("T", [link], baud=115200, timeout_s=0.01)
    return Driver(machine, [console], manual=manual), link


def _console(**kwargs: int) -> FakeConsole:
    return FakeConsole(4, card_seq=CARD_SEQ, **kwargs)


def card_reads(drv: Driver) -> int:
    return sum(1 for f in drv.frames_to(4, 4) if f[2:4] == IR_CARD_LEN.to_bytes(2, "big"))


def test_a_console_that_powered_up_before_we_saw_it_resets_the_seat_numbering() -> None:
    console = _console(status=Status.RESTARTED | Status.PRESENCE)
    drv, _link = _line(console)
    drv.run(TICK)
    assert drv.events == [ev.SeatCameOnline(seat=4, restarted=True), ev.PresenceChanged(seat=4, present=True)]
    assert drv.writes_of(4, HR_MODE) == [0]  # MODE is written to it, which clears RESTARTED
    assert not console.status & Status.RESTARTED
    assert drv.m.stats.errors["restarted"] == 0  # not a restart we saw happen


def test_a_restart_seen_happen_is_counted_and_reported() -> None:
    console = _console()
    drv, _link = _line(console)
    drv.run(TICK)
    assert drv.events == [ev.PresenceChanged(seat=4, present=False)]  # no restart: numbering kept
    assert card_reads(drv) == 0
    drv.events.clear()
    console.status |= Status.RESTARTED  # it restarted without a new boot showing (a console of version 1)
    console.hr[HR_MODE] = 0xFF  # and its MODE register was not yet written: it keeps the flag for now
    drv.devices[4] = _Deaf(console)
    drv.run(TICK)
    assert drv.events == [
        ev.SeatCameOnline(seat=4, restarted=True),
        ev.PresenceChanged(seat=4, present=False),
        ev.CardRemoved(seat=4),  # the card is read again: an empty slot is reported, the seat may hold a card
    ]
    assert drv.m.stats.errors["restarted"] == 1
    assert card_reads(drv) == 1  # everything is read again after a restart, the card included
    drv.events.clear()
    console.status |= Status.PRESENCE  # still flagged (MODE not yet taken): once is enough
    drv.run(TICK)
    assert drv.events == [ev.PresenceChanged(seat=4, present=True)]
    assert drv.m.stats.errors["restarted"] == 1


class _Deaf:
    """The console, but its writes fail (no reply): it keeps RESTARTED set."""

    def __init__(self, console: FakeConsole) -> None:
        self.unit = console.unit
        self.console = console
        self.dead = False

    def answer(self, frame: bytes) -> bytes | None:
        if frame[1] in (6, 16):
            return None
        return self.console.answer(frame)


def test_key_events_go_to_the_engine_once_with_their_numbers_and_are_acknowledged_after_the_journal() -> None:
    console = _console()
    console.head = 41
    console.press(Key.YES)
    drv, link = _line(console, manual=True)
    drv.run(TICK)
    assert drv.presses() == [ev.KeyPressed(seat=4, key=Key.YES, seq=41, boot=0)]  # once, many polls later
    assert link.taken == 41
    assert drv.writes_of(4, HR_ACK) == []  # the engine has not answered: no ACK
    console.status |= Status.PRESENCE  # a changed reply is decoded again while the press is with the engine
    drv.run(TICK)
    assert drv.presses() == [ev.KeyPressed(seat=4, key=Key.YES, seq=41, boot=0)]  # not taken twice
    assert drv.writes_of(4, HR_ACK) == []  # and not acknowledged before the journal has it
    [(_, fut)] = drv.pending
    fut.set_result(journaled(drv.pending[0][0]))
    drv.run(TICK)
    assert drv.writes_of(4, HR_ACK) == [41]  # journaled: acknowledged, once
    assert console.fifo == [] and console.head == 42
    assert drv.presses() == [ev.KeyPressed(seat=4, key=Key.YES, seq=41, boot=0)]


def _three_events(manual: bool = True) -> tuple[Driver, FakeConsole, ConsoleLink]:
    console = _console()
    console.head = 10
    for key in (Key.YES, Key.NO, Key.ABSTAIN):
        console.press(key)
    drv, link = _line(console, manual=manual)
    drv.run(TICK)
    assert [e.seq for e in drv.presses()] == [10, 11, 12]
    assert len(drv.frames_to(4, 4)) > 3 and any(f[2:4] == IR_EVT_HEAD.to_bytes(2, "big") for f in drv.frames_to(4, 4))
    return drv, console, link


def test_no_ack_until_every_event_is_journaled_and_none_if_one_failed() -> None:
    """An ACK of 12 frees 10 and 11 too: it may go only when all three are in the journal."""
    drv, console, _link = _three_events()
    futures = [fut for _, fut in drv.pending]
    futures[2].set_result(journaled(ev.Tick()))  # the later batch first
    futures[0].set_result(journaled(ev.Tick()))
    drv.run(TICK)
    assert drv.writes_of(4, HR_ACK) == []
    futures[1].set_exception(OSError("disk full"))  # this batch could not be journaled
    drv.run(TICK)
    assert drv.writes_of(4, HR_ACK) == []  # no ACK ...
    assert [e.seq for e in drv.presses()] == [10, 11, 12, 10, 11, 12]  # ... they are all read again
    assert len(console.fifo) == 3

    drv, console, _link = _three_events()
    for _, fut in drv.pending:
        fut.set_result(journaled(ev.Tick()))
    drv.run(TICK)
    assert drv.writes_of(4, HR_ACK) == [12]
    assert console.fifo == []


def test_no_ack_for_a_press_that_was_neither_journaled_nor_refused() -> None:
    """The console is told "taken" only for a press whose verdict stands in the journal."""
    drv, _console, _link = _three_events()
    futures = [fut for _, fut in drv.pending]
    futures[0].set_result(journaled(ev.Tick()))
    futures[1].set_result(journaled(ev.Tick(), seq=None))  # applied, not journaled: never so
    futures[2].set_result(journaled(ev.Tick()))
    drv.run(TICK)
    assert drv.writes_of(4, HR_ACK) == []
    assert [e.seq for e in drv.presses()][3:] == [10, 11, 12]  # read again
    # With no sitting open nothing is journaled, and a refused press is acknowledged: nothing could
    # ever count it, and kept it would block the presses behind it.
    refused = fx.Rejected(input="KeyPressed", reason="not_allowed", detail="no sitting", seat=4)
    assert native.settled(Outcome(ev.Tick(), (refused,), None))
    assert not native.settled(Outcome(ev.Tick(), (), None))


def test_unknown_key_codes_are_acknowledged_without_the_engine() -> None:
    console = _console()
    console.head = 5
    console.press(0x3F)  # no such key
    drv, link = _line(console, manual=True)
    drv.run(TICK)
    assert drv.presses() == [] and link.errors["bad_key"] == 1
    assert drv.writes_of(4, HR_ACK) == [5]


def test_a_restart_that_only_the_boot_shows_is_seen() -> None:
    """A write of MODE addressed to the console cleared RESTARTED before this poll (restated outputs at
    start-up, a write queued for it): the new boot in IR 3 still tells, and its events carry it."""
    console = _console(boot=5)
    console.head = 7
    console.press(Key.YES)
    drv, link = _line(console)
    drv.run(TICK)
    assert link.boot == 5 and drv.writes_of(4, HR_ACK) == [7]
    drv.events.clear()
    console.power_cycle()  # boot 6, numbered from 0 again ...
    console.status &= ~Status.RESTARTED  # ... and the flag already cleared by an addressed MODE write
    console.press(Key.NO)
    drv.run(TICK)
    assert drv.m.stats.errors["restarted"] == 1
    assert drv.events[0] == ev.SeatCameOnline(seat=4, restarted=True)
    assert drv.presses() == [ev.KeyPressed(seat=4, key=Key.NO, seq=0, boot=6)]  # not skipped as taken
    assert drv.writes_of(4, HR_ACK) == [7, 0]


def test_a_console_that_missed_a_mode_broadcast_gets_it_written() -> None:
    console = _console()
    drv, link = _line(console)
    drv.m.post_effect(fx.ModeChanged(mode=fx.Mode.IDLE))  # the first mode always goes out
    drv.run(TICK)
    assert link.written == (0, 0, 0, 0) and drv.m.stats.errors["mode_missed"] == 0
    console.misses_broadcasts = True  # it does not hear the next broadcast, but answers the polls after it
    drv.m.post_effect(fx.ModeChanged(mode=fx.Mode.VOTE_YES_NO))
    drv.run(TICK)
    assert [f[:6].hex() for f in drv.frames_to(0)] == ["000601040000", "000601040002"]  # MODE to unit 0
    assert drv.m.stats.errors["mode_missed"] == 1
    assert drv.writes_of(4, HR_MODE)[-1] == 2 and console.hr[HR_MODE] == 2  # written to it alone


def test_an_acceptance_arriving_after_the_card_left_does_not_light_an_empty_slot() -> None:
    link = ConsoleLink(seat=4, unit=4)
    link.card_removed()  # this line read the slot empty ...
    assert not link.apply_effect(fx.CardAccepted(seat=4, deputy=4))  # ... then the engine's late answer
    assert not link.apply_effect(fx.Registered(seat=4, deputy=4))
    assert not link.leds & (Led.CARD_OK | Led.REGISTERED)
    link.card_inserted()
    assert link.apply_effect(fx.CardAccepted(seat=4, deputy=4)) and link.leds & Led.CARD_OK


def test_a_secret_ballot_lights_all_three_choice_leds() -> None:
    link = ConsoleLink(seat=4, unit=4)
    assert link.apply_effect(fx.ChoiceAccepted(seat=4, option=-1))
    assert link.leds & Led.CHOICES == Led.CHOICES  # taken; which one is not shown, nor kept here


def test_an_acknowledgement_does_not_cross_a_restart() -> None:
    """The engine answers for events of the old numbering after the console restarted: their ACK (or
    a retake) is dropped, or ACK 3 would free new events 0 … 3 that are not journaled yet."""
    link = ConsoleLink(seat=4, unit=4)
    machine = LineMachine("T", [link], baud=115200)
    link.boot, link.taken = 6, 3  # restarted (boot 5 -> 6) and four new events taken since
    machine.ack(link, 3, 5, 0)
    machine.retake(link, 5, 0)
    machine._drain_inbox()
    assert link.ack_due is None and link.taken == 3
    machine.ack(link, 3, 6, 0)
    machine._drain_inbox()
    assert link.ack_due == 3


def test_an_acknowledgement_does_not_cross_a_retake() -> None:
    """Events read before the engine failed to journal some of them are read again; a verdict still on
    its way about the earlier reading is dropped: its ACK would free the events the re-read is taking
    to the engine again (journaled or not), and a second retake would repeat the re-read."""
    link = ConsoleLink(seat=4, unit=4)
    machine = LineMachine("T", [link], baud=115200)
    link.boot, link.taken = 6, 1  # events 0 and 1 read in two polls: two groups of reading 0
    machine.retake(link, 6, 0)  # event 0 could not be journaled
    machine._drain_inbox()
    assert link.taken is None and link.epoch == 1  # read again
    link.taken = 1  # the re-read took 0 and 1 (reading 1)
    machine.ack(link, 1, 6, 0)  # event 1's first report was journaled: its ACK would free 0 too
    machine.retake(link, 6, 0)  # nor does a late retake of reading 0 read them a third time
    machine._drain_inbox()
    assert link.ack_due is None and link.taken == 1 and link.epoch == 1
    machine.ack(link, 1, 6, 1)  # the re-read journaled: both acknowledged
    machine._drain_inbox()
    assert link.ack_due == 1


def test_a_card_or_sensor_change_the_store_failed_is_reported_again() -> None:
    """A key press is latched at the console until its ACK; a card and the presence sensor are not.
    A change the engine could not journal (the store down or full) is reported again at the next
    poll, and once it is journaled it is not reported again."""
    console = _console()
    drv, _link = _line(console)
    drv.run(TICK)
    drv.events.clear()
    failing = True

    def journal(event: ev.Input) -> Outcome:
        return Outcome(event, (), None if failing else 7)

    drv.journal = journal
    console.card = b"\x04\xa1\xb2\xc3"
    console.card_seq += 1
    console.status |= Status.PRESENCE
    drv.run(TICK)
    card = ev.CardInserted(seat=4, uid="04A1B2C3")
    present = ev.PresenceChanged(seat=4, present=True)
    assert drv.events.count(card) >= 2 and drv.events.count(present) >= 2  # not journaled: again
    failing = False
    drv.run(TICK)
    drv.events.clear()
    drv.run(TICK)
    assert drv.events == []  # journaled once: no more


class _RestartsBeforeTheFifoRead(FakeConsole):
    """Restarts (and is pressed) right after the poll that announced two events, before the FIFO read."""

    hook_armed = False

    def answer(self, frame: bytes) -> bytes | None:
        if self.hook_armed and frame[1] == 4 and frame[2:4] != b"\x00\x00":  # the follow-up read
            self.hook_armed = False
            self.power_cycle()
            self.press(Key.ABSTAIN)
            self.press(Key.NO)
        return super().answer(frame)


def test_a_restart_between_the_poll_and_the_fifo_read_is_not_taken_under_the_old_boot() -> None:
    """Two presses (boot 0, events 5 and 6) are announced by a poll; the console restarts and is pressed
    twice before the controller reads the FIFO.  The codes the read returns belong to the new
    numbering (boot 1, events 0 and 1): taken under boot 0 they would be ABSTAIN as event (0, 5), a
    press nobody made, and the real YES and NO of boot 0 would pass for repeats later.  The read carries
    EVT_HEAD and BOOT with the FIFO, so the machine sees the change and takes the new events under
    their own boot at the next poll."""
    console = _RestartsBeforeTheFifoRead(4, card_seq=CARD_SEQ)
    console.head = 5
    drv, _link = _line(console)
    drv.run(TICK)
    console.press(Key.YES)
    console.press(Key.NO)
    console.hook_armed = True
    drv.run(TICK)
    presses = [(p.boot, p.seq, p.key) for p in drv.presses()]
    assert (0, 5, Key.ABSTAIN) not in presses and (0, 5, Key.YES) not in presses
    assert presses == [(1, 0, Key.ABSTAIN), (1, 1, Key.NO)]

"""The native console profile's decoding: a changed poll reply becomes core events (register map sections 2-4).

The line machine (``terminals.machine``) polls a native console with one read of STATUS, FIFO head,
FIFO info and CARD_SEQ and hands a reply that differs from the previous one to :func:`decode`, a
generator on the line's state (``terminals.state``: its follow-up reads are ``yield from
state.exchange(...)``, so nothing here waits or touches a port), which

* notices a restart (STATUS.RESTARTED newly set, or set when first seen): the console forgot its
  outputs and its event numbering, so the seat is reported ``SeatCameOnline(restarted=True)`` (the
  engine's duplicate check for the seat starts afresh) and everything is rewritten (writing MODE
  clears the flag).  A console that was only unreachable is reported with ``restarted=False`` by the
  machine: it still holds events it numbered before, some journaled already, and those must stay
  recognisable as duplicates when they are read again;
* reports presence changes and a FIFO overflow (events the console itself lost: logged, counted);
* checks STATUS.MODE_ECHO against the mode the console was sent: one that missed a MODE broadcast
  gets MODE and its outputs written to it alone (the machine decodes every console's first poll after
  a mode change, so an unchanged reply cannot hide that);
* reads the card (length + UID) when CARD_SEQ moved, and reports it inserted or removed;
* takes the key events: the newest one comes with the poll (FIFO info), several are read in one
  more request.  Each goes to the engine with its console sequence number; events already handed
  over (``link.taken``) are skipped.  The events of one read share an ``AckGroup``: the I/O loop
  acknowledges the newest only when the engine's Future of every one of them completes with a
  :func:`settled` outcome, i.e. after the journal write (``terminals.ioloop.acknowledge``); a failed
  journal write makes the machine read the events again.

A follow-up read that fails returns False, so the machine keeps the old reply and decodes again on the
next poll: nothing is half taken.  The generic profile's counterpart is ``terminals.generic.decode``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from chamber.core import events as ev
from chamber.core.values import Key
from terminals import rtu
from terminals.links import ConsoleLink
from terminals.registers import (
    CARD_READ_COUNT,
    FIFO_SIZE,
    IR_CARD_LEN,
    IR_CARD_SEQ,
    IR_EVT_HEAD,
    IR_FIFO,
    Status,
    boot_of,
    decode_uid,
    mode_echo,
    seq_after,
)
from terminals.state import SAY_RESTART, AckGroup, Exchange, LineState, Reread

if TYPE_CHECKING:
    from chamber.engine import Outcome

log = logging.getLogger("terminals.line")

VALID_KEYS = {int(k) for k in Key}
_PRESENCE = int(Status.PRESENCE)


def decode(line: LineState, link: ConsoleLink, regs: list[int]) -> Exchange[bool]:
    """Act on a changed poll reply; False if a follow-up read failed (decode it again next time)."""
    status, head, info, card_seq = regs
    previous = link.status
    boot = boot_of(card_seq)
    rebooted = link.boot is not None and boot != link.boot
    if rebooted or (status & Status.RESTARTED and (previous is None or not previous & Status.RESTARTED)):
        if previous is not None or rebooted:
            # The boot shows every power-up, also one whose RESTARTED flag an addressed write of MODE
            # cleared before this poll (a write queued for the console, restated outputs at start-up).
            log.warning("line %s: seat %d console restarted (boot %s -> %d)", line.line_id, link.seat, link.boot, boot)
            line.stats.errors["restarted"] += 1
            link.forget()
        else:  # restarted before we first saw it (the hall powered up, or while it was offline)
            log.info("line %s: seat %d console powered up", line.line_id, link.seat)
        # Its event numbering starts from zero again, under a new boot: events of the old numbering
        # still on their way to the engine must not be acknowledged to it (``LineState.apply_ack``).
        line.submit(ev.SeatCameOnline(seat=link.seat, restarted=True), Reread(link, None, SAY_RESTART))
        line.want_write(link)  # everything is written again
        previous = None
    link.boot = boot
    if previous is None or (status ^ previous) & Status.PRESENCE:
        line.submit(ev.PresenceChanged(seat=link.seat, present=bool(status & Status.PRESENCE)), Reread(link, _PRESENCE))
    if status & Status.OVERFLOW and not (previous or 0) & Status.OVERFLOW:
        log.error("line %s: seat %d: key events were lost at the console (FIFO overflow)", line.line_id, link.seat)
        link.errors["overflow"] += 1
    link.status = status
    written = link.written
    if written is not None and written[3] == link.mode and mode_echo(status) != link.mode & 0b111:
        # We wrote or broadcast this mode, and the console is not in it: it missed the broadcast.
        log.warning("line %s: seat %d missed the mode broadcast: writing it to the console", line.line_id, link.seat)
        line.stats.errors["mode_missed"] += 1
        link.written = None  # everything is written again, MODE first
        line.want_write(link)
    if card_seq != link.card_seq:
        frame = rtu.read_registers(link.unit, IR_CARD_LEN, CARD_READ_COUNT)
        card = yield from line.exchange(link, frame, rtu.parse_registers)
        if card is None:
            return False
        length = card[0]
        if length:
            link.card_inserted()
            line.submit(ev.CardInserted(seat=link.seat, uid=decode_uid(length, card[1:])), Reread(link, None))
        else:
            # Also on the first read after a start or a restart (card_seq None): the sitting may hold a
            # deputy here whose card left while nobody polled, and must not let the seat vote for them.
            link.card_removed()
            line.want_write(link)  # its card and registration LEDs go dark
            line.submit(ev.CardRemoved(seat=link.seat), Reread(link, None))
        link.card_seq = card_seq
    count = info >> 8
    if count:
        return (yield from _events(line, link, head, count, info & 0xFF))
    return True


def _events(line: LineState, link: ConsoleLink, head: int, count: int, first_code: int) -> Exchange[bool]:
    count = min(count, FIFO_SIZE)
    newest = (head + count - 1) & 0xFFFF
    taken = link.taken
    if taken is not None and not seq_after(newest, taken):
        return True  # all pending events are with the engine already, awaiting their ACK
    start = 0
    if taken is not None and ((taken - head) & 0xFFFF) < count:
        start = ((taken - head) & 0xFFFF) + 1
    if count == 1:
        codes = [first_code]
    else:
        # EVT_HEAD and BOOT_CARD come with the FIFO in one read (IR 4 … 15 read as 0): a console that
        # restarted since the poll (and was pressed) shows a new BOOT or head, and its new codes are not
        # taken under the old numbering; the next poll reports the restart and reads them afresh.
        span = IR_FIFO - IR_EVT_HEAD + count
        regs = yield from line.exchange(link, rtu.read_registers(link.unit, IR_EVT_HEAD, span), rtu.parse_registers)
        if regs is None or regs[0] != head or boot_of(regs[IR_CARD_SEQ - IR_EVT_HEAD]) != link.boot:
            return False
        codes = [r & 0xFF for r in regs[IR_FIFO - IR_EVT_HEAD :]]
    if taken is not None and link.acked != taken and all(codes[i] not in VALID_KEYS for i in range(start, count)):
        # Unknown key codes only, and earlier presses are with the engine, not yet journaled: the ACK
        # of these would free those too.  Leave them for later (decoded again at the next poll, until
        # the verdict is in).
        return False
    presses: list[ev.KeyPressed] = []
    for i in range(start, count):
        code = codes[i]
        if code not in VALID_KEYS:
            link.errors["bad_key"] += 1
            log.warning("line %s: seat %d reported unknown key code %d", line.line_id, link.seat, code)
            continue
        presses.append(ev.KeyPressed(seat=link.seat, key=Key(code), seq=(head + i) & 0xFFFF, boot=link.boot))
    link.taken = newest
    if not presses:  # unknown key codes only: nothing to journal, nothing a deputy pressed
        line.ack(link, newest, link.boot, link.epoch)
    else:
        # One group: an ACK of ``newest`` frees every event up to it, so it waits for all of them (the
        # engine may split them over two batches).  The boot goes with it: the machine drops a verdict
        # about a numbering the console has since forgotten, or an old number could free new events.
        group = AckGroup(link, newest, link.boot, len(presses))
        for press in presses:
            line.submit(press, group)
    return True


def settled(outcome: Outcome) -> bool:
    """May the console be told its press was taken?  Only if the press was journaled, so that its
    verdict (counted, refused by the rules, or a repeat of a press journaled before: see
    ``chamber.core.numbering``) stands in the journal; or, with no sitting open, if it was refused (no
    journal to put it in and nothing that could count it: kept, it would block the presses behind it)."""
    return outcome.seq is not None or outcome.rejection is not None

"""What the engine's effects do to one line's consoles: which outputs change, what is written to one
console and what is broadcast to all.

``apply`` runs on the line loop's thread (the loop drains its inbox between transactions) and only
changes the outputs wanted (``ConsoleLink``) and the queues of writes and broadcasts; the loop's turn
then puts them on the wire.  Besides the outputs themselves:

- a chamber mode that is restated, not changed, is not broadcast again (a MODE broadcast makes every
  console clear its choice LEDs);
- a new sitting makes every console report its card and sensor again, and devices found dead before
  it opened are reported to it;
- ``HeldOffline`` (sent at start-up for a resumed sitting) marks a device the sitting holds offline
  as such here too, so that its first answer is reported;
- a refusal of a seat's own press or card is explained on its text line (``terminals.texts``) and
  ``clear_texts`` clears it when its time is up.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chamber.core import effects as fx
from chamber.core import events as ev
from terminals import texts
from terminals.links import mode_of
from terminals.registers import HR_MODE, HR_TEXT, encode_text

if TYPE_CHECKING:
    from terminals.line import LineLoop


def apply(loop: LineLoop, effect: fx.Effect) -> None:
    """Take one engine effect: update the outputs wanted of the consoles it concerns and queue their
    writes, or a broadcast."""
    if type(effect) is fx.ModeChanged:
        assert isinstance(effect, fx.ModeChanged)
        word = mode_of(effect)
        told, loop._mode_told = loop._mode_told, True  # the first always goes out: consoles may hold any mode
        if told and loop._broadcasts and all(link.mode == word for link in loop.links):
            # Restated, not changed (a seat came back, a controller started): a broadcast would make
            # every console clear its choice LEDs mid-vote.  The console that was away is rewritten
            # in full by itself; one that missed a broadcast shows it in MODE_ECHO.
            return
        for link in loop.links:
            if link.set_mode(word) or not loop._broadcasts:  # then each console gets a write of its own
                loop._want_write(link)
            link.last_reply = None  # decode the next poll: its MODE_ECHO shows a missed broadcast
        if loop._broadcasts:
            loop._broadcast[HR_MODE] = [word]
        return
    if type(effect) is fx.SittingOpened:
        # The new sitting knows no cards yet: report every card and sensor again, and every console
        # and microphone unit found dead before it opened (reported then, it was refused: no sitting).
        for link in loop.links:
            link.last_reply = None
            link.status = None
            link.card_seq = None
            if not link.online:
                loop.submit(ev.SeatWentOffline(seat=link.seat))
            if link.mic_unit is not None and not link.mic_online:
                loop.submit(ev.MicUnitChanged(seat=link.seat, online=False))
        return
    if type(effect) is fx.HeldOffline:
        assert isinstance(effect, fx.HeldOffline)
        held = loop.by_seat.get(effect.seat)
        if held is None:
            return
        # The sitting says this device is down; this loop assumed it up.  Treat it as down, so
        # that the first answer is reported (SeatCameOnline / MicUnitChanged) and the seat returns.
        if effect.mic_unit:
            if held.mic_unit is not None:
                held.mic_online = False
        elif held.online:
            held.online = False
            held.next_probe = 0.0
        return
    if type(effect) is fx.ConsoleText:
        assert isinstance(effect, fx.ConsoleText)
        if effect.seat is None:
            if loop._broadcasts:
                loop._broadcast[HR_TEXT] = encode_text(effect.text)
            else:
                for link in loop.links:
                    if not link.generic and link.apply_effect(effect):
                        loop._want_write(link)
            return
    seat = getattr(effect, "seat", None)
    target = loop.by_seat.get(seat) if isinstance(seat, int) else None
    if target is None:
        return
    if type(effect) is fx.Rejected:
        assert isinstance(effect, fx.Rejected)
        text = None if target.generic else texts.rejection_text(effect)
        if text is not None:  # tell the deputy why the LED did not light
            target.text = text
            loop.texts.shown(target.seat, time.perf_counter())
            loop._want_write(target)
        return
    if target.apply_effect(effect):
        loop._want_write(target)


def clear_texts(loop: LineLoop, now: float) -> None:
    """Clear the text lines whose time is up."""
    for seat in loop.texts.expired(now):
        link = loop.by_seat[seat]
        link.text = ""
        loop._want_write(link)

"""What the engine's effects do to one line's consoles: which outputs change, what is written to one
console and what is broadcast to all.

``apply`` runs when the line machine drains its inbox at the start of a turn (between transactions)
and only changes the outputs wanted (``ConsoleLink``) and the line's queues of writes and broadcasts
(``terminals.state.LineState``); the machine's turn then puts them on the wire.  Time comes in as
``now``.  Besides the outputs themselves:

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

from chamber.core import effects as fx
from chamber.core import events as ev
from terminals import texts
from terminals.links import mode_of
from terminals.registers import HR_MODE, HR_TEXT, encode_text
from terminals.state import LineState


def apply(line: LineState, effect: fx.Effect, now: float) -> None:
    """Take one engine effect: update the outputs wanted of the consoles it concerns and queue their
    writes, or a broadcast."""
    if type(effect) is fx.ModeChanged:
        assert isinstance(effect, fx.ModeChanged)
        word = mode_of(effect)
        told, line.mode_told = line.mode_told, True  # the first always goes out: consoles may hold any mode
        if told and line.broadcasts and all(link.mode == word for link in line.links):
            # Restated, not changed (a seat came back, a controller started): a broadcast would make
            # every console clear its choice LEDs mid-vote.  The console that was away is rewritten
            # in full by itself; one that missed a broadcast shows it in MODE_ECHO.
            return
        for link in line.links:
            if link.set_mode(word) or not line.broadcasts:  # then each console gets a write of its own
                line.want_write(link)
            link.last_reply = None  # decode the next poll: its MODE_ECHO shows a missed broadcast
        if line.broadcasts:
            line.broadcast[HR_MODE] = [word]
        return
    if type(effect) is fx.SittingOpened:
        # The new sitting knows no cards yet: report every card and sensor again, and every console
        # and microphone unit found dead before it opened (reported then, it was refused: no sitting).
        for link in line.links:
            link.last_reply = None
            link.status = None
            link.card_seq = None
            if not link.online:
                line.submit(ev.SeatWentOffline(seat=link.seat))
            if link.mic_unit is not None and not link.mic_online:
                line.submit(ev.MicUnitChanged(seat=link.seat, online=False))
        return
    if type(effect) is fx.HeldOffline:
        assert isinstance(effect, fx.HeldOffline)
        held = line.by_seat.get(effect.seat)
        if held is None:
            return
        # The sitting says this device is down; this line assumed it up.  Treat it as down, so
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
            if line.broadcasts:
                line.broadcast[HR_TEXT] = encode_text(effect.text)
            else:
                for link in line.links:
                    if not link.generic and link.apply_effect(effect):
                        line.want_write(link)
            return
    seat = getattr(effect, "seat", None)
    target = line.by_seat.get(seat) if isinstance(seat, int) else None
    if target is None:
        return
    if type(effect) is fx.Rejected:
        assert isinstance(effect, fx.Rejected)
        text = None if target.generic else texts.rejection_text(effect)
        if text is not None:  # tell the deputy why the LED did not light
            target.text = text
            line.texts.shown(target.seat, now)
            line.want_write(target)
        return
    if target.apply_effect(effect):
        line.want_write(target)


def clear_texts(line: LineState, now: float) -> None:
    """Clear the text lines whose time is up."""
    for seat in line.texts.expired(now):
        link = line.by_seat[seat]
        link.text = ""
        line.want_write(link)

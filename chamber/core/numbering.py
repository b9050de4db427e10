"""Which of a console's key events are new: the seat's event numbering, kept by the sitting.

A native console numbers its key events with a 16-bit sequence number and repeats the unacknowledged
ones in every poll until the controller's ACK reaches it, so the same event can arrive twice (a reply
lost, a controller restart before the ACK).  After a power cut the console numbers from 0 again, so
the number alone cannot tell a repeat from a new press: its identity is (boot, seq), where ``boot``
is the console's power-up count (register map: IR 3, high byte), which changes at every power-up and
at nothing else.  Whatever order the controller's start-up, its writes, the broadcasts and the polls
come in, a press made after a power-up carries a boot never seen with the old numbers.

``Numbering.classify`` answers, for one event:

* ``NEW``: count it;
* ``REPEAT``: the same event again (same boot, a number among the newest 16 taken, the same kind of
  key): journaled already, it is refused as a repeat and may be acknowledged;
* ``CONFLICT``: the number was taken before for another kind of key, or lies further back than any
  console can repeat.  It cannot be an old event, so it is counted as new and the numbering starts
  again from it; the sitting raises an alert (a console that restarts without changing its boot, a
  firmware fault), so the secretary knows.

Kinds of key: the three choice keys are one kind (a secret ballot's journal form carries no key, and
a live check and a replay must agree); every other key is its own kind.  Events journaled before the
boot existed (``boot`` None) follow the old rule exactly, so old journals replay as they ran: a number
at or before the newest one is a repeat, and a reported restart starts the numbering afresh.
"""

from __future__ import annotations

from chamber.core.values import YES_NO_OPTIONS, Key

NEW = 0
REPEAT = 1
CONFLICT = 2

#: A console repeats only events still in its FIFO of 16, the newest 16 it numbered.
WINDOW = 16  # (``seq & 15`` below is its ring slot: a literal, this is the path of every press)
CHOICE = -1  # the kind of every choice key, and of a secret ballot


def kind_of(key: Key | None) -> int:
    """The kind of key an event carries (None: a secret ballot, whose key was not journaled)."""
    return CHOICE if key is None or key in YES_NO_OPTIONS else int(key)


_UNSEEN = object()  # a ring slot holding no number of this boot's window


class Numbering:
    """The newest event numbers taken from one seat's console.

    ``ring[seq % 16]`` holds the key of number ``seq`` if it was taken: a repeat can only be one of
    the 16 newest numbers (``WINDOW``), and when numbers are skipped (an unknown key code is never
    handed over) their slots are emptied, so a slot never answers for an older number than its own.
    Keys are stored as given and compared by kind only when a number comes again, so the path of a
    new press (the common one, ~450 of them when a vote opens) is a compare and a store."""

    __slots__ = ("boot", "last", "ring")

    def __init__(self) -> None:
        self.boot: int | None = None  # the console's boot of the events below
        self.last: int | None = None  # the newest event number taken
        self.ring: list[object] = [_UNSEEN] * WINDOW

    def restarted(self) -> None:
        """The line saw the console restart.  Only the old rule needs telling: where events carry their
        boot, a restart shows in the boot itself, and a restart reported without one (the flag left
        set by a controller that stopped before clearing it) must not make old events count again."""
        if self.boot is None:
            self.last = None

    def classify(self, boot: int | None, seq: int, key: Key | None) -> int:
        """NEW, REPEAT or CONFLICT for event ``seq`` of boot ``boot`` carrying ``key`` (None: a secret
        ballot); a NEW or CONFLICT event is taken."""
        if boot is None:
            return self._legacy(seq)
        last = self.last
        if boot != self.boot:  # a power-up since the last event taken: numbering from 0 again
            self.boot = boot
            self.ring = [_UNSEEN] * WINDOW
        elif last is not None:
            ahead = (seq - last) & 0xFFFF
            if ahead != 1:
                if ahead == 0 or ahead >= 0x8000:  # at or before the newest taken (RFC 1982)
                    return self._again(seq, key, last)
                self._skip(last, ahead)
        self.last = seq
        self.ring[seq & 15] = key
        return NEW

    def _skip(self, last: int, ahead: int) -> None:
        """Numbers between ``last`` and ``last + ahead`` were never taken: empty their slots."""
        ring = self.ring
        for n in range(1, min(ahead, WINDOW + 1)):
            ring[(last + n) & 15] = _UNSEEN

    def _again(self, seq: int, key: Key | None, last: int) -> int:
        """A number at or before the newest taken: the same press again, or a conflict (taken as new,
        the numbering going on from it)."""
        held = self.ring[seq & 15]
        if ((last - seq) & 0xFFFF) < WINDOW and held is not _UNSEEN and _same_kind(held, key):
            return REPEAT
        self.ring = [_UNSEEN] * WINDOW
        self.last = seq
        self.ring[seq & 15] = key
        return CONFLICT

    def _legacy(self, seq: int) -> int:
        last = self.last
        if last is not None and (seq == last or ((seq - last) & 0xFFFF) >= 0x8000):
            return REPEAT
        self.last = seq
        return NEW


def _same_kind(held: object, key: Key | None) -> bool:
    assert held is None or isinstance(held, Key)
    return kind_of(held) == kind_of(key)

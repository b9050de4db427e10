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


class Numbering:
    """The newest event numbers taken from one seat's console.

    Slot ``seq % 16`` of two rings holds the newest number taken with those low bits and its key: a
    repeat can only be one of the 16 newest numbers (``WINDOW``), and it is one only if its slot
    holds that very number (a number skipped, as an unknown key code is, leaves an older one there).
    Keys are stored as given and compared by kind only when a number comes again, so the path of a
    new press (the common one, ~450 of them when a vote opens) is a compare and two stores."""

    __slots__ = ("boot", "keys", "last", "seqs")

    def __init__(self) -> None:
        self.boot: int | None = None  # the console's boot of the events below
        self.last: int | None = None  # the newest event number taken
        self.seqs: list[int] = [-1] * WINDOW  # -1: no number of this boot in the slot
        self.keys: list[Key | None] = [None] * WINDOW

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
            self.seqs = [-1] * WINDOW
            last = None
        elif last is not None and ((last - seq) & 0xFFFF) < 0x8000:  # at or before the newest taken
            return self._again(seq, key, last)
        self.last = seq
        self.seqs[seq & 15] = seq
        self.keys[seq & 15] = key
        return NEW

    def _again(self, seq: int, key: Key | None, last: int) -> int:
        """A number at or before the newest taken (serial arithmetic, RFC 1982): the same press again,
        or a conflict (taken as new, the numbering going on from it)."""
        slot = seq & 15
        if ((last - seq) & 0xFFFF) < WINDOW and self.seqs[slot] == seq and kind_of(self.keys[slot]) == kind_of(key):
            return REPEAT
        self.seqs = [-1] * WINDOW
        self.last = seq
        self.seqs[slot] = seq
        self.keys[slot] = key
        return CONFLICT

    def _legacy(self, seq: int) -> int:
        last = self.last
        if last is not None and (seq == last or ((seq - last) & 0xFFFF) >= 0x8000):
            return REPEAT
        self.last = seq
        return NEW

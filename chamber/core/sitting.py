"""The sitting: one deterministic state machine fed with (input, time) pairs.

``Sitting`` is the state (chamber.core.state.SittingState) with the machine that changes it:
``apply(event, now)`` looks the input up in the row of the current phase in the phase table
(chamber.core.phases.TRANSITIONS), refuses it as ``not_allowed`` if it is not there, otherwise runs the
cell's handler and, when the handler accepted the input, enters the phase the cell names.  ``_enter``
is the only code that moves ``phase`` (the state's constructor sets the first, NO_SITTING); the
handlers never do, and tests/test_properties.py checks it.  Nothing here reads a clock, touches a
device or a database, or starts a thread: the same inputs at the same times always give the same state
and effects, which is what makes the journal a complete record and replay a faithful recovery.

Before every input, deadlines that its time has reached (a timed vote's end, a speech's warning or
limit) run first, as the inputs ``VoteTimeUp`` (at the vote's deadline) and ``SpeechDue`` (at the
input's time), through the same table; so a press that arrives after a vote's end is refused whatever
order the engine saw them in.  They are not journaled: a replay makes them again from the records'
times (chamber.core.events, "deadlines").  ``next_deadline`` tells the engine when to send a ``Tick``
if nothing else arrives.

A defect in a handler (an exception) does not stop the chamber: the input is refused as
``internal_error`` with an alert (a deadline input: an alert, and the deadline dropped until a handler
sets one again, or it would fail again with every input that follows).  The input is journaled already
and a replay meets the same defect at the same point, so live and replayed states stay equal.

State is mutable but owned by one caller (the engine's thread); readers get ``snapshot()``, an
immutable value.
"""

from __future__ import annotations

import msgspec

from chamber.core import events as ev
from chamber.core.effects import Alert, Effect, Rejected
from chamber.core.phases import TRANSITIONS, Row
from chamber.core.snapshot import Snapshot
from chamber.core.speakers import NEVER
from chamber.core.state import NONE, Effects, SittingState
from chamber.core.values import YES_NO_OPTIONS, Phase

__all__ = ["Sitting", "snapshot_bytes"]

_DEADLINES = frozenset(ev.DEADLINES)


class Sitting(SittingState):
    """State of one plenary sitting and the machine that applies inputs to it; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._row: Row = TRANSITIONS[self.phase]

    # --- the entry points ------------------------------------------------------------------------

    def apply(self, event: ev.Input, now: int) -> Effects:
        """Apply one input at time ``now`` (ms); return the effects."""
        if now < self.clock:
            now = self.clock  # time never runs backwards inside a sitting
        self.clock = now
        due = self._fire_due(now) if now >= self.deadline else NONE
        cls = type(event)
        move = self._row.get(cls)
        if move is None or cls in _DEADLINES:  # a deadline input is the sitting's own, never given
            effects: Effects = (self.rejection(event, "not_allowed", f"not allowed in phase {self.phase}"),)
        else:
            handler, to = move
            try:
                effects = handler(self, event, now)
            except Exception as exc:  # a defect here must not stop the chamber mid-sitting
                self.alerts += 1
                detail = f"internal error handling {cls.__name__}: {type(exc).__name__}: {exc}"
                effects = (self.rejection(event, "internal_error", detail), Alert(kind="internal_error", detail=detail))
            else:
                if to is not None and not (effects and type(effects[0]) is Rejected):
                    self._enter(to)
        if not due:
            return effects
        # a rejection stays first, so that callers can tell at a glance the input was refused
        return effects + due if effects and type(effects[0]) is Rejected else due + effects

    def journal_form(self, event: ev.Input) -> ev.Input:
        """The form in which ``event`` may be stored: secret choices lose their value."""
        vote = self.vote
        if (
            type(event) is ev.KeyPressed
            and vote is not None
            and vote.secret
            and self.phase is Phase.VOTE_OPEN
            and event.key in YES_NO_OPTIONS
        ):
            return ev.SecretBallotCast(seat=event.seat, seq=event.seq, boot=event.boot)
        return event

    def next_deadline(self) -> int:
        """When the sitting next needs time to pass (ms), or a far future."""
        return self.deadline

    # --- the machine -------------------------------------------------------------------------------

    def _enter(self, phase: Phase) -> None:
        """Move to ``phase``: called only for a cell of the phase table whose handler accepted."""
        self.phase = phase
        self._row = TRANSITIONS[phase]
        self.refresh_deadline()  # a vote's deadline counts only while it is open

    def _fire_due(self, now: int) -> Effects:
        """Run the deadline inputs due by ``now`` through the table, each at its own time."""
        effects: list[Effect] = []
        try:
            vote = self.vote
            if (
                self.phase is Phase.VOTE_OPEN
                and vote is not None
                and vote.deadline is not None
                and vote.deadline <= now
            ):
                effects.extend(self._run_deadline(ev.VoteTimeUp(), vote.deadline))
            if self.floor.next_deadline() <= now:
                effects.extend(self._run_deadline(ev.SpeechDue(), now))
        except Exception as exc:
            self.deadline = NEVER  # until a handler sets a new one; the same in a replay
            self.alerts += 1
            return (Alert(kind="internal_error", detail=f"internal error at a deadline: {type(exc).__name__}: {exc}"),)
        self.refresh_deadline()
        return tuple(effects)

    def _run_deadline(self, event: ev.VoteTimeUp | ev.SpeechDue, at: int) -> Effects:
        move = self._row.get(type(event))
        if move is None:  # the table has no cell for it here: a defect in the table, made an alert above
            raise LookupError(f"{type(event).__name__} has no cell in phase {self.phase}")
        handler, to = move
        effects = handler(self, event, at)
        if to is not None and not (effects and type(effects[0]) is Rejected):
            self._enter(to)
        return effects


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    return msgspec.json.encode(snapshot)

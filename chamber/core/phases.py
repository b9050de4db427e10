"""The sitting's phases and every legal transition, in one table: everything that moves a sitting
from one phase to another lives here.

``TRANSITIONS[phase][input type]`` is a ``Move``: the handler that runs (a function of (state, input,
now) returning effects, which never sets the phase) and the phase that follows when the handler
accepts the input (``to``; None: the phase stays).  A handler that refuses the input on its merits
(an unknown seat, no quorum, a bad threshold) returns a ``Rejected`` effect first, and then the phase
stays, whatever ``to`` says.  An input type missing from a phase's row is refused with the reason
``not_allowed`` before any handler runs.  The machine, ``Sitting`` (chamber.core.sitting), is the
only code that runs the table and the only code that moves the phase.

Time moves the phase through the same table: a timed vote's end is the input ``VoteTimeUp``
(VOTE_OPEN -> VOTE_CLOSED) and the speech timers are ``SpeechDue`` (no move), inputs the sitting makes
itself when an input's time has reached their deadline (chamber.core.events, "deadlines").

The table is written as two literals, each saying one thing: ``_TARGETS`` the inputs each phase
accepts and where each leads, ``HANDLERS`` which function handles each input type.  ``TRANSITIONS``
joins them once, at import.  One cell is built per row: the ``KeyPressed`` handler of a row is given
the handlers of the chair's commands that the row accepts, so the chair console's PRIORITY and NEXT
keys obey the row like the ``ChairPriority`` and ``NextSpeaker`` commands (chamber.core.keys).
"""

from __future__ import annotations

from typing import NamedTuple

from chamber.core import events as ev
from chamber.core import floor_handlers as floor
from chamber.core import keys, seat_handlers, sitting_handlers, vote_handlers
from chamber.core.state import Handler
from chamber.core.values import Phase

__all__ = ["DEADLINES", "HANDLERS", "TRANSITIONS", "Move", "Phase", "Row", "allowed"]


class Move(NamedTuple):
    handler: Handler
    to: Phase | None  # the phase that follows when the handler accepts the input; None: it stays


Row = dict[type, Move]
DEADLINES = ev.DEADLINES

#: The handler of each input type (``KeyPressed``: built per row, see the module docstring).
HANDLERS: dict[type, Handler] = {
    ev.SecretBallotCast: keys.secret_ballot,
    ev.CardInserted: seat_handlers.card_inserted,
    ev.CardRemoved: seat_handlers.card_removed,
    ev.PresenceChanged: seat_handlers.presence_changed,
    ev.SeatWentOffline: seat_handlers.seat_offline,
    ev.SeatCameOnline: seat_handlers.seat_online,
    ev.MicUnitChanged: seat_handlers.mic_unit_changed,
    ev.Tick: sitting_handlers.tick,
    ev.OpenSitting: sitting_handlers.open_sitting,
    ev.CloseSitting: sitting_handlers.close_sitting,
    ev.SetAgenda: sitting_handlers.set_agenda,
    ev.SetCurrentItem: sitting_handlers.set_current_item,
    ev.OpenRegistration: sitting_handlers.open_registration,
    ev.CloseRegistration: sitting_handlers.close_registration,
    ev.RegisterDeputy: sitting_handlers.register_deputy,
    ev.OpenVote: vote_handlers.open_vote,
    ev.CloseVote: vote_handlers.close_vote,
    ev.SecretTallySealed: vote_handlers.seal,
    ev.AnnounceResult: vote_handlers.announce,
    ev.ClearResult: vote_handlers.clear,
    ev.CancelVote: vote_handlers.cancel,
    ev.AnnulSecretVote: vote_handlers.annul,
    ev.VoteTimeUp: vote_handlers.vote_time_up,
    ev.RequestFloor: floor.request,
    ev.WithdrawRequest: floor.withdraw,
    ev.GrantFloor: floor.grant,
    ev.NextSpeaker: floor.next_speaker,
    ev.RevokeFloor: floor.revoke,
    ev.ExtendSpeech: floor.extend,
    ev.ChairPriority: floor.priority,
    ev.SpeechDue: floor.speech_due,
}

_SEAT_EVENTS = (
    *ev.SEAT_EVENTS,
    ev.SecretBallotCast,  # the journal's form of a secret choice: handled exactly like the key press
)
# Time passing is accepted in every phase: a Tick brings only the time, and a speech's timers run
# wherever a speech can be under way (a sitting that closes ends every speech first).
_TIME = (ev.Tick, ev.SpeechDue)
_QUEUE = (ev.RequestFloor, ev.WithdrawRequest, ev.RevokeFloor, ev.ExtendSpeech, ev.ChairPriority)
_FLOOR = (*_QUEUE, ev.GrantFloor, ev.NextSpeaker)
_AGENDA = (ev.SetAgenda, ev.SetCurrentItem)


def _stay(*types: type) -> dict[type, Phase | None]:
    return dict.fromkeys(types)


_TARGETS: dict[Phase, dict[type, Phase | None]] = {
    Phase.NO_SITTING: {
        # Seat events need the roster, which comes with OpenSitting; the terminals
        # report every seat's card and presence again when a sitting opens.
        ev.OpenSitting: Phase.IDLE,
        **_stay(*_TIME),
    },
    Phase.IDLE: {
        **_stay(*_SEAT_EVENTS, *_TIME, *_FLOOR, *_AGENDA),
        ev.OpenRegistration: Phase.REGISTRATION,
        ev.OpenVote: Phase.VOTE_OPEN,
        ev.CloseSitting: Phase.NO_SITTING,
    },
    Phase.REGISTRATION: {
        **_stay(*_SEAT_EVENTS, *_TIME, *_FLOOR, *_AGENDA, ev.RegisterDeputy),
        ev.CloseRegistration: Phase.IDLE,
    },
    Phase.VOTE_OPEN: {
        # No one is given the floor while a vote is open; requests may still queue.
        **_stay(*_SEAT_EVENTS, *_TIME, *_QUEUE),
        ev.CloseVote: Phase.VOTE_CLOSED,
        ev.VoteTimeUp: Phase.VOTE_CLOSED,
        ev.CancelVote: Phase.IDLE,
        ev.AnnulSecretVote: Phase.IDLE,
    },
    Phase.VOTE_CLOSED: {
        **_stay(*_SEAT_EVENTS, *_TIME, *_FLOOR, *_AGENDA, ev.SecretTallySealed),
        ev.AnnounceResult: Phase.RESULT_SHOWN,
        ev.CancelVote: Phase.IDLE,
        ev.AnnulSecretVote: Phase.IDLE,
    },
    Phase.RESULT_SHOWN: {
        **_stay(*_SEAT_EVENTS, *_TIME, *_FLOOR, *_AGENDA),
        ev.ClearResult: Phase.IDLE,
        ev.OpenVote: Phase.VOTE_OPEN,
        ev.OpenRegistration: Phase.REGISTRATION,
        ev.CloseSitting: Phase.NO_SITTING,
    },
}


def _row(targets: dict[type, Phase | None]) -> Row:
    row = {cls: Move(HANDLERS[cls], to) for cls, to in targets.items() if cls is not ev.KeyPressed}
    if ev.KeyPressed in targets:
        chair = {key: (cmd, row[cmd].handler if cmd in row else None) for key, cmd in keys.CHAIR_KEYS.items()}
        row[ev.KeyPressed] = Move(keys.key_handler(chair), targets[ev.KeyPressed])
    return row


TRANSITIONS: dict[Phase, Row] = {phase: _row(targets) for phase, targets in _TARGETS.items()}


def allowed(phase: Phase) -> list[str]:
    """Names of the inputs a phase accepts from outside (for error messages and docs)."""
    return sorted(t.__name__ for t in TRANSITIONS[phase] if t not in DEADLINES)

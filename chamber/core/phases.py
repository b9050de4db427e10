"""The sitting's phases and every legal transition, in one table.

Everything that decides whether an input may be applied in a phase lives in
``TRANSITIONS``: an input type missing from a phase's row is rejected with the
reason ``not_allowed``.  The value is the phase the sitting moves to when the
handler accepts the input (``None``: it stays).  Handlers may still reject an
allowed input on its merits (an unknown seat, a bad threshold); then the phase
does not change.  Two moves happen inside handlers because time causes them:
a timed vote closes itself (VOTE_OPEN -> VOTE_CLOSED) and an annulled secret
vote ends in IDLE.
"""

from __future__ import annotations

import enum

from chamber.core import events as ev


class Phase(enum.StrEnum):
    NO_SITTING = "no_sitting"  # before the sitting is opened or after it is closed
    IDLE = "idle"  # open, nothing running: agenda, speeches
    REGISTRATION = "registration"
    VOTE_OPEN = "vote_open"
    VOTE_CLOSED = "vote_closed"  # result computed, seen by the secretary, not yet announced
    RESULT_SHOWN = "result_shown"  # announced on the hall screen


_SEAT_EVENTS = (
    *ev.SEAT_EVENTS,
    ev.SecretBallotCast,  # the journal's form of a secret choice: handled exactly like the key press
    ev.Tick,
)
_QUEUE = (ev.RequestFloor, ev.WithdrawRequest, ev.RevokeFloor, ev.ExtendSpeech, ev.ChairPriority)
_FLOOR = (*_QUEUE, ev.GrantFloor, ev.NextSpeaker)
_AGENDA = (ev.SetAgenda, ev.SetCurrentItem)

Row = dict[type, "Phase | None"]


def _stay(*types: type) -> Row:
    return dict.fromkeys(types)


TRANSITIONS: dict[Phase, Row] = {
    Phase.NO_SITTING: {
        # Seat events need the roster, which comes with OpenSitting; the terminals
        # report every seat's card and presence again when a sitting opens.
        ev.OpenSitting: Phase.IDLE,
        **_stay(ev.Tick),
    },
    Phase.IDLE: {
        **_stay(*_SEAT_EVENTS, *_FLOOR, *_AGENDA),
        ev.OpenRegistration: Phase.REGISTRATION,
        ev.OpenVote: Phase.VOTE_OPEN,
        ev.CloseSitting: Phase.NO_SITTING,
    },
    Phase.REGISTRATION: {
        **_stay(*_SEAT_EVENTS, *_FLOOR, *_AGENDA, ev.RegisterDeputy),
        ev.CloseRegistration: Phase.IDLE,
    },
    Phase.VOTE_OPEN: {
        # No one is given the floor while a vote is open; requests may still queue.
        **_stay(*_SEAT_EVENTS, *_QUEUE),
        ev.CloseVote: Phase.VOTE_CLOSED,
        ev.CancelVote: Phase.IDLE,
        ev.AnnulSecretVote: Phase.IDLE,
    },
    Phase.VOTE_CLOSED: {
        **_stay(*_SEAT_EVENTS, *_FLOOR, *_AGENDA, ev.SecretTallySealed),
        ev.AnnounceResult: Phase.RESULT_SHOWN,
        ev.CancelVote: Phase.IDLE,
        ev.AnnulSecretVote: Phase.IDLE,
    },
    Phase.RESULT_SHOWN: {
        **_stay(*_SEAT_EVENTS, *_FLOOR, *_AGENDA),
        ev.ClearResult: Phase.IDLE,
        ev.OpenVote: Phase.VOTE_OPEN,
        ev.OpenRegistration: Phase.REGISTRATION,
        ev.CloseSitting: Phase.NO_SITTING,
    },
}


def allowed(phase: Phase) -> list[str]:
    """Names of the inputs a phase accepts (for error messages and docs)."""
    return sorted(t.__name__ for t in TRANSITIONS[phase])

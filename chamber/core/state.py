"""The state of one plenary sitting: a plain object that the handlers change and everyone else reads.

``SittingState`` holds everything a sitting accumulates (roster, seats, cards, registration rounds,
the open vote and the results, the floor, counters) and the few helpers the handlers share: the
refusal of an input (``reject``, which also counts it), the check of a text (``bad_text``), the
quorum, the consoles' mode, the next deadline and the immutable ``snapshot``.  It imports nothing
from the handlers or the phase table: the handlers (chamber.core.*_handlers, chamber.core.keys) are
functions of (state, input, now), the table (chamber.core.phases) names them, and the machine
(chamber.core.sitting.Sitting, a SittingState that applies inputs) is the only code that moves
``phase``, as the table says (the constructor here sets the first, NO_SITTING).

The state is mutable and owned by one caller (the engine's thread); readers get ``snapshot()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chamber.core import events as ev
from chamber.core.effects import (
    CardAccepted,
    ChoiceAccepted,
    Effect,
    HeldOffline,
    MicOn,
    Mode,
    ModeChanged,
    Registered,
    Rejected,
    RequestLed,
)
from chamber.core.numbering import Numbering
from chamber.core.roster import Roster, Rules, text_problem
from chamber.core.snapshot import RegistrationRound, SeatView, Snapshot, VoteView
from chamber.core.speakers import NEVER, Floor
from chamber.core.values import Phase, VoteKind
from chamber.core.voting import VoteResult, VoteState

Effects = tuple[Effect, ...]
NONE: Effects = ()


class SeatState:
    __slots__ = ("chair", "deputy", "id", "mic_ok", "numbering", "online", "present", "rejected", "sensor", "uid")

    def __init__(self, id: int, sensor: bool, chair: bool) -> None:
        self.id = id
        self.sensor = sensor
        self.chair = chair
        self.online = True
        self.mic_ok = True  # its microphone unit answers (always, where the console carries the microphone)
        self.deputy: int | None = None  # whose card is in the slot
        self.uid: str | None = None
        self.present = False  # presence sensor held
        self.rejected = 0  # presses rejected at this seat
        self.numbering = Numbering()  # the console's event numbers taken: repeats are not counted twice


def vote_mode(vote: VoteState) -> ModeChanged:
    """The consoles' mode while ``vote`` is open."""
    if vote.kind is VoteKind.RATING:
        return ModeChanged(mode=Mode.VOTE_RATING, proposals=len(vote.proposals))
    return ModeChanged(mode=Mode.VOTE_YES_NO)


class SittingState:
    """State of one plenary sitting; see the module docstring."""

    def __init__(self) -> None:
        self.phase = Phase.NO_SITTING  # moved by the phase table only (Sitting._enter)
        self.clock = 0  # time of the last input applied
        self.reset()

    def reset(self) -> None:
        """Everything a sitting accumulates, empty (a new sitting starts from nothing)."""
        self.deadline = NEVER  # the earliest time a deadline input is due (refresh_deadline)
        self.roster: Roster | None = None
        self.number = 0
        self.title = ""
        self.rules = Rules()
        self.composition = 0
        self.seats: dict[int, SeatState] = {}
        self.card_owner: dict[str, int] = {}  # card UID -> deputy
        # Cards refused as "active elsewhere": the consoles are polled one after another, so a card
        # moved between seats can be seen at the new seat before its removal from the old one.
        self.waiting_cards: dict[int, str] = {}  # seat -> UID
        self.active_seat: dict[int, int] = {}  # deputy -> seat whose slot holds the deputy's card
        self.home_seat: dict[int, int] = {}  # deputy -> assigned seat
        self.voters: tuple[int, ...] = ()  # deputies who may vote, in roster order
        self.voter_set: frozenset[int] = frozenset()
        self.counted: frozenset[int] = frozenset()  # deputies who count in the composition
        self.agenda: tuple[ev.AgendaItem, ...] = ()
        self.current_item: str | None = None
        self.rounds: list[RegistrationRound] = []
        self.registered: set[int] = set()  # the open round's, or the last closed round's
        self.round_opened_at = 0
        self.manual: dict[int, str] = {}  # deputy -> reason, registered by the secretary this round
        self.vote: VoteState | None = None
        self.results: dict[int, VoteResult] = {}
        self.votes_opened = 0
        self.floor = Floor(max_open_mics=2, warning_s=30, auto_mic_off=True)
        self.alerts = 0
        self.rejections = 0

    # --- refusing an input ---------------------------------------------------------------------------

    def rejection(self, event: object, reason: str, detail: str, seat: SeatState | None = None) -> Rejected:
        """The ``Rejected`` effect for ``event``, counted (in total and at its seat)."""
        self.rejections += 1
        seat_id = getattr(event, "seat", None)
        if seat is None and isinstance(seat_id, int):
            seat = self.seats.get(seat_id)
        if seat is not None:
            seat.rejected += 1
        return Rejected(input=type(event).__name__, reason=reason, detail=detail, seat=seat_id)

    def reject(self, event: object, reason: str, detail: str) -> Effects:
        return (self.rejection(event, reason, detail),)

    def bad_text(self, event: ev.Input, texts: list[tuple[str, str]], *, multiline: bool = False) -> Effects | None:
        """A ``bad_text`` refusal for the first of ``texts`` (field, text) that may not be shown or
        printed (control characters, escape sequences: ``roster.text_problem``), or None."""
        for field, text in texts:
            problem = text_problem(text, multiline=multiline)
            if problem is not None:
                lines = "plain printable text" if multiline else "plain printable text on one line"
                return self.reject(event, "bad_text", f"{field} must be {lines}; {problem} is not allowed")
        return None

    # --- time ----------------------------------------------------------------------------------------

    def refresh_deadline(self) -> None:
        """Recompute ``deadline`` after a change to the floor's speeches, the vote or the phase."""
        due = self.floor.next_deadline()
        vote = self.vote
        if self.phase is Phase.VOTE_OPEN and vote is not None and vote.deadline is not None:
            due = min(due, vote.deadline)
        self.deadline = due

    # --- reading -------------------------------------------------------------------------------------

    def deputy_at_home(self, seat: int) -> int | None:
        for deputy, home in self.home_seat.items():
            if home == seat:
                return deputy
        return None

    def present(self) -> set[int]:
        return set(self.active_seat)

    @property
    def registered_count(self) -> int:
        return len(self.counted.intersection(self.registered))

    @property
    def has_quorum(self) -> bool:
        return self.rules.quorum.passes(self.registered_count, self.composition)

    def mode(self) -> ModeChanged:
        vote = self.vote
        if self.phase is Phase.REGISTRATION:
            return ModeChanged(mode=Mode.REGISTRATION)
        if self.phase is Phase.VOTE_OPEN and vote is not None:
            return vote_mode(vote)
        return ModeChanged(mode=Mode.IDLE)

    def console_outputs(self) -> Effects:
        """Effects that set every console's outputs to what this state shows: the mode, card and
        registration LEDs, the choices of an open named vote, microphones and request rings.  A
        controller that resumes a sitting starts with consoles it knows nothing of: it sends these
        once, before anything else.  (A secret vote open at a restart is annulled, so its choices,
        which light only the seat's own LED, are not among them.)"""
        out: list[Effect] = [self.mode()]
        if self.phase is Phase.NO_SITTING:
            return tuple(out)
        for seat in self.seats.values():
            if not seat.online:
                out.append(HeldOffline(seat=seat.id))
            if not seat.mic_ok:
                out.append(HeldOffline(seat=seat.id, mic_unit=True))
            if seat.deputy is not None:
                out.append(CardAccepted(seat=seat.id, deputy=seat.deputy))
                if seat.deputy in self.registered:
                    out.append(Registered(seat=seat.id, deputy=seat.deputy))
        vote = self.vote
        if self.phase is Phase.VOTE_OPEN and vote is not None and not vote.secret:
            for deputy, option in vote.choices.items():
                out.append(ChoiceAccepted(seat=vote.seat_of[deputy], option=option))
        out.extend(MicOn(seat=seat) for seat in self.floor.speeches)
        out.extend(RequestLed(seat=r.seat, on=True) for r in self.floor.queue)
        return tuple(out)

    def snapshot(self) -> Snapshot:
        vote = self.vote
        vote_view = None
        if vote is not None:
            vote_view = VoteView.of(vote, self.phase, self.results.get(vote.number))
        return Snapshot(
            phase=self.phase,
            clock=self.clock,
            number=self.number,
            title=self.title,
            composition=self.composition,
            agenda=self.agenda,
            current_item=self.current_item,
            registration_open=self.phase is Phase.REGISTRATION,
            registered=self.registered_count,
            quorum=self.has_quorum,
            rounds=tuple(self.rounds),
            vote=vote_view,
            results=tuple(self.results.values()),
            queue=tuple(self.floor.queue),
            speaking=tuple(s.record() for s in self.floor.speeches.values()),
            speeches=tuple(self.floor.log),
            seats=tuple(
                SeatView(
                    id=s.id,
                    online=s.online,
                    mic_ok=s.mic_ok,
                    deputy=s.deputy,
                    present=s.present,
                    rejected=s.rejected,
                    speaking=s.id in self.floor.speeches,
                    queued=self.floor.queued(s.id) is not None,
                    voted=vote is not None and s.deputy is not None and s.deputy in vote.choices,
                )
                for s in self.seats.values()
            ),
            alerts=self.alerts,
            rejections=self.rejections,
        )


#: A handler: a function of (state, input, now) that returns the input's effects and never sets the
#: phase.  (The input is typed ``Any`` here because each handler takes its own input type.)
Handler = Callable[[SittingState, Any, int], Effects]

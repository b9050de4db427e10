"""The sitting: one deterministic state machine fed with (input, time) pairs.

``Sitting.apply(event, now)`` checks the input against the phase table
(chamber.core.phases), runs its handler and returns the effects as a tuple.
Nothing here reads a clock, touches a device or a database, or starts a
thread: the same inputs at the same times always give the same state and
effects, which is what makes the journal a complete record and replay a
faithful recovery.

Before every input, deadlines that have passed (a timed vote's end, a speech's
warning or limit) fire first, stamped with their own due time, so a press that
arrives after a vote's end is rejected whatever order the engine saw them in.
``next_deadline`` tells the engine when to send a ``Tick`` if nothing else
arrives.

State is mutable but owned by one caller (the engine's thread); readers get
``snapshot()``, an immutable value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from chamber.core import events as ev
from chamber.core import floor_handlers, seat_handlers, vote_handlers
from chamber.core.effects import (
    Alert,
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
    SealSecretTally,
    SittingClosed,
    SittingOpened,
    VoteClosed,
    VoteOpened,
)
from chamber.core.numbering import NEW, REPEAT, Numbering
from chamber.core.phases import TRANSITIONS, Phase
from chamber.core.roster import Roster, Rules, text_problem
from chamber.core.snapshot import RegistrationRound, SeatView, Snapshot, VoteView
from chamber.core.speakers import NEVER, Floor
from chamber.core.values import (
    PROPOSAL_KEYS,
    REQUEST_KEYS,
    YES_NO_OPTIONS,
    Key,
    Role,
    VoteKind,
)
from chamber.core.voting import UNKNOWN, VoteResult, VoteState

Effects = tuple[Effect, ...]
_NONE: Effects = ()
_CHOICE_KEYS = frozenset(YES_NO_OPTIONS) | frozenset(PROPOSAL_KEYS)


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


class Sitting:
    """State of one plenary sitting; see the module docstring."""

    def __init__(self) -> None:
        self.phase = Phase.NO_SITTING
        self._row = TRANSITIONS[self.phase]
        self.clock = 0  # time of the last input applied
        self._reset()
        self._handlers: dict[type, Callable[[Any, int], Effects]] = {
            ev.KeyPressed: self._key_pressed,
            ev.SecretBallotCast: self._secret_ballot,
            ev.Tick: lambda e, now: _NONE,
            ev.OpenSitting: self._open_sitting,
            ev.CloseSitting: self._close_sitting,
            ev.SetAgenda: self._set_agenda,
            ev.SetCurrentItem: self._set_current_item,
            ev.OpenRegistration: self._open_registration,
            ev.CloseRegistration: self._close_registration,
            ev.RegisterDeputy: self._register_deputy,
        }
        self._handlers.update(seat_handlers.handlers(self))
        self._handlers.update(vote_handlers.handlers(self))
        self._handlers.update(floor_handlers.handlers(self))

    def _reset(self) -> None:
        """Everything a sitting accumulates, empty (a new sitting starts from nothing)."""
        self._deadline = NEVER
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
        self._voter_set: frozenset[int] = frozenset()
        self._counted: frozenset[int] = frozenset()  # deputies who count in the composition
        self.agenda: tuple[ev.AgendaItem, ...] = ()
        self.current_item: str | None = None
        self.rounds: list[RegistrationRound] = []
        self.registered: set[int] = set()  # the open round's, or the last closed round's
        self._round_opened_at = 0
        self._manual: dict[int, str] = {}
        self.vote: VoteState | None = None
        self.results: dict[int, VoteResult] = {}
        self.votes_opened = 0
        self.floor = Floor(max_open_mics=2, warning_s=30, auto_mic_off=True)
        self.alerts = 0
        self.rejections = 0

    # --- the entry points ------------------------------------------------------------------------

    def apply(self, event: ev.Input, now: int) -> Effects:
        """Apply one input at time ``now`` (ms); return the effects."""
        if now < self.clock:
            now = self.clock  # time never runs backwards inside a sitting
        self.clock = now
        due = self._fire_due_guarded(now) if now >= self._deadline else _NONE
        cls = type(event)
        row = self._row
        if cls not in row:
            effects: Effects = (self.rejection(event, "not_allowed", f"not allowed in phase {self.phase}"),)
        else:
            try:
                effects = self._handlers[cls](event, now)
            except Exception as exc:  # a defect here must not stop the chamber mid-sitting
                # The input is journaled already and a replay meets the same defect at the same point,
                # so live and replayed states stay equal; the secretary sees an alert, not a hung hall.
                self.alerts += 1
                detail = f"internal error handling {cls.__name__}: {type(exc).__name__}: {exc}"
                effects = (self.rejection(event, "internal_error", detail), Alert(kind="internal_error", detail=detail))
            target = row[cls]
            if target is not None and not (effects and type(effects[0]) is Rejected):
                self.enter(target)
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
        return self._deadline

    # --- shared helpers (used by the handler modules too) -------------------------------------------

    def enter(self, phase: Phase) -> None:
        self.phase = phase
        self._row = TRANSITIONS[phase]
        self.refresh_deadline()

    def refresh_deadline(self) -> None:
        due = self.floor.next_deadline()
        vote = self.vote
        if self.phase is Phase.VOTE_OPEN and vote is not None and vote.deadline is not None:
            due = min(due, vote.deadline)
        self._deadline = due

    def rejection(self, event: ev.Input, reason: str, detail: str, seat: SeatState | None = None) -> Rejected:
        self.rejections += 1
        seat_id = getattr(event, "seat", None)
        if seat is None and isinstance(seat_id, int):
            seat = self.seats.get(seat_id)
        if seat is not None:
            seat.rejected += 1
        return Rejected(input=type(event).__name__, reason=reason, detail=detail, seat=seat_id)

    def reject(self, event: ev.Input, reason: str, detail: str) -> Effects:
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

    def floor_ref(self) -> Floor:
        return self.floor  # replaced when a sitting opens, so handlers look it up each time

    def deputy_at_home(self, seat: int) -> int | None:
        for deputy, home in self.home_seat.items():
            if home == seat:
                return deputy
        return None

    def present(self) -> set[int]:
        return set(self.active_seat)

    @property
    def registered_count(self) -> int:
        return len(self._counted.intersection(self.registered))

    @property
    def has_quorum(self) -> bool:
        return self.rules.quorum.passes(self.registered_count, self.composition)

    def mode(self) -> ModeChanged:
        vote = self.vote
        if self.phase is Phase.REGISTRATION:
            return ModeChanged(mode=Mode.REGISTRATION)
        if self.phase is Phase.VOTE_OPEN and vote is not None:
            if vote.kind is VoteKind.RATING:
                return ModeChanged(mode=Mode.VOTE_RATING, proposals=len(vote.proposals))
            return ModeChanged(mode=Mode.VOTE_YES_NO)
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

    def _fire_due_guarded(self, now: int) -> Effects:
        """``_fire_due``, with a defect in it made an alert and the deadline dropped: left due, it would
        fail again with every input that follows (each journaled, none applied).  It comes back only
        when a handler sets a deadline again."""
        try:
            return self._fire_due(now)
        except Exception as exc:
            self._deadline = NEVER  # until a handler sets a new one; the same in a replay
            self.alerts += 1
            return (Alert(kind="internal_error", detail=f"internal error at a deadline: {type(exc).__name__}: {exc}"),)

    def _fire_due(self, now: int) -> Effects:
        effects: list[Effect] = []
        vote = self.vote
        if self.phase is Phase.VOTE_OPEN and vote is not None and vote.deadline is not None and vote.deadline <= now:
            effects.extend(self.close_vote(vote.deadline))
            self.enter(Phase.VOTE_CLOSED)
        effects.extend(self.floor.due(now))
        self.refresh_deadline()
        return tuple(effects)

    # --- seat events -------------------------------------------------------------------------------

    def _key_pressed(self, e: ev.KeyPressed, now: int) -> Effects:
        seat = self.seats.get(e.seat)
        if seat is None:
            return self.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
        if e.seq is not None:
            verdict = seat.numbering.classify(e.boot, e.seq, e.key)
            if verdict != NEW:
                return self._numbered_again(e, e.key, verdict, now)
        return self._press(e, e.key, now, seat)

    def _secret_ballot(self, e: ev.SecretBallotCast, now: int) -> Effects:
        seat = self.seats.get(e.seat)
        if seat is None:
            return self.reject(e, "unknown_seat", f"no seat {e.seat} in this chamber")
        if e.seq is not None:
            verdict = seat.numbering.classify(e.boot, e.seq, None)
            if verdict != NEW:
                return self._numbered_again(e, None, verdict, now)
        return self._press(e, None, now, seat)

    def _numbered_again(
        self, e: ev.KeyPressed | ev.SecretBallotCast, key: Key | None, verdict: int, now: int
    ) -> Effects:
        """A console event whose number was taken before (``chamber.core.numbering``): a repeat is
        refused; a conflict is a new press, counted, with an alert for the secretary."""
        if verdict == REPEAT:
            return (self.rejection(e, "duplicate_event", f"event {e.seq} of seat {e.seat} was taken already"),)
        self.alerts += 1
        detail = (
            f"seat {e.seat}: console event {e.seq} (boot {e.boot}) came again with another key, or from "
            "further back than a console repeats; counted as a new press. The console may have "
            "restarted without saying so: check it"
        )
        seat = self.seats[e.seat]
        return (*self._press(e, key, now, seat), Alert(kind="event_conflict", detail=detail, seat=e.seat))

    def _press(self, e: ev.KeyPressed | ev.SecretBallotCast, key: Key | None, now: int, seat: SeatState) -> Effects:
        """A key at ``seat``; ``key`` None is a secret choice whose value was not journaled."""
        if not seat.online:
            return (self.rejection(e, "seat_offline", f"seat {seat.id} is offline", seat),)
        if seat.chair and key in (Key.PRIORITY, Key.NEXT):
            command = ev.ChairPriority if key is Key.PRIORITY else ev.NextSpeaker
            if command not in self._row:  # the chair's keys obey the phase table like the commands do
                return (self.rejection(e, "not_allowed", f"{command.__name__} is not allowed in phase {self.phase}"),)
            return self._handlers[command](e, now)
        deputy = seat.deputy
        if deputy is None:
            return (self.rejection(e, "no_card", f"no card in seat {seat.id}", seat),)
        if seat.sensor and not seat.present and self.rules.presence_required:
            return (self.rejection(e, "no_presence", f"presence sensor at seat {seat.id} not held", seat),)
        vote = self.vote
        if key is None or key in _CHOICE_KEYS:
            if self.phase is not Phase.VOTE_OPEN or vote is None:
                return (self.rejection(e, "vote_not_open", "no vote is open", seat),)
            if key is None and not vote.secret:
                return (self.rejection(e, "not_secret", "a hidden choice outside a secret vote", seat),)
            option = UNKNOWN if key is None else vote.key_map.get(key)
            if option is None:
                return (self.rejection(e, "not_a_choice", f"key {key} is not a choice in this vote", seat),)
            if deputy not in self._voter_set:
                return (self.rejection(e, "not_a_voter", f"deputy {deputy} does not vote", seat),)
            if not self.rules.allow_change and deputy in vote.choices:
                return (self.rejection(e, "choice_final", "the choice was made and may not change", seat),)
            vote.cast(deputy, seat.id, option)
            # A secret ballot is confirmed without its value: the seat's LEDs (seen by the neighbours)
            # and the line loop's memory of them hold no choice either.
            return (ChoiceAccepted(seat=seat.id, option=UNKNOWN if vote.secret else option),)
        if key is Key.REGISTER:
            if self.phase is not Phase.REGISTRATION:
                return (self.rejection(e, "registration_not_open", "registration is not open", seat),)
            self.registered.add(deputy)
            return (Registered(seat=seat.id, deputy=deputy),)
        kind = REQUEST_KEYS.get(key)
        if kind is not None:
            if self.floor.queued(seat.id) is not None:
                return self.floor.withdraw(seat.id)
            if seat.id in self.floor.speeches:
                return (self.rejection(e, "speaking", f"seat {seat.id} already has the floor", seat),)
            return self.floor.enqueue(seat.id, deputy, kind, now)
        return (self.rejection(e, "not_chair", f"key {key} works only on the chair console", seat),)

    # --- sitting, agenda, registration --------------------------------------------------------------

    def _open_sitting(self, e: ev.OpenSitting, now: int) -> Effects:
        refused = self.bad_text(e, [("title", e.title)])
        if refused is not None:
            return refused
        self._reset()
        roster = e.roster
        self.roster = roster
        self.number = e.number
        self.title = e.title
        # Rules is a frozen struct, but its two tables are dicts: keep copies, so that a caller who
        # changes the event's dicts after it was journaled cannot make this state differ from a replay.
        rules = roster.rules
        self.rules = msgspec.structs.replace(
            rules, thresholds=dict(rules.thresholds), speech_limits_s=dict(rules.speech_limits_s)
        )
        self.composition = roster.council.composition
        self.seats = {s.id: SeatState(s.id, s.presence_sensor, s.chair) for s in roster.seats}
        self.card_owner = {uid.upper(): d.id for d in roster.deputies for uid in d.cards}
        self.home_seat = {d.id: d.seat for d in roster.deputies if d.seat is not None}
        head_votes = roster.council.head_votes
        head_counts = roster.council.head_in_composition
        self.voters = tuple(d.id for d in roster.deputies if d.role is Role.DEPUTY or head_votes)
        self._voter_set = frozenset(self.voters)
        self._counted = frozenset(d.id for d in roster.deputies if d.role is Role.DEPUTY or head_counts)
        r = self.rules
        self.floor = Floor(max_open_mics=r.max_open_mics, warning_s=r.warning_s, auto_mic_off=r.auto_mic_off)
        return (SittingOpened(number=e.number), ModeChanged(mode=Mode.IDLE))

    def _close_sitting(self, e: ev.CloseSitting, now: int) -> Effects:
        effects = self.floor.end_all(now, "sitting_closed", keep_chair=False)
        self.refresh_deadline()
        return (*effects, ModeChanged(mode=Mode.IDLE), SittingClosed(number=self.number))

    def _set_agenda(self, e: ev.SetAgenda, now: int) -> Effects:
        numbers = [i.number for i in e.items]
        if len(set(numbers)) != len(numbers):
            return self.reject(e, "duplicate_item", "agenda item numbers must be unique")
        texts = [
            (f"items[{i}].{field}", getattr(item, field))
            for i, item in enumerate(e.items)
            for field in ("number", "title", "draft")
        ]
        refused = self.bad_text(e, texts)
        if refused is not None:
            return refused
        self.agenda = e.items
        if self.current_item not in numbers:
            self.current_item = None
        return _NONE

    def _set_current_item(self, e: ev.SetCurrentItem, now: int) -> Effects:
        if e.number is not None and all(i.number != e.number for i in self.agenda):
            return self.reject(e, "unknown_item", f"no agenda item {e.number}")
        self.current_item = e.number
        return _NONE

    def _open_registration(self, e: ev.OpenRegistration, now: int) -> Effects:
        self.registered = set()
        self._manual = {}
        self._round_opened_at = now
        return (ModeChanged(mode=Mode.REGISTRATION),)

    def _close_registration(self, e: ev.CloseRegistration, now: int) -> Effects:
        self.rounds.append(
            RegistrationRound(
                number=len(self.rounds) + 1,
                opened_at=self._round_opened_at,
                closed_at=now,
                registered=tuple(sorted(self.registered)),
                manual=tuple(sorted(self._manual.items())),
                count=self.registered_count,
                quorum=self.has_quorum,
            )
        )
        return (ModeChanged(mode=Mode.IDLE),)

    def _register_deputy(self, e: ev.RegisterDeputy, now: int) -> Effects:
        if e.deputy not in self.home_seat and e.deputy not in self._voter_set | self._counted:
            return self.reject(e, "unknown_deputy", f"no deputy {e.deputy}")
        if not e.reason.strip():
            return self.reject(e, "reason_required", "a manual registration needs a reason")
        refused = self.bad_text(e, [("reason", e.reason)], multiline=True)
        if refused is not None:
            return refused
        self.registered.add(e.deputy)
        self._manual[e.deputy] = e.reason
        return (Registered(seat=None, deputy=e.deputy),)

    # --- votes (the handlers live in vote_handlers) ----------------------------------------------------

    def close_vote(self, at: int) -> Effects:
        """Close the open vote at ``at``: compute its result (or ask for the secret tally's seal)."""
        vote = self.vote
        assert vote is not None
        effects: list[Effect] = [ModeChanged(mode=Mode.IDLE)]
        if vote.secret:
            vote.deadline = None
            vote.closed_at = at
            if vote.counts_known:
                effects.append(SealSecretTally(vote=vote.number, counts=tuple(vote.tally)))
            effects.append(VoteClosed(vote=vote.number, adopted=None))
            return tuple(effects)
        result = self.result_of(vote, at)
        self.results[vote.number] = result
        effects.append(VoteClosed(vote=vote.number, adopted=result.adopted))
        return tuple(effects)

    def result_of(self, vote: VoteState, closed_at: int | None, cancelled: str | None = None) -> VoteResult:
        return vote.result(
            closed_at=closed_at,
            voters=self.voters,
            present=self.present(),
            composition=self.composition,
            cancelled=cancelled,
        )

    def opened_vote(self, vote: VoteState) -> Effects:
        self.votes_opened += 1
        self.vote = vote
        effects = self.floor.end_all(vote.opened_at, "vote_opened")
        self.refresh_deadline()
        return (*effects, VoteOpened(vote=vote.number))

    # --- reading -----------------------------------------------------------------------------------

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


def snapshot_bytes(snapshot: Snapshot) -> bytes:
    return msgspec.json.encode(snapshot)

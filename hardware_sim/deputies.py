"""Simulated deputies: people who walk in, put their cards in, register, vote and ask for the floor.

How it works
------------
:class:`Deputies` takes the config's deputies that have a seat and a card.  Every action goes through
the :class:`~hardware_sim.simulator.Simulator` (so the consoles latch it exactly as a real press) and
every press is appended to :attr:`Deputies.press_log` as a :class:`Press` (seat, key, time, whether
the console latched it) so a test or benchmark can compare what people pressed with what the
controller journaled and count lost presses.

* :meth:`arrive` puts the cards of a random fraction of the absent deputies into their assigned seats
  (and holds the presence sensor where the seat has one); :meth:`leave` takes them out again.
* :meth:`register_all` presses Реєстрація at every seat with a card in.
* :meth:`vote` gives each present deputy a choice (yes / no / abstain / none with the given
  weights) and a reaction time drawn from a log-normal distribution (median, sigma), and presses in
  a background thread at those times; it returns the :class:`Schedule` (``join()`` waits for it).
* :meth:`request_floor` makes n random present deputies press "request to speak".

All randomness comes from one seeded :class:`random.Random`; the same seed gives the same sitting.

:class:`Autopilot` is the hall that takes part by itself (for ``make demo``, training and the web
pages' tests): no script tells it when to act, it watches the consoles as the deputies would and
reacts to what the controller does to them.

* :meth:`Autopilot.start` puts the cards of every seated deputy into their seats (and holds the
  presence sensors) except for a random ``absent_fraction`` of the deputies (never the head, who
  presides), then starts its thread.
* The thread looks at every present deputy's console a few times a second (``poll_s``): a native
  console's MODE (``ConsoleModel.state().mode``: 1 registration, 2 yes/no vote, 3 rating vote with
  the number of proposals in MODE's high byte), and its LEDs.  A generic DI/DO module has no MODE:
  its deputy follows ``mode_source(seat)`` when one is given, otherwise the MODE of the nearest native
  console in the hall (seat ``x``/``y``; the hall screen and the neighbours show the same thing).
* Each change of a seat's MODE starts a new *episode* for that deputy, and the deputy decides once
  for it, with its own random stream: a registration is answered with Реєстрація after a log-normal
  reaction time (``register_s``); a yes/no vote with За / Проти / Утримався / nothing
  (``vote_weights``) after ``reaction_s``, and with probability ``change_of_mind`` a second,
  different choice a little later; a rating vote with one of the proposal keys P1 … Pn (or nothing,
  ``rating_none``; a generic module has no proposal keys and sits it out).  Presses planned for an
  episode that has ended (the vote closed first) are dropped, as a deputy does not press on a dark
  console.  A head whom the council's rules do not let vote registers but does not vote.
* While its console is idle a deputy (not the head) asks for the floor now and then: a Poisson
  process of ``floor_per_min`` requests a minute, and only when neither the request ring nor the
  microphone ring is lit (a second press of the key would withdraw the request).
* Every press goes through :meth:`Deputies.press` (so into :attr:`Deputies.press_log`) and is also
  recorded as an :class:`Action` with the reason; ``on_action`` is called with each one (from the
  autopilot's thread).  The autopilot never talks to the controller: it acts on the simulator's
  physical side only (cards, presence sensors, keys).

Determinism: who is absent comes from ``Random(seed)``, and each deputy draws from its own
``Random`` seeded with ``seed`` and its id, only when an episode starts or a floor request fires.  So
the same seed and the same sequence of MODEs give the same choices and reaction times, however the
thread's polls happen to fall.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from chamber.core.values import Key, Role
from hardware_sim.console import ConsoleModel
from hardware_sim.generic import GenericModuleModel
from hardware_sim.simulator import Simulator, parse_key
from terminals.registers import Led, Mode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Press:
    seat: int
    key: int
    time: float  # time.monotonic() when the key went down
    latched: bool  # False: the console dropped it (FIFO full, powered off)


@dataclass(frozen=True)
class SimDeputy:
    id: int
    name: str
    seat: int
    card: str


class Schedule:
    """Presses planned at offsets from a start time, made by a background thread."""

    def __init__(self, plan: list[tuple[float, int, Key]], press: Callable[[int, Key], None]) -> None:
        self.plan = sorted(plan, key=lambda item: item[0])
        self._press = press
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-deputies", daemon=True)
        self.started_at = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        for offset, seat, key in self.plan:
            delay = self.started_at + offset - time.monotonic()
            if delay > 0 and self._cancel.wait(delay):
                return
            self._press(seat, key)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every planned press; True when done."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()
        self._thread.join(5)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()


class Deputies:
    """The config's seated deputies, acting on a running :class:`Simulator`."""

    def __init__(self, sim: Simulator, seed: int = 1) -> None:
        self.sim = sim
        self.rng = random.Random(seed)
        self.deputies: dict[int, SimDeputy] = {
            d.id: SimDeputy(d.id, d.full_name, d.seat, d.cards[0])
            for d in sim.config.deputies
            if d.seat is not None and d.cards and d.seat in sim.seats
        }
        self.press_log: list[Press] = []
        self._log_lock = threading.Lock()

    # ------------------------------------------------------------------ who is here

    def present(self) -> list[SimDeputy]:
        """Deputies whose own card is in their seat."""
        return [d for d in self.deputies.values() if self.sim.console(d.seat).card == d.card]

    def arrive(self, fraction: float = 1.0) -> list[SimDeputy]:
        """A random ``fraction`` of all deputies is here (cards in, presence held); returns who arrived."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must be 0 … 1, got {fraction}")
        here = {d.id for d in self.present()}
        target = round(fraction * len(self.deputies))
        absent = [d for d in self.deputies.values() if d.id not in here]
        arriving = self.rng.sample(absent, max(0, min(len(absent), target - len(here))))
        for d in sorted(arriving, key=lambda d: d.seat):
            console = self.sim.console(d.seat)
            if console.card is None:
                console.insert_card(d.card)
            console.set_presence(True)
        return arriving

    def leave(self, deputy_ids: list[int] | None = None) -> None:
        """Deputies take their cards and leave (all present ones when ``deputy_ids`` is None)."""
        for d in self.present():
            if deputy_ids is None or d.id in deputy_ids:
                console = self.sim.console(d.seat)
                console.set_presence(False)
                console.remove_card()

    # ------------------------------------------------------------------ pressing

    def press(self, seat: int, key: Key | int | str) -> bool:
        """Press a key at a seat and log it."""
        code = parse_key(key)
        at = time.monotonic()
        latched = self.sim.press(seat, code)
        with self._log_lock:
            self.press_log.append(Press(seat, int(code), at, latched))
        return latched

    def register_all(self) -> int:
        """Every present deputy presses Реєстрація; returns how many pressed."""
        present = self.present()
        for d in present:
            self.press(d.seat, Key.REGISTER)
        return len(present)

    def vote(
        self,
        p_yes: float,
        p_no: float,
        p_abstain: float,
        p_none: float = 0.0,
        reaction_s: tuple[float, float] = (2.0, 0.5),
    ) -> Schedule:
        """Every present deputy picks a choice (weights p_*) and presses after a log-normal reaction time.

        ``reaction_s`` is (median seconds, sigma of the log).  Presses happen in a background thread;
        the returned :class:`Schedule` has the plan and ``join()``.
        """
        weights = (p_yes, p_no, p_abstain, p_none)
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError("vote weights must be >= 0 and not all 0")
        median, sigma = reaction_s
        if median <= 0 or sigma < 0:
            raise ValueError("reaction_s must be (median > 0, sigma >= 0)")
        choices: list[Key | None] = [Key.YES, Key.NO, Key.ABSTAIN, None]
        plan: list[tuple[float, int, Key]] = []
        for d in self.present():
            choice = self.rng.choices(choices, weights=weights)[0]
            if choice is None:
                continue
            plan.append((self.rng.lognormvariate(math.log(median), sigma), d.seat, choice))
        return Schedule(plan, self._press_key)

    def request_floor(self, n: int, key: Key = Key.SPEAK) -> list[int]:
        """``n`` random present deputies press "request to speak"; returns their seats."""
        present = self.present()
        chosen = self.rng.sample(present, min(n, len(present)))
        for d in chosen:
            self.press(d.seat, key)
        return [d.seat for d in chosen]

    def _press_key(self, seat: int, key: Key) -> None:
        self.press(seat, key)

    def presses(self, key: Key | int | None = None) -> list[Press]:
        with self._log_lock:
            return [p for p in self.press_log if key is None or p.key == int(key)]


# ---------------------------------------------------------------------- the hall on autopilot

_CHOICES: tuple[Key | None, ...] = (Key.YES, Key.NO, Key.ABSTAIN, None)
_PROPOSAL_KEYS = (Key.P1, Key.P2, Key.P3, Key.P4, Key.P5, Key.P6, Key.P7, Key.P8, Key.P9)


@dataclass(frozen=True)
class AutopilotSettings:
    """How the simulated deputies behave (see :class:`Autopilot`).  Times are seconds."""

    absent_fraction: float = 0.05  # of the deputies (the head is always there)
    vote_weights: tuple[float, float, float, float] = (0.70, 0.15, 0.10, 0.05)  # За, Проти, Утримався, none
    rating_none: float = 0.05  # share that does not press in a rating vote
    change_of_mind: float = 0.03  # share that presses a second, different choice in a vote
    reaction_s: tuple[float, float] = (2.0, 0.5)  # vote: log-normal (median, sigma of the log)
    register_s: tuple[float, float] = (1.5, 0.6)  # registration: the same
    floor_per_min: float = 0.05  # requests to speak per idle deputy per minute (0: never)

    def __post_init__(self) -> None:
        if not 0.0 <= self.absent_fraction <= 1.0:
            raise ValueError(f"absent_fraction must be 0 … 1, got {self.absent_fraction}")
        if len(self.vote_weights) != 4 or min(self.vote_weights) < 0 or sum(self.vote_weights) <= 0:
            raise ValueError("vote_weights must be 4 weights >= 0 (yes, no, abstain, none), not all 0")
        for name in ("rating_none", "change_of_mind"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be 0 … 1, got {getattr(self, name)}")
        for name in ("reaction_s", "register_s"):
            median, sigma = getattr(self, name)
            if median <= 0 or sigma < 0:
                raise ValueError(f"{name} must be (median > 0, sigma >= 0), got {getattr(self, name)}")
        if self.floor_per_min < 0:
            raise ValueError(f"floor_per_min must be >= 0, got {self.floor_per_min}")


@dataclass(frozen=True)
class Action:
    """One press the autopilot made."""

    time: float  # time.monotonic()
    seat: int
    deputy: int
    key: Key
    why: str  # "register", "vote", "change", "rating", "floor"
    latched: bool  # what Simulator.press answered


@dataclass
class _Person:
    """A present deputy as the autopilot follows them (changed by the autopilot's thread only)."""

    deputy: SimDeputy
    votes: bool  # may vote (the head only where the council's rules say so)
    asks_floor: bool  # the head presides and does not queue
    rng: random.Random
    mode: int | None = None  # the MODE last seen at the seat; None: not looked yet
    episode: int = 0  # + 1 at every change of mode
    next_floor_at: float | None = None


@dataclass(order=True)
class _Planned:
    due: float
    order: int
    seat: int = field(compare=False)
    episode: int = field(compare=False)
    key: Key = field(compare=False)
    why: str = field(compare=False)


class Autopilot:
    """Simulated deputies who follow their consoles by themselves (see the module docstring)."""

    def __init__(
        self,
        sim: Simulator,
        *,
        seed: int = 1,
        settings: AutopilotSettings | None = None,
        mode_source: Callable[[int], int | None] | None = None,
        poll_s: float = 0.05,
        on_action: Callable[[Action], None] | None = None,
    ) -> None:
        if poll_s <= 0:
            raise ValueError(f"poll_s must be > 0, got {poll_s}")
        self.sim = sim
        self.seed = seed
        self.settings = settings or AutopilotSettings()
        self.mode_source = mode_source
        self.poll_s = poll_s
        self.on_action = on_action
        self.people = Deputies(sim, seed=seed)  # its press_log records every press made here
        self._roles = {d.id: d.role for d in sim.config.deputies}
        self._head_votes = sim.config.council.head_votes
        # who stays away: fixed by the seed, decided once
        candidates = sorted(d.id for d in self.people.deputies.values() if self._roles.get(d.id) is not Role.HEAD)
        n_absent = round(self.settings.absent_fraction * len(candidates))
        self.absent: frozenset[int] = frozenset(random.Random(seed).sample(candidates, n_absent))
        self._persons: dict[int, _Person] = {}  # by seat, filled by start()
        self._nearest_native = self._nearest_native_seats()
        self._plan: list[_Planned] = []
        self._in_flight = 0  # presses taken off the plan and not yet recorded
        self._order = itertools.count()
        self._actions: list[Action] = []
        # guards what other threads read: _actions, errors, _plan and the persons' modes; never held
        # while pressing or calling on_action
        self._lock = threading.Lock()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Cards in (all but the absent), presence held; then the thread starts watching the consoles."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._arrive()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-autopilot", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop acting (the thread is joined).  The cards stay in: the deputies are still in the hall."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the autopilot thread did not stop")
            self._thread = None
        with self._lock:
            self._plan.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Autopilot:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def leave(self) -> None:
        """Everyone the autopilot seated takes their card and goes (call after :meth:`stop`)."""
        if self.running:
            raise RuntimeError("stop the autopilot before the deputies leave")
        self.people.leave([p.deputy.id for p in self._persons.values()])
        with self._lock:
            self._persons.clear()

    # ------------------------------------------------------------------ views

    @property
    def present(self) -> list[int]:
        """Ids of the deputies the autopilot seated."""
        return sorted(p.deputy.id for p in self._persons.values())

    def mode_seen(self, seat: int) -> int | None:
        """The MODE the deputy at ``seat`` last saw (None: not seated by the autopilot, or not looked yet)."""
        with self._lock:
            person = self._persons.get(seat)
            return None if person is None else person.mode

    def planned(self) -> int:
        """How many presses are decided on and not made (and recorded in :meth:`actions`) yet."""
        with self._lock:
            return len(self._plan) + self._in_flight

    def actions(self, why: str | None = None) -> list[Action]:
        """The presses made so far (all, or those for one reason), oldest first."""
        with self._lock:
            return [a for a in self._actions if why is None or a.why == why]

    # ------------------------------------------------------------------ arriving

    def _arrive(self) -> None:
        for d in sorted(self.people.deputies.values(), key=lambda d: d.seat):
            if d.id in self.absent or d.seat in self._persons:
                continue
            card = self.sim.console(d.seat).card
            if card is None:
                self.sim.insert_card(d.seat, d.card)
            elif card != d.card:
                log.warning("seat %d holds card %s, not deputy %d's: the deputy stays away", d.seat, card, d.id)
                continue
            self.sim.set_presence(d.seat, True)
            role = self._roles.get(d.id, Role.DEPUTY)
            self._persons[d.seat] = _Person(
                deputy=d,
                votes=role is not Role.HEAD or self._head_votes,
                asks_floor=role is not Role.HEAD,
                # str seeds are hashed with SHA-512: the same in every process, whatever PYTHONHASHSEED
                rng=random.Random(f"autopilot:{self.seed}:{d.id}"),
            )

    def _nearest_native_seats(self) -> dict[int, int]:
        """For each generic module's seat, the native console nearest to it in the hall (x, y; then id)."""
        natives = [s for s in self.sim.seats.values() if isinstance(self.sim.console(s.id), ConsoleModel)]
        out: dict[int, int] = {}
        for seat in self.sim.seats.values():
            if isinstance(self.sim.console(seat.id), GenericModuleModel) and natives:
                nearest = min(natives, key=lambda n: (math.hypot(n.x - seat.x, n.y - seat.y), n.id))
                out[seat.id] = nearest.id
        return out

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick(time.monotonic())
            except Exception as exc:  # a demo hall keeps going; the error is kept for tests and logs
                log.exception("autopilot step failed")
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            timeout = self.poll_s
            with self._lock:
                if self._plan:
                    timeout = min(timeout, max(0.0, self._plan[0].due - time.monotonic()))
            self._stop.wait(timeout)

    def _observe(self, seat: int) -> tuple[int, int]:
        """(MODE, number of proposals) as the deputy at ``seat`` sees them."""
        console = self.sim.console(seat)
        if isinstance(console, ConsoleModel):
            st = console.state()
            return (st.mode, st.proposals) if st.powered else (int(Mode.IDLE), 0)
        if self.mode_source is not None:
            mode = self.mode_source(seat)
            return (int(Mode.IDLE) if mode is None else int(mode)), 0
        nearest = self._nearest_native.get(seat)
        if nearest is None:  # a hall of generic modules only, and no mode source: nothing to follow
            return int(Mode.IDLE), 0
        mode, _ = self._observe(nearest)
        return mode, 0

    def _tick(self, now: float) -> None:
        seen = {seat: self._observe(seat) for seat in self._persons}  # outside the lock: reads consoles
        due: list[tuple[_Person, Key, str]] = []
        with self._lock:
            for seat, person in self._persons.items():
                mode, proposals = seen[seat]
                if mode != person.mode:
                    person.mode = mode
                    person.episode += 1
                    self._decide(seat, person, mode, proposals, now)
            while self._plan and self._plan[0].due <= now:
                planned = heapq.heappop(self._plan)
                owner = self._persons.get(planned.seat)
                if owner is not None and owner.episode == planned.episode:
                    due.append((owner, planned.key, planned.why))
            self._in_flight = len(due)  # still "planned" until recorded: planned() never skips a press
        for person, key, why in due:
            self._press(person, key, why)
        with self._lock:
            self._in_flight = 0
        if self.settings.floor_per_min > 0:
            for person in self._persons.values():
                if person.mode == Mode.IDLE and person.next_floor_at is not None and now >= person.next_floor_at:
                    if not self.sim.console(person.deputy.seat).state().leds & (Led.REQUEST | Led.MIC):
                        self._press(person, Key.SPEAK, "floor")
                    person.next_floor_at = now + person.rng.expovariate(self.settings.floor_per_min / 60.0)

    def _decide(self, seat: int, person: _Person, mode: int, proposals: int, now: float) -> None:
        """What the deputy at ``seat`` does in the episode that starts with ``mode``."""
        s = self.settings
        rng = person.rng
        person.next_floor_at = None
        if mode == Mode.REGISTRATION:
            self._schedule(now + self._reaction(rng, s.register_s), seat, person, Key.REGISTER, "register")
        elif mode == Mode.VOTE_YES_NO and person.votes:
            choice = rng.choices(_CHOICES, weights=s.vote_weights)[0]
            if choice is None:
                return
            at = now + self._reaction(rng, s.reaction_s)
            self._schedule(at, seat, person, choice, "vote")
            if rng.random() < s.change_of_mind:
                other = rng.choice([k for k in _CHOICES if k is not None and k is not choice])
                self._schedule(at + self._reaction(rng, s.reaction_s), seat, person, other, "change")
        elif mode == Mode.VOTE_RATING and person.votes:
            if isinstance(self.sim.console(seat), GenericModuleModel) or not 1 <= proposals <= len(_PROPOSAL_KEYS):
                return  # no proposal keys on a generic module; a MODE with no proposals offers nothing
            if rng.random() < s.rating_none:
                return
            key = _PROPOSAL_KEYS[rng.randrange(proposals)]
            self._schedule(now + self._reaction(rng, s.reaction_s), seat, person, key, "rating")
        elif mode == Mode.IDLE and person.asks_floor and s.floor_per_min > 0:
            person.next_floor_at = now + rng.expovariate(s.floor_per_min / 60.0)

    @staticmethod
    def _reaction(rng: random.Random, median_sigma: tuple[float, float]) -> float:
        median, sigma = median_sigma
        return rng.lognormvariate(math.log(median), sigma)

    def _schedule(self, due: float, seat: int, person: _Person, key: Key, why: str) -> None:
        heapq.heappush(self._plan, _Planned(due, next(self._order), seat, person.episode, key, why))

    def _press(self, person: _Person, key: Key, why: str) -> None:
        d = person.deputy
        if self.sim.console(d.seat).card != d.card:
            return  # the card was taken out meanwhile: the console would refuse, and so does the deputy
        latched = self.people.press(d.seat, key)
        action = Action(time.monotonic(), d.seat, d.id, key, why, latched)
        with self._lock:
            self._actions.append(action)
        if self.on_action is not None:
            self.on_action(action)

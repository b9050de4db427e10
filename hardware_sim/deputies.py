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
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chamber.core.values import Key
from hardware_sim.simulator import Simulator, parse_key


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

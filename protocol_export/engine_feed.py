"""A sitting journaled through the real engine on a clock of the caller's: for the export benchmark and
the tests of the documents.

    with fed(url, start_ms) as feed:                     # a journal at url (created), an Engine on it
        feed(ev.OpenSitting(...))                        # the clock moves on 2 s, then the batch runs
        feed(*(ev.KeyPressed(...) for ...), step_ms=30_000)
        feed(ev.KeyPressed(...), ok=False)               # this one must be refused
        uid = feed.uid

``Feed.__call__`` moves the clock on by ``step_ms``, puts the events through ``Engine.process`` as one
batch on the caller's thread (no engine thread: every record is journaled and fsynced before it
returns, so what follows reads a finished journal) and checks each outcome: accepted, or with
``ok=False`` refused; anything else raises :class:`Refused` naming the event and its effects.  The
same calls give the same records but for the sitting's uid, which is what makes a benchmark's figures
comparable run to run and a document reproducible in the tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chamber.core import events as ev
    from chamber.engine import Engine, Outcome
    from chamber.journal import Journal


class Refused(RuntimeError):
    """An event fed to the engine did not have the outcome asked for."""


class ManualClock:
    """The engine's clock: epoch ms that move only when told."""

    def __init__(self, start_ms: int) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now


class Feed:
    """Events into ``engine`` in batches, the clock moved before each (see the module docstring)."""

    def __init__(self, engine: Engine, journal: Journal, clock: ManualClock) -> None:
        self.engine, self.journal, self.clock = engine, journal, clock

    def __call__(self, *events: ev.Input, step_ms: int = 2_000, ok: bool = True) -> list[Outcome]:
        self.clock.now += step_ms
        futures: list[Future[Outcome]] = [Future() for _ in events]
        self.engine.process(list(zip(events, futures, strict=True)))
        outcomes = [fut.result(0) for fut in futures]
        for event, outcome in zip(events, outcomes, strict=True):
            if outcome.accepted is not ok:
                what = "refused" if ok else "accepted"
                raise Refused(f"{event} was {what}: {outcome.effects}")
        return outcomes

    @property
    def uid(self) -> str:
        """The sitting being (or last) fed."""
        return self.engine.sitting_uid or self.journal.sittings()[-1]


@contextmanager
def fed(url: str, start_ms: int) -> Iterator[Feed]:
    """A :class:`Feed` into a new Engine over the journal at ``url`` (created if missing), its clock at
    ``start_ms``; the journal is closed on leaving."""
    from chamber.engine import Engine
    from chamber.journal import Journal

    clock = ManualClock(start_ms)
    with Journal(url) as journal:
        yield Feed(Engine(journal, clock=clock), journal, clock)

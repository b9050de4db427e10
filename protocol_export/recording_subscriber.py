"""The engine's side of the speech recordings (protocol_export.recording): microphones into messages.

How it works
------------
The engine's thread runs the subscriber (:func:`engine_subscriber`).  For each ``MicOn`` it reads the
speech the floor has just started (seat, deputy, kind, agenda item, start time, limit — the
``SpeechRecord`` fields, exact to the ms, as the speech log will have them) with the names the tags
need, and for each ``MicOff`` the speech log's record (end time, why it ended); it puts a small
message (:class:`SpeechStarted`, :class:`SpeechEnded`) on the recorder's queue and returns.  It never
waits: the queue is unbounded, and a message is a few hundred bytes for a speech of minutes.  The
roster's names are read once per sitting, when the subscriber first sees its roster.

The recorder (protocol_export.recorder) takes the messages on its own thread, with two of its own:
:class:`Flush` (wait until the sound up to a time is in the files) and None (stop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chamber.core.effects import MicOff, MicOn

if TYPE_CHECKING:
    from chamber.core import events as ev
    from chamber.core.effects import Effect
    from chamber.engine import Engine, Subscriber


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """A microphone came on for a speech (everything the file's name and tags need)."""

    sitting: str
    seat: int
    deputy: int | None
    speaker: str
    kind: str
    item: str | None
    item_title: str
    start_ms: int
    limit_s: int
    journal_seq: int | None
    council: str
    sitting_number: int
    sitting_title: str


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    sitting: str
    seat: int
    start_ms: int
    end_ms: int
    ended_by: str


@dataclass(frozen=True, slots=True)
class Flush:
    until_ms: float
    done: threading.Event


Message = SpeechStarted | SpeechEnded | Flush | None  # None: stop


def engine_subscriber(engine: Engine, post: Callable[[Message], None]) -> Subscriber:
    """The engine subscriber that turns microphones into messages for ``post`` (see the module
    docstring).  It runs on the engine's thread and reads the sitting there, as subscribers may."""
    names: dict[int, str] = {}
    roster_seen: list[object] = [None]

    def on_effects(_input: ev.Input, effects: tuple[Effect, ...]) -> None:
        for effect in effects:
            if not isinstance(effect, MicOn | MicOff):
                continue
            uid = engine.sitting_uid
            sitting = engine.sitting
            if uid is None:
                continue
            if isinstance(effect, MicOn):
                speech = sitting.floor.speeches.get(effect.seat)
                if speech is None:
                    continue
                roster = sitting.roster
                if roster is not roster_seen[0]:  # a new sitting: its names, once
                    names.clear()
                    names.update({d.id: d.full_name for d in roster.deputies} if roster else {})
                    roster_seen[0] = roster
                item_title = next((i.title for i in sitting.agenda if i.number == speech.item), "")
                post(
                    SpeechStarted(
                        sitting=uid,
                        seat=speech.seat,
                        deputy=speech.deputy,
                        speaker=names.get(speech.deputy, "") if speech.deputy is not None else "",
                        kind=str(speech.kind),
                        item=speech.item,
                        item_title=item_title,
                        start_ms=speech.start,
                        limit_s=speech.limit_s,
                        journal_seq=engine.current_seq,
                        council=roster.council.name if roster else "",
                        sitting_number=sitting.number,
                        sitting_title=sitting.title,
                    )
                )
            else:
                for record in reversed(sitting.floor.log):  # the speech just ended is the last, or near it
                    if record.seat == effect.seat and record.end is not None:
                        post(SpeechEnded(uid, record.seat, record.start, record.end, record.ended_by or ""))
                        break

    return on_effects

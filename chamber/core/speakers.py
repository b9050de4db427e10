"""The floor: the speaker queue, open microphones and the speech log.

Requests queue by (priority of the kind, request time, arrival order): a
point of order goes before a reply, a reply before a speech.  A granted speech
has a limit; ``due`` fires the warning and then the end (microphone off, or
only a signal when the rules say so) when time passes.  Every speech is logged
with start, end, seat, deputy, item and why it ended.  The chair's seat does
not count against the limit of open microphones: the chair must always be heard.
"""

from __future__ import annotations

import msgspec

from chamber.core.effects import Effect, MicOff, MicOn, RequestLed, SpeechTimeUp, SpeechWarning
from chamber.core.values import SpeechKind


class Request(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    seat: int
    deputy: int | None
    kind: SpeechKind
    at: int


class SpeechRecord(msgspec.Struct, frozen=True, kw_only=True):
    seat: int
    deputy: int | None
    kind: SpeechKind
    item: str | None
    start: int
    end: int | None = None
    limit_s: int = 0
    ended_by: str | None = None


class Speech:
    __slots__ = (
        "chair",
        "deputy",
        "end_at",
        "item",
        "kind",
        "limit_s",
        "seat",
        "signalled",
        "start",
        "warn_at",
    )

    def __init__(
        self,
        *,
        seat: int,
        deputy: int | None,
        kind: SpeechKind,
        item: str | None,
        start: int,
        limit_s: int,
        warning_s: int,
        chair: bool,
    ) -> None:
        self.seat = seat
        self.deputy = deputy
        self.kind = kind
        self.item = item
        self.start = start
        self.limit_s = limit_s
        self.chair = chair
        self.signalled = False
        self.end_at = start + limit_s * 1000
        self.warn_at = self.end_at - warning_s * 1000 if 0 < warning_s < limit_s else 0  # 0: no warning

    def record(self, end: int | None = None, ended_by: str | None = None) -> SpeechRecord:
        return SpeechRecord(
            seat=self.seat,
            deputy=self.deputy,
            kind=self.kind,
            item=self.item,
            start=self.start,
            end=end,
            limit_s=self.limit_s,
            ended_by=ended_by,
        )


NEVER = 2**63 - 1


class Floor:
    """Queue, open speeches and log; mutated only through these methods."""

    def __init__(self, max_open_mics: int, warning_s: int, auto_mic_off: bool) -> None:
        self.max_open_mics = max_open_mics
        self.warning_s = warning_s
        self.auto_mic_off = auto_mic_off
        self.queue: list[Request] = []
        self.speeches: dict[int, Speech] = {}  # seat -> speech in progress
        self.log: list[SpeechRecord] = []
        self._seq = 0

    # --- queue -----------------------------------------------------------------------------------

    def queued(self, seat: int) -> Request | None:
        for r in self.queue:
            if r.seat == seat:
                return r
        return None

    def enqueue(self, seat: int, deputy: int | None, kind: SpeechKind, now: int) -> tuple[Effect, ...]:
        self._seq += 1
        self.queue.append(Request(seq=self._seq, seat=seat, deputy=deputy, kind=kind, at=now))
        self.queue.sort(key=lambda r: (r.kind.rank, r.at, r.seq))
        return (RequestLed(seat=seat, on=True),)

    def withdraw(self, seat: int) -> tuple[Effect, ...]:
        self.queue = [r for r in self.queue if r.seat != seat]
        return (RequestLed(seat=seat, on=False),)

    # --- speeches --------------------------------------------------------------------------------

    def open_deputy_mics(self) -> int:
        return sum(1 for s in self.speeches.values() if not s.chair)

    def start(
        self,
        *,
        seat: int,
        deputy: int | None,
        kind: SpeechKind,
        item: str | None,
        limit_s: int,
        chair: bool,
        now: int,
    ) -> tuple[Effect, ...]:
        effects: tuple[Effect, ...] = ()
        if self.queued(seat) is not None:
            effects = self.withdraw(seat)
        self.speeches[seat] = Speech(
            seat=seat,
            deputy=deputy,
            kind=kind,
            item=item,
            start=now,
            limit_s=limit_s,
            warning_s=self.warning_s,
            chair=chair,
        )
        return (*effects, MicOn(seat=seat))

    def end(self, seat: int, now: int, reason: str) -> tuple[Effect, ...]:
        speech = self.speeches.pop(seat)
        self.log.append(speech.record(now, reason))
        return (MicOff(seat=seat, reason=reason),)

    def end_all(self, now: int, reason: str, *, keep_chair: bool = True) -> tuple[Effect, ...]:
        effects: list[Effect] = []
        for seat in sorted(self.speeches):
            if keep_chair and self.speeches[seat].chair:
                continue
            effects.extend(self.end(seat, now, reason))
        return tuple(effects)

    def extend(self, seat: int, extra_s: int) -> None:
        s = self.speeches[seat]
        s.limit_s += extra_s
        s.end_at += extra_s * 1000
        s.warn_at = s.end_at - self.warning_s * 1000 if 0 < self.warning_s < s.limit_s else 0
        s.signalled = False

    # --- time ------------------------------------------------------------------------------------

    def next_deadline(self) -> int:
        due = NEVER
        for s in self.speeches.values():
            if s.warn_at > 0 and s.warn_at < due:
                due = s.warn_at
            if not s.signalled and s.end_at < due:
                due = s.end_at
        return due

    def due(self, now: int) -> tuple[Effect, ...]:
        """Warnings and limits reached at ``now``."""
        effects: list[Effect] = []
        for seat in sorted(self.speeches):
            s = self.speeches[seat]
            if 0 < s.warn_at <= now:
                s.warn_at = 0  # warned
                effects.append(SpeechWarning(seat=seat, remaining_s=max(0, (s.end_at - now) // 1000)))
            if not s.signalled and s.end_at <= now:
                if self.auto_mic_off:
                    effects.extend(self.end(seat, s.end_at, "time_limit"))
                else:
                    s.signalled = True
                    effects.append(SpeechTimeUp(seat=seat))
        return tuple(effects)

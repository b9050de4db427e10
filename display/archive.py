"""The public archive: sittings replayed from the journal for the public pages.

Each sitting is replayed through the pure core (``Sitting``, never the engine's own) and kept, so a
later request applies only the records written since; a record that cannot be decoded stops the
replay before it (logged, and said on the pages).  Thread-safe: one lock over the cache.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import msgspec

from chamber.core.events import decode_input
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot
from chamber.journal import Journal
from display import page_filters
from display import state as st

log = logging.getLogger("display.app")  # the web server's one log name (see display.web)


@dataclass(slots=True)
class _Replayed:
    sitting: Sitting
    seq: int = 0
    head: str = ""
    opened_at_ms: int = 0
    snapshot: Snapshot | None = None
    broken: str | None = None  # a record that cannot be decoded: the replay stops before it


class Archive:
    """Sittings replayed from the journal for the public pages (incrementally; thread-safe)."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._cache: dict[str, _Replayed] = {}
        self._lock = threading.Lock()

    def sittings(self) -> list[str]:
        return self._journal.sittings()

    def replayed(self, uid: str) -> _Replayed:
        with self._lock:
            entry = self._cache.get(uid)
            if entry is None:
                entry = self._cache[uid] = _Replayed(Sitting())
            if entry.broken is None:
                for rec in self._journal.records(uid, after_seq=entry.seq):
                    try:
                        event = decode_input(rec.payload)
                    except msgspec.DecodeError as exc:
                        entry.broken = f"record {rec.seq} cannot be decoded: {exc}"
                        log.error("public pages: sitting %s: %s", uid, entry.broken)
                        break
                    if entry.seq == 0:
                        entry.opened_at_ms = rec.at_ms
                    entry.sitting.apply(event, rec.at_ms)
                    entry.seq, entry.head = rec.seq, rec.hash
                    entry.snapshot = None
            if entry.snapshot is None:
                entry.snapshot = entry.sitting.snapshot()
            return entry

    def summary(self, uid: str) -> st.JSON:
        entry = self.replayed(uid)
        snap = entry.snapshot
        assert snap is not None
        return {
            "uid": uid,
            "number": snap.number,
            "title": snap.title,
            "opened_at_ms": entry.opened_at_ms,
            "date": page_filters.kyiv_date(entry.opened_at_ms),  # the day in Kyiv, where the sitting was
            "open": snap.phase.value != "no_sitting",
            "votes": len(snap.results),
            "records": entry.seq,
            "head": f"{entry.seq}:{entry.head}",
            "broken": entry.broken,
        }

"""When each agenda item was before the council: its spans, read from the journal alone.

The final snapshot (``protocol_export.source``) tells which item is current at the end, not when each
item was taken up, and the open data («Не розглядали» against «Не голосували») and the video
chapters need exactly that.  ``item_spans`` replays the sitting's records through the pure core, as
``load_sitting`` does, and notes every change of ``Sitting.current_item`` with the time of the record
that made it: a ``SetCurrentItem`` the core refused changes nothing, and a new agenda that drops the
current item ends its span, because the replay applies the core's own rules rather than guessing them
from the records.  The chain is checked again first (a few hundred records: cheap), so the spans come
from the same verified journal as the rest of the document.
"""

from __future__ import annotations

from dataclasses import dataclass

from chamber.core.events import decode_input
from chamber.core.sitting import Sitting
from chamber.journal import Journal
from protocol_export.source import SourceError


@dataclass(frozen=True)
class ItemSpan:
    """Agenda item ``number`` was current from ``start_ms`` to ``end_ms`` (None: to the end)."""

    number: str
    start_ms: int
    end_ms: int | None


def item_spans(journal: Journal, uid: str) -> tuple[ItemSpan, ...]:
    """Every span during which an agenda item was current, in time order (an item taken up twice has
    two spans).  SourceError when the journal cannot back a document."""
    check = journal.check(uid)
    if check.problems or not check.records:
        raise SourceError(f"sitting {uid}: the journal fails verification or holds no records")
    sitting = Sitting()
    spans: list[ItemSpan] = []
    current: str | None = None
    since = 0
    for rec in check.records:
        try:
            sitting.apply(decode_input(rec.payload), rec.at_ms)
        except Exception as exc:
            raise SourceError(f"sitting {uid}: record {rec.seq} cannot be decoded: {exc}") from exc
        now = sitting.current_item
        if now != current:
            if current is not None:
                spans.append(ItemSpan(current, since, rec.at_ms))
            current, since = now, rec.at_ms
    if current is not None:
        spans.append(ItemSpan(current, since, None))
    return tuple(spans)

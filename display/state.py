"""The states the pages show, built from an immutable snapshot, and the merge patches between them.

Pure functions, no I/O, no clock: ``public_state(snapshot, chamber)`` is the hall's state of
docs/web-protocol.md, ``console_part(...)`` the ``console`` key the secretary's console adds to it, and
``merge_patch(old, new)`` the RFC 7396 JSON merge patch that turns one into the other.  The publisher
(display.publisher) calls them; the public archive pages reuse ``result_dict``.

How a state is made
-------------------
``Chamber`` holds what config.toml says and a snapshot does not (names, factions, seat positions, the
quorum's count), computed once.  Seats come from the config, so the seat map keeps its 450 entries
while no sitting is open (a snapshot then has none) and a patch never deletes and re-adds them.

``clock_ms`` and ``rev`` are not part of the state that is compared: the publisher stamps them on
every ``state`` and ``patch`` it sends, so a page always knows the engine's time at the moment the
patch left, whatever changed.

Patches
-------
``merge_patch`` walks both dicts together; equal sub-trees are skipped without being copied, so when
one seat of 450 changes the patch is ``{"seats": {"17": {"voted": true}}}``.  Lists are replaced whole
(RFC 7396 has no list operations): they are short here (agenda, speakers, alerts, counts).  A key
whose value becomes ``null`` is *removed* by a merge patch, so a page treats a missing key as null
(``state.vote == null`` in JavaScript holds for both).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chamber.config import Config
from chamber.core.phases import Phase
from chamber.core.snapshot import SeatView, Snapshot, VoteView
from chamber.core.speakers import Request, SpeechRecord
from chamber.core.threshold import Threshold, base_value
from chamber.core.values import Base, Role, VoteKind
from chamber.core.voting import NamedChoice, VoteResult

JSON = dict[str, Any]

_NAMED_KINDS = (VoteKind.ROLL_CALL, VoteKind.RATING)  # the kinds whose results publish names


@dataclass(frozen=True, slots=True)
class Chamber:
    """What the pages need from config.toml, computed once per start."""

    council: JSON
    composition: int
    quorum: Threshold
    max_open_mics: int
    seats: dict[int, tuple[float, float, bool]]  # id -> (x, y, chair), in file order
    deputies: JSON  # "id" -> {"name", "short", "faction", "seat", "role", "gender"}
    voters: frozenset[int]  # deputies who press choice keys (the head only when the council says so)

    @property
    def quorum_needed(self) -> int:
        return self.quorum.required(self.composition)


def chamber_of(config: Config) -> Chamber:
    council = config.council
    voters = frozenset(d.id for d in config.deputies if d.role is Role.DEPUTY or council.head_votes)
    return Chamber(
        council={"name": council.name, "convocation": council.convocation, "composition": council.composition},
        composition=council.composition,
        quorum=config.rules.to_core().quorum,
        max_open_mics=config.rules.max_open_mics,
        seats={s.id: (s.x, s.y, s.chair) for s in config.seats},
        deputies={
            str(d.id): {
                "name": d.full_name,
                "short": short_name(d.full_name),
                "faction": d.faction,
                "seat": d.seat,
                "role": d.role.value,
                "gender": d.gender or gender_of(d.full_name),
            }
            for d in config.deputies
        },
        voters=voters,
    )


def short_name(full: str) -> str:
    """«Коваленко Олена Петрівна» -> «Коваленко О. П.»: the surname and initials, as a hall screen shows."""
    parts = full.split()
    if len(parts) < 2:
        return full
    return parts[0] + " " + " ".join(f"{p[0]}." for p in parts[1:])


#: Patronymic endings: Ukrainian (Петрівна, Олексіївна / Петрович, Ілліч) and the Turkic forms some
#: Crimean Tatar names keep as a separate word (кизи / огли).
_FEMININE_PATRONYMIC = ("івна", "ївна", "овна", "евна", "інічна", "кизи", "кызы")
_MASCULINE_PATRONYMIC = ("ович", "евич", "йович", "іч", "ич", "огли", "оглу")
#: Surnames that only a woman bears (Іванова, Ковальська; the man's are Іванов, Ковальський): the clue
#: left when a name has no patronymic.
_FEMININE_SURNAME = ("ова", "єва", "ева", "іна", "їна", "ська", "цька", "зька")


def gender_of(full_name: str) -> str:
    """``"f"`` or ``"m"``: the grammatical gender of a deputy's words on the pages («Утрималася»).

    Read from the patronymic («Прізвище Ім'я По батькові», the form protocols use), which Ukrainian
    marks unambiguously; without one, a surname only women bear (Іванова, Ковальська) says ``"f"``, and
    anything else (Коваленко, a name in Latin letters) ``"m"``, the form the law's own texts use, unless
    config.toml says ``gender = "f"`` for that deputy.
    """
    words = [w.casefold().strip(".,") for w in full_name.split()]
    for w in reversed(words[2:]):
        if w.endswith(_FEMININE_PATRONYMIC):
            return "f"
        if w.endswith(_MASCULINE_PATRONYMIC):
            return "m"
    surname = words[0].rsplit("-", 1)[-1] if words else ""
    return "f" if len(words) >= 2 and surname.endswith(_FEMININE_SURNAME) else "m"


# --- words ------------------------------------------------------------------------------------------


def threshold_words(threshold: Threshold) -> tuple[str, str]:
    """(Ukrainian, English): «більше ніж 1/2 загального складу», "more than 1/2 of composition"."""
    return threshold.describe_uk(), threshold.describe()


def result_words(result: VoteResult) -> tuple[str, str]:
    if result.cancelled is not None:
        return "Скасовано", "Cancelled"
    return ("Прийнято", "Adopted") if result.adopted else ("Не прийнято", "Not adopted")


def threshold_dict(threshold: Threshold, required: int | None) -> JSON:
    uk, en = threshold_words(threshold)
    return {
        "num": threshold.num,
        "den": threshold.den,
        "base": threshold.base.value,
        "strict": threshold.strict,
        "required": required,
        "words_uk": uk,
        "words_en": en,
    }


# --- votes and results ------------------------------------------------------------------------------


def outcome_word(choice: NamedChoice) -> str:
    """``yes``/``no``/``abstain``/``did_not_vote``/``absent``, or ``p<n>`` for a rating vote's pick."""
    if choice.proposal is not None:
        return f"p{choice.proposal}"
    return choice.outcome.value


def result_dict(result: VoteResult) -> JSON:
    uk, en = result_words(result)
    return {
        "number": result.number,
        "kind": result.kind.value,
        "subject": result.subject.value,
        "title": result.title,
        "item": result.item,
        "proposals": list(result.proposals),
        "threshold": threshold_dict(result.threshold, result.required),
        "opened_at_ms": result.opened_at,
        "closed_at_ms": result.closed_at,
        "counts": list(result.counts),
        "did_not_vote": result.did_not_vote,
        "absent": result.absent,
        "required": result.required,
        "adopted": result.adopted,
        "winner": result.winner,
        "cancelled": result.cancelled,
        "result_uk": uk,
        "result_en": en,
        # the core leaves per_name empty for open and secret votes: nothing here can name a choice there
        "per_name": {str(c.deputy): outcome_word(c) for c in result.per_name},
    }


def _required_now(view: VoteView, snap: Snapshot, composition: int) -> int | None:
    """Votes needed to adopt as things stand; None while it depends on counts not yet shown."""
    if view.result is not None:
        return view.result.required
    base = view.threshold.base
    if base is Base.COMPOSITION:
        return view.threshold.required(composition)
    if base is Base.REGISTERED:
        return view.threshold.required(snap.registered)
    if view.counts is None or view.kind is VoteKind.RATING:
        return None
    yes, no, abstain = view.counts
    return view.threshold.required(base_value(base, composition, snap.registered, yes, no, abstain))


def vote_dict(view: VoteView, snap: Snapshot, composition: int) -> JSON:
    return {
        "number": view.number,
        "kind": view.kind.value,
        "subject": view.subject.value,
        "title": view.title,
        "item": view.item,
        "proposals": list(view.proposals),
        "threshold": threshold_dict(view.threshold, _required_now(view, snap, composition)),
        "opened_at_ms": view.opened_at,
        "deadline_ms": view.deadline,
        "open": view.open,
        "cast": view.cast,
        "counts": None if view.counts is None else list(view.counts),
        "result": None if view.result is None else result_dict(view.result),
    }


def last_result(snap: Snapshot) -> VoteResult | None:
    return max(snap.results, key=lambda r: r.number, default=None)


def _shown_choices(snap: Snapshot) -> dict[int, str]:
    """seat -> choice word for the seat map: only a named vote's, only once it is closed (never while open,
    never for open or secret votes); after the vote is cleared, the last result's, as the hall keeps it."""
    vote = snap.vote
    shown = last_result(snap) if vote is None else None if vote.open else vote.result
    if shown is None or shown.kind not in _NAMED_KINDS or shown.cancelled is not None:
        return {}
    return {c.seat: outcome_word(c) for c in shown.per_name if c.seat is not None}


# --- the public state -------------------------------------------------------------------------------


def _speaking(s: SpeechRecord) -> JSON:
    return {
        "seat": s.seat,
        "deputy": s.deputy,
        "kind": s.kind.value,
        "start_ms": s.start,
        "limit_s": s.limit_s,
        "end_ms": s.start + s.limit_s * 1000,
    }


def _queued(r: Request) -> JSON:
    return {"seat": r.seat, "deputy": r.deputy, "kind": r.kind.value, "at_ms": r.at}


def speakers_dict(snap: Snapshot) -> JSON:
    item = snap.current_item
    return {
        "speaking": [_speaking(s) for s in snap.speaking],
        "queue": [_queued(r) for r in snap.queue],
        "spoken_on_item": sum(1 for s in snap.speeches if s.item == item),
        "waiting": len(snap.queue),
    }


def _seat(x: float, y: float, chair: bool, view: SeatView | None, choice: str | None) -> JSON:
    if view is None:  # no sitting open: the seat as the engine assumes it before any report
        return {
            "x": x,
            "y": y,
            "chair": chair,
            "deputy": None,
            "online": True,
            "present": False,
            "voted": False,
            "choice": None,
            "speaking": False,
            "queued": False,
        }
    return {
        "x": x,
        "y": y,
        "chair": chair,
        "deputy": view.deputy,
        "online": view.online,
        "present": view.present,
        "voted": view.voted,
        "choice": choice,
        "speaking": view.speaking,
        "queued": view.queued,
    }


def public_state(snap: Snapshot, chamber: Chamber) -> JSON:
    """The hall's state (docs/web-protocol.md, «The public state») without ``rev`` and ``clock_ms``."""
    composition = snap.composition or chamber.composition
    views = {v.id: v for v in snap.seats}
    choices = _shown_choices(snap)
    last = last_result(snap)
    return {
        "council": chamber.council,
        "phase": snap.phase.value,
        "sitting": {"open": snap.phase is not Phase.NO_SITTING, "number": snap.number, "title": snap.title},
        "agenda": [{"number": i.number, "title": i.title, "draft": i.draft} for i in snap.agenda],
        "current_item": snap.current_item,
        "registration": {
            "open": snap.registration_open,
            "registered": snap.registered,
            "composition": composition,
            "needed": chamber.quorum.required(composition),
            "quorum": snap.quorum,
        },
        "vote": None if snap.vote is None else vote_dict(snap.vote, snap, composition),
        "last_result": None if last is None else result_dict(last),
        "speakers": speakers_dict(snap),
        "seats": {
            str(sid): _seat(x, y, chair, views.get(sid), choices.get(sid))
            for sid, (x, y, chair) in chamber.seats.items()
        },
        "deputies": chamber.deputies,
    }


# --- the console's part -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    """What the line loops know and the snapshot does not, sampled by the publisher."""

    seat_errors: Mapping[int, Mapping[str, int]]
    lines: Mapping[str, JSON]  # line id -> {"cycles": int, "errors": {...}}


NO_HEALTH = Health(seat_errors={}, lines={})


def not_voted(snap: Snapshot, chamber: Chamber) -> list[int]:
    """Deputies at their consoles, registered in the last round, who may vote and have not, while a vote
    is open: who the secretary may still be waiting for."""
    vote = snap.vote
    if vote is None or not vote.open or not snap.rounds:
        return []
    registered = set(snap.rounds[-1].registered)
    return sorted(
        s.deputy
        for s in snap.seats
        if s.deputy is not None and not s.voted and s.deputy in registered and s.deputy in chamber.voters
    )


def seat_health(snap: Snapshot, chamber: Chamber, health: Health) -> JSON:
    views = {v.id: v for v in snap.seats}
    out: JSON = {}
    for sid in chamber.seats:
        v = views.get(sid)
        out[str(sid)] = {
            "online": True if v is None else v.online,
            "mic_ok": True if v is None else v.mic_ok,
            "card": v is not None and v.deputy is not None,
            "present": v is not None and v.present,
            "rejected": 0 if v is None else v.rejected,
            "errors": dict(health.seat_errors.get(sid, {})),
        }
    return out


def console_part(
    snap: Snapshot,
    chamber: Chamber,
    *,
    alerts: Iterable[JSON],
    health: Health = NO_HEALTH,
    simulator: bool = False,
    sitting_uid: str | None = None,
) -> JSON:
    """The ``console`` key of the console state, without ``user`` (each connection adds its own).
    ``sitting_uid``: the open sitting's journal id, or the last one's (the export panel's links)."""
    return {
        "not_voted": not_voted(snap, chamber),
        "seat_health": seat_health(snap, chamber, health),
        "alerts": list(alerts),
        "max_open_mics": chamber.max_open_mics,
        "lines": {k: dict(v) for k, v in health.lines.items()},
        "simulator": simulator,
        "sitting_uid": sitting_uid,
    }


# --- RFC 7396 merge patches ---------------------------------------------------------------------------


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> JSON:
    """The merge patch that turns ``old`` into ``new``; ``{}`` when they are equal.

    (Python's ``==`` takes ``1 == True``; no field of these states changes between a number and a
    boolean, so that cannot hide a change here.)
    """
    patch: JSON = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        prev = old[key]
        if prev is value or prev == value:
            continue
        if isinstance(value, dict) and isinstance(prev, dict):
            sub = merge_patch(prev, value)
            if sub:
                patch[key] = sub
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


def apply_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 MergePatch(target, patch), as a page applies it; returns a new value."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_patch(result.get(key), value)
    return result


def without_nulls(value: Any) -> Any:
    """``value`` with every null object member removed: what a page holds after patches (for tests)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    return value


class Utf8Json:
    """JSON as the states travel (Socket.IO packets, the Redis manager's messages): UTF-8 as is, a
    Cyrillic letter not as a six-byte ``\\u0436`` escape."""

    @staticmethod
    def dumps(obj: Any, **kwargs: Any) -> str:
        kwargs.setdefault("ensure_ascii", False)
        return json.dumps(obj, **kwargs)

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, **kwargs)

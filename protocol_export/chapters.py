"""Video chapters of a sitting's stream: agenda items, votes with results, speeches with speakers.

``chapters(facts, stream_start)`` turns the journal's times into offsets from the stream's start (an
aware datetime; a naive one is taken as Kyiv time, the hall's clock) and gives a list of ``Chapter``
that video platforms accept:

* the first chapter starts at 00:00:00 — it is what was going on when the stream began: the latest
  event before the start (the item in progress, say), else «Початок трансляції» (the stream began
  before the sitting opened);
* chapters are at least ``MIN_GAP_S`` = 10 s apart, as YouTube requires.  Events closer than that to
  the chapter before them are *merged* into it — «Питання 2. Про бюджет · Доповідь: Ткаченко І. В.»
  — within ``MAX_TITLE`` characters, the longer title shortened with «…» if need be (never a vote's:
  its result would go), and when even that leaves too little of it, the less important one is
  *dropped* (a vote outranks an agenda item or a cancelled vote, which outrank a speech, which
  outranks the opening and closing of the sitting and registration; of two alike, the later stays:
  the re-vote seconds after a cancelled vote is the one that decided);
* titles are one line of at most ``MAX_TITLE`` characters (a long item title is shortened with «…»,
  never the result of a vote).

YouTube shows chapters only when there are at least three; a shorter list is still returned (the
sitting may have been short) and ``youtube_ready`` says whether it will be shown.

Events: the opening of the sitting; each registration round (how many registered, quorum or not);
each time an agenda item became current («Питання 2. …»); each speech («Доповідь: Name»,
«Виступ: …», «Репліка: …», «З процедурного питання: …»); each vote at its opening, with its result
as the journal knows it (the chapters are made afterwards: «Голосування (в цілому): Прийнято — за
20, проти 15, утр. 4», a secret vote's counts, a rating vote's winner, «скасовано» for a cancelled
one); and the closing of the sitting.

Two renderings: ``text_chapters`` — «HH:MM:SS Title» lines, the format a video description takes —
and ``webvtt_chapters`` — a WebVTT file for a ``<track kind="chapters">``, each cue ending where the
next begins and the last one at the end of the sitting (at least ``MIN_GAP_S`` after its start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from chamber.core.values import VoteKind
from chamber.core.voting import VoteResult
from protocol_export.facts import KYIV, SPEECH_UK, SUBJECT_UK, Facts

MIN_GAP_S = 10
MAX_TITLE = 100
MIN_PART = 24  # a title shortened to fewer characters to join another one says too little
JOIN = " · "
START_TITLE = "Початок трансляції"

# what survives when two events are too close to be two chapters and too long to be joined
_RANK_SITTING, _RANK_SPEECH, _RANK_ITEM, _RANK_VOTE = range(4)


@dataclass(frozen=True)
class Chapter:
    start_s: int  # seconds from the start of the stream
    title: str


@dataclass(frozen=True)
class _Event:
    at_ms: int
    rank: int
    title: str


def parse_stream_start(text: str) -> datetime:
    """An ISO 8601 date-time; without a zone it is Kyiv's local time.  ValueError if it is not one."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=KYIV)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line in at most ``limit`` characters, cut after a whole word where one ends
    near the limit, with «…»."""
    text = " ".join(text.split())  # one line, whatever the journal holds
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    space = cut.rfind(" ")
    if space >= len(cut) - 15 and space > 0:
        cut = cut[:space]
    return cut.rstrip(" ,.:;—-") + "…"


def _short_name(full_name: str) -> str:
    """«Ткаченко Ірина Василівна» -> «Ткаченко І. В.»: speaker names as the hall screen shows them."""
    parts = full_name.split()
    if len(parts) < 2:
        return full_name
    return " ".join([parts[0], *(f"{p[0]}." for p in parts[1:])])


def vote_title(facts: Facts, vote: VoteResult) -> str:
    what = f"Голосування ({SUBJECT_UK[vote.subject]})"
    if vote.kind is VoteKind.SECRET:
        what = f"Таємне голосування ({SUBJECT_UK[vote.subject]})"
    elif vote.kind is VoteKind.RATING:
        what = "Рейтингове голосування"
    if vote.revote_of is not None:
        what = f"Повторне {what[0].lower()}{what[1:]}"
    if vote.cancelled is not None:
        # short, so that it fits beside the re-vote that usually follows within seconds
        what, outcome = "Голосування", "скасовано"
    elif vote.kind is VoteKind.RATING:
        top = f"«{vote.proposals[vote.winner - 1]}» ({vote.counts[vote.winner - 1]})" if vote.winner else ""
        outcome = f"обрано {top}" if top else "не обрано жодної пропозиції"
    else:
        yes, no, abstain = vote.counts
        verdict = "Прийнято" if vote.adopted else "Не прийнято"
        outcome = f"{verdict} — за {yes}, проти {no}, утр. {abstain}"
    own = vote.title if vote.title and vote.title != facts.motion_of(vote).title else ""
    tail = f" {outcome}" if vote.cancelled is not None else f": {outcome}"
    if own:
        room = MAX_TITLE - len(what) - len(tail) - 3
        if room >= 12:  # a title cut to fewer letters says nothing
            return f"{what} «{shorten(own, room)}»{tail}"
    return f"{what}{tail}"


def events(facts: Facts) -> list[_Event]:
    doc = facts.doc
    found = [_Event(doc.opened_at_ms, _RANK_SITTING, shorten(f"Відкриття засідання: {doc.title}", MAX_TITLE))]
    for r in doc.snapshot.rounds:
        quorum = "кворум є" if r.quorum else "кворуму немає"
        found.append(_Event(r.opened_at, _RANK_SITTING, f"Реєстрація: зареєстровано {r.count}, {quorum}"))
    titles = {m.item: m.title for m in facts.motions if m.item is not None}
    for span in facts.spans:
        head = f"Питання {span.number}. "
        found.append(
            _Event(span.start_ms, _RANK_ITEM, head + shorten(titles.get(span.number, ""), MAX_TITLE - len(head)))
        )
    for s in doc.snapshot.speeches:
        who = _short_name(doc.deputy_name(s.deputy)) if s.deputy is not None else f"місце {s.seat}"
        found.append(_Event(s.start, _RANK_SPEECH, shorten(f"{SPEECH_UK[s.kind]}: {who}", MAX_TITLE)))
    for vote in facts.votes:
        # a cancelled vote decided nothing: it may give way to the re-vote seconds after it
        rank = _RANK_VOTE if vote.cancelled is None else _RANK_ITEM
        found.append(_Event(vote.opened_at, rank, vote_title(facts, vote)))
    if doc.closed_at_ms is not None:
        found.append(_Event(doc.closed_at_ms, _RANK_SITTING, "Закриття засідання"))
    return sorted(found, key=lambda e: e.at_ms)  # stable: same-time events keep the journal's order


def _join(first: tuple[int, str], second: tuple[int, str]) -> str | None:
    """Two events' titles (rank, title) as one chapter title within MAX_TITLE, or None.  When both do
    not fit, the longer title that is not a vote's is shortened (a vote's result is never cut), as
    long as at least ``MIN_PART`` characters of it stay."""
    (rank_a, a), (rank_b, b) = first, second
    joined = f"{a}{JOIN}{b}"
    if len(joined) <= MAX_TITLE:
        return joined
    cuttable = [t for r, t in ((rank_a, a), (rank_b, b)) if r != _RANK_VOTE]
    if not cuttable:
        return None
    cut = max(cuttable, key=len)
    room = MAX_TITLE - len(JOIN) - (len(b) if cut is a else len(a))
    if room < MIN_PART:
        return None
    return f"{shorten(a, room)}{JOIN}{b}" if cut is a else f"{a}{JOIN}{shorten(b, room)}"


def chapters(facts: Facts, stream_start: datetime) -> list[Chapter]:
    """The chapter list (see the module docstring)."""
    start_ms = round(stream_start.timestamp() * 1000)
    found = events(facts)
    before = [e for e in found if e.at_ms <= start_ms]
    first = before[-1] if before else _Event(start_ms, -1, START_TITLE)
    kept: list[tuple[int, int, str]] = [(0, first.rank, first.title)]  # (seconds, rank, title)
    for e in found[len(before) :]:
        at = (e.at_ms - start_ms) // 1000
        last_at, last_rank, last_title = kept[-1]
        if at - last_at >= MIN_GAP_S:
            kept.append((at, e.rank, e.title))
        elif last_rank < 0:  # only the placeholder of a stream that began early: the event says more
            kept[-1] = (last_at, e.rank, e.title)
        elif (joined := _join((last_rank, last_title), (e.rank, e.title))) is not None:
            kept[-1] = (last_at, max(last_rank, e.rank), joined)
        elif e.rank >= last_rank:  # no room for both: the more important one stays, or the later one
            kept[-1] = (last_at, e.rank, e.title)
    return [Chapter(at, title) for at, _, title in kept]


def youtube_ready(chapters: list[Chapter]) -> bool:
    """Would YouTube show these chapters: at least three, the first at 0, each 10 s or more apart."""
    gaps_ok = all(b.start_s - a.start_s >= MIN_GAP_S for a, b in pairwise(chapters))
    return len(chapters) >= 3 and chapters[0].start_s == 0 and gaps_ok


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def text_chapters(chapters: list[Chapter]) -> str:
    """«HH:MM:SS Title» lines, one per chapter: what a video description takes as chapters."""
    return "".join(f"{_hms(c.start_s)} {c.title}\n" for c in chapters)


def _vtt_escape(text: str) -> str:
    # a cue's text is markup: & and < start entities and tags, and "-->" must never appear in it
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt_chapters(chapters: list[Chapter], end_s: int) -> str:
    """A WebVTT file of chapter cues; the last cue ends at ``end_s`` (at least ``MIN_GAP_S`` after it starts)."""
    lines = ["WEBVTT", ""]
    for i, c in enumerate(chapters):
        end = chapters[i + 1].start_s if i + 1 < len(chapters) else max(end_s, c.start_s + MIN_GAP_S)
        lines += [str(i + 1), f"{_hms(c.start_s)}.000 --> {_hms(end)}.000", _vtt_escape(c.title), ""]
    return "\n".join(lines)


def sitting_end_s(facts: Facts, stream_start: datetime) -> int:
    """Seconds from the stream's start to the end of the sitting (its close, else its last record)."""
    doc = facts.doc
    end_ms = doc.closed_at_ms if doc.closed_at_ms is not None else doc.snapshot.clock
    return max(0, (end_ms - round(stream_start.timestamp() * 1000)) // 1000)

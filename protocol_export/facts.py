"""What the open-data documents say about a sitting, worked out once: identifiers, dates, motions.

``load_facts(journal, uid)`` reads the sitting from the journal alone (``source.load_sitting`` and
``timeline.item_spans``) and derives what the Resolution 835 tables, the Popolo JSON, the deputies'
records and the video chapters share, so that they can never disagree:

Identifiers (each stable: the same journal always gives the same ones)
  * a deputy: the roster's ``open_data_id`` (the ``votingIdentifier`` of the council's dataset «Дані
    про депутатів ради»); when it is empty, ``{ЄДРПОУ}-{convocation}-{deputy id}`` (``council`` for a
    council without ЄДРПОУ).  The deputy id is the config's, journaled with the roster, and a config
    cannot reuse one within a convocation, so the fallback does not move between sittings;
  * the council ``{ЄДРПОУ}``; the convocation ``{ЄДРПОУ}-{convocation}``; the session (the sitting's
    number is the session's: «12 сесія») ``{ЄДРПОУ}-{convocation}-{number}``;
  * a motion (agenda item) ``{date}-{item number}``, as the schemas suggest («2024-09-04-1»), and a
    vote held outside any agenda item is a motion of its own, ``{date}-v{vote number}``, number 0,
    decided by that vote;
  * a vote event ``{date}-v{vote number}`` (votes are numbered within the sitting).
  Two sittings of one council on one day would share a date: the schemas' suggested scheme assumes
  there are none, and so does this one.

Dates
  ``date`` columns are the day in Kyiv (``Europe/Kyiv``), where the sitting was; ``dateTime`` columns
  are UTC with microseconds and ``Z`` exactly as the schemas' example (2023-04-09T15:00:00.000000Z).

Motions: one per agenda item (and per vote outside the agenda), with its votes in order and its
*decisive* vote — the one whose result is the item's result in ``motions2``/``votings``, which carry
one row per item: the last vote «в цілому» on the item that was not cancelled, else the last «за
основу», else the last rating vote; procedural votes and amendments never decide an item, and a
re-vote replaces what it repeats simply by coming later.  The item's result:

  * «Прийнято» / «Не прийнято»: the decisive vote's result (a secret vote decides like any other:
    its counts are public, only who chose what is not);
  * «Не голосували»: the item was taken up (it was current, or had speeches or votes) but no vote
    decided it: none held, only procedural votes or amendments, or every vote on it cancelled;
  * «Не розглядали»: the item never came up.

A vote event's own result is «Прийнято» / «Не прийнято», and «Не голосували» for a vote that was
cancelled by the secretary or annulled (a secret vote unfinished at a restart): no vote was taken in
law.  It stays in the data with the counts and names the hall saw until it was cancelled, so that the
re-vote that follows is told apart from it and the record matches the protocol.

The ``text`` of an item (the file name of the adopted decision) is its draft number with «/» made
«-» («757/2» -> ``757-2.pdf``), or its motion uid for an item without a draft, and ``textUrl`` is that
name under ``base_url`` (the folder on the council's site where decisions are published); without a
base URL it is the name alone, a relative reference valid as ``anyURI`` that resolves beside the data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from chamber.core.roster import Council, Deputy
from chamber.core.values import Outcome, Role, SpeechKind, VoteKind, VoteSubject
from chamber.core.voting import NamedChoice, VoteResult
from chamber.journal import Journal
from protocol_export.source import SittingDoc, load_sitting
from protocol_export.timeline import ItemSpan, item_spans

KYIV = ZoneInfo("Europe/Kyiv")

#: The value sets of DESIGN.md and the schemas' descriptions (a test checks the two agree).  A data
#: format: «Утримався» / «Не голосував» / «Відсутній» of a woman too, where the PDF and the pages say
#: her words («Утрималася»: protocol_export.pdf_votes ``outcome_word``, display.i18n ``one_*_f``).
PER_DEPUTY = ("За", "Проти", "Утримався", "Не голосував", "Відсутній")
PER_MOTION = ("Прийнято", "Не прийнято", "Не голосували", "Не розглядали")
ADOPTED, NOT_ADOPTED, NOT_VOTED, NOT_CONSIDERED = PER_MOTION

OUTCOME_UK: dict[Outcome, str] = {o: o.label_uk for o in Outcome}  # the core's words, checked against PER_DEPUTY
SUBJECT_UK = {
    VoteSubject.BASIS: "за основу",
    VoteSubject.WHOLE: "в цілому",
    VoteSubject.PROCEDURAL: "процедурне",
    VoteSubject.AMENDMENT: "поправка",
}
KIND_UK = {
    VoteKind.ROLL_CALL: "поіменне",
    VoteKind.OPEN: "відкрите",
    VoteKind.SECRET: "таємне",
    VoteKind.RATING: "рейтингове",
}
SPEECH_UK = {
    SpeechKind.REPORT: "Доповідь",
    SpeechKind.SPEECH: "Виступ",
    SpeechKind.REPLY: "Репліка",
    SpeechKind.POINT_OF_ORDER: "З процедурного питання",
}
NO_DRAFT = "б/н"  # «без номера»: the usual mark of a document without a number


def kyiv_date(ms: int) -> str:
    """The day of the moment ``ms`` (epoch milliseconds) in Kyiv, ``yyyy-mm-dd``."""
    return datetime.fromtimestamp(ms / 1000, KYIV).date().isoformat()


def utc_datetime(ms: int) -> str:
    """``2023-04-09T15:00:00.000000Z``: the schemas' example form, in UTC, to the millisecond we have."""
    moment = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_seconds(ms: int) -> str:
    """``2023-04-09T15:00:00Z``: for Popolo's event dates, whose pattern takes no fraction of a second."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def council_id(council: Council) -> str:
    return council.edrpou or "council"


def voter_id(council: Council, deputy: Deputy) -> str:
    """The deputy's open-data identifier (see the module docstring for the fallback)."""
    return deputy.open_data_id or f"{council_id(council)}-{council.convocation}-{deputy.id}"


def _table_number(label: str, position: int) -> int:
    """The schemas' ``number`` is an integer; an agenda number may be «12.3»: its leading whole number
    (the item it is a sub-item of), or the item's 1-based position when it starts with no digits."""
    digits = re.match(r"\d+", label)
    return int(digits.group()) if digits else position


@dataclass(frozen=True)
class Motion:
    uid: str
    number: int  # for the tables: see _table_number; 0 for a vote outside the agenda
    label: str  # the agenda number as written («12.3»), or «» outside the agenda
    title: str
    draft: str
    item: str | None  # the agenda number, None for a vote outside the agenda
    votes: tuple[VoteResult, ...]
    decisive: VoteResult | None
    taken_up: bool
    reporter: int | None  # the deputy who gave the item's report, else the head (who puts it to the vote)

    @property
    def classification(self) -> str:
        """The item's category: a draft decision, an item without a draft, or a vote outside the agenda."""
        if self.item is None:
            return "голосування поза порядком денним"
        return "проєкт рішення" if self.draft else "питання порядку денного"

    @property
    def result(self) -> str:
        if self.decisive is not None:
            return ADOPTED if self.decisive.adopted else NOT_ADOPTED
        return NOT_VOTED if self.taken_up else NOT_CONSIDERED


def decisive_vote(votes: tuple[VoteResult, ...]) -> VoteResult | None:
    """The vote whose result is the item's (see the module docstring)."""
    valid = [v for v in votes if v.cancelled is None and v.subject in (VoteSubject.WHOLE, VoteSubject.BASIS)]
    plain = [v for v in valid if v.kind is not VoteKind.RATING]
    for found in (
        [v for v in plain if v.subject is VoteSubject.WHOLE],
        [v for v in plain if v.subject is VoteSubject.BASIS],
        [v for v in valid if v.kind is VoteKind.RATING],
    ):
        if found:
            return found[-1]
    return None


@dataclass(frozen=True)
class Facts:
    doc: SittingDoc
    spans: tuple[ItemSpan, ...]
    motions: tuple[Motion, ...]
    base_url: str = ""
    decision_suffix: str = ".pdf"

    @property
    def council(self) -> Council:
        return self.doc.roster.council

    @property
    def date(self) -> str:
        return kyiv_date(self.doc.opened_at_ms)

    @property
    def end_date(self) -> str:
        return kyiv_date(self.doc.closed_at_ms or self.doc.snapshot.clock or self.doc.opened_at_ms)

    @property
    def convocation_uid(self) -> str:
        return f"{council_id(self.council)}-{self.council.convocation}"

    @property
    def session_uid(self) -> str:
        return f"{self.convocation_uid}-{self.doc.number}"

    # The lookups below are indexed once per Facts (cached_property writes the instance's __dict__, which a
    # frozen dataclass allows): the records of 450 deputies over 100 votes asked them ~10^5 times each,
    # and a linear search every time made the open data of such a sitting take seconds.

    @cached_property
    def votes(self) -> tuple[VoteResult, ...]:
        return tuple(sorted(self.doc.snapshot.results, key=lambda v: v.number))

    @cached_property
    def _deputies(self) -> dict[int, Deputy]:
        return {d.id: d for d in reversed(self.doc.roster.deputies)}  # the first of an id, as a search finds

    @cached_property
    def _motion_of_vote(self) -> dict[int, Motion]:
        found: dict[int, Motion] = {}
        for m in self.motions:
            for v in m.votes:
                found.setdefault(v.number, m)  # the first motion holding the vote, as a search finds
        return found

    @cached_property
    def choices_by_deputy(self) -> dict[int, list[tuple[VoteResult, NamedChoice]]]:
        """Every named choice of each deputy, in vote order (the votes' per-name order within one)."""
        found: dict[int, list[tuple[VoteResult, NamedChoice]]] = {}
        for v in self.votes:
            for c in v.per_name:
                found.setdefault(c.deputy, []).append((v, c))
        return found

    def deputy(self, deputy_id: int) -> Deputy:
        return self._deputies[deputy_id]

    def voter_id(self, deputy_id: int) -> str:
        return voter_id(self.council, self.deputy(deputy_id))

    def vote_uid(self, vote: VoteResult) -> str:
        return f"{self.date}-v{vote.number}"

    def motion_of(self, vote: VoteResult) -> Motion:
        return self._motion_of_vote[vote.number]

    def vote_result(self, vote: VoteResult) -> str:
        if vote.cancelled is not None:
            return NOT_VOTED
        return ADOPTED if vote.adopted else NOT_ADOPTED

    def vote_title(self, vote: VoteResult) -> str:
        """The vote's own title, or its item's, with what tells it apart from the item's other votes:
        «Про … (в цілому, повторне голосування)»."""
        title = vote.title or self.motion_of(vote).title
        notes = [SUBJECT_UK[vote.subject]]
        if vote.kind is not VoteKind.ROLL_CALL:
            notes.append(f"{KIND_UK[vote.kind]} голосування")
        if vote.revote_of is not None:
            notes.append("повторне голосування")
        if vote.winner is not None:
            notes.append(f"обрано «{vote.proposals[vote.winner - 1]}»")
        if vote.cancelled is not None:
            notes.append(f"скасовано: {vote.cancelled}")
        return f"{title} ({', '.join(notes)})"

    def decision_file(self, motion: Motion) -> str:
        stem = motion.draft.replace("/", "-") if motion.draft else motion.uid
        return f"{stem}{self.decision_suffix}"

    def decision_url(self, motion: Motion) -> str:
        name = self.decision_file(motion)
        return f"{self.base_url.rstrip('/')}/{name}" if self.base_url else name


def _motions(doc: SittingDoc, spans: tuple[ItemSpan, ...]) -> tuple[Motion, ...]:
    date = kyiv_date(doc.opened_at_ms)
    results = sorted(doc.snapshot.results, key=lambda v: v.number)
    head = next((d.id for d in doc.roster.deputies if d.role is Role.HEAD), None)
    motions: list[Motion] = []
    for position, item in enumerate(doc.snapshot.agenda, start=1):
        votes = tuple(v for v in results if v.item == item.number)
        speeches = [s for s in doc.snapshot.speeches if s.item == item.number]
        reports = [s.deputy for s in speeches if s.kind is SpeechKind.REPORT and s.deputy is not None]
        motions.append(
            Motion(
                uid=f"{date}-{item.number}",
                number=_table_number(item.number, position),
                label=item.number,
                title=item.title,
                draft=item.draft,
                item=item.number,
                votes=votes,
                decisive=decisive_vote(votes),
                taken_up=bool(votes or speeches or any(s.number == item.number for s in spans)),
                reporter=reports[0] if reports else head,
            )
        )
    known = {item.number for item in doc.snapshot.agenda}
    for vote in results:
        if vote.item is None or vote.item not in known:  # an item dropped from the agenda later too
            motions.append(
                Motion(
                    uid=f"{date}-v{vote.number}",
                    number=0,
                    label="",
                    title=vote.title or f"Голосування № {vote.number}",
                    draft="",
                    item=None,
                    votes=(vote,),
                    decisive=None if vote.cancelled is not None else vote,  # the vote is the whole motion
                    taken_up=True,
                    reporter=head,
                )
            )
    return tuple(motions)


def facts_of(
    doc: SittingDoc, spans: tuple[ItemSpan, ...], *, base_url: str = "", decision_suffix: str = ".pdf"
) -> Facts:
    return Facts(doc, spans, _motions(doc, spans), base_url=base_url, decision_suffix=decision_suffix)


def load_facts(journal: Journal, uid: str, *, base_url: str = "", decision_suffix: str = ".pdf") -> Facts:
    """The sitting ``uid`` as the open-data documents see it; SourceError if the journal cannot back it."""
    doc = load_sitting(journal, uid)
    return facts_of(doc, item_spans(journal, uid), base_url=base_url, decision_suffix=decision_suffix)

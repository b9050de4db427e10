"""One vote as the documents print it: the same block in the protocol and on the result sheet.

``vote_block(doc, result)`` gives the flowables of a vote: what was voted (agenda item, draft number,
subject, kind, legal basis of a secret ballot, the time), the threshold in words with its base and
the count it required, the counts, the verdict in a box, and who did what:

* roll-call: every deputy of the result with За / Проти / Утримався / Не голосував / Відсутній, a
  woman's «Утрималася» / «Не голосувала» / «Відсутня» (:func:`outcome_word`);
* rating: every deputy with the proposal chosen;
* secret: counts only, and who took part (the deputies whose ballots the journal holds, with no
  choice, since the journal has none: protocol_export.source ``secret_ballots``);
* open: counts only (the core publishes no names for an open vote);
* cancelled: the reason, and the counts at the moment of cancellation marked as not counted; a
  re-vote names the vote it repeats, and a repeated vote names its re-vote.

What is said of one deputy is in her or his grammatical gender, as on the web pages, but read from
the journaled name alone (its patronymic, else a surname only women bear: ``display.state.gender_of``)
and never from config.toml's ``gender``, which the journal does not carry: the same journal renders
the same document anywhere.  The open data keeps its fixed value set (protocol_export.facts
``PER_DEPUTY``: «Утримався» of everyone), being a data format and not a text.

Names are in Ukrainian alphabetical order.  The protocol lists them with their factions in one
column; a result sheet puts a council of 40-odd names in two halves so that the sheet is one page
(``names_table(..., sheet=True, room=...)`` falls back to one column when two halves do not fit).
"""

from __future__ import annotations

from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import CondPageBreak, Flowable, KeepTogether, Spacer

from chamber.core.events import AgendaItem
from chamber.core.roster import Deputy
from chamber.core.values import Outcome, VoteKind
from chamber.core.voting import VoteResult
from chamber.report import KIND_UK
from display.state import gender_of
from protocol_export import words
from protocol_export.pdf_page import WIDTH
from protocol_export.pdf_tables import H2, SMALL, VALUE, counts, facts, grid, para, two_groups, verdict
from protocol_export.source import SittingDoc

BIG = 10_000.0  # pt: "as tall as it likes" when measuring a table
NAMES_HEADING = ParagraphStyle("names_heading", parent=H2, keepWithNext=0, spaceBefore=6)


#: A woman's words where they differ (the pages' ``one_*_f`` of display.i18n say the same; a test
#: checks it).
OUTCOME_F = {Outcome.ABSTAIN: "Утрималася", Outcome.DID_NOT_VOTE: "Не голосувала", Outcome.ABSENT: "Відсутня"}


def outcome_word(outcome: Outcome, deputy: Deputy | None) -> str:
    """What ``deputy`` did, in her or his grammatical gender read from the journaled name (see the
    module docstring); an unknown deputy gets the plain form."""
    if deputy is not None and gender_of(deputy.full_name) == "f":
        return OUTCOME_F.get(outcome, words.OUTCOME_UK[outcome])
    return words.OUTCOME_UK[outcome]


def deputy_index(doc: SittingDoc) -> dict[int, Deputy]:
    return {d.id: d for d in doc.roster.deputies}


def agenda_item(doc: SittingDoc, number: str | None) -> AgendaItem | None:
    return next((i for i in doc.snapshot.agenda if i.number == number), None)


def vote_title(doc: SittingDoc, result: VoteResult) -> str:
    """What the vote was about in one line: its own title, else its agenda item's."""
    item = agenda_item(doc, result.item)
    return result.title or (item.title if item else "") or "(без назви)"


def vote_heading(result: VoteResult) -> str:
    text = f"Голосування № {result.number}"
    if result.revote_of is not None:
        text += f" (повторне, замість № {result.revote_of})"
    return text


def vote_facts(doc: SittingDoc, result: VoteResult) -> list[tuple[str, str]]:
    item = agenda_item(doc, result.item)
    rows: list[tuple[str, str]] = []
    if item is not None:
        rows.append(("Питання порядку денного", f"{item.number}. {item.title}"))
        if item.draft:
            rows.append(("Проєкт рішення", f"№ {item.draft}"))
    elif result.item:
        rows.append(("Питання порядку денного", result.item))
    if result.title and (item is None or result.title != item.title):
        rows.append(("Назва голосування", result.title))
    if result.kind is not VoteKind.RATING:  # a rating vote chooses among proposals: no basis or whole
        rows.append(("Голосували", words.SUBJECT_WORDS[result.subject]))
    rows.append(("Вид голосування", KIND_UK[result.kind]))
    if result.kind is VoteKind.SECRET:
        rows.append(("Правова підстава", doc.legal_bases.get(result.number, "не зазначено")))
    when = words.hms(result.opened_at)
    if result.closed_at is not None:
        when += f" – {words.hms(result.closed_at)}"
    rows.append(("Час", when))
    if result.revote_of is not None:
        rows.append(("Повторне голосування", _earlier(doc, result.revote_of)))
    later = [r.number for r in doc.snapshot.results if r.revote_of == result.number]
    if later:
        rows.append(("Повторено", ", ".join(f"голосуванням № {n}" for n in later)))
    rows.append(("Поріг прийняття", threshold_line(result)))
    rows.append(("Зареєстровано", f"{result.registered} із {result.composition} (на момент відкриття)"))
    return rows


def _earlier(doc: SittingDoc, number: int) -> str:
    earlier = next((r for r in doc.snapshot.results if r.number == number), None)
    text = f"замість голосування № {number}"
    if earlier is None:
        return text
    if earlier.cancelled is not None:
        return f"{text} (скасоване: {earlier.cancelled})"
    return f"{text} ({earlier.result_uk.lower()})"


def threshold_line(result: VoteResult) -> str:
    """«більше половини від загального складу ради (43): щонайменше 22 голоси «за»»."""
    what = "за одну пропозицію" if result.kind is VoteKind.RATING else "«за»"
    base = words.base_of(result)
    return f"{words.threshold_words(result.threshold)} ({base}): щонайменше {words.votes(result.required)} {what}"


def counts_table(result: VoteResult) -> list[Flowable]:
    out: list[Flowable] = []
    if result.cancelled is not None:
        out.append(para("Стан на момент скасування (не враховується):", SMALL))
    if result.kind is VoteKind.RATING:
        rows = []
        for i, (proposal, count) in enumerate(zip(result.proposals, result.counts, strict=True), 1):
            mark = "обрано" if result.winner == i and result.cancelled is None else ""
            rows.append([str(i), proposal, str(count), mark])
        out.append(grid(["№", "Пропозиція", "Голосів", ""], rows, [12 * mm, 104 * mm, 24 * mm, 30 * mm], right=[2]))
        cast, idle, away = sum(result.counts), result.did_not_vote, result.absent
        out += [Spacer(1, 1.5 * mm), para(f"Проголосували: {cast}; не голосували: {idle}; відсутні: {away}.", VALUE)]
        return out
    yes, no, abstain = result.counts
    header = ["За", "Проти", "Утримались", "Не голосували", "Відсутні"]
    out.append(counts(header, [str(v) for v in (yes, no, abstain, result.did_not_vote, result.absent)]))
    return out


def verdict_box(result: VoteResult) -> list[Flowable]:
    if result.cancelled is not None:
        return [verdict("ГОЛОСУВАННЯ СКАСОВАНО", adopted=False, note=f"Причина: {result.cancelled}")]
    if result.kind is VoteKind.RATING:
        if result.adopted and result.winner is not None:
            proposal = result.proposals[result.winner - 1]
            won = result.counts[result.winner - 1]
            return [verdict(f"ПРИЙНЯТО: пропозиція {result.winner} «{proposal}» ({words.votes(won)})", adopted=True)]
        return [verdict("НЕ ПРИЙНЯТО: жодна пропозиція не набрала потрібної кількості голосів", adopted=False)]
    yes = result.counts[0]
    tail = f"«за» {words.votes(yes)} при потрібних {result.required}"
    if result.adopted:
        return [verdict(f"ПРИЙНЯТО ({tail})", adopted=True)]
    return [verdict(f"НЕ ПРИЙНЯТО ({tail})", adopted=False)]


def name_rows(doc: SittingDoc, result: VoteResult) -> list[tuple[Deputy | None, int, str]]:
    """(deputy, id, what they did) in alphabetical order; empty for counts-only votes."""
    people = deputy_index(doc)
    rows: list[tuple[Deputy | None, int, str]] = []
    if result.kind is VoteKind.SECRET:
        for deputy in doc.secret_ballots.get(result.number, ()):
            rows.append((people.get(deputy), deputy, ""))  # who took part, with no choice: nothing to say
    else:
        for choice in result.per_name:
            if result.kind is VoteKind.RATING and choice.outcome is Outcome.YES and choice.proposal is not None:
                what = words.proposal_choice(choice.proposal, result.proposals)
            else:
                what = outcome_word(choice.outcome, people.get(choice.deputy))
            rows.append((people.get(choice.deputy), choice.deputy, what))
    rows.sort(key=lambda row: words.name_key(row[0].full_name if row[0] else f"#{row[1]}"))
    return rows


def names_table(doc: SittingDoc, result: VoteResult, *, sheet: bool = False, room: float = BIG) -> list[Flowable]:
    """Who did what.  On a sheet, two halves if they fit in ``room`` pt, else one column with factions."""
    if result.kind is VoteKind.OPEN:
        return [para("Відкрите голосування: оприлюднюється лише кількість голосів, без прізвищ.", SMALL)]
    if result.cancelled is not None:
        return []  # the presses before a cancellation decided nothing; the journal keeps them
    rows = name_rows(doc, result)
    secret = result.kind is VoteKind.SECRET
    if secret:
        title = f"Взяли участь у таємному голосуванні: {words.deputies(len(rows))}"
    else:
        title = "Поіменні результати голосування"
    what = "Вибір" if result.kind is VoteKind.RATING else "Голос"
    # not keepWithNext: that would keep the heading with the whole list and push a list that fits a page
    # but not the rest of this one onto the next, leaving a blank half page; a conditional break keeps
    # the heading from being orphaned at the foot of a page instead
    out: list[Flowable] = [CondPageBreak(30 * mm), para(title, NAMES_HEADING)]
    if sheet:
        if secret:
            table = two_groups(
                ["№", "Прізвище, ім'я, по батькові"],
                [[str(i), _name(d, n)] for i, (d, n, _) in enumerate(rows, 1)],
                [6 * mm, 77 * mm],
            )
        else:
            # the choice's column takes «Не голосувала» on one line (22.8 mm at the sheet's size); the
            # names' keeps the longest of a council of 43 (51.5 mm) on one
            table = two_groups(
                ["№", "Прізвище, ім'я, по батькові", what],
                [[str(i), _name(d, n), w] for i, (d, n, w) in enumerate(rows, 1)],
                [6 * mm, 53 * mm, 24 * mm] if result.kind is not VoteKind.RATING else [6 * mm, 50 * mm, 27 * mm],
            )
        # a sheet's title says what a named list is; who took part in a secret vote needs saying
        heading = out[1:] if secret else []
        _, height = table.wrap(WIDTH, BIG)
        if height + height_of(heading) <= room - 6:
            return [*heading, table]
    header = ["№", "Прізвище, ім'я, по батькові", "Фракція"]
    if secret:
        widths = [10 * mm, 100 * mm, 60 * mm]
    else:
        header.append(what)
        widths = [10 * mm, 82 * mm, 50 * mm, 28 * mm]
        if result.kind is VoteKind.RATING:
            widths = [10 * mm, 78 * mm, 46 * mm, 36 * mm]
    data = [
        [str(i), _name(d, n), d.faction if d else "", *([] if secret else [w])] for i, (d, n, w) in enumerate(rows, 1)
    ]
    out.append(grid(header, data, widths, right=[0], bold=[] if secret else [3]))
    if secret:
        out.append(Spacer(1, 1.5 * mm))
        out.append(
            para("Система фіксує лише участь у таємному голосуванні; хто як проголосував, не записується.", SMALL)
        )
    return out


def _name(deputy: Deputy | None, number: int) -> str:
    return deputy.full_name if deputy else f"депутат #{number}"


def vote_block(doc: SittingDoc, result: VoteResult, *, sheet: bool = False, room: float = BIG) -> list[Flowable]:
    """The vote's flowables.  The description, counts and verdict are kept on one page; the list of
    names may run on, with its header repeated."""
    head = [
        para(vote_heading(result), H2),
        facts(vote_facts(doc, result)),
        Spacer(1, 2.5 * mm),
        *counts_table(result),
        Spacer(1, 2.5 * mm),
        *verdict_box(result),
    ]
    if sheet:
        room -= height_of(head) + 2 * mm
    return [KeepTogether(head), Spacer(1, 2 * mm), *names_table(doc, result, sheet=sheet, room=room)]


def height_of(flowables: list[Flowable]) -> float:
    """How tall ``flowables`` stand in the text block, spaces before and after included (a little more
    than platypus, which drops the space before a frame's first flowable: the safe side)."""
    return float(sum(f.wrap(WIDTH, BIG)[1] + f.getSpaceBefore() + f.getSpaceAfter() for f in flowables))

"""The protocol's sections other than the votes: header, registration, agenda, summary of votes,
speeches (with their recordings, when the protocol is given any), alerts and refused presses, the
closing (journal coordinates and signatures) and the annex of the recordings' full SHA-256 sums.

Each function takes the SittingDoc and returns flowables; protocol_export.pdf puts them in order.
Times are Kyiv's clock, to the second where the protocol records an act (a registration, a vote, a
speech, an alert).
"""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, PageBreak, Spacer

from chamber.core.effects import Alert
from chamber.core.values import Role, VoteKind
from chamber.core.voting import VoteResult
from chamber.report import ENDED_UK, SPEECH_UK
from protocol_export import words
from protocol_export.pdf_page import escape
from protocol_export.pdf_tables import CENTER, COUNCIL, H1, H2, SMALL, TITLE, facts, grid, para, rich
from protocol_export.pdf_votes import deputy_index, vote_title
from protocol_export.recording_list import Listed, by_speech, list_digest
from protocol_export.source import SittingDoc

ROUNDS_PER_TABLE = 3  # registration rounds side by side in one table (more would squeeze the names)


def header(doc: SittingDoc) -> list[Flowable]:
    council = doc.roster.council
    out: list[Flowable] = [
        para(council.name.upper(), COUNCIL),
        para(f"{words.roman(council.convocation)} скликання", CENTER),
        para(f"ПРОТОКОЛ № {doc.number}", TITLE),
    ]
    if doc.title:
        out.append(para(doc.title, CENTER))
    out.append(Spacer(1, 4 * mm))
    rows = [("Дата", words.date_words(doc.opened_at_ms))]
    if council.place:
        rows.append(("Місце проведення", council.place))
    opened = f"відкрито о {words.hms(doc.opened_at_ms)}"
    if doc.closed_at_ms is not None:
        rows.append(("Засідання", f"{opened}, закрито о {words.hms(doc.closed_at_ms)}"))
    else:
        rows.append(("Засідання", f"{opened}; не закрито: протокол станом на {words.hms(doc.snapshot.clock)}"))
    rows.append(("Загальний склад ради", words.deputies(council.composition)))
    quorum = doc.roster.rules.quorum
    need = quorum.required(council.composition)
    rows.append(("Кворум", f"{words.threshold_words(quorum)}: щонайменше {words.deputies(need)}"))
    head = next((d for d in doc.roster.deputies if d.role is Role.HEAD), None)
    if head is not None:
        rows.append(("Головуючий", head.full_name))
    if council.edrpou:
        rows.append(("Код ЄДРПОУ", council.edrpou))
    if council.katottg:
        rows.append(("Код КАТОТТГ", council.katottg))
    rows.append(("Ідентифікатор засідання", doc.uid))
    rows.append(("Журнал засідання", f"записи {doc.first_seq}–{doc.last_seq}, голова {doc.head_text}"))
    out.append(facts(rows))
    return out


def registration(doc: SittingDoc) -> list[Flowable]:
    out: list[Flowable] = [para("1. Реєстрація депутатів", H1)]
    rounds = doc.snapshot.rounds
    if not rounds:
        return [*out, para("Реєстрацію не проводили.")]
    composition = doc.roster.council.composition
    need = doc.roster.rules.quorum.required(composition)
    people = deputy_index(doc)
    for r in rounds:
        quorum = "кворум є" if r.quorum else "кворуму немає"
        out.append(
            para(
                f"Реєстрація № {r.number} ({words.hms(r.opened_at)} – {words.hms(r.closed_at)}): зареєстровано "
                f"{r.count} із {composition}; {quorum} (потрібно щонайменше {need}).",
                SMALL,
            )
        )
    times = {(m.round, m.deputy): m for m in doc.registrations}
    ordered = sorted(doc.roster.deputies, key=lambda d: words.name_key(d.full_name))
    for start in range(0, len(rounds), ROUNDS_PER_TABLE):
        chunk = rounds[start : start + ROUNDS_PER_TABLE]
        header = ["№", "Прізвище, ім'я, по батькові", "Фракція", *(f"Реєстрація № {r.number}" for r in chunk)]
        rows = []
        for i, deputy in enumerate(ordered, 1):
            marks = []
            for r in chunk:
                mark = times.get((r.number, deputy.id))
                if mark is not None:
                    marks.append(words.hms(mark.at_ms) + (" *" if mark.seat is None else ""))
                else:
                    marks.append("так" if deputy.id in r.registered else "—")
            rows.append([str(i), deputy.full_name, deputy.faction, *marks])
        width = (170 - 10 - 66 - 40) / len(chunk)
        out.append(Spacer(1, 2 * mm))
        out.append(grid(header, rows, [10 * mm, 66 * mm, 40 * mm, *[width * mm] * len(chunk)], right=[0]))
    out.append(Spacer(1, 1.5 * mm))
    manual = [(r.number, deputy, reason) for r in rounds for deputy, reason in r.manual]
    if manual:
        lines = "; ".join(
            f"№ {n}: {escape(people[d].full_name if d in people else f'#{d}')} — {escape(reason)}"
            for n, d, reason in manual
        )
        out.append(rich(f"* Зареєстровано секретарем вручну (реєстрація, депутат — причина): {lines}.", SMALL))
    out.append(para("«—»: не зареєструвався (не зареєструвалася).", SMALL))
    return out


def agenda(doc: SittingDoc) -> list[Flowable]:
    out: list[Flowable] = [para("2. Порядок денний", H1)]
    items = doc.snapshot.agenda
    if not items:
        return [*out, para("Порядок денний не затверджено в системі.")]
    rows = [[i.number, i.title, f"№ {i.draft}" if i.draft else "—"] for i in items]
    out.append(grid(["№", "Питання", "Проєкт рішення"], rows, [12 * mm, 130 * mm, 28 * mm]))
    return out


def votes_summary(doc: SittingDoc) -> list[Flowable]:
    out: list[Flowable] = [para("3. Голосування", H1)]
    results = doc.snapshot.results
    if not results:
        return [*out, para("Голосувань не було.")]
    rows = [
        [
            str(r.number),
            words.hms(r.opened_at),
            f"{r.item + '. ' if r.item else ''}{vote_title(doc, r)}",
            "рейтингове" if r.kind is VoteKind.RATING else words.SUBJECT_WORDS[r.subject],
            *_three(r),
            _short_result(r),
        ]
        for r in results
    ]
    header = ["№", "Час", "Питання / назва", "Голосували", "За", "Проти", "Утр.", "Результат"]
    widths = [8 * mm, 15 * mm, 62 * mm, 23 * mm, 10 * mm, 12 * mm, 10 * mm, 30 * mm]
    out.append(grid(header, rows, widths, right=[0, 4, 5, 6]))
    out.append(Spacer(1, 1.5 * mm))
    out.append(para("Далі — кожне голосування окремо, з поіменними результатами.", SMALL))
    return out


def _three(r: VoteResult) -> list[str]:
    if r.kind is VoteKind.RATING:
        return ["—", "—", "—"]
    return [str(c) for c in r.counts]


def _short_result(r: VoteResult) -> str:
    if r.cancelled is not None:
        return "Скасовано"
    if r.kind is VoteKind.RATING and r.adopted:
        return f"Прийнято: пропозиція {r.winner}"
    return r.result_uk


def speeches(doc: SittingDoc) -> list[Flowable]:
    out: list[Flowable] = [para("4. Виступи", H1)]
    records = doc.snapshot.speeches
    if not records:
        return [*out, para("Виступів у системі не зафіксовано.")]
    people = deputy_index(doc)
    rows = []
    for i, sp in enumerate(records, 1):
        who = people[sp.deputy].full_name if sp.deputy in people else "—"
        span = words.hms(sp.start) + (f"–{words.hms(sp.end)}" if sp.end is not None else "")
        length = words.clock_duration(sp.end - sp.start) if sp.end is not None else "триває"
        if sp.limit_s:
            length += f" із {words.clock_duration(sp.limit_s * 1000)}"
        ended = ENDED_UK.get(sp.ended_by or "", sp.ended_by or "—")
        rows.append([str(i), span, f"{who} (місце {sp.seat})", SPEECH_UK[sp.kind], sp.item or "—", length, ended])
    header = ["№", "Час", "Промовець", "Вид", "Пит.", "Тривалість", "Завершення"]
    widths = [8 * mm, 30 * mm, 50 * mm, 22 * mm, 12 * mm, 22 * mm, 26 * mm]
    out.append(grid(header, rows, widths, right=[0]))
    if doc.recordings:
        out += _speech_recordings(doc)
    return out


ANNEX = "Додаток 1. Аудіозаписи виступів"


def _hash_groups(digest: str) -> str:
    """A SHA-256 in groups of eight, as fingerprints are printed: read and compared a group at a time
    (and a table cell can break it between groups)."""
    return " ".join(digest[i : i + 8] for i in range(0, len(digest), 8))


def _recording_length(rec: Listed) -> str:
    tenths = rec.duration_ms // 100
    return f"{words.clock_duration(tenths * 100)},{tenths % 10}" + ("" if rec.complete else " *")


def _speech_recordings(doc: SittingDoc) -> list[Flowable]:
    """The recordings of the speeches above, by the speech's number: file, length, the hash's start."""
    rows = []
    for i, parts in enumerate(by_speech(doc.snapshot.speeches, doc.recordings), 1):
        rows += [[str(i), rec.file, _recording_length(rec), _hash_groups(rec.sha256[:16]) + "…"] for rec in parts]
    header = ["Виступ №", "Файл запису", "Тривалість", "SHA-256 (початок)"]
    out: list[Flowable] = [
        Spacer(1, 3 * mm),
        para("Аудіозаписи виступів", H2),
        grid(header, rows, [16 * mm, 94 * mm, 22 * mm, 38 * mm], right=[0]),
        Spacer(1, 1.5 * mm),
    ]
    count = words.plural_count(len(doc.recordings), "файл", "файли", "файлів")
    notes = [f"Записано {count}; повні контрольні суми SHA-256 і контрольна сума переліку — у додатку 1."]
    if not all(rec.complete for rec in doc.recordings):
        notes.append("* Запис неповний: частини звуку не було (збій звукової карти або перезапуск системи).")
    out += [para(note, SMALL) for note in notes]
    return out


def recordings_annex(doc: SittingDoc) -> list[Flowable]:
    """Annex 1, on a page of its own after the signatures: every recording's file, size and full
    SHA-256, and the list's own SHA-256 (recorded in the PDF's metadata too); nothing without
    recordings."""
    if not doc.recordings:
        return []
    rows = [[str(r.number), r.file, str(r.bytes), _hash_groups(r.sha256)] for r in doc.recordings]
    return [
        PageBreak(),
        para(ANNEX, H1),
        para(
            f"До протоколу пленарного засідання № {doc.number} ({doc.uid}). Файли зберігаються разом із "
            f"протоколом (на сайті ради — у теці files/{doc.uid}/recordings/, з переліком SHA256SUMS); "
            "файл справжній, якщо його контрольна сума SHA-256 (sha256sum ФАЙЛ) та сама, що тут.",
            SMALL,
        ),
        Spacer(1, 2 * mm),
        grid(["№", "Файл", "Розмір, байт", "SHA-256"], rows, [9 * mm, 70 * mm, 21 * mm, 70 * mm], right=[0, 2]),
        Spacer(1, 2 * mm),
        facts([("Контрольна сума переліку (SHA-256)", _hash_groups(list_digest(doc.recordings)))]),
    ]


def alerts(doc: SittingDoc) -> list[Flowable]:
    """Alerts and refused presses in journal order.  A refused card is also an alert: printed once."""
    out: list[Flowable] = [para("5. Сповіщення системи та відхилені натискання", H1)]
    people = deputy_index(doc)
    events: list[tuple[int, int, int | None, int | None, str]] = []
    for t in (*doc.alerts, *doc.refusals):
        effect = t.effect
        if isinstance(effect, Alert):
            events.append((t.seq, t.at_ms, effect.seat, effect.deputy, words.alert_words(effect.kind)))
        elif effect.reason not in words.CARD_REFUSALS:
            events.append((t.seq, t.at_ms, effect.seat, t.deputy, words.refusal_words(effect.reason)))
    if not events:
        return [*out, para("Сповіщень і відхилених натискань не було.")]
    events.sort(key=lambda e: e[0])
    rows = [
        [
            str(i),
            words.hms(at),
            str(seat) if seat is not None else "—",
            people[deputy].full_name if deputy in people else "—",
            what,
        ]
        for i, (_, at, seat, deputy, what) in enumerate(events, 1)
    ]
    header = ["№", "Час", "Місце", "Картка депутата", "Подія"]
    out.append(grid(header, rows, [8 * mm, 16 * mm, 13 * mm, 55 * mm, 78 * mm], right=[0, 2]))
    out.append(Spacer(1, 1.5 * mm))
    out.append(
        para(
            "Депутат — той, чия картка була у пульті або вставлялася; «—»: картки не було. Повтори вже "
            "врахованих подій пульта (після збою зв'язку) не наводяться.",
            SMALL,
        )
    )
    return out


def _recordings_fact(doc: SittingDoc) -> list[tuple[str, str]]:
    if not doc.recordings:
        return []
    count = words.plural_count(len(doc.recordings), "файл", "файли", "файлів")
    return [("Аудіозаписи виступів", f"{count}, перелік — у додатку 1; SHA-256 переліку {list_digest(doc.recordings)}")]


def closing(doc: SittingDoc) -> list[Flowable]:
    head = next((d for d in doc.roster.deputies if d.role is Role.HEAD), None)
    out: list[Flowable] = [
        para("6. Засвідчення", H1),
        para(
            "Протокол складено системою з журналу засідання, і лише з нього: той самий журнал дає той самий "
            "файл протоколу байт у байт, тож будь-хто, хто має журнал, може відтворити протокол і порівняти.",
            SMALL,
        ),
        Spacer(1, 1.5 * mm),
        facts(
            [
                ("Засідання", doc.uid),
                ("Записи журналу", f"{doc.first_seq}–{doc.last_seq}"),
                ("Голова журналу", doc.head_text),
                ("Відтворити протокол", f"chamber protocol --sitting {doc.uid} --out protocol.pdf"),
                ("Перевірити журнал", f"chamber journal verify --sitting {doc.uid} --expect-head {doc.head_text}"),
                *_recordings_fact(doc),
            ]
        ),
        Spacer(1, 12 * mm),
    ]
    signer = f"Головуючий _______________________ {head.full_name}" if head else "Головуючий _______________________"
    out += [para(signer), Spacer(1, 10 * mm), para("Секретар ради _______________________ ________________________")]
    # the signatures stay on the page that names the journal they sign for, never on one of their own
    return [KeepTogether(out)]

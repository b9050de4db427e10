"""Ukrainian words of the documents: numbers with their nouns, dates and times, thresholds, alerts.

Everything a PDF prints that is not a name from the journal comes from here, so the wording of the
protocol and of the result sheet is one thing to read and to correct.

* Plurals follow Ukrainian agreement: 1, 21, 31 … голос; 2–4, 22–24 … голоси; 0, 5–20, 25 … голосів
  (``plural``).  ``votes(22)`` → «22 голоси», ``deputies(43)`` → «43 депутати».
* Times are Kyiv's clock (``Europe/Kyiv``, EET/EEST) from the journal's UTC milliseconds, so a
  protocol says the hour the hall saw wherever it is rendered; the tz database is Debian's or, failing
  that, the pinned ``tzdata`` package (the same rule as display.page_filters).
* A threshold is said the way a регламент says it: «більше половини від загального складу ради»,
  «не менше двох третин від тих, хто проголосував»; a fraction without a word is written as digits
  («більше 3/5 …»).
* Names sort in the order of the Ukrainian alphabet (Є, І, Ї, Ґ in their places, not before А as code
  points would put them); the apostrophe and the hyphen are skipped, as in a dictionary.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from chamber.core.threshold import Threshold
from chamber.core.values import Base, Outcome, VoteKind, VoteSubject
from chamber.core.voting import VoteResult

KYIV = ZoneInfo("Europe/Kyiv")

MONTHS_GENITIVE = (
    "січня",
    "лютого",
    "березня",
    "квітня",
    "травня",
    "червня",
    "липня",
    "серпня",
    "вересня",
    "жовтня",
    "листопада",
    "грудня",
)


def plural(n: int, one: str, few: str, many: str) -> str:
    """The noun form for ``n``: «1 голос», «2 голоси», «5 голосів», «11 голосів», «21 голос»."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def votes(n: int) -> str:
    return f"{n} {plural(n, 'голос', 'голоси', 'голосів')}"


def plural_count(n: int, one: str, few: str, many: str) -> str:
    """«1 файл», «3 файли», «12 файлів»."""
    return f"{n} {plural(n, one, few, many)}"


def deputies(n: int) -> str:
    return f"{n} {plural(n, 'депутат', 'депутати', 'депутатів')}"


def records(n: int) -> str:
    return f"{n} {plural(n, 'запис', 'записи', 'записів')}"


def roman(n: int) -> str:
    """Convocations are numbered in Roman numerals: «VIII скликання»."""
    out = []
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L")):
        count, n = divmod(n, value)
        out.append(letters * count)
    for value, letters in ((40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        count, n = divmod(n, value)
        out.append(letters * count)
    return "".join(out)


# --- time ------------------------------------------------------------------------------------------


def kyiv(ms: int) -> datetime:
    """The moment ``ms`` (milliseconds since the epoch, as journaled) on Kyiv's clock."""
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(KYIV)


def date_words(ms: int) -> str:
    """«2 грудня 2025 року»."""
    moment = kyiv(ms)
    return f"{moment.day} {MONTHS_GENITIVE[moment.month - 1]} {moment.year} року"


def date_short(ms: int) -> str:
    """«02.12.2025»."""
    return kyiv(ms).strftime("%d.%m.%Y")


def hm(ms: int) -> str:
    return kyiv(ms).strftime("%H:%M")


def hms(ms: int) -> str:
    return kyiv(ms).strftime("%H:%M:%S")


def duration(ms: int) -> str:
    """A speech's length: «4 хв 00 с», «45 с», «1 год 02 хв»."""
    seconds = max(0, ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} год {minutes:02d} хв"
    if minutes:
        return f"{minutes} хв {secs:02d} с"
    return f"{secs} с"


def clock_duration(ms: int) -> str:
    """A length as a clock shows it: «4:00», «1:02:03» (speeches against their limit)."""
    seconds = max(0, ms) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def pdf_date(ms: int) -> str:
    """The PDF date string (ISO 32000-1, 7.9.4) of ``ms`` on Kyiv's clock: ``D:20251202101500+02'00'``."""
    moment = kyiv(ms)
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"D:{moment:%Y%m%d%H%M%S}{sign}{hours:02d}'{mins:02d}'"


# --- thresholds ------------------------------------------------------------------------------------

#: fractions a регламент says in words (genitive: «більше половини», «не менше двох третин»)
_FRACTIONS = {
    (1, 2): "половини",
    (1, 3): "однієї третини",
    (2, 3): "двох третин",
    (1, 4): "однієї чверті",
    (3, 4): "трьох чвертей",
}

BASE_UK = {
    Base.COMPOSITION: "загального складу ради",
    Base.REGISTERED: "зареєстрованих депутатів",
    Base.CAST: "тих, хто проголосував",
    Base.CAST_WITHOUT_ABSTENTIONS: "тих, хто проголосував «за» або «проти»",
}


def threshold_words(threshold: Threshold) -> str:
    """«більше половини від загального складу ради», «не менше двох третин від …», «більше 3/5 від …»."""
    word = "більше" if threshold.strict else "не менше"
    fraction = _FRACTIONS.get((threshold.num, threshold.den), f"{threshold.num}/{threshold.den}")
    return f"{word} {fraction} від {BASE_UK[threshold.base]}"


def base_of(result: VoteResult) -> int:
    """The number the vote's fraction was taken of, as the core took it (chamber.core.threshold.base_value;
    a rating vote has no abstentions: every vote for a proposal is cast)."""
    base = result.threshold.base
    if base is Base.COMPOSITION:
        return result.composition
    if base is Base.REGISTERED:
        return result.registered
    if base is Base.CAST or result.kind is VoteKind.RATING:
        return sum(result.counts)
    return result.counts[0] + result.counts[1]


# --- what a deputy did ----------------------------------------------------------------------------

#: the value set of the open data (Resolution 835): always these words, whoever the deputy is
OUTCOME_UK = {outcome: outcome.label_uk for outcome in Outcome}


def proposal_choice(number: int, proposals: tuple[str, ...]) -> str:
    """A rating vote's choice: «2. 22 грудня»."""
    name = proposals[number - 1] if 0 < number <= len(proposals) else "?"
    return f"{number}. {name}"


# --- alerts and refused presses -----------------------------------------------------------------

ALERT_UK = {
    "card_elsewhere": "картку депутата вставлено в пульт, коли вона вже діє на іншому місці",
    "wrong_seat": "картку депутата вставлено не в пульт його місця",
    "unknown_card": "вставлено невідому картку",
    "seat_offline": "пульт не відповідає",
    "mic_unit_offline": "мікрофонний пульт не відповідає",
    "event_conflict": "конфлікт нумерації подій пульта (натискання враховано як нове)",
    "secret_without_basis": "таємне голосування відкрито без зазначення правової підстави",
    "internal_error": "внутрішня помилка системи",
}

#: a seat input refused by the core, as the protocol says it (codes from display.reasons.CORE_REASONS
#: that a seat can cause); an unknown code is printed as «відхилено (code)»
REFUSAL_UK = {
    "no_card": "натискання без картки в пульті",
    "no_presence": "натискання без утримання датчика присутності",
    "seat_offline": "натискання на пульті, що не на зв'язку",
    "vote_not_open": "натискання клавіші голосування поза голосуванням",
    "registration_not_open": "натискання «Реєстрація» поза реєстрацією",
    "not_a_choice": "клавіша, що не є варіантом цього голосування",
    "not_a_voter": "натискання депутата без права голосу",
    "choice_final": "спроба змінити вже враховане рішення",
    "not_chair": "клавіша пульта головуючого на пульті депутата",
    "speaking": "запис на виступ під час власного виступу",
    "not_allowed": "дія, недоступна на цьому етапі",
    "unknown_seat": "подія від невідомого пульта",
    "not_secret": "прихований вибір поза таємним голосуванням",
    "internal_error": "внутрішня помилка системи",
}

#: card refusals are alerts as well: the protocol prints them once, as alerts
CARD_REFUSALS = frozenset({"card_elsewhere", "wrong_seat", "unknown_card"})


def alert_words(kind: str) -> str:
    return ALERT_UK.get(kind, f"інше сповіщення ({kind})")


def refusal_words(reason: str) -> str:
    return REFUSAL_UK.get(reason, f"відхилено ({reason})")


# --- names ---------------------------------------------------------------------------------------

UK_ALPHABET = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
_RANK = {letter: i for i, letter in enumerate(UK_ALPHABET)}
_SKIPPED = frozenset("'’ʼ-‐")


@lru_cache(maxsize=8192)  # a protocol sorts the same 450 names once per vote: 45 000 keys for 100 votes
def name_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key of a full name in Ukrainian alphabetical order (case-insensitive; a letter outside the
    alphabet sorts after it, by code point)."""
    out: list[tuple[int, int | str]] = []
    for char in name.lower():
        if char in _SKIPPED:
            continue
        if char == " ":  # the surname ends: «Бойко Андрій» before «Бойко-Рибальченко Іван»
            out.append((0, -1))
            continue
        rank = _RANK.get(char)
        out.append((0, rank) if rank is not None else (1, char))
    return tuple(out)


# --- votes ---------------------------------------------------------------------------------------

#: what a vote adopts, after «Голосували:»
SUBJECT_WORDS = {
    VoteSubject.BASIS: "за основу",
    VoteSubject.WHOLE: "в цілому",
    VoteSubject.PROCEDURAL: "процедурне питання",
    VoteSubject.AMENDMENT: "поправку",
}

#: the heading of a vote's result sheet
SHEET_TITLE = {
    VoteKind.ROLL_CALL: "Результати поіменного голосування",
    VoteKind.OPEN: "Результати відкритого голосування",
    VoteKind.SECRET: "Результати таємного голосування",
    VoteKind.RATING: "Результати рейтингового голосування",
}

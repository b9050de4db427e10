"""An alert's detail in words for the secretary: Ukrainian and English, from the core's English detail.

The core files an alert (``chamber.core.effects.Alert``; the engine files ``store_failed`` and
``store_restored`` itself, as the store stops and comes back) with a stable ``kind`` and a ``detail`` written
in English for the log («card of deputy 7 inserted at seat 12 while active at 3»).  The console shows
the secretary a sentence in the page's language, so :func:`words` reads the numbers and names out of
the detail with one pattern per kind and puts them into a Ukrainian and an English sentence.  The
patterns follow the core's wording (tests/test_web_commands.py makes the core raise every kind and
checks that each is read); a detail no pattern reads (a kind added later, or reworded) is still shown
in Ukrainian — the kind's sentence, with the engine's own text after it marked as English — never as
English alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Words = tuple[str, str]  # (uk, en)

_N = r"(\d+)"


def _unknown_card(m: re.Match[str]) -> Words:
    uid, seat = m.group(1), m.group(2)
    return (
        f"Картку {uid} на місці {seat} не закріплено за жодним депутатом",
        f"Card {uid} at seat {seat} belongs to no deputy",
    )


def _card_elsewhere(m: re.Match[str]) -> Words:
    seat, other = m.group(2), m.group(3)
    return (
        f"Картку вставлено в пульт місця {seat}, а на місці {other} уже діє картка того самого депутата",
        f"Card inserted at seat {seat} while the same deputy is active at seat {other}",
    )


def _wrong_seat(m: re.Match[str]) -> Words:
    seat, home = m.group(2), m.group(3)
    return (
        f"Картку вставлено в пульт місця {seat}, а за розсадкою цей депутат сидить на місці {home}",
        f"Card inserted at seat {seat}; the deputy's assigned seat is {home}",
    )


def _seat_offline(m: re.Match[str]) -> Words:
    return f"Пульт місця {m.group(1)} перестав відповідати", f"The console of seat {m.group(1)} stopped answering"


def _mic_unit_offline(m: re.Match[str]) -> Words:
    seat, speaking = m.group(1), bool(m.group(2))
    if speaking:
        return (
            f"Мікрофонний пульт місця {seat} не відповідає, а цьому місцю надано слово",
            f"The microphone unit of seat {seat} is silent while its speaker has the floor",
        )
    return f"Мікрофонний пульт місця {seat} не відповідає", f"The microphone unit of seat {seat} is silent"


def _event_conflict(m: re.Match[str]) -> Words:
    seat, seq, boot = m.group(1), m.group(2), m.group(3)
    return (
        f"Місце {seat}: подія пульта № {seq} (запуск {boot}) надійшла знову з іншою клавішею або надто давня, "
        "щоб бути повтором; її враховано як нове натискання. Пульт міг перезапуститися, не повідомивши про "
        "це, — перевірте його",
        f"Seat {seat}: console event {seq} (boot {boot}) came again with another key, or from further back "
        "than a console repeats; counted as a new press. The console may have restarted without saying so: "
        "check it",
    )


def _secret_without_basis(m: re.Match[str]) -> Words:
    return (
        "Таємне голосування відкрито без зазначення правової підстави",
        "A secret ballot was opened without a legal basis stated",
    )


def _internal_error(m: re.Match[str]) -> Words:
    # the exception's own text is a programmer's: it stays as it is, inside a sentence in the language
    where, error = m.group(1), m.group(2)
    if where:
        return f"Внутрішня помилка під час обробки {where}: {error}", f"Internal error handling {where}: {error}"
    return f"Внутрішня помилка на спливанні строку: {error}", f"Internal error at a deadline: {error}"


def _store_failed(m: re.Match[str]) -> Words:
    # the database's own error text stays as it is, inside a sentence in the language
    return (
        f"Журнал засідання не вдається записати ({m.group(1)}). Натискання пультів не підтверджуються, "
        "пульти їх зберігають; вони будуть враховані, щойно сховище запрацює. Перевірте базу даних і диск",
        f"The sitting's journal cannot be written ({m.group(1)}). Presses are not acknowledged; the consoles "
        "keep them and they count as soon as the store works again. Check the database and the disk",
    )


def _store_restored(m: re.Match[str]) -> Words:
    return (
        f"Журнал засідання знову записується (невдалих спроб: {m.group(1)}); збережені пультами натискання "
        "враховуються",
        f"The sitting's journal is written again ({m.group(1)} failed attempts); the presses the consoles "
        "kept are taken now",
    )


#: kind -> (the core's detail, the sentences made of it)
PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[re.Match[str]], Words]]] = {
    "unknown_card": (re.compile(rf"unknown card (\S+) at seat {_N}"), _unknown_card),
    "card_elsewhere": (
        re.compile(rf"card of deputy {_N} inserted at seat {_N} while active at {_N}"),
        _card_elsewhere,
    ),
    "wrong_seat": (re.compile(rf"card of deputy {_N} inserted at seat {_N}; assigned seat is {_N}"), _wrong_seat),
    "seat_offline": (re.compile(rf"seat {_N} went offline"), _seat_offline),
    "mic_unit_offline": (
        re.compile(rf"the microphone unit of seat {_N} is silent( while its speaker has the floor)?"),
        _mic_unit_offline,
    ),
    "event_conflict": (re.compile(rf"seat {_N}: console event {_N} \(boot {_N}\) came again"), _event_conflict),
    "secret_without_basis": (re.compile(r"secret ballot opened without a legal basis"), _secret_without_basis),
    "store_failed": (re.compile(r"the journal cannot be written: (.*?); presses are not", re.DOTALL), _store_failed),
    "store_restored": (re.compile(rf"the journal is written again after {_N} failed"), _store_restored),
    "internal_error": (
        re.compile(r"internal error (?:handling (\w+)|at a deadline): (.*)", re.DOTALL),
        _internal_error,
    ),
}

#: The kind's own sentence, for a detail no pattern reads.
KINDS: dict[str, Words] = {
    "unknown_card": ("Невідома картка", "Unknown card"),
    "card_elsewhere": ("Картка вже на іншому місці", "Card already active at another seat"),
    "wrong_seat": ("Картка не на своєму місці", "Card at the wrong seat"),
    "seat_offline": ("Пульт не відповідає", "Console not answering"),
    "mic_unit_offline": ("Мікрофонний пульт не відповідає", "Microphone unit not answering"),
    "event_conflict": ("Конфлікт нумерації подій пульта", "Console event numbering conflict"),
    "secret_without_basis": ("Таємне голосування без правової підстави", "Secret ballot without a legal basis"),
    "internal_error": ("Внутрішня помилка", "Internal error"),
    "store_failed": ("Журнал засідання не записується", "The sitting's journal cannot be written"),
    "store_restored": ("Журнал засідання знову записується", "The sitting's journal is written again"),
}


def read(kind: str, detail: str) -> Words | None:
    """The sentences of a detail its kind's pattern reads, or None."""
    known = PATTERNS.get(kind)
    if known is None:
        return None
    match = known[0].search(detail)
    return None if match is None else known[1](match)


def words(kind: str, detail: str) -> Words:
    """(uk, en) of an alert's detail; never English alone in the Ukrainian one."""
    got = read(kind, detail)
    if got is not None:
        return got
    uk, en = KINDS.get(kind, ("Сповіщення", "Alert"))
    if not detail:
        return uk, en
    return f"{uk}. Подробиці англійською: {detail}", f"{en}: {detail}"

"""Jinja filters of the server-rendered pages (the public pages): Kyiv's clock and the Ukrainian alphabet.

Times
-----
The engine keeps wall-clock milliseconds (UTC).  A council's record is read in its own time, so the
public pages write every time as Kyiv local time (``Europe/Kyiv``: EET, EEST in summer) on the server:
they are complete without JavaScript, and read the same from anywhere.  The zone comes from the
system's tz database (Debian's ``tzdata``) or, where there is none, from the PyPI ``tzdata`` package
(a dependency of this project), which :mod:`zoneinfo` falls back to.

* ``{{ ms|kyiv_time }}`` → ``"10:15"``
* ``{{ ms|kyiv_date }}`` → ``"2026-03-12"``
* ``{{ ms|kyiv_iso }}``  → ``"2026-03-12T10:15:00+02:00"`` (for ``<time datetime>``)

Each gives ``""`` for a missing time (``None`` or 0: not happened yet).

Names
-----
Jinja's ``sort`` compares code points, which puts Є, І and Ї (U+0404..U+0407) before А: «Іваненко»
would head a list of deputies.  ``{{ items|sort_uk('name') }}`` sorts in the order of the Ukrainian
alphabet (а б в г ґ д е є ж з и і ї й к … ю я; the apostrophe and the hyphen are skipped, as in a
dictionary), case-insensitively; the attribute is a path as in Jinja's ``sort`` (``'1.name'``).

Words said of one deputy
------------------------
``{{ t|word('one_absent', deputy) }}`` is «Відсутній» or, for a woman, «Відсутня» (display.i18n.word):
the deputy's ``gender`` where the page was given one (display.state.chamber_of), else read from the
name (display.state.gender_of; the static site's roster comes from the journal, which has no gender).

``install(app)`` registers all five.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from jinja2 import Environment, pass_environment
from jinja2.filters import make_attrgetter

from display import i18n
from display.state import gender_of

KYIV = ZoneInfo("Europe/Kyiv")
UK_ALPHABET = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"
_RANK = {letter: i for i, letter in enumerate(UK_ALPHABET)}
_SKIPPED = frozenset("'’ʼ-‐")


def kyiv(ms: int | float | None) -> datetime | None:
    """The moment ``ms`` (milliseconds since the epoch) on Kyiv's clock; None for no time."""
    if not ms or isinstance(ms, bool):
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(KYIV)


def kyiv_time(ms: int | float | None) -> str:
    moment = kyiv(ms)
    return "" if moment is None else moment.strftime("%H:%M")


def kyiv_date(ms: int | float | None) -> str:
    moment = kyiv(ms)
    return "" if moment is None else moment.strftime("%Y-%m-%d")


def kyiv_iso(ms: int | float | None) -> str:
    moment = kyiv(ms)
    return "" if moment is None else moment.isoformat(timespec="seconds")


def uk_key(text: str) -> tuple[tuple[tuple[int, int], ...], str]:
    """A sort key in the Ukrainian alphabet's order: spaces first (a surname before a longer one), then
    digits, the Cyrillic letters by the alphabet, then anything else by code point; the text itself
    breaks ties (so the order is total and the same on every run)."""
    ranks: list[tuple[int, int]] = []
    for ch in text.casefold():
        if ch in _SKIPPED:
            continue
        if ch.isspace():
            ranks.append((0, 0))
        elif ch.isdigit():
            ranks.append((1, ord(ch)))
        elif ch in _RANK:
            ranks.append((2, _RANK[ch]))
        else:
            ranks.append((3, ord(ch)))
    return tuple(ranks), text


@pass_environment
def sort_uk(environment: Environment, items: Iterable[Any], attribute: str | int | None = None) -> list[Any]:
    """``items`` sorted by ``attribute`` (or themselves) in the Ukrainian alphabet's order."""
    get = make_attrgetter(environment, attribute)
    return sorted(items, key=lambda item: uk_key(str(get(item))))


def word(t: dict[str, str], key: str, deputy: Any = None) -> str:
    """The string ``key`` of ``t`` in the grammatical gender of ``deputy`` (a dict with ``gender`` or
    at least ``name``; None: the plain form)."""
    gender = None
    if isinstance(deputy, dict):
        gender = deputy.get("gender") or gender_of(str(deputy.get("name") or ""))
    return i18n.word(t, key, gender)


def install(app: Flask) -> None:
    """Register the filters on the app's Jinja environment."""
    app.jinja_env.filters.update(
        kyiv_time=kyiv_time, kyiv_date=kyiv_date, kyiv_iso=kyiv_iso, sort_uk=sort_uk, word=word
    )

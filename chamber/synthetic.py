"""A synthetic council of any size: plausible Ukrainian names on a hemicycle, for benchmarks and tests.

``config_text(seats)`` is a complete, valid config.toml (the schema of the example ``config.toml``) of a
chamber of ``seats`` seats: ``seats - 1`` deputies and the head (who votes and counts), with names made of
Ukrainian surnames, first names and patronymics (the feminine forms where Ukrainian has them, a few double
surnames, so that long names wrap in the documents and on the hall screen), seven factions and the deputies
outside any faction in proportion to a 450-seat parliament, one card each, the seats on up to 11 arcs
around the presidium plus the chair's seat, and lines of at most 57 consoles.  Everything comes from a
fixed seed: the same text on every run and machine.  ``load(seats)`` parses it.

For 450 seats it is exactly the chamber the tests have always used (tests/fixtures/council_450.py is a
thin wrapper): the same names, cards, seats and factions; ``chamber bench export`` journals sittings of
it (protocol_export.bench_export), which is why it lives here and not under tests/ (not installed).
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chamber.config import Config

SEED = 450
PARLIAMENT = 450  # the size the faction table and the row count below are drawn for
ROWS = 11  # arcs of a 450-seat hall
PER_LINE = 57  # consoles on one RS-485 line (450 seats: 8 lines)

# surnames that are the same for women and men
NEUTRAL = (
    "Шевченко", "Коваленко", "Бондаренко", "Ткаченко", "Кравченко", "Олійник", "Шевчук", "Поліщук", "Бойко",
    "Мельник", "Лисенко", "Савченко", "Руденко", "Марченко", "Мороз", "Петренко", "Гончаренко", "Кузьменко",
    "Павленко", "Кравчук", "Левченко", "Клименко", "Харченко", "Литвиненко", "Романенко", "Яковенко", "Гаврилюк",
    "Онищенко", "Демченко", "Захарченко", "Костенко", "Бабенко", "Приходько", "Панченко", "Карпенко", "Сидоренко",
    "Іваненко", "Федоренко", "Головко", "Вакуленко", "Дмитренко", "Остапенко", "Зінченко", "Семенюк", "Білоус",
    "Стельмах", "Гордієнко", "Присяжнюк", "Вовк", "Швець", "Ковальчук", "Дорошенко", "Пономаренко", "Антоненко",
    "Юрченко", "Пилипенко", "Назаренко", "Лук'яненко", "Максименко", "Кириленко", "Білик", "Таран", "Гуменюк",
    "Дячук", "Осадчук", "Тимощук", "Федорчук", "Романюк", "Сидорчук", "Мартинюк", "Кушнір", "Гнатюк", "Ярошенко",
    "Нестеренко", "Прокопчук", "Мазур", "Коломієць", "Гребенюк", "Кучер", "Бурлака", "Кравців"
)  # fmt: skip
# surnames with a feminine form: (masculine, feminine)
GENDERED = (
    ("Ковальський", "Ковальська"),
    ("Вишневський", "Вишневська"),
    ("Заболотний", "Заболотна"),
    ("Липовецький", "Липовецька"),
    ("Соловйов", "Соловйова"),
    ("Волошин", "Волошина"),
    ("Городецький", "Городецька"),
    ("Чорний", "Чорна"),
    ("Яворський", "Яворська"),
)
DOUBLE = ("Костюк-Валюжинич", "Петрів-Загорулько", "Стороженко-Мирошниченко", "Бойко-Рибальченко")
MALE = (
    "Андрій", "Олександр", "Петро", "Іван", "Микола", "Василь", "Сергій", "Віталій", "Юрій", "Богдан", "Тарас",
    "Остап", "Дмитро", "Роман", "Максим", "Ярослав", "Олег", "Володимир", "Григорій", "Степан", "Євген",
    "Святослав", "Ігор", "Михайло", "Анатолій"
)  # fmt: skip
FEMALE = (
    "Олена", "Ірина", "Наталія", "Оксана", "Тетяна", "Марія", "Юлія", "Галина", "Світлана", "Людмила", "Ганна",
    "Ольга", "Леся", "Вікторія", "Христина", "Софія", "Дарина", "Лариса", "Інна", "Євгенія"
)  # fmt: skip
# fathers' names and their patronymics: (masculine, feminine)
PATRONYMICS = (
    ("Андрійович", "Андріївна"),
    ("Олександрович", "Олександрівна"),
    ("Петрович", "Петрівна"),
    ("Іванович", "Іванівна"),
    ("Миколайович", "Миколаївна"),
    ("Васильович", "Василівна"),
    ("Сергійович", "Сергіївна"),
    ("Юрійович", "Юріївна"),
    ("Богданович", "Богданівна"),
    ("Тарасович", "Тарасівна"),
    ("Дмитрович", "Дмитрівна"),
    ("Володимирович", "Володимирівна"),
    ("Григорович", "Григорівна"),
    ("Степанович", "Степанівна"),
    ("Михайлович", "Михайлівна"),
    ("Анатолійович", "Анатоліївна"),
    ("Ярославович", "Ярославівна"),
    ("Олегович", "Олегівна"),
)
# fictional factions and their sizes; "" is the deputies outside any faction (449 deputies and the chair)
FACTIONS = (
    ("Народний вибір", 168),
    ("Європейський курс", 72),
    ("Громада і закон", 54),
    ("Відродження регіонів", 44),
    ("Справедливість", 38),
    ("Єдність", 31),
    ("Голос громад", 22),
    ("", 20),
)


def council_name(seats: int) -> str:
    """«Навчальна палата на 450 місць» (43 місця, 41 місце: the plural as Ukrainian wants it)."""
    last, last2 = seats % 10, seats % 100
    word = "місце" if last == 1 and last2 != 11 else "місця" if 2 <= last <= 4 and not 12 <= last2 <= 14 else "місць"
    return f"Навчальна палата на {seats} {word}"


def _person(rng: random.Random, taken: set[str]) -> str:
    while True:
        female = rng.random() < 0.32
        pick = rng.random()
        if pick < 0.02:
            surname = rng.choice(DOUBLE)
        elif pick < 0.14:
            surname = rng.choice(GENDERED)[1 if female else 0]
        else:
            surname = rng.choice(NEUTRAL)
        first = rng.choice(FEMALE if female else MALE)
        patronymic = rng.choice(PATRONYMICS)[1 if female else 0]
        name = f"{surname} {first} {patronymic}"
        if name not in taken:
            taken.add(name)
            return name


def _rows(seats: int) -> int:
    """Arcs for ``seats - 1`` deputy seats: 11 for a parliament, about 40 seats an arc below that."""
    return max(1, min(ROWS, round((seats - 1) / 41)))


def _hemicycle(seats: int) -> list[tuple[float, float]]:
    """The deputy seats (all but the chair's), front row first, each row from the viewer's left to right
    (as the chair sees it: x to the chair's right, y away from the chair, who sits at (0, 0))."""
    wanted = seats - 1
    rows = _rows(seats)
    weights = [24 + 5 * r for r in range(rows)]  # rows further back are longer
    counts = [round(w * wanted / sum(weights)) for w in weights]
    counts[-1] += wanted - sum(counts)
    out: list[tuple[float, float]] = []
    for row, n in enumerate(counts):
        radius = 3.0 + 0.9 * row
        for i in range(n):
            angle = math.pi * (0.06 + 0.88 * i / max(n - 1, 1))
            out.append((round(-radius * math.cos(angle), 3), round(radius * math.sin(angle), 3)))
    return out


def faction_sizes(deputies: int) -> list[tuple[str, int]]:
    """FACTIONS scaled to ``deputies`` (largest remainders; exactly FACTIONS for 449)."""
    total = sum(size for _, size in FACTIONS)
    exact = [size * deputies / total for _, size in FACTIONS]
    sizes = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (sizes[i] - exact[i], i))
    for i in by_remainder[: deputies - sum(sizes)]:
        sizes[i] += 1
    return [(name, n) for (name, _), n in zip(FACTIONS, sizes, strict=True)]


def config_text(seats: int = PARLIAMENT) -> str:
    """The whole config.toml of a ``seats``-seat chamber (deterministic; 2 to 10 000 seats)."""
    if not 2 <= seats <= 10_000:
        raise ValueError(f"a synthetic chamber has 2 to 10000 seats, not {seats}")
    rng = random.Random(SEED)
    lines = math.ceil(seats / PER_LINE)
    out = [
        f"# A {seats}-seat chamber made by chamber/synthetic.py: fictional people, cards and codes.",
        "[council]",
        f'name = "{council_name(seats)}"',
        "convocation = 9",
        f"composition = {seats}",
        "head_votes = true",
        "head_in_composition = true",
        "",
    ]
    for n in range(lines):
        adapter, port = divmod(n, 4)  # four-port USB adapters
        out += [
            "[[lines]]",
            f'id = "{_line_id(n)}"',
            f'port = "/dev/serial/by-id/usb-FTDI_Quad_RS485_FT4{adapter}50-if0{port}-port0"',
            "baud = 115200",
            "",
        ]
    hemicycle = _hemicycle(seats)
    per_line = math.ceil(seats / lines)
    for i, (x, y) in enumerate([*hemicycle, (0.0, 0.0)], start=1):
        line, unit = divmod(i - 1, per_line)
        out += ["[[seats]]", f"id = {i}", f'line = "{_line_id(line)}"', f"unit = {unit + 1}"]
        out += [f"x = {x}", f"y = {y}"]
        if i == seats:
            out.append("chair = true")
        out.append("")
    # factions sit in wedges, left to right as the chair sees them: seats in the order of their angle
    by_angle = sorted(range(1, seats), key=lambda s: (math.atan2(hemicycle[s - 1][1], -hemicycle[s - 1][0]), s))
    factions = [name for name, size in faction_sizes(seats - 1) for _ in range(size)]
    assert len(factions) == seats - 1
    taken: set[str] = set()
    cards: set[str] = set()
    for deputy in range(1, seats + 1):
        name = _person(rng, taken)
        while (card := f"{rng.getrandbits(32):08X}") in cards:
            pass
        cards.add(card)
        seat = seats if deputy == seats else by_angle[deputy - 1]
        faction = "" if deputy == seats else factions[deputy - 1]
        out += [
            "[[deputies]]",
            f"id = {deputy}",
            f'full_name = "{name}"',
            f'faction = "{faction}"',
            f'cards = ["{card}"]',
            f"seat = {seat}",
            f'open_data_id = "np9-{deputy:03d}"',
        ]
        if deputy == seats:
            out.append('role = "head"  # the chair of the chamber, at the presidium')
        out.append("")
    out += ["[rules]", "vote_duration_s = 30", "max_open_mics = 4", ""]
    return "\n".join(out)


def _line_id(n: int) -> str:
    """A, B, ... Z, then L27, L28, ...: the letters of a hall's eight lines stay as they were."""
    return chr(ord("A") + n) if n < 26 else f"L{n + 1}"


def load(seats: int = PARLIAMENT) -> Config:
    """The ``seats``-seat chamber as a ``chamber.config.Config``."""
    from chamber.config import parse_config

    return parse_config(config_text(seats), f"council_{seats}.toml")

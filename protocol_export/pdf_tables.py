"""Type styles and tables of the documents.

One look for every table: DejaVu Sans Condensed 9 pt, a header row in bold on grey that is repeated at
the top of every page a table runs onto (platypus ``LongTable`` with ``repeatRows=1``: a list of 450
names stays readable on its ninth page), thin rules, every other row shaded so that a reader's eye
stays on the line from a name to its choice.

A cell's text is put in as a plain string when it fits its column (fast: a protocol of a 450-seat
sitting has tens of thousands of cells) and as a wrapping Paragraph when it does not, so a long name
or title breaks onto a second line instead of running into the next column.  Text from the journal
(names, titles, reasons) is escaped before it reaches Paragraph markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, LongTable, Paragraph, Table, TableStyle

from protocol_export import fonts
from protocol_export.pdf_page import WIDTH, escape

fonts.register()

CELL_SIZE = 9.0
CELL_PAD = 3.0  # left and right padding of a table cell, pt
TWO_GROUPS_SIZE = 8.5  # a result sheet's two halves: a little smaller, so that 40-odd names fit one page

BODY = ParagraphStyle("body", fontName=fonts.SANS, fontSize=10, leading=13.5)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=9, leading=12)
COUNCIL = ParagraphStyle("council", parent=BODY, fontName=fonts.SANS_BOLD, fontSize=13, leading=17, alignment=TA_CENTER)
CENTER = ParagraphStyle("center", parent=BODY, fontSize=11, leading=15, alignment=TA_CENTER)
TITLE = ParagraphStyle(
    "title", parent=BODY, fontName=fonts.SANS_BOLD, fontSize=16, leading=21, alignment=TA_CENTER, spaceBefore=8
)
RIGHT = ParagraphStyle("right", parent=BODY, alignment=TA_RIGHT)
H1 = ParagraphStyle(
    "h1", parent=BODY, fontName=fonts.SANS_BOLD, fontSize=12.5, leading=16, spaceBefore=14, spaceAfter=6, keepWithNext=1
)
H2 = ParagraphStyle(
    "h2", parent=BODY, fontName=fonts.SANS_BOLD, fontSize=11, leading=14.5, spaceBefore=12, spaceAfter=4, keepWithNext=1
)
LABEL = ParagraphStyle("label", parent=BODY, fontSize=9.5, leading=12.5, textColor=colors.Color(0.3, 0.3, 0.3))
VALUE = ParagraphStyle("value", parent=BODY, fontSize=9.5, leading=12.5)
CELL = ParagraphStyle("cell", fontName=fonts.COND, fontSize=CELL_SIZE, leading=11)
CELL_BOLD = ParagraphStyle("cell_bold", parent=CELL, fontName=fonts.COND_BOLD)
VERDICT = ParagraphStyle("verdict", parent=BODY, fontName=fonts.SANS_BOLD, fontSize=13, leading=17)

GRID = colors.Color(0.55, 0.55, 0.55)
HEADER_BG = colors.Color(0.86, 0.86, 0.86)
SHADE = colors.Color(0.95, 0.95, 0.95)


def para(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph of plain text (escaped: journal text is never markup)."""
    return Paragraph(escape(text), style)


def rich(markup: str, style: ParagraphStyle = BODY) -> Paragraph:
    """A paragraph whose caller wrote the markup (``<b>``) and escaped the journal's text in it."""
    return Paragraph(markup, style)


#: a table cell: a str, or a Flowable (reportlab has no type hints, so mypy sees Any either way)
Cell = object


@lru_cache(maxsize=16384)  # the same names and choices fill every vote's table: measured once each
def _width(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size))


def cell(text: str, width: float, *, bold: bool = False, size: float = CELL_SIZE) -> Cell:
    """``text`` as it fits a column ``width`` pt wide: itself, or a Paragraph that wraps."""
    font = fonts.COND_BOLD if bold else fonts.COND
    if "\n" not in text and _width(text, font, size) <= width - 2 * CELL_PAD - 0.5:
        return text
    style = CELL_BOLD if bold else CELL
    if size != style.fontSize:
        style = ParagraphStyle(f"{style.name}_{size}", parent=style, fontSize=size, leading=size + 2)
    wrapped: Cell = Paragraph(escape(text).replace("\n", "<br/>"), style)
    return wrapped


def grid(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    *,
    right: Sequence[int] = (),
    bold: Sequence[int] = (),
    center: Sequence[int] = (),
) -> LongTable:
    """A table with a repeated header row; ``widths`` in pt (scaled to the text block if they sum to
    more), ``right``/``center``: columns aligned so, ``bold``: columns in bold."""
    total = sum(widths)
    if total > WIDTH:
        widths = [w * WIDTH / total for w in widths]
    data: list[list[Cell]] = [[cell(h, w, bold=True) for h, w in zip(header, widths, strict=True)]]
    for row in rows:
        data.append([cell(text, w, bold=i in bold) for i, (text, w) in enumerate(zip(row, widths, strict=True))])
    table = LongTable(data, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
    table.setStyle(_style(len(data), right=right, bold=bold, center=center))
    return table


def _style(
    n_rows: int, *, right: Sequence[int] = (), bold: Sequence[int] = (), center: Sequence[int] = ()
) -> TableStyle:
    commands: list[tuple[object, ...]] = [
        ("FONT", (0, 0), (-1, -1), fonts.COND, CELL_SIZE, 11),
        ("FONT", (0, 0), (-1, 0), fonts.COND_BOLD, CELL_SIZE, 11),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.4),
    ]
    if n_rows > 2:
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, SHADE]))
    for col in right:
        commands.append(("ALIGN", (col, 1), (col, -1), "RIGHT"))
    for col in center:
        commands.append(("ALIGN", (col, 0), (col, -1), "CENTER"))
    for col in bold:
        commands.append(("FONT", (col, 1), (col, -1), fonts.COND_BOLD, CELL_SIZE, 11))
    return TableStyle(commands)


def facts(rows: Sequence[tuple[str, str]], label_width: float = 50 * mm) -> Table:
    """Label–value lines without rules: «Проєкт рішення:  № 757/2».  Values wrap; labels are grey."""
    data = [[para(label, LABEL), para(value, VALUE)] for label, value in rows]
    table = Table(data, colWidths=[label_width, WIDTH - label_width], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), fonts.SANS, 9.5),  # a Table sets its font even for Paragraph cells
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 4),
                ("TOPPADDING", (0, 0), (-1, -1), 0.8),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0.8),
            ]
        )
    )
    return table


def counts(header: Sequence[str], values: Sequence[str], *, bold_first: bool = False) -> Table:
    """One row of counts under their names, centred, in a larger face: the numbers a reader looks for."""
    n = len(header)
    width = WIDTH
    data = [list(header), list(values)]
    table = Table(data, colWidths=[width / n] * n, hAlign="LEFT")
    commands: list[tuple[object, ...]] = [
        ("FONT", (0, 0), (-1, 0), fonts.COND_BOLD, CELL_SIZE, 11),
        ("FONT", (0, 1), (-1, 1), fonts.SANS_BOLD, 13, 16),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_BG),
        ("GRID", (0, 0), (-1, -1), 0.4, GRID),
        ("ALIGN", (0, 0), (-1, -1), "CENTER"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("TOPPADDING", (0, 1), (-1, 1), 3),
        ("BOTTOMPADDING", (0, 1), (-1, 1), 5),
    ]
    if bold_first:
        commands.append(("BOX", (0, 0), (0, -1), 1.2, colors.black))
    table.setStyle(TableStyle(commands))
    return table


def verdict(text: str, *, adopted: bool, note: str = "") -> Table:
    """The result in a box: ПРИЙНЯТО with a heavy frame, НЕ ПРИЙНЯТО / СКАСОВАНО with a light one (a
    printed protocol is black and white: the frame, not a colour, tells them apart at a glance);
    ``note`` (a cancellation's reason) under it in the box."""
    content: list[Flowable] = [para(text, VERDICT)]
    if note:
        content.append(para(note, VALUE))
    table = Table([[content]], colWidths=[WIDTH], hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), fonts.SANS_BOLD, 13),
                ("BOX", (0, 0), (-1, -1), 2 if adopted else 0.8, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return table


def two_groups(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> Table:
    """A short list in two side-by-side halves read downwards (the left half first): a result sheet of
    a council of 40-odd names fits one page so.  ``widths`` are one half's columns."""
    half = (len(rows) + 1) // 2
    gap = 4 * mm
    scale = min(1.0, (WIDTH - gap) / 2 / sum(widths))
    widths = [w * scale for w in widths]
    n = len(widths)
    empty = [""] * n
    size = TWO_GROUPS_SIZE
    data: list[list[Cell]] = [
        [*(cell(h, w, bold=True, size=size) for h, w in zip(header, widths, strict=True)), ""] * 2
    ]
    data[0] = data[0][:-1]
    for i in range(half):
        left = rows[i]
        right = rows[half + i] if half + i < len(rows) else empty
        data.append(
            [
                *(cell(t, w, size=size) for t, w in zip(left, widths, strict=True)),
                "",
                *(cell(t, w, size=size) for t, w in zip(right, widths, strict=True)),
            ]
        )
    table = Table(data, colWidths=[*widths, gap, *widths], repeatRows=1, hAlign="LEFT")
    commands: list[tuple[object, ...]] = [
        ("FONT", (0, 0), (-1, -1), fonts.COND, size, size + 2),
        ("FONT", (0, 0), (-1, 0), fonts.COND_BOLD, size, size + 2),
        ("ALIGN", (0, 1), (0, -1), "RIGHT"),
        ("ALIGN", (n + 1, 1), (n + 1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 1.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.0),
    ]
    # an odd count leaves the right half's last row empty: no rules, no shade there
    for first, bottom in ((0, half), (n + 1, half - len(rows) % 2)):
        last = first + n - 1
        commands += [
            ("BACKGROUND", (first, 0), (last, 0), HEADER_BG),
            ("GRID", (first, 0), (last, bottom), 0.4, GRID),
            ("ROWBACKGROUNDS", (first, 1), (last, bottom), [colors.white, SHADE]),
        ]
    table.setStyle(TableStyle(commands))
    return table

"""Type styles and tables of the documents.

One look for every table: DejaVu Sans Condensed 9 pt, a header row in bold on grey that is repeated at
the top of every page a table runs onto (platypus ``LongTable`` with ``repeatRows=1``: a list of 450
names stays readable on its ninth page), thin rules, every other row shaded so that a reader's eye
stays on the line from a name to its choice.

A cell's text is put in as a plain string when it fits its column (fast: a protocol of a 450-seat
sitting has tens of thousands of cells) and as a wrapping Paragraph when it does not, so a long name
or title breaks onto a second line instead of running into the next column.  Text from the journal
(names, titles, reasons) is escaped before it reaches Paragraph markup.

Every table here is a :class:`FastTable` (or :class:`FastLongTable`): a plain-string cell is drawn by
writing the text operators reportlab's ``drawString`` would write, with the part that depends only
on the font and the text (``PDFTextObject._formatText``: the font subset switch and the encoded
string) made by reportlab once per canvas and reused.  A protocol of 100 votes of 450 names draws
~190 000 cells from a few thousand distinct texts, and reportlab's own path re-encodes each one through
a fresh text object: it was a third of the render.  The bytes are the same as reportlab's own
(``tests/test_pdf_protocol.py`` renders with both and compares); a cell that is not a single line of
plain text, middle-aligned, without a link, goes through reportlab's ``_drawCell`` unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.rl_accel import fp_str
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


#: Off: every table built and every cell drawn reportlab's own way (the tests compare the bytes of both).
FAST = True
_TEXTS = "_chamber_cell_texts"  # the canvas attribute holding its cache of formatted texts


def _text_operators(canv: Any, text: str) -> tuple[str, float]:
    """What ``drawString`` writes between the origin and ``T*`` for ``text`` in the canvas's current
    font, and the text's width: made by reportlab's own text object the first time on this canvas.

    Safe to reuse because a TrueType font's subset codes are assigned to a character once per document
    (``TTFont.splitString``) and never change after, and a fresh text object always starts with no
    current subset, so it always writes the font switch first: the result depends on the document, the
    font, its size and leading, and the text alone."""
    cache: dict[tuple[str, float, float, str], tuple[str, float]] | None = canv.__dict__.get(_TEXTS)
    if cache is None:
        cache = {}
        setattr(canv, _TEXTS, cache)
    key = (canv._fontname, canv._fontsize, canv._leading, text)
    made = cache.get(key)
    if made is None:
        made = cache[key] = (canv.beginText()._formatText(text), stringWidth(text, canv._fontname, canv._fontsize))
    return made


class _FastCells:
    """``Table._drawCell`` with a fast path for a single line of plain text (see the module docstring)."""

    def _drawCell(self, cellval: Any, cellstyle: Any, pos: tuple[float, float], size: tuple[float, float]) -> None:
        just = cellstyle.alignment
        canv = self.canv  # type: ignore[attr-defined]
        if (
            not FAST
            or type(cellval) is not str
            or "\n" in cellval
            or cellstyle.valign != "MIDDLE"
            or just not in ("LEFT", "RIGHT", "CENTER", "CENTRE")
            or cellstyle.href
            or cellstyle.destination
            or cellstyle.direction
            or cellstyle.shaping
            or not canv.bottomup
        ):
            super()._drawCell(cellval, cellstyle, pos, size)  # type: ignore[misc]
            return
        # the font and colour switches exactly as reportlab's _drawCell makes them
        cur = self._curcellstyle  # type: ignore[has-type]
        if cur is not cellstyle:
            if cur is None or cellstyle.color != cur.color:
                canv.setFillColor(cellstyle.color)
            if (
                cur is None
                or cellstyle.leading != cur.leading
                or cellstyle.fontname != cur.fontname
                or cellstyle.fontsize != cur.fontsize
            ):
                canv.setFont(cellstyle.fontname, cellstyle.fontsize, cellstyle.leading)
            self._curcellstyle = cellstyle
        colpos, rowpos = pos
        colwidth, rowheight = size
        operators, width = _text_operators(canv, cellval)
        if just == "LEFT":
            x = colpos + cellstyle.leftPadding
        elif just == "RIGHT":
            x = colpos + colwidth - cellstyle.rightPadding - width
        else:
            x = colpos + (colwidth + cellstyle.leftPadding - cellstyle.rightPadding) * 0.5 - 0.5 * width
        y = rowpos + (cellstyle.bottomPadding + rowheight - cellstyle.topPadding + cellstyle.leading) / 2.0
        y -= cellstyle.fontsize
        canv._code.append(f"BT 1 0 0 1 {fp_str(x, y)} Tm {operators} T* ET")


class FastTable(_FastCells, Table):  # type: ignore[misc]
    """A platypus Table drawing its plain-text cells the fast way."""


class FastLongTable(_FastCells, LongTable):  # type: ignore[misc]
    """A platypus LongTable drawing its plain-text cells the fast way."""


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
) -> FastLongTable:
    """A table with a repeated header row; ``widths`` in pt (scaled to the text block if they sum to
    more), ``right``/``center``: columns aligned so, ``bold``: columns in bold."""
    total = sum(widths)
    if total > WIDTH:
        widths = [w * WIDTH / total for w in widths]
    data: list[list[Cell]] = [[cell(h, w, bold=True) for h, w in zip(header, widths, strict=True)]]
    for row in rows:
        data.append([cell(text, w, bold=i in bold) for i, (text, w) in enumerate(zip(row, widths, strict=True))])
    cell_commands, table_commands = _style(len(data), right=right, bold=bold, center=center)
    if not FAST:
        plain = FastLongTable(data, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
        plain.setStyle(TableStyle(cell_commands + table_commands))
        return plain
    # The cell styles are made once, on a table of the header and one row (every command here
    # addresses the header, the rows below it, or both), and shared by every row: reportlab would
    # otherwise make a CellStyle for each of a 450-name list's 1 800 cells and apply each command to
    # each.  Rows of plain text get their height as reportlab computes it (one line at the cell's
    # leading plus the paddings) instead of reportlab measuring every cell of every page again;
    # rows with a wrapping Paragraph are left to reportlab (None).
    styles = FastLongTable([[""] * len(widths)] * 2, colWidths=list(widths), style=TableStyle(cell_commands))
    head, body = styles._cellStyles
    heights = [_plain_height(row, head if i == 0 else body) for i, row in enumerate(data)]
    table = FastLongTable(
        data,
        colWidths=list(widths),
        rowHeights=heights,
        repeatRows=1,
        hAlign="LEFT",
        normalizedData=1,  # every cell is a str or a Paragraph already: nothing to normalise
        cellStyles=[head, *(list(body) for _ in range(len(data) - 1))],
    )
    table.setStyle(TableStyle(table_commands))
    return table


def _plain_height(row: Sequence[Cell], styles: Sequence[Any]) -> float | None:
    """A row's height as reportlab's ``Table._calc_height`` computes it when every cell is one line of
    plain text (the same arithmetic, so the same float); None when a cell is a Paragraph."""
    height: float = 0
    for value, s in zip(row, styles, strict=True):
        if type(value) is not str or "\n" in value:
            return None
        t = (s.leading or 1.2 * s.fontsize) * 1
        t += s.bottomPadding + s.topPadding
        height = max(height, t)
    return height


#: Commands that draw on the table (reportlab keeps them apart from those that set cell styles).
_TABLE_COMMANDS = frozenset({"BACKGROUND", "ROWBACKGROUNDS", "GRID"})


def _style(
    n_rows: int, *, right: Sequence[int] = (), bold: Sequence[int] = (), center: Sequence[int] = ()
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The grid's commands: (those setting cell styles, those drawing backgrounds and rules)."""
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
    cells = [c for c in commands if c[0] not in _TABLE_COMMANDS]
    return cells, [c for c in commands if c[0] in _TABLE_COMMANDS]


def facts(rows: Sequence[tuple[str, str]], label_width: float = 50 * mm) -> FastTable:
    """Label–value lines without rules: «Проєкт рішення:  № 757/2».  Values wrap; labels are grey."""
    data = [[para(label, LABEL), para(value, VALUE)] for label, value in rows]
    table = FastTable(data, colWidths=[label_width, WIDTH - label_width], hAlign="LEFT")
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


def counts(header: Sequence[str], values: Sequence[str], *, bold_first: bool = False) -> FastTable:
    """One row of counts under their names, centred, in a larger face: the numbers a reader looks for."""
    n = len(header)
    width = WIDTH
    data = [list(header), list(values)]
    table = FastTable(data, colWidths=[width / n] * n, hAlign="LEFT")
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


def verdict(text: str, *, adopted: bool, note: str = "") -> FastTable:
    """The result in a box: ПРИЙНЯТО with a heavy frame, НЕ ПРИЙНЯТО / СКАСОВАНО with a light one (a
    printed protocol is black and white: the frame, not a colour, tells them apart at a glance);
    ``note`` (a cancellation's reason) under it in the box."""
    content: list[Flowable] = [para(text, VERDICT)]
    if note:
        content.append(para(note, VALUE))
    table = FastTable([[content]], colWidths=[WIDTH], hAlign="LEFT")
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


def two_groups(header: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float]) -> FastTable:
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
    table = FastTable(data, colWidths=[*widths, gap, *widths], repeatRows=1, hAlign="LEFT")
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

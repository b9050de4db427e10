"""The documents' typefaces: DejaVu Sans, shipped in ``protocol_export/fonts/`` with its licence.

A PDF's 14 standard fonts have no Cyrillic, and a font taken from the machine that renders would make
two machines render different bytes from the same journal.  So the fonts travel with the code: DejaVu
Sans (regular and bold) for the text, DejaVu Sans Condensed (regular and bold) for the tables, where a
name such as «Стороженко-Мирошниченко Святослав Володимирович» must fit a column.  reportlab embeds
only the glyphs a document uses (a subset), named deterministically, so a 40-page protocol stays small
and the same text gives the same bytes.

``register()`` registers them once per process (reportlab's registry is global) and is safe to call
from several threads; ``missing(text)`` lists the characters of ``text`` the fonts cannot draw (a
test checks every string of the fixture sitting, so a name with a letter outside DejaVu would be
found before a protocol prints a box for it).
"""

from __future__ import annotations

import threading
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"

SANS = "ChamberSans"
SANS_BOLD = "ChamberSans-Bold"
COND = "ChamberSansCondensed"
COND_BOLD = "ChamberSansCondensed-Bold"

_FILES = {
    SANS: "DejaVuSans.ttf",
    SANS_BOLD: "DejaVuSans-Bold.ttf",
    COND: "DejaVuSansCondensed.ttf",
    COND_BOLD: "DejaVuSansCondensed-Bold.ttf",
}

_lock = threading.Lock()
_done = False


def register() -> None:
    """Register the four faces and the two families (``<b>`` in a Paragraph picks the bold face)."""
    global _done
    with _lock:
        if _done:
            return
        for name, file in _FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / file)))
        for regular, bold in ((SANS, SANS_BOLD), (COND, COND_BOLD)):
            addMapping(regular, 0, 0, regular)
            addMapping(regular, 1, 0, bold)
            addMapping(regular, 0, 1, regular)  # no italics: an emphasis prints upright, never as a box
            addMapping(regular, 1, 1, bold)
        _done = True


def missing(text: str, font: str = SANS) -> set[str]:
    """The characters of ``text`` (but spaces and line breaks) that ``font`` has no glyph for."""
    register()
    face = pdfmetrics.getFont(font).face
    cmap: dict[int, int] = face.charToGlyph
    return {char for char in set(text) if not char.isspace() and ord(char) not in cmap}

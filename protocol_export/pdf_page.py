"""The page of every document: A4, margins, the notice, the footer, the metadata, reproducible bytes.

``build(story, stamp)`` lays out a platypus story and returns the PDF bytes.  What makes the bytes
depend on the journal alone:

* reportlab's invariant mode (no clock in the document, no random ids), and on top of it the things
  invariant mode still takes from the machine: the creation date is the time of the journal's last
  record (``Stamp.made_at_ms``, on Kyiv's clock), written by our own Info dictionary, so neither the
  clock nor ``SOURCE_DATE_EPOCH`` reaches it; the trailer's ``/ID`` is a digest of what the document
  is (kind, vote, sitting, head, notice) instead of reportlab's digest of a time stamp;
* page streams and embedded font subsets are stored uncompressed: zlib implementations (zlib,
  zlib-ng, Apple's) are free to deflate the same bytes differently, and a verifier on another machine
  must get the same file.  A protocol of a 43-seat council is a few hundred kilobytes this way;
* fonts come from the repository (protocol_export.fonts), never from the system.

Every page carries, drawn after the story is laid out (so that it can say «сторінка 3 з 17»): the
``notice`` in a box across the top when one is given (a demo certificate's warning), and the footer:
«Журнал: записи 1–523, голова 523:ab12cd34ef56…» with the sitting's uid and the page number.  The
Info dictionary carries the same in full for a verifier: ``/ChamberSitting``, ``/ChamberSeqRange``,
``/ChamberHead``, ``/ChamberDocument`` (``protocol`` or ``sheet``), ``/ChamberVote`` (a sheet's vote)
and ``/ChamberNotice`` (the notice, which changes the bytes: re-rendering needs it), and in
``/Keywords`` as ``chamber-sitting=… chamber-seq=… chamber-head=…``.  A protocol that lists speech
recordings (protocol_export.recording_list) adds ``/ChamberRecordings``, the SHA-256 of the list, and
``/ChamberRecordingList``, the list itself (re-rendering needs it, and ``chamber verify`` compares it
with the recordings); without recordings neither key is written and the bytes are what they were.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfdoc import DummyDoc, PDFDictionary, PDFInfo, PDFName, PDFString, PDFText
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate, Paragraph

from protocol_export import fonts, words

PAGE_W, PAGE_H = A4
LEFT, RIGHT, TOP, BOTTOM = 25 * mm, 15 * mm, 14 * mm, 20 * mm  # the left margin is the binding's
NOTICE_BOX_MIN = 12 * mm  # the notice's box: room for two lines, taller for a longer notice
NOTICE_GAP = 3 * mm  # between the notice's box and the text
WIDTH = PAGE_W - LEFT - RIGHT  # of the text block
FOOTER_SIZE = 8  # pt: the footer is read to verify the document, so not smaller than the tables
HASH_SHOWN = 16  # hex digits of the head in the footer (the full head is in the text and the metadata)


@dataclass(frozen=True)
class Stamp:
    """What every page and the metadata say about the document and the journal it was made from."""

    uid: str
    first_seq: int
    last_seq: int
    head: str  # SEQ:HASH
    made_at_ms: int  # the time of the journal's last record: the document's creation date
    document: str  # "protocol" or "sheet"
    vote: int | None  # the vote of a result sheet
    title: str  # metadata title, and the footer's right-hand side
    author: str  # the council
    subject: str
    notice: str | None = None
    recordings: str = ""  # the canonical text of the recordings list (recording_list.list_text); "" none

    @property
    def seq_range(self) -> str:
        return f"{self.first_seq}-{self.last_seq}"

    def journal_line(self) -> str:
        seq, _, digest = self.head.partition(":")
        return f"Журнал: записи {self.first_seq}–{self.last_seq}, голова {seq}:{digest[:HASH_SHOWN]}…"

    def custom_info(self) -> dict[str, str]:
        info = {
            "ChamberSitting": self.uid,
            "ChamberSeqRange": self.seq_range,
            "ChamberHead": self.head,
            "ChamberDocument": self.document,
        }
        if self.vote is not None:
            info["ChamberVote"] = str(self.vote)
        if self.notice:
            info["ChamberNotice"] = self.notice
        if self.recordings:
            info["ChamberRecordings"] = hashlib.sha256(self.recordings.encode()).hexdigest()
            info["ChamberRecordingList"] = self.recordings
        return info

    def keywords(self) -> str:
        return f"chamber-sitting={self.uid} chamber-seq={self.seq_range} chamber-head={self.head}"

    def pdf_id(self) -> bytes:
        """The trailer's /ID: both halves the same digest of what the document is (a new render of the
        same journal is the same document, so it keeps the id)."""
        parts = [self.document, str(self.vote), self.uid, self.head, self.notice or ""]
        if self.recordings:  # only then: a protocol without recordings keeps the id it always had
            parts.append(self.recordings)
        what = "\x1f".join(parts)
        digest = hashlib.md5(what.encode(), usedforsecurity=False).digest()
        ids: bytes = PDFText(digest, enc="raw").format(DummyDoc())
        return b"\n[" + ids + ids + b"]\n"


class _Info(PDFInfo):  # type: ignore[misc]
    """The Info dictionary with our date and the custom keys (reportlab's own writes its time stamp)."""

    def __init__(self, stamp: Stamp) -> None:
        super().__init__()
        self.stamp = stamp

    def format(self, document: Any) -> bytes:
        date = PDFString(words.pdf_date(self.stamp.made_at_ms))
        entries: dict[str, Any] = {
            "Title": PDFString(self.title),
            "Author": PDFString(self.author),
            "Subject": PDFString(self.subject),
            "Keywords": PDFString(self.keywords),
            "Creator": PDFString(self.creator),
            "Producer": PDFString(self.producer),
            "CreationDate": date,
            "ModDate": date,
            "Trapped": PDFName(self.trapped),
        }
        for key, value in self.stamp.custom_info().items():
            entries[key] = PDFString(value)
        formatted: bytes = PDFDictionary(entries).format(document)
        return formatted


_NOTICE = ParagraphStyle(
    "notice",
    fontName=fonts.SANS_BOLD,
    fontSize=10,
    leading=12.5,
    alignment=TA_CENTER,
    textColor=colors.Color(0.62, 0, 0),
)


def _canvas_class(stamp: Stamp) -> type[Canvas]:
    class _PagedCanvas(Canvas):  # type: ignore[misc]
        """Holds the pages back until the end, to draw on each «сторінка N з M» and the furniture."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(invariant=1, pageCompression=0, lang="uk-UA")
            super().__init__(*args, **kwargs)
            doc = self._doc
            doc.info = _Info(stamp)
            doc._ID = stamp.pdf_id()  # reportlab's ID() returns a set _ID as it is
            self._held: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._held.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._held)
            for number, state in enumerate(self._held, 1):
                self.__dict__.update(state)
                _furniture(self, stamp, number, total)
                super().showPage()
            super().save()

    return _PagedCanvas


def _furniture(canvas: Canvas, stamp: Stamp, number: int, total: int) -> None:
    canvas.saveState()
    if stamp.notice:
        box_top = PAGE_H - TOP
        box_h = notice_room(stamp.notice) - NOTICE_GAP
        canvas.setStrokeColor(_NOTICE.textColor)
        canvas.setLineWidth(1.2)
        canvas.rect(LEFT, box_top - box_h, WIDTH, box_h, stroke=1, fill=0)
        text = Paragraph(escape(stamp.notice), _NOTICE)
        _, height = text.wrap(WIDTH - 6 * mm, box_h)
        text.drawOn(canvas, LEFT + 3 * mm, box_top - box_h / 2 - height / 2)
    canvas.setStrokeColor(colors.black)
    canvas.setLineWidth(0.5)
    rule = BOTTOM - 4 * mm
    canvas.line(LEFT, rule, PAGE_W - RIGHT, rule)
    canvas.setFont(fonts.SANS, FOOTER_SIZE)
    first, second = rule - 3.6 * mm, rule - 7.4 * mm
    canvas.drawString(LEFT, first, stamp.journal_line())
    canvas.drawRightString(PAGE_W - RIGHT, first, f"Сторінка {number} з {total}")
    canvas.drawString(LEFT, second, f"Засідання {stamp.uid}")
    canvas.drawRightString(PAGE_W - RIGHT, second, stamp.title)
    canvas.restoreState()


def frame_height(notice: str | None) -> float:
    """The height of a page's text block (less with a notice across the top)."""
    return float(PAGE_H - TOP - BOTTOM - notice_room(notice))


def notice_room(notice: str | None) -> float:
    """How much of the page's top the notice takes: its box, grown to the notice's lines, and a gap."""
    if not notice:
        return 0.0
    _, height = Paragraph(escape(notice), _NOTICE).wrap(WIDTH - 6 * mm, PAGE_H)
    return float(max(NOTICE_BOX_MIN, height + 4 * mm) + NOTICE_GAP)


def escape(text: str) -> str:
    """Paragraph text is a markup language: a name or reason with ``<`` or ``&`` stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build(story: list[Flowable], stamp: Stamp) -> bytes:
    """Lay out ``story`` on A4 pages with the furniture above and return the PDF."""
    fonts.register()
    top = TOP + notice_room(stamp.notice)
    out = io.BytesIO()
    doc = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=LEFT,
        rightMargin=RIGHT,
        topMargin=top,
        bottomMargin=BOTTOM,
        title=stamp.title,
        author=stamp.author,
        subject=stamp.subject,
        creator="chamber protocol_export",
        keywords=stamp.keywords(),
        invariant=1,
        pageCompression=0,
        lang="uk-UA",
        initialFontName=fonts.SANS,  # else every page names Helvetica, a font the document never uses
    )
    frame = Frame(LEFT, BOTTOM, WIDTH, PAGE_H - top - BOTTOM, id="text", leftPadding=0, rightPadding=0)
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    doc.build(story, canvasmaker=_canvas_class(stamp))
    return out.getvalue()

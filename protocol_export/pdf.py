"""The sitting's documents as PDF: the protocol and a one-page result sheet per vote.

Entry points (the signing and ``chamber verify`` code builds on exactly these):

* ``render_protocol(doc, notice=None) -> bytes``: the protocol of the sitting: header (council,
  convocation, protocol number, sitting title, date, place when the journaled roster has one, opening
  and closing times, composition, quorum rule, the chair, codes, the sitting's uid and journal head),
  1. registration rounds with every deputy's time (manual ones marked, with the secretary's reason),
  2. the agenda, 3. a summary of the votes and then every vote in full (protocol_export.pdf_votes),
  4. speeches (and their recordings, when ``doc.recordings`` lists any), 5. alerts and refused
  presses, 6. the journal coordinates and the signature lines, and with recordings Annex 1: every
  recording's file, size and full SHA-256 (protocol_export.recording_list);
* ``render_result_sheet(doc, vote, notice=None) -> bytes``: «Результати поіменного голосування» of
  vote ``vote``, printable right after the vote: one page for a council of 40-odd (the names in two
  halves), more for a parliament-sized chamber (one column, header repeated).

``notice`` is printed in a box across the top of every page (e.g. «Підписано демонстраційним
самопідписаним сертифікатом — не має юридичної сили»).  Everything else comes from the SittingDoc,
which comes from the journal alone; the bytes are the same for the same journal and notice (see
protocol_export.pdf_page for how), and each page's footer and the metadata say which journal records
the document was made from.
"""

from __future__ import annotations

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from chamber.core.values import Role
from chamber.core.voting import VoteResult
from protocol_export import pdf_sections as sections
from protocol_export import words
from protocol_export.pdf_page import Stamp, build, frame_height
from protocol_export.pdf_tables import CENTER, COUNCIL, SMALL, TITLE, para
from protocol_export.pdf_votes import height_of, vote_block
from protocol_export.recording_list import list_text
from protocol_export.source import SittingDoc

__all__ = ["UnknownVote", "render_protocol", "render_result_sheet"]


class UnknownVote(LookupError):
    """The sitting has no finished vote with that number."""


def _stamp(
    doc: SittingDoc, document: str, vote: int | None, title: str, subject: str, notice: str | None, recordings: str = ""
) -> Stamp:
    return Stamp(
        uid=doc.uid,
        first_seq=doc.first_seq,
        last_seq=doc.last_seq,
        head=doc.head_text,
        made_at_ms=doc.snapshot.clock,  # the time of the last record applied: the journal's own
        document=document,
        vote=vote,
        title=title,
        author=doc.roster.council.name,
        subject=subject,
        notice=notice,
        recordings=recordings,
    )


def render_protocol(doc: SittingDoc, *, notice: str | None = None) -> bytes:
    """The protocol of the sitting ``doc`` as PDF bytes (see the module docstring)."""
    story: list[Flowable] = [
        *sections.header(doc),
        *sections.registration(doc),
        *sections.agenda(doc),
        *sections.votes_summary(doc),
    ]
    for result in doc.snapshot.results:
        story.extend(vote_block(doc, result))
        story.append(Spacer(1, 4 * mm))
    story += [*sections.speeches(doc), *sections.alerts(doc), *sections.closing(doc), *sections.recordings_annex(doc)]
    title = f"Протокол № {doc.number}"
    subject = f"Протокол пленарного засідання № {doc.number}, {words.date_words(doc.opened_at_ms)}"
    listed = list_text(doc.recordings)
    return build(story, _stamp(doc, "protocol", None, title, subject, notice, listed))


def find_vote(doc: SittingDoc, vote: int) -> VoteResult:
    for result in doc.snapshot.results:
        if result.number == vote:
            return result
    known = ", ".join(str(r.number) for r in doc.snapshot.results) or "none"
    raise UnknownVote(f"sitting {doc.uid} has no finished vote {vote} (finished votes: {known})")


def render_result_sheet(doc: SittingDoc, vote: int, *, notice: str | None = None) -> bytes:
    """The result sheet of vote ``vote`` of ``doc`` as PDF bytes; UnknownVote if there is no such
    finished vote (an open vote has no result to print yet)."""
    result = find_vote(doc, vote)
    council = doc.roster.council
    top: list[Flowable] = [
        para(council.name.upper(), COUNCIL),
        para(
            f"{words.roman(council.convocation)} скликання · засідання № {doc.number} · "
            f"{words.date_words(result.opened_at)}",
            CENTER,
        ),
    ]
    if doc.title:
        top.append(para(doc.title, CENTER))
    top.append(para(words.SHEET_TITLE[result.kind].upper(), TITLE))
    signatures = _sheet_signatures(doc)
    room = frame_height(notice) - height_of([*top, *signatures])
    story = [*top, *vote_block(doc, result, sheet=True, room=room), *signatures]
    title = f"Голосування № {vote}, засідання № {doc.number}"
    subject = f"{words.SHEET_TITLE[result.kind]}: голосування № {vote}, пленарне засідання № {doc.number}"
    return build(story, _stamp(doc, "sheet", vote, title, subject, notice))


def _sheet_signatures(doc: SittingDoc) -> list[Flowable]:
    head = next((d for d in doc.roster.deputies if d.role is Role.HEAD), None)
    name = f" {head.full_name}" if head else ""
    return [Spacer(1, 6 * mm), para(f"Головуючий _______________________{name}", SMALL)]

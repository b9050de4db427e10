"""Checking a signed protocol: its signatures (pyHanko) and, given the store, the journal it came from.

How it works:

1. :func:`check_signatures` validates every signature in the file with pyHanko: integrity (the digest
   of the signed byte ranges and the CMS signature over it), what it covers, what later revisions
   changed (pyHanko's difference analysis: a later signature is fine, a changed page is not), and the
   certificate's path to a trust anchor given with ``--trust`` (none by default: the operating system's
   web-server roots say nothing about who may sign for a council).  A self-signed certificate is
   reported as untrusted — «self-signed demo certificate» for a ``chamber keys init`` one — which is a
   fact about the signer, not a fault of the document: only integrity and content problems count as
   problems, unless ``require_trust``.
2. The chamber's own signature is the first one.  It must sign the rendered document as it was made —
   revision 0, the renderer's bytes — plus nothing but itself: :func:`_signature_only` checks that its
   revision changes no page content (pyHanko's difference analysis only looks at revisions *after* a
   signed one, so it cannot vouch for this).
3. :func:`compare_with_journal` reads the sitting named in revision 0's information dictionary from
   the journal as it stood at the document's head (a result sheet signed mid-sitting is compared with
   the records it was made from, not with the later ones), renders the same document again (the
   notice line chosen for the signer's certificate, as at signing) and compares bytes: the renderer is
   reproducible, so equal bytes mean the signed document says exactly what the journal says.  When
   they differ it names what: the head, the sequence range (and what the journal holds beyond the
   signed head, as ``journal verify --expect-head`` would say), then the text page by page (pypdf),
   quoting the first differing lines.  Records after the head of a closed sitting's document are a
   problem: nothing belongs to a sitting after its close.
4. A protocol that lists speech recordings carries the list in its metadata (protocol_export.
   recording_list).  Step 3 renders with that list, so what differs there is the journal's alone; then
   :func:`compare_with_journal` compares the list with the recordings index now and each listed file
   with the SHA-256 the protocol gives it (given the recordings folder), and reports what differs as
   the recordings' problems (``recordings: ...``), apart from the journal's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import cast

from cryptography import x509
from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from chamber.chain import Head, SittingCheck, parse_head
from chamber.journal import Journal
from protocol_export import signing
from protocol_export.keys import describe, is_demo, is_self_signed, notice_for
from protocol_export.recording_files import sitting_dir
from protocol_export.recording_list import (
    Listed,
    RecordingListError,
    compare_recordings,
    list_digest,
    load_listed,
    parse_list,
)
from protocol_export.signing import DocumentRef, Renderer, document_ref
from protocol_export.source import SittingDoc, SourceError, load_sitting

#: Keys of the catalog and of a page that a signature's own revision may add or change.
_CATALOG_KEYS = frozenset({"/AcroForm", "/Extensions", "/Version", "/Perms", "/DSS"})
_PAGE_KEYS = frozenset({"/Annots"})
_MAX_PAGES_QUOTED = 3


class UnreadablePdf(Exception):
    """The file is not a PDF pyHanko can read (exit 2: nothing could be checked)."""


@dataclass(frozen=True)
class SignatureCheck:
    """One signature of the file as a person reads it."""

    field: str
    revision: int  # the revision the signature was added in (revision 0: the rendered document)
    signer: str
    signed_at: dt.datetime | None
    reason: str | None
    intact: bool
    trusted: bool
    trust_note: str
    later: str  # what revisions after this one changed
    problems: tuple[str, ...]


@dataclass
class Verification:
    """Everything ``chamber verify`` found; :attr:`problems` empty means all good."""

    revisions: int
    signatures: list[SignatureCheck] = field(default_factory=list)
    document: DocumentRef | None = None  # what revision 0 says it was made from
    signed_document: bytes = b""  # revision 0: the renderer's bytes the chamber signed
    chamber_signer: x509.Certificate | None = None
    journal: list[str] = field(default_factory=list)  # the comparison with the journal, line by line
    recordings: list[str] = field(default_factory=list)  # the comparison with the recordings
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- signatures


@contextlib.contextmanager
def _quiet_pyhanko() -> Iterator[None]:
    """pyHanko logs a self-signed certificate's path-building failure with a traceback; the report
    says it in one line."""
    logger = logging.getLogger("pyhanko")
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def _revision_end(data: bytes, reader: PdfFileReader, revision: int) -> int:
    """Where revision ``revision`` ends: after its ``%%EOF`` and line end (the next update starts there)."""
    start = reader.xrefs.get_startxref_for_revision(revision)
    eof = data.find(b"%%EOF", start)
    if eof < 0:
        raise UnreadablePdf(f"revision {revision} has no %%EOF marker")
    end = eof + len(b"%%EOF")
    while end < len(data) and data[end : end + 1] in (b"\r", b"\n"):
        end += 1
    return end


def _trust_note(cert: x509.Certificate, trusted: bool) -> str:
    demo, self_signed = is_demo(cert), is_self_signed(cert)
    if trusted:
        return "yes (given with --trust; a demo certificate)" if demo else "yes"
    if demo:
        return "no (self-signed demo certificate)"
    if self_signed:
        return "no (self-signed certificate: give it with --trust if it is the council's own)"
    return "no (no path to a trust anchor: give the issuing CA's certificate with --trust)"


def _later_changes(
    sig: EmbeddedPdfSignature, status: PdfSignatureStatus, signature_fields: set[str]
) -> tuple[str, list[str]]:
    """What the revisions after ``sig``'s changed, in words, and the problems among them."""
    level, diff = status.modification_level, status.diff_result
    if level is None:
        return f"cannot be judged ({diff})", [f"{sig.field_name}: later revisions cannot be judged: {diff}"]
    if level == ModificationLevel.NONE:
        return "none", []
    if level == ModificationLevel.LTA_UPDATES:
        return "validation data only (certificates, revocation information, time stamps)", []
    changed = set(diff.changed_form_fields) if isinstance(diff, DiffResult) else set()
    if level == ModificationLevel.FORM_FILLING and changed <= signature_fields:
        return "further signatures only", []
    what = ", ".join(sorted(changed)) or level.name.lower()
    return f"changed ({what})", [f"{sig.field_name}: the document was changed after this signature ({what})"]


def _check_one(
    sig: EmbeddedPdfSignature,
    context: ValidationContext,
    signature_fields: set[str],
    last_revision: int,
    require_trust: bool,
) -> SignatureCheck:
    cert = x509.load_der_x509_certificate(sig.signer_cert.dump())
    problems: list[str] = []
    with _quiet_pyhanko():
        status = validate_pdf_signature(sig, context)
    intact = bool(status.intact and status.valid)
    if not status.intact:
        problems.append(f"{sig.field_name}: the signed bytes were changed (the digest does not match)")
    elif not status.valid:
        problems.append(f"{sig.field_name}: the signature does not match the signed bytes and certificate")
    # a signature covers its whole revision; the last one, the whole file (nothing unsigned appended)
    wanted = SignatureCoverageLevel.ENTIRE_REVISION
    if sig.signed_revision == last_revision:
        wanted = SignatureCoverageLevel.ENTIRE_FILE
    if status.coverage is None or status.coverage < wanted:
        problems.append(f"{sig.field_name}: covers only part of its revision ({status.coverage})")
    later, later_problems = _later_changes(sig, status, signature_fields)
    problems += later_problems
    if status.docmdp_ok is False:
        problems.append(f"{sig.field_name}: later changes break the document's change permissions (DocMDP)")
    trusted = bool(status.trusted)
    if require_trust and not trusted:
        problems.append(f"{sig.field_name}: the certificate is not trusted")
    reason = sig.sig_object.get("/Reason")
    return SignatureCheck(
        field=str(sig.field_name),
        revision=sig.signed_revision,
        signer=describe(cert),
        signed_at=sig.self_reported_timestamp,
        reason=str(reason) if reason is not None else None,
        intact=intact,
        trusted=trusted,
        trust_note=_trust_note(cert, trusted),
        later=later,
        problems=tuple(problems),
    )


def _differing_keys(before: object, after: object, allowed: frozenset[str]) -> set[str]:
    assert isinstance(before, generic.DictionaryObject) and isinstance(after, generic.DictionaryObject)
    keys = set(before) | set(after)
    return {k for k in keys - allowed if k not in before or k not in after or before.raw_get(k) != after.raw_get(k)}


def _signature_only(reader: PdfFileReader, revision: int) -> list[str]:
    """Problems if revision ``revision`` (a signature's) changed anything but the signature's own
    objects: the catalog's form keys, pages' annotation lists (with signature widgets only), metadata."""
    old, new = reader.get_historical_resolver(revision - 1), reader.get_historical_resolver(revision)
    problems = []
    root = old.trailer_view.raw_get("/Root")
    info = old.trailer_view.raw_get("/Info") if "/Info" in old.trailer_view else None
    if new.trailer_view.raw_get("/Root") != root:
        problems.append(f"revision {revision} replaces the document catalog")
    for ref in sorted(reader.xrefs.explicit_refs_in_revision(revision), key=lambda r: r.idnum):
        if reader.xrefs.get_introducing_revision(ref) == revision:
            continue  # a new object matters only where an old one points to it: checked below
        before, after = old.get_object(ref), new.get_object(ref)
        if isinstance(root, generic.IndirectObject) and ref == root.reference:
            changed = _differing_keys(before, after, _CATALOG_KEYS)
        elif isinstance(info, generic.IndirectObject) and ref == info.reference:
            changed = set()  # document metadata: pyHanko updates /ModDate; the content is not there
        elif isinstance(after, generic.DictionaryObject) and after.get("/Type") == "/Page":
            changed = _differing_keys(before, after, _PAGE_KEYS)
            problems += _new_annotations(before, after, revision)
        else:
            changed = {"the object itself"}
        if changed:
            problems.append(f"revision {revision} changes object {ref.idnum} ({', '.join(sorted(changed))})")
    return problems


def _annotations(page: generic.DictionaryObject) -> list[tuple[object, object]]:
    """A page's annotations as (reference as written, the annotation)."""
    annots = page.get("/Annots")
    if not isinstance(annots, generic.ArrayObject):
        return []
    return [(annots.raw_get(i), annots[i]) for i in range(len(annots))]  # indexing resolves


def _is_signature_widget(annot: object) -> bool:
    if not isinstance(annot, generic.DictionaryObject) or annot.get("/Subtype") != "/Widget":
        return False
    parent = annot.get("/Parent")
    ft = annot.get("/FT") or (parent.get("/FT") if isinstance(parent, generic.DictionaryObject) else None)
    return bool(ft == "/Sig")


def _new_annotations(before: generic.DictionaryObject, after: generic.DictionaryObject, revision: int) -> list[str]:
    """A signature's revision may add its widget to a page, nothing else that is drawn there."""
    old = [ref for ref, _ in _annotations(before)]
    if any(not _is_signature_widget(annot) for ref, annot in _annotations(after) if ref not in old):
        return [f"revision {revision} adds an annotation that is not a signature field to a page"]
    return []


def check_signatures(
    data: bytes, trust: Sequence[x509.Certificate] = (), *, require_trust: bool = False
) -> Verification:
    """Every signature of the PDF ``data``; UnreadablePdf if it is not a PDF."""
    try:
        # strict, as pyHanko's own validator: it refuses hybrid-reference files, where a reader and a
        # validator may see different objects (the "shadow attacks" on PDF signatures)
        reader = PdfFileReader(BytesIO(data), strict=True)
        revisions = reader.xrefs.total_revisions
        signatures = sorted(reader.embedded_signatures, key=lambda s: s.signed_revision)
    except (PdfError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise UnreadablePdf(f"not a PDF that can be read: {exc}") from None
    result = Verification(revisions=revisions)
    if not signatures:
        result.problems.append("the document is not signed")
        return result
    context = ValidationContext(
        trust_roots=[translate_pyca_cryptography_cert_to_asn1(c) for c in trust],
        allow_fetching=False,  # the hall network has no internet; revocation data is a later issue
    )
    names = {str(s.field_name) for s in signatures}
    for sig in signatures:
        try:
            check = _check_one(sig, context, names, revisions - 1, require_trust)
        except (PdfError, ValueError, KeyError, TypeError) as exc:
            result.problems.append(f"{sig.field_name}: cannot be validated: {exc}")
            continue
        result.signatures.append(check)
        result.problems += check.problems
    first = signatures[0]
    result.chamber_signer = x509.load_der_x509_certificate(first.signer_cert.dump())
    if first.signed_revision != 1:
        result.problems.append(
            f"{first.field_name}: signs {first.signed_revision} revisions, not a rendered document alone"
        )
        return result
    result.problems += _signature_only(reader, 1)
    result.signed_document = data[: _revision_end(data, reader, 0)]
    ref = document_ref(result.signed_document)
    reason = result.signatures[0].reason if result.signatures else None
    result.document = ref.with_vote_from(reason) if ref else None
    return result


# --------------------------------------------------------------------------- the journal


def _page_texts(pdf: bytes) -> list[list[str]]:
    from pypdf import PdfReader

    pages = PdfReader(BytesIO(pdf)).pages
    return [[line.rstrip() for line in (page.extract_text() or "").splitlines()] for page in pages]


def _text_differences(signed: bytes, fresh: bytes) -> list[str]:
    a, b = _page_texts(signed), _page_texts(fresh)
    lines = []
    if len(a) != len(b):
        lines.append(f"pages: signed {len(a)}, journal now {len(b)}")
    quoted = 0
    for number, (old, new) in enumerate(zip(a, b, strict=False), start=1):
        if old == new:
            continue
        quoted += 1
        if quoted > _MAX_PAGES_QUOTED:
            lines.append("… and further pages")
            break
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
            if tag != "equal":
                was = " / ".join(old[i1 : min(i2, i1 + 2)]) or "(nothing)"
                now = " / ".join(new[j1 : min(j2, j1 + 2)]) or "(nothing)"
                lines.append(f"page {number}, line {i1 + 1}: signed «{was}», journal now «{now}»")
                break
    return lines


def _differences(signed: bytes, fresh: bytes, ref: DocumentRef, journal: Journal) -> list[str]:
    lines = []
    now = document_ref(fresh)
    if now is not None:
        for name, was, is_now in (
            ("head", ref.head, now.head),
            ("sequence range", ref.seq_range, now.seq_range),
        ):
            if was != is_now:
                lines.append(f"{name}: signed {was}, journal now {is_now}")
    if ref.head != (now.head if now else None):
        with contextlib.suppress(ValueError):  # an unparsable head was reported above
            lines += [f"journal: {p}" for p in journal.check(ref.sitting, parse_head(ref.head)).problems]
    text = _text_differences(signed, fresh)
    lines += text
    if not lines:
        pairs = enumerate(zip(signed, fresh, strict=False))
        offset = next((i for i, (x, y) in pairs if x != y), min(len(signed), len(fresh)))
        lines.append(f"content: the bytes differ from offset {offset} but the text and journal coordinates are equal")
    return lines


class _JournalUpTo:
    """The journal as it stood when a document was made: the sitting's records up to the document's head.

    ``load_sitting`` reads a journal through ``check`` alone; this answers it with the records after
    the head left out, so a result sheet signed while the sitting went on is compared with what the
    journal said then, not with a later state it never claimed."""

    def __init__(self, journal: Journal, last_seq: int) -> None:
        self._journal, self._last_seq = journal, last_seq

    def check(self, sitting: str, expect_head: Head | None = None) -> SittingCheck:
        full = self._journal.check(sitting, expect_head)
        return SittingCheck(sitting, full.problems, [r for r in full.records if r.seq <= self._last_seq])


def _growth(journal: Journal, ref: DocumentRef) -> tuple[list[int], str]:
    """The seqs recorded after the document's head and the sitting's head now, if its intact chain holds
    the document's head; else nothing after it (the comparison then names what differs)."""
    try:
        head = parse_head(ref.head)
    except ValueError:
        return [], ref.head
    check = journal.check(ref.sitting)
    if (
        check.problems
        or check.head is None
        or not any(r.seq == head.seq and r.hash == head.hash for r in check.records)
    ):
        return [], ref.head
    return [r.seq for r in check.records if head.seq is not None and r.seq > head.seq], str(check.head)


def _signed_recordings(result: Verification, ref: DocumentRef) -> tuple[Listed, ...] | None:
    """The recordings list the signed protocol carries; None (a problem added) if it cannot be read."""
    if not ref.recordings and not ref.recordings_digest:
        return ()
    try:
        listed = parse_list(ref.recordings)
    except RecordingListError as exc:
        result.problems.append(f"recordings: the signed protocol's {exc}")
        return None
    if list_digest(listed) != ref.recordings_digest:
        result.problems.append("recordings: the signed protocol's list does not have the SHA-256 its metadata records")
        return None
    return listed


def compare_recordings_with(
    result: Verification, doc: SittingDoc, signed: tuple[Listed, ...], directory: str | os.PathLike[str] | None
) -> None:
    """The signed protocol's recordings against the index and the files in ``directory`` now."""
    if directory is None:
        if signed:
            result.recordings.append(
                f"{len(signed)} listed; not compared (give --recordings DIR or a config whose [recording] directory "
                "holds them)"
            )
        return
    try:
        now = load_listed(directory, doc.uid, doc.snapshot.speeches)
    except ValueError as exc:
        result.problems.append(f"recordings: {exc}")
        return
    folder = sitting_dir(directory, doc.uid)
    problems = compare_recordings(signed, now, folder)
    if not problems:
        if signed:
            result.recordings.append(
                f"the {len(signed)} listed are the index's and every file in {folder} has the listed SHA-256"
            )
        else:
            result.recordings.append(f"none listed, and none of the protocol's speeches in {folder}")
        return
    result.recordings.append(f"the signed list ({len(signed)}) differs from {folder} ({len(now)} in the index):")
    result.recordings += [f"  {p}" for p in problems]
    result.problems += [f"recordings: {p}" for p in problems]


def compare_with_journal(
    result: Verification,
    journal: Journal,
    render: Renderer | None = None,
    recordings: str | os.PathLike[str] | None = None,
) -> None:
    """Re-render the signed document from ``journal`` (as it stood at the document's head) and add
    what differs to ``result``; a protocol's recordings are compared with the folder ``recordings``
    (``[recording] directory``), apart."""
    ref = result.document
    if not result.signed_document or result.chamber_signer is None:
        result.problems.append("journal: no signed rendered document to compare")
        return
    if ref is None:
        result.problems.append("journal: the signed document names no sitting (/ChamberSitting): not the chamber's")
        return
    after, now = _growth(journal, ref)
    # load_sitting reads through check() alone, which _JournalUpTo answers
    then = cast(Journal, _JournalUpTo(journal, after[0] - 1)) if after else journal
    try:
        doc = load_sitting(then, ref.sitting)
        signing.check_vote(doc, ref.vote)
    except (SourceError, signing.SigningError) as exc:
        result.problems.append(f"journal: {exc}")
        return
    signed = _signed_recordings(result, ref) if ref.vote is None else ()
    if signed is None:
        return
    if ref.vote is None:
        compare_recordings_with(result, doc, signed, recordings)
    # rendered with the list the document carries: whatever differs now is the journal's
    fresh = (render or signing.default_renderer)(
        doc.with_recordings(signed), ref.vote, notice_for(result.chamber_signer)
    )
    what = "protocol" if ref.vote is None else f"result sheet of vote {ref.vote}"
    upto = "up to its head" if after else "now"
    if fresh != result.signed_document:
        differences = _differences(result.signed_document, fresh, ref, journal)
        result.journal.append(f"the signed {what} differs from the one rendered from the journal {upto}:")
        result.journal += [f"  {line}" for line in differences]
        result.problems.append(f"journal: the signed {what} differs from the journal ({differences[0]})")
        return
    result.journal.append(
        f"the signed {what} equals the one rendered from the journal {upto} "
        f"(sitting {ref.sitting}, records {ref.seq_range}, head {ref.head})"
    )
    if not after:
        return
    added = f"seq {after[0]}" if len(after) == 1 else f"seq {after[0]}-{after[-1]}"
    result.journal.append(f"head: signed {ref.head}, journal now {now}: {len(after)} record(s) after it ({added})")
    if doc.closed_at_ms is not None:
        # nothing belongs to a sitting after its close: the journal was added to after the fact
        result.problems.append(
            f"journal: {len(after)} record(s) added to sitting {ref.sitting} after it was closed and this {what} "
            f"was made ({added}): head signed {ref.head}, journal now {now}"
        )
    else:
        result.journal.append("the sitting went on after the document was made: the records after it are not in it")

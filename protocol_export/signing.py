"""Signing protocols and result sheets: PAdES with pyHanko, as an incremental update of the rendered PDF.

How it works:

* :func:`sign_sitting` reads the sitting from the journal (``load_sitting``: chain checked), asks the
  renderer (``protocol_export.pdf``) for the protocol or a vote's result sheet, and signs the bytes.
  A self-signed certificate (a ``chamber keys init`` demo one above all) needs a line on the face of
  the document saying so: the signer works that out from the certificate (``keys.notice_for``) *before*
  rendering and passes it to the renderer as ``notice=``, so the notice is a part of the signed content
  and ``chamber verify`` can ask for the same document again.
* :func:`sign_pdf` signs any PDF the renderer made.  The signature is a PAdES baseline B-B one
  (``ETSI.CAdES.detached``, SHA-256) appended as an incremental update, so the rendered bytes stay in
  the file verbatim as its first revision (``verify`` compares them with a fresh rendering) and
  further signatures — a qualified signature made later with a trust service provider's tool — are
  appended after ours without breaking it.  It is an approval signature, not a certification one:
  a certification signature would have to state in advance what later revisions may change.
* The journal coordinates the renderer writes into the document information dictionary
  (``/ChamberSitting``, ``/ChamberSeqRange``, ``/ChamberHead``) are repeated in the signature's
  ``/Reason``, which is covered by the signature and shown by every PDF reader's signature panel: a
  reader sees which journal records the signer vouched for without opening the document properties.
  A result sheet's reason names its vote, which is how ``verify`` knows which document to re-render.
* A protocol lists the speech recordings of the folder it is given (``recordings=``, from ``[recording]
  directory`` or ``--recordings``) as its annex, and its metadata carries the list
  (protocol_export.recording_list): signed with the rest, so ``verify`` can tell a recording that
  changed from a journal that did.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from io import BytesIO
from typing import cast

from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1, translate_pyca_cryptography_key_to_asn1
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator.registry import SimpleCertificateStore

from chamber.journal import Journal
from protocol_export.keys import Identity, notice_for
from protocol_export.recording_list import load_listed
from protocol_export.source import SittingDoc, load_sitting

#: Renders a sitting's protocol (vote None) or a vote's result sheet, with an optional notice line.
Renderer = Callable[[SittingDoc, "int | None", "str | None"], bytes]

INFO_SITTING = "/ChamberSitting"
INFO_SEQ_RANGE = "/ChamberSeqRange"
INFO_HEAD = "/ChamberHead"
INFO_VOTE = "/ChamberVote"  # optional: a result sheet's vote number, when the renderer writes it
INFO_RECORDINGS = "/ChamberRecordings"  # optional: SHA-256 of the protocol's recordings list
INFO_RECORDING_LIST = "/ChamberRecordingList"  # optional: the list (protocol_export.recording_list)

FIELD_PREFIX = "ChamberSignature"
_VOTE_IN_REASON = re.compile(r"Результати голосування № ([0-9]+)")


class SigningError(Exception):
    """The document cannot be signed (not a chamber document, no such vote, a renderer without the
    journal coordinates); the message says why."""


@dataclass(frozen=True)
class DocumentRef:
    """What a chamber document says it was made from: its sitting, journal records and head."""

    sitting: str
    seq_range: str  # "FIRST-LAST", as the renderer writes it
    head: str  # "SEQ:HASH"
    vote: int | None = None  # a result sheet's vote (from /ChamberVote or the signature's reason)
    recordings: str = ""  # the recordings list a protocol carries ("" none)
    recordings_digest: str = ""  # its SHA-256 as the metadata records it

    def reason(self) -> str:
        """The signature's /Reason: the document and the journal records it was made from."""
        what = "Протокол засідання" if self.vote is None else f"Результати голосування № {self.vote}, засідання"
        return f"{what} {self.sitting}; журнал: записи {self.seq_range}, голова {self.head}"

    def with_vote_from(self, reason: str | None) -> DocumentRef:
        """The same, with the vote named in a signature's reason when the info dictionary had none."""
        if self.vote is not None or not reason:
            return self
        match = _VOTE_IN_REASON.search(reason)
        if not match:
            return self
        return replace(self, vote=int(match.group(1)))


def _text(value: object) -> str | None:
    if isinstance(value, generic.TextStringObject | generic.ByteStringObject | str):
        return str(value) if not isinstance(value, generic.ByteStringObject) else value.original_bytes.decode("latin-1")
    if isinstance(value, int | generic.NumberObject):
        return str(value)
    return None


def info_of(info: generic.DictionaryObject | None) -> DocumentRef | None:
    """The chamber's keys of a document information dictionary; None if it has not all three."""
    if info is None:
        return None
    keys = (INFO_SITTING, INFO_SEQ_RANGE, INFO_HEAD, INFO_VOTE, INFO_RECORDINGS, INFO_RECORDING_LIST)
    values = {key: _text(info.get(key)) for key in keys}
    sitting, seq_range, head = values[INFO_SITTING], values[INFO_SEQ_RANGE], values[INFO_HEAD]
    if not (sitting and seq_range and head):
        return None
    vote = values[INFO_VOTE]
    return DocumentRef(
        sitting,
        seq_range,
        head,
        int(vote) if vote and vote.isascii() and vote.isdigit() else None,
        recordings=values[INFO_RECORDING_LIST] or "",
        recordings_digest=values[INFO_RECORDINGS] or "",
    )


def reader_ref(reader: PdfFileReader) -> DocumentRef | None:
    """The chamber coordinates in the information dictionary of ``reader``'s latest revision."""
    try:
        info = reader.trailer_view["/Info"]  # indexing resolves the indirect reference
    except (KeyError, PdfError):
        return None
    return info_of(info if isinstance(info, generic.DictionaryObject) else None)


def document_ref(pdf: bytes) -> DocumentRef | None:
    """The chamber coordinates of a PDF's (latest) information dictionary; None for other PDFs."""
    return reader_ref(PdfFileReader(BytesIO(pdf), strict=False))


def _signer(identity: Identity) -> signers.SimpleSigner:
    # the CA certificates given with the key go into the CMS, so validators can build the path
    chain = cast("Callable[[], SimpleCertificateStore]", SimpleCertificateStore)()  # an untyped constructor
    for cert in identity.chain:
        chain.register(translate_pyca_cryptography_cert_to_asn1(cert))
    return signers.SimpleSigner(
        signing_cert=translate_pyca_cryptography_cert_to_asn1(identity.certificate),
        signing_key=translate_pyca_cryptography_key_to_asn1(identity.key),
        cert_registry=chain,
    )


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    taken = {name for name, _, _ in fields.enumerate_sig_fields(writer)}
    n = 1
    while f"{FIELD_PREFIX}{n}" in taken:
        n += 1
    return f"{FIELD_PREFIX}{n}"


def sign_pdf(
    pdf: bytes,
    identity: Identity,
    *,
    reason: str | None = None,
    location: str | None = None,
    field_name: str | None = None,
) -> bytes:
    """``pdf`` with a PAdES signature appended as an incremental update (its bytes stay a prefix).

    ``reason`` defaults to the document's chamber coordinates (:meth:`DocumentRef.reason`); a PDF
    without them is signed only with an explicit reason.  ``field_name`` defaults to the first free
    ``ChamberSignatureN``, so a document can be signed again (by another key) without clashing."""
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf))
    except (PdfError, ValueError) as exc:
        raise SigningError(f"not a PDF that can be signed: {exc}") from None
    if reason is None:
        ref = reader_ref(writer.prev)
        if ref is None:
            raise SigningError("the PDF carries no sitting, sequence range and head (/ChamberSitting ...)")
        reason = ref.reason()
    meta = signers.PdfSignatureMetadata(
        field_name=field_name or _free_field_name(writer),
        reason=reason,
        location=location,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
    )
    out = signers.sign_pdf(writer, meta, signer=_signer(identity))
    data: bytes = out.getvalue()
    return data


def default_renderer(doc: SittingDoc, vote: int | None, notice: str | None) -> bytes:
    """The project's renderer (protocol_export.pdf), imported when first used."""
    pdf = importlib.import_module("protocol_export.pdf")
    if vote is None:
        render_protocol: Callable[..., bytes] = pdf.render_protocol
        return render_protocol(doc, notice=notice)
    render_sheet: Callable[..., bytes] = pdf.render_result_sheet
    return render_sheet(doc, vote, notice=notice)


def check_vote(doc: SittingDoc, vote: int | None) -> None:
    """SigningError unless ``vote`` is None (the protocol) or a finished vote of ``doc``."""
    if vote is not None and not any(r.number == vote for r in doc.snapshot.results):
        numbers = ", ".join(str(r.number) for r in doc.snapshot.results) or "none"
        raise SigningError(f"sitting {doc.uid}: no finished vote № {vote} (votes: {numbers})")


def render_signed(
    doc: SittingDoc,
    identity: Identity,
    *,
    vote: int | None = None,
    location: str | None = None,
    render: Renderer | None = None,
) -> bytes:
    """The protocol (or vote ``vote``'s result sheet) of ``doc``, rendered for ``identity`` (by
    ``render``, default :func:`default_renderer`) and signed."""
    check_vote(doc, vote)
    pdf = (render or default_renderer)(doc, vote, notice_for(identity.certificate))
    ref = document_ref(pdf)
    expected = DocumentRef(doc.uid, f"{doc.first_seq}-{doc.last_seq}", doc.head_text)
    # the renderer owes these to every document (DESIGN 8); a document without them could not be
    # checked against the journal later, so it is not signed
    if ref is None or (ref.sitting, ref.head) != (expected.sitting, expected.head):
        raise SigningError(
            f"the rendered PDF does not record sitting {doc.uid} and head {doc.head_text} in its information "
            f"dictionary (found: {ref})"
        )
    ref = DocumentRef(ref.sitting, ref.seq_range, ref.head, vote)  # the reason names no recordings
    return sign_pdf(pdf, identity, reason=ref.reason(), location=location)


def sign_sitting(
    journal: Journal,
    uid: str,
    identity: Identity,
    *,
    vote: int | None = None,
    location: str | None = None,
    render: Renderer | None = None,
    recordings: str | os.PathLike[str] | None = None,
) -> bytes:
    """Read sitting ``uid`` from ``journal`` and return its signed protocol (or vote's result sheet);
    a protocol lists the speech recordings in the folder ``recordings`` (``[recording] directory``).

    Raises ``SourceError`` when the journal cannot back a document, :class:`SigningError`, and
    ValueError for a recordings index that cannot be read."""
    doc = load_sitting(journal, uid)
    if vote is None and recordings is not None:
        doc = doc.with_recordings(load_listed(recordings, uid, doc.snapshot.speeches))
    return render_signed(doc, identity, vote=vote, location=location, render=render)

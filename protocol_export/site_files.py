"""The files published for a sitting: its protocol, each vote's result sheet and its open data.

One list of names, one way to make each, for both places they are published: the static site of
``chamber publish`` (protocol_export.publish writes them under ``files/<uid>/``) and the web app
(``/public/files/<uid>/<name>``, display/app.py), so a file downloaded from either is the same file.

* ``protocol.pdf`` — ``render_protocol``; ``vote-<n>.pdf`` — ``render_result_sheet`` of every finished
  vote (a cancelled one too: its sheet says so).  Signed (protocol_export.signing ``render_signed``,
  the notice a demo certificate calls for printed on the face) when an identity is given, else the
  renderer's unsigned bytes; the pages say which (``signed``).
* ``opendata/<name>`` — every file of ``protocol_export.opendata.write_opendata`` with its
  ``manifest.json`` (names in :func:`opendata_names`).

:class:`SittingFiles` makes them from one ``SittingDoc`` (and the item spans the open data needs), so
a publisher reads and verifies the journal once per sitting.  :class:`FileCache` is the web app's: it
keys every file by the sitting's journal head (``Journal.last_record``, one indexed row), so a
request after a new record renders again and any other is served from memory; the sitting is loaded
once per head however many of its files are asked for, and one lock per sitting keeps two requests
from rendering the same 1000-page protocol side by side.  Unsigned PDFs and the open data are
reproducible bytes of the journal; a signed PDF differs from another signing of it only in its
signature (the time of signing).

The renderer, pyHanko and the open-data writer are imported when a file is first made: the web app
imports this module at start and must stay light.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chamber.journal import Journal
    from protocol_export.facts import Facts
    from protocol_export.keys import Identity
    from protocol_export.source import SittingDoc
    from protocol_export.timeline import ItemSpan

PROTOCOL = "protocol.pdf"
OPENDATA_DIR = "opendata"

#: The content type each kind of file is served with.
MIME = {".pdf": "application/pdf", ".csv": "text/csv; charset=utf-8", ".json": "application/json"}


def sheet_name(vote: int) -> str:
    return f"vote-{vote}.pdf"


def opendata_names() -> list[str]:
    """The open-data files of a sitting, in the order the pages list them (the manifest last)."""
    from protocol_export import csvw_meta

    return [
        *(f"{table}.csv" for table in csvw_meta.TABLES),
        csvw_meta.METADATA_NAME,
        "popolo.json",
        "deputies.csv",
        "deputy-votes.csv",
        "deputies.json",
        "manifest.json",
    ]


def mime_of(name: str) -> str:
    dot = name.rfind(".")
    return MIME.get(name[dot:], "application/octet-stream")


@dataclass
class SittingFiles:
    """The files of one sitting, made on demand from its ``SittingDoc`` (see the module docstring)."""

    doc: SittingDoc
    spans: tuple[ItemSpan, ...]
    identity: Identity | None = None  # sign the PDFs with it; None: unsigned
    location: str | None = None  # the signature's /Location (the council's place)
    base_url: str = ""  # open data: where the council publishes its decisions
    convocation_dates: tuple[str, str] | None = None
    _opendata: dict[str, bytes] | None = field(default=None, repr=False)

    @property
    def signed(self) -> bool:
        return self.identity is not None

    def votes(self) -> list[int]:
        return [r.number for r in self.doc.snapshot.results]

    def names(self) -> list[str]:
        """Every file, relative to the sitting's folder: the protocol, the sheets, the open data."""
        return [
            PROTOCOL,
            *(sheet_name(n) for n in self.votes()),
            *(f"{OPENDATA_DIR}/{name}" for name in opendata_names()),
        ]

    def make(self, name: str) -> bytes | None:
        """The bytes of file ``name`` (one of :meth:`names`); None for a name the sitting has not."""
        if name == PROTOCOL:
            return self.pdf(None)
        if name.startswith("vote-") and name.endswith(".pdf"):
            number = name[len("vote-") : -len(".pdf")]
            known = number.isascii() and number.isdigit() and int(number) in self.votes()
            # "vote-01.pdf" is not a name the pages link to: one file, one name
            return self.pdf(int(number)) if known and name == sheet_name(int(number)) else None
        if name.startswith(f"{OPENDATA_DIR}/"):
            return self.opendata().get(name[len(OPENDATA_DIR) + 1 :])
        return None

    def pdf(self, vote: int | None) -> bytes:
        """The protocol (``vote`` None) or a vote's result sheet, signed when there is an identity."""
        if self.identity is not None:
            from protocol_export.signing import render_signed

            return render_signed(self.doc, self.identity, vote=vote, location=self.location)
        from protocol_export.pdf import render_protocol, render_result_sheet

        return render_protocol(self.doc) if vote is None else render_result_sheet(self.doc, vote)

    def facts(self) -> Facts:
        from protocol_export.facts import facts_of

        return facts_of(self.doc, self.spans, base_url=self.base_url)

    def opendata(self) -> dict[str, bytes]:
        """Every open-data file by name, the manifest included (made once)."""
        if self._opendata is None:
            from protocol_export import opendata
            from protocol_export.dialect import json_bytes

            facts = self.facts()
            files = opendata.documents(facts, self.convocation_dates)
            # the same bytes write_opendata writes: its manifest of these files
            files["manifest.json"] = json_bytes(opendata.manifest(facts, files))
            self._opendata = files
        return self._opendata


def load_files(
    journal: Journal,
    uid: str,
    *,
    identity: Identity | None = None,
    location: str | None = None,
    base_url: str = "",
    convocation_dates: tuple[str, str] | None = None,
) -> SittingFiles:
    """The files of sitting ``uid``: its journal read and verified (``SourceError`` if it cannot back a
    document)."""
    from protocol_export.source import load_sitting
    from protocol_export.timeline import item_spans

    doc = load_sitting(journal, uid)
    return SittingFiles(
        doc,
        item_spans(journal, uid),
        identity=identity,
        location=location,
        base_url=base_url,
        convocation_dates=convocation_dates,
    )


class FileCache:
    """The web app's files of every sitting, made on demand and kept while the sitting's head stays.

    ``identity`` is called once, on the first file: it gives the signing identity (None: unsigned),
    so a web app without [signing] never imports pyHanko and one whose key cannot be loaded says so
    in its log when a document is first asked for, not at start."""

    def __init__(
        self,
        journal: Journal,
        *,
        identity: Callable[[], Identity | None] = lambda: None,
        location: str | None = None,
        keep: int = 24,
    ) -> None:
        self._journal = journal
        self._identity_source = identity
        self._identity: Identity | None = None
        self._identity_known = False
        self._location = location
        self._keep = keep  # files kept in memory (a 450-seat protocol of 100 votes is ~24 MB)
        self._files: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._sittings: dict[str, tuple[str, SittingFiles]] = {}  # uid -> (head, its files)
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def identity(self) -> Identity | None:
        with self._lock:
            if not self._identity_known:
                self._identity = self._identity_source()
                self._identity_known = True
            return self._identity

    @property
    def signed(self) -> bool:
        return self.identity() is not None

    def _head(self, uid: str) -> str | None:
        last = self._journal.last_record(uid)
        return None if last is None else f"{last.seq}:{last.hash}"

    def get(self, uid: str, name: str) -> bytes | None:
        """File ``name`` of sitting ``uid`` for the journal as it stands; None if there is no such file
        (``SourceError`` when the journal cannot back a document)."""
        head = self._head(uid)
        if head is None:
            return None
        key = (uid, head, name)
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
            lock = self._locks.setdefault(uid, threading.Lock())
        identity = self.identity()
        with lock:  # one sitting's documents are made one at a time; other sittings go on
            with self._lock:
                if key in self._files:  # made by the request this one waited for
                    return self._files[key]
                known = self._sittings.get(uid)
            if known is None or known[0] != head:
                files = load_files(self._journal, uid, identity=identity, location=self._location)
                head = files.doc.head_text  # what was read, if records came in since the look above
                key = (uid, head, name)
                known = (head, files)
                with self._lock:
                    self._sittings[uid] = known
            data = known[1].make(name)
            if data is None:
                return None
            with self._lock:
                self._files[key] = data
                while len(self._files) > self._keep:
                    self._files.popitem(last=False)
            return data

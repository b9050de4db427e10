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
* ``recordings/<file>`` and ``recordings/SHA256SUMS`` — the speech recordings the protocol lists
  (given the recordings folder, ``[recording] directory``), copied as they are by ``chamber publish``
  (:meth:`SittingFiles.recording_files`) and served from that folder by the web app
  (:func:`recording_source`: only a file the protocol lists, by its exact name, and only while its
  bytes are the listed SHA-256); not made in memory, so not among :meth:`SittingFiles.names`.

:class:`SittingFiles` makes them from one ``SittingDoc`` (and the item spans the open data needs), so
a publisher reads and verifies the journal once per sitting.  :class:`FileCache` is the web app's: it
keys every file by the sitting's journal head (``Journal.last_record``, one indexed row), so a
request after a new record renders again and any other is served from memory, and one lock per
sitting keeps two requests from rendering the same 1000-page protocol side by side.  What makes a
file is a ``Maker``: :class:`LoadedSittings` here (a sitting loaded once per head however many of its
files are asked for), or :class:`ProcessMaker`, the same in a worker process — the web app's, so that
rendering never holds the interpreter the engine and the line loops run on.  Unsigned PDFs and the
open data are reproducible bytes of the journal; a signed PDF differs from another signing of it
only in its signature (the time of signing).

The renderer, pyHanko and the open-data writer are imported when a file is first made: the web app
imports this module at start and must stay light.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chamber.config_sections import SigningConfig
    from chamber.core.speakers import SpeechRecord
    from chamber.journal import Journal
    from protocol_export.facts import Facts
    from protocol_export.keys import Identity
    from protocol_export.recording_list import Listed
    from protocol_export.source import SittingDoc
    from protocol_export.timeline import ItemSpan

log = logging.getLogger("protocol_export.site_files")

PROTOCOL = "protocol.pdf"
OPENDATA_DIR = "opendata"
RECORDINGS_DIR = "recordings"
SUMS = "SHA256SUMS"  # the recordings' sums as sha256sum writes them: `sha256sum -c SHA256SUMS` checks them

#: The content type each kind of file is served with (Ogg Opus is audio/ogg: RFC 7845).
MIME = {
    ".pdf": "application/pdf",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
}
#: A recording's name as the recorder makes it (``001-2-kovalenko-olena-petrivna.opus``): a plain file
#: name, never a path, whatever an index says.
RECORDING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


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
    if name.rsplit("/", 1)[-1] == SUMS:
        return "text/plain; charset=utf-8"
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
    recordings_dir: str | None = None  # where doc.recordings' files are ([recording] directory)
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

    def recording_files(self) -> list[tuple[str, Path | None, str]]:
        """The recordings the protocol lists, as (name in the sitting's folder, the file, its listed
        SHA-256), and ``SHA256SUMS`` last (no file: its bytes are :meth:`sums`)."""
        if not self.doc.recordings or self.recordings_dir is None:
            return []
        from protocol_export.recording_files import sitting_dir

        folder = sitting_dir(self.recordings_dir, self.doc.uid)
        listed = [(f"{RECORDINGS_DIR}/{r.file}", folder / r.file, r.sha256) for r in self.doc.recordings]
        return [*listed, (f"{RECORDINGS_DIR}/{SUMS}", None, "")]

    def sums(self) -> bytes:
        """``SHA256SUMS`` of the listed recordings: «<sha256>  <file>» lines, as sha256sum writes them."""
        return sums_of(self.doc.recordings)

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


def sums_of(listed: Iterable[Listed]) -> bytes:
    """``SHA256SUMS`` of ``listed``: «<sha256>  <file>» lines, as sha256sum writes them."""
    return "".join(f"{r.sha256}  {r.file}\n" for r in listed).encode()


class RecordingChanged(Exception):
    """A listed recording whose file is not the bytes the protocol lists (or is gone)."""


def recording_source(
    directory: str | None, uid: str, speeches: Sequence[SpeechRecord], name: str
) -> Path | bytes | None:
    """What the web app serves as ``/public/files/<uid>/recordings/<name>``: the bytes of ``SHA256SUMS``,
    the file of a recording the protocol of ``speeches`` lists, or None for any other name (one the
    index does not list, or lists but is no plain file name: never a path out of the folder).

    The recordings are the ones ``chamber publish`` copies: listed from the index in ``directory`` by
    the speeches of the journal as it stands (a ValueError names an index that cannot be read).  A
    listed file that is gone or is not its listed SHA-256 is :class:`RecordingChanged`, as publish
    refuses to copy it; the hash is worked out once per file as it stands on disk (size, time, inode)."""
    from protocol_export.recording_files import check_sitting_uid, sitting_dir
    from protocol_export.recording_list import load_listed

    if directory is None:
        return None
    try:
        check_sitting_uid(uid)
    except ValueError:
        return None  # a sitting whose id can name no folder has no recordings
    listed = load_listed(directory, uid, speeches)
    if not listed:
        return None
    if name == SUMS:
        return sums_of(listed)
    rec = next((r for r in listed if r.file == name), None)
    if rec is None or not RECORDING_NAME.fullmatch(name):
        return None
    path = sitting_dir(directory, uid) / rec.file
    try:
        st = path.stat()
    except OSError as exc:
        raise RecordingChanged(f"{path}: listed in the protocol but cannot be read: {exc.strerror}") from exc
    if st.st_size != rec.bytes or _sha256_of(str(path), st.st_size, st.st_mtime_ns, st.st_ino) != rec.sha256:
        raise RecordingChanged(f"{path}: changed since the protocol listed it (not its listed SHA-256)")
    return path


_HASHES: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
_HASHES_LOCK = threading.Lock()


def _sha256_of(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """The SHA-256 of the file as it stood (a file written again has another time or inode)."""
    from protocol_export.recording_files import sha256_of

    key = (path, size, mtime_ns, inode)
    with _HASHES_LOCK:
        if key in _HASHES:
            _HASHES.move_to_end(key)
            return _HASHES[key]
    digest = sha256_of(Path(path))
    with _HASHES_LOCK:
        _HASHES[key] = digest
        while len(_HASHES) > 4096:
            _HASHES.popitem(last=False)
    return digest


def load_files(
    journal: Journal,
    uid: str,
    *,
    identity: Identity | None = None,
    location: str | None = None,
    base_url: str = "",
    convocation_dates: tuple[str, str] | None = None,
    recordings: str | None = None,
) -> SittingFiles:
    """The files of sitting ``uid``: its journal read and verified (``SourceError`` if it cannot back a
    document); the protocol lists the speech recordings in the folder ``recordings`` (a ValueError
    names an index there that cannot be read)."""
    from protocol_export.recording_list import load_listed
    from protocol_export.source import load_sitting
    from protocol_export.timeline import item_spans

    doc = load_sitting(journal, uid)
    doc = doc.with_recordings(load_listed(recordings, uid, doc.snapshot.speeches))
    return SittingFiles(
        doc,
        item_spans(journal, uid),
        identity=identity,
        location=location,
        base_url=base_url,
        convocation_dates=convocation_dates,
        recordings_dir=recordings,
    )


def head_of(journal: Journal, uid: str) -> str | None:
    """The sitting's journal head ``SEQ:HASH`` now (one indexed row), None for no such sitting."""
    last = journal.last_record(uid)
    return None if last is None else f"{last.seq}:{last.hash}"


#: Makes file ``name`` of sitting ``uid`` as the journal stands: (the head it was made at, the bytes or
#: None for a file the sitting has not).
Maker = Callable[[str, str], "tuple[str, bytes | None]"]


class LoadedSittings:
    """The in-process maker: the files of the last few sittings asked for, each kept while its head
    stays (loading a sitting reads and verifies its whole journal)."""

    def __init__(
        self,
        journal: Journal,
        identity: Callable[[], Identity | None] = lambda: None,
        location: str | None = None,
        keep: int = 2,
        recordings: str | None = None,
    ) -> None:
        self.journal, self.identity, self.location, self.keep = journal, identity, location, keep
        self.recordings = recordings  # [recording] directory: the protocol lists the speeches' recordings
        self.known: OrderedDict[str, SittingFiles] = OrderedDict()

    def __call__(self, uid: str, name: str) -> tuple[str, bytes | None]:
        files = self.known.get(uid)
        if files is None or files.doc.head_text != head_of(self.journal, uid):
            files = load_files(
                self.journal, uid, identity=self.identity(), location=self.location, recordings=self.recordings
            )
            self.known[uid] = files
            while len(self.known) > self.keep:
                self.known.popitem(last=False)
        self.known.move_to_end(uid)
        return files.doc.head_text, files.make(name)


class ProcessMaker:
    """Makes the files in a worker process of its own (spawned on the first request; one at a time).

    The web app runs in the controller's process, beside the engine and the line loops: rendering a
    1 000-page protocol there would hold the interpreter for seconds while consoles wait to be polled.
    The worker opens the store read-only by its URL and loads the signing key from ``[signing]``
    itself, so neither the journal nor a key crosses between processes; only names go there and bytes
    come back.  A worker that died is replaced on the next request."""

    def __init__(
        self, url: str, signing: SigningConfig | None, location: str | None, recordings: str | None = None
    ) -> None:
        self.url, self.signing, self.location, self.recordings = url, signing, location, recordings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, uid: str, name: str) -> tuple[str, bytes | None]:
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the web server's process has threads (engine, line loops, web)
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
            pool = self._pool
        try:
            job = pool.submit(_worker_make, self.url, self.signing, self.location, uid, name, self.recordings)
            return job.result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_WORKER: LoadedSittings | None = None  # in a ProcessMaker's worker: its store, key and sittings


def _worker_make(
    url: str, signing: SigningConfig | None, location: str | None, uid: str, name: str, recordings: str | None = None
) -> tuple[str, bytes | None]:
    global _WORKER
    if _WORKER is None:
        from chamber.journal import Journal

        identity = signing_identity(signing)
        _WORKER = LoadedSittings(Journal(url, create=False), lambda: identity, location, recordings=recordings)
    return _WORKER(uid, name)


def signing_identity(signing: SigningConfig | None) -> Identity | None:
    """The identity ``[signing]`` names; None when it names none or it cannot be loaded (logged: the
    documents go out unsigned, and the pages say so)."""
    if signing is None or not signing.enabled:
        return None
    from protocol_export.keys import SigningSetupError, load_identity

    try:
        return load_identity(signing)
    except SigningSetupError as exc:
        log.error("public files: not signed: %s", exc)
        return None


def process_maker(
    journal: Journal, signing: SigningConfig | None, location: str | None, recordings: str | None = None
) -> ProcessMaker | None:
    """A :class:`ProcessMaker` for ``journal``'s store; None for one another process cannot open (an
    in-memory SQLite database, a store opened through a custom connection).  ``recordings``: the
    ``[recording] directory`` whose recordings the protocols list (None: none listed)."""
    url = journal.engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return ProcessMaker(url.render_as_string(hide_password=False), signing, location, recordings)


class FileCache:
    """The web app's files of every sitting, made on demand and kept while the sitting's head stays.

    ``maker`` makes a file (default: :class:`LoadedSittings`, in this process; the web app gives a
    :class:`ProcessMaker`); ``recordings``: the ``[recording] directory`` the default maker's protocols
    list (a given maker has its own) and the web app serves the listed recordings from.  ``identity`` is
    asked once, for what the pages say (signed or not)."""

    def __init__(
        self,
        journal: Journal,
        *,
        identity: Callable[[], Identity | None] = lambda: None,
        location: str | None = None,
        keep: int = 24,
        maker: Maker | None = None,
        recordings: str | None = None,
    ) -> None:
        self._journal = journal
        self._identity_source = identity
        self._identity: Identity | None = None
        self._identity_known = False
        self._keep = keep  # files kept in memory (a 450-seat protocol of 100 votes is ~24 MB)
        self._files: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._maker: Maker = maker or LoadedSittings(journal, self.identity, location, recordings=recordings)
        self.recordings = recordings  # [recording] directory: the protocols list its recordings, served too

    def identity(self) -> Identity | None:
        with self._lock:
            if not self._identity_known:
                self._identity = self._identity_source()
                self._identity_known = True
            return self._identity

    @property
    def signed(self) -> bool:
        return self.identity() is not None

    def get(self, uid: str, name: str) -> bytes | None:
        """File ``name`` of sitting ``uid`` for the journal as it stands; None if there is no such file
        (``SourceError`` when the journal cannot back a document)."""
        head = head_of(self._journal, uid)
        if head is None:
            return None
        key = (uid, head, name)
        with self._lock:
            if key in self._files:
                self._files.move_to_end(key)
                return self._files[key]
            lock = self._locks.setdefault(uid, threading.Lock())
        with lock:  # one sitting's documents are made one at a time; other sittings go on
            with self._lock:
                if key in self._files:  # made by the request this one waited for
                    return self._files[key]
            made_at, data = self._maker(uid, name)  # made_at: newer than head if records came in since
            if data is None:
                return None
            with self._lock:
                self._files[(uid, made_at, name)] = data
                while len(self._files) > self._keep:
                    self._files.popitem(last=False)
            return data

    def close(self) -> None:
        """Stop the worker process, if the maker has one."""
        close = getattr(self._maker, "close", None)
        if close is not None:
            close()

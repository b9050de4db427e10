"""The speech recordings a protocol lists: an annex of the protocol, read from the recordings index.

The recorder (protocol_export.recording) writes one file per speech and ``<directory>/<uid>/index.json``.
A protocol lists, for each speech of its speech log, the recordings the index has of it (matched by
seat and start, as ``match_speeches``; a speech recorded in two parts after a restart has two) — never
a recording of a speech the protocol does not print, so a protocol made mid-sitting is made again
the same later, when the index has grown.  What it lists of each is a :class:`Listed`: its number,
file name, size, SHA-256, duration (to the ms), the speech's seat and start, and whether the sound is
complete — nothing else of the index reaches the document.

The list has one canonical text (:func:`list_text`): a line a recording, tab-separated in that order,
and its SHA-256 (:func:`list_digest`) is what the PDF's metadata records (``/ChamberRecordings``)
beside the text itself (``/ChamberRecordingList``), so ``chamber verify`` can:

* render the protocol again from the journal with the list the signed document carries — any
  difference left is the journal's (:func:`parse_list` gives the list back);
* compare that list with the index as it is now and with the files on disk
  (:func:`compare_recordings`): a file missing, a file whose bytes are not the listed SHA-256, a
  recording listed differently (added, gone, another size, hash or duration) — the recordings'
  problems, reported apart from the journal's.

With no recordings nothing is listed and the protocol is byte for byte what it was without them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chamber.core.speakers import SpeechRecord
    from protocol_export.recording_files import Recording

FIELDS = ("number", "file", "bytes", "sha256", "duration_ms", "seat", "start_ms", "complete")


class RecordingListError(ValueError):
    """A recordings list (a PDF's ``/ChamberRecordingList``) that cannot be read."""


@dataclass(frozen=True)
class Listed:
    """One recording as the protocol lists it."""

    number: int
    file: str
    bytes: int
    sha256: str
    duration_ms: int
    seat: int
    start_ms: int
    complete: bool

    @classmethod
    def of(cls, rec: Recording) -> Listed:
        return cls(
            number=rec.number,
            file=rec.file,
            bytes=rec.bytes,
            sha256=rec.sha256,
            duration_ms=round(rec.duration_s * 1000),
            seat=rec.seat,
            start_ms=rec.start_ms,
            complete=rec.complete,
        )

    def line(self) -> str:
        values = (*(getattr(self, name) for name in FIELDS[:-1]), int(self.complete))
        return "\t".join(str(v) for v in values) + "\n"


def listed_for(speeches: Sequence[SpeechRecord], recordings: Iterable[Recording]) -> tuple[Listed, ...]:
    """The recordings of ``speeches`` (a protocol's speech log) among ``recordings`` (an index), in
    the order of their numbers."""
    spoken = {(s.seat, s.start) for s in speeches}
    return tuple(sorted((Listed.of(r) for r in recordings if (r.seat, r.start_ms) in spoken), key=lambda r: r.number))


def by_speech(speeches: Sequence[SpeechRecord], listed: Iterable[Listed]) -> list[list[Listed]]:
    """For each speech, its listed recordings (none, one, or the parts of a speech resumed after a
    restart)."""
    parts: dict[tuple[int, int], list[Listed]] = {}
    for rec in listed:
        parts.setdefault((rec.seat, rec.start_ms), []).append(rec)
    return [parts.get((s.seat, s.start), []) for s in speeches]


def load_listed(
    directory: str | os.PathLike[str] | None, uid: str, speeches: Sequence[SpeechRecord]
) -> tuple[Listed, ...]:
    """What a protocol of sitting ``uid`` lists from the recordings ``directory`` (``[recording]
    directory`` or ``--recordings``); () for no directory or no index.  A ValueError names an index
    that cannot be read."""
    if directory is None:
        return ()
    from protocol_export.recording_files import list_recordings

    return listed_for(speeches, list_recordings(directory, uid))


def list_text(listed: Iterable[Listed]) -> str:
    """The canonical text of a list: a line a recording, the fields of :data:`FIELDS` tab-separated."""
    return "".join(rec.line() for rec in listed)


def list_digest(listed: Iterable[Listed]) -> str:
    """SHA-256 of :func:`list_text` (hex): what the protocol's metadata and annex record."""
    return hashlib.sha256(list_text(listed).encode()).hexdigest()


def parse_list(text: str) -> tuple[Listed, ...]:
    """The list :func:`list_text` wrote; RecordingListError for anything else."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        values = line.split("\t")
        if len(values) != len(FIELDS):
            raise RecordingListError(f"recordings list, line {n}: {len(values)} fields, not {len(FIELDS)}")
        number, file, size, sha, duration, seat, start, complete = values
        try:
            out.append(Listed(int(number), file, int(size), sha, int(duration), int(seat), int(start), complete == "1"))
        except ValueError as exc:
            raise RecordingListError(f"recordings list, line {n}: {exc}") from None
    return tuple(out)


def compare_recordings(signed: Sequence[Listed], now: Sequence[Listed], folder: Path | None) -> list[str]:
    """What differs between the recordings a signed protocol lists (``signed``), those the index lists
    now for the same speeches (``now``) and the files in the sitting's ``folder`` (None: not checked)."""
    problems = []
    was = {r.file: r for r in signed}
    is_now = {r.file: r for r in now}
    for name in sorted(was.keys() - is_now.keys()):
        problems.append(f"{name}: listed in the protocol, not in the recordings index")
    for name in sorted(is_now.keys() - was.keys()):
        problems.append(f"{name}: in the recordings index, not listed in the protocol")
    for name in sorted(was.keys() & is_now.keys()):
        if was[name] != is_now[name]:
            fields = [f for f in FIELDS if getattr(was[name], f) != getattr(is_now[name], f)]
            problems.append(f"{name}: listed differently in the recordings index ({', '.join(fields)})")
    if folder is not None:
        from protocol_export.recording_files import sha256_of

        for rec in signed:
            path = folder / rec.file
            if not path.is_file():
                problems.append(f"{rec.file}: missing from {folder}")
            elif sha256_of(path) != rec.sha256:
                problems.append(f"{rec.file}: changed (its SHA-256 is not the one the protocol lists)")
    return problems

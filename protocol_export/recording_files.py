"""Speech recordings on disk: formats, names, tags, the index, and what the documents and pages read.

Layout, beside the protocol::

    <directory>/<sitting uid>/001-2-shevchenko-taras-hryhorovych.opus
    <directory>/<sitting uid>/002-none-seat-7.opus       (no agenda item, no deputy known at the seat)
    <directory>/<sitting uid>/index.json

``NNN`` numbers the recordings of a sitting in the order the speeches started (a restarted controller
carries on after the highest number on disk, a leftover ``.part`` file included); the item is the
agenda item's number; the speaker is the deputy's name transliterated by the Ukrainian national
rules (КМУ 2010) — Latin letters, digits and hyphens only, so the names survive any file system,
web server or archive tool.  A file is written as ``<name>.part`` and renamed when complete: a name
without ``.part`` is always a finished, tagged file.

Formats (``FORMATS``): ``opus`` (Ogg Opus, ``.opus``: made for speech, about 64 kbit/s; 8, 12, 16, 24
or 48 kHz only), ``vorbis`` (Ogg Vorbis, ``.ogg``) and ``flac`` (lossless, ``.flac``), encoded by
libsndfile through ``soundfile`` and tagged with Vorbis comments through ``mutagen``: TITLE (speaker,
kind of speech, item), ARTIST (the speaker), ALBUM (council and sitting), DATE (the day in Kyiv),
TRACKNUMBER, GENRE, ORGANIZATION, and SITTING, SITTING_NUMBER, ITEM, ITEM_TITLE, SEAT, DEPUTY, KIND,
START, END (the speech log's times, ISO 8601 in Kyiv time with the offset), RECORDED_FROM (where the
sound begins: the start less the pre-roll), LIMIT_S, ENDED_BY and JOURNAL_SEQ (the journal record
that gave the floor).

``index.json`` lists every finished recording (:class:`Recording`: file, SHA-256, bytes, duration,
the speech's coordinates and the tags) and is replaced atomically after each one.

For the protocol and the public pages:

* ``list_recordings(directory, sitting_uid)`` -> the sitting's recordings in order (empty when there
  are none); a ``sitting_uid`` that is not a plain sitting id is a ValueError, so a page may pass one
  from a URL;
* ``match_speeches(speeches, recordings)`` -> for each ``SpeechRecord`` of the speech log, its
  recording or None (matched by seat and start time);
* ``verify_recordings(directory, sitting_uid)`` -> problems (a listed file missing or changed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from chamber.core.speakers import SpeechRecord

KYIV = ZoneInfo("Europe/Kyiv")
INDEX = "index.json"
PART = ".part"
_SITTING_UID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,63}")
_NUMBERED = re.compile(r"([0-9]{3,})-")


@dataclass(frozen=True)
class AudioFormat:
    name: str  # as in config.toml
    container: str  # libsndfile's major format
    subtype: str
    ext: str
    samplerates: tuple[int, ...] = ()  # the only rates it takes; () any


OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
FORMATS: dict[str, AudioFormat] = {
    "opus": AudioFormat("opus", "OGG", "OPUS", ".opus", OPUS_RATES),
    "vorbis": AudioFormat("vorbis", "OGG", "VORBIS", ".ogg"),
    "flac": AudioFormat("flac", "FLAC", "PCM_16", ".flac"),
}


# --- encoding --------------------------------------------------------------------------------------


class Encoder(Protocol):
    def write(self, frames: npt.NDArray[np.int16]) -> None: ...

    def close(self) -> None: ...


EncoderFactory = Callable[[Path, AudioFormat, int, int], Encoder]


def soundfile_encoder(path: Path, fmt: AudioFormat, samplerate: int, channels: int) -> Encoder:
    """A libsndfile writer for ``path`` (soundfile is imported here, on the recorder's thread, only when
    a speech is recorded)."""
    import soundfile

    sf: Encoder = soundfile.SoundFile(
        str(path), "w", samplerate=samplerate, channels=channels, format=fmt.container, subtype=fmt.subtype
    )
    return sf


def write_tags(path: Path, tags: Mapping[str, str]) -> None:
    """Set the Vorbis comments of an Ogg Opus, Ogg Vorbis or FLAC file (by its content, not its name)."""
    from mutagen import flac, oggopus, oggvorbis

    with open(path, "rb") as f:
        head = f.read(64)
    kind: Any = (
        flac.FLAC if head.startswith(b"fLaC") else oggopus.OggOpus if b"OpusHead" in head else oggvorbis.OggVorbis
    )
    audio = kind(path)
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.items():
        audio[key] = [value]
    audio.save()


def read_tags(path: Path) -> dict[str, str]:
    """The file's tags (upper-case keys, first value of each)."""
    import mutagen

    audio = mutagen.File(path)
    if audio is None or audio.tags is None:
        return {}
    return {str(key).upper(): str(values[0]) for key, values in audio.tags.as_dict().items() if values}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- names -----------------------------------------------------------------------------------------

# КМУ 2010 (постанова № 55): the letter inside a word; _INITIAL: at the start of a word
_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "h", "ґ": "g", "д": "d", "е": "e", "є": "ie", "ж": "zh", "з": "z",
    "и": "y", "і": "i", "ї": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
    "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ь": "", "ю": "iu", "я": "ia", "ё": "io", "ы": "y", "э": "e", "ъ": "",
}  # fmt: skip
_INITIAL = {"є": "ye", "ї": "yi", "й": "y", "ю": "yu", "я": "ya"}
_APOSTROPHES = "'’ʼ`"


def transliterate(text: str) -> str:
    """Ukrainian text in Latin letters by the national rules: «Шевченко Тарас» -> "Shevchenko Taras",
    «Згурський» -> "Zghurskyi", «Юрій» -> "Yurii"."""
    out: list[str] = []
    previous = ""
    for char in text:
        low = char.lower()
        if char in _APOSTROPHES:
            continue  # not written in Latin letters, and does not start a new word
        if low in _LATIN:
            at_start = not previous.isalpha()
            latin = _INITIAL[low] if at_start and low in _INITIAL else _LATIN[low]
            if low == "г" and previous.lower() == "з":
                latin = "gh"  # «зг» is "zgh", not "zh", so it is not read as «ж»
            out.append(latin.capitalize() if char != low and latin else latin)
        else:
            out.append(char)
        previous = char
    return "".join(out)


def slug(text: str) -> str:
    """Lower-case Latin letters, digits and single hyphens: «Шевченко Тарас» -> "shevchenko-taras"."""
    latin = transliterate(text).lower()
    return re.sub(r"[^a-z0-9]+", "-", latin).strip("-")[:60].strip("-")


def file_name(number: int, item: str | None, speaker: str | None, seat: int, fmt: AudioFormat) -> str:
    """``NNN-<item>-<speaker>.<ext>``; "none" for no item, ``seat-N`` for no known speaker."""
    item_part = re.sub(r"[^0-9A-Za-z.]+", "_", item).strip("._") if item else ""
    speaker_part = slug(speaker) if speaker else ""
    return f"{number:03d}-{item_part or 'none'}-{speaker_part or f'seat-{seat}'}{fmt.ext}"


def kyiv_iso(ms: float) -> str:
    """Epoch ms as ISO 8601 in Kyiv time with its offset, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000, KYIV).isoformat(timespec="milliseconds")


def kyiv_day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, KYIV).date().isoformat()


def check_sitting_uid(uid: str) -> str:
    """``uid`` if it can name a folder of the archive (no separators, no dots: never outside it)."""
    if not isinstance(uid, str) or not _SITTING_UID.fullmatch(uid):
        raise ValueError(f"not a sitting id: {uid!r}")
    return uid


def sitting_dir(directory: str | os.PathLike[str], uid: str) -> Path:
    return Path(directory) / check_sitting_uid(uid)


def highest_number(folder: Path) -> int:
    """The highest ``NNN`` among the files in ``folder`` (finished or ``.part``), 0 if none."""
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    numbers = [int(m.group(1)) for name in names if (m := _NUMBERED.match(name))]
    return max(numbers, default=0)


# --- the index -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recording:
    """One finished recording, as listed in ``index.json``."""

    number: int
    file: str  # the name inside the sitting's folder
    sha256: str
    bytes: int
    duration_s: float
    format: str
    samplerate: int
    channels: int
    sitting: str
    seat: int
    deputy: int | None
    speaker: str  # the deputy's full name, or "" when the seat had none
    kind: str  # SpeechKind value
    item: str | None  # agenda item number
    item_title: str
    start_ms: int  # the speech log's start and end (engine ms)
    end_ms: int | None  # None: the recorder stopped before the speech ended
    recorded_from_ms: float  # where the sound begins (start - pre-roll, or later if it was not heard)
    journal_seq: int | None  # the journal record that gave the floor
    ended_by: str  # SpeechRecord.ended_by, or "recorder_stopped"
    complete: bool  # sound from the pre-roll to the end, without a gap
    tags: dict[str, str] = field(default_factory=dict)

    def path(self, directory: str | os.PathLike[str]) -> Path:
        return sitting_dir(directory, self.sitting) / self.file

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recording:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def index_path(directory: str | os.PathLike[str], uid: str) -> Path:
    return sitting_dir(directory, uid) / INDEX


def list_recordings(directory: str | os.PathLike[str], sitting_uid: str) -> tuple[Recording, ...]:
    """The recordings of ``sitting_uid`` under ``directory`` (config ``[recording] directory``) in the
    order of their numbers; () when none were made.  An unreadable index is a ValueError naming it."""
    path = index_path(directory, sitting_uid)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    try:
        data = json.loads(raw)
        items = [Recording.from_json(item) for item in data["recordings"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a recordings index: {exc}") from exc
    return tuple(sorted(items, key=lambda r: r.number))


def save_index(directory: str | os.PathLike[str], uid: str, recordings: Iterable[Recording]) -> Path:
    """Write the index in one step (a temporary file renamed over it): a reader never sees half."""
    path = index_path(directory, uid)
    items = sorted(recordings, key=lambda r: r.number)
    text = json.dumps({"sitting": uid, "recordings": [r.to_json() for r in items]}, ensure_ascii=False, indent=1)
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def match_speeches(speeches: Iterable[SpeechRecord], recordings: Iterable[Recording]) -> list[Recording | None]:
    """For each speech of the speech log (``SittingDoc.snapshot.speeches``), its recording or None."""
    by_speech = {(r.seat, r.start_ms): r for r in recordings}
    return [by_speech.get((s.seat, s.start)) for s in speeches]


def verify_recordings(directory: str | os.PathLike[str], sitting_uid: str) -> list[str]:
    """Problems with the recordings the index lists: a file missing, or not the bytes it lists."""
    problems = []
    for rec in list_recordings(directory, sitting_uid):
        path = rec.path(directory)
        if not path.is_file():
            problems.append(f"{rec.file}: missing")
        elif sha256_of(path) != rec.sha256:
            problems.append(f"{rec.file}: changed (SHA-256 differs from the index)")
    return problems

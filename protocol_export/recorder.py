"""The speech recorder's thread (protocol_export.recording): the ring, the cuts, the files, the alerts.

How it works
------------
:class:`Recorder` has a thread of its own.  It reads blocks from the source
(:mod:`protocol_export.audio_sources`), keeps the last ``pre_roll_s + buffer_s`` seconds in a ring,
and takes the messages the engine's subscriber posts (:mod:`protocol_export.recording_subscriber`).
A speech's file begins at ``start - pre_roll_s`` (the first syllable said just before the
microphone's LED lit is not lost: it is still in the ring) and ends at the speech log's end; both
cuts are made to the sample.  Encoding, tagging, hashing and the index are all done here (the files,
names, tags and index themselves: :mod:`protocol_export.recording_files`).  Because every block
carries the engine's time, the order in which sound and messages arrive does not matter: a speech
whose end is announced before its last sound was heard stays open until the sound has passed its end,
and a recorder that fell behind (a slow disk) catches up from the source's queue.  The other way round
— sound heard before the message that the speech ended, which the engine sends only after the
journal's fsync — is why a speech's file is written ``hold_s`` (2 s) behind the newest sound: what
lies past the end is still in the ring, never in the file.

Nothing that goes wrong here reaches the engine or the line loops.  A sound input that cannot be
opened or stops (a USB card unplugged) is logged as an ERROR line starting ``recording:`` and opened
again every ``reopen_after_s``; a file that cannot be created or written (a full disk, a read-only
folder) is logged the same way, its speech is given up (the partial file removed) and the next speech
is tried afresh; the same error is not repeated in the log more than once a minute.  ``status()`` says
what the recorder is doing and lists its recent alerts, for the web console.

API: ``Recorder(source, directory, fmt=, pre_roll_s=, ...)``, ``.attach(engine)``, ``.start()``,
``.stop()``, ``.flush(until_ms, timeout)`` (wait until the sound up to ``until_ms`` is in the files:
tests), ``.status()``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chamber.report import SPEECH_UK
from protocol_export.audio_sources import AudioSource, Block
from protocol_export.recording_files import (
    FORMATS,
    PART,
    EncoderFactory,
    Recording,
    file_name,
    highest_number,
    kyiv_day,
    kyiv_iso,
    list_recordings,
    save_index,
    sha256_of,
    sitting_dir,
    soundfile_encoder,
    write_tags,
)
from protocol_export.recording_subscriber import Flush, Message, SpeechEnded, SpeechStarted, engine_subscriber

if TYPE_CHECKING:
    from chamber.engine import Engine
    from protocol_export.recording_files import Encoder

log = logging.getLogger("chamber.recording")  # one log name for the recordings (see protocol_export.recording)

REPEAT_ALERT_S = 60.0  # the same failure is logged again only after this long
_KIND_UK = {str(kind): words for kind, words in SPEECH_UK.items()}


@dataclass
class _Take:
    """A speech being written."""

    speech: SpeechStarted
    number: int
    name: str
    part: Path
    from_ms: float  # the start less the pre-roll
    encoder: Encoder | None = None
    end_ms: int | None = None
    ended_by: str = ""
    written_ms: float | None = None  # the sound written so far ends here
    first_ms: float | None = None  # the first sound written
    frames: int = 0
    gaps: int = 0
    failed: str = ""


@dataclass
class _Status:
    source: str
    source_open: bool = False
    audio_ms: float | None = None
    recording: int = 0
    recorded: int = 0
    failed: int = 0
    alerts: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=20))


class Recorder:
    """Records each speech from ``source`` into ``directory``; see the module docstring."""

    def __init__(
        self,
        source: AudioSource,
        directory: str | os.PathLike[str],
        *,
        fmt: str = "opus",
        pre_roll_s: float = 0.5,
        buffer_s: float = 5.0,
        hold_s: float = 2.0,
        encoder: EncoderFactory = soundfile_encoder,
        reopen_after_s: float = 5.0,
        max_gap_s: float = 10.0,
    ) -> None:
        self.format = FORMATS[fmt]
        if self.format.samplerates and source.samplerate not in self.format.samplerates:
            rates = ", ".join(map(str, self.format.samplerates))
            raise ValueError(f"{fmt} takes a sample rate of {rates} Hz, not {source.samplerate}")
        self.source = source
        self.directory = Path(directory)
        self.pre_roll_ms = pre_roll_s * 1000
        if buffer_s < hold_s + 1:
            raise ValueError(f"buffer_s ({buffer_s}) must exceed hold_s ({hold_s}) by a second at least")
        self._ring_ms = (pre_roll_s + buffer_s) * 1000
        self._hold_ms = hold_s * 1000
        self._encoder = encoder
        self.reopen_after_s = reopen_after_s
        self._max_gap = int(max_gap_s * source.samplerate)
        self._inbox: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._ring: deque[Block] = deque()
        self._takes: dict[tuple[str, int, int], _Take] = {}
        self._index: dict[str, list[Recording]] = {}
        self._numbered: dict[str, int] = {}  # sitting -> the last number given in this run
        self._flushes: list[Flush] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at = 0.0
        self._last_alert: dict[str, float] = {}
        self._status = _Status(source=source.description)

    # --- other threads ----------------------------------------------------------------------------

    def post(self, message: Message) -> None:
        """Hand a message to the recorder; never blocks (any thread)."""
        self._inbox.put(message)

    def attach(self, engine: Engine) -> None:
        engine.subscribe(engine_subscriber(engine, self.post))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chamber-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish every file (a speech still going is closed where the sound ends) and stop."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._inbox.put(None)
        thread.join(timeout)
        if thread.is_alive():
            log.error("recording: the recorder did not stop within %.0f s", timeout)

    def flush(self, until_ms: float, timeout: float = 10.0) -> bool:
        """Wait until every message posted before is taken and the sound up to ``until_ms`` is in the
        files, every speech ended by then finished and listed; False if ``timeout`` passed first."""
        done = threading.Event()
        self.post(Flush(until_ms, done))
        return done.wait(timeout)

    def status(self) -> dict[str, Any]:
        st = self._status
        return {
            "source": st.source,
            "source_open": st.source_open,
            "audio_ms": st.audio_ms,
            "recording": st.recording,
            "recorded": st.recorded,
            "failed": st.failed,
            "alerts": [{"at": at, "text": text} for at, text in list(st.alerts)],
        }

    # --- the recorder's thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception as exc:  # a defect here must not end the recordings of the sitting
                    log.exception("recording: internal error")
                    self._alert(f"internal error: {type(exc).__name__}: {exc}")
                    self._stopping.wait(0.2)
        finally:
            self._shutdown()

    def _step(self) -> None:
        self._take_messages()
        if not self._status.source_open:
            self._open_source()
            if not self._status.source_open:
                self._finish_due(source_down=True)
                self._stopping.wait(0.05)
                return
        try:
            block = self.source.read(0.1)
        except Exception as exc:
            self._alert(f"the sound input failed: {exc}; opening it again in {self.reopen_after_s:.0f} s")
            self._close_source()
            return
        if block is not None:
            self._hear(block)
        self._take_messages()
        self._finish_due()

    def _open_source(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            self.source.open()
        except Exception as exc:
            self._retry_at = time.monotonic() + self.reopen_after_s
            self._alert(f"cannot open the sound input: {exc}; trying again every {self.reopen_after_s:.0f} s")
            return
        self._status.source_open = True
        log.info("recording: listening to %s", self.source.description)

    def _close_source(self) -> None:
        self._status.source_open = False
        self._retry_at = time.monotonic() + self.reopen_after_s
        try:
            self.source.close()
        except Exception as exc:
            log.warning("recording: closing the sound input: %s", exc)

    def _take_messages(self) -> None:
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            if message is None:
                self._stopping.set()
            elif isinstance(message, SpeechStarted):
                self._begin(message)
            elif isinstance(message, SpeechEnded):
                take = self._takes.get((message.sitting, message.seat, message.start_ms))
                if take is not None:
                    take.end_ms, take.ended_by = message.end_ms, message.ended_by
            else:
                self._flushes.append(message)

    def _hear(self, block: Block) -> None:
        ring = self._ring
        ring.append(block)
        while ring and ring[0].end_ms < block.end_ms - self._ring_ms:
            ring.popleft()
        self._status.audio_ms = block.end_ms
        for take in list(self._takes.values()):
            self._catch_up(take, block.end_ms - self._hold_ms)

    def _begin(self, speech: SpeechStarted) -> None:
        key = (speech.sitting, speech.seat, speech.start_ms)
        if key in self._takes:  # the MicOn a resumed sitting starts with, for a speech already taken
            return
        folder = sitting_dir(self.directory, speech.sitting)
        # never a number used before: on disk (a .part a power cut left), in the index, or in this run
        # (a speech that could not be recorded keeps its number: the gap shows in the listing)
        number = 1 + max(
            highest_number(folder),
            self._numbered.get(speech.sitting, 0),
            *(r.number for r in self._recordings(speech.sitting)),
        )
        self._numbered[speech.sitting] = number
        name = file_name(number, speech.item, speech.speaker, speech.seat, self.format)
        take = _Take(speech, number, name, folder / (name + PART), speech.start_ms - self.pre_roll_ms)
        self._takes[key] = take
        self._status.recording = len(self._takes)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            take.encoder = self._encoder(take.part, self.format, self.source.samplerate, self.source.channels)
        except Exception as exc:
            self._fail(take, f"cannot create {take.part}: {_why(exc)}")
            return
        if self._ring and self._ring[0].start_ms > take.from_ms + 1:
            # the speech began before the oldest sound kept (the recorder was started late, or far behind)
            log.warning("recording: %s: the sound before %s was not heard", name, kyiv_iso(self._ring[0].start_ms))
        if self._status.audio_ms is not None:
            self._catch_up(take, self._status.audio_ms - self._hold_ms)

    def _catch_up(self, take: _Take, until: float) -> None:
        """Write the ring's sound for ``take`` up to ``until`` (and never past the speech's end)."""
        lo = take.from_ms if take.written_ms is None else take.written_ms
        newer = []
        for block in reversed(self._ring):  # only the few blocks not written yet are visited
            if block.end_ms <= lo:
                break
            newer.append(block)
        for block in reversed(newer):
            if block.start_ms >= until or take.encoder is None:
                return
            self._write(take, block, until)

    def _write(self, take: _Take, block: Block, until: float) -> None:
        if take.encoder is None:
            return
        rate = block.samplerate
        lo = take.from_ms if take.written_ms is None else take.written_ms
        hi = min(until, math.inf if take.end_ms is None else float(take.end_ms))
        b0, count = block.start_ms, len(block.frames)
        if block.end_ms <= lo or b0 >= hi:
            return
        i0 = max(0, round((lo - b0) * rate / 1000))
        i1 = count if hi >= block.end_ms else min(count, round((hi - b0) * rate / 1000))
        if i1 <= i0:
            return
        chunks = []
        if take.written_ms is None:
            take.first_ms = b0 + i0 * 1000 / rate
        else:
            gap = round((b0 + i0 * 1000 / rate - take.written_ms) * rate / 1000)
            if gap > 0:  # sound that never came (dropped blocks, a device gap): silence keeps the file's time
                take.gaps += 1
                if gap <= self._max_gap:
                    chunks.append(np.zeros((gap, block.frames.shape[1]), dtype=np.int16))
        chunks.append(block.frames[i0:i1])
        try:
            for chunk in chunks:
                take.encoder.write(chunk)
                take.frames += len(chunk)
        except Exception as exc:
            self._fail(take, f"cannot write {take.part}: {_why(exc)}{_space(take.part)}")
            return
        take.written_ms = b0 + i1 * 1000 / rate

    def _finish_due(self, *, source_down: bool = False) -> None:
        heard = self._status.audio_ms
        for key, take in list(self._takes.items()):
            if take.end_ms is not None and (source_down or (heard is not None and heard >= take.end_ms)):
                del self._takes[key]
                self._catch_up(take, take.end_ms)
                self._finish(take)
        self._status.recording = len(self._takes)
        pending = []
        for flush in self._flushes:
            due = any(t.end_ms is not None and t.end_ms <= flush.until_ms for t in self._takes.values())
            if not due and (source_down or (heard is not None and heard >= flush.until_ms)):
                flush.done.set()
            else:
                pending.append(flush)
        self._flushes = pending

    def _finish(self, take: _Take) -> None:
        encoder, take.encoder = take.encoder, None
        if encoder is None:
            log.warning("recording: speech %s was not recorded: %s", take.name, take.failed or "no sound input")
            return
        try:
            encoder.close()
        except Exception as exc:
            self._fail(take, f"cannot finish {take.part}: {_why(exc)}{_space(take.part)}")
            return
        speech = take.speech
        if take.frames == 0:
            take.part.unlink(missing_ok=True)
            self._status.failed += 1
            self._alert(f"no sound was heard for speech {take.name}; nothing recorded")
            return
        rate = self.source.samplerate
        frame_ms = 1000 / rate
        first = take.first_ms if take.first_ms is not None else take.from_ms
        complete = (
            take.end_ms is not None
            and take.gaps == 0
            and first <= take.from_ms + frame_ms
            and take.written_ms is not None
            and take.written_ms >= take.end_ms - frame_ms
        )
        tags = self._tags(take, first)
        try:
            write_tags(take.part, tags)
            final = take.part.with_name(take.name)
            os.replace(take.part, final)
            recording = Recording(
                number=take.number,
                file=take.name,
                sha256=sha256_of(final),
                bytes=final.stat().st_size,
                duration_s=round(take.frames / rate, 3),
                format=self.format.name,
                samplerate=rate,
                channels=self.source.channels,
                sitting=speech.sitting,
                seat=speech.seat,
                deputy=speech.deputy,
                speaker=speech.speaker,
                kind=speech.kind,
                item=speech.item,
                item_title=speech.item_title,
                start_ms=speech.start_ms,
                end_ms=take.end_ms,
                recorded_from_ms=round(first, 3),
                journal_seq=speech.journal_seq,
                ended_by=take.ended_by or "recorder_stopped",
                complete=complete,
                tags=tags,
            )
            listed = self._recordings(speech.sitting)
            listed.append(recording)
            save_index(self.directory, speech.sitting, listed)
        except Exception as exc:
            take.part.unlink(missing_ok=True)
            self._status.failed += 1
            self._alert(f"cannot finish {take.name}: {_why(exc)}")
            return
        self._status.recorded += 1
        log.info("recording: %s (%.1f s)%s", final, take.frames / rate, "" if complete else ", incomplete")

    def _tags(self, take: _Take, first: float) -> dict[str, str]:
        s = take.speech
        speaker = s.speaker or f"місце {s.seat}"
        kind = _KIND_UK.get(s.kind, s.kind)
        item = "поза порядком денним"
        if s.item:
            item = f"питання {s.item}" + (f" «{s.item_title}»" if s.item_title else "")
        sitting = f"засідання № {s.sitting_number}" + (f": {s.sitting_title}" if s.sitting_title else "")
        tags = {
            "TITLE": f"{speaker}, {kind}, {item}",
            "ARTIST": speaker,
            "ALBUM": f"{s.council}, {sitting}" if s.council else sitting,
            "DATE": kyiv_day(s.start_ms),
            "TRACKNUMBER": str(take.number),
            "GENRE": "Speech",
            "ORGANIZATION": s.council,
            "SITTING": s.sitting,
            "SITTING_NUMBER": str(s.sitting_number),
            "ITEM": s.item or "",
            "ITEM_TITLE": s.item_title,
            "SEAT": str(s.seat),
            "DEPUTY": "" if s.deputy is None else str(s.deputy),
            "KIND": s.kind,
            "START": kyiv_iso(s.start_ms),
            "END": "" if take.end_ms is None else kyiv_iso(take.end_ms),
            "RECORDED_FROM": kyiv_iso(first),
            "LIMIT_S": str(s.limit_s),
            "ENDED_BY": take.ended_by or "recorder_stopped",
            "JOURNAL_SEQ": "" if s.journal_seq is None else str(s.journal_seq),
        }
        return {key: value for key, value in tags.items() if value}

    def _recordings(self, uid: str) -> list[Recording]:
        listed = self._index.get(uid)
        if listed is None:
            try:
                listed = list(list_recordings(self.directory, uid))
            except OSError as exc:  # not cached: read again next time rather than overwrite it
                self._alert(f"cannot read the index of sitting {uid}: {_why(exc)}")
                return []
            except ValueError as exc:  # kept aside, not overwritten: the files it lists are still there
                self._alert(f"{exc}; a new index is started beside it")
                bad = sitting_dir(self.directory, uid) / "index.json"
                with contextlib.suppress(OSError):
                    os.replace(bad, bad.with_name(f"index.unreadable-{int(time.time())}.json"))
                listed = []
            self._index[uid] = listed
        return listed

    def _fail(self, take: _Take, why: str) -> None:
        """Give the speech up: the sitting goes on; the next speech is tried afresh."""
        take.failed = why
        encoder, take.encoder = take.encoder, None
        if encoder is not None:
            # the disk that failed the write may fail the close too: nothing to add to the alert
            with contextlib.suppress(Exception):
                encoder.close()
        with contextlib.suppress(OSError):
            take.part.unlink(missing_ok=True)
        self._status.failed += 1
        self._alert(f"{why}; speech {take.number} of sitting {take.speech.sitting} is not recorded")

    def _alert(self, text: str) -> None:
        now = time.monotonic()
        # the same failure again (a source retried every few seconds) is logged once a minute
        key = text.split(";")[0]
        if now - self._last_alert.get(key, -math.inf) >= REPEAT_ALERT_S:
            log.error("recording: %s", text)
            self._last_alert[key] = now
        self._status.alerts.append((time.time(), text))

    def _shutdown(self) -> None:
        self._take_messages()
        # sound still on its way for a speech that has ended: wait for it a little (never for long)
        deadline = time.monotonic() + 2.0
        while self._status.source_open and time.monotonic() < deadline:
            heard = self._status.audio_ms
            if not any(t.end_ms is not None and (heard is None or heard < t.end_ms) for t in self._takes.values()):
                break
            try:
                block = self.source.read(0.1)
            except Exception:
                break
            if block is not None:
                self._hear(block)
        for take in list(self._takes.values()):
            self._catch_up(take, math.inf)  # up to its end, or all there is of a speech still going
            self._finish(take)
        self._takes.clear()
        self._status.recording = 0
        if self._status.source_open:
            self._close_source()
        for flush in self._flushes:
            flush.done.set()
        self._flushes = []


def _space(path: Path) -> str:
    """ "(12 MB free on that disk)": libsndfile's own words for a full disk are "System error"."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return ""
    return f" ({free // 1_000_000} MB free on that disk)"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__

"""Where the speech recorder's sound comes from: blocks of samples stamped with the engine's clock.

How it works
------------
A source (:class:`AudioSource`) is opened, read block by block and closed, all on the recorder's
thread.  ``read(timeout)`` returns a :class:`Block` — 16-bit samples shaped ``(frames, channels)`` and
``start_ms``, the engine's time (epoch ms, the clock the speech log is written with) of its first
frame — or None when nothing came within ``timeout`` seconds.  A source that can no longer deliver
(the device is gone) raises :class:`SourceError`; the recorder logs it and opens it again later.

Two implementations:

* :class:`AlsaSource` captures from an ALSA device (the hall mixer's line out) through ``sounddevice``
  (PortAudio; Debian's ``libportaudio2`` at run time).  It is imported only when the source opens, so
  a controller that does not record needs neither.  PortAudio's callback copies each block into a
  bounded queue and returns (when the recorder is far behind the oldest block is dropped and counted,
  never the callback held up).  Blocks are stamped on a sample-counting timeline anchored to the
  engine's clock at the first block (minus the input latency PortAudio reports): contiguous audio
  stays contiguous whatever the scheduling jitter, and the timeline is anchored anew when the
  measured time drifts more than ``REANCHOR_MS`` away (an overflow, a stalled device).
* :class:`GeneratedSource`, for tests and demos: a speech-like tone (a gliding voice with harmonics,
  syllables at about 4 Hz, a pause every few seconds) that is a pure function of the frame index, so
  a test can compute exactly what a lossless file must hold.  Given a clock it yields each block once
  the clock has passed the block's end: in real time with the engine's clock, at any pace with a
  :class:`VirtualClock` that a test moves (and the engine reads too); without a clock it yields as
  fast as it is read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger("chamber.recording")

Samples = npt.NDArray[np.int16]  # shape (frames, channels)
Clock = Callable[[], float]  # the engine's time, epoch milliseconds

REANCHOR_MS = 250.0  # an ALSA timeline this far from the measured time starts again from the measurement


class SourceError(Exception):
    """The sound input cannot be opened or stopped delivering."""


@dataclass(frozen=True, slots=True)
class Block:
    """Consecutive frames of sound and the engine's time of the first one."""

    start_ms: float
    frames: Samples
    samplerate: int

    @property
    def end_ms(self) -> float:
        return self.start_ms + len(self.frames) * 1000.0 / self.samplerate


class AudioSource(Protocol):
    samplerate: int
    channels: int

    @property
    def description(self) -> str: ...

    def open(self) -> None: ...

    def read(self, timeout: float) -> Block | None: ...

    def close(self) -> None: ...


class VirtualClock:
    """Engine time (ms) that moves only when told.  A test hands it to the Engine and to a
    GeneratedSource, so speeches and sound line up without sleeping."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._moved = threading.Condition()

    def __call__(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        with self._moved:
            self._now += ms
            self._moved.notify_all()
            return self._now

    def wait_past(self, ms: float, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the clock reads at least ``ms``."""
        with self._moved:
            return self._moved.wait_for(lambda: self._now >= ms, timeout)


class GeneratedSource:
    """A speech-like test tone; see the module docstring."""

    def __init__(
        self,
        samplerate: int = 48000,
        channels: int = 1,
        block_ms: int = 20,
        *,
        clock: Clock | None = None,
        start_ms: float | None = None,
        level: float = 0.3,
    ) -> None:
        if clock is None and start_ms is None:
            raise ValueError("a GeneratedSource without a clock needs start_ms")
        self.samplerate = samplerate
        self.channels = channels
        self.block_frames = samplerate * block_ms // 1000
        self.clock = clock
        self._start_ms = start_ms
        self.t0 = 0.0  # the time of frame 0, fixed when opened
        self.level = level
        self._frame = 0
        self.opened = 0  # how many times it was opened (a test reads it)

    @property
    def description(self) -> str:
        return f"generated test tone, {self.samplerate} Hz, {self.channels} channel(s)"

    def open(self) -> None:
        if self.opened == 0:
            start = self._start_ms if self._start_ms is not None else self.clock() if self.clock else 0.0
            self.t0 = float(start)
        else:  # opened again: carry on at the clock's time, as a device would after a gap
            if self.clock is not None:
                self._frame = max(self._frame, self.frame_at(self.clock()))
        self.opened += 1

    def close(self) -> None:
        pass

    def frame_at(self, ms: float) -> int:
        """The index of the frame sounding at engine time ``ms``."""
        return round((ms - self.t0) * self.samplerate / 1000)

    def time_of(self, frame: int) -> float:
        return self.t0 + frame * 1000.0 / self.samplerate

    def read(self, timeout: float) -> Block | None:
        end_ms = self.time_of(self._frame + self.block_frames)
        clock = self.clock
        if clock is not None and clock() < end_ms:
            wait_past = getattr(clock, "wait_past", None)
            if wait_past is not None:
                wait_past(end_ms, timeout)
            else:  # a real clock: sleep until the block would have been heard (at most ``timeout``)
                time.sleep(min(timeout, max(0.0, (end_ms - clock()) / 1000)))
            if clock() < end_ms:
                return None
        block = Block(self.time_of(self._frame), self.signal(self._frame, self.block_frames), self.samplerate)
        self._frame += self.block_frames
        return block

    def signal(self, first: int, count: int) -> Samples:
        """Frames ``first`` … ``first + count - 1`` of the tone (a pure function of the index)."""
        t = (first + np.arange(count, dtype=np.float64)) / self.samplerate
        # a voice gliding around 150 Hz (the phase is the integral of the frequency) with two harmonics
        phase = 2 * np.pi * (150.0 * t - 30.0 / (2 * np.pi * 0.3) * np.cos(2 * np.pi * 0.3 * t))
        voice = (np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)) / 1.75
        syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
        breath = np.where(np.mod(t, 5.0) < 4.4, 1.0, 0.05)  # a short pause every 5 s
        mono = np.round(voice * syllables * breath * self.level * 32767).astype(np.int16)
        return np.repeat(mono.reshape(-1, 1), self.channels, axis=1)


def _import_sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise SourceError(
            "the sounddevice package is not installed (pip install -e . installs it with the controller)"
        ) from exc
    except OSError as exc:  # sounddevice loads PortAudio when imported
        raise SourceError(f"PortAudio is missing ({exc}): install Debian's libportaudio2") from exc
    return sounddevice


class AlsaSource:
    """Capture from an ALSA device through sounddevice (PortAudio); see the module docstring."""

    def __init__(
        self,
        device: str,
        samplerate: int,
        channels: int,
        clock: Clock,
        *,
        block_ms: int = 20,
        max_queued_s: float = 30.0,
        silence_timeout_s: float = 5.0,
    ) -> None:
        self.device = device
        self.samplerate = samplerate
        self.channels = channels
        self.clock = clock
        self.block_frames = samplerate * block_ms // 1000
        self._blocks: queue.Queue[tuple[float, Samples]] = queue.Queue(
            maxsize=max(1, int(max_queued_s * 1000 / block_ms))
        )
        self.silence_timeout_s = silence_timeout_s
        self._stream: Any = None
        self._next_ms: float | None = None  # where the timeline expects the next block
        self._last_block_at = 0.0
        self.dropped = 0  # blocks dropped because the recorder was too far behind
        self.overflows = 0  # PortAudio's own input overflows (the device's buffer ran over)
        self.reanchored = 0  # times the timeline was anchored again
        self._reanchor_logged = -math.inf

    @property
    def description(self) -> str:
        return f"ALSA device {self.device!r}, {self.samplerate} Hz, {self.channels} channel(s)"

    def open(self) -> None:
        sd = _import_sounddevice()
        # "default" is PortAudio's default input; anything else is matched against the device names
        # PortAudio lists ("hw:1,0" is part of "USB Audio CODEC: - (hw:1,0)")
        device = None if self.device == "default" else self.device
        try:
            stream = sd.InputStream(
                device=device,
                samplerate=self.samplerate,
                channels=self.channels,
                dtype="int16",
                blocksize=self.block_frames,
                callback=self._callback,
            )
            stream.start()
        except Exception as exc:  # PortAudioError, or ValueError for a device name that matches nothing
            raise SourceError(f"cannot open {self.description}: {exc}") from exc
        self._stream = stream
        self._next_ms = None
        self._last_block_at = time.monotonic()

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        # PortAudio's thread: stamp, copy, hand on; never wait for the recorder
        now = self.clock()
        latency_s = 0.0
        try:
            if time_info.inputBufferAdcTime > 0:
                latency_s = max(0.0, time_info.currentTime - time_info.inputBufferAdcTime)
        except AttributeError:
            pass
        if not latency_s:
            latency_s = frames / self.samplerate
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        item = (now - latency_s * 1000, np.array(indata, dtype=np.int16, copy=True))
        try:
            self._blocks.put_nowait(item)
        except queue.Full:  # the recorder is far behind: the oldest sound goes, the newest is kept
            with contextlib.suppress(queue.Empty):
                self._blocks.get_nowait()
            self.dropped += 1
            with contextlib.suppress(queue.Full):
                self._blocks.put_nowait(item)

    def read(self, timeout: float) -> Block | None:
        stream = self._stream
        if stream is None:
            raise SourceError(f"{self.description} is not open")
        try:
            measured, frames = self._blocks.get(timeout=timeout)
        except queue.Empty:
            if not stream.active:
                raise SourceError(f"{self.description} stopped delivering sound") from None
            if time.monotonic() - self._last_block_at > self.silence_timeout_s:
                raise SourceError(f"no sound from {self.description} for {self.silence_timeout_s:.0f} s") from None
            return None
        self._last_block_at = time.monotonic()
        expected = self._next_ms
        start = expected if expected is not None and abs(measured - expected) <= REANCHOR_MS else measured
        if expected is not None and start is measured:
            self.reanchored += 1
            if time.monotonic() - self._reanchor_logged >= 60:  # a device that keeps slipping: once a minute
                self._reanchor_logged = time.monotonic()
                log.warning(
                    "recording: %s: sound %.0f ms off its timeline, which starts again there (%d times so far)",
                    self.description,
                    measured - expected,
                    self.reanchored,
                )
        self._next_ms = start + len(frames) * 1000.0 / self.samplerate
        return Block(start, frames, self.samplerate)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception as exc:  # a device already gone cannot be stopped cleanly: nothing to do
                log.warning("recording: closing %s: %s", self.description, exc)
        while True:
            try:
                self._blocks.get_nowait()
            except queue.Empty:
                break

"""Speech recordings (issue 9): the hall mixer's sound, cut by the speech log into one file per speech.

This module is the design, and the place to import the recordings' names from; the code is in
protocol_export.recording_subscriber (the engine's side: microphones into messages),
protocol_export.recorder (the recorder's thread: the ring, the cuts, the files, the alerts),
protocol_export.audio_sources (where the sound comes from) and protocol_export.recording_files
(files, names, tags and the index).  ``start_recording``, what ``chamber run`` calls, is here.  All of
them log as ``chamber.recording``.

How it works
------------
Three threads take part, and only one of them does any work for it:

* the engine's thread runs the subscriber (:func:`engine_subscriber`).  For each ``MicOn`` it reads the
  speech the floor has just started (seat, deputy, kind, agenda item, start time, limit — the
  ``SpeechRecord`` fields, exact to the ms, as the speech log will have them) with the names the
  tags need, and for each ``MicOff`` the speech log's record (end time, why it ended); it puts a
  small message on the recorder's queue and returns.  It never waits: the queue is unbounded, and a
  message is a few hundred bytes for a speech of minutes;
* PortAudio's thread (ALSA capture, :mod:`protocol_export.audio_sources`) copies each block of
  sound into the source's bounded queue and returns;
* the recorder's own thread (:class:`Recorder`) reads blocks from the source, keeps the last
  ``pre_roll_s + buffer_s`` seconds in a ring, and takes the messages.  A speech's file begins at
  ``start - pre_roll_s`` (the first syllable said just before the microphone's LED lit is not lost:
  it is still in the ring) and ends at the speech log's end; both cuts are made to the sample.
  Encoding, tagging, hashing and the index are all done here.  Because every block carries the
  engine's time, the order in which sound and messages arrive does not matter: a speech whose end is
  announced before its last sound was heard stays open until the sound has passed its end, and a
  recorder that fell behind (a slow disk) catches up from the source's queue.  The other way round —
  sound heard before the message that the speech ended, which the engine sends only after the
  journal's fsync — is why a speech's file is written ``hold_s`` (2 s) behind the newest sound: what
  lies past the end is still in the ring, never in the file.

Nothing that goes wrong here reaches the engine or the line loops: a sound input that cannot be opened
or stops, a file that cannot be created or written, are ERROR lines starting ``recording:`` and the
next speech is tried afresh (protocol_export.recorder says how).  ``status()`` says what the recorder
is doing and lists its recent alerts, for the web console.

Files, names, tags and the index: :mod:`protocol_export.recording_files`.

API
---
* ``start_recording(config, engine) -> Recorder | None``: what ``chamber run`` calls when
  ``[recording] enabled``; subscribes before the engine starts, so a speech resumed after a restart is
  recorded (from then on) too.
* ``Recorder(source, directory, fmt=, pre_roll_s=, ...)``, ``.attach(engine)``, ``.start()``,
  ``.stop()``, ``.flush(until_ms, timeout)`` (wait until the sound up to ``until_ms`` is in the files:
  tests), ``.status()``.
* Re-exported for the protocol and the public pages: ``list_recordings(directory, sitting_uid)``,
  ``match_speeches(speeches, recordings)``, ``verify_recordings(directory, sitting_uid)``,
  ``Recording``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from protocol_export.audio_sources import AlsaSource, AudioSource, GeneratedSource
from protocol_export.recorder import Recorder
from protocol_export.recording_files import Recording, list_recordings, match_speeches, verify_recordings
from protocol_export.recording_subscriber import SpeechEnded, SpeechStarted, engine_subscriber

if TYPE_CHECKING:
    from chamber.config import Config
    from chamber.engine import Engine

__all__ = [
    "Recorder",
    "Recording",
    "SpeechEnded",
    "SpeechStarted",
    "engine_subscriber",
    "list_recordings",
    "match_speeches",
    "start_recording",
    "verify_recordings",
]

log = logging.getLogger("chamber.recording")


def start_recording(config: Config, engine: Engine) -> Recorder | None:
    """The recorder ``[recording]`` describes, subscribed to ``engine`` and started; None when recording
    is off or cannot be set up (said in the log: the sitting goes on without it)."""
    rc = config.recording
    if not rc.enabled:
        return None
    source: AudioSource
    if rc.source == "generated":
        source = GeneratedSource(rc.samplerate, rc.channels, clock=engine.time_ms)
    else:
        source = AlsaSource(rc.device, rc.samplerate, rc.channels, engine.time_ms)
    try:
        recorder = Recorder(source, rc.directory, fmt=rc.format, pre_roll_s=rc.pre_roll_s)
    except ValueError as exc:
        log.error("recording: %s; the controller runs without recording", exc)
        return None
    recorder.attach(engine)
    recorder.start()
    log.info(
        "recording: speeches from %s into %s (%s, pre-roll %.1f s)",
        source.description,
        rc.directory,
        rc.format,
        rc.pre_roll_s,
    )
    return recorder

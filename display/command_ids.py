"""Command ids: a console command delivered twice is applied once.

Socket.IO delivers a packet at most once, but the same command can still reach the server twice: a
proxy or a client library that retries after a lost acknowledgement, a page that re-sends what timed
out, or someone who re-emits a captured packet on a socket of the same session.  Most commands are
refused the second time by the sitting's own rules (a second ``OpenVote`` finds a vote open), but not
all: a second ``ExtendSpeech`` gives the speaker the extra time twice, a second ``NextSpeaker`` skips
a deputy in the queue.

So a command may carry ``"command_id"`` (1 to 64 letters, digits, ``-`` or ``_``; the console page
sends a random one with every command).  The server remembers, per log-in session, the ids it has
seen and the reply each got: a command whose id was seen is not run again; it gets the first one's
reply marked ``"replayed": true`` (or, while the first is still running, the refusal ``replayed``),
and a warning in the log.  A command without an id is run every time it comes: the server cannot
tell a replay from a second click.

The memory is bounded (``PER_SESSION`` ids per session, ``SESSIONS`` sessions, the oldest forgotten
first) and lives in one web process; a browser stays on one process (docs/web-deployment.md).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

PER_SESSION = 512
SESSIONS = 1000
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RUNNING: dict[str, Any] = {}  # the marker of a command whose reply is not in yet


def valid(command_id: object) -> bool:
    return isinstance(command_id, str) and _ID.fullmatch(command_id) is not None


class SeenCommands:
    """The command ids each session sent, with their replies (thread-safe, bounded)."""

    def __init__(self, per_session: int = PER_SESSION, sessions: int = SESSIONS) -> None:
        self.per_session = per_session
        self.sessions = sessions
        self._seen: OrderedDict[str, OrderedDict[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session_id: str, command_id: str) -> dict[str, Any] | None:
        """None: the id is new and now taken (run the command, then ``settle``); else the first
        command's reply (``_RUNNING``'s empty dict while it runs)."""
        with self._lock:
            ids = self._seen.get(session_id)
            if ids is None:
                ids = self._seen[session_id] = OrderedDict()
                while len(self._seen) > self.sessions:
                    self._seen.popitem(last=False)
            else:
                self._seen.move_to_end(session_id)
            earlier = ids.get(command_id)
            if earlier is not None:
                return earlier
            ids[command_id] = _RUNNING
            while len(ids) > self.per_session:
                ids.popitem(last=False)
            return None

    def settle(self, session_id: str, command_id: str, reply: dict[str, Any]) -> None:
        with self._lock:
            ids = self._seen.get(session_id)
            if ids is not None and command_id in ids:
                ids[command_id] = dict(reply)

    def release(self, session_id: str, command_id: str) -> None:
        """A command that got no reply (its run raised): a repeat may run it."""
        with self._lock:
            ids = self._seen.get(session_id)
            if ids is not None and ids.get(command_id) is _RUNNING:
                del ids[command_id]

    def forget(self, session_id: str) -> None:
        """A session that logged out: its ids go with it."""
        with self._lock:
            self._seen.pop(session_id, None)


def running(reply: dict[str, Any]) -> bool:
    return reply is _RUNNING

"""What the controller and the web processes of a scale-out share on Redis (display.scaleout): the
names of the channel, the stream and the keys, the timings of the command stream, a Redis client, the
stored states, and the signing of commands (an HMAC with a key derived from the session key file every
process shares)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import redis

from display import state as st
from display.commands import (
    SUBMIT_TIMEOUT_S,
)

log = logging.getLogger("display.scaleout")  # one log name for the scale-out (see display.scaleout)


#: The Socket.IO channel on Redis: the controller's write-only manager publishes on it, every web
#: process's SocketIO listens on it.
CHANNEL = "chamber-socketio"
NAMESPACES = ("/hall", "/console")
COMMANDS = "chamber:commands"  # the command stream
GROUP = "controller"  # its consumer group (one controller)
CONSUMER = "controller"
INFLIGHT = "chamber:inflight"  # the command being executed (at most one: the consumer is sequential)
SIMULATOR = "chamber:simulator"  # the simulator's press API URL while `chamber run --simulate` runs
LOGOUT_CHANNEL = "chamber:logout"

#: A command older than this (by Redis's clock) is not executed: the web process waits
#: ``SUBMIT_TIMEOUT_S`` (10 s) for the reply, and a command must not start after the browser gave up.
COMMAND_TTL_S = SUBMIT_TIMEOUT_S - 2.0
#: A signed command whose own time is further than this from the controller's clock is refused: with
#: the done markers (kept a day) a captured message cannot be replayed later.
REPLAY_WINDOW_MS = 10 * 60 * 1000
DONE_TTL_S = 24 * 3600
REPLY_TTL_S = 60  # a reply nobody popped (the web process gave up) disappears
STREAM_MAXLEN = 10_000  # approximate: the stream is a queue, not an archive
READ_BLOCK_MS = 500  # how long one XREADGROUP waits: the consumer notices a stop within this
RECENT_IDS = 10_000  # command ids the consumer remembers itself, beside Redis's done markers
_SIGNING_CONTEXT = b"chamber command stream v1"


def state_key(namespace: str) -> str:
    return f"chamber:state:{namespace}"


def reply_key(command_id: str) -> str:
    return f"chamber:reply:{command_id}"


def done_key(command_id: str) -> str:
    return f"chamber:done:{command_id}"


def revoked_key(session_id: str) -> str:
    return f"chamber:revoked:{session_id}"


def connect(url: str) -> redis.Redis:
    """A Redis client (thread-safe: a connection pool) that hands back ``str``.

    The socket timeout is longer than any blocking call made with it (BLPOP waits ``SUBMIT_TIMEOUT_S``),
    so a Redis that disappears surfaces as an error, not a thread stuck for ever.
    """
    client: redis.Redis = redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=SUBMIT_TIMEOUT_S + 20,
        health_check_interval=30,
    )
    return client


def load_state(client: redis.Redis, namespace: str) -> st.JSON | None:
    """The whole state last stored for ``namespace`` (with ``rev`` and ``clock_ms``), or None."""
    raw = client.get(state_key(namespace))
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        log.error("scale-out: %s holds no JSON; ignored", state_key(namespace))
        return None
    if not isinstance(value, dict) or not isinstance(value.get("rev"), int):
        log.error("scale-out: %s is not a state with a rev; ignored", state_key(namespace))
        return None
    return value


# --- signing --------------------------------------------------------------------------------------------


class BadCommand(ValueError):
    """A stream entry that is not a command signed by one of our web processes."""


class Signer:
    """HMAC-SHA256 over the command's JSON text, with a key derived from the session key file."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, _SIGNING_CONTEXT, hashlib.sha256).digest()

    def seal(self, command: Mapping[str, Any]) -> dict[str, str]:
        text = json.dumps(command, ensure_ascii=False, separators=(",", ":"))
        return {"cmd": text, "sig": hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()}

    def open(self, fields: Mapping[str, str]) -> dict[str, Any]:
        text, sig = fields.get("cmd"), fields.get("sig")
        if not isinstance(text, str) or not isinstance(sig, str):
            raise BadCommand("no cmd or sig field")
        expected = hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig):
            raise BadCommand("wrong signature")
        try:
            command = json.loads(text)
        except ValueError as exc:
            raise BadCommand(f"not JSON: {exc}") from None
        shape = {"id": str, "at_ms": int, "user": str, "role": str, "lang": str, "body": dict}
        if not isinstance(command, dict) or any(not isinstance(command.get(k), t) for k, t in shape.items()):
            raise BadCommand("missing or mistyped fields")
        return command


def without_password(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"

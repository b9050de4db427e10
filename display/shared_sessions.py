"""What was per process in the single-process web app and is shared by the web processes of a scale-out
(display.scaleout, «Sessions»): the log-outs (``SharedRevocations``: a Redis key per logged-out session,
announced so every process closes that session's console sockets) and the log-in limit
(``SharedLoginGuard``: failures per user name and per address counted by every process together)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import redis
from redis.exceptions import RedisError

from display.auth import LoginGuard
from display.queue_base import (
    LOGOUT_CHANNEL,
    revoked_key,
)

log = logging.getLogger("display.scaleout")  # one log name for the scale-out (see display.scaleout)


class SharedRevocations:
    """The logged-out session ids, shared by every web process (``display.web.Web.revoked`` in their place).

    ``add`` stores the id for the session lifetime and announces it; :meth:`listen` (a thread) closes
    the console sockets this process holds for an announced session.  When Redis cannot say, a session
    counts as logged out: the console fails closed (its commands need Redis anyway).
    """

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, session_id: str) -> None:
        try:
            self.client.set(revoked_key(session_id), "1", ex=self.ttl_s)
            self.client.publish(LOGOUT_CHANNEL, session_id)
        except RedisError as exc:
            log.error("web: a log-out could not be shared with the other web processes: %s", exc)

    def __contains__(self, session_id: object) -> bool:
        if not isinstance(session_id, str):
            return False
        try:
            return bool(self.client.exists(revoked_key(session_id)))
        except RedisError as exc:
            log.error("web: cannot ask Redis whether a session was logged out (%s): treated as logged out", exc)
            return True

    def listen(self, close_session: Callable[[str], None]) -> None:
        self._thread = threading.Thread(target=self._listen, args=(close_session,), name="scaleout-logout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _listen(self, close_session: Callable[[str], None]) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(LOGOUT_CHANNEL)
                try:
                    while not self._stop.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if message is not None and isinstance(message.get("data"), str):
                            close_session(message["data"])
                finally:
                    pubsub.close()
            except RedisError as exc:
                log.error("web: log-out announcements cannot be received: %s (retrying)", exc)
                self._stop.wait(1.0)


class SharedLoginGuard(LoginGuard):
    """display.auth.LoginGuard over Redis: failed log-ins per user name and per address within a sliding
    window, counted by every web process together (a sorted set of failure times per key).  When Redis
    cannot be reached it falls back to this process's own in-memory count (the parent class)."""

    def __init__(self, client: redis.Redis, limit: int = 5, window_s: float = 60.0) -> None:
        super().__init__(limit, window_s)
        self.client = client
        self.limit = limit
        self.window_s = window_s

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, str]:
        return f"chamber:login:u:{name}", f"chamber:login:a:{address}"

    def retry_after(self, name: str, address: str) -> int | None:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._keys(name, address):
                pipe.zremrangebyscore(key, "-inf", now - self.window_s)
                pipe.zrange(key, -self.limit, -1, withscores=True)
            results = pipe.execute()
        except RedisError as exc:
            log.error("web: log-in limits from Redis unavailable (%s): this process's own count", exc)
            return super().retry_after(name, address)
        # the limit-th newest failure leaves the window at its time + window: then one more try is allowed
        waits = [entries[0][1] + self.window_s - now for entries in results[1::2] if len(entries) >= self.limit]
        return int(max(0.0, *waits)) + 1 if waits else None

    def failed(self, name: str, address: str) -> None:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in self._keys(name, address):
                pipe.zadd(key, {uuid.uuid4().hex: now})
                pipe.expire(key, int(self.window_s) + 1)
            pipe.execute()
        except RedisError:
            super().failed(name, address)

    def succeeded(self, name: str) -> None:
        try:
            self.client.delete(self._keys(name, "")[0])
        except RedisError:
            super().succeeded(name)

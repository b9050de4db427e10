"""A real Redis server for tests (the Socket.IO message queue when several web processes share the fan-out).

How it works
------------
The server itself is :class:`chamber.redis_local.RedisServer` (the web benchmarks start one the same
way): the Debian package's ``redis-server`` on a free port of 127.0.0.1 with persistence switched
off and its directory and log in a temporary directory, waited for until it answers ``PING``, retried
on a new port when another process took the probed one, and stopped (SIGTERM, then SIGKILL after
5 s) at the end.  Here a server that cannot start, or a missing ``redis-server``, fails the test with
redis-server's own words and says that ``make test`` installs the package.

``redis_url`` (function scope: every test gets an empty server and no stray subscribers) yields
``redis://127.0.0.1:PORT/0``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chamber.redis_local import START_TIMEOUT_S, RedisServer, RedisUnavailable
from chamber.redis_local import redis_server_executable as _executable

__all__ = ["START_TIMEOUT_S", "RedisServer", "redis_server_executable", "redis_url"]


def redis_server_executable() -> str:
    """The path of redis-server, or fail the test saying how to install it."""
    try:
        return _executable()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def start_redis() -> RedisServer:
    """A started server, or a failed test with redis-server's own words."""
    server = RedisServer(redis_server_executable())
    try:
        return server.start()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh redis-server on a free 127.0.0.1 port, answering PING; yields its URL (database 0)."""
    server = start_redis()
    try:
        yield server.url
    finally:
        server.stop()

"""The test machinery itself works: the system Chromium through Playwright, a real redis-server.

Also checks that the session-wide browser leaves ``asyncio.run()`` usable in tests that do not use it
(see ``tests/browser.py``), whichever order the tests run in.
"""

from __future__ import annotations

import asyncio
import urllib.parse

import redis
from playwright.sync_api import Browser, Page


def test_chromium_opens_a_data_url(chromium_browser: Browser) -> None:
    page = chromium_browser.new_page()
    try:
        html = "<!doctype html><meta charset=utf-8><title>Реєстрація: ґ і ї є</title><p>ok</p>"
        page.goto("data:text/html;charset=utf-8," + urllib.parse.quote(html))
        assert page.title() == "Реєстрація: ґ і ї є"
        assert page.inner_text("p") == "ok"
    finally:
        page.close()
    assert chromium_browser.version.split(".")[0].isdigit()


def test_chromium_page_is_a_hall_sized_fresh_context(chromium_page: Page) -> None:
    chromium_page.goto("data:text/html;charset=utf-8,<title>x</title>")
    assert chromium_page.viewport_size == {"width": 1920, "height": 1080}
    assert chromium_page.evaluate("navigator.language") == "uk-UA"
    assert chromium_page.context.cookies() == []


def test_asyncio_run_still_works_beside_the_session_browser() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42


def test_redis_set_get(redis_url: str) -> None:
    assert redis_url.startswith("redis://127.0.0.1:") and redis_url.endswith("/0")
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.ping()
        assert client.set("chamber:test", "За")
        assert client.get("chamber:test") == "За".encode()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()


def test_redis_server_is_fresh_per_test(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.dbsize() == 0  # nothing left over from the test above
    finally:
        client.close()

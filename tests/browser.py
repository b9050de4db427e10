"""Real-browser fixtures: Playwright driving the system's Chromium (the Debian package ``chromium``).

How it works
------------
* ``chromium_browser`` (session scope) starts Playwright's sync API once and launches
  ``/usr/bin/chromium`` headless with ``--no-sandbox`` (the tests run as root, and Chromium refuses
  its sandbox as root).  Playwright's own browser builds are never used and ``playwright install`` is
  never run: it would download a browser.  When ``/usr/bin/chromium`` is missing the fixture *fails*
  (not skips) and says how to get it: ``make test`` installs the package, so a missing browser is a
  broken machine, not an optional feature.
* ``chromium_page`` (function scope) is a fresh browser context (its own cookies and storage) at the
  hall screen's 1920x1080 with a Ukrainian locale, and one page in it; both are closed after the test.
* ``playwright_loop_hidden`` (wrapped around every test's setup, call and teardown by conftest.py's
  hooks) exists because of how the sync API works: after every call it leaves its asyncio loop
  registered as the *running* loop of the main thread (the loop lives in a greenlet that is
  suspended, not finished).  With a session-wide browser every later test in that thread would then
  find ``asyncio.run()`` refusing ("cannot be called from a running event loop"), in its fixtures of
  any scope too.  So for each test that does not use the browser that registration is taken away
  while the test is set up, runs and is torn down, and put back afterwards; tests that use the
  browser see Playwright's state untouched (they must not call ``asyncio.run()`` in the main thread).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
#: No sandbox: the tests run as root, where Chromium refuses to start with one.
CHROMIUM_ARGS = ["--no-sandbox"]
HALL_VIEWPORT: ViewportSize = {"width": 1920, "height": 1080}

# The asyncio loop of the session's Playwright, once it has started (see playwright_loop_hidden).
_playwright_loop: asyncio.AbstractEventLoop | None = None


def require_chromium() -> None:
    """Fail the test, saying what to do, when the system Chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the browser tests drive the system Chromium. "
            "`make test` installs the Debian package `chromium` (or run: apt-get install chromium). "
            "Do not run `playwright install`: it downloads a browser of its own.",
            pytrace=False,
        )


def launch_chromium(playwright: Playwright, *, headless: bool = True) -> Browser:
    """Launch the system Chromium through Playwright (fails the test when it is not installed)."""
    require_chromium()
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=headless)


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    """The system Chromium, headless, one for the whole test session."""
    global _playwright_loop
    require_chromium()  # before Playwright starts its driver
    with sync_playwright() as playwright:
        _playwright_loop = asyncio.events._get_running_loop()
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()
    _playwright_loop = None


@pytest.fixture
def chromium_page(chromium_browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies from other tests), 1920x1080, Ukrainian locale."""
    context = chromium_browser.new_context(viewport=HALL_VIEWPORT, locale="uk-UA")
    try:
        yield context.new_page()
    finally:
        context.close()


@contextlib.contextmanager
def playwright_loop_hidden(item: pytest.Item) -> Iterator[None]:
    """Hide the session Playwright's asyncio loop from a test that does not use the browser (see
    above), for its setup, call and teardown alike: conftest.py wraps the three run-test hooks in it,
    so fixtures of a wider scope set up or torn down around that test (a module's signed PDF, whose
    signer calls ``asyncio.run()``) do not find the loop either."""
    loop = _playwright_loop
    fixtures = getattr(item, "fixturenames", ())
    if loop is None or "chromium_browser" in fixtures or asyncio.events._get_running_loop() is not loop:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)

"""The vendored assets work in the system Chromium, served from one loopback host and nothing else.

A tiny HTTP server on 127.0.0.1 serves ``display/static`` and one test page; the page loads
``fonts/fonts.css`` and ``vendor/socket.io.min.js``.  Checked: every request the page makes goes to
that server; the Socket.IO 4.x client defines ``io``; Inter's regular and bold Cyrillic subsets load
for Ukrainian text (і ї є ґ); its digits are proportional by default and tabular with
``font-variant-numeric: tabular-nums`` (the feature survived the subsetting).
"""

from __future__ import annotations

import functools
import http.server
import importlib.metadata
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Response

STATIC = Path(__file__).resolve().parent.parent / "display" / "static"

PAGE = """<!doctype html>
<html lang="uk"><head><meta charset="utf-8"><title>assets</title>
<link rel="stylesheet" href="/fonts/fonts.css">
<script src="/vendor/socket.io.min.js"></script>
<style>
  body { font-family: Inter, monospace; font-size: 40px; }
  span { white-space: pre; }
  .b { font-weight: 700; }
</style></head>
<body>
  <p id="uk">Реєстрація: ґанок, їжак, єдність, Іван — № 757/2, 100 ₴, обʼєкт</p>
  <p id="ukb" class="b">Прийнято: За 32, Проти 5, Утримався 3</p>
  <span id="ones">1111</span><br><span id="zeros">0000</span><br>
  <span id="tones" class="tabular-nums">1111</span><br><span id="tzeros" class="tabular-nums">0000</span>
</body></html>
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/assets.html":
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def static_server() -> Iterator[str]:
    """``display/static`` over HTTP on a free 127.0.0.1 port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(STATIC)))
    thread = threading.Thread(target=server.serve_forever, name="static-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _width(page: Page, element_id: str) -> float:
    return float(page.evaluate(f"document.getElementById({element_id!r}).getBoundingClientRect().width"))


def test_assets_load_from_the_one_host_and_work(chromium_page: Page, static_server: str) -> None:
    requests: list[Request] = []
    failed: list[str] = []

    def on_request(request: Request) -> None:
        requests.append(request)

    def on_failure(request: Request) -> None:
        failed.append(f"failed {request.url}")

    def on_response(response: Response) -> None:
        if not response.ok:
            failed.append(f"{response.status} {response.url}")

    chromium_page.on("request", on_request)
    chromium_page.on("requestfailed", on_failure)
    chromium_page.on("response", on_response)
    chromium_page.goto(f"{static_server}/assets.html", wait_until="load")
    chromium_page.evaluate("document.fonts.ready.then(() => true)")

    # the Socket.IO client
    assert chromium_page.evaluate("typeof io") == "function"
    assert chromium_page.evaluate("typeof io.Manager === 'function' && typeof io.Socket === 'function'")

    # Inter, regular and bold, with the Cyrillic subset loaded for the Ukrainian text
    loaded = chromium_page.evaluate(
        "[...document.fonts].filter(f => f.family.replace(/\"/g, '') === 'Inter' && f.status === 'loaded')"
        ".map(f => f.weight + ' ' + f.unicodeRange)"
    )
    cyrillic = [face for face in loaded if "U+490-491" in face]
    assert sorted(face.split()[0] for face in cyrillic) == ["400", "700"], loaded
    assert any("U+20B4" in face for face in loaded), loaded  # ₴ is in cyrillic-ext
    assert chromium_page.evaluate("document.fonts.check('40px Inter', 'ґїєі')")

    # proportional digits by default; tabular with tabular-nums (tnum survived the subsetting)
    assert _width(chromium_page, "ones") < _width(chromium_page, "zeros")
    assert _width(chromium_page, "tones") == pytest.approx(_width(chromium_page, "tzeros"), abs=0.01)

    assert not failed
    hosts = {re.match(r"^(\w+://[^/]+)", request.url).group(1) for request in requests}  # type: ignore[union-attr]
    assert hosts == {static_server}


def test_vendored_versions_and_licences_are_recorded() -> None:
    script = (STATIC / "vendor" / "socket.io.min.js").read_text()
    version = re.search(r"Socket\.IO v(\d+\.\d+\.\d+)", script)
    assert version is not None
    assert version.group(1).startswith("4.")  # the protocol of python-socketio 5.x
    assert importlib.metadata.version("python-socketio").startswith("5.")
    assert version.group(1) in (STATIC / "vendor" / "README.md").read_text()
    assert "MIT License" in (STATIC / "vendor" / "socket.io.LICENSE").read_text()

    fonts = STATIC / "fonts"
    assert "SIL OPEN FONT LICENSE Version 1.1" in (fonts / "Inter-OFL.txt").read_text()
    css = (fonts / "fonts.css").read_text()
    declared = set(re.findall(r'url\("\./([^"]+)"\)', css))
    assert declared == {p.name for p in fonts.glob("*.woff2")}
    assert len(declared) == 8
    assert "://" not in css.split("*/", 1)[1]  # no other host, below the header comment

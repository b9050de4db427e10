"""``chamber run --demo`` (what ``make demo`` runs): the whole simulated chamber in one process.

Started as a subprocess in a temporary directory with a copy of config.toml: it prints every page's
URL and a login; the login works; the simulated deputies (the autopilot) put their cards in and
register when the secretary opens a registration; the demo's journal is under var/demo/ beside the
config, never the council's own store.
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _state(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url + "/api/state", timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def test_the_demo_prints_its_pages_and_a_login_that_works(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text((ROOT / "config.toml").read_text(encoding="utf-8"), encoding="utf-8")
    command = [sys.executable, "-m", "chamber.cli", "run", "--demo", "--config", str(cfg), "--web-port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tmp_path)
    assert proc.stdout is not None
    out: list[str] = []
    deadline = time.monotonic() + 60
    try:
        for line in proc.stdout:
            out.append(line)
            if "password / пароль" in line:
                break
            assert time.monotonic() < deadline, "".join(out)
        text = "".join(out)
        base = re.search(r"(http://127\.0\.0\.1:\d+)/console", text)
        login = re.search(r"login / вхід: (\S+)\s+password / пароль: (\S+)", text)
        assert base and login, text
        url = base.group(1)
        for path in ("/hall", "/overlay", "/public", "/seat/1"):
            assert url + path in text
        assert (tmp_path / "var" / "demo" / "chamber.db").exists()
        assert not (tmp_path / "var" / "chamber.db").exists()  # the council's own store is left alone

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(url + "/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page
        form = {"name": login.group(1), "password": login.group(2), "csrf_token": token.group(1)}
        opener.open(url + "/login", urllib.parse.urlencode(form).encode(), timeout=10)
        console = opener.open(url + "/console", timeout=10)
        assert console.geturl().endswith("/console"), console.geturl()  # logged in: not sent back to /login

        # the autopilot's deputies are in the hall with their cards (a few absent)
        wait_for(
            lambda: sum(1 for s in _state(url)["seats"].values() if s["deputy"]) >= 35,
            timeout=30,
            what="the simulated deputies' cards",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0

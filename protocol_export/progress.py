"""A one-line progress bar on stderr for long exports (no dependency: neither rich nor tqdm is one).

``Progress(total, enabled=...)`` draws ``publish [##########··········]  48%  vote-12.pdf  0:07`` and
redraws it in place (``\\r``) as work is ``advance``-d, at most ten times a second so that thousands of
small pages do not cost more in drawing than in making.  It is enabled only for a terminal: with
stderr redirected to a file or a pipe (a cron job, CI, a test) it writes nothing at all, and
``--quiet`` turns it off too.  ``done()`` draws the last state and ends the line.

Work is counted in units the caller chooses (a page 1, a result sheet a few, a protocol as many as it
has votes), so the bar moves with the time spent rather than the number of files.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 28


class Progress:
    def __init__(self, total: float, *, label: str = "", enabled: bool | None = None, out: TextIO | None = None):
        self.out = out or sys.stderr
        self.enabled = self.out.isatty() if enabled is None else enabled
        self.total = max(float(total), 1.0)
        self.label = label
        self.done_units = 0.0
        self.current = ""
        self._start = time.monotonic()
        self._drawn_at = 0.0
        self._last_width = 0

    def step(self, what: str) -> None:
        """Say what is being made now (shown until the next step)."""
        self.current = what
        self._draw()

    def advance(self, units: float = 1.0, what: str | None = None) -> None:
        self.done_units = min(self.total, self.done_units + units)
        if what is not None:
            self.current = what
        self._draw()

    def line(self) -> str:
        share = self.done_units / self.total
        filled = round(WIDTH * share)
        elapsed = int(time.monotonic() - self._start)
        bar = "#" * filled + "·" * (WIDTH - filled)
        what = self.current if len(self.current) <= 40 else self.current[:39] + "…"
        return f"{self.label} [{bar}] {share:4.0%}  {what}  {elapsed // 60}:{elapsed % 60:02d}".strip()

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < 0.1:
            return
        self._drawn_at = now
        text = self.line()
        pad = max(0, self._last_width - len(text))  # a shorter line must wipe the longer one before it
        self._last_width = len(text)
        self.out.write("\r" + text + " " * pad)
        self.out.flush()

    def done(self) -> None:
        if not self.enabled:
            return
        self.done_units = self.total
        self.current = "done"
        self._draw(force=True)
        self.out.write("\n")
        self.out.flush()

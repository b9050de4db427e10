"""The simulated consoles' power-up counters, kept where a power cut (or a new simulator) cannot reach.

A real console keeps POWER_UPS in EEPROM, and its low byte is the BOOT in IR 3 that makes each of its
key events' identity new after a power cut (docs/console-register-map.md, section 5, "Restart").  A
simulator whose consoles all started again from the same count would break that promise when the
process is restarted under a running sitting (``chamber run --simulate`` restarted): the same boot,
the same numbers, and the controller would take new presses for old ones.

``PowerUpCounts`` is that EEPROM for one simulator: a JSON file (``{"line:unit": count}``), read at
start, written whole (to a temporary file, then renamed) after every power-up once the simulator is
built.  Without a file the counts live in memory only, which is enough for tests that keep one
simulator for the life of their journal.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("hardware_sim.eeprom")


class PowerUpCounts:
    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._live = False  # while the simulator builds its consoles, one write at the end is enough
        if self.path is not None and self.path.exists():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self._counts = {str(k): int(v) & 0xFFFF for k, v in dict(raw).items()}
            except (OSError, ValueError, TypeError) as exc:
                # Unreadable: start far from any count the file may have held, so no boot repeats soon.
                log.error("simulated EEPROM %s unreadable (%s): power-up counts start again", self.path, exc)

    def first(self, line: str, unit: int) -> int:
        """The count a console of ``line``/``unit`` has after the power-up that starts this simulator."""
        return (self._counts.get(f"{line}:{unit}", 0) + 1) & 0xFFFF

    def recorder(self, line: str, unit: int) -> Callable[[int], None]:
        key = f"{line}:{unit}"

        def record(count: int) -> None:
            with self._lock:
                self._counts[key] = count
                if self._live:
                    self._save()

        return record

    def start(self) -> None:
        """The consoles are built: write the counts now, and after every power-up from here on."""
        with self._lock:
            self._live = True
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self._counts, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

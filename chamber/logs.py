"""The command line's logging: text for a person at a terminal, or one JSON object per line for a
log collector (``chamber --log-format json run``).

A JSON line carries ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` (the
%-formatted text, as the text format shows it), ``thread``, every extra field a call passed
(``log.info("...", extra={"line": "A"})``) and, for a logged exception, ``exception`` with its
traceback.  A value JSON cannot hold is written as its ``str``.  Under systemd either format goes to
journald, which stamps its own time and rotates; the JSON one is for shipping the log elsewhere
(Loki, Elasticsearch, a SIEM) without parsing English.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# what every LogRecord has: anything else on a record came from a call's ``extra``
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a message's own newlines are escaped by JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: int, fmt: str = "text") -> None:
    """The root logger's one handler (stderr) in ``fmt``; replaces whatever was set before."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)

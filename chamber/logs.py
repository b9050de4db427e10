"""The command line's logging: text for a person at a terminal, or one JSON object per line for a
log collector (``chamber --log-format json run``).

A JSON line carries ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message`` (the
%-formatted text, as the text format shows it), ``thread``, every extra field a call passed
(``log.info("...", extra={"line": "A"})``) and, for a logged exception, ``exception`` with its
traceback.  A value JSON cannot hold is written as its ``str``.  In the JSON format an exception nobody
caught (in a thread too) and a Python warning are logged records as well, not raw text on stderr that
a collector could not parse; only faulthandler's stack dump on a fatal signal (the watchdog's
SIGABRT) stays plain text, written when nothing else can run.  Under systemd either format goes to
journald, which stamps its own time and rotates; the JSON one is for shipping the log elsewhere
(Loki, Elasticsearch, a SIEM) without parsing English.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType

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
    if fmt == "json":
        sys.excepthook = _uncaught
        threading.excepthook = _uncaught_in_thread
        logging.captureWarnings(True)


def _uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("chamber.uncaught").critical("uncaught exception", exc_info=(kind, value, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("chamber.uncaught").critical(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )

"""chamber --log-format json: one JSON object per line, with the extra fields a call passes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from chamber.logs import JsonFormatter


def test_a_record_becomes_one_json_line_with_its_extras_and_exception() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord(
        "terminals.line", logging.WARNING, __file__, 1, "line %s: seat %d offline", ("A", 7), None
    )
    record.line = "A"  # as extra={"line": "A"} sets it
    record.seats = [7, 8]
    entry = json.loads(formatter.format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "terminals.line"
    assert entry["message"] == "line A: seat 7 offline"
    assert entry["line"] == "A" and entry["seats"] == [7, 8]
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    try:
        raise ValueError("два\nрядки")
    except ValueError:
        record = logging.LogRecord("chamber.engine", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.when = object()  # not JSON: written as its str
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert "ValueError: два\nрядки" in entry["exception"] and entry["when"].startswith("<object")


def test_the_global_option_formats_what_a_command_logs() -> None:
    """``chamber --log-format json COMMAND`` (run's own ``--log-format``: tests/test_systemd.py)."""
    code = (
        "import logging, sys; from chamber import cli; "
        "cli.cmd_check_config = lambda a: (logging.getLogger('x').warning('hi', extra={'k': 1}), 0)[1]; "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "--log-format", "json", "check-config"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stderr)
    assert entry["message"] == "hi" and entry["k"] == 1
    help_text = subprocess.run([sys.executable, "-m", "chamber.cli", "run", "--help"], capture_output=True, text=True)
    assert "--log-format" in help_text.stdout


def test_an_exception_nobody_caught_in_a_thread_is_a_json_line_too() -> None:
    code = (
        "import logging, threading; from chamber.logs import configure; configure(logging.INFO, 'json'); "
        "t = threading.Thread(target=lambda: 1 / 0, name='lines'); t.start(); t.join(); "
        "import warnings; warnings.warn('old API')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    entries = [json.loads(line) for line in done.stderr.splitlines()]
    assert entries[0]["message"] == "uncaught exception in thread lines" and entries[0]["level"] == "CRITICAL"
    assert "ZeroDivisionError" in entries[0]["exception"]
    assert entries[1]["logger"] == "py.warnings" and "old API" in entries[1]["message"]

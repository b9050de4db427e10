"""``chamber opendata`` and ``chamber chapters``: the command-line side of the open data and chapters.

Both read the store read-only (``Journal(url, create=False)``), refuse a sitting whose journal fails
verification (``SourceError``, exit 1) and name what is wrong in one line each; a store that cannot
be read exits 2, as ``journal verify`` does.

* ``opendata`` writes every file of ``protocol_export.opendata`` into ``--out`` and prints where and
  from which journal head; ``--validate`` then checks what it wrote (the tables with ``csvw`` and the
  schema-driven check, the Popolo JSON with jsonschema, the manifest's checksums) and exits 1 naming
  every problem.
* ``chapters`` prints the chapter list (``HH:MM:SS Title`` lines, or WebVTT with ``--vtt``) or writes
  it to ``--out``; when YouTube would not show it (fewer than three chapters) it says so on stderr.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def convocation_dates(text: str) -> tuple[str, str]:
    """``FROM:UNTIL`` (``2020-11-20:2025-11-30``) as two ISO dates; argparse's type for --convocation-dates."""
    first, sep, last = text.partition(":")
    try:
        if not sep or date.fromisoformat(first) > date.fromisoformat(last):
            raise ValueError("the first date after the last")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected FROM:UNTIL as yyyy-mm-dd:yyyy-mm-dd ({exc})") from None
    return first, last


def stream_start(text: str) -> object:
    from protocol_export.chapters import parse_stream_start

    try:
        return parse_stream_start(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO date-time (2025-12-02T09:58:00, Kyiv time unless it has a zone)"
        ) from None


def _unreadable(exc: Exception) -> int:
    print(f"chamber: the store cannot be read: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def opendata(args: argparse.Namespace, url: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal
    from protocol_export.facts import load_facts
    from protocol_export.opendata import validate_folder, write_opendata
    from protocol_export.source import SourceError

    out = Path(args.out)
    try:
        with Journal(url, create=False) as journal:
            facts = load_facts(journal, args.sitting, base_url=args.base_url or "")
    except SourceError as exc:
        print(f"chamber: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    written = write_opendata(facts, out, args.convocation_dates)
    print(f"sitting {facts.doc.uid}: {len(written)} files in {out} (journal head {facts.doc.head_text})")
    if not args.validate:
        return 0
    problems = validate_folder(out)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    if problems:
        print(f"{out}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{out}: valid (tables: csvw and the schemas; popolo.json: its draft-03 schemas; manifest checksums)")
    return 0


def chapters(args: argparse.Namespace, url: str) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal
    from protocol_export import chapters as ch
    from protocol_export.facts import load_facts
    from protocol_export.source import SourceError

    try:
        with Journal(url, create=False) as journal:
            facts = load_facts(journal, args.sitting)
    except SourceError as exc:
        print(f"chamber: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    listed = ch.chapters(facts, args.stream_start)
    if args.vtt:
        text = ch.webvtt_chapters(listed, ch.sitting_end_s(facts, args.stream_start))
    else:
        text = ch.text_chapters(listed)
    if not ch.youtube_ready(listed):
        print(f"note: {len(listed)} chapter(s): YouTube shows chapters only from three on", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    """The ``opendata`` and ``chapters`` subcommands (their functions set as ``func``).  Importing this
    module imports nothing heavy: ``chamber check-config`` builds the same parser and must start fast."""

    def store(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=default_config, help="config file whose [store] url to use")
        p.add_argument("--db", help="database URL (overrides the config), e.g. sqlite:///var/chamber.db")
        p.add_argument("--sitting", required=True, help="sitting uid (journal verify lists them)")

    p = sub.add_parser(
        "opendata", help="write a sitting's open data (Resolution 835 CSVs, Popolo JSON) from the journal"
    )
    store(p)
    p.add_argument("--out", required=True, help="folder to write into (created if missing)")
    p.add_argument("--validate", action="store_true", help="check what was written against the schemas (exit 1)")
    p.add_argument("--base-url", help="where the council publishes decisions: textUrl is BASE-URL/757-2.pdf")
    p.add_argument(
        "--convocation-dates",
        type=convocation_dates,
        metavar="FROM:UNTIL",
        help="the convocation's first and last day (not in the journal; default: the sitting's own days)",
    )
    p.set_defaults(func=lambda a: opendata(a, _url(a)))

    p = sub.add_parser("chapters", help="a sitting's video chapters from the stream's start time")
    store(p)
    p.add_argument("--stream-start", required=True, type=stream_start, metavar="ISO", help="e.g. 2025-12-02T09:58:00")
    p.add_argument("--vtt", action="store_true", help="WebVTT (for <track kind=chapters>) instead of HH:MM:SS lines")
    p.add_argument("--out", help="write to this file instead of standard output")
    p.set_defaults(func=lambda a: chapters(a, _url(a)))


def _url(args: argparse.Namespace) -> str:
    from chamber.cli import _store_url

    return _store_url(args)

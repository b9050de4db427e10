"""``chamber protocol`` and ``chamber sheet``: the PDF documents of a sitting, rendered from the journal.

    chamber protocol --sitting UID --out protocol.pdf [--config FILE | --db URL]
    chamber sheet --sitting UID --vote N --out vote-N.pdf [--config FILE | --db URL]

Both read the store read-only (``Journal(url, create=False)``: a mistyped path is an error, not an
empty journal), refuse a sitting whose journal fails verification (exit 1, naming the problem: a
document must not certify what the store no longer proves), and print what they wrote with the
journal range and head the document carries.  A store that cannot be read exits 2, as ``journal
verify`` does; an unknown vote exits 1 and lists the finished ones.  The PDF is written through a
temporary file renamed into place, so an interrupted run never leaves half a protocol under the name.

A protocol lists the speech recordings (protocol_export.recording_list) in ``--recordings DIR``, or
else in the config's ``[recording] directory`` when the config file exists (with ``--db`` too);
none there, none listed.

These documents are unsigned; ``chamber sign`` (protocol_export.sign_commands) renders the same bytes
and signs them.  ``add_parsers`` imports nothing heavy: building the parser must stay fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def _url(args: argparse.Namespace) -> str:
    from chamber.cli import _store_url

    return _store_url(args)


def _unreadable(exc: Exception) -> int:
    print(f"chamber: the store cannot be read: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 2


def recordings_dir(args: argparse.Namespace) -> str | None:
    """Where a protocol's speech recordings are: ``--recordings``, else the config's ``[recording]
    directory`` if the config file exists (SystemExit 2 for one that does not load), else None."""
    given: str | None = getattr(args, "recordings", None)
    if given:
        return given
    if not getattr(args, "config", None) or not Path(args.config).exists():
        return None
    from chamber.config import ConfigError, load_config

    try:
        return str(load_config(args.config).recording.directory)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def write_atomically(path: Path, data: bytes) -> None:
    """``data`` into ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(args: argparse.Namespace, vote: int | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.journal import Journal
    from protocol_export.pdf import UnknownVote, render_protocol, render_result_sheet
    from protocol_export.recording_list import load_listed
    from protocol_export.source import SourceError, load_sitting

    folder = recordings_dir(args) if vote is None else None
    try:
        with Journal(_url(args), create=False) as journal:
            doc = load_sitting(journal, args.sitting)
        doc = doc.with_recordings(load_listed(folder, doc.uid, doc.snapshot.speeches))
    except (SourceError, ValueError) as exc:  # ValueError: a recordings index that cannot be read
        print(f"chamber: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        return _unreadable(exc)
    try:
        data = render_protocol(doc) if vote is None else render_result_sheet(doc, vote)
    except UnknownVote as exc:
        print(f"chamber: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    write_atomically(out, data)
    what = "protocol" if vote is None else f"result sheet of vote {vote}"
    print(
        f"sitting {doc.uid}: {what} written to {out} ({len(data)} bytes; "
        f"journal records {doc.first_seq}-{doc.last_seq}, head {doc.head_text})"
    )
    if folder is not None:
        print(f"  speech recordings listed: {len(doc.recordings)} (from {folder})")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    """The ``protocol`` and ``sheet`` subcommands."""

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=default_config, help="config file whose [store] url to use")
        p.add_argument("--db", help="database URL (overrides the config), e.g. sqlite:///var/chamber.db")
        p.add_argument("--sitting", required=True, help="sitting uid (journal verify lists them)")
        p.add_argument("--out", required=True, help="the PDF file to write")

    p = sub.add_parser("protocol", help="render a sitting's protocol (PDF) from the journal, unsigned")
    common(p)
    p.add_argument("--recordings", metavar="DIR", help="speech recordings to list (default: [recording] directory)")
    p.set_defaults(func=lambda a: render(a, None))

    p = sub.add_parser("sheet", help="render one vote's result sheet (PDF) from the journal, unsigned")
    common(p)
    p.add_argument("--vote", type=int, required=True, help="the vote's number in the sitting")
    p.set_defaults(func=lambda a: render(a, a.vote))

"""``chamber publish``: a sitting's public pages, documents and data as a static site, ready to upload.

    chamber publish --sitting UID [--sitting UID ...] --out DIR    (or --all: every sitting in the store)

The folder it writes (every link in it relative, so it works wherever it is uploaded or opened from
disk; no page has a script):

    index.html                        the sittings, newest first, and every deputy («Ваш депутат»)
    sitting/<uid>/index.html          votes, agenda, registrations, the documents of the sitting
    vote/<uid>/<n>.html               the verdict, counts, threshold and the per-name results
    deputy/<id>.html                  attendance and every named vote of the deputy
    en/...                            the same pages in English (the UA / EN switch links the two)
    files/<uid>/protocol.pdf          the protocol, signed when [signing] is configured
    files/<uid>/vote-<n>.pdf          each vote's result sheet, signed likewise
    files/<uid>/opendata/...          the open data (protocol_export.opendata) with its manifest.json
    files/<uid>/recordings/...        the speech recordings the protocol lists, and their SHA256SUMS
    static/css/, static/fonts/        the pages' styles and the vendored Inter font with its licence

How it works: each sitting is read from the journal once and verified (``site_files.load_files``:
``load_sitting`` refuses a journal that fails its chain); its files are made by ``site_files`` —
the same code the web app's ``/public/files/<uid>/<name>`` serves them with — and its pages by
``site_pages`` from the web app's own templates, so the site and the web app show the same.  The
deputies' pages count the sittings published together (``--all`` for the whole record).  With
``--jobs N`` > 1 the PDFs (the slow part: a 450-seat protocol of 100 votes is 1 090 pages) are made
in N forked worker processes while this one makes the open data and the pages; they inherit the
loaded sittings, so only a job's numbers and the bytes back cross between processes, and the bytes
are the same as made here.

Speech recordings: the protocol lists those of the recordings folder (``--recordings DIR``, else the
config's ``[recording] directory``; protocol_export.recording_list) and the files are copied beside
it, each checked against the SHA-256 the protocol gives it first: a file missing or changed is not
published, and the command says which and exits 1 (the rest of the site is written: the votes must
go out on the day).  The sitting page's context carries them as ``documents.recordings``, without
the files that were not published: the page never links a file the site does not have.

Deterministic: the same journal gives the same bytes in every file but the signatures (a signature
records when it was made; the signed document inside it is the renderer's reproducible bytes).  A
file whose bytes are already there is not written again, so a second run changes nothing on disk and
an upload tool that compares times or checksums sends only what changed.  Files of sittings no
longer published are left alone.

A progress bar (protocol_export.progress) runs on stderr when it is a terminal, unless ``--quiet``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from protocol_export import site_files  # light; site_pages (Flask, Jinja) is imported when used
from protocol_export.progress import Progress

if TYPE_CHECKING:
    from chamber.journal import Journal
    from protocol_export.keys import Identity

STATIC = Path(__file__).resolve().parent.parent / "display" / "static"
#: What the public pages use of display/static (fonts.css names its .woff2 files relatively).
STATIC_FILES = ("css/common.css", "css/public.css")
STATIC_DIRS = ("fonts",)

# progress units: a page is cheap, a result sheet a unit, a protocol about as much as all its sheets
PAGE_UNITS = 0.02


@dataclass
class Published:
    """What ``publish_site`` did."""

    out: Path
    sittings: list[str]
    signed: bool
    pages: int = 0
    files: int = 0  # documents and data files (pages and static files not counted)
    written: int = 0  # files whose bytes changed on disk
    unchanged: int = 0
    heads: dict[str, str] = field(default_factory=dict)  # uid -> SEQ:HASH the site was made from
    open_sittings: list[str] = field(default_factory=list)
    recordings: int = 0  # speech recordings published
    problems: list[str] = field(default_factory=list)  # recordings that could not be published
    # the files of each sitting's recordings that could not be published (its page leaves them out)
    unpublished: dict[str, set[str]] = field(default_factory=dict)


def write_if_changed(path: Path, data: bytes) -> bool:
    """``data`` into ``path`` unless it holds exactly that already (via a temporary file and a rename:
    a reader, or an upload running beside us, never sees half a file).  True if it wrote."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # a site is for everyone to read (mkstemp makes 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def copy_if_changed(source: Path, path: Path, sha256: str) -> bool:
    """``source`` into ``path`` unless it holds a file with that SHA-256 already (a temporary file and a
    rename, as :func:`write_if_changed`).  True if it copied; ValueError if ``source`` is missing or
    not the bytes ``sha256`` says."""
    from protocol_export.recording_files import sha256_of

    if path.is_file() and sha256_of(path) == sha256:
        return False
    if not source.is_file():
        raise ValueError(f"{source}: missing")
    if sha256_of(source) != sha256:
        raise ValueError(f"{source}: changed (its SHA-256 is not the one the protocol lists)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _static_files() -> list[tuple[str, Path]]:
    found = [(f"static/{name}", STATIC / name) for name in STATIC_FILES]
    for folder in STATIC_DIRS:
        for path in sorted((STATIC / folder).rglob("*")):
            if path.is_file():
                found.append((f"static/{path.relative_to(STATIC).as_posix()}", path))
    return found


def _ordered(journal: Journal, uids: Sequence[str]) -> list[str]:
    """``uids`` once each, in the order the sittings were held (the journal's), as the web app lists them."""
    known = journal.sittings()
    missing = [uid for uid in uids if uid not in known]
    if missing:
        from protocol_export.source import SourceError

        raise SourceError(f"no sitting {missing[0]!r} in the journal")
    wanted = set(uids)
    return [uid for uid in known if uid in wanted]


def publish_site(
    journal: Journal,
    uids: Sequence[str],
    out: Path,
    *,
    identity: Identity | None = None,
    location: str | None = None,
    base_url: str = "",
    convocation_dates: tuple[str, str] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    recordings: str | None = None,
) -> Published:
    """Write the static site of sittings ``uids`` into ``out`` (see the module docstring).

    ``jobs`` > 1 makes the PDFs in that many worker processes while the pages are made here;
    ``recordings``: the folder of the speech recordings (``[recording] directory``), None for none.
    ``SourceError`` when a sitting is unknown or its journal cannot back a document; ``SiteError`` for
    a uid that cannot be a folder name."""
    from protocol_export import site_pages

    for uid in uids:
        if not site_pages.SAFE_UID.fullmatch(uid):
            raise site_pages.SiteError(f"sitting uid {uid!r} cannot be a folder name of the site")
    ordered = _ordered(journal, uids)
    sittings = [
        site_files.load_files(
            journal,
            uid,
            identity=identity,
            location=location,
            base_url=base_url,
            convocation_dates=convocation_dates,
            recordings=recordings,
        )
        for uid in ordered
    ]
    docs = [s.doc for s in sittings]
    deputies = site_pages.all_deputies(docs)
    council = site_pages.council_of(docs[-1].roster) if docs else {}
    result = Published(out=out, sittings=ordered, signed=identity is not None)
    page_count = len(site_pages.LANGS) * (1 + sum(1 + len(d.snapshot.results) for d in docs) + len(deputies))
    total = sum(2 * len(s.votes()) + 2 for s in sittings) + PAGE_UNITS * page_count
    bar = progress or Progress(total, enabled=False)
    bar.total = max(total, 1.0)

    def put(name: str, data: bytes) -> None:
        if write_if_changed(out / name, data):
            result.written += 1
        else:
            result.unchanged += 1

    out.mkdir(parents=True, exist_ok=True)
    for name, source in _static_files():
        put(name, source.read_bytes())
    opendata = site_files.opendata_names()
    for files in sittings:
        result.heads[files.doc.uid] = files.doc.head_text
        if files.doc.closed_at_ms is None:
            result.open_sittings.append(files.doc.uid)
        result.files += 1 + len(files.votes()) + len(opendata)
    with _Pdfs(sittings, jobs, put, bar) as pdfs:
        for files in sittings:
            bar.step(f"{files.doc.uid}: {site_files.OPENDATA_DIR}/")
            made = files.opendata()
            for name in opendata:
                put(f"files/{files.doc.uid}/{site_files.OPENDATA_DIR}/{name}", made[name])
            bar.advance(1)
            _recordings(files, out, put, result)
            pdfs.collect()
        _pages(sittings, council, deputies, opendata, result, put, bar, pdfs.collect)
    bar.done()
    return result


def _recordings(
    files: site_files.SittingFiles, out: Path, put: Callable[[str, bytes], None], result: Published
) -> None:
    """The recordings the protocol lists, copied (each checked first) beside it, and their SHA256SUMS."""
    folder = f"files/{files.doc.uid}"
    for name, source, sha256 in files.recording_files():
        if source is None:
            put(f"{folder}/{name}", files.sums())
            result.files += 1
            continue
        try:
            if copy_if_changed(source, out / folder / name, sha256):
                result.written += 1
            else:
                result.unchanged += 1
        except ValueError as exc:
            result.problems.append(f"sitting {files.doc.uid}: recording not published: {exc}")
            result.unpublished.setdefault(files.doc.uid, set()).add(name.rsplit("/", 1)[-1])
            continue
        result.recordings += 1
        result.files += 1


def _pages(
    sittings: list[site_files.SittingFiles],
    council: dict[str, object],
    deputies: dict[str, dict[str, object]],
    opendata: list[str],
    result: Published,
    put: Callable[[str, bytes], None],
    bar: Progress,
    between: Callable[[], None],
) -> None:
    """Every page, in both languages (``between`` runs after each: the PDFs made meanwhile are written)."""
    from protocol_export import site_pages

    docs = [s.doc for s in sittings]
    documents = {"signed": result.signed, "opendata": opendata}

    def page(template: str, path: str, lang: str, context: dict[str, object]) -> None:
        html = site_pages.render_page(template, path, lang, council, context)
        put(path, html.encode())
        result.pages += 1
        bar.advance(PAGE_UNITS)
        between()

    records = site_pages.Records(docs)
    for lang in site_pages.LANGS:
        bar.step(f"pages ({lang})")
        page("public_index.html", site_pages.page_path("index", lang), lang, site_pages.index_context(docs, deputies))
        for doc in docs:
            path = site_pages.page_path("sitting", lang, doc.uid)
            left_out = result.unpublished.get(doc.uid, set())
            rows = [r for r in site_pages.recordings_of(doc) if r["file"] not in left_out]
            with_recordings = {**documents, "recordings": rows}
            page("public_sitting.html", path, lang, site_pages.sitting_context(doc, with_recordings))
            for vote in doc.snapshot.results:
                path = site_pages.page_path("vote", lang, doc.uid, vote.number)
                page("public_vote.html", path, lang, site_pages.vote_context(doc, vote, documents))
        for id_text, deputy in deputies.items():
            path = site_pages.page_path("deputy", lang, id_text)
            page("public_deputy.html", path, lang, site_pages.deputy_context(int(id_text), deputy, records))


#: The sittings a forked worker makes PDFs of: set before the pool starts, so the workers inherit them
#: (nothing is pickled but a job's numbers, and the bytes on the way back).
_WORK: list[site_files.SittingFiles] = []


def _pdf_job(index: int, vote: int | None) -> bytes:
    return _WORK[index].pdf(vote)


class _Pdfs:
    """The protocols and result sheets, made while the pages are: in ``jobs`` worker processes (fork)
    when ``jobs`` > 1, the longest first (a protocol is as long as all its sheets), else right here,
    one after another.  ``collect`` writes what is ready; leaving the ``with`` waits for the rest."""

    def __init__(
        self,
        sittings: list[site_files.SittingFiles],
        jobs: int,
        put: Callable[[str, bytes], None],
        bar: Progress,
    ) -> None:
        self.put, self.bar = put, bar
        self.tasks: list[tuple[int, int | None, str, float]] = []
        for i, files in enumerate(sittings):
            folder = f"files/{files.doc.uid}"
            self.tasks.append((i, None, f"{folder}/{site_files.PROTOCOL}", len(files.votes()) + 1.0))
            self.tasks += [(i, n, f"{folder}/{site_files.sheet_name(n)}", 1.0) for n in files.votes()]
        self.tasks.sort(key=lambda task: -task[3])
        self.sittings = sittings
        self.jobs = min(jobs, len(self.tasks))
        self.pool: ProcessPoolExecutor | None = None
        self.pending: dict[Future[bytes], tuple[str, float]] = {}

    def __enter__(self) -> _Pdfs:
        if self.jobs <= 1:
            for i, vote, name, units in self.tasks:
                self.bar.step(name)
                self.put(name, self.sittings[i].pdf(vote))
                self.bar.advance(units)
            return self
        global _WORK
        _WORK = self.sittings
        self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=multiprocessing.get_context("fork"))
        self.pending = {self.pool.submit(_pdf_job, i, vote): (name, units) for i, vote, name, units in self.tasks}
        self.bar.step(f"{len(self.tasks)} PDFs in {self.jobs} processes")
        return self

    def collect(self, *, wait: bool = False) -> None:
        ready = as_completed(list(self.pending)) if wait else [f for f in list(self.pending) if f.done()]
        for future in ready:
            name, units = self.pending.pop(future)
            self.put(name, future.result())  # a worker's exception (a signing error) is raised here
            self.bar.advance(units, name)

    def __exit__(self, kind: object, *_: object) -> None:
        global _WORK
        try:
            if kind is None:
                self.collect(wait=True)
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)
            _WORK = []


# --------------------------------------------------------------------------- the command


def publish(args: argparse.Namespace) -> int:
    """``chamber publish``: exit 0 written; 1 a sitting the journal cannot back; 2 nothing could be
    done (no config, store, signing key or writable folder)."""
    from sqlalchemy.exc import SQLAlchemyError

    from chamber.config import Config, ConfigError, load_config
    from chamber.journal import Journal
    from protocol_export import keys, site_pages
    from protocol_export.signing import SigningError
    from protocol_export.source import SourceError

    def fail(message: str, code: int = 2) -> int:
        print(f"chamber publish: {message}", file=sys.stderr)
        return code

    if not args.sitting and not args.all:
        return fail("name the sittings to publish with --sitting UID (repeatable), or --all")
    config: Config | None = None
    if not args.db or Path(args.config).exists():  # --db alone: no config needed (and no signing)
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(str(exc), file=sys.stderr)
            return 2
    identity = None
    if config is not None and config.signing.enabled and not args.unsigned:
        try:
            identity = keys.load_identity(config.signing)
        except keys.SigningSetupError as exc:
            return fail(f"{config.source}: {exc} (--unsigned publishes without signatures)")
    url = args.db or (config.store.url if config is not None else None)
    assert url is not None
    recordings = args.recordings or (str(config.recording.directory) if config is not None else None)
    out = Path(args.out)
    bar = Progress(1, label="publish", enabled=None if not args.quiet else False)
    try:
        with Journal(url, create=False) as journal:
            uids = journal.sittings() if args.all else list(dict.fromkeys(args.sitting))
            if not uids:
                return fail("the journal holds no sittings", 1)
            done = publish_site(
                journal,
                uids,
                out,
                identity=identity,
                location=(config.council.place or config.council.name) if config is not None else None,
                base_url=args.base_url or "",
                convocation_dates=args.convocation_dates,
                progress=bar,
                jobs=args.jobs,
                recordings=recordings,
            )
    except SourceError as exc:
        return fail(str(exc), 1)
    except ValueError as exc:  # a recordings index that cannot be read
        return fail(str(exc), 1)
    except SigningError as exc:
        return fail(str(exc))
    except site_pages.SiteError as exc:
        return fail(str(exc))
    except SQLAlchemyError as exc:
        return fail(f"the store cannot be read: {type(exc).__name__}: {exc}")
    except OSError as exc:
        return fail(f"cannot write into {out}: {exc.strerror or exc}")
    names = ", ".join(f"{uid} (head {head})" for uid, head in done.heads.items())
    print(f"{out}: the site of {len(done.sittings)} sitting(s): {names}")
    print(
        f"  {done.pages} pages, {done.files} documents and data files; "
        f"{done.written} files written, {done.unchanged} already up to date"
    )
    if done.signed and identity is not None:
        print(f"  PDFs signed by {keys.describe(identity.certificate)}")
        notice = keys.notice_for(identity.certificate)
        if notice:
            print(f"  their face says: {notice}")
    else:
        why = "--unsigned" if args.unsigned else "no [signing] certificate in the config"
        print(f"  PDFs NOT signed ({why}): the pages say so; chamber keys init makes a demo certificate")
    if recordings is not None:
        print(f"  {done.recordings} speech recording(s) from {recordings}, listed in the protocol")
    for uid in done.open_sittings:
        print(f"  note: sitting {uid} is still open: its documents show the journal as it stands now")
    print(f"  open {out / 'index.html'}; upload the folder as it is (every link is relative)")
    for problem in done.problems:
        print(f"chamber publish: {problem}", file=sys.stderr)
    return 1 if done.problems else 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], default_config: str) -> None:
    """The ``publish`` subcommand.  Imports nothing heavy (the parser must build fast)."""
    from protocol_export.commands import convocation_dates

    p = sub.add_parser(
        "publish", help="write a static site of sittings: pages, signed PDFs and open data, ready to upload"
    )
    p.add_argument("--config", default=default_config, help="config file: [store] url and [signing] certificate")
    p.add_argument("--db", help="database URL (overrides the config's [store])")
    p.add_argument("--sitting", action="append", default=[], help="sitting uid to publish (repeatable)")
    p.add_argument("--all", action="store_true", help="publish every sitting in the store")
    p.add_argument("--out", required=True, help="folder to write the site into (created if missing)")
    p.add_argument("--recordings", metavar="DIR", help="speech recordings to publish (default: [recording] directory)")
    p.add_argument("--unsigned", action="store_true", help="do not sign the PDFs even with [signing] configured")
    p.add_argument("--base-url", help="open data: where the council publishes decisions (textUrl)")
    p.add_argument(
        "--convocation-dates",
        type=convocation_dates,
        metavar="FROM:UNTIL",
        help="open data: the convocation's first and last day (default: the sitting's own days)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="processes making the PDFs while the pages are made (default: the CPUs, at most 4; 1: none)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")
    p.set_defaults(func=publish)

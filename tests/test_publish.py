"""chamber publish: the static site of a sitting, and the web app serving the same pages and files.

The fixture sitting of tests/export_fixtures.py (the council of config.toml: roll-call, cancelled and
re-vote, secret, rating and open votes) is journaled once per module; its site is written into
temporary folders.  Checked: the layout, that every link of every page is relative and leads to a file
of the site, that the pages are the web app's pages for the same journal (the web app over a real
Engine on the same store, its links made relative the same way), that the files are the ones the web
app serves at /public/files/..., reproducible bytes, signed and unsigned PDFs and what the pages say
of them, the progress bar, and the command's exit codes.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest
from export_fixtures import ROOT, fake_recordings, journal_sitting
from flask.testing import FlaskClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pypdf import PdfReader

from chamber.cli import main
from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.engine import Engine, Outcome
from chamber.journal import Journal
from display import page_filters
from display.app import create_app
from display.i18n import STRINGS
from protocol_export import keys, site_files, site_pages
from protocol_export.progress import Progress
from protocol_export.publish import Published, publish_site
from protocol_export.recording_files import Recording
from protocol_export.source import SittingDoc, load_sitting

LINK = re.compile(r'\s(?:href|src)="([^"]*)"')
CSS_URL = re.compile(r'url\("?([^")]+)"?\)')


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('publish') / 'j.db'}"
    return url, journal_sitting(url)


@pytest.fixture(scope="module")
def doc(store: tuple[str, str]) -> SittingDoc:
    url, uid = store
    with Journal(url, create=False) as journal:
        return load_sitting(journal, uid)


@pytest.fixture(scope="module")
def site(store: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Published]:
    url, uid = store
    out = tmp_path_factory.mktemp("site") / "site"
    with Journal(url, create=False) as journal:
        return out, publish_site(journal, [uid], out)


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the layout and the links -----------------------------------------------------------------------------


def test_the_site_has_every_page_and_file(site: tuple[Path, Published], doc: SittingDoc) -> None:
    out, done = site
    uid = doc.uid
    votes = [r.number for r in doc.snapshot.results]
    assert votes and done.sittings == [uid] and not done.signed and done.heads == {uid: doc.head_text}
    deputies = [d.id for d in doc.roster.deputies]
    expected = ["index.html", f"sitting/{uid}/index.html"]
    expected += [f"vote/{uid}/{n}.html" for n in votes] + [f"deputy/{d}.html" for d in deputies]
    for page in expected:
        assert (out / page).is_file(), page
        assert (out / "en" / page).is_file(), page
    assert done.pages == 2 * len(expected)
    assert (out / f"files/{uid}/protocol.pdf").read_bytes().startswith(b"%PDF-")
    for n in votes:
        assert (out / f"files/{uid}/vote-{n}.pdf").read_bytes().startswith(b"%PDF-")
    opendata = site_files.opendata_names()
    assert sorted(p.name for p in (out / f"files/{uid}/opendata").iterdir()) == sorted(opendata)
    manifest = json.loads((out / f"files/{uid}/opendata/manifest.json").read_text(encoding="utf-8"))
    assert manifest["journal"]["head"] == doc.head_text
    assert done.files == 1 + len(votes) + len(opendata)
    for static in ("static/css/common.css", "static/css/public.css", "static/fonts/fonts.css"):
        assert (out / static).is_file(), static
    assert (out / "static/fonts/Inter-OFL.txt").is_file()  # the font goes with its licence


def test_every_link_is_relative_and_leads_to_a_file_of_the_site(site: tuple[Path, Published]) -> None:
    out, _ = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 20
    checked = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script" not in text  # the public pages need no script, and have none
        for href in LINK.findall(text):
            if href.startswith("data:"):
                continue
            assert not href.startswith(("/", "?", "http:", "https:")), f"{page}: {href}"
            target = (page.parent / href.split("#")[0]).resolve()
            assert target.is_file() and out.resolve() in target.parents, f"{page}: {href}"
            checked += 1
    for css in out.rglob("*.css"):  # the fonts the styles name are there too
        for ref in CSS_URL.findall(css.read_text(encoding="utf-8")):
            assert (css.parent / ref).resolve().is_file(), f"{css}: {ref}"
    assert checked > 500


def test_the_language_switch_links_a_page_to_its_counterpart(site: tuple[Path, Published], doc: SittingDoc) -> None:
    out, _ = site
    uk = (out / f"vote/{doc.uid}/1.html").read_text(encoding="utf-8")
    en = (out / f"en/vote/{doc.uid}/1.html").read_text(encoding="utf-8")
    assert 'href="../../en/vote/' + doc.uid + '/1.html"' in uk and '<html lang="uk">' in uk
    assert 'href="../../../vote/' + doc.uid + '/1.html"' in en and '<html lang="en">' in en
    assert STRINGS["en"]["per_name"] in en and STRINGS["uk"]["per_name"] in uk
    assert 'href="../../../static/css/public.css"' in en  # static/ and files/ are shared by both languages


def test_relink_refuses_a_link_the_site_has_no_file_for() -> None:
    page = '<a href="/public/vote/U/3">v</a> <link href="/static/css/common.css"> <a href="?lang=en">EN</a>'
    assert site_pages.relink(page, "sitting/U/index.html", "uk") == (
        '<a href="../../vote/U/3.html">v</a> <link href="../../static/css/common.css"> '
        '<a href="../../en/sitting/U/index.html">EN</a>'
    )
    assert site_pages.relink('<a href="data:,">x</a> <a href="#top">t</a>', "index.html", "uk").count("href") == 2
    with pytest.raises(site_pages.SiteError, match="/console"):
        site_pages.relink('<a href="/console">c</a>', "index.html", "uk")
    with pytest.raises(site_pages.SiteError):
        site_pages.relink('<a href="?page=2">next</a>', "index.html", "uk")


# --- what the pages say -------------------------------------------------------------------------------------


def test_the_sitting_and_vote_pages_link_the_documents_and_say_they_are_unsigned(
    site: tuple[Path, Published], doc: SittingDoc
) -> None:
    out, _ = site
    t = STRINGS["uk"]
    sitting = (out / f"sitting/{doc.uid}/index.html").read_text(encoding="utf-8")
    assert f'href="../../files/{doc.uid}/protocol.pdf"' in sitting
    assert f'href="../../files/{doc.uid}/opendata/manifest.json"' in sitting
    assert t["unsigned_note"] in sitting and t["signed_note"] not in sitting
    vote = (out / f"vote/{doc.uid}/2.html").read_text(encoding="utf-8")
    assert f'href="../../files/{doc.uid}/vote-2.pdf"' in vote and t["unsigned_note"] in vote
    # what the protocol says, the pages say: every vote and its verdict, from the same journal
    for result in doc.snapshot.results:
        assert f'href="../../vote/{doc.uid}/{result.number}.html"' in sitting


def test_a_second_run_gives_the_same_bytes_and_writes_nothing(
    store: tuple[str, str], site: tuple[Path, Published], tmp_path: Path
) -> None:
    url, uid = store
    out, _ = site
    with Journal(url, create=False) as journal:
        again = publish_site(journal, [uid], tmp_path / "again")
        assert files_of(tmp_path / "again") == files_of(out)  # nothing in any file depends on when or where
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
        same = publish_site(journal, [uid], out)
    assert again.unchanged == 0 and again.written > 0
    assert same.written == 0 and same.unchanged == again.written
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before


# --- the web app serves the same ------------------------------------------------------------------------------


def web_client(url: str, config: Config) -> Iterator[FlaskClient]:
    """A test client of the web app over the store at ``url`` (for a fixture to yield from)."""
    journal = Journal(url)
    engine = Engine(journal)  # the sitting is closed: nothing to resume, nothing written
    app, _ = create_app(engine, config)
    app.config["TESTING"] = True
    files: site_files.FileCache = app.extensions["chamber"].files
    try:
        yield app.test_client()
    finally:
        files.close()
        journal.close()


@pytest.fixture(scope="module")
def web(store: tuple[str, str]) -> Iterator[FlaskClient]:
    yield from web_client(store[0], load_config(ROOT / "config.toml"))


@pytest.mark.parametrize("lang", ["uk", "en"])
def test_the_site_pages_are_the_web_apps_pages(
    web: FlaskClient, site: tuple[Path, Published], doc: SittingDoc, lang: str
) -> None:
    out, _ = site
    uid = doc.uid
    for url, kind, args in [
        ("/public", "index", ()),
        (f"/public/sitting/{uid}", "sitting", (uid,)),
        *((f"/public/vote/{uid}/{r.number}", "vote", (uid, r.number)) for r in doc.snapshot.results),
        *((f"/public/deputy/{d.id}", "deputy", (d.id,)) for d in doc.roster.deputies[:5]),
    ]:
        path = site_pages.page_path(kind, lang, *args)
        served = web.get(f"{url}?lang={lang}")
        assert served.status_code == 200, url
        assert site_pages.relink(served.text, path, lang) == (out / path).read_text(encoding="utf-8"), url


def test_the_web_app_serves_the_sites_files(web: FlaskClient, site: tuple[Path, Published], doc: SittingDoc) -> None:
    out, _ = site
    uid = doc.uid
    assert web.application is not None
    # made in a worker process: a 1000-page protocol must not hold the engine's interpreter
    assert isinstance(web.application.extensions["chamber"].files._maker, site_files.ProcessMaker)
    names = [site_files.PROTOCOL, "vote-1.pdf", "vote-5.pdf", "opendata/manifest.json", "opendata/motions2.csv"]
    for name in names:
        served = web.get(f"/public/files/{uid}/{name}")
        assert served.status_code == 200, name
        assert served.data == (out / f"files/{uid}/{name}").read_bytes(), name  # the same bytes
        assert served.headers["Content-Type"].split(";")[0] == site_files.mime_of(name).split(";")[0]
    assert web.get(f"/public/files/{uid}/protocol.pdf").headers["Content-Type"] == "application/pdf"
    for missing in (
        "vote-99.pdf",
        "vote-01.pdf",
        "opendata/nothing.csv",
        "../j.db",
        "protocol.PDF",
        "recordings/SHA256SUMS",
    ):
        assert web.get(f"/public/files/{uid}/{missing}").status_code == 404, missing
    assert web.get("/public/files/no-such-sitting/protocol.pdf").status_code == 404
    sitting = web.get(f"/public/sitting/{uid}?lang=uk").text
    assert f'href="/public/files/{uid}/protocol.pdf"' in sitting and STRINGS["uk"]["unsigned_note"] in sitting


def test_the_web_apps_files_are_made_again_when_the_journal_moves_on(store: tuple[str, str], tmp_path: Path) -> None:
    url, uid = store
    copy = tmp_path / "copy.db"
    copy.write_bytes(Path(url.removeprefix("sqlite:///")).read_bytes())
    with Journal(f"sqlite:///{copy}") as journal:
        cache = site_files.FileCache(journal)
        first = cache.get(uid, "protocol.pdf")
        assert first is not None and cache.get(uid, "protocol.pdf") is first  # kept while the head stays
        before = json.loads(cache.get(uid, "opendata/manifest.json") or b"{}")["journal"]["head"]
        journal.append(uid, [(1_764_700_000_000, "Tick", ev.encode_input(ev.Tick()))])
        after = json.loads(cache.get(uid, "opendata/manifest.json") or b"{}")["journal"]["head"]
        again = cache.get(uid, "protocol.pdf")
    assert before != after and after.startswith(f"{int(before.split(':')[0]) + 1}:")
    assert again is not None and again != first and after.encode() in again


# --- signed ------------------------------------------------------------------------------------------------------


def test_with_a_key_every_pdf_is_signed_and_the_pages_say_so(store: tuple[str, str], tmp_path: Path) -> None:
    url, uid = store
    identity = keys.make_demo_identity("Житомирська міська рада")
    out = tmp_path / "signed"
    with Journal(url, create=False) as journal:
        done = publish_site(journal, [uid], out, identity=identity, location="Житомир")
    assert done.signed
    for pdf in sorted((out / "files" / uid).glob("*.pdf")):
        reader = PdfFileReader(io.BytesIO(pdf.read_bytes()), strict=False)
        assert len(reader.embedded_signatures) == 1, pdf.name
    text = PdfReader(out / "files" / uid / "protocol.pdf").pages[0].extract_text()
    assert "DEMO" in text  # a demo certificate's documents say so on their face
    sitting = (out / f"sitting/{uid}/index.html").read_text(encoding="utf-8")
    assert STRINGS["uk"]["signed_note"] in sitting and STRINGS["uk"]["unsigned_note"] not in sitting


# --- the command ---------------------------------------------------------------------------------------------------


def test_chamber_publish(
    store: tuple[str, str], site: tuple[Path, Published], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, uid = store
    out = tmp_path / "site"
    none = ["--config", str(tmp_path / "none")]  # --db alone: no config, so no signing
    assert main(["publish", "--db", url, "--sitting", uid, "--out", str(out), "--jobs", "2", *none]) == 0
    printed = capsys.readouterr()
    assert "NOT signed" in printed.out and uid in printed.out and "index.html" in printed.out
    assert printed.err == ""  # stderr is not a terminal here: no progress bar
    assert files_of(out) == files_of(site[0])  # the PDFs made in two worker processes: the same bytes
    assert main(["publish", "--db", url, "--out", str(out), *none]) == 2  # which sittings?
    assert "--sitting" in capsys.readouterr().err
    assert main(["publish", "--db", url, "--sitting", "20250101-nosuchsitting", "--out", str(out), *none]) == 1
    assert "no sitting" in capsys.readouterr().err


def test_chamber_publish_all_signed_with_the_config_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "two.db"
    url = f"sqlite:///{db}"
    first, second = journal_sitting(url), journal_sitting(url)
    assert main(["keys", "init", "--out", str(tmp_path / "keys"), "--council-name", "Тестова рада"]) == 0
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///var/chamber.db"', f'url = "{url}"', 1)
    text = text.replace('certificate = ""', f'certificate = "{tmp_path / "keys" / keys.CERT_FILE}"', 1)
    text = text.replace('key = ""', f'key = "{tmp_path / "keys" / keys.KEY_FILE}"', 1)
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "site"
    assert main(["publish", "--config", str(config), "--all", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "PDFs signed by" in printed and "DEMO" in printed
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.index(f"sitting/{second}/") < index.index(f"sitting/{first}/")  # newest first
    deputy = (out / "deputy/1.html").read_text(encoding="utf-8")
    name = next(d.full_name for d in load_config(ROOT / "config.toml").deputies if d.id == 1)
    registered_in = page_filters.word(STRINGS["uk"], "registered_in", {"name": name})  # «зареєстрована» of a woman
    assert registered_in.replace("{n}", "2").replace("{total}", "2") in deputy  # both sittings
    for uid in (first, second):
        data = (out / f"files/{uid}/vote-1.pdf").read_bytes()
        assert len(PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures) == 1
    assert main(["publish", "--config", str(config), "--all", "--out", str(out), "--unsigned"]) == 0
    assert "NOT signed (--unsigned)" in capsys.readouterr().out


# --- the progress bar -----------------------------------------------------------------------------------------------


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    shown = io.StringIO()
    bar = Progress(10, label="publish", enabled=True, out=shown)
    bar.step("protocol.pdf")
    bar.advance(5)
    bar.done()
    text = shown.getvalue()
    assert text.startswith("\rpublish [") and text.endswith("\n") and "100%" in text
    assert "protocol.pdf" in text
    quiet = io.StringIO()
    assert not Progress(10, out=quiet).enabled  # a StringIO is no terminal
    bar = Progress(10, out=quiet)
    bar.advance(3, "x")
    bar.done()
    assert quiet.getvalue() == ""


def test_an_open_sitting_is_published_as_it_stands_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from chamber import synthetic

    url = f"sqlite:///{tmp_path / 'open.db'}"
    with Journal(url) as journal:
        engine = Engine(journal, clock=lambda: 1_764_662_400_000)
        opened: Future[Outcome] = Future()
        engine.process([(ev.OpenSitting(roster=synthetic.load(5).roster(), number=1, title="Перше"), opened)])
        assert opened.result(0).accepted
        uid = engine.sitting_uid
    assert uid is not None
    out = tmp_path / "site"
    assert main(["publish", "--db", url, "--sitting", uid, "--out", str(out), "--config", str(tmp_path / "x")]) == 0
    assert f"sitting {uid} is still open" in capsys.readouterr().out
    page = (out / f"sitting/{uid}/index.html").read_text(encoding="utf-8")
    assert STRINGS["uk"]["sitting_in_progress"] in page and STRINGS["uk"]["documents_so_far"] in page
    assert PdfReader(out / f"files/{uid}/protocol.pdf").pages  # the protocol so far


def test_the_recordings_the_protocol_lists_are_published_beside_it(
    store: tuple[str, str], doc: SittingDoc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, uid = store
    folder = tmp_path / "rec"
    made = fake_recordings(folder, doc)
    listed = made[:-1]  # the last is a later speech's: not in this protocol, not published
    out = tmp_path / "site"
    command = ["publish", "--db", url, "--sitting", uid, "--out", str(out), "--config", str(tmp_path / "x")]
    assert main([*command, "--recordings", str(folder), "--jobs", "1"]) == 0
    assert f"3 speech recording(s) from {folder}" in capsys.readouterr().out
    published = out / f"files/{uid}/recordings"
    assert sorted(p.name for p in published.iterdir()) == sorted([*(r.file for r in listed), "SHA256SUMS"])
    for rec in listed:
        assert (published / rec.file).read_bytes() == (folder / uid / rec.file).read_bytes()
    sums = (published / "SHA256SUMS").read_text()
    assert sums == "".join(f"{r.sha256}  {r.file}\n" for r in listed)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=published, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    protocol = PdfReader(out / f"files/{uid}/protocol.pdf")
    assert "Додаток 1. Аудіозаписи виступів" in protocol.pages[-1].extract_text()
    with Journal(url, create=False) as journal:
        files = site_files.load_files(journal, uid, recordings=str(folder))
    context = site_pages.sitting_context(files.doc, {"recordings": site_pages.recordings_of(files.doc)})
    assert [r["file"] for r in context["documents"]["recordings"]] == [r.file for r in listed]
    assert context["documents"]["recordings"][0]["speaker"] == doc.deputy_name(doc.snapshot.speeches[0].deputy)

    # a recording changed after the protocol listed it: not published, said, exit 1; the rest is written
    shutil.rmtree(published)
    changed = folder / uid / listed[1].file
    changed.write_bytes(b"x" + changed.read_bytes()[1:])
    assert main([*command, "--recordings", str(folder), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert f"recording not published: {changed}: changed" in err
    assert not (published / listed[1].file).exists() and (published / listed[0].file).exists()
    page = (out / f"sitting/{uid}/index.html").read_text(encoding="utf-8")
    # the page links the files the site has, and not the one left out (no dead link)
    assert f"recordings/{listed[0].file}" in page and listed[1].file not in page


# --- the speech recordings on the pages, in the site and in the web app ----------------------------------------


@pytest.fixture(scope="module")
def recorded(
    store: tuple[str, str], doc: SittingDoc, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Recording], Path]:
    """The fixture sitting's recordings (``fake_recordings``: the last one a later speech's, which this
    protocol does not list) and its site published with them: (folder, the listed ones, the site)."""
    url, uid = store
    folder = tmp_path_factory.mktemp("recordings")
    made = fake_recordings(folder, doc)
    out = tmp_path_factory.mktemp("recorded") / "site"
    with Journal(url, create=False) as journal:
        done = publish_site(journal, [uid], out, recordings=str(folder))
    assert done.recordings == len(made) - 1 and not done.problems
    return folder, made[:-1], out


@pytest.fixture(scope="module")
def recorded_web(store: tuple[str, str], recorded: tuple[Path, list[Recording], Path]) -> Iterator[FlaskClient]:
    """The web app over the same store, its config's ``[recording] directory`` the recordings' folder."""
    url, _ = store
    folder, _, _ = recorded
    config = load_config(ROOT / "config.toml")
    recording = config.recording.model_copy(update={"directory": str(folder)})
    yield from web_client(url, config.model_copy(update={"recording": recording}))


@pytest.mark.parametrize("lang", ["uk", "en"])
def test_the_sitting_page_lists_the_recordings_in_the_web_app_and_the_site_alike(
    recorded_web: FlaskClient, recorded: tuple[Path, list[Recording], Path], doc: SittingDoc, lang: str
) -> None:
    folder, listed, out = recorded
    uid = doc.uid
    t = STRINGS[lang]
    path = site_pages.page_path("sitting", lang, uid)
    served = recorded_web.get(f"/public/sitting/{uid}?lang={lang}")
    assert served.status_code == 200
    page = served.text
    assert t["speech_recordings"] in page and f'href="/public/files/{uid}/recordings/SHA256SUMS"' in page
    hrefs = re.findall(rf'href="/public/files/{uid}/recordings/([^"]+)"', page)
    assert hrefs == ["SHA256SUMS", *(r.file for r in listed)]  # in the order of their numbers
    speaker = doc.deputy_name(doc.snapshot.speeches[0].deputy)
    first = page[page.index(f"recordings/{listed[0].file}") :]
    assert first.index(speaker) < first.index("</li>")  # the link says who spoke
    assert page.count(speaker) >= 2 and t["recording_incomplete"] in page  # two parts; the first incomplete
    assert t["item_label"].replace("{n}", "2") in page
    # the static site's page is the web app's, its links relative, and every one leads to the file
    static = (out / path).read_text(encoding="utf-8")
    assert site_pages.relink(page, path, lang) == static
    for href in LINK.findall(static):
        if "/recordings/" in href:
            target = (out / path).parent / href
            assert target.resolve().is_file(), href
            name = target.name
            source = (out / f"files/{uid}/recordings/SHA256SUMS") if name == "SHA256SUMS" else folder / uid / name
            assert target.read_bytes() == source.read_bytes(), href


def test_the_web_app_serves_the_listed_recordings_and_nothing_else(
    recorded_web: FlaskClient, recorded: tuple[Path, list[Recording], Path], doc: SittingDoc
) -> None:
    folder, listed, out = recorded
    uid = doc.uid
    base = f"/public/files/{uid}/recordings"
    for rec in listed:
        served = recorded_web.get(f"{base}/{rec.file}")
        assert served.status_code == 200, rec.file
        assert (
            served.data
            == (folder / uid / rec.file).read_bytes()
            == (out / f"files/{uid}/recordings/{rec.file}").read_bytes()
        )
        assert served.headers["Content-Type"] == "audio/ogg"
    sums = recorded_web.get(f"{base}/SHA256SUMS")
    assert sums.status_code == 200 and sums.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert sums.data == (out / f"files/{uid}/recordings/SHA256SUMS").read_bytes()
    part = recorded_web.get(f"{base}/{listed[0].file}", headers={"Range": "bytes=0-9"})  # a player seeking
    assert part.status_code == 206 and part.data == (folder / uid / listed[0].file).read_bytes()[:10]
    # the web app's protocol lists them as the published one does: the same bytes
    protocol = recorded_web.get(f"/public/files/{uid}/protocol.pdf")
    assert protocol.data == (out / f"files/{uid}/protocol.pdf").read_bytes()
    assert "Додаток 1. Аудіозаписи виступів" in PdfReader(io.BytesIO(protocol.data)).pages[-1].extract_text()

    unlisted = sorted({p.name for p in (folder / uid).iterdir()} - {r.file for r in listed})
    assert "index.json" in unlisted and len(unlisted) == 2  # the index, and the later speech's recording
    forged = [
        *unlisted,
        f"../{site_files.PROTOCOL}",
        "../../../j.db",
        f"%2e%2e/{uid}/index.json",
        f"..%2F{uid}%2Findex.json",
        f"%2E%2E%2F%2E%2E%2F{site_files.PROTOCOL}",
        f"./{listed[0].file}",
        f"/{listed[0].file}",
        f"{listed[0].file}/",
        f"{listed[0].file}%00",
        f"{listed[0].file}.part",
        listed[0].file.upper(),
        f"%2F{folder / uid / listed[0].file}".replace("/", "%2F"),
        "SHA256SUMS/x",
    ]
    for name in forged:
        assert recorded_web.get(f"{base}/{name}").status_code == 404, name
    assert recorded_web.get(f"/public/files/{uid}/recordings").status_code == 404
    assert recorded_web.get("/public/files/no-such-sitting/recordings/SHA256SUMS").status_code == 404

    # a listed file changed since the protocol listed it is not served (chamber publish would not copy it)
    changed = folder / uid / listed[1].file
    original = changed.read_bytes()
    try:
        changed.write_bytes(b"x" + original[1:])
        assert recorded_web.get(f"{base}/{listed[1].file}").status_code == 409
    finally:
        changed.write_bytes(original)
    assert recorded_web.get(f"{base}/{listed[1].file}").data == original

"""protocol_export.pdf: the protocol and the result sheets, read back from the PDF as a reader would.

The fixture sitting (tests/export_fixtures.py: roll-call, cancelled and re-vote, secret, rating, open,
speeches, an alert and a refused press) is rendered once and its text taken out with pypdf; the checks
are on that text and on the PDF's metadata, fonts and bytes.  A 450-seat sitting (the council of
tests/fixtures/council_450.py, journaled here in a few batches) checks that long lists run over pages
with their header row on each.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from export_fixtures import ROOT, START_MS, fake_recordings, journal_sitting
from fixtures import council_450
from pypdf import PdfReader

from chamber import cli
from chamber.core import events as ev
from chamber.core.values import Key, Outcome, VoteKind
from chamber.journal import Journal
from protocol_export import fonts, pdf_tables, words
from protocol_export.engine_feed import fed
from protocol_export.pdf import UnknownVote, render_protocol, render_result_sheet
from protocol_export.recording_list import list_digest, load_listed, parse_list
from protocol_export.source import SittingDoc, load_sitting

NOTICE = "Підписано демонстраційним самопідписаним сертифікатом — не має юридичної сили"
OUTCOMES = {"За", "Проти", "Утримався", "Не голосував", "Відсутній", "Утрималася", "Не голосувала", "Відсутня"}
HER_WORDS = {"Утримався": "Утрималася", "Не голосував": "Не голосувала", "Відсутній": "Відсутня"}


def said(name: str, outcome: Outcome) -> str:
    """What a document says of ``name``'s choice: a woman's words for a woman's patronymic (every name
    of these councils has one: Юріївна, Петрівна)."""
    plain = outcome.label_uk
    return HER_WORDS.get(plain, plain) if name.split()[-1].endswith("вна") else plain


@pytest.fixture(scope="module")
def journaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Path]:
    path = tmp_path_factory.mktemp("pdf") / "j.db"
    url = f"sqlite:///{path}"
    return url, journal_sitting(url), path


@pytest.fixture(scope="module")
def doc(journaled: tuple[str, str, Path]) -> SittingDoc:
    url, uid, _ = journaled
    with Journal(url, create=False) as journal:
        return load_sitting(journal, uid)


@pytest.fixture(scope="module")
def protocol(doc: SittingDoc) -> bytes:
    return render_protocol(doc)


def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def flat(text: str) -> str:
    """Text with its line breaks made spaces: a phrase that wrapped in a cell still reads as one."""
    return " ".join(text.split())


def vote_section(text: str, number: int) -> str:
    """The text of vote ``number``'s block in the protocol: from its heading to the next one."""
    start = re.search(rf"^ ?Голосування № {number}( \(|\n)", text, re.M)
    assert start is not None, number
    end = re.compile(r"^ ?Голосування № \d+( \(|\n)", re.M).search(text, start.end())
    return text[start.start() : end.start() if end else text.index("4. Виступи")]


def choices_in(section: str, names: set[str]) -> dict[str, str]:
    """{name: choice} read from a per-name table: each name's line is followed (after its faction) by
    its choice."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in section.splitlines():
        line = line.strip()
        if line in names:
            current = line
        elif current is not None and line in OUTCOMES:
            found[current] = line
            current = None
    return found


def test_header(doc: SittingDoc, protocol: bytes) -> None:
    first = pages(protocol)[0]
    council = doc.roster.council
    for text in (
        "ЖИТОМИРСЬКА МІСЬКА РАДА",
        "VIII скликання",
        "ПРОТОКОЛ № 12",
        "Дванадцята сесія, пленарне засідання",
        "2 грудня 2025 року",
        council.place,
        "відкрито о 10:00:01",
        "43 депутати",
        "більше половини від загального складу ради: щонайменше 22 депутати",
        council.edrpou,
        council.katottg,
        doc.uid,
    ):
        assert text and text in flat(first), text
    assert council.place == "м. Житомир, майдан Святого Михайла, 4/2, сесійна зала"  # journaled, from config.toml
    assert f"записи 1–{doc.last_seq}, голова {doc.head_text}" in first.replace("\n", "")  # the hash wraps


def test_registration_with_names_times_and_the_manual_reason(doc: SittingDoc, protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    (round_,) = doc.snapshot.rounds
    assert "зареєстровано 40 із 43; кворум є (потрібно щонайменше 22)" in flat(text)
    for mark in doc.registrations:
        name = doc.deputy_name(mark.deputy)
        at = words.hms(mark.at_ms) + (" *" if mark.seat is None else "")
        assert f"{name}\n" in text and at in text, (name, at)
    manual = doc.deputy_name(round_.manual[0][0])
    assert f"№ 1: {manual} — несправний пульт" in flat(text)


def test_every_vote_with_verdict_counts_threshold_and_names(doc: SittingDoc, protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    names = {d.full_name for d in doc.roster.deputies}
    for result in doc.snapshot.results:
        section = vote_section(text, result.number)
        one = flat(section)
        if result.cancelled is not None:
            assert "ГОЛОСУВАННЯ СКАСОВАНО" in one and f"Причина: {result.cancelled}" in one
            assert choices_in(section, names) == {}  # the presses before a cancellation decided nothing
            continue
        if result.adopted:
            assert "ПРИЙНЯТО (" in one or "ПРИЙНЯТО:" in one
            assert "НЕ ПРИЙНЯТО" not in one
        else:
            assert "НЕ ПРИЙНЯТО" in one
        base = words.base_of(result)
        threshold = f"{words.threshold_words(result.threshold)} ({base}): щонайменше {words.votes(result.required)}"
        assert threshold in one, (result.number, threshold)
        if result.kind is not VoteKind.RATING:
            assert " ".join(str(c) for c in (*result.counts, result.did_not_vote, result.absent)) in one
        if result.kind is VoteKind.ROLL_CALL:
            expected = {doc.deputy_name(c.deputy): said(doc.deputy_name(c.deputy), c.outcome) for c in result.per_name}
            assert choices_in(section, names) == expected
    first = flat(vote_section(text, 1))
    assert "ПРИЙНЯТО («за» 30 голосів при потрібних 22)" in first
    assert "більше половини від загального складу ради (43): щонайменше 22 голоси «за»" in first
    assert "Проєкт рішення № 757/2" in flat(vote_section(text, 2))


def test_the_revote_and_the_cancelled_vote_name_each_other(protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    cancelled, revote = flat(vote_section(text, 3)), flat(vote_section(text, 4))
    assert "Повторено голосуванням № 4" in cancelled
    assert "Причина: збій пульта № 7 під час голосування" in cancelled
    assert "Голосування № 4 (повторне, замість № 3)" in revote
    assert "замість голосування № 3 (скасоване: збій пульта № 7 під час голосування)" in revote
    assert "НЕ ПРИЙНЯТО («за» 20 голосів при потрібних 22)" in revote


def test_the_secret_vote_has_counts_and_who_took_part_but_no_choices(doc: SittingDoc, protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    section = vote_section(text, 5)
    names = {d.full_name for d in doc.roster.deputies}
    assert choices_in(section, names) == {}
    listed = [line for line in section.splitlines() if line.strip() in names]
    assert sorted(listed) == sorted(doc.deputy_name(d) for d in doc.secret_ballots[5])
    one = flat(section)
    assert "Взяли участь у таємному голосуванні: 37 депутатів" in one
    assert "ч. 1 ст. 50 Закону «Про місцеве самоврядування в Україні»" in one
    assert "28 6 3 3 3" in one and "ПРИЙНЯТО" in one


def test_the_rating_and_the_open_vote(doc: SittingDoc, protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    rating = flat(vote_section(text, 6))
    assert "ПРИЙНЯТО: пропозиція 2 «22 грудня» (22 голоси)" in rating
    assert "більше половини від тих, хто проголосував (37): щонайменше 19 голосів за одну пропозицію" in rating
    result = doc.snapshot.results[5]
    chosen = next(c for c in result.per_name if c.proposal == 2)
    assert f"{doc.deputy_name(chosen.deputy)} " in rating and "2. 22 грудня" in rating
    open_vote = flat(vote_section(text, 7))
    assert "оприлюднюється лише кількість голосів, без прізвищ" in open_vote
    assert "більше половини від зареєстрованих депутатів (40): щонайменше 21 голос «за»" in open_vote


def test_speeches_and_alerts(doc: SittingDoc, protocol: bytes) -> None:
    text = "\n".join(pages(protocol))
    speeches = flat(text[text.index("4. Виступи") : text.index("5. Сповіщення")])
    for sp in doc.snapshot.speeches:
        assert doc.deputy_name(sp.deputy) in speeches and words.hms(sp.start) in speeches
    assert "доповідь" in speeches and "мікрофон вимкнено" in speeches and "час вичерпано" in speeches
    assert "4:00 із 5:00" in speeches
    alerts = flat(text[text.index("5. Сповіщення") : text.index("6. Засвідчення")])
    card = doc.alerts[0]
    assert words.alert_words(card.effect.kind) in alerts and doc.deputy_name(card.effect.deputy) in alerts
    assert "натискання без картки в пульті" in alerts
    assert words.hms(doc.refusals[0].at_ms) in alerts


def test_every_page_carries_the_journal_and_its_number(doc: SittingDoc, protocol: bytes) -> None:
    texts = pages(protocol)
    assert len(texts) > 3
    line = f"Журнал: записи {doc.first_seq}–{doc.last_seq}, голова {doc.head.seq}:{doc.head.hash[:16]}…"
    for number, text in enumerate(texts, 1):
        assert line in text and f"Сторінка {number} з {len(texts)}" in text and doc.uid in text
    last = texts[-1].replace("\n", "")
    assert "6. Засвідчення" in last and doc.head_text in last and "Головуючий" in last  # signed with the head


def test_metadata_says_what_to_re_render(doc: SittingDoc, protocol: bytes) -> None:
    meta = PdfReader(io.BytesIO(protocol)).metadata
    assert meta is not None
    assert meta["/ChamberSitting"] == doc.uid
    assert meta["/ChamberSeqRange"] == f"{doc.first_seq}-{doc.last_seq}"
    assert meta["/ChamberHead"] == doc.head_text
    assert meta["/ChamberDocument"] == "protocol" and "/ChamberVote" not in meta and "/ChamberNotice" not in meta
    assert doc.head_text in meta["/Keywords"] and meta["/Author"] == "Житомирська міська рада"
    # created at the journal's last record, on Kyiv's clock (not the renderer's clock)
    assert meta["/CreationDate"] == words.pdf_date(doc.snapshot.clock) == meta["/ModDate"]
    assert meta["/CreationDate"].startswith("D:20251202") and meta["/CreationDate"].endswith("+02'00'")
    sheet = PdfReader(io.BytesIO(render_result_sheet(doc, 4, notice=NOTICE))).metadata
    assert sheet is not None and sheet["/ChamberVote"] == "4" and sheet["/ChamberDocument"] == "sheet"
    assert sheet["/ChamberNotice"] == NOTICE and sheet["/ChamberHead"] == doc.head_text


def test_the_same_journal_gives_the_same_bytes(
    journaled: tuple[str, str, Path], doc: SittingDoc, protocol: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert render_protocol(doc) == protocol
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")  # reportlab reads it: it must not reach our bytes
    assert render_protocol(doc) == protocol
    assert render_result_sheet(doc, 1) == render_result_sheet(doc, 1)
    assert render_protocol(doc, notice=NOTICE) != protocol
    # another process, another hash seed, another clock: the same file from the same journal
    url, uid, _ = journaled
    script = (
        "import hashlib, sys\n"
        "from chamber.journal import Journal\n"
        "from protocol_export.source import load_sitting\n"
        "from protocol_export.pdf import render_protocol\n"
        f"with Journal({url!r}, create=False) as j:\n"
        f"    d = load_sitting(j, {uid!r})\n"
        "print(hashlib.sha256(render_protocol(d)).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "TZ": "America/New_York", "SOURCE_DATE_EPOCH": "42"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == hashlib.sha256(protocol).hexdigest()


def test_the_notice_is_on_every_page(doc: SittingDoc) -> None:
    for pdf in (render_protocol(doc, notice=NOTICE), render_result_sheet(doc, 1, notice=NOTICE)):
        for text in pages(pdf):
            assert NOTICE in flat(text)
    longer = " ".join([NOTICE] * 4)  # four lines: the box grows, the sheet still fits its page
    (text,) = pages(render_result_sheet(doc, 1, notice=longer))
    assert longer in flat(text) and "Головуючий" in text


def test_fonts_are_embedded_and_draw_every_letter(doc: SittingDoc, protocol: bytes) -> None:
    reader = PdfReader(io.BytesIO(protocol))
    seen = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            seen.add(str(font["/BaseFont"]).split("+")[-1])
            assert "/FontFile2" in font["/FontDescriptor"], font["/BaseFont"]  # embedded TrueType
    assert seen == {"DejaVuSans", "DejaVuSans-Bold", "DejaVuSansCondensed", "DejaVuSansCondensed-Bold"}
    strings = [d.full_name + d.faction for d in doc.roster.deputies]
    strings += [i.title + i.draft for i in doc.snapshot.agenda]
    strings += [r.title + "".join(r.proposals) + (r.cancelled or "") for r in doc.snapshot.results]
    strings += [*words.ALERT_UK.values(), *words.REFUSAL_UK.values(), NOTICE, "«»—–…№ʼ’ЄІЇҐєіїґ"]
    for face in (fonts.SANS, fonts.SANS_BOLD, fonts.COND, fonts.COND_BOLD):
        assert fonts.missing("".join(strings), face) == set(), face
    assert (ROOT / "protocol_export" / "fonts" / "LICENSE").read_text().count("Bitstream") >= 3


def test_result_sheets(doc: SittingDoc) -> None:
    for result in doc.snapshot.results:
        texts = pages(render_result_sheet(doc, result.number))
        assert len(texts) == 1, f"vote {result.number}: {len(texts)} pages"  # a council of 43: one page
        one = flat(texts[0])
        assert words.SHEET_TITLE[result.kind].upper() in one and f"Голосування № {result.number}" in one
        assert "ЖИТОМИРСЬКА МІСЬКА РАДА" in one and "засідання № 12 · 2 грудня 2025 року" in one
    sheet = pages(render_result_sheet(doc, 1))[0]
    assert "РЕЗУЛЬТАТИ ПОІМЕННОГО ГОЛОСУВАННЯ" in sheet and "ПРИЙНЯТО («за» 30 голосів при потрібних 22)" in sheet
    names = {d.full_name for d in doc.roster.deputies}
    first = doc.snapshot.results[0]
    expected = {doc.deputy_name(c.deputy): said(doc.deputy_name(c.deputy), c.outcome) for c in first.per_name}
    assert choices_in(sheet, names) == expected
    secret = pages(render_result_sheet(doc, 5))[0]
    assert choices_in(secret, names) == {} and "Взяли участь у таємному голосуванні: 37 депутатів" in secret
    with pytest.raises(UnknownVote, match="no finished vote 8"):
        render_result_sheet(doc, 8)


def test_a_womans_choice_is_in_her_words_and_the_open_data_keeps_its_values(
    journaled: tuple[str, str, Path], doc: SittingDoc, protocol: bytes
) -> None:
    """Vote 1 of the fixture: a woman and a man abstained, did not vote, were absent.  The protocol and
    the sheet say «Утрималася» of her and «Утримався» of him; the open data «Утримався» of both."""
    her_and_his = {
        "Білоус Катерина Юріївна": "Утрималася",
        "Демченко Ярослав Іванович": "Утримався",
        "Гуменюк Софія Андріївна": "Не голосувала",
        "Харченко Микола Григорович": "Не голосував",
        "Левченко Ганна Борисівна": "Відсутня",
        "Осадчук Валентин Романович": "Відсутній",
    }
    section = vote_section("\n".join(pages(protocol)), 1)
    sheet = pages(render_result_sheet(doc, 1))[0]
    for text in (section, sheet):
        assert choices_in(text, set(her_and_his)) == her_and_his
    # the per-name table stays one line a deputy: «Не голосувала» is not wrapped in its cell
    assert "Гуменюк Софія Андріївна\nНе голосувала" in sheet.replace(" \n", "\n")
    # the pages' words are the documents' (display.i18n's woman's forms)
    from display.i18n import STRINGS
    from protocol_export.pdf_votes import OUTCOME_F, outcome_word

    assert {STRINGS["uk"][f"one_{o.value}_f"] for o in OUTCOME_F} == set(OUTCOME_F.values())
    # only the journaled name says it: a name without a patronymic is «Утримався» (config.toml's
    # gender = "f" never reaches the journal)
    olena = next(d for d in doc.roster.deputies if d.full_name == "Коваленко Олена Петрівна")
    assert outcome_word(Outcome.ABSTAIN, olena) == "Утрималася"
    assert outcome_word(Outcome.ABSTAIN, msgspec.structs.replace(olena, full_name="Коваленко Олена")) == "Утримався"
    url, uid, _ = journaled
    from protocol_export.site_files import load_files

    with Journal(url, create=False) as journal:
        opendata = load_files(journal, uid).opendata()
    csv = opendata["vote.csv"].decode("utf-8")
    assert not any(word.encode() in data for data in opendata.values() for word in OUTCOME_F.values())
    assert "Утримався" in csv and "Відсутній" in csv


def test_cli(journaled: tuple[str, str, Path], doc: SittingDoc, protocol: bytes, tmp_path: Path) -> None:
    url, uid, path = journaled
    out = tmp_path / "p.pdf"
    assert cli.main(["protocol", "--db", url, "--sitting", uid, "--out", str(out)]) == 0
    assert out.read_bytes() == protocol
    sheet = tmp_path / "s" / "vote-2.pdf"
    assert cli.main(["sheet", "--db", url, "--sitting", uid, "--vote", "2", "--out", str(sheet)]) == 0
    assert sheet.read_bytes() == render_result_sheet(doc, 2)
    assert cli.main(["sheet", "--db", url, "--sitting", uid, "--vote", "99", "--out", str(tmp_path / "x.pdf")]) == 1
    assert cli.main(["protocol", "--db", url, "--sitting", "nope", "--out", str(tmp_path / "x.pdf")]) == 1
    assert not (tmp_path / "x.pdf").exists() and [p.name for p in tmp_path.iterdir()] == sorted(["p.pdf", "s"])
    # a journal changed after the fact backs no document: nothing is written, exit 1
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal SET at_ms = at_ms + 1 WHERE seq = 7")
    bad = tmp_path / "bad.pdf"
    assert cli.main(["protocol", "--db", f"sqlite:///{copy}", "--sitting", uid, "--out", str(bad)]) == 1
    assert not bad.exists()


# --- 450 seats --------------------------------------------------------------------------------------


def journal_450(url: str) -> str:
    """A sitting of the 450-seat chamber: 430 cards in, 426 registered (one by hand), a roll-call vote."""
    config = council_450.load()
    with fed(url, START_MS) as batch:
        people = [d for d in config.deputies if d.role.value == "deputy"][:430]
        batch(ev.OpenSitting(roster=config.roster(), number=3, title="Третє пленарне засідання"))
        batch(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Про бюджет на 2026 рік", draft="12/3"),)))
        batch(*(ev.CardInserted(seat=d.seat or 0, uid=d.cards[0]) for d in people))
        batch(ev.OpenRegistration())
        batch(*(ev.KeyPressed(seat=d.seat or 0, key=Key.REGISTER) for d in people[:425]))
        batch(ev.RegisterDeputy(deputy=people[425].id, reason="картку забуто вдома"), ev.CloseRegistration())
        batch(ev.SetCurrentItem(number="1"), ev.OpenVote(duration_s=0))
        keys = [Key.YES] * 300 + [Key.NO] * 80 + [Key.ABSTAIN] * 30
        batch(*(ev.KeyPressed(seat=d.seat or 0, key=k) for d, k in zip(people, keys, strict=False)))
        batch(ev.CloseVote(), ev.AnnounceResult(), ev.ClearResult(), ev.CloseSitting())
        return batch.uid


@pytest.fixture(scope="module")
def doc_450(tmp_path_factory: pytest.TempPathFactory) -> SittingDoc:
    url = f"sqlite:///{tmp_path_factory.mktemp('pdf450') / 'j.db'}"
    uid = journal_450(url)
    with Journal(url, create=False) as journal:
        return load_sitting(journal, uid)


def test_450_names_run_over_pages_with_the_header_on_each(doc_450: SittingDoc) -> None:
    result = doc_450.snapshot.results[0]
    assert len(result.per_name) == 450 and result.adopted and result.counts == (300, 80, 30)
    texts = pages(render_result_sheet(doc_450, 1))
    assert len(texts) > 4  # 450 names in one column: several pages
    for text in texts:
        assert "Прізвище, ім'я, по батькові" in text and "Фракція" in text and "Голос" in text  # header row
    names = {d.full_name for d in doc_450.roster.deputies}
    expected = {doc_450.deputy_name(c.deputy): said(doc_450.deputy_name(c.deputy), c.outcome) for c in result.per_name}
    joined = "\n".join(texts)
    assert choices_in(joined, names) == {n: c for n, c in expected.items() if n in joined}
    unwrapped = flat(joined)
    assert all(name in unwrapped for name in names)  # every name, the long ones wrapped in their cell
    numbers = [int(line) for line in joined.splitlines() if line.strip().isdigit() and 1 <= int(line) <= 450]
    assert sorted(set(numbers)) == list(range(1, 451))  # no row lost at a page break

    protocol = pages(render_protocol(doc_450))
    vote_pages = [t for t in protocol if "Голос\n" in t or "\nГолос" in t]
    assert len(vote_pages) > 4 and all("Прізвище, ім'я, по батькові" in t for t in vote_pages)
    registration = [t for t in protocol if "Реєстрація № 1" in t]
    assert len(registration) > 4  # the registration table too, with its header on each page
    assert "№ 1:" in flat("\n".join(protocol)) and "картку забуто вдома" in flat("\n".join(protocol))


def test_the_fast_tables_write_reportlabs_own_bytes(
    doc: SittingDoc, protocol: bytes, doc_450: SittingDoc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pdf_tables builds its tables and draws their plain-text cells its own faster way; the bytes are
    the ones reportlab's own way gives (names that wrap, bold and right-aligned columns, a notice, two
    halves on a sheet, 450 names over pages)."""
    assert pdf_tables.FAST

    def documents() -> list[bytes]:
        return [
            render_protocol(doc),
            render_protocol(doc, notice=NOTICE),
            render_result_sheet(doc, 1),
            render_result_sheet(doc, 6),
            render_protocol(doc_450),
            render_result_sheet(doc_450, 1),
        ]

    fast = documents()
    assert fast[0] == protocol
    monkeypatch.setattr(pdf_tables, "FAST", False)
    slow = documents()
    for i, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a == b, f"document {i}: the fast tables changed the bytes"


def test_a_sitting_still_open_with_markup_in_its_text(tmp_path: Path) -> None:
    """A protocol can be printed mid-sitting (nothing voted yet); journal text is text, never markup."""
    url = f"sqlite:///{tmp_path / 'j.db'}"
    config = council_450.load()
    with fed(url, START_MS) as feed:
        title = "Про ТОВ «Ріг & <Копита>» — </para><b>не розмітка</b>"
        feed(ev.OpenSitting(roster=config.roster(), number=1, title="Перше & <пленарне>"), step_ms=1_000)
        feed(ev.SetAgenda(items=(ev.AgendaItem(number="1", title=title),)), step_ms=1_000)
        uid = feed.uid
    with Journal(url, create=False) as journal:
        doc = load_sitting(journal, uid)
    text = flat("\n".join(pages(render_protocol(doc))))
    assert "Перше & <пленарне>" in text and title in text
    assert "не закрито: протокол станом на 10:00:02" in text
    assert "Реєстрацію не проводили." in text and "Голосувань не було." in text
    assert "Виступів у системі не зафіксовано." in text and "Сповіщень і відхилених натискань не було." in text
    with pytest.raises(UnknownVote, match="finished votes: none"):
        render_result_sheet(doc, 1)


# --- speech recordings --------------------------------------------------------------------------------


def test_recordings_are_listed_with_the_speeches_and_in_an_annex(
    doc: SittingDoc, protocol: bytes, tmp_path: Path
) -> None:
    made = fake_recordings(tmp_path, doc)
    listed = load_listed(tmp_path, doc.uid, doc.snapshot.speeches)
    assert [r.file for r in listed] == [r.file for r in made[:-1]]  # not the later speech's
    pdf = render_protocol(doc.with_recordings(listed))
    assert render_protocol(doc.with_recordings(load_listed(tmp_path, doc.uid, doc.snapshot.speeches))) == pdf
    assert render_protocol(doc.with_recordings(())) == protocol  # none: the bytes of a protocol without them
    texts = pages(pdf)
    text = "\n".join(texts)
    speeches = flat(text[text.index("4. Виступи") : text.index("5. Сповіщення")])
    assert "Аудіозаписи виступів" in speeches and "Записано 3 файли" in speeches
    for rec in made[:-1]:
        assert rec.file in speeches and f"{rec.sha256[:8]} {rec.sha256[8:16]}…" in speeches
    assert "* Запис неповний" in speeches
    annex = flat(texts[-1])  # a page of its own, after the signatures
    assert "Додаток 1. Аудіозаписи виступів" in annex and "Головуючий" not in annex
    for rec in made[:-1]:
        grouped = " ".join(rec.sha256[i : i + 8] for i in range(0, 64, 8))
        assert f"{rec.file} {rec.bytes} {grouped}" in annex
    assert made[-1].file not in text
    digest = list_digest(listed)
    assert " ".join(digest[i : i + 8] for i in range(0, 64, 8)) in annex
    meta = PdfReader(io.BytesIO(pdf)).metadata
    assert meta is not None and meta["/ChamberRecordings"] == digest
    assert parse_list(meta["/ChamberRecordingList"]) == listed
    assert "/ChamberRecordings" not in (PdfReader(io.BytesIO(protocol)).metadata or {})
    # a sheet lists no recordings: the same bytes with them or without
    assert render_result_sheet(doc.with_recordings(listed), 1) == render_result_sheet(doc, 1)


def test_chamber_protocol_lists_the_recordings_of_the_folder_given(
    journaled: tuple[str, str, Path], doc: SittingDoc, protocol: bytes, tmp_path: Path
) -> None:
    url, uid, _ = journaled
    fake_recordings(tmp_path / "rec", doc)
    out = tmp_path / "p.pdf"
    assert (
        cli.main(["protocol", "--db", url, "--sitting", uid, "--out", str(out), "--recordings", str(tmp_path / "rec")])
        == 0
    )
    assert out.read_bytes() == render_protocol(
        doc.with_recordings(load_listed(tmp_path / "rec", uid, doc.snapshot.speeches))
    )
    assert cli.main(["protocol", "--db", url, "--sitting", uid, "--out", str(out), "--recordings", str(tmp_path)]) == 0
    assert out.read_bytes() == protocol  # a folder without the sitting's index: none listed
    (tmp_path / "rec" / uid / "index.json").write_text("{not json", encoding="utf-8")
    assert (
        cli.main(["protocol", "--db", url, "--sitting", uid, "--out", str(out), "--recordings", str(tmp_path / "rec")])
        == 1
    )

"""The pages in a real browser: the system Chromium (tests/browser.py) against the real web server.

Every browser test starts ``display.app.create_app`` over a real ``Engine`` and a temporary SQLite
journal, served by ``WebServer`` on a free loopback port with its publisher thread running, exactly
as ``chamber run`` serves it.  What the consoles would report (cards, presses) goes into the engine as
the line loops put it there (``Engine.submit``); everything the secretary does goes through the pages.
Waits are bounded: Playwright's ``expect`` with a timeout, never a bare sleep.

The first tests need no browser: the strings every page shows exist in both languages, and the
fixtures of tests/fixtures/ are the public state of docs/web-protocol.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fixtures import council_450
from playwright.sync_api import Browser, BrowserContext, Page, expect

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.values import Key, VoteKind
from chamber.engine import Engine
from chamber.journal import Journal
from display.app import WebServer, create_app
from display.i18n import STRINGS

ROOT = Path(__file__).resolve().parent.parent
DISPLAY = ROOT / "display"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PASSWORD = "a long enough test password"
WAIT = 10_000  # ms: the longest any expectation waits for the page to catch up


# --- the strings -----------------------------------------------------------------------------------------


def _used_keys() -> tuple[set[str], set[str]]:
    """Keys the templates and scripts use: (whole keys, prefixes of keys made at run time)."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    for path in (DISPLAY / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r"\bt\.([a-z_0-9]+)", text))
        keys |= set(re.findall(r"\bt\[['\"]([a-z_0-9]+)['\"]\]", text))
        prefixes |= set(re.findall(r"\bt\[['\"]([a-z_0-9]+_)['\"] ~", text))
    for path in (DISPLAY / "static" / "js").glob("*.js"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r"\btr\(\s*\"([a-z_0-9]+)\"", text))
        keys |= set(re.findall(r"\bT\.([a-z_0-9]+)", text))
        prefixes |= set(re.findall(r"\btr\(`([a-z_0-9]+_)\$\{", text))
    return keys, prefixes


def test_every_string_a_page_uses_exists_in_ukrainian_and_english() -> None:
    uk, en = STRINGS["uk"], STRINGS["en"]
    assert set(uk) == set(en), sorted(set(uk) ^ set(en))
    assert all(v.strip() for v in [*uk.values(), *en.values()])
    keys, prefixes = _used_keys()
    assert not sorted(k for k in keys if k not in uk)
    for prefix in prefixes:  # e.g. kind_${vote.kind}: the enumerations are all there
        assert any(k.startswith(prefix) for k in uk), prefix
    for name in ("roll_call", "open", "secret", "rating"):
        assert f"kind_{name}" in uk
    for name in ("yes", "no", "abstain", "did_not_vote", "absent"):
        assert f"one_{name}" in uk and f"count_{name}" in uk
    for name in ("no_sitting", "idle", "registration", "vote_open", "vote_closed", "result_shown"):
        assert f"phase_{name}" in uk
    for name in ("speech", "reply", "point_of_order", "report"):
        assert f"speech_{name}" in uk
    for name in ("secretary", "chair", "operator", "observer"):
        assert f"role_{name}" in uk
    for cls in ev.INPUT_TYPES:
        if cls not in ("KeyPressed", "CardInserted", "CardRemoved", "PresenceChanged", "SeatWentOffline",
                       "SeatCameOnline", "MicUnitChanged", "SecretBallotCast", "Tick", "SecretTallySealed",
                       "AnnulSecretVote"):  # fmt: skip
            assert f"cmd_{cls}" in uk, cls
    # placeholders agree between the languages
    for key, text in uk.items():
        assert set(re.findall(r"\{[a-z]+\}", text)) == set(re.findall(r"\{[a-z]+\}", en[key])), key


def _alert_kinds() -> set[str]:
    """Every ``Alert`` kind the core raises: ``Alert(kind="...")``, and the card refusals of the seat
    handlers, whose kind is the refusal's reason (``refused("wrong_seat", ...)``)."""
    kinds: set[str] = set()
    for path in (ROOT / "chamber").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        kinds |= set(re.findall(r"\bAlert\(\s*kind=\"([a-z_]+)\"", text))
        if re.search(r"\bAlert\(\s*kind=reason\b", text):
            kinds |= set(re.findall(r"\brefused\(\s*\"([a-z_]+)\"", text))
    return kinds


def test_every_alert_kind_has_words_in_both_languages() -> None:
    kinds = _alert_kinds()
    assert {"seat_offline", "mic_unit_offline", "unknown_card", "card_elsewhere", "wrong_seat"} <= kinds, kinds
    for lang in ("uk", "en"):
        missing = sorted(k for k in kinds if f"alert_{k}" not in STRINGS[lang])
        assert not missing, (lang, missing)
    assert "{kind}" in STRINGS["uk"]["alert_other"]  # a kind added later still reads as an alert, code and all


def test_no_page_loads_anything_from_another_host() -> None:
    for path in [*(DISPLAY / "templates").glob("*.html"), *(DISPLAY / "static").rglob("*.css"),
                 *(DISPLAY / "static" / "js").glob("*.js")]:  # fmt: skip
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", text), path
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), path
        assert "@import" not in text, path


@pytest.mark.parametrize("size", [43, 450])
def test_the_fixtures_are_public_states_of_the_contract(size: int) -> None:
    state = json.loads((FIXTURES / f"web_state_{size}.json").read_text(encoding="utf-8"))
    assert set(state) == {
        "rev", "council", "clock_ms", "phase", "sitting", "agenda", "current_item", "registration", "vote",
        "last_result", "speakers", "seats", "deputies",
    }  # fmt: skip
    assert len(state["seats"]) == size == state["council"]["composition"]
    seat = next(iter(state["seats"].values()))
    assert set(seat) == {"x", "y", "chair", "deputy", "online", "present", "voted", "choice", "speaking", "queued"}
    result = state["last_result"]
    assert set(result) >= {"number", "kind", "counts", "did_not_vote", "absent", "required", "adopted", "winner",
                           "cancelled", "result_uk", "result_en", "per_name"}  # fmt: skip
    assert len(result["per_name"]) == size
    assert sum(result["counts"]) + result["did_not_vote"] + result["absent"] == size


# --- a live server ------------------------------------------------------------------------------------------


@dataclass
class Live:
    """The web server of a real engine over a fresh journal, on a free loopback port."""

    config: Config
    journal: Journal
    engine: Engine
    server: WebServer

    def url(self, path: str = "") -> str:
        return self.server.url(path)

    def user(self, name: str, role: str) -> None:
        self.server.web.users.add(name, role, PASSWORD)

    def execute(self, *events: ev.Input) -> None:
        """Inputs into the engine as a line loop submits them; each must be accepted."""
        futures = [self.engine.submit(e) for e in events]
        for future in futures:
            outcome = future.result(timeout=20)
            assert outcome.accepted, outcome

    def open_sitting(self, title: str = "Пленарне засідання") -> None:
        self.execute(ev.OpenSitting(roster=self.config.roster(), number=3, title=title))

    def cards_in(self, deputies: list[Any]) -> None:
        self.execute(*(ev.CardInserted(seat=d.seat, uid=d.cards[0]) for d in deputies))

    def press(self, deputies: list[Any], key: Key) -> None:
        self.execute(*(ev.KeyPressed(seat=d.seat, key=key) for d in deputies))


def _serve(tmp_path: Path, config: Config) -> Generator[Live, None, None]:
    journal = Journal(f"sqlite:///{tmp_path / 'chamber.db'}")
    engine = Engine(journal)
    engine.start()
    app, socketio = create_app(engine, config)
    server = WebServer(app, socketio, "127.0.0.1", 0)
    server.start()
    try:
        yield Live(config, journal, engine, server)
    finally:
        server.stop()
        engine.stop()
        journal.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The council of config.toml (43 seats) behind a live server."""
    yield from _serve(tmp_path, load_config(ROOT / "config.toml"))


def _context(browser: Browser, width: int = 1920, height: int = 1080, **kwargs: Any) -> BrowserContext:
    return browser.new_context(viewport={"width": width, "height": height}, locale="uk-UA",
                               timezone_id="Europe/Kyiv", **kwargs)  # fmt: skip


def _watch(page: Page) -> list[str]:
    """Script errors of the page, to assert there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def _login(page: Page, live: Live, name: str) -> None:
    page.goto(live.url("/login"))
    page.get_by_label(STRINGS["uk"]["user_name"]).fill(name)
    page.get_by_label(STRINGS["uk"]["password"]).fill(PASSWORD)
    page.get_by_role("button", name=STRINGS["uk"]["login"]).click()
    page.wait_for_url("**/console", timeout=WAIT)
    expect(page.locator("#c-phase")).not_to_have_text(STRINGS["uk"]["connecting"], timeout=WAIT)


def _done(page: Page) -> None:
    """The last command was taken (the console shows «Виконано»)."""
    expect(page.locator("#c-reply")).to_contain_text(STRINGS["uk"]["done"], timeout=WAIT)


# --- the whole path of a roll-call vote ---------------------------------------------------------------------


def test_a_secretary_runs_a_roll_call_vote_and_the_hall_shows_counts_result_and_names(
    live: Live, chromium_browser: Browser
) -> None:
    uk = STRINGS["uk"]
    live.user("anna", "secretary")
    deputies = sorted(live.config.deputies, key=lambda d: d.id)
    console_ctx = _context(chromium_browser, 1600, 1000)
    hall_ctx = _context(chromium_browser)
    try:
        hall = hall_ctx.new_page()
        hall_errors = _watch(hall)
        hall.goto(live.url("/hall"))
        expect(hall.locator("#panel")).to_contain_text(uk["no_sitting"], timeout=WAIT)

        page = console_ctx.new_page()
        console_errors = _watch(page)
        _login(page, live, "anna")

        # open the sitting and registration from the console
        page.locator("#form-open-sitting input[name=title]").fill("Дванадцята сесія")
        page.get_by_role("button", name=uk["open_sitting"]).click()
        _done(page)
        expect(hall.locator("#sitting-title")).to_contain_text("Дванадцята сесія", timeout=WAIT)
        page.get_by_role("button", name=uk["open_registration"]).click()
        expect(hall.locator("#panel")).to_contain_text(uk["registration_open"], timeout=WAIT)
        expect(hall.locator("#quorum")).to_have_text(uk["quorum_no"], timeout=WAIT)

        # 30 deputies insert their cards and press Реєстрація at their consoles
        present = deputies[:30]
        live.cards_in(present)
        live.press(present, Key.REGISTER)
        expect(hall.locator("#registered")).to_contain_text("30", timeout=WAIT)
        expect(hall.locator("#quorum")).to_have_text(uk["quorum_yes"], timeout=WAIT)
        expect(page.locator("#reg-count")).to_have_text("30", timeout=WAIT)
        page.get_by_role("button", name=uk["close_registration"]).click()
        _done(page)

        # a roll-call vote «в цілому», closed by hand
        form = page.locator("#form-vote")
        form.locator("select[name=kind]").select_option("roll_call")
        form.locator("select[name=subject]").select_option("whole")
        form.locator("input[name=title]").fill("Про бюджет громади на 2026 рік")
        form.locator("input[name=duration_s]").fill("0")
        page.locator("#btn-open-vote").click()
        _done(page)
        expect(hall.locator("#panel .vote-title")).to_have_text("Про бюджет громади на 2026 рік", timeout=WAIT)
        expect(hall.locator("#countdown")).to_be_visible(timeout=WAIT)

        yes, no, abstain, silent = present[:24], present[24:27], present[27:28], present[28:]
        live.press(yes, Key.YES)
        live.press(no, Key.NO)
        live.press(abstain, Key.ABSTAIN)
        expect(hall.locator("#panel .cast-n")).to_have_text("28", timeout=WAIT)
        # the seat map shows who voted, never what they chose, while the vote is open
        expect(hall.locator("#side .seat.s-voted")).to_have_count(28, timeout=WAIT)
        expect(hall.locator("#side .seat.s-yes")).to_have_count(0)
        # the console lists who has not voted
        not_voted = page.locator("#not-voted li")
        expect(not_voted).to_have_count(len(silent), timeout=WAIT)
        short = live.server.web.chamber.deputies[str(silent[0].id)]["short"]
        expect(page.locator("#not-voted")).to_contain_text(short)

        page.get_by_role("button", name=uk["close_vote"]).click()
        _done(page)
        expect(hall.locator("#panel")).to_contain_text(uk["vote_closed_big"], timeout=WAIT)
        page.get_by_role("button", name=uk["announce"]).click()
        _done(page)

        # the hall: verdict, counts, threshold in words, the names
        expect(hall.locator(".verdict")).to_have_text(uk["verdict_adopted"], timeout=WAIT)
        counts = {"yes": "24", "no": "3", "abstain": "1", "did_not_vote": "2", "absent": "13"}
        for outcome, n in counts.items():
            expect(hall.locator(f"#panel .counts tr.c-{outcome} td")).to_have_text(n)
        expect(hall.locator("#panel .threshold")).to_contain_text("більше ніж 1/2 загального складу")
        expect(hall.locator("#panel .threshold")).to_contain_text("22")
        names = hall.locator("#side .names-list li")
        expect(names).to_have_count(43)  # one page: every name at once
        against = live.server.web.chamber.deputies[str(no[0].id)]["short"]
        expect(hall.locator("#side .names-list li.o-no", has_text=against)).to_contain_text(uk["one_no"])
        expect(hall.locator("#panel .seatmap .seat.s-yes")).to_have_count(24)
        # the hall fits its 1920x1080 without scrolling
        assert hall.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
        assert hall.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")

        # the console's export panel links the sitting's files, the result sheet of this vote among them
        uid = live.engine.sitting_uid
        sheet = page.locator('#exports a[data-export="sheet"]')
        expect(sheet).to_have_attribute("href", f"/public/files/{uid}/vote-1.pdf", timeout=WAIT)
        expect(sheet).to_have_text(uk["export_result_sheet_n"].replace("{n}", "1"))
        expect(page.locator('#exports a[data-export="protocol"]')).to_have_attribute(
            "href", f"/public/files/{uid}/protocol.pdf"
        )
        hrefs = page.eval_on_selector_all("#exports a[href]", "els => els.map(e => e.getAttribute('href'))")
        for href in hrefs:  # each one is there (the PDF is made in the web app's worker process)
            got = page.request.get(live.url(href.split("#")[0]), timeout=60_000)
            assert got.status == 200, (href, got.status)
            if href.endswith(".pdf"):
                assert got.body().startswith(b"%PDF-"), href

        # the public vote page, read with scripts off as on any phone
        phone = chromium_browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
        try:
            public = phone.new_page()
            public.goto(live.url("/public"))
            public.locator(".sitting-card a").first.click()
            public.get_by_role("link", name=re.compile("Про бюджет громади")).click()
            expect(public.locator(".big-verdict")).to_contain_text(uk["verdict_adopted_word"])
            row = public.locator(".names-table tr", has_text=live.server.web.chamber.deputies[str(no[0].id)]["name"])
            expect(row).to_contain_text(uk["one_no"])
            expect(public.locator(".names-table tbody tr")).to_have_count(43)
        finally:
            phone.close()
        assert not hall_errors and not console_errors, hall_errors + console_errors
    finally:
        console_ctx.close()
        hall_ctx.close()


def test_a_secret_ballot_shows_counts_only(live: Live, chromium_browser: Browser) -> None:
    uk = STRINGS["uk"]
    deputies = sorted(live.config.deputies, key=lambda d: d.id)
    present = deputies[:30]
    live.open_sitting()
    live.execute(ev.OpenRegistration())
    live.cards_in(present)
    live.press(present, Key.REGISTER)
    live.execute(ev.CloseRegistration())
    live.execute(ev.OpenVote(kind=VoteKind.SECRET, title="Про обрання секретаря ради", duration_s=0,
                             legal_basis="ч. 1 ст. 50 Закону «Про місцеве самоврядування в Україні»"))  # fmt: skip
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        page.goto(live.url("/hall"))
        expect(page.locator("#panel .vote-title")).to_have_text("Про обрання секретаря ради", timeout=WAIT)
        live.press(present[:25], Key.YES)
        live.press(present[25:28], Key.NO)
        expect(page.locator("#panel .cast-n")).to_have_text("28", timeout=WAIT)
        live.execute(ev.CloseVote())
        live.execute(ev.AnnounceResult())
        expect(page.locator(".verdict")).to_have_text(uk["verdict_adopted"], timeout=WAIT)
        expect(page.locator("#panel .counts tr.c-yes td")).to_have_text("25")
        expect(page.locator("#panel .counts tr.c-no td")).to_have_text("3")
        expect(page.locator("#side .secret-note")).to_have_text(uk["secret_note"])
        # no names and no seat coloured by a choice anywhere on the screen
        expect(page.locator(".names-list li")).to_have_count(0)
        for choice in ("yes", "no", "abstain"):
            expect(page.locator(f".seat.s-{choice}")).to_have_count(0)
        assert not errors, errors
    finally:
        ctx.close()


def test_the_console_names_each_alert_in_words(live: Live, chromium_browser: Browser) -> None:
    live.user("anna", "secretary")
    live.open_sitting()
    deputies = sorted(live.config.deputies, key=lambda d: d.id)
    ctx = _context(chromium_browser, 1600, 1000)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        _login(page, live, "anna")
        # a deputy's card in a neighbour's console (a proxy vote?), and a card nobody owns
        for card in (
            ev.CardInserted(seat=deputies[0].seat or 0, uid=deputies[1].cards[0]),
            ev.CardInserted(seat=deputies[2].seat or 0, uid="FFFF0000"),
        ):
            assert not live.engine.submit(card).result(timeout=20).accepted  # refused, with an alert
        alerts = page.locator("#alerts-list li")
        expect(alerts).to_have_count(2, timeout=WAIT)
        expect(page.locator("#alerts-list")).to_contain_text(STRINGS["uk"]["alert_wrong_seat"])
        expect(page.locator("#alerts-list")).to_contain_text(STRINGS["uk"]["alert_unknown_card"])
        expect(page.locator("#alerts-list b")).not_to_contain_text(["wrong_seat", "unknown_card"])
        # the details too: Ukrainian sentences, not the engine's English
        details = page.locator("#alerts-list .a-detail")
        expect(details).to_contain_text([re.compile("Картку FFFF0000 на місці"), re.compile("за розсадкою")])
        expect(page.locator("#alerts-list")).not_to_contain_text(re.compile("card|seat|inserted"))
        page.goto(live.url("/console?lang=en"))
        expect(page.locator("#alerts-list")).to_contain_text(STRINGS["en"]["alert_wrong_seat"], timeout=WAIT)
        expect(page.locator("#alerts-list")).to_contain_text(STRINGS["en"]["alert_unknown_card"])
        expect(page.locator("#alerts-list .a-detail").first).to_contain_text(re.compile("Card FFFF0000 at seat"))
        assert not errors, errors
    finally:
        ctx.close()


def test_an_observer_who_tries_to_open_a_vote_is_refused_in_ukrainian(live: Live, chromium_browser: Browser) -> None:
    uk = STRINGS["uk"]
    live.user("olha", "observer")
    live.open_sitting()
    ctx = _context(chromium_browser, 1600, 1000)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        _login(page, live, "olha")
        expect(page.locator("#c-role-note")).to_contain_text(uk["role_note_observer"], timeout=WAIT)
        page.locator("#form-vote input[name=title]").fill("Спроба спостерігача")
        button = page.locator("#btn-open-vote")
        expect(button).to_be_enabled(timeout=WAIT)  # the phase allows it; the server is the judge
        button.click()
        reply = page.locator("#c-reply.refused")
        expect(reply).to_be_visible(timeout=WAIT)
        expect(reply).to_contain_text(uk["refused"])
        expect(reply).to_contain_text("не дозволяє цю дію")
        expect(page.locator("#c-phase")).to_contain_text(uk["phase_idle"])
        assert live.engine.snapshot().vote is None
        assert not errors, errors
    finally:
        ctx.close()


def test_the_overlay_is_transparent_and_draws_only_the_speaker_and_the_result(
    live: Live, chromium_browser: Browser
) -> None:
    live.open_sitting()
    deputies = sorted(live.config.deputies, key=lambda d: d.id)
    speaker = deputies[4]
    live.cards_in([speaker])
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        page.goto(live.url("/overlay"))
        for element in ("document.documentElement", "document.body"):
            assert page.evaluate(f"getComputedStyle({element}).backgroundColor") == "rgba(0, 0, 0, 0)"
        expect(page.locator("#lower-third")).to_be_hidden(timeout=WAIT)
        expect(page.locator("#result-banner")).to_be_hidden()
        assert speaker.seat is not None
        live.execute(ev.GrantFloor(seat=speaker.seat))
        lower = page.locator("#lower-third")
        expect(lower).to_be_visible(timeout=WAIT)
        expect(lower.locator("#lt-name")).to_have_text(speaker.full_name)
        expect(lower.locator("#lt-timer")).to_have_text(re.compile(r"^\d+:\d\d$"))
        # nothing else is drawn: every visible box is inside the lower third or the banner
        drawn = page.evaluate(
            """() => [...document.querySelectorAll('body *')].filter(e => {
                 const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
                 return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.opacity !== '0'
                   && !e.closest('#lower-third, #result-banner, .thirds, .overlay, .lang-switch');
               }).map(e => e.tagName)"""
        )
        assert drawn == [], drawn
        assert not errors, errors
    finally:
        ctx.close()


def test_the_pages_switch_to_english(live: Live, chromium_browser: Browser) -> None:
    en = STRINGS["en"]
    live.open_sitting()
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        page.goto(live.url("/hall?lang=en"))
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#registered")).to_contain_text(en["registered"], timeout=WAIT)
        expect(page.locator("#quorum")).to_have_text(en["quorum_no"])
        page.goto(live.url("/public"))  # the cookie keeps the choice
        expect(page.locator("h1")).to_have_text(en["sittings_title"])
        page.get_by_role("link", name="UA").click()
        expect(page.locator("h1")).to_have_text(STRINGS["uk"]["sittings_title"])
    finally:
        ctx.close()


def test_the_merge_patch_applier_follows_rfc_7396(live: Live, chromium_browser: Browser) -> None:
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        page.goto(live.url("/hall"))
        # the examples of RFC 7396, appendix A
        cases = [
            ({"a": "b"}, {"a": "c"}, {"a": "c"}),
            ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
            ({"a": "b"}, {"a": None}, {}),
            ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
            ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
            ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
            ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
            ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
            (["a", "b"], ["c", "d"], ["c", "d"]),
            ({"a": "b"}, ["c"], ["c"]),
            ({"a": "foo"}, None, None),
            ({"a": "foo"}, "bar", "bar"),
            ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
            ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
            ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        ]
        for target, patch, want in cases:
            got = page.evaluate("([t, p]) => window.Live.mergePatch(t, p)", [target, patch])
            assert got == want, (target, patch, got)
    finally:
        ctx.close()


# --- 450 seats -------------------------------------------------------------------------------------------------


def _config_450() -> Config:
    """A parliament-sized chamber: 450 deputies on a hemicycle, 8 lines (tests/fixtures/council_450.py)."""
    return council_450.load()


def test_450_names_stay_readable_in_pages_that_turn_by_themselves(tmp_path: Path, chromium_browser: Browser) -> None:
    gen = _serve(tmp_path, _config_450())
    live = next(gen)
    try:
        deputies = sorted(live.config.deputies, key=lambda d: d.id)
        live.open_sitting()
        live.execute(ev.OpenRegistration())
        present = deputies[:420]
        live.cards_in(present)
        live.press(present, Key.REGISTER)
        live.execute(ev.CloseRegistration(), ev.OpenVote(title="Про державний бюджет", duration_s=0))
        live.press(present[:300], Key.YES)
        live.press(present[300:400], Key.NO)
        live.execute(ev.CloseVote(), ev.AnnounceResult())
        ctx = _context(chromium_browser)
        try:
            page = ctx.new_page()
            errors = _watch(page)
            page.goto(live.url("/hall"))
            expect(page.locator(".verdict")).to_have_text(STRINGS["uk"]["verdict_adopted"], timeout=WAIT)
            expect(page.locator("#panel .seatmap .seat")).to_have_count(450)
            pager = page.locator(".names-page")
            expect(pager).to_have_text(re.compile(r"^сторінка 1 з \d+$"), timeout=WAIT)
            pages = int(pager.inner_text().rsplit(" ", 1)[1])
            per_page = page.locator(".names-list li").count()
            assert pages * per_page >= 450 > (pages - 1) * per_page
            # readable from the back of the hall: no name smaller than 22 px, none cut off
            sizes = page.eval_on_selector_all(
                ".n-name", "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))"
            )
            assert min(sizes) >= 22, min(sizes)
            cut = page.eval_on_selector_all(".n-name", "els => els.filter(e => e.scrollWidth > e.clientWidth).length")
            assert cut == 0
            first = page.locator(".names-list li").first.inner_text()
            expect(pager).to_have_text(re.compile(r"^сторінка 2 з "), timeout=12_000)  # turns by itself
            assert page.locator(".names-list li").first.inner_text() != first
            assert page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
            assert not errors, errors
        finally:
            ctx.close()
    finally:
        gen.close()

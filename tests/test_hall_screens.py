"""The hall screen at 43 and at 450 seats, the overlay and the public pages on a phone, from the real
server, kept as screenshots.

Each test runs ``display.app.create_app`` over a real ``Engine`` and a temporary SQLite journal (the
``Live`` server of tests/test_web_pages.py) for a chamber: the council of config.toml (43 seats) and
the 450-seat chamber of tests/fixtures/council_450.py.  A sitting runs as it would in the hall: the
agenda, registration from the consoles (cards in, then the Реєстрація key), a roll-call vote pressed at
the seats, closed and announced.  At each moment the hall screen (/hall, 1920x1080, system Chromium) is
checked for what a person would look at — the verdict, the counts, names on the list and their size —
and saved as a PNG (the secretary's console during the vote too; the overlay with its result banner and
its lower third, checked transparent and inside the title-safe area; the public vote and deputy pages
at a phone's 390x844 with scripts off, checked for no sideways scrolling) in the artifacts directory:
``$CHAMBER_ARTIFACTS`` when set, else ``var/test-artifacts/`` (git ignores var/).
``tests/fixtures/refresh_screenshots.py`` copies them into docs/screenshots/.

Who is absent and who presses what comes from a fixed seed: the same sitting on every run.  Waits are
bounded (Playwright's ``expect`` with a timeout).
"""

from __future__ import annotations

import os
import random
import re
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixtures import council_450
from playwright.sync_api import Browser, Page, expect
from test_web_pages import WAIT, Live, _context, _login, _serve, _watch

from chamber.config import Config, load_config
from chamber.config_sections import DeputyConfig
from chamber.core import events as ev
from chamber.core.values import Key, VoteKind, VoteSubject
from display import i18n
from display.i18n import STRINGS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS_ENV = "CHAMBER_ARTIFACTS"
MIN_NAME_PX = 22  # the smallest a name may be set on the hall screen (docs/pages.md)
VOTE_S = 120  # the vote's time limit: the countdown shows, and never runs out during the test

AGENDA = (
    ev.AgendaItem(number="1", title="Про затвердження порядку денного"),
    ev.AgendaItem(
        number="2",
        title="Про внесення змін до бюджету територіальної громади на 2026 рік",
        draft="757/2",
    ),
    ev.AgendaItem(number="3", title="Про затвердження Програми розвитку громадського транспорту", draft="758"),
    ev.AgendaItem(number="4", title="Різне"),
)
VOTE_TITLE = "Про внесення змін до бюджету територіальної громади на 2026 рік (в цілому)"
OUTCOME_OF = {Key.YES: "yes", Key.NO: "no", Key.ABSTAIN: "abstain", None: "did_not_vote"}


def artifacts_dir() -> Path:
    """Where the screenshots go: ``$CHAMBER_ARTIFACTS`` or ``var/test-artifacts/``."""
    given = os.environ.get(ARTIFACTS_ENV)
    path = Path(given) if given else ROOT / "var" / "test-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return width, height


@dataclass(frozen=True)
class Plan:
    """Who is in the hall and what each presses: made once from a seed."""

    present: tuple[int, ...]  # deputy ids whose card goes in and who register
    absent: tuple[int, ...]
    choice: dict[int, Key | None]  # per present deputy: the key pressed, None: did not vote
    early: frozenset[int]  # those who have pressed when the «vote in progress» screenshot is taken

    def counts(self) -> dict[str, int]:
        tally = Counter(OUTCOME_OF[key] for key in self.choice.values())
        return {o: tally[o] for o in ("yes", "no", "abstain", "did_not_vote")} | {"absent": len(self.absent)}

    def outcome(self, deputy: int) -> str:
        return OUTCOME_OF[self.choice[deputy]] if deputy in self.choice else "absent"


def make_plan(config: Config, seed: int, absent: int) -> Plan:
    rng = random.Random(seed)
    ids = sorted(d.id for d in config.deputies)
    away = sorted(rng.sample(ids, absent))
    present = tuple(i for i in ids if i not in away)
    keys: list[Key | None] = [Key.YES, Key.NO, Key.ABSTAIN, None]
    choice = {i: rng.choices(keys, weights=(64, 20, 9, 7))[0] for i in present}
    voters = [i for i in present if choice[i] is not None]
    early = frozenset(rng.sample(voters, len(voters) * 2 // 3))
    return Plan(present=present, absent=tuple(away), choice=choice, early=early)


# --- driving the sitting -------------------------------------------------------------------------------------


def deputies_by_id(live: Live, ids: Iterable[int]) -> list[DeputyConfig]:
    wanted = set(ids)
    return [d for d in sorted(live.config.deputies, key=lambda d: d.id) if d.id in wanted]


def press_choices(live: Live, plan: Plan, who: Iterable[int]) -> None:
    """Each deputy of ``who`` presses their key of the plan at their own seat (none: does not vote)."""
    seats = {d.id: d.seat for d in live.config.deputies}
    live.execute(
        *(ev.KeyPressed(seat=seat, key=key) for i in who if (key := plan.choice[i]) and (seat := seats[i]) is not None)
    )


def start_sitting(live: Live, title: str) -> None:
    live.execute(
        ev.OpenSitting(roster=live.config.roster(), number=12, title=title),
        ev.SetAgenda(items=AGENDA),
        ev.SetCurrentItem(number="2"),
        ev.OpenRegistration(),
    )


def open_vote(live: Live) -> None:
    live.execute(ev.OpenVote(kind=VoteKind.ROLL_CALL, subject=VoteSubject.WHOLE, title=VOTE_TITLE, duration_s=VOTE_S))


# --- the screen ------------------------------------------------------------------------------------------------


def settle(page: Page) -> None:
    """The vendored font is in and the hall has measured its names with it."""
    assert page.evaluate("() => document.fonts.ready.then(() => document.fonts.status)") == "loaded"
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def shoot(page: Page, name: str) -> Path:
    settle(page)
    # the 1920x1080 canvas, never scrolled
    assert page.evaluate("document.scrollingElement.scrollHeight <= window.innerHeight")
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    # nothing cut off at the bottom of the panel or the side (a long title must not push the threshold out)
    for box in ("#panel", "#side"):
        assert page.evaluate(f"(e => e.scrollHeight <= e.clientHeight + 1)(document.querySelector('{box}'))"), box
    path = artifacts_dir() / name
    page.screenshot(path=str(path), animations="disabled")
    assert png_size(path) == (1920, 1080)
    return path


def check_vote_in_progress(page: Page, plan: Plan, lang: str = "uk") -> None:
    cast = sum(1 for i in plan.early if plan.choice[i] is not None)
    expect(page.locator("#panel .vote-title")).to_have_text(VOTE_TITLE, timeout=WAIT)
    expect(page.locator("#panel .cast-n")).to_have_text(str(cast), timeout=WAIT)
    expect(page.locator("#panel .cast")).to_contain_text(str(len(plan.present)))
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^[0-2]:\d\d$"))
    # who voted shows on the map; what they chose does not, while the vote is open
    expect(page.locator("#side .seat.s-voted")).to_have_count(cast, timeout=WAIT)
    for choice in ("yes", "no", "abstain"):
        expect(page.locator(f".seat.s-{choice}")).to_have_count(0)
    expect(page.locator("#quorum")).to_have_text(STRINGS[lang]["quorum_yes"])


def check_result(live: Live, page: Page, plan: Plan, lang: str = "uk") -> None:
    t = STRINGS[lang]
    counts = plan.counts()
    required = len(live.config.deputies) // 2 + 1  # more than 1/2 of the composition
    assert counts["yes"] >= required, "the seed must give a decision that passes"
    expect(page.locator(".verdict")).to_have_text(t["verdict_adopted"], timeout=WAIT)
    for outcome, n in counts.items():
        expect(page.locator(f"#panel .counts tr.c-{outcome} td")).to_have_text(str(n))
    expect(page.locator("#panel .threshold")).to_contain_text(str(required))
    expect(page.locator("#panel .seatmap .seat")).to_have_count(len(live.config.seats))
    expect(page.locator("#panel .seatmap .seat.s-yes")).to_have_count(counts["yes"])

    # the names: every entry on the screen is a deputy's short name with that deputy's choice in words,
    # in her or his grammatical gender («Утрималася», «Відсутня» of a woman)
    chamber = live.server.web.chamber
    said: dict[str, set[str]] = {}
    for deputy_id, d in chamber.deputies.items():
        said.setdefault(d["short"], set()).add(i18n.word(t, f"one_{plan.outcome(int(deputy_id))}", d["gender"]))
    items = page.locator("#side .names-list li")
    expect(items.first).to_be_visible(timeout=WAIT)
    shown = page.eval_on_selector_all(
        "#side .names-list li",
        "els => els.map(e => [e.querySelector('.n-name').textContent, e.querySelector('.n-choice').textContent])",
    )
    assert shown
    for name, word in shown:
        assert word in said[name], (name, word, said[name])
    if lang == "uk":  # the seeds put women who abstained, did not vote or were absent on the first page
        assert {w for _, w in shown} & {t["one_abstain_f"], t["one_did_not_vote_f"], t["one_absent_f"]}
    # one against, named with the word «Проти», wherever the list shows it
    against = next(i for i in plan.present if plan.choice[i] is Key.NO)
    short = chamber.deputies[str(against)]["short"]
    if any(name == short for name, _ in shown):
        expect(page.locator("#side .names-list li.o-no", has_text=short).first).to_contain_text(t["one_no"])

    # read from the back of the hall: no name under 22 px, none cut
    sizes = page.eval_on_selector_all(".n-name", "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
    assert min(sizes) >= MIN_NAME_PX, min(sizes)
    cut = page.eval_on_selector_all(
        ".n-name", "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.textContent)"
    )
    assert cut == [], cut


def shoot_console(browser: Browser, live: Live, plan: Plan) -> None:
    """The secretary's console during the vote, with its alerts in words (one acknowledged)."""
    uk = STRINGS["uk"]
    live.user("sekretar", "secretary")
    ctx = _context(browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        _login(page, live, "sekretar")
        alerts = page.locator("#alerts-list")
        expect(alerts.locator("li")).to_have_count(2, timeout=WAIT)
        expect(alerts).to_contain_text(uk["alert_wrong_seat"])
        expect(alerts).to_contain_text(uk["alert_seat_offline"])
        alerts.locator("li", has_text=uk["alert_wrong_seat"]).get_by_role("button", name=uk["acknowledge"]).click()
        expect(alerts.locator("li.acked")).to_have_count(1, timeout=WAIT)
        page.reload()  # the server keeps it acknowledged; the «Виконано» bar is gone from the picture
        expect(alerts.locator("li.acked")).to_have_count(1, timeout=WAIT)
        expect(page.locator("#c-reply")).to_be_hidden()
        silent = len(plan.present) - len(plan.early)
        expect(page.locator("#not-voted li")).to_have_count(silent, timeout=WAIT)
        settle(page)
        path = artifacts_dir() / "console.png"
        page.screenshot(path=str(path), animations="disabled")
        assert png_size(path) == (1920, 1080)
        assert not errors, errors
    finally:
        ctx.close()


#: What stands for the camera's picture behind the overlay in its screenshot (OBS composes the page onto
#: the video; the page itself stays transparent, which is checked before this is put behind it).
CAMERA = "linear-gradient(160deg, #56616b 0%, #8c8f86 45%, #3e4650 100%)"


def shoot_overlay(browser: Browser, live: Live, name: str, shown: str) -> None:
    """The overlay at 1920x1080 while ``shown`` (``#lower-third`` or ``#result-banner``) is on it."""
    ctx = _context(browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        page.goto(live.url("/overlay"))
        expect(page.locator(shown)).to_be_visible(timeout=WAIT)
        for element in ("document.documentElement", "document.body"):
            assert page.evaluate(f"getComputedStyle({element}).backgroundColor") == "rgba(0, 0, 0, 0)"
        # inside the title-safe area (5 % of each edge), never cut
        box = page.locator(shown).bounding_box()
        assert box is not None
        assert (
            box["x"] >= 96 and box["y"] >= 54 and box["x"] + box["width"] <= 1824 and box["y"] + box["height"] <= 1026
        )
        page.add_style_tag(content=f"html {{ background: {CAMERA}; min-height: 100%; }}")
        settle(page)
        path = artifacts_dir() / name
        page.screenshot(path=str(path), animations="disabled")
        assert png_size(path) == (1920, 1080)
        assert not errors, errors
    finally:
        ctx.close()


PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport


def shoot_phone(browser: Browser, live: Live, path: str, name: str) -> Page:
    """A public page as a phone shows it, scripts off (the pages have none): its first screen, and
    nothing wider than the phone (no sideways scrolling to read a name)."""
    ctx = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, java_script_enabled=False
    )
    page = ctx.new_page()
    page.goto(live.url(path))
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), path
    for table in page.locator(".table-scroll").all():  # a table scrolls in its own box, if at all
        assert table.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), path
    out = artifacts_dir() / name
    page.screenshot(path=str(out))
    assert png_size(out) == (PHONE["width"] * 2, PHONE["height"] * 2)
    return page


# --- 43 seats: the council of config.toml ------------------------------------------------------------------------


@pytest.fixture
def live_43(tmp_path: Path) -> Iterator[Live]:
    yield from _serve(tmp_path, load_config(ROOT / "config.toml"))


def test_the_hall_at_43_seats_from_registration_to_the_result_and_a_speech(
    live_43: Live, chromium_browser: Browser
) -> None:
    live, uk = live_43, STRINGS["uk"]
    plan = make_plan(live.config, seed=43, absent=3)
    present = deputies_by_id(live, plan.present)
    start_sitting(live, "Дванадцята сесія, пленарне засідання")
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        page.goto(live.url("/hall"))

        # registration: the cards are in, two thirds have pressed Реєстрація so far
        live.cards_in(present)
        first = present[: len(present) * 2 // 3]
        live.press(first, Key.REGISTER)
        expect(page.locator("#panel")).to_contain_text(uk["registration_open"], timeout=WAIT)
        expect(page.locator("#panel .reg-big")).to_contain_text(str(len(first)), timeout=WAIT)
        expect(page.locator("#quorum")).to_have_text(uk["quorum_yes"])
        expect(page.locator("#item")).to_contain_text(AGENDA[1].title)
        shoot(page, "hall-43-registration.png")
        live.press(present[len(first) :], Key.REGISTER)
        live.execute(ev.CloseRegistration())
        expect(page.locator("#registered")).to_contain_text(str(len(present)), timeout=WAIT)

        # two alerts for the secretary: an absent deputy's card in another empty seat, a console gone silent
        away = deputies_by_id(live, plan.absent)
        assert away[0].seat is not None and away[1].seat is not None and away[2].seat is not None
        wrong = ev.CardInserted(seat=away[1].seat, uid=away[0].cards[0])
        assert not live.engine.submit(wrong).result(timeout=20).accepted
        live.execute(ev.SeatWentOffline(seat=away[2].seat))

        # the vote in progress
        open_vote(live)
        press_choices(live, plan, sorted(plan.early))
        check_vote_in_progress(page, plan)
        shoot(page, "hall-43-vote.png")
        shoot_console(chromium_browser, live, plan)

        # the result, announced
        press_choices(live, plan, sorted(set(plan.present) - plan.early))
        live.execute(ev.CloseVote(), ev.AnnounceResult())
        page.reload()
        check_result(live, page, plan)
        expect(page.locator("#side .names-list li")).to_have_count(43)  # one page: every name at once
        expect(page.locator(".names-page")).to_have_text("")
        shoot(page, "hall-43-result.png")
        shoot_overlay(chromium_browser, live, "overlay-result.png", "#result-banner")

        # the public pages on a phone: the vote with its names, and a deputy who did not vote for it
        uid = live.engine.sitting_uid
        woman = next(
            d
            for d in deputies_by_id(live, sorted(plan.choice))
            if plan.outcome(d.id) in ("abstain", "did_not_vote") and d.full_name.endswith("вна")
        )
        vote_page = shoot_phone(chromium_browser, live, f"/public/vote/{uid}/1", "public-vote-phone.png")
        try:
            expect(vote_page.locator(".big-verdict")).to_contain_text(uk["verdict_adopted_word"])
            row = vote_page.locator(".names-table tr", has_text=woman.full_name)
            expect(row).to_contain_text(uk[f"one_{plan.outcome(woman.id)}_f"])
            # further down: the names, hers among them
            row.scroll_into_view_if_needed()
            vote_page.evaluate("window.scrollBy(0, -window.innerHeight / 3)")
            out = artifacts_dir() / "public-vote-phone-names.png"
            vote_page.screenshot(path=str(out))
            assert png_size(out) == (PHONE["width"] * 2, PHONE["height"] * 2)
        finally:
            vote_page.context.close()
        deputy_page = shoot_phone(chromium_browser, live, f"/public/deputy/{woman.id}", "public-deputy-phone.png")
        try:
            expect(deputy_page.locator("h1")).to_have_text(woman.full_name)
            expect(deputy_page.locator(".record-list")).to_contain_text(uk[f"one_{plan.outcome(woman.id)}_f"])
        finally:
            deputy_page.context.close()

        # the same in English
        page.goto(live.url("/hall?lang=en"))
        check_result(live, page, plan, "en")
        shoot(page, "hall-43-result-en.png")

        # a speech, with the queue: asked for at the consoles, the floor given by the secretary
        page.goto(live.url("/hall?lang=uk"))
        live.execute(ev.ClearResult())
        asking = [d for d in present if d.role.value == "deputy"][5:10]
        live.press(asking[:3], Key.SPEAK)
        live.press(asking[3:4], Key.REPLY)
        live.press(asking[4:], Key.SPEAK)
        speaker = next(d for d in present if d.role.value == "deputy" and d not in asking)
        assert speaker.seat is not None
        live.execute(ev.GrantFloor(seat=speaker.seat))
        expect(page.locator("#panel .speaker-name")).to_have_text(speaker.full_name, timeout=WAIT)
        expect(page.locator("#speaker-timer")).to_have_text(re.compile(r"^[0-3]:\d\d$"))
        queue = page.locator("#side .queue-list li")
        expect(queue).to_have_count(len(asking))
        reply = asking[3].full_name  # a reply is marked as one (the queue may put it first)
        expect(queue.filter(has_text=reply)).to_contain_text(uk["speech_reply"])
        shoot(page, "hall-43-speech.png")
        shoot_overlay(chromium_browser, live, "overlay-speech.png", "#lower-third")
        assert not errors, errors
    finally:
        ctx.close()


# --- 450 seats -------------------------------------------------------------------------------------------------------


@pytest.fixture
def live_450(tmp_path: Path) -> Iterator[Live]:
    yield from _serve(tmp_path, council_450.load())


def test_the_hall_at_450_seats_during_the_vote_and_at_its_result(live_450: Live, chromium_browser: Browser) -> None:
    live = live_450
    assert len(live.config.seats) == 450 and len(live.config.lines) == 8
    plan = make_plan(live.config, seed=450, absent=19)
    present = deputies_by_id(live, plan.present)
    start_sitting(live, "Пленарне засідання, дев'яте скликання")
    live.cards_in(present)
    live.press(present, Key.REGISTER)
    live.execute(ev.CloseRegistration())
    open_vote(live)
    press_choices(live, plan, sorted(plan.early))
    ctx = _context(chromium_browser)
    try:
        page = ctx.new_page()
        errors = _watch(page)
        page.goto(live.url("/hall"))
        check_vote_in_progress(page, plan)
        expect(page.locator("#side .seatmap .seat")).to_have_count(450)
        shoot(page, "hall-450-vote.png")

        press_choices(live, plan, sorted(set(plan.present) - plan.early))
        live.execute(ev.CloseVote(), ev.AnnounceResult())
        # a fresh page: its list starts at page 1 and turns 8 s later, time enough to look and shoot (on a
        # machine so loaded that it turned meanwhile, the page is loaded again: the shot is of page 1)
        pager = page.locator(".names-page")
        for attempt in range(3):
            page.reload()
            check_result(live, page, plan)
            expect(pager).to_have_text(re.compile(r"^сторінка 1 з \d+$"), timeout=WAIT)
            pages = int(pager.inner_text().rsplit(" ", 1)[1])
            per_page = page.locator("#side .names-list li").count()
            assert pages * per_page >= 450 > (pages - 1) * per_page
            shoot(page, "hall-450-result.png")
            if pager.inner_text().startswith("сторінка 1 з "):
                break
            assert attempt < 2, "the names turned a page before each of three shots"
        assert not errors, errors
    finally:
        ctx.close()

"""The public pages without JavaScript: times written by the server as Kyiv local time, «Ваш депутат»
on the index, and the virtual seat naming its deputy in the page itself.

The public pages run against a real Engine over a temporary SQLite journal whose clock the test sets
(winter and summer, around midnight), so every time on a page is known in advance.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pytest
from flask.testing import FlaskClient

from chamber.config import Config, load_config
from chamber.core import events as ev
from chamber.core.values import Key
from chamber.engine import Engine
from chamber.journal import Journal
from display import page_filters as pf
from display.app import create_app

ROOT = Path(__file__).resolve().parent.parent


def ms(text: str) -> int:
    """Milliseconds of an ISO time in UTC."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# --- the filters -------------------------------------------------------------------------------------------


def test_kyiv_time_is_eet_in_winter_and_eest_in_summer() -> None:
    assert pf.kyiv_time(ms("2026-03-12T08:43:20")) == "10:43"  # UTC+2
    assert pf.kyiv_time(ms("2026-07-01T12:00:00")) == "15:00"  # UTC+3
    # the clocks go forward at 03:00 local time on the last Sunday of March
    assert pf.kyiv_iso(ms("2026-03-29T00:59:59")) == "2026-03-29T02:59:59+02:00"
    assert pf.kyiv_iso(ms("2026-03-29T01:00:00")) == "2026-03-29T04:00:00+03:00"
    # and back at 04:00 on the last Sunday of October
    assert pf.kyiv_iso(ms("2026-10-25T01:00:00")) == "2026-10-25T03:00:00+02:00"


def test_kyiv_date_is_the_day_in_kyiv_not_in_utc() -> None:
    assert pf.kyiv_date(ms("2026-03-11T22:30:00")) == "2026-03-12"
    assert pf.kyiv_date(ms("2026-03-12T21:59:59")) == "2026-03-12"
    assert pf.kyiv_date(ms("2026-03-12T22:00:00")) == "2026-03-13"


@pytest.mark.parametrize("missing", [None, 0])
def test_no_time_is_an_empty_string(missing: int | None) -> None:
    assert pf.kyiv_time(missing) == pf.kyiv_date(missing) == pf.kyiv_iso(missing) == ""


def test_names_sort_in_the_order_of_the_ukrainian_alphabet() -> None:
    names = ["Іваненко", "Яковенко", "Єрмоленко", "Ґонта", "Гнатюк", "Андрієнко", "Їжак", "Юрченко", "ігнатенко"]
    assert sorted(names, key=pf.uk_key) == [
        "Андрієнко", "Гнатюк", "Ґонта", "Єрмоленко", "Іваненко", "ігнатенко", "Їжак", "Юрченко", "Яковенко",
    ]  # fmt: skip
    # the apostrophe and the hyphen are skipped; a shorter surname comes before a longer one
    assert sorted(["Лук'яненко", "Лукаш"], key=pf.uk_key) == ["Лукаш", "Лук'яненко"]
    assert sorted(["Бойко-Рибальченко Б.", "Бойко Ю."], key=pf.uk_key) == ["Бойко Ю.", "Бойко-Рибальченко Б."]
    # the filter the templates use, with Jinja's attribute paths
    items = [("2", {"name": "Іваненко"}), ("1", {"name": "Андрієнко"})]
    env = jinja2.Environment()
    env.filters["sort_uk"] = pf.sort_uk
    out = env.from_string("{% for id, d in items|sort_uk('1.name') %}{{ id }}{% endfor %}").render(items=items)
    assert out == "12"


# --- the pages ------------------------------------------------------------------------------------------------


class SetClock:
    """The engine's clock: set by the test, one millisecond on at every reading (times only grow)."""

    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now


@pytest.fixture
def config() -> Config:
    return load_config(ROOT / "config.toml")


@pytest.fixture
def public(tmp_path: Path, config: Config) -> Iterator[tuple[FlaskClient, Engine, SetClock]]:
    journal = Journal(f"sqlite:///{tmp_path / 'chamber.db'}")
    clock = SetClock(ms("2026-03-11T22:30:00"))  # 00:30 on 12 March in Kyiv
    engine = Engine(journal, clock=clock)
    engine.start()
    app, _ = create_app(engine, config)
    app.config["TESTING"] = True
    try:
        yield app.test_client(), engine, clock
    finally:
        engine.stop()
        journal.close()


def run_sitting(engine: Engine, config: Config, clock: SetClock) -> str:
    """A sitting opened at 00:30 Kyiv time, registration at 00:31, a roll-call vote closed at 00:45."""

    def do(event: ev.Input) -> None:
        outcome = engine.execute(event)
        assert outcome.accepted, outcome

    deputies = sorted(config.deputies, key=lambda d: d.id)
    do(ev.OpenSitting(roster=config.roster(), number=5, title="Позачергова сесія"))
    clock.now = ms("2026-03-11T22:31:00")
    do(ev.OpenRegistration())
    for d in deputies[:30]:
        assert d.seat is not None
        do(ev.CardInserted(seat=d.seat, uid=d.cards[0]))
        do(ev.KeyPressed(seat=d.seat, key=Key.REGISTER))
    do(ev.CloseRegistration())
    clock.now = ms("2026-03-11T22:40:00")
    do(ev.OpenVote(title="Про звернення до громади", duration_s=0))
    for d in deputies[:25]:
        assert d.seat is not None
        do(ev.KeyPressed(seat=d.seat, key=Key.YES))
    clock.now = ms("2026-03-11T22:45:00")
    do(ev.CloseVote())
    do(ev.AnnounceResult())
    assert engine.sitting_uid is not None
    return engine.sitting_uid


def test_public_pages_write_kyiv_times_with_no_script(
    public: tuple[FlaskClient, Engine, SetClock], config: Config
) -> None:
    client, engine, clock = public
    uid = run_sitting(engine, config, clock)
    index = client.get("/public").text
    assert "2026-03-12" in index and "2026-03-11" not in index  # the sitting's day in Kyiv
    sitting = client.get(f"/public/sitting/{uid}").text
    assert '<time datetime="2026-03-12T00:31:00+02:00">· 00:31</time>' in sitting  # the registration
    assert '<time datetime="2026-03-12T00:45:00+02:00">· 00:45</time>' in sitting  # the vote, when it closed
    vote = client.get(f"/public/vote/{uid}/1").text
    assert '<time datetime="2026-03-12T00:45:00+02:00">· 00:45</time>' in vote
    deputy = client.get("/public/deputy/1").text
    for page in (index, sitting, vote, deputy):
        assert "<script" not in page  # complete as served
        assert "js-time" not in page and "data-ms" not in page
        assert not re.search(r"<time[^>]*>\s*</time>", page)  # no time left for a script to fill in
    assert client.get("/static/js/public.js").status_code == 404


def test_the_public_index_lists_every_deputy_by_name(
    public: tuple[FlaskClient, Engine, SetClock], config: Config
) -> None:
    client, _, _ = public
    page = client.get("/public").text
    assert 'id="h-your-deputy"' in page
    links = re.findall(r'<a href="/public/deputy/(\d+)">([^<]+)</a>', page)
    assert sorted(int(i) for i, _ in links) == sorted(d.id for d in config.deputies)
    names = {d.id: d.full_name for d in config.deputies}
    assert all(html.unescape(name) == names[int(i)] for i, name in links)
    shown = [html.unescape(name) for _, name in links]
    assert shown == sorted(shown, key=pf.uk_key)  # by name, as a citizen looks for one
    for d in config.deputies:
        if d.faction:
            assert html.escape(d.faction, quote=False) in page


def test_the_virtual_seat_names_its_deputy_in_the_page(tmp_path: Path, config: Config) -> None:
    journal = Journal(f"sqlite:///{tmp_path / 'chamber.db'}")
    engine = Engine(journal)
    engine.start()
    try:
        # the simulator's press API is never called: the page is only rendered
        app, _ = create_app(engine, config, simulator_url="http://127.0.0.1:9")
        app.config["TESTING"] = True
        app.extensions["chamber"].users.add("anna", "secretary", "a long enough test password")
        client = app.test_client()
        client.get("/login")
        with client.session_transaction() as s:
            token = s["csrf"]
        login = {"name": "anna", "password": "a long enough test password", "csrf_token": token}
        assert client.post("/login", data=login).status_code == 302
        deputy = next(d for d in config.deputies if d.seat == 1)
        page = client.get("/seat/1").text
        owner = re.search(r'<p class="seat-owner" id="seat-owner">(.*?)</p>', page)
        assert owner is not None
        assert html.unescape(owner.group(1)) == f"{deputy.full_name} · {deputy.faction}"
        assert "/api/state" not in (ROOT / "display" / "static" / "js" / "seat.js").read_text(encoding="utf-8")
    finally:
        engine.stop()
        journal.close()


# --- a woman's words -------------------------------------------------------------------------------------------


def test_what_is_said_of_one_deputy_is_in_her_or_his_grammatical_gender(
    public: tuple[FlaskClient, Engine, SetClock], config: Config
) -> None:
    """The first 25 deputies by id voted За; the rest registered (26-30) and did not vote, or were absent:
    a woman «Не голосувала» / «Відсутня», a man «Не голосував» / «Відсутній», on the vote's page and on
    her or his own page; and she is «зареєстрована», «Позафракційна» where the roster leaves her out."""
    client, engine, clock = public
    uid = run_sitting(engine, config, clock)
    deputies = sorted(config.deputies, key=lambda d: d.id)
    women = [d for d in deputies if d.full_name.split()[-1].endswith("вна")]
    men = [d for d in deputies if d.full_name.split()[-1].endswith("вич")]
    assert women and men
    vote = client.get(f"/public/vote/{uid}/1").text
    row = r'<a href="/public/deputy/\d+">([^<]+)</a></td><td>[^<]*</td><td><span class="badge o-[a-z_]+">([^<]+)</span>'
    rows = {html.unescape(name): word for name, word in re.findall(row, vote)}
    expected = {"did_not_vote": ("Не голосувала", "Не голосував"), "absent": ("Відсутня", "Відсутній")}
    seen: set[tuple[str, str]] = set()
    for position, d in enumerate(deputies):
        outcome = "yes" if position < 25 else "did_not_vote" if position < 30 else "absent"
        if d.role.value == "head" and not config.council.head_votes:
            continue
        female = d in women
        word = "За" if outcome == "yes" else expected[outcome][0 if female else 1]
        assert rows[d.full_name] == word, (d.full_name, outcome)
        seen.add((outcome, "f" if female else "m"))
    assert {("did_not_vote", "f"), ("absent", "f"), ("absent", "m")} <= seen
    woman = next(d for d in women if deputies.index(d) >= 30)
    page = client.get(f"/public/deputy/{woman.id}").text
    assert "Як голосувала" in page and "Відсутня" in page and "зареєстрована на 0 з 1" in page
    man = next(d for d in men if deputies.index(d) >= 30)
    page = client.get(f"/public/deputy/{man.id}").text
    assert "Як голосував" in page and "Відсутній" in page and "зареєстрований на 0 з 1" in page
    english = client.get(f"/public/deputy/{woman.id}?lang=en").text
    assert "Absent" in english and "registered at 0 of 1" in english


def test_config_may_say_a_deputys_gender_where_the_name_does_not() -> None:
    """A name without a patronymic says nothing certain: config.toml's ``gender`` does (and only "f" or "m")."""
    from pydantic import ValidationError

    from chamber.config_sections import DeputyConfig
    from display.state import gender_of

    assert gender_of("Коваленко Олена Петрівна") == "f" and gender_of("Шевчук Олександр Іванович") == "m"
    assert gender_of("Сидоренко Ілля Ілліч") == "m" and gender_of("Шевченко-Бойко Марія Олексіївна") == "f"
    assert gender_of("Мамутова Ельміра Рустем кизи") == "f"
    assert gender_of("Іванова Ганна") == "f" and gender_of("Ковальська Ірина") == "f"  # a woman's surname
    assert gender_of("Коваленко Олена") == "m" and gender_of("Olena Kovalenko") == "m"  # nothing says so
    plain = DeputyConfig.model_validate({"id": 1, "full_name": "Коваленко Олена"})
    assert plain.gender is None
    said = DeputyConfig.model_validate({"id": 1, "full_name": "Коваленко Олена", "gender": "f"})
    assert said.gender == "f" and said.to_core() == plain.to_core()  # the core and the journal never see it
    with pytest.raises(ValidationError):
        DeputyConfig.model_validate({"id": 1, "full_name": "Коваленко Олена", "gender": "female"})

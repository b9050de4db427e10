"""The pages' states from snapshots (display.state), the merge patches between them, and the words."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from factories import Driver
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from chamber.config import Config, parse_config
from chamber.core import events as ev
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Key, VoteKind
from display import reasons
from display import state as st

ROOT = Path(__file__).resolve().parent.parent


def config_text(seats: int = 5, *, extra: str = "") -> str:
    """A chamber of ``seats`` deputies, deputy i at seat i with card ``factories.uid(i)``, 200 seats a line."""
    out = [
        "[council]",
        'name = "Тестова міська рада"',
        f"composition = {seats}",
        "",
    ]
    n_lines = (seats + 199) // 200
    for n in range(n_lines):
        out += ["[[lines]]", f'id = "{chr(65 + n)}"', f'port = "/dev/ttyUSB{n}"', "baud = 115200", ""]
    for i in range(1, seats + 1):
        line, unit = divmod(i - 1, 200)
        out += ["[[seats]]", f"id = {i}", f'line = "{chr(65 + line)}"', f"unit = {unit + 1}"]
        out += [f"x = {i % 30}.5", f"y = {i // 30}.0", ""]
    for i in range(1, seats + 1):
        out += ["[[deputies]]", f"id = {i}", f'full_name = "Прізвище{i} Олена Петрівна"', f'cards = ["{i:08X}"]']
        out += [f'faction = "Фракція {i % 3}"', f"seat = {i}", ""]
    return "\n".join(out) + "\n" + extra


def web_config(seats: int = 5, *, extra: str = "") -> Config:
    return parse_config(config_text(seats, extra=extra))


def driver(config: Config) -> Driver:
    return Driver(config.roster())


def ready_driver(config: Config, seats: int) -> Driver:
    """Every deputy carded and registered; phase IDLE."""
    d = driver(config)
    d.card_all(range(1, seats + 1))
    d.register(range(1, seats + 1))
    return d


# --- the public state ---------------------------------------------------------------------------------


def test_the_public_state_has_every_key_of_the_contract() -> None:
    config = web_config(3)
    chamber = st.chamber_of(config)
    state = st.public_state(driver(config).sitting.snapshot(), chamber)
    assert set(state) == {
        "council", "phase", "sitting", "agenda", "current_item", "registration", "vote", "last_result",
        "speakers", "seats", "deputies",
    }  # fmt: skip
    assert state["council"] == {"name": "Тестова міська рада", "convocation": 8, "composition": 3}
    assert state["sitting"] == {"open": True, "number": 7, "title": "Пленарне засідання"}
    assert state["registration"] == {"open": False, "registered": 0, "composition": 3, "needed": 2, "quorum": False}
    assert state["speakers"] == {"speaking": [], "queue": [], "spoken_on_item": 0, "waiting": 0}
    assert state["seats"]["2"] == {
        "x": 2.5, "y": 0.0, "chair": False, "deputy": None, "online": True, "present": False,
        "voted": False, "choice": None, "speaking": False, "queued": False,
    }  # fmt: skip
    assert state["deputies"]["1"] == {
        "name": "Прізвище1 Олена Петрівна",
        "short": "Прізвище1 О. П.",
        "faction": "Фракція 1",
        "seat": 1,
        "role": "deputy",
        "gender": "f",  # Петрівна: what the pages say of her is «Утрималася», «Відсутня»
    }


def test_seats_stay_on_the_map_while_no_sitting_is_open() -> None:
    """A snapshot without a sitting has no seats; the map keeps the config's, so no patch drops 450 seats."""
    config = web_config(4)
    from chamber.core.sitting import Sitting

    state = st.public_state(Sitting().snapshot(), st.chamber_of(config))
    assert state["phase"] == "no_sitting" and state["sitting"]["open"] is False
    assert sorted(state["seats"], key=int) == ["1", "2", "3", "4"]
    assert state["registration"]["composition"] == 4 and state["registration"]["needed"] == 3


def test_a_roll_call_vote_shows_who_voted_while_open_and_the_choices_once_closed() -> None:
    config = web_config(5)
    chamber = st.chamber_of(config)
    d = ready_driver(config, 5)
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Про бюджет", draft="757/2"),)))
    d.ok(ev.SetCurrentItem(number="1"))
    d.ok(ev.OpenVote(kind=VoteKind.ROLL_CALL, title="Про бюджет", duration_s=60))
    d.vote({1: Key.YES, 2: Key.NO, 3: Key.YES})
    state = st.public_state(d.sitting.snapshot(), chamber)
    vote = state["vote"]
    assert vote["open"] is True and vote["cast"] == 3 and vote["counts"] == [2, 1, 0]
    assert vote["item"] == "1" and vote["deadline_ms"] == vote["opened_at_ms"] + 60_000
    assert vote["threshold"] == {
        "num": 1, "den": 2, "base": "composition", "strict": True, "required": 3,
        "words_uk": "більше ніж 1/2 загального складу", "words_en": "more than 1/2 of composition",
    }  # fmt: skip
    assert [state["seats"][s]["voted"] for s in "12345"] == [True, True, True, False, False]
    assert all(state["seats"][s]["choice"] is None for s in "12345")  # never while open
    assert state["agenda"] == [{"number": "1", "title": "Про бюджет", "draft": "757/2"}]

    d.ok(ev.CloseVote())
    state = st.public_state(d.sitting.snapshot(), chamber)
    result = state["vote"]["result"]
    assert result["counts"] == [2, 1, 0] and result["adopted"] is False and result["required"] == 3
    assert (result["result_uk"], result["result_en"]) == ("Не прийнято", "Not adopted")
    assert result["per_name"] == {"1": "yes", "2": "no", "3": "yes", "4": "did_not_vote", "5": "did_not_vote"}
    assert [state["seats"][s]["choice"] for s in "12345"] == ["yes", "no", "yes", None, None]
    assert state["last_result"] == result

    d.ok(ev.AnnounceResult())
    d.ok(ev.ClearResult())
    state = st.public_state(d.sitting.snapshot(), chamber)
    assert state["vote"] is None and state["last_result"]["number"] == 1
    assert state["seats"]["1"]["choice"] == "yes"  # the hall keeps the last result until the next vote
    assert state["seats"]["1"]["voted"] is False
    d.ok(ev.OpenVote(title="Наступне"))
    state = st.public_state(d.sitting.snapshot(), chamber)
    assert all(state["seats"][s]["choice"] is None for s in "12345")


@pytest.mark.parametrize("kind", [VoteKind.OPEN, VoteKind.SECRET])
def test_open_and_secret_votes_never_show_a_choice(kind: VoteKind) -> None:
    config = web_config(4)
    chamber = st.chamber_of(config)
    d = ready_driver(config, 4)
    legal = "ст. 46 Закону" if kind is VoteKind.SECRET else ""
    d.ok(ev.OpenVote(kind=kind, title="Обрання", legal_basis=legal))
    d.vote({1: Key.YES, 2: Key.NO, 3: Key.YES})
    state = st.public_state(d.sitting.snapshot(), chamber)
    assert [state["seats"][s]["voted"] for s in "1234"] == [True, True, True, False]  # who took part: public
    if kind is VoteKind.SECRET:
        assert state["vote"]["counts"] is None
    d.ok(ev.CloseVote())
    state = st.public_state(d.sitting.snapshot(), chamber)
    assert state["vote"]["result"]["counts"] == [2, 1, 0]
    assert state["vote"]["result"]["per_name"] == {}
    assert all(state["seats"][s]["choice"] is None for s in "1234")


def test_a_rating_vote_shows_the_proposal_each_seat_picked() -> None:
    config = web_config(4)
    d = ready_driver(config, 4)
    d.ok(ev.OpenVote(kind=VoteKind.RATING, title="Назва скверу", proposals=("Липовий", "Сонячний")))
    d.vote({1: Key.P2, 2: Key.P2, 3: Key.P1, 4: Key.P2})
    d.ok(ev.CloseVote())
    state = st.public_state(d.sitting.snapshot(), st.chamber_of(config))
    assert [state["seats"][s]["choice"] for s in "1234"] == ["p2", "p2", "p1", "p2"]
    assert state["vote"]["result"]["winner"] == 2 and state["vote"]["proposals"] == ["Липовий", "Сонячний"]


def test_a_threshold_of_votes_cast_has_no_required_count_until_counts_are_known() -> None:
    config = web_config(4)
    d = ready_driver(config, 4)
    cast = Threshold(num=1, den=2, base=Base.CAST, strict=True)
    d.ok(ev.OpenVote(kind=VoteKind.SECRET, title="Таємне", threshold=cast, legal_basis="ст. 46"))
    d.vote({1: Key.YES})
    vote = st.public_state(d.sitting.snapshot(), st.chamber_of(config))["vote"]
    assert vote["threshold"]["required"] is None and vote["threshold"]["words_en"] == "more than 1/2 of cast"


def test_speakers_with_their_deadlines_and_the_count_on_the_item() -> None:
    config = web_config(4)
    d = ready_driver(config, 4)
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Звіт"),)))
    d.ok(ev.SetCurrentItem(number="1"))
    d.ok(ev.GrantFloor(seat=1, limit_s=60))
    d.ok(ev.RevokeFloor(seat=1))
    d.ok(ev.RequestFloor(seat=3))
    d.ok(ev.GrantFloor(seat=2, limit_s=120))
    speakers = st.public_state(d.sitting.snapshot(), st.chamber_of(config))["speakers"]
    [speaking] = speakers["speaking"]
    assert speaking["seat"] == 2 and speaking["kind"] == "speech" and speaking["limit_s"] == 120
    assert speaking["end_ms"] == speaking["start_ms"] + 120_000
    assert [(q["seat"], q["deputy"], q["kind"]) for q in speakers["queue"]] == [(3, 3, "speech")]
    assert speakers["spoken_on_item"] == 1 and speakers["waiting"] == 1


def test_short_names() -> None:
    assert st.short_name("Коваленко Олена Петрівна") == "Коваленко О. П."
    assert st.short_name("Коваленко") == "Коваленко"
    assert st.short_name("  Дмитренко   Петро ") == "Дмитренко П."


# --- the console's part ---------------------------------------------------------------------------


def test_the_console_part_names_who_has_not_voted_and_the_seats_health() -> None:
    config = web_config(5)
    chamber = st.chamber_of(config)
    d = driver(config)
    d.card_all([1, 2, 3, 4])
    d.register([1, 2, 3, 4])
    d.ok(ev.OpenVote(title="Про бюджет"))
    d.vote({1: Key.YES})
    health = st.Health(seat_errors={2: {"crc": 3}}, lines={"A": {"cycles": 10, "errors": {"crc": 3}}})
    alerts = [{"id": 1, "kind": "seat_offline", "detail": "…", "seat": 5, "deputy": None, "at_ms": 5,
               "acknowledged": False}]  # fmt: skip
    part = st.console_part(d.sitting.snapshot(), chamber, alerts=alerts, health=health, simulator=True)
    assert part["not_voted"] == [2, 3, 4]  # 5 has no card in and never registered
    assert part["seat_health"]["2"] == {
        "online": True, "mic_ok": True, "card": True, "present": False, "rejected": 0, "errors": {"crc": 3},
    }  # fmt: skip
    assert part["seat_health"]["5"]["card"] is False
    assert part["lines"] == {"A": {"cycles": 10, "errors": {"crc": 3}}}
    assert part["alerts"] == alerts and part["max_open_mics"] == 2 and part["simulator"] is True
    d.ok(ev.CloseVote())
    assert st.console_part(d.sitting.snapshot(), chamber, alerts=[])["not_voted"] == []


# --- merge patches --------------------------------------------------------------------------------------

_json_leaf = hs.none() | hs.booleans() | hs.integers(-5, 5) | hs.text(max_size=3)
_json = hs.recursive(
    _json_leaf,
    lambda inner: hs.lists(inner, max_size=3) | hs.dictionaries(hs.sampled_from("abcd"), inner, max_size=4),
    max_leaves=12,
)
_objects = hs.dictionaries(hs.sampled_from("abcdef"), _json, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_objects, _objects)
def test_a_merge_patch_turns_the_old_state_into_the_new(old: st.JSON, new: st.JSON) -> None:
    """What a page holds after the patch is the new state (RFC 7396: a null member is an absent one)."""
    patch = st.merge_patch(old, new)
    assert st.apply_patch(st.without_nulls(old), patch) == st.without_nulls(new)
    if st.without_nulls(old) == st.without_nulls(new) and old == new:
        assert patch == {}


def test_merge_patch_examples_from_rfc_7396() -> None:
    assert st.apply_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert st.apply_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert st.apply_patch({"a": "b"}, {"a": None}) == {}
    assert st.apply_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert st.apply_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert st.merge_patch({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}}) == {"b": {"c": 3}}
    assert st.merge_patch({"a": 1}, {}) == {"a": None}


def test_one_seat_of_450_changing_patches_that_seat_alone() -> None:
    config = web_config(450)
    chamber = st.chamber_of(config)
    d = ready_driver(config, 450)
    d.ok(ev.OpenVote(title="Про бюджет", duration_s=0))
    before = st.public_state(d.sitting.snapshot(), chamber)
    d.ok(ev.KeyPressed(seat=17, key=Key.YES))
    started = time.perf_counter()
    after = st.public_state(d.sitting.snapshot(), chamber)
    patch = st.merge_patch(before, after)
    took = time.perf_counter() - started
    assert patch == {"vote": {"cast": 1, "counts": [1, 0, 0]}, "seats": {"17": {"voted": True}}}
    assert len(str(patch)) < 120
    assert took < 0.1, f"building and diffing 450 seats took {took * 1000:.1f} ms"


# --- words ------------------------------------------------------------------------------------------


def test_every_reason_code_of_the_core_has_ukrainian_and_english_words() -> None:
    """The codes are read from the core's source, so a new refusal without words fails here."""
    found: set[str] = set()
    for path in (ROOT / "chamber" / "core").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(re.findall(r"(?:reject|rejection|refused)\(\s*(?:e|event|[a-z_]+),\s*\"([a-z_]+)\"", text))
        found.update(re.findall(r"refused\(\s*\"([a-z_]+)\"", text))
    assert "no_quorum" in found and "wrong_seat" in found and "card_elsewhere" in found
    assert found == set(reasons.CORE_REASONS), found ^ set(reasons.CORE_REASONS)
    for code in reasons.CORE_REASONS | reasons.WEB_REASONS:
        uk, en = reasons.MESSAGES[code]
        assert uk and en and uk != en, code
        assert re.search("[а-яіїєґ]", uk.lower()), code


def test_messages_fill_their_numbers_and_never_lose_the_sentence() -> None:
    ctx = {"registered": 10, "composition": 43, "needed": 22}
    assert reasons.message("no_quorum", "uk", ctx) == "Немає кворуму: зареєстровано 10 із 43, потрібно 22"
    assert reasons.message("no_quorum", "en", ctx) == "No quorum: 10 registered of 43, 22 needed"
    assert reasons.message("no_quorum", "uk") == "Немає кворуму: зареєстровано ? із ?, потрібно ?"
    assert reasons.message("a_new_code", "en") == "Command refused (a_new_code)"
    assert reasons.fields("max_mics") == {"max_open_mics"}


def test_threshold_words() -> None:
    words = st.threshold_words(Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False))
    assert words == ("не менше ніж 2/3 загального складу", "at least 2/3 of composition")


def _missing_keys(theirs: object, mine: object, path: str = "") -> list[str]:
    """Keys the pages' fixture has that the server's state lacks (one entry per map of ids)."""
    if isinstance(theirs, list) and isinstance(mine, list):
        if theirs and mine and isinstance(theirs[0], dict):
            return _missing_keys(theirs[0], mine[0], path + "[]")
        return []
    if not isinstance(theirs, dict) or not isinstance(mine, dict):
        return []
    if path.endswith(("/seats", "/deputies", "/per_name", "/seat_health")):  # maps of ids: compare one entry
        theirs = dict(list(theirs.items())[:1])
        mine = {k: next(iter(mine.values())) for k in theirs} if mine else {}
    out = [f"{path}/{k}" for k in theirs if k not in mine]
    for k in theirs:
        if k in mine:
            out += _missing_keys(theirs[k], mine[k], f"{path}/{k}")
    return out


def test_the_state_has_every_key_the_pages_fixture_draws() -> None:
    """tests/fixtures/web_state_43.json is what the pages are built and tested against (docs/web-protocol.md):
    the server's state at the same moment (a roll-call result shown, a speech, a queue) has all its keys."""
    import json

    fixture = json.loads((ROOT / "tests" / "fixtures" / "web_state_43.json").read_text(encoding="utf-8"))
    config = web_config(5)
    d = ready_driver(config, 5)
    d.ok(ev.SetAgenda(items=(ev.AgendaItem(number="1", title="Про бюджет", draft="757/2"),)))
    d.ok(ev.SetCurrentItem(number="1"))
    d.ok(ev.OpenVote(title="Про бюджет", duration_s=30))
    d.vote({1: Key.YES, 2: Key.NO})
    d.ok(ev.CloseVote())
    d.ok(ev.AnnounceResult())
    d.ok(ev.GrantFloor(seat=2))
    d.ok(ev.RequestFloor(seat=3))
    mine = {**st.public_state(d.sitting.snapshot(), st.chamber_of(config)), "rev": 1, "clock_ms": 0}
    assert _missing_keys(fixture, mine) == []

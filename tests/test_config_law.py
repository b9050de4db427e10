"""Config the law or arithmetic makes impossible (issue 7): thresholds no vote can meet, a quorum looser
than art. 46, digits other than 0-9 in codes and fractions, control characters in names and titles; and
the same checks on the commands that carry a threshold or a title at run time."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from factories import ready, rules
from test_config import errors_of, load, minimal, only_error, section, to_toml

from chamber.core import events as ev
from chamber.core.roster import text_problem
from chamber.core.threshold import Threshold
from chamber.core.values import Base, VoteKind, VoteSubject

LAW = (
    "is looser than the law: a plenary sitting is competent when more than half of the composition take part "
    '(Law of Ukraine "Про місцеве самоврядування в Україні", art. 46)'
)
FIX = 'use fraction = "1/2" with strict = true, or a larger fraction'


def _threshold(fraction: str, base: str = "composition", strict: bool = True) -> dict[str, Any]:
    return {"fraction": fraction, "base": base, "strict": strict}


def _with_rules(**rules_: Any) -> dict[str, Any]:
    data = minimal()
    thresholds = rules_.pop("thresholds", None)
    data["rules"] = dict(rules_)
    if thresholds is not None:
        data["rules"]["thresholds"] = section(**thresholds)
    return data


def _errors(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    return [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]


# --------------------------------------------------------------------------- thresholds no vote can meet


def test_more_than_all_of_the_composition_is_refused(tmp_path: Path) -> None:
    data = _with_rules(thresholds={"whole": _threshold("1/1")})
    assert only_error(tmp_path, data) == (
        'rules.thresholds.whole: { fraction = "1/1", base = "composition", strict = true } can never be met: '
        "more than 1/1 of composition needs 4 votes, but the composition is 3"
    )


@pytest.mark.parametrize(
    ("base", "why"),
    [
        (
            "registered",
            "needs more votes than there are registered deputies (4 with all 3 of the composition registered)",
        ),
        ("cast", "needs more votes in favour than votes cast (4 with all 3 of the composition voting)"),
        (
            "cast_without_abstentions",
            "needs more votes in favour than votes for and against (4 with all 3 of the composition voting)",
        ),
    ],
)
def test_more_than_all_of_any_base_is_refused(tmp_path: Path, base: str, why: str) -> None:
    data = _with_rules(thresholds={"procedural": _threshold("1/1", base)})
    assert only_error(tmp_path, data) == (
        f'rules.thresholds.procedural: {{ fraction = "1/1", base = "{base}", strict = true }} can never be met: '
        f"more than 1/1 of {base} {why}"
    )


def test_every_impossible_threshold_is_reported(tmp_path: Path) -> None:
    data = _with_rules(
        quorum=_threshold("1/1"),
        thresholds={"basis": _threshold("1/1"), "amendment": _threshold("1/1", "cast"), "whole": _threshold("1/2")},
    )
    errors = _errors(tmp_path, data)
    assert [error.split(":")[0] for error in errors] == [
        "rules.quorum",
        "rules.thresholds.basis",
        "rules.thresholds.amendment",
    ]
    assert errors[0] == (
        'rules.quorum: { fraction = "1/1", base = "composition", strict = true } can never be met: '
        "more than 1/1 of composition needs 4 deputies, but the composition is 3"
    )


def test_all_of_the_composition_when_the_head_does_not_vote(tmp_path: Path) -> None:
    data = _with_rules(thresholds={"whole": _threshold("1/1", strict=False)})
    data["council"]["head_votes"] = False
    assert only_error(tmp_path, data) == (
        'rules.thresholds.whole: { fraction = "1/1", base = "composition", strict = false } can never be met: '
        "at least 1/1 of composition needs 3 votes, but only 2 of the composition of 3 can vote "
        "(council.head_votes = false: the head does not vote)"
    )
    data["council"]["head_votes"] = True
    assert load(tmp_path, data).roster().rules.thresholds[VoteSubject.WHOLE].required(3) == 3  # unanimity: possible


def test_unanimity_and_two_thirds_are_possible(tmp_path: Path) -> None:
    data = _with_rules(
        thresholds={
            "whole": _threshold("2/3", strict=False),
            "basis": _threshold("1/1", strict=False),
            "procedural": _threshold("1/1", "registered", strict=False),
        }
    )
    assert load(tmp_path, data).roster().rules.thresholds[VoteSubject.BASIS].required(3) == 3


def test_a_fraction_with_a_huge_denominator_is_refused_cleanly(tmp_path: Path) -> None:
    data = _with_rules(thresholds={"whole": _threshold("1/" + "9" * 5000)})
    error = only_error(tmp_path, data)
    assert error.startswith('rules.thresholds.whole.fraction: must be a fraction "p/q" with 0 < p <= q <= 1000')
    assert "4300" not in error and "sys.set_int_max_str_digits" not in error


# --------------------------------------------------------------------------- the quorum and art. 46


def test_one_deputy_is_not_a_quorum(tmp_path: Path) -> None:
    data = _with_rules(quorum=_threshold("1/100"))
    assert only_error(tmp_path, data) == (
        f'rules.quorum: {{ fraction = "1/100", base = "composition", strict = true }} {LAW}; '
        f"more than 1/100 of the composition of 3 is 1 deputy, the law needs 2; {FIX}"
    )


def test_at_least_half_is_looser_than_more_than_half(tmp_path: Path) -> None:
    data = _with_rules(quorum=_threshold("1/2", strict=False))
    assert only_error(tmp_path, data) == (
        f'rules.quorum: {{ fraction = "1/2", base = "composition", strict = false }} {LAW}; '
        "at least 1/2 of the composition would make half of it or fewer a quorum (e.g. 2 of 4); "
        f"with a composition of 3 it needs 2 only by rounding; {FIX}"
    )
    data["council"]["composition"] = 4
    data["deputies"].append({"id": 4, "full_name": "Мельник Ірина Василівна", "seat": 4})
    data["seats"].append({"id": 4, "line": "A", "unit": 4})
    assert only_error(tmp_path, data) == (
        f'rules.quorum: {{ fraction = "1/2", base = "composition", strict = false }} {LAW}; '
        f"at least 1/2 of the composition of 4 is 2 deputies, the law needs 3; {FIX}"
    )


def test_the_quorum_law_check_needs_no_valid_council(tmp_path: Path) -> None:
    data = _with_rules(quorum=_threshold("1/3"))
    data["council"]["composition"] = 0
    errors = _errors(tmp_path, data)
    assert errors[-1] == (
        f'rules.quorum: {{ fraction = "1/3", base = "composition", strict = true }} {LAW}; '
        f"more than 1/3 is not more than half; {FIX}"
    )


@pytest.mark.parametrize(("fraction", "strict"), [("1/2", True), ("2/3", False), ("3/5", True), ("1/1", False)])
def test_a_quorum_stricter_than_the_law_is_allowed(tmp_path: Path, fraction: str, strict: bool) -> None:
    config = load(tmp_path, _with_rules(quorum=_threshold(fraction, strict=strict)))
    assert config.roster().rules.quorum.required(3) >= 2


# --------------------------------------------------------------------------- digits other than 0-9


@pytest.mark.parametrize(
    ("key", "value", "start"),
    [
        ("edrpou", "０４０５３６２５", "ЄДРПОУ code must be 8 digits"),  # fullwidth
        ("edrpou", "٠٤٠٥٣٦٢٥", "ЄДРПОУ code must be 8 digits"),  # Arabic-Indic
        ("katottg", "UA" + "१" * 17, 'КАТОТТГ code must be "UA" followed by 17 digits'),  # Devanagari
    ],
)
def test_codes_take_only_ascii_digits(tmp_path: Path, key: str, value: str, start: str) -> None:
    data = minimal()
    data["council"][key] = value
    error = only_error(tmp_path, data)
    assert error.startswith(f"council.{key}: {start}")
    first = next(ch for ch in value if not ch.isascii())
    assert error.endswith(
        f"; U+{ord(first):04X} ({unicodedata.name(first)}) at character {value.index(first) + 1} is not a digit 0-9"
    )


def test_fractions_take_only_ascii_digits(tmp_path: Path) -> None:
    data = _with_rules(thresholds={"whole": _threshold("１/２")})
    assert only_error(tmp_path, data) == (
        'rules.thresholds.whole.fraction: must be a fraction "p/q" with 0 < p <= q <= 1000, such as "1/2" or "2/3", '
        'got "１/２"; U+FF11 (FULLWIDTH DIGIT ONE) at character 1 is not a digit 0-9'
    )
    data = _with_rules(quorum=_threshold("1/2\u3000"))  # an ideographic space is not a space in a fraction
    assert only_error(tmp_path, data).startswith('rules.quorum.fraction: must be a fraction "p/q"')


def test_ports_and_cards_take_only_ascii(tmp_path: Path) -> None:
    data = minimal()
    data["lines"] = [{"id": "A", "gateway": "10.0.0.5:４００１"}, {"id": "B", "port": "COM٣"}]
    data["deputies"][0]["cards"] = ["04a1b2ﬀ"]  # U+FB00 upper-cases to "FF"
    errors = _errors(tmp_path, data)
    assert len(errors) == 3, errors
    assert errors[0].startswith('lines[0].gateway: must be "host:port"')
    assert errors[1].startswith("lines[1].port: must be a serial device path")
    assert errors[2].startswith("deputies[0].cards[0]: card UID must be 4..10 bytes of hex")


# --------------------------------------------------------------------------- control characters in names


@pytest.mark.parametrize(
    ("where", "value", "what"),
    [
        (("council", "name"), "Рада\x1b[2J", "U+001B (ESC: starts a terminal escape sequence) at character 5"),
        (("deputies", 0, "full_name"), "Коваленко\nОлена", "U+000A (LF: a line break) at character 10"),
        (("deputies", 0, "faction"), "Слуга\x9b31m", "U+009B (CSI: starts a terminal escape sequence) at character 6"),
        (("deputies", 1, "open_data_id"), "d\x002", "U+0000 (NUL: a control character) at character 2"),
        (
            ("deputies", 1, "full_name"),
            "Іван\u202eвонаркО",
            "U+202E (RIGHT-TO-LEFT OVERRIDE: reorders the text as shown) at character 5",
        ),
        (("deputies", 1, "full_name"), "Іван\u2028Петро", "U+2028 (LINE SEPARATOR: a line break) at character 5"),
        (("deputies", 1, "full_name"), "Іван\x7f", "U+007F (DEL: a control character) at character 5"),
        (("deputies", 1, "full_name"), "Іван\t", "U+0009 (HT: a control character) at character 5"),
    ],
)
def test_names_refuse_control_characters(tmp_path: Path, where: tuple[Any, ...], value: str, what: str) -> None:
    data = minimal()
    target: Any = data
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = value
    error = only_error(tmp_path, to_toml(data).replace("\x7f", "\\u007F"))  # TOML wants DEL escaped
    key = ".".join(str(p) for p in where).replace(".0.", "[0].").replace(".1.", "[1].")
    assert error.startswith(f"{key}: must be plain printable text on one line; {what} is not allowed, got ")
    assert not any(ch in error for ch in value if not ch.isprintable()), error  # escaped in the message


def test_an_undefined_line_with_an_escape_is_not_echoed_raw(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["line"] = "A\x1b]0;pwned\x07"
    error = only_error(tmp_path, data)
    assert error.startswith("seats[0].line: must be plain printable text on one line; U+001B (ESC")
    assert "\x1b" not in error and "\x07" not in error


def test_plain_names_with_apostrophes_and_dashes_are_fine(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][0]["full_name"] = "Кос’яненко-Д'Артаньян Ольга"
    data["deputies"][0]["faction"] = "«Європейська Солідарність»"
    assert load(tmp_path, data).deputies[0].full_name == "Кос’яненко-Д'Артаньян Ольга"


def test_text_problem() -> None:
    assert text_problem("Про бюджет на 2027 рік") is None
    assert text_problem("a\nb") == "U+000A (LF: a line break) at character 2"
    assert text_problem("a\nb", multiline=True) is None
    assert text_problem("a\x1bb", multiline=True) == "U+001B (ESC: starts a terminal escape sequence) at character 2"


# --------------------------------------------------------------------------- at run time: OpenVote


def test_open_vote_with_a_threshold_no_vote_can_meet_is_rejected() -> None:
    d = ready(10)
    r = d.reject(ev.OpenVote(threshold=Threshold(num=1, den=1, strict=True), duration_s=0))
    assert r.reason == "impossible_threshold"
    assert r.detail == (
        "the threshold can never be met: more than 1/1 of composition needs 11 votes, but the composition is 10"
    )
    r = d.reject(ev.OpenVote(threshold=Threshold(num=1, den=1, base=Base.CAST), duration_s=0))
    assert r.detail.startswith("the threshold can never be met: more than 1/1 of cast needs more votes in favour")
    assert d.sitting.vote is None and d.sitting.votes_opened == 0
    d.ok(ev.OpenVote(threshold=Threshold(num=1, den=1, strict=False), duration_s=0))  # unanimity: possible


def test_open_vote_counts_a_head_who_does_not_vote() -> None:
    d = ready(10, head=10, head_votes=False)
    r = d.reject(ev.OpenVote(threshold=Threshold(num=1, den=1, strict=False), duration_s=0))
    assert r.detail == (
        "the threshold can never be met: at least 1/1 of composition needs 10 votes, "
        "but only 9 of the composition of 10 can vote"
    )


def test_open_vote_checks_the_rules_threshold_too() -> None:
    impossible = {subject: Threshold(num=1, den=1) for subject in VoteSubject}
    d = ready(4, rules=rules(thresholds=impossible))
    assert d.reject(ev.OpenVote(duration_s=0)).reason == "impossible_threshold"


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        (ev.OpenVote(title="Про\x1b[8m бюджет"), "title must be plain printable text on one line; U+001B (ESC"),
        (
            ev.OpenVote(kind=VoteKind.RATING, proposals=("Іваненко", "Петренко\r")),
            "proposals[1] must be plain printable text on one line; U+000D (CR: a line break) at character 9",
        ),
        (
            ev.OpenVote(kind=VoteKind.SECRET, legal_basis="ст. 26\x9d0;x\x9c"),
            "legal_basis must be plain printable text on one line; U+009D (OSC",
        ),
    ],
)
def test_open_vote_refuses_control_characters_in_texts(event: ev.OpenVote, detail: str) -> None:
    d = ready(10)
    r = d.reject(event)
    assert r.reason == "bad_text"
    assert r.detail.startswith(detail), r.detail
    assert "\x1b" not in r.detail and "\x9d" not in r.detail


def test_paths_ports_and_unknown_keys_are_never_echoed_raw(tmp_path: Path) -> None:
    data = minimal()
    data["lines"][0]["port"] = "/dev/ttyUSB0\x1b[2J"
    data["store"] = {"url": "sqlite:///var/\x9b2Jchamber.db"}
    text = to_toml(data).replace("[council]\n", '[council]\n"na\\u202eme" = "x"\n')
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, text)]
    assert errors[0].startswith('council."na\\u202Eme": unknown key')
    assert errors[1].startswith("lines[0].port: must be plain printable text on one line; U+001B (ESC")
    assert errors[2].startswith("store.url: must be plain printable text on one line; U+009B (CSI")
    assert not any(char in "".join(errors) for char in "\x1b\x9b\u202e")


def test_thresholds_are_checked_when_the_council_has_another_mistake(tmp_path: Path) -> None:
    data = _with_rules(quorum=_threshold("1/100"), thresholds={"whole": _threshold("1/1")})
    data["council"]["name"] = "Рада\x07"
    errors = _errors(tmp_path, data)
    assert [error.split(":")[0] for error in errors] == ["council.name", "rules.quorum", "rules.thresholds.whole"]
    assert "more than 1/100 of the composition of 3 is 1 deputy, the law needs 2" in errors[1]
    assert errors[2].endswith("more than 1/1 of composition needs 4 votes, but the composition is 3")

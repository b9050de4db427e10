"""chamber.config: the example config.toml, and one test per kind of error the loader reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chamber.config import Config, ConfigError, load_config, parse_config
from chamber.core.roster import Rules
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, SpeechKind, VoteSubject

EXAMPLE = Path(__file__).resolve().parent.parent / "config.toml"


# --------------------------------------------------------------------------- helpers


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(value)


def _table(header: str, table: dict[str, Any]) -> list[str]:
    """Scalars first, then sub-tables as [header.key] sections (inline tables stay inline)."""
    out = [header]
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) and value.pop("__section__", False):
            subtables.append((key, value))
        else:
            out.append(f"{key} = {_value(value)}")
    for key, value in subtables:
        out.append("")
        out += _table(f"[{header.strip('[]')}.{key}]", value)
    return out


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for the test configs: tables, arrays of tables, inline tables."""
    data = copy.deepcopy(data)
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                lines += [f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in item.items()), ""]
        elif isinstance(value, dict):
            lines += [*_table(f"[{key}]", value), ""]
        else:
            lines.insert(0, f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def section(**keys: Any) -> dict[str, Any]:
    """A sub-table written as its own [a.b] header rather than inline."""
    return {"__section__": True, **keys}


def minimal() -> dict[str, Any]:
    """A small valid config: two deputies and the head, three seats, one line."""
    return {
        "council": {"name": "Тестова сільська рада", "composition": 3},
        "lines": [{"id": "A", "port": "/dev/ttyUSB0"}],
        "seats": [
            {"id": 1, "line": "A", "unit": 1},
            {"id": 2, "line": "A", "unit": 2},
            {"id": 3, "line": "A", "unit": 3, "chair": True},
        ],
        "deputies": [
            {"id": 1, "full_name": "Коваленко Олена Петрівна", "cards": ["04a1b2c3"], "seat": 1},
            {"id": 2, "full_name": "Бондаренко Андрій Миколайович", "cards": ["04A1B2C4"], "seat": 2},
            {
                "id": 3,
                "full_name": "Шевчук Олександр Іванович",
                "cards": ["04A1B2C5"],
                "seat": 3,
                "role": "head",
            },
        ],
    }


def write(tmp_path: Path, data: dict[str, Any] | str, name: str = "council.toml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else to_toml(data), encoding="utf-8")
    return path


def load(tmp_path: Path, data: dict[str, Any] | str) -> Config:
    return load_config(write(tmp_path, data))


def errors_of(tmp_path: Path, data: dict[str, Any] | str) -> list[str]:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == str(path)
    assert str(err) == "\n".join(err.errors)
    for line in err.errors:
        assert line.startswith(f"{path}: "), line
    return err.errors


def only_error(tmp_path: Path, data: dict[str, Any] | str) -> str:
    """The single error for a config with one thing wrong, without the file name."""
    errors = errors_of(tmp_path, data)
    assert len(errors) == 1, errors
    return errors[0].split(": ", 1)[1]


# --------------------------------------------------------------------------- the example file


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    roster = config.roster()
    assert config.source == str(EXAMPLE)
    assert roster.council.composition == 43
    assert roster.council.name == "Житомирська міська рада"
    assert len(roster.deputies) == 43
    assert len(roster.seats) == 43
    heads = [deputy for deputy in roster.deputies if deputy.role is Role.HEAD]
    assert len(heads) == 1
    chairs = [seat.id for seat in roster.seats if seat.chair]
    assert chairs == [43] == [heads[0].seat]
    assert {len(config.seats_on("A")), len(config.seats_on("B"))} == {22, 21}
    assert config.line("B").gateway_address == ("192.168.10.20", 4001)
    assert len({deputy.faction for deputy in roster.deputies if deputy.faction}) >= 4
    assert all(len(deputy.cards) == 1 and len(deputy.cards[0]) == 8 for deputy in roster.deputies)
    assert roster.rules == Rules()
    assert roster.rules.quorum.required(43) == 22
    assert config.store.url == f"sqlite:///{EXAMPLE.parent / 'var' / 'chamber.db'}"


def test_minimal_config_gets_core_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, minimal())
    assert config.roster().rules == Rules()
    assert config.deputies[0].cards == ["04A1B2C3"]  # normalized to upper case
    assert config.lines[0].baud == 19200 and config.lines[0].parity == "E"
    assert config.web.host == "127.0.0.1" and config.web.port == 8080
    assert not config.signing.enabled


def test_roster_carries_configured_rules(tmp_path: Path) -> None:
    data = minimal()
    data["rules"] = {
        "quorum": {"fraction": "2/3", "base": "composition", "strict": False},
        "vote_duration_s": 30,
        "seating": "free",
        "thresholds": section(whole={"fraction": "2/3", "base": "composition", "strict": False}),
        "speech_limits_s": section(speech=300),
    }
    rules = load(tmp_path, data).roster().rules
    assert rules.quorum == Threshold(num=2, den=3, base=Base.COMPOSITION, strict=False)
    assert rules.thresholds[VoteSubject.WHOLE].required(43) == 29
    assert rules.thresholds[VoteSubject.PROCEDURAL].base is Base.REGISTERED  # untouched default
    assert rules.speech_limits_s[SpeechKind.SPEECH] == 300
    assert rules.seating is Seating.FREE
    assert rules.vote_duration_s == 30


# --------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: config file not found"


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    text = '[council]\nname = "Рада"\ncomposition = \n'
    error = only_error(tmp_path, text)
    assert error.startswith("line 3, column 15: invalid TOML:"), error


def test_parse_config_names_the_given_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[council]\n", path="inline.toml")
    assert str(info.value).startswith("inline.toml: council.name: required key is missing")


def test_missing_council_section(tmp_path: Path) -> None:
    data = minimal()
    del data["council"]
    errors = errors_of(tmp_path, data)
    assert any("council: required section [council] is missing" in line for line in errors), errors


# --------------------------------------------------------------------------- per-item errors


def test_unknown_keys_everywhere(tmp_path: Path) -> None:
    data = minimal()
    data["colour"] = "blue"
    data["deputies"][1]["full_nam"] = "x"
    data["rules"] = {"thresholds": section(basis={"fractoin": "1/2"}, final={"fraction": "1/2"})}
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert "colour: unknown key" in errors
    assert 'deputies[1].full_nam: unknown key (did you mean "full_name"?)' in errors
    assert 'rules.thresholds.basis.fractoin: unknown key (did you mean "fraction"?)' in errors
    assert "rules.thresholds.basis.fraction: required key is missing" in errors
    assert "rules.thresholds.final: unknown key" in errors
    assert not any("Extra inputs" in line for line in errors)


def test_source_is_not_a_config_key(tmp_path: Path) -> None:
    data = minimal()
    data["source"] = "/etc/other.toml"
    assert only_error(tmp_path, data) == 'source: unknown key (did you mean "store"?)'


def test_top_level_key_after_a_table_is_explained(tmp_path: Path) -> None:
    text = to_toml(minimal()) + 'seats = [{ id = 9, line = "A", unit = 9 }]\n'
    error = only_error(tmp_path, text)
    assert error.startswith('deputies[2].seats: unknown key; a top-level "seats" must come before'), error


def test_wrong_type_is_readable(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["unit"] = "1"
    assert only_error(tmp_path, data) == 'seats[0].unit: must be an integer, got string "1"'


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    data = minimal()
    data["lines"][0]["stopbits"] = True
    assert only_error(tmp_path, data) == "lines[0].stopbits: must be an integer, got boolean true"


def test_out_of_range(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][2]["unit"] = 248
    data["rules"] = {"max_open_mics": 0, "vote_duration_s": 601}
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert "seats[2].unit: must be at most 247, got 248" in errors
    assert "rules.max_open_mics: must be at least 1, got 0" in errors
    assert "rules.vote_duration_s: must be at most 600, got 601" in errors


def test_bad_card_uid(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][0]["cards"] = ["04A1B2C3", "XYZ12345"]
    error = only_error(tmp_path, data)
    assert error.startswith("deputies[0].cards[1]: card UID must be 4..10 bytes of hex"), error
    assert '"XYZ12345"' in error


def test_card_uid_longer_than_the_console_can_report(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][0]["cards"] = ["04A1B2C3D4E5F60708090A"]  # 11 bytes: CARD_UID holds 10
    error = only_error(tmp_path, data)
    assert error.startswith("deputies[0].cards[0]: card UID must be 4..10 bytes of hex"), error


def test_card_uid_odd_length_or_too_short(tmp_path: Path) -> None:
    for uid in ("04A1B2C", "04A1B2", "0" * 42):
        data = minimal()
        data["deputies"][0]["cards"] = [uid]
        assert only_error(tmp_path, data).startswith("deputies[0].cards[0]: card UID must be"), uid


def test_edrpou_and_katottg_format(tmp_path: Path) -> None:
    data = minimal()
    data["council"]["edrpou"] = "4053625"
    data["council"]["katottg"] = "UA1806019001005604"
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert errors == [
        'council.edrpou: ЄДРПОУ code must be 8 digits, got "4053625"',
        'council.katottg: КАТОТТГ code must be "UA" followed by 17 digits (e.g. "UA18040470010034570"), '
        'got "UA1806019001005604"',
    ]
    data["council"]["edrpou"] = "04053625"
    data["council"]["katottg"] = "UA12060190010056040"
    assert load(tmp_path, data).council.katottg == "UA12060190010056040"


def test_line_needs_exactly_one_of_port_and_gateway(tmp_path: Path) -> None:
    data = minimal()
    data["lines"][0]["gateway"] = "10.0.0.5:4001"
    assert only_error(tmp_path, data) == (
        'lines[0]: give exactly one of "port" (serial device) or "gateway" (host:port); both are given'
    )
    del data["lines"][0]["gateway"]
    del data["lines"][0]["port"]
    assert only_error(tmp_path, data).endswith("neither is given")


def test_line_settings(tmp_path: Path) -> None:
    data = minimal()
    data["lines"][0].update(baud=100000, parity="X", timeout_ms=1, port="ttyUSB0")
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert len(errors) == 4, errors
    assert errors[0].startswith("lines[0].port: must be a serial device path")
    assert errors[1].startswith("lines[0].baud: must be a standard baud rate (1200, 2400,")
    assert errors[1].endswith("got 100000")
    assert errors[2] == "lines[0].parity: must be one of 'N', 'E' or 'O', got \"X\""
    assert errors[3] == "lines[0].timeout_ms: must be at least 5, got 1"


def test_gateway_format(tmp_path: Path) -> None:
    data = minimal()
    data["lines"][0] = {"id": "A", "gateway": "10.0.0.5"}
    assert only_error(tmp_path, data).startswith('lines[0].gateway: must be "host:port"')
    data["lines"][0] = {"id": "A", "gateway": "gw-hall.local:70000"}
    assert only_error(tmp_path, data).startswith('lines[0].gateway: must be "host:port"')
    data["lines"][0] = {"id": "A", "gateway": "[fd00::20]:4001"}
    assert load(tmp_path, data).lines[0].gateway_address == ("fd00::20", 4001)


def test_threshold_fraction_and_base(tmp_path: Path) -> None:
    data = minimal()
    data["rules"] = {
        "quorum": {"fraction": "3/2"},
        "thresholds": section(whole={"fraction": "2/3", "base": "everyone"}),
    }
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert errors[0] == (
        'rules.quorum.fraction: must be a fraction "p/q" with 0 < p <= q <= 1000, such as "1/2" or "2/3", got "3/2"'
    )
    assert errors[1].startswith("rules.thresholds.whole.base: must be one of 'composition', 'registered'")
    assert errors[1].endswith('got "everyone"')


def test_quorum_is_counted_of_composition(tmp_path: Path) -> None:
    data = minimal()
    data["rules"] = {"quorum": {"fraction": "1/2", "base": "registered"}}
    assert only_error(tmp_path, data).startswith("rules.quorum.base: quorum is counted of the composition")


def test_signing_needs_certificate_and_key(tmp_path: Path) -> None:
    data = minimal()
    data["signing"] = {"certificate": "cert.pem", "passphrase_env": "1BAD"}
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert errors == ['signing.passphrase_env: must be an environment variable name, got "1BAD"']
    data["signing"] = {"certificate": "cert.pem"}
    assert only_error(tmp_path, data) == 'signing: give both "certificate" and "key", or neither (signing disabled)'
    data["signing"] = {
        "certificate": "certs/cert.pem",
        "key": "/etc/chamber/key.pem",
        "passphrase_env": "KEY_PW",
    }
    signing = load(tmp_path, data).signing
    assert signing.enabled
    assert signing.certificate == str(tmp_path / "certs" / "cert.pem")
    assert signing.key == "/etc/chamber/key.pem"


def test_section_of_wrong_shape(tmp_path: Path) -> None:
    data = minimal()
    data["web"] = {"port": 0}
    text = to_toml(data).replace("[[seats]]", "[[seat]]", 1)
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, text)]
    assert 'seat: unknown key (did you mean "seats"?)' in errors
    assert "web.port: must be at least 1, got 0" in errors
    text = 'deputies = "all of them"\n[council]\nname = "Рада"\ncomposition = 1\n'
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, text)]
    assert errors == ['deputies: must be an array of tables ([[deputies]]), got string "all of them"']
    text = '[council]\nname = "Рада"\ncomposition = 1\n[web]\n[web.port]\n'
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, text)]
    assert "web.port: must be an integer, got table {}" in errors


# --------------------------------------------------------------------------- cross-checks


def test_seat_on_undefined_line(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][1]["line"] = "C"
    assert only_error(tmp_path, data) == 'seats[1].line: line "C" is not defined (defined lines: "A")'


def test_card_given_to_two_deputies_names_both(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][1]["cards"] = ["04:A1:B2:C3"]  # the same card as deputies[0], written differently
    assert only_error(tmp_path, data) == (
        "deputies[1].cards[0]: card 04A1B2C3 is given to two deputies: "
        "deputies[0] (id 1, Коваленко Олена Петрівна) and deputies[1] (id 2, Бондаренко Андрій Миколайович)"
    )


def test_card_listed_twice_for_one_deputy(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][0]["cards"] = ["04A1B2C3", "04a1b2c3"]
    assert only_error(tmp_path, data) == "deputies[0].cards[1]: card 04A1B2C3 is listed twice for this deputy"


def test_duplicate_console_unit_on_one_line_names_both_seats(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][2]["unit"] = 1
    error = only_error(tmp_path, data)
    assert error.startswith('seats[2].unit: console unit 1 on line "A" is already used by seat 1 (seats[0]')
    assert "seat 3 and seat 1 collide" in error


def test_same_unit_on_different_lines_is_fine(tmp_path: Path) -> None:
    data = minimal()
    data["lines"].append({"id": "B", "gateway": "192.168.10.20:4001"})
    data["seats"][2].update(line="B", unit=1)
    assert len(load(tmp_path, data).seats_on("B")) == 1


def test_mic_unit_collisions(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["mic_unit"] = 1  # the seat's own console: fine
    data["seats"][1]["mic_unit"] = 102
    assert load(tmp_path, data).seats[1].microphone_unit == 102
    data["seats"][1]["mic_unit"] = 3  # seat 3's console
    error = only_error(tmp_path, data)
    assert error.startswith('seats[1].mic_unit: microphone unit 3 on line "A" is already used by seat 3')
    data["seats"][1]["mic_unit"] = 101
    data["seats"][2]["mic_unit"] = 101  # another seat's microphone unit
    error = only_error(tmp_path, data)
    assert error.startswith('seats[2].mic_unit: microphone unit 101 on line "A" is already used by seat 2')
    assert "microphone unit); seat 3 and seat 2 collide" in error


def test_deputy_on_undefined_seat(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][1]["seat"] = 99
    assert only_error(tmp_path, data) == "deputies[1].seat: seat 99 is not defined in [[seats]]"


def test_two_deputies_on_one_seat(tmp_path: Path) -> None:
    data = minimal()
    data["deputies"][1]["seat"] = 1
    assert only_error(tmp_path, data) == (
        "deputies[1].seat: seat 1 is assigned to two deputies: "
        "deputies[0] (id 1, Коваленко Олена Петрівна) and deputies[1] (id 2, Бондаренко Андрій Миколайович)"
    )


def test_composition_must_match_deputies(tmp_path: Path) -> None:
    data = minimal()
    data["council"]["composition"] = 5
    assert only_error(tmp_path, data) == (
        "council.composition: composition is 5 but [[deputies]] lists 2 deputies "
        "+ 1 head (head_in_composition = true), which makes 3"
    )
    data["council"]["head_in_composition"] = False
    error = only_error(tmp_path, data)
    assert "composition is 5" in error and "which makes 2" in error
    data["council"]["composition"] = 2
    assert load(tmp_path, data).roster().council.head_in_composition is False


def test_assigned_seating_needs_a_seat_per_deputy(tmp_path: Path) -> None:
    data = minimal()
    del data["deputies"][0]["seat"]
    error = only_error(tmp_path, data)
    assert error.startswith('deputies[0].seat: missing: rules.seating is "assigned", so every deputy needs a seat')
    data["rules"] = {"seating": "free"}
    assert load(tmp_path, data).deputies[0].seat is None


def test_warning_must_be_shorter_than_every_speech_limit(tmp_path: Path) -> None:
    data = minimal()
    data["rules"] = {"warning_s": 60}
    assert only_error(tmp_path, data) == (
        "rules.warning_s: 60 must be smaller than the shortest speech limit (rules.speech_limits_s.point_of_order = 60)"
    )


def test_duplicate_ids_heads_chairs_open_data_ids(tmp_path: Path) -> None:
    data = minimal()
    data["lines"].append({"id": "A", "port": "/dev/ttyUSB1"})
    data["seats"].append({"id": 3, "line": "A", "unit": 9, "chair": True})
    data["deputies"][1].update(id=1, role="head", open_data_id="d1")
    data["deputies"][0]["open_data_id"] = "d1"
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, data)]
    assert 'lines[1].id: line "A" is defined twice (also lines[0])' in errors
    assert "seats[3].id: seat 3 is defined twice (also seats[2])" in errors
    assert "seats[3].chair: only one seat can be the chair; seat 3 (seats[2]) already is" in errors
    assert "deputies[1].id: deputy id 1 is used twice (also deputies[0])" in errors
    assert any(
        line.startswith('deputies[1].open_data_id: open_data_id "d1" is used by two deputies') for line in errors
    )
    assert any(line.startswith('deputies[2].role: only one deputy can be "head"; deputies[1]') for line in errors)


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    data = minimal()
    data["council"]["composition"] = 0  # range
    data["seats"][0]["line"] = "Z"  # undefined line
    data["seats"][1]["unit"] = "two"  # type
    data["deputies"][0]["nickname"] = "Оля"  # unknown key
    data["deputies"][2]["cards"] = ["04A1B2C4"]  # card of deputies[1]
    data["rules"] = {"warning_s": 500}  # longer than a reply
    text = to_toml(data) + "\n"
    errors = [line.split(": ", 1)[1] for line in errors_of(tmp_path, text)]
    assert errors == [
        "council.composition: must be at least 1, got 0",
        'seats[1].unit: must be an integer, got string "two"',
        "deputies[0].nickname: unknown key",
        'seats[0].line: line "Z" is not defined (defined lines: "A")',
        "deputies[2].cards[0]: card 04A1B2C4 is given to two deputies: deputies[1] "
        "(id 2, Бондаренко Андрій Миколайович) and deputies[2] (id 3, Шевчук Олександр Іванович)",
        "rules.warning_s: 500 must be smaller than the shortest speech limit "
        "(rules.speech_limits_s.point_of_order = 60)",
    ]


def test_a_broken_seat_does_not_cascade(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["unit"] = 0  # seat 1 is invalid, but deputies[0] sitting there is not "undefined"
    assert only_error(tmp_path, data) == "seats[0].unit: must be at least 1, got 0"


# --------------------------------------------------------------------------- paths and construction


def test_relative_sqlite_path_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    data = minimal()
    assert load_config(write(sub, data)).store.url == f"sqlite:///{sub / 'var' / 'chamber.db'}"
    for url in (
        "sqlite:////srv/chamber.db",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://c@db/c",
    ):
        data["store"] = {"url": url}
        assert load_config(write(sub, data)).store.url == url
    data["store"] = {"url": "sqlite:///db/x.db?timeout=5"}
    assert load_config(write(sub, data)).store.url == f"sqlite:///{sub / 'db' / 'x.db'}?timeout=5"
    data["store"] = {"url": "chamber.db"}
    assert only_error(tmp_path, data).startswith("store.url: must be an SQLAlchemy URL")
    for url in ("postgresql+nonexist://c@db/c", "postgresql://c@db/c"):  # the latter means psycopg2: absent
        data["store"] = {"url": url}
        error = only_error(tmp_path, data)
        assert error.startswith(f"store.url: {url.split(':')[0]}:// needs a database driver"), error
        assert "postgresql+psycopg://" in error


def test_web_secret_key_file_is_resolved(tmp_path: Path) -> None:
    data = minimal()
    data["web"] = {"secret_key_file": "var/secret", "port": 8443, "host": "0.0.0.0"}
    web = load(tmp_path, data).web
    assert web.secret_key_file == str(tmp_path / "var" / "secret")
    assert web.port == 8443


def test_parse_config_source_default() -> None:
    config = parse_config(to_toml(minimal()))
    assert config.source == "<config>"


def test_config_model_validate_runs_cross_checks() -> None:
    data = minimal()
    data["deputies"][1]["seat"] = 1
    with pytest.raises(ValueError, match=r"deputies\[1\].seat: seat 1 is assigned to two deputies"):
        Config.model_validate(data)


# --------------------------------------------------------------------------- generic DI/DO module seats


def test_seat_profile_defaults_to_native_and_accepts_generic(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["profile"] = "generic"
    config = load(tmp_path, data)
    assert [seat.profile for seat in config.seats] == ["generic", "native", "native"]
    assert config.seats[0].generic and not config.seats[1].generic
    data["seats"][0]["profile"] = "modbus"
    assert only_error(tmp_path, data) == "seats[0].profile: must be one of 'native' or 'generic', got \"modbus\""


def test_generic_seat_needs_assigned_seating(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0]["profile"] = "generic"
    data["rules"] = {"seating": "free"}
    error = only_error(tmp_path, data)
    assert error.startswith('rules.seating: must be "assigned" when a seat has profile = "generic"')
    assert error.endswith('got "free"; generic: seats[0] (seat 1)')


def test_generic_seat_needs_an_assigned_deputy_with_a_card(tmp_path: Path) -> None:
    data = minimal()
    data["seats"].append({"id": 4, "line": "A", "unit": 4, "profile": "generic"})
    assert only_error(tmp_path, data) == (
        'seats[3].profile: profile = "generic" needs a deputy assigned to seat 4 '
        "(a [[deputies]] entry with seat = 4): the module reports no card UID"
    )
    data = minimal()
    data["seats"][1]["profile"] = "generic"
    data["deputies"][1]["cards"] = []
    assert only_error(tmp_path, data) == (
        'deputies[1].cards: missing: seat 2 is a generic module (seats[1].profile = "generic"), so '
        "deputies[1] (id 2, Бондаренко Андрій Миколайович) assigned there needs at least one card"
    )


def test_generic_seat_has_no_separate_microphone_unit(tmp_path: Path) -> None:
    data = minimal()
    data["seats"][0].update(profile="generic", mic_unit=1)  # the module itself: fine
    assert load(tmp_path, data).seats[0].microphone_unit == 1
    data["seats"][0]["mic_unit"] = 101
    assert only_error(tmp_path, data).startswith(
        'seats[0].mic_unit: a seat with profile = "generic" switches its microphone with the module\'s coil 6'
    )

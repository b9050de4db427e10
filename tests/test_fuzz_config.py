"""Fuzzing the config loader: whatever the file holds, ``ConfigError`` with clear lines, or a Config.

Four sources of input, each checked with the same invariants (``check``):

* random TOML documents whose keys are mostly the loader's own section and field names, with values
  of every TOML type (huge integers, inf and nan, dates, control characters, digits of other scripts);
* the example config.toml with one key changed (another type, a huge or negative number, a string of
  other scripts' digits or control characters), removed, or an unknown key added beside it: the
  error must name that key (or the table or item holding it);
* the example config.toml's text with bytes replaced, inserted or cut off, read through
  ``load_config`` (invalid UTF-8, NUL bytes, broken TOML);
* the same text with one digit of a number replaced by a digit of another script.

Invariants: ``parse_config`` / ``load_config`` return a ``Config`` or raise ``ConfigError``, nothing
else; every line of the error is ``"{file}: {key}: {what is wrong}"`` with a key and a reason, and no
line carries a control character, a line separator or a bidi override to the terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from fuzz_budget import budget
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from chamber import config as config_module
from chamber.config import Config, ConfigError, load_config, parse_config
from chamber.core.roster import unshowable

EXAMPLE = Path(__file__).resolve().parent.parent / "config.toml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
EXAMPLE_DATA = tomllib.loads(EXAMPLE_TEXT)
PATH = "/etc/chamber/council.toml"


# --- a small TOML writer: every value inline, so any nesting of tables and arrays can be written ---------


def _string(text: str) -> str:
    # json escapes C0 controls, quotes and backslashes as TOML does; TOML also wants DEL escaped
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007F")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _string(key)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    return "".join(f"{_key(k)} = {toml_value(v)}\n" for k, v in data.items())


def test_the_writer_writes_what_tomllib_reads() -> None:
    assert tomllib.loads(to_toml(EXAMPLE_DATA)) == EXAMPLE_DATA
    assert parse_config(to_toml(EXAMPLE_DATA), PATH).council.composition == 43


# --- the invariants ----------------------------------------------------------------------------------------

#: what the file as a whole can be told, with no key to name
_FILE_LEVEL = ("not UTF-8 text (bad byte at offset ",)


def check(text: str | None, path: str = PATH, raw: bytes | None = None, tmp: Path | None = None) -> list[str]:
    """Parse ``text`` (or load ``raw`` from a file); [] for a valid config, else the error's lines
    without the file name ("key: what is wrong"), each line checked."""
    try:
        if raw is not None:
            assert tmp is not None
            tmp.write_bytes(raw)
            path = str(tmp)
            result = load_config(tmp)
        else:
            assert text is not None
            result = parse_config(text, path)
    except ConfigError as err:
        assert err.errors, "a ConfigError with no problem in it"
        assert err.path == path
        keys = []
        for line in err.errors:
            assert not any(unshowable(c) for c in line), f"a control character reaches the terminal: {line!r}"
            assert line.startswith(f"{path}: "), line
            key, sep, what = line[len(path) + 2 :].partition(": ")
            if not sep:
                assert key.startswith(_FILE_LEVEL), f"not 'file: key: what is wrong': {line!r}"
                continue
            assert key.strip() and what.strip(), f"not 'file: key: what is wrong': {line!r}"
            keys.append(f"{key}: {what}")
        return keys
    assert isinstance(result, Config)
    return []


# --- random documents -------------------------------------------------------------------------------------


def _field_names(model: type[BaseModel], seen: set[type]) -> set[str]:
    names = set(model.model_fields)
    seen.add(model)
    for field in model.model_fields.values():
        inner = config_module._unwrap_model(field.annotation)
        if inner is not None and inner not in seen:
            names |= _field_names(inner, seen)
    return names


KNOWN_KEYS = sorted(_field_names(Config, set()))
KEYS = st.one_of(st.sampled_from(KNOWN_KEYS), st.sampled_from(KNOWN_KEYS), st.text(max_size=12))


def _offset(minutes: int) -> dt.tzinfo:
    return dt.timezone(dt.timedelta(minutes=minutes))


#: strings the loader must refuse clearly: control characters, bidi overrides, digits of other scripts
NASTY_TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Nd"]), max_size=8),
    st.sampled_from(["٤٣", "４３", "४३", "1/2", "２/３", "\x1b[31mred", "\u202eevil", "COM１", "", " ", "\t"]),
)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 1, 2**31, 2**63 - 1, -(2**63), 10**18]),
    st.floats(),
    NASTY_TEXT,
    # TOML offsets are whole minutes (a zone's historical offset in seconds cannot be written)
    st.datetimes(timezones=st.one_of(st.none(), st.integers(-1439, 1439).map(_offset))),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=20,
)
DOCUMENTS = st.dictionaries(
    st.one_of(st.sampled_from(list(config_module._SECTION_ORDER)), KEYS),
    st.one_of(
        st.dictionaries(KEYS, VALUES, max_size=8),
        st.lists(st.dictionaries(KEYS, VALUES, max_size=8), max_size=4),
        VALUES,
    ),
    max_size=6,
)


@budget(150)
@given(doc=DOCUMENTS)
def test_random_documents(doc: dict[str, Any]) -> None:
    text = to_toml(doc)
    assert tomllib.loads(text) is not None  # the writer wrote TOML
    check(text)


# --- the example with one key changed ---------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key and array item below ``value``."""
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((*prefix, key))
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.append((*prefix, i))
            out += _paths(item, (*prefix, i))
    return out


EXAMPLE_PATHS = _paths(EXAMPLE_DATA)


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))  # config.toml holds no dates


def _key_text(path: tuple[str | int, ...]) -> str:
    return config_module._key_path(path)


def _related(error: str, key: str) -> bool:
    """The error ("key: what") is about ``key``, about something inside it, or about a table or item
    holding it; or its sentence names ``key`` (a seat defined twice names both places)."""
    error_key, _, what = error.partition(": ")
    return (
        error_key == key
        or error_key.startswith((key + ".", key + "["))
        or key.startswith((error_key + ".", error_key + "["))
        or any(re.search(re.escape(k) + r"(?![0-9\]])", what) for k in (key, key.rsplit(".", 1)[0]))
    )


REPLACEMENTS = st.one_of(
    SCALARS,
    st.sampled_from([10**30, -(10**30), 2**64, float("inf"), float("nan"), -0.0, [], {}, [1, "a"], {"x": 1}]),
    NASTY_TEXT,
)


def _different(new: Any, old: Any) -> bool:
    return type(new) is not type(old) or new != old


@budget(400)
@given(data=st.data())
def test_one_key_of_the_example_changed(data: st.DataObject) -> None:
    doc = _copy(EXAMPLE_DATA)
    path = data.draw(st.sampled_from(EXAMPLE_PATHS), label="path")
    *parents, last = path
    holder: Any = doc
    for part in parents:
        holder = holder[part]
    old = holder[last]
    new = data.draw(REPLACEMENTS.filter(lambda v: _different(v, old)), label="new value")
    holder[last] = new
    keys = check(to_toml(doc))
    if type(new) is not type(old) and not (isinstance(old, float) and type(new) is int):
        # a value of another type (an integer where a float goes is fine) is refused, at that key.  (A
        # value of the same type may be wrong elsewhere: a seat renumbered is missing where it is used.)
        where = _key_text(path)
        assert keys, f"{where} = {new!r} was taken"
        assert any(_related(k, where) for k in keys), (where, keys)


@budget(200)
@given(data=st.data())
def test_a_key_of_the_example_removed_or_an_unknown_one_added(data: st.DataObject) -> None:
    doc = _copy(EXAMPLE_DATA)
    tables = [p for p in EXAMPLE_PATHS if isinstance(_at(doc, p), dict)] + [()]
    path = data.draw(st.sampled_from(tables), label="table")
    table = _at(doc, path)
    if table and data.draw(st.booleans(), label="remove"):
        key = data.draw(st.sampled_from(sorted(table)), label="removed")
        del table[key]
        keys = check(to_toml(doc))
        if keys:
            assert any(_related(k, _key_text((*path, key))) or _related(k, _key_text(path)) for k in keys) or (
                path == () or key == "id"  # a whole section gone, or an id others refer to: reported where used
            ), (path, key, keys)
        return
    key = data.draw(KEYS.filter(lambda k: k not in table), label="added")
    table[key] = data.draw(VALUES, label="value")
    keys = check(to_toml(doc))
    where = _key_text((*path, key))
    if key in KNOWN_KEYS:  # a key of some table, maybe of this one: if it is refused, it is named
        assert not keys or any(_related(k, where) for k in keys), (where, keys)
    else:
        assert any(k.startswith(where + ": unknown key") for k in keys), (where, keys)


def _at(doc: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


# --- the example's text, damaged ---------------------------------------------------------------------------

EXAMPLE_BYTES = EXAMPLE_TEXT.encode("utf-8")


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    raw = bytearray(EXAMPLE_BYTES)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["replace", "insert", "cut", "truncate"]))
        junk = draw(st.binary(min_size=1, max_size=8))
        if op == "replace":
            raw[at : at + len(junk)] = junk
        elif op == "insert":
            raw[at:at] = junk
        elif op == "cut":
            del raw[at : at + draw(st.integers(1, 40))]
        else:
            del raw[at:]
    if draw(st.booleans()):
        raw[:0] = b"\xef\xbb\xbf"  # a byte-order mark: allowed
    return bytes(raw)


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "council.toml"


@budget(300)
@given(raw=damaged())
def test_damaged_bytes_of_the_example(raw: bytes, config_file: Path) -> None:
    check(None, raw=raw, tmp=config_file)


_NUMBER = re.compile(rb"(?m)^(\w+) = ([0-9]+)\s*$")
NUMBERS = [m for m in _NUMBER.finditer(EXAMPLE_BYTES)]
FOREIGN_DIGITS = "٠١٢٣٤٥٦٧٨٩۴०१२३४５６７８９߁᠑"


@budget(100)
@given(
    which=st.sampled_from(NUMBERS),
    digit=st.sampled_from(FOREIGN_DIGITS),
    where=st.integers(0, 10),
    quoted=st.booleans(),
)
def test_a_number_with_a_digit_of_another_script(
    which: re.Match[bytes], digit: str, where: int, quoted: bool, config_file: Path
) -> None:
    number = which.group(2).decode()
    at = where % len(number)
    changed = number[:at] + digit + number[at + 1 :]
    value = f'"{changed}"' if quoted else changed
    line = f"{which.group(1).decode()} = {value}".encode()
    raw = EXAMPLE_BYTES[: which.start()] + line + EXAMPLE_BYTES[which.end() :]
    keys = check(None, raw=raw, tmp=config_file)
    assert keys, f"{line.decode()} was taken"
    if quoted:  # valid TOML, a string where a number goes: the key is named
        assert any(k.split(": ")[0].endswith(which.group(1).decode()) for k in keys), keys


def test_a_broken_line_id_is_not_echoed_raw_where_seats_refer_to_it() -> None:
    """Found by the fuzzer: a line id with a control character failed validation, but the seats on the
    other line listed it, raw, among the defined lines."""
    doc = _copy(EXAMPLE_DATA)
    doc["lines"][1]["id"] = "\x1b[2J"
    keys = check(to_toml(doc))
    assert 'seats[22].line: line "B" is not defined (defined lines: "\\u001b[2J", "A")' in keys

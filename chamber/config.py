"""config.toml: the council, its deputies, seats, RS-485 lines, rules, web, store, signing and recording.

How it works
------------
``load_config(path)`` reads the file (UTF-8, TOML) with :mod:`tomllib` and hands the text to
``parse_config(text, path)``, which validates in two passes so that one mistake never hides another:

1. Every section (``[council]``, ``[rules]``, ``[web]``, ...) and every item of every array of tables
   (``[[deputies]]``, ``[[seats]]``, ``[[lines]]``) is validated on its own against a pydantic model
   (strict types, ``extra="forbid"``, ranges).  All of pydantic's errors are kept.
2. Cross-checks run over the items that passed (and over the ids of the ones that did not, so that a
   broken seat does not also make every deputy sitting there "unknown"): seats on undefined lines,
   cards given to two deputies, unit ids used twice on one line, deputies on undefined or shared seats,
   the composition against the deputies list, seating rules, warning time against speech limits,
   thresholds no vote can meet and a quorum looser than the law (art. 46).

If anything is wrong, :class:`ConfigError` is raised carrying *all* problems, one per line, each as
``"{file}: {key}: {what is wrong}"`` where key is a dotted path such as ``deputies[3].cards[0]`` (list
indexes count from 0 in file order).  TOML syntax errors and unreadable files are reported the same way.

Relative paths in the file (an SQLite store URL, the web secret key file, the signing certificate and
key or PKCS#12 file, the recordings' directory) are resolved against the directory of the config file,
so the daemon behaves the same whatever its working directory.  ``Config.roster()`` converts the
validated file into the immutable core structs (:class:`chamber.core.roster.Roster`) a sitting is
opened with; ``Config.source`` is the file it was loaded from.  The same cross-checks also run when a
:class:`Config` is built directly with ``Config.model_validate``.

Layout: the section models live in :mod:`chamber.config_sections` and the cross-checks in
:mod:`chamber.config_checks`; this module is the public entry (:func:`load_config`,
:func:`parse_config`, :class:`ConfigError`, :class:`Config`, the error formatting) and re-exports the
section models.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Self, Union, get_args, get_origin

from pydantic import BaseModel, PrivateAttr, ValidationError, model_validator

from chamber.config_checks import _cross_check, _Problem
from chamber.config_sections import (
    STANDARD_BAUD_RATES,
    CouncilConfig,
    DeputyConfig,
    LineConfig,
    RecordingConfig,
    RulesConfig,
    SeatConfig,
    SigningConfig,
    SpeechLimitsConfig,
    StoreConfig,
    ThresholdConfig,
    ThresholdsConfig,
    WebConfig,
    _Model,
    _toml_repr,
)
from chamber.core.roster import Roster, unshowable

__all__ = [
    "STANDARD_BAUD_RATES",
    "Config",
    "ConfigError",
    "CouncilConfig",
    "DeputyConfig",
    "LineConfig",
    "RecordingConfig",
    "RulesConfig",
    "SeatConfig",
    "SigningConfig",
    "SpeechLimitsConfig",
    "StoreConfig",
    "ThresholdConfig",
    "ThresholdsConfig",
    "WebConfig",
    "load_config",
    "parse_config",
]

_SQLITE_FILE = re.compile(r"(sqlite(?:\+[A-Za-z0-9_]+)?):///(.*)", re.DOTALL)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POS = re.compile(r"\s*\(at line ([0-9]+), column ([0-9]+)\)\s*$")


class ConfigError(Exception):
    """The config file is missing, unreadable, not TOML, or has invalid content.

    ``errors`` holds every problem found, each formatted ``"{file}: {key}: {what is wrong}"``;
    ``str(err)`` is those lines joined by newlines.
    """

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))

    def __str__(self) -> str:
        return "\n".join(self.errors)


class Config(_Model):
    """The whole config file, validated and cross-checked."""

    # pydantic copies these defaults per instance; ruff cannot see that _Model (imported) is a BaseModel
    council: CouncilConfig
    deputies: list[DeputyConfig] = []  # noqa: RUF012
    seats: list[SeatConfig] = []  # noqa: RUF012
    lines: list[LineConfig] = []  # noqa: RUF012
    rules: RulesConfig = RulesConfig()
    web: WebConfig = WebConfig()
    store: StoreConfig = StoreConfig()
    signing: SigningConfig = SigningConfig()
    recording: RecordingConfig = RecordingConfig()

    _source: str = PrivateAttr(default="<config>")

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        problems = _cross_check(
            self.council,
            list(enumerate(self.deputies)),
            list(enumerate(self.seats)),
            list(enumerate(self.lines)),
            self.rules,
        )
        if problems:
            raise ValueError("; ".join(f"{key}: {what}" for key, what in problems))
        return self

    @property
    def source(self) -> str:
        """The file this config was loaded from ("<config>" when parsed from a string)."""
        return self._source

    def line(self, line_id: str) -> LineConfig:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise KeyError(line_id)

    def seats_on(self, line_id: str) -> list[SeatConfig]:
        """The seats wired to one line, in file order."""
        return [seat for seat in self.seats if seat.line == line_id]

    def roster(self) -> Roster:
        """The immutable core roster a sitting is opened with."""
        return Roster(
            council=self.council.to_core(),
            deputies=tuple(deputy.to_core() for deputy in self.deputies),
            seats=tuple(seat.to_core() for seat in self.seats),
            rules=self.rules.to_core(),
        )


# --------------------------------------------------------------------------- error formatting


def _toml_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), "date/time" if hasattr(value, "isoformat") else type(value).__name__)


def _got(value: object) -> str:
    return f"got {_toml_type(value)} {_toml_repr(value)}"


def _quoted_key(key: str) -> str:
    """A key that is not bare, quoted as TOML writes it, with no control character left raw."""
    quoted = json.dumps(key, ensure_ascii=False)
    return "".join(f"\\u{ord(char):04X}" if unshowable(char) else char for char in quoted)


def _key_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else _quoted_key(part)
            out += f".{name}" if out else name
    return out or "(top level)"


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    """The model class inside an annotation such as ``list[X]``, ``X | None`` or ``Annotated[X, ...]``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap_model(get_args(annotation)[0])
    if origin in (list, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _known_keys(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed in the table at ``loc`` inside ``model`` (for "did you mean")."""
    for part in loc:
        if model is None:
            return []
        if isinstance(part, str):
            field = model.model_fields.get(part)
            model = _unwrap_model(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _unknown_key(name: object, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.7)
    return f'unknown key (did you mean "{close[0]}"?)' if close else "unknown key"


def _describe(error: Any, model: type[BaseModel]) -> str:
    """A readable sentence for one pydantic error."""
    kind: str = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        loc = tuple(error["loc"])
        if loc[-1] in _SECTION_ORDER:
            return (
                f'unknown key; a top-level "{loc[-1]}" must come before the first [table] header '
                f"(after one, keys belong to that table), or be written as [{loc[-1]}] / [[{loc[-1]}]]"
            )
        return _unknown_key(loc[-1], _known_keys(model, loc[:-1]))
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    type_words = {
        "int_type": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "an array",
        "dict_type": "a table",
        "model_type": "a table",
        "model_attributes_type": "a table",
        "enum_type": "a string",
    }
    if kind in type_words:
        return f"must be {type_words[kind]}, {_got(value)}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("greater than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        word, name = bounds[kind]
        return f"must be {word} {ctx.get(name)}, got {_toml_repr(value)}"
    if kind in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}, got {_toml_repr(value)}"
    if kind == "string_too_short":
        return "must not be empty" if ctx.get("min_length") == 1 else error["msg"]
    if kind == "finite_number":
        return f"must be a finite number, got {_toml_repr(value)}"
    msg: str = error["msg"]
    return msg[:1].lower() + msg[1:] if msg else kind


# --------------------------------------------------------------------------- loading

_TABLES: dict[str, type[_Model]] = {
    "council": CouncilConfig,
    "rules": RulesConfig,
    "web": WebConfig,
    "store": StoreConfig,
    "signing": SigningConfig,
    "recording": RecordingConfig,
}
_ARRAYS: dict[str, type[_Model]] = {"deputies": DeputyConfig, "seats": SeatConfig, "lines": LineConfig}
_SECTION_ORDER = ("council", "lines", "seats", "deputies", "rules", "web", "store", "signing", "recording")


def _validate(model: type[_Model], value: object, prefix: tuple[str | int, ...], problems: list[_Problem]) -> Any:
    """``model.model_validate(value)``, or None with the errors appended to ``problems``."""
    if not isinstance(value, dict):
        problems.append((_key_path(prefix), f"must be a table, {_got(value)}"))
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            problems.append((_key_path(prefix + tuple(error["loc"])), _describe(error, model)))
        return None


def _raw_ids(items: list[Any], wanted: type) -> set[Any]:
    return {item["id"] for item in items if isinstance(item, dict) and type(item.get("id")) is wanted}


def _resolve_file(value: str, base_dir: Path) -> str:
    if not value or os.path.isabs(value):
        return value
    return os.path.normpath(base_dir / value)


def _resolve_store_url(url: str, base_dir: Path) -> str:
    match = _SQLITE_FILE.fullmatch(url)
    if not match:
        return url
    path, sep, query = match.group(2).partition("?")
    if path in ("", ":memory:") or path.startswith("file:") or os.path.isabs(path):
        return url
    return f"{match.group(1)}:///{_resolve_file(path, base_dir)}{sep}{query}"


def _check(data: dict[str, Any]) -> list[_Problem]:
    problems: list[_Problem] = []
    for key in data:
        if key not in _TABLES and key not in _ARRAYS:
            problems.append((_key_path([key]), _unknown_key(key, list(_SECTION_ORDER))))
    parsed: dict[str, Any] = {}
    valid_items: dict[str, list[tuple[int, Any]]] = {name: [] for name in _ARRAYS}
    complete = {name: True for name in _ARRAYS}
    for name in _SECTION_ORDER:
        if name in _ARRAYS:
            raw = data.get(name, [])
            if not isinstance(raw, list):
                problems.append((name, f"must be an array of tables ([[{name}]]), {_got(raw)}"))
                complete[name] = False
                continue
            for i, item in enumerate(raw):
                result = _validate(_ARRAYS[name], item, (name, i), problems)
                if result is None:
                    complete[name] = False
                else:
                    valid_items[name].append((i, result))
        elif name in data:
            parsed[name] = _validate(_TABLES[name], data[name], (name,), problems)
        elif name == "council":
            problems.append(("council", "required section [council] is missing"))
        else:
            parsed[name] = _TABLES[name]()

    def raw_list(name: str) -> list[Any]:
        raw = data.get(name, [])
        return raw if isinstance(raw, list) else []

    problems += _cross_check(
        parsed.get("council"),
        valid_items["deputies"],
        valid_items["seats"],
        valid_items["lines"],
        parsed.get("rules"),
        extra_seat_ids=_raw_ids(raw_list("seats"), int) if not complete["seats"] else (),
        extra_line_ids=_raw_ids(raw_list("lines"), str) if not complete["lines"] else (),
        deputies_complete=complete["deputies"],
        raw_composition=_raw_composition(data.get("council")),
    )
    return problems


def _raw_composition(council: object) -> int | None:
    """``composition`` of a [council] table that may have failed validation, if it is itself valid."""
    value = council.get("composition") if isinstance(council, dict) else None
    return value if type(value) is int and value >= 1 else None


def parse_config(text: str, path: str = "<config>") -> Config:
    """Validate config text; ``path`` names the file in messages and anchors relative paths."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POS.search(message)
        where = "TOML syntax"
        if match:
            where = f"line {match.group(1)}, column {match.group(2)}"
            message = message[: match.start()]
        raise ConfigError(path, [f"{path}: {where}: invalid TOML: {message}"]) from None

    problems = _check(data)
    if problems:
        raise ConfigError(path, [f"{path}: {key}: {what}" for key, what in problems])
    config = Config.model_validate(data)

    base_dir = Path(os.path.abspath(path)).parent
    web_key = config.web.secret_key_file
    config = config.model_copy(
        update={
            "store": config.store.model_copy(update={"url": _resolve_store_url(config.store.url, base_dir)}),
            "web": config.web.model_copy(
                update={"secret_key_file": _resolve_file(web_key, base_dir) if web_key else web_key}
            ),
            "signing": config.signing.model_copy(
                update={
                    "certificate": _resolve_file(config.signing.certificate, base_dir),
                    "key": _resolve_file(config.signing.key, base_dir),
                    "pkcs12": _resolve_file(config.signing.pkcs12, base_dir),
                }
            ),
            "recording": config.recording.model_copy(
                update={"directory": _resolve_file(config.recording.directory, base_dir)}
            ),
        }
    )
    config._source = path
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem."""
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except FileNotFoundError:
        raise ConfigError(name, [f"{name}: config file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(name, [f"{name}: is a directory, not a config file"]) from None
    except OSError as exc:
        raise ConfigError(name, [f"{name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, [f"{name}: not UTF-8 text (bad byte at offset {exc.start})"]) from None
    return parse_config(text, name)

"""config.toml: the council, its deputies, seats, RS-485 lines, rules, web, store and signing.

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
   the composition against the deputies list, seating rules, warning time against speech limits.

If anything is wrong, :class:`ConfigError` is raised carrying *all* problems, one per line, each as
``"{file}: {key}: {what is wrong}"`` where key is a dotted path such as ``deputies[3].cards[0]`` (list
indexes count from 0 in file order).  TOML syntax errors and unreadable files are reported the same way.

Relative paths in the file (an SQLite store URL, the web secret key file, the signing certificate and
key) are resolved against the directory of the config file, so the daemon behaves the same whatever
its working directory.  ``Config.roster()`` converts the validated file into the immutable core
structs (:class:`chamber.core.roster.Roster`) a sitting is opened with; ``Config.source`` is the file
it was loaded from.  The same cross-checks also run when a :class:`Config` is built directly with
``Config.model_validate``.
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
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from chamber.core.roster import Council, Deputy, Roster, Rules, Seat
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, SpeechKind, VoteSubject

__all__ = [
    "STANDARD_BAUD_RATES",
    "Config",
    "ConfigError",
    "CouncilConfig",
    "DeputyConfig",
    "LineConfig",
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

#: Serial baud rates a line may use.
STANDARD_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

_CORE_RULES = Rules()
_EDRPOU = re.compile(r"\d{8}")
_KATOTTG = re.compile(r"UA\d{17}")
_LINE_ID = re.compile(r"[A-Za-z0-9_.-]+")
_FRACTION = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
_HEX = re.compile(r"[0-9A-F]*")
_GATEWAY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_SCHEME = re.compile(r"(sqlite|postgresql)(\+[A-Za-z0-9_]+)?://")
_SQLITE_FILE = re.compile(r"(sqlite(?:\+[A-Za-z0-9_]+)?):///(.*)", re.DOTALL)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


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


# --------------------------------------------------------------------------- field validators


def _toml_repr(value: object) -> str:
    """A value as it would be written in TOML, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        text = "{...}" if value else "{}"
    elif isinstance(value, list):
        text = "[...]" if value else "[]"
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _non_blank(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _card_uid(value: str) -> str:
    uid = value.replace(":", "").replace(" ", "").upper()
    # 10 bytes is the longest ISO 14443 UID and what the console's CARD_UID registers hold
    if not _HEX.fullmatch(uid) or len(uid) % 2 or not 8 <= len(uid) <= 20:
        raise ValueError(
            f'card UID must be 4..10 bytes of hex (8..20 hex digits, e.g. "04A1B2C3"), got {_toml_repr(value)}'
        )
    return uid


def _baud(value: int) -> int:
    if value not in STANDARD_BAUD_RATES:
        rates = ", ".join(str(rate) for rate in STANDARD_BAUD_RATES)
        raise ValueError(f"must be a standard baud rate ({rates}), got {value}")
    return value


def _stopbits(value: int) -> int:
    if value not in (1, 2):
        raise ValueError(f"must be 1 or 2, got {value}")
    return value


NonBlank = Annotated[str, AfterValidator(_non_blank)]
CardUid = Annotated[str, AfterValidator(_card_uid)]
ModbusUnit = Annotated[int, Field(ge=1, le=247)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --------------------------------------------------------------------------- sections


class CouncilConfig(_Model):
    """``[council]``: the council and how its composition is counted."""

    name: NonBlank
    edrpou: str = ""  # ЄДРПОУ code of the council as a legal entity: 8 digits
    katottg: str = ""  # КАТОТТГ code of the territory: "UA" + 17 digits
    convocation: int = Field(default=8, ge=1)
    composition: int = Field(ge=1)  # загальний склад ради
    head_votes: bool = True
    head_in_composition: bool = True

    @field_validator("edrpou")
    @classmethod
    def _check_edrpou(cls, value: str) -> str:
        if value and not _EDRPOU.fullmatch(value):
            raise ValueError(f"ЄДРПОУ code must be 8 digits, got {_toml_repr(value)}")
        return value

    @field_validator("katottg")
    @classmethod
    def _check_katottg(cls, value: str) -> str:
        if value and not _KATOTTG.fullmatch(value):
            raise ValueError(
                f'КАТОТТГ code must be "UA" followed by 17 digits (e.g. "UA18040470010034570"), got {_toml_repr(value)}'
            )
        return value

    def to_core(self) -> Council:
        return Council(
            name=self.name,
            edrpou=self.edrpou,
            katottg=self.katottg,
            convocation=self.convocation,
            composition=self.composition,
            head_votes=self.head_votes,
            head_in_composition=self.head_in_composition,
        )


class DeputyConfig(_Model):
    """One ``[[deputies]]`` entry."""

    id: int = Field(ge=1)
    full_name: NonBlank
    faction: str = ""
    cards: list[CardUid] = []  # normalized: upper-case hex without separators
    seat: int | None = Field(default=None, ge=1)
    open_data_id: str = ""
    role: Role = Field(default=Role.DEPUTY, strict=False)

    def to_core(self) -> Deputy:
        return Deputy(
            id=self.id,
            full_name=self.full_name,
            faction=self.faction,
            cards=tuple(self.cards),
            seat=self.seat,
            open_data_id=self.open_data_id,
            role=self.role,
        )


class SeatConfig(_Model):
    """One ``[[seats]]`` entry: a seat console (and its microphone unit) on an RS-485 line."""

    id: int = Field(ge=1)
    line: NonBlank
    unit: ModbusUnit  # Modbus unit id of the seat console
    mic_unit: ModbusUnit | None = None  # separate microphone unit; None: the console itself
    x: float = Field(default=0.0, allow_inf_nan=False)
    y: float = Field(default=0.0, allow_inf_nan=False)
    presence_sensor: bool = False
    chair: bool = False
    # "native": a console implementing docs/console-register-map.md sections 1-7;
    # "generic": an off-the-shelf DI/DO module (section 8): keys, card switch and presence on discrete
    # inputs, LEDs and the microphone relay on coils.  No card UID: needs assigned seating.
    profile: Literal["native", "generic"] = "native"

    @property
    def generic(self) -> bool:
        return self.profile == "generic"

    @property
    def microphone_unit(self) -> int:
        """The unit id that switches this seat's microphone."""
        return self.unit if self.mic_unit is None else self.mic_unit

    def to_core(self) -> Seat:
        return Seat(id=self.id, presence_sensor=self.presence_sensor, chair=self.chair)


class LineConfig(_Model):
    """One ``[[lines]]`` entry: an RS-485 bus, on a local serial port or an RTU-over-TCP gateway."""

    id: str
    port: str | None = None
    gateway: str | None = None
    baud: Annotated[int, AfterValidator(_baud)] = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Annotated[int, AfterValidator(_stopbits)] = 1
    timeout_ms: int = Field(default=50, ge=5, le=5000)
    retries: int = Field(default=2, ge=0, le=10)
    low_latency: bool = True

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _LINE_ID.fullmatch(value):
            raise ValueError(f"line id must be letters, digits, '_', '-' or '.', got {_toml_repr(value)}")
        return value

    @field_validator("port")
    @classmethod
    def _check_port(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("/") or re.fullmatch(r"COM\d+", value)):
            raise ValueError(
                f"must be a serial device path such as /dev/ttyUSB0 or /dev/serial/by-id/..., got {_toml_repr(value)}"
            )
        return value

    @field_validator("gateway")
    @classmethod
    def _check_gateway(cls, value: str | None) -> str | None:
        if value is not None:
            match = _GATEWAY.fullmatch(value)
            if not match or not 1 <= int(match.group(2)) <= 65535:
                raise ValueError(
                    f'must be "host:port" of an RTU-over-TCP gateway, e.g. "192.168.10.20:4001", '
                    f"got {_toml_repr(value)}"
                )
        return value

    @model_validator(mode="after")
    def _port_or_gateway(self) -> Self:
        if (self.port is None) == (self.gateway is None):
            which = "both are given" if self.port is not None else "neither is given"
            raise ValueError(f'give exactly one of "port" (serial device) or "gateway" (host:port); {which}')
        return self

    @property
    def gateway_address(self) -> tuple[str, int]:
        """(host, port) of the gateway; only for gateway lines."""
        if self.gateway is None:
            raise ValueError(f"line {self.id!r} is a serial port, not a gateway")
        host, _, port = self.gateway.rpartition(":")
        return host.strip("[]"), int(port)


class ThresholdConfig(_Model):
    """A threshold, written inline: ``{ fraction = "1/2", base = "composition", strict = true }``."""

    fraction: str
    base: Base = Field(default=Base.COMPOSITION, strict=False)
    strict: bool = True  # true: "more than"; false: "at least"

    @field_validator("fraction")
    @classmethod
    def _check_fraction(cls, value: str) -> str:
        match = _FRACTION.fullmatch(value)
        if not match or not 0 < int(match.group(1)) <= int(match.group(2)):
            raise ValueError(
                f'must be a fraction "p/q" with 0 < p <= q, such as "1/2" or "2/3", got {_toml_repr(value)}'
            )
        return f"{int(match.group(1))}/{int(match.group(2))}"

    @classmethod
    def from_core(cls, threshold: Threshold) -> ThresholdConfig:
        return cls(fraction=f"{threshold.num}/{threshold.den}", base=threshold.base, strict=threshold.strict)

    def to_core(self) -> Threshold:
        num, den = self.fraction.split("/")
        return Threshold(num=int(num), den=int(den), base=self.base, strict=self.strict)


def _default_threshold(subject: VoteSubject) -> ThresholdConfig:
    return ThresholdConfig.from_core(_CORE_RULES.thresholds[subject])


class ThresholdsConfig(_Model):
    """``[rules.thresholds]``: the threshold a vote needs, per vote subject."""

    basis: ThresholdConfig = _default_threshold(VoteSubject.BASIS)
    whole: ThresholdConfig = _default_threshold(VoteSubject.WHOLE)
    procedural: ThresholdConfig = _default_threshold(VoteSubject.PROCEDURAL)
    amendment: ThresholdConfig = _default_threshold(VoteSubject.AMENDMENT)

    def to_core(self) -> dict[VoteSubject, Threshold]:
        return {subject: getattr(self, subject.value).to_core() for subject in VoteSubject}


def _speech_limit(kind: SpeechKind) -> Any:
    return Field(default=_CORE_RULES.speech_limits_s[kind], ge=10, le=7200)


class SpeechLimitsConfig(_Model):
    """``[rules.speech_limits_s]``: seconds per speech kind."""

    report: int = _speech_limit(SpeechKind.REPORT)
    speech: int = _speech_limit(SpeechKind.SPEECH)
    reply: int = _speech_limit(SpeechKind.REPLY)
    point_of_order: int = _speech_limit(SpeechKind.POINT_OF_ORDER)

    def to_core(self) -> dict[SpeechKind, int]:
        return {kind: getattr(self, kind.value) for kind in SpeechKind}


class RulesConfig(_Model):
    """``[rules]``: the council's регламент as data.  Defaults are those of chamber.core.roster.Rules."""

    quorum: ThresholdConfig = ThresholdConfig.from_core(_CORE_RULES.quorum)
    thresholds: ThresholdsConfig = ThresholdsConfig()
    vote_duration_s: int = Field(default=_CORE_RULES.vote_duration_s, ge=5, le=600)
    allow_change: bool = _CORE_RULES.allow_change
    speech_limits_s: SpeechLimitsConfig = SpeechLimitsConfig()
    warning_s: int = Field(default=_CORE_RULES.warning_s, ge=0, le=7200)
    auto_mic_off: bool = _CORE_RULES.auto_mic_off
    max_open_mics: int = Field(default=_CORE_RULES.max_open_mics, ge=1, le=16)
    seating: Seating = Field(default=_CORE_RULES.seating, strict=False)
    presence_required: bool = _CORE_RULES.presence_required

    def to_core(self) -> Rules:
        return Rules(
            quorum=self.quorum.to_core(),
            thresholds=self.thresholds.to_core(),
            vote_duration_s=self.vote_duration_s,
            allow_change=self.allow_change,
            speech_limits_s=self.speech_limits_s.to_core(),
            warning_s=self.warning_s,
            auto_mic_off=self.auto_mic_off,
            max_open_mics=self.max_open_mics,
            seating=self.seating,
            presence_required=self.presence_required,
        )


class WebConfig(_Model):
    """``[web]``: where the console / hall screen web server listens."""

    host: NonBlank = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key_file: str | None = None  # relative paths: against the config file's directory


class StoreConfig(_Model):
    """``[store]``: the journal database, as an SQLAlchemy URL (SQLite or PostgreSQL)."""

    url: str = "sqlite:///var/chamber.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not _URL_SCHEME.match(value):
            raise ValueError(
                'must be an SQLAlchemy URL such as "sqlite:///var/chamber.db" or '
                f'"postgresql+psycopg://chamber@localhost/chamber", got {_toml_repr(value)}'
            )
        return value


class SigningConfig(_Model):
    """``[signing]``: the certificate protocols are signed with; empty: signing is disabled."""

    certificate: str = ""
    key: str = ""
    passphrase_env: str = ""  # name of the environment variable holding the key's passphrase

    @field_validator("passphrase_env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        if value and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"must be an environment variable name, got {_toml_repr(value)}")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if bool(self.certificate) != bool(self.key):
            raise ValueError('give both "certificate" and "key", or neither (signing disabled)')
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.certificate)


class Config(_Model):
    """The whole config file, validated and cross-checked."""

    council: CouncilConfig
    deputies: list[DeputyConfig] = []
    seats: list[SeatConfig] = []
    lines: list[LineConfig] = []
    rules: RulesConfig = RulesConfig()
    web: WebConfig = WebConfig()
    store: StoreConfig = StoreConfig()
    signing: SigningConfig = SigningConfig()

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


# --------------------------------------------------------------------------- cross-checks

_Problem = tuple[str, str]


def _who(index: int, deputy: DeputyConfig) -> str:
    return f"deputies[{index}] (id {deputy.id}, {deputy.full_name})"


def _cross_check(
    council: CouncilConfig | None,
    deputies: list[tuple[int, DeputyConfig]],
    seats: list[tuple[int, SeatConfig]],
    lines: list[tuple[int, LineConfig]],
    rules: RulesConfig | None,
    *,
    extra_seat_ids: Iterable[int] = (),
    extra_line_ids: Iterable[str] = (),
    deputies_complete: bool = True,
) -> list[_Problem]:
    """Checks across items.  ``extra_*`` are ids of items that failed validation on their own:
    they count as defined so that one broken item does not cause a cascade of "not defined" errors.
    """
    problems: list[_Problem] = []

    line_ids: dict[str, int] = {}
    for i, line in lines:
        if line.id in line_ids:
            problems.append((f"lines[{i}].id", f'line "{line.id}" is defined twice (also lines[{line_ids[line.id]}])'))
        else:
            line_ids[line.id] = i
    known_lines = set(line_ids) | set(extra_line_ids)

    seat_ids: dict[int, int] = {}
    units: dict[tuple[str, int], tuple[int, SeatConfig, str]] = {}
    chair: tuple[int, SeatConfig] | None = None
    for i, seat in seats:
        if seat.id in seat_ids:
            problems.append((f"seats[{i}].id", f"seat {seat.id} is defined twice (also seats[{seat_ids[seat.id]}])"))
        else:
            seat_ids[seat.id] = i
        if seat.line not in known_lines:
            defined = ", ".join(f'"{name}"' for name in sorted(known_lines)) or "none"
            problems.append((f"seats[{i}].line", f'line "{seat.line}" is not defined (defined lines: {defined})'))
        if seat.chair:
            if chair is not None:
                problems.append(
                    (
                        f"seats[{i}].chair",
                        f"only one seat can be the chair; seat {chair[1].id} (seats[{chair[0]}]) already is",
                    )
                )
            else:
                chair = (i, seat)
    # Console units first, then separate microphone units: a microphone unit that collides with a
    # console is reported on the microphone, whichever seat comes first in the file.
    claims = [(i, seat, "unit", seat.unit, "console") for i, seat in seats]
    claims += [
        (i, seat, "mic_unit", seat.mic_unit, "microphone")
        for i, seat in seats
        if seat.mic_unit is not None and seat.mic_unit != seat.unit
    ]
    for i, seat, field, unit, role in claims:
        other = units.get((seat.line, unit))
        if other is not None:
            j, other_seat, other_role = other
            problems.append(
                (
                    f"seats[{i}].{field}",
                    f'{role} unit {unit} on line "{seat.line}" is already used by seat {other_seat.id} '
                    f"(seats[{j}], {other_role} unit); seat {seat.id} and seat {other_seat.id} collide",
                )
            )
        else:
            units[(seat.line, unit)] = (i, seat, role)
    known_seats = set(seat_ids) | set(extra_seat_ids)

    deputy_ids: dict[int, int] = {}
    cards: dict[str, tuple[int, DeputyConfig]] = {}
    open_ids: dict[str, tuple[int, DeputyConfig]] = {}
    seated: dict[int, tuple[int, DeputyConfig]] = {}
    head: tuple[int, DeputyConfig] | None = None
    seating = rules.seating if rules is not None else _CORE_RULES.seating
    for i, deputy in deputies:
        first_at = deputy_ids.get(deputy.id)
        if first_at is not None:
            problems.append(
                (
                    f"deputies[{i}].id",
                    f"deputy id {deputy.id} is used twice (also deputies[{first_at}])",
                )
            )
        else:
            deputy_ids[deputy.id] = i
        for k, card in enumerate(deputy.cards):
            holder = cards.get(card)
            if holder is None:
                cards[card] = (i, deputy)
            elif holder[0] == i:
                problems.append((f"deputies[{i}].cards[{k}]", f"card {card} is listed twice for this deputy"))
            else:
                problems.append(
                    (
                        f"deputies[{i}].cards[{k}]",
                        f"card {card} is given to two deputies: {_who(*holder)} and {_who(i, deputy)}",
                    )
                )
        if deputy.open_data_id:
            same_id = open_ids.get(deputy.open_data_id)
            if same_id is not None:
                problems.append(
                    (
                        f"deputies[{i}].open_data_id",
                        f'open_data_id "{deputy.open_data_id}" is used by two deputies: '
                        f"{_who(*same_id)} and {_who(i, deputy)}",
                    )
                )
            else:
                open_ids[deputy.open_data_id] = (i, deputy)
        if deputy.role is Role.HEAD:
            if head is not None:
                problems.append(
                    (
                        f"deputies[{i}].role",
                        f'only one deputy can be "head"; {_who(*head)} already is',
                    )
                )
            else:
                head = (i, deputy)
        if deputy.seat is not None:
            if deputy.seat not in known_seats:
                problems.append((f"deputies[{i}].seat", f"seat {deputy.seat} is not defined in [[seats]]"))
            sitter = seated.get(deputy.seat)
            if sitter is not None:
                problems.append(
                    (
                        f"deputies[{i}].seat",
                        f"seat {deputy.seat} is assigned to two deputies: {_who(*sitter)} and {_who(i, deputy)}",
                    )
                )
            else:
                seated[deputy.seat] = (i, deputy)
        elif seating is Seating.ASSIGNED and deputy.role is Role.DEPUTY:
            problems.append(
                (
                    f"deputies[{i}].seat",
                    f'missing: rules.seating is "assigned", so every deputy needs a seat ({_who(i, deputy)})',
                )
            )

    problems += _check_generic_seats(seats, seated, rules, deputies_complete)

    if council is not None and deputies_complete:
        members = sum(1 for _, deputy in deputies if deputy.role is Role.DEPUTY)
        heads = 1 if head is not None and council.head_in_composition else 0
        if council.composition != members + heads:
            if head is None:
                how = "and no head"
            elif council.head_in_composition:
                how = "+ 1 head (head_in_composition = true)"
            else:
                how = "(the head is not counted: head_in_composition = false)"
            problems.append(
                (
                    "council.composition",
                    f"composition is {council.composition} but [[deputies]] lists {members} "
                    f"{'deputy' if members == 1 else 'deputies'} {how}, "
                    f"which makes {members + heads}",
                )
            )

    if rules is not None:
        limits = rules.speech_limits_s.to_core()
        shortest = min(limits, key=lambda kind: limits[kind])
        if rules.warning_s >= limits[shortest]:
            problems.append(
                (
                    "rules.warning_s",
                    f"{rules.warning_s} must be smaller than the shortest speech limit "
                    f"(rules.speech_limits_s.{shortest.value} = {limits[shortest]})",
                )
            )
        if rules.quorum.base is not Base.COMPOSITION:
            problems.append(
                (
                    "rules.quorum.base",
                    f'quorum is counted of the composition (art. 46): base must be "composition", '
                    f'got "{rules.quorum.base.value}"',
                )
            )
    return problems


def _check_generic_seats(
    seats: list[tuple[int, SeatConfig]],
    seated: dict[int, tuple[int, DeputyConfig]],
    rules: RulesConfig | None,
    deputies_complete: bool,
) -> list[_Problem]:
    """A generic module (section 8 of the register map) reports "a card is in", never a UID: the
    deputy is taken to be the one assigned to the seat, so assigned seating, a deputy at the seat
    with a card, and no separate microphone unit (the module's coil 6 is the microphone relay)."""
    generic = [(i, seat) for i, seat in seats if seat.generic]
    if not generic:
        return []
    problems: list[_Problem] = []
    seating = rules.seating if rules is not None else _CORE_RULES.seating
    if seating is not Seating.ASSIGNED:
        listed = ", ".join(f"seats[{i}] (seat {seat.id})" for i, seat in generic[:5])
        more = f" and {len(generic) - 5} more" if len(generic) > 5 else ""
        problems.append(
            (
                "rules.seating",
                f'must be "assigned" when a seat has profile = "generic" (a generic module reports no card '
                f'UID, so the deputy is taken to be the one assigned to the seat), got "{seating.value}"; '
                f"generic: {listed}{more}",
            )
        )
    for i, seat in generic:
        if seat.mic_unit is not None and seat.mic_unit != seat.unit:
            problems.append(
                (
                    f"seats[{i}].mic_unit",
                    f'a seat with profile = "generic" switches its microphone with the module\'s coil 6; '
                    f"a separate microphone unit ({seat.mic_unit}) is not supported",
                )
            )
        if seating is not Seating.ASSIGNED:
            continue
        sitter = seated.get(seat.id)
        if sitter is None:
            if deputies_complete:  # a broken deputy entry may be the one assigned here
                problems.append(
                    (
                        f"seats[{i}].profile",
                        f'profile = "generic" needs a deputy assigned to seat {seat.id} (a [[deputies]] entry '
                        f"with seat = {seat.id}): the module reports no card UID",
                    )
                )
        elif not sitter[1].cards:
            problems.append(
                (
                    f"deputies[{sitter[0]}].cards",
                    f'missing: seat {seat.id} is a generic module (seats[{i}].profile = "generic"), so '
                    f"{_who(*sitter)} assigned there needs at least one card",
                )
            )
    return problems


# --------------------------------------------------------------------------- error formatting


def _toml_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), "date/time" if hasattr(value, "isoformat") else type(value).__name__)


def _got(value: object) -> str:
    return f"got {_toml_type(value)} {_toml_repr(value)}"


def _key_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
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
}
_ARRAYS: dict[str, type[_Model]] = {"deputies": DeputyConfig, "seats": SeatConfig, "lines": LineConfig}
_SECTION_ORDER = ("council", "lines", "seats", "deputies", "rules", "web", "store", "signing")


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
    )
    return problems


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
                }
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

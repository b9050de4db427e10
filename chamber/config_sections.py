"""The section models of config.toml: ``[council]``, ``[[deputies]]``, ``[[seats]]``, ``[[lines]]``,
``[rules]`` (with its thresholds and speech limits), ``[web]``, ``[store]``, ``[signing]`` and
``[recording]``.

How it works
------------
Each section, and each item of an array of tables, is a frozen pydantic model with strict types and
``extra="forbid"``, so that an unknown key, a wrong type or a value out of range is an error of that one
section or item.  Field validators (card UIDs, baud rates, ЄДРПОУ/КАТОТТГ codes, line ids, serial ports,
gateways, threshold fractions, store URLs, environment variable names) raise ``ValueError`` with the
sentence that ends up after ``"{file}: {key}: "`` in :class:`chamber.config.ConfigError`; values are
quoted the way they are written in TOML (:func:`_toml_repr`), control characters escaped so that a
message never carries one to the terminal.  Digits are matched as ``[0-9]``, never ``\\d``, which
also takes the digits of other scripts.  Text that is shown or printed (names, factions, open-data ids,
line names, paths, URLs) must be printable and on one line (:func:`chamber.core.roster.text_problem`).

Defaults of ``[rules]`` are taken from :class:`chamber.core.roster.Rules` (``_CORE_RULES``), and every
model that has a core counterpart converts to it with ``to_core()`` (``ThresholdConfig.from_core`` goes
the other way, for those defaults).  The models validate one section at a time; checks across sections
live in :mod:`chamber.config_checks`, and the whole file (:class:`chamber.config.Config`) in
:mod:`chamber.config`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chamber.core.roster import Council, Deputy, Rules, Seat, text_problem, unshowable
from chamber.core.threshold import Threshold
from chamber.core.values import Base, Role, Seating, SpeechKind, VoteSubject

__all__ = [
    "STANDARD_BAUD_RATES",
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
]

#: Serial baud rates a line may use.
STANDARD_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)

_CORE_RULES = Rules()
# Digits are written [0-9], never \d: in Python \d (and str.isdigit) also match "٣", "３" or "१".
_EDRPOU = re.compile(r"[0-9]{8}")
_KATOTTG = re.compile(r"UA[0-9]{17}")
_LINE_ID = re.compile(r"[A-Za-z0-9_.-]+")
_FRACTION = re.compile(r"[ \t]*([0-9]{1,4})[ \t]*/[ \t]*([0-9]{1,4})[ \t]*")
_MAX_DENOMINATOR = 1000
_HEX = re.compile(r"[0-9A-F]*")
_GATEWAY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):([0-9]{1,5})")
_COM_PORT = re.compile(r"COM[0-9]{1,3}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_URL_SCHEME = re.compile(r"(sqlite|postgresql)(\+[A-Za-z0-9_]+)?://")
# redis[s]://[[user]:password@]host[:port][/db]: a host name, an IPv4 address or a bracketed IPv6 one
_REDIS_URL = re.compile(
    r"rediss?://(?:[^@/\s]*@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>[0-9]{1,5}))?(?:/[0-9]{1,2})?/?"
)


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
    # control characters, line separators and bidi overrides as TOML escapes: a message never carries them
    text = "".join(f"\\u{ord(char):04X}" if unshowable(char) else char for char in text)
    return text if len(text) <= 60 else text[:57] + "..."


def _foreign_digit(value: str) -> str:
    """``"; U+0663 (ARABIC-INDIC DIGIT THREE) at character 4 is not a digit 0-9"`` for the first digit
    of another script in ``value`` (Python's \\d and int() accept them), or ""."""
    for index, char in enumerate(value):
        if not char.isascii() and char.isdigit():
            name = unicodedata.name(char, "a digit")
            return f"; U+{ord(char):04X} ({name}) at character {index + 1} is not a digit 0-9"
    return ""


def _printable(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"must be plain printable text on one line; {problem} is not allowed, got {_toml_repr(value)}")
    return value


def _non_blank(value: str) -> str:
    value = _printable(value).strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _card_uid(value: str) -> str:
    uid = value.replace(":", "").replace(" ", "").upper()
    # 10 bytes is the longest ISO 14443 UID and what the console's CARD_UID registers hold; ASCII is
    # checked before upper-casing would turn "ﬀ" (U+FB00) into "FF"
    if not value.isascii() or not _HEX.fullmatch(uid) or len(uid) % 2 or not 8 <= len(uid) <= 20:
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


NonBlank = Annotated[str, AfterValidator(_non_blank)]  # printable, one line, not empty
Text = Annotated[str, AfterValidator(_printable)]  # printable, one line, may be empty
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
    place: Text = ""  # where the sittings are held, as printed in the protocol's header
    convocation: int = Field(default=8, ge=1)
    composition: int = Field(ge=1)  # загальний склад ради
    head_votes: bool = True
    head_in_composition: bool = True

    @field_validator("edrpou")
    @classmethod
    def _check_edrpou(cls, value: str) -> str:
        if value and not _EDRPOU.fullmatch(value):
            raise ValueError(f"ЄДРПОУ code must be 8 digits, got {_toml_repr(value)}{_foreign_digit(value)}")
        return value

    @field_validator("katottg")
    @classmethod
    def _check_katottg(cls, value: str) -> str:
        if value and not _KATOTTG.fullmatch(value):
            raise ValueError(
                f'КАТОТТГ code must be "UA" followed by 17 digits (e.g. "UA18040470010034570"), '
                f"got {_toml_repr(value)}{_foreign_digit(value)}"
            )
        return value

    def to_core(self) -> Council:
        return Council(
            name=self.name,
            edrpou=self.edrpou,
            katottg=self.katottg,
            place=self.place,
            convocation=self.convocation,
            composition=self.composition,
            head_votes=self.head_votes,
            head_in_composition=self.head_in_composition,
        )


class DeputyConfig(_Model):
    """One ``[[deputies]]`` entry."""

    id: int = Field(ge=1)
    full_name: NonBlank
    faction: Text = ""
    cards: list[CardUid] = []  # normalized: upper-case hex without separators
    seat: int | None = Field(default=None, ge=1)
    open_data_id: Text = ""
    role: Role = Field(default=Role.DEPUTY, strict=False)
    # For the pages' words only («Утрималася», «Відсутня»): None lets display.state infer it from the
    # patronymic; the core and the journal never need it, so to_core leaves it out.
    gender: Literal["f", "m"] | None = None

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
    port: Text | None = None
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
        if value is not None and not (value.startswith("/") or _COM_PORT.fullmatch(value)):
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
        if not match or not 0 < int(match.group(1)) <= int(match.group(2)) <= _MAX_DENOMINATOR:
            raise ValueError(
                f'must be a fraction "p/q" with 0 < p <= q <= {_MAX_DENOMINATOR}, such as "1/2" or "2/3", '
                f"got {_toml_repr(value)}{_foreign_digit(value)}"
            )
        return f"{int(match.group(1))}/{int(match.group(2))}"

    def as_toml(self) -> str:
        """The threshold as an inline table, e.g. ``{ fraction = "1/2", base = "composition", strict = true }``."""
        strict = "true" if self.strict else "false"
        return f'{{ fraction = "{self.fraction}", base = "{self.base.value}", strict = {strict} }}'

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
    secret_key_file: Text | None = None  # relative paths: against the config file's directory
    # Scale-out (display/scaleout.py): the Redis the controller publishes states through and takes
    # commands from, and `chamber web` processes serve the pages from; None: one process serves all.
    message_queue: Text | None = None

    @field_validator("message_queue")
    @classmethod
    def _check_message_queue(cls, value: str | None) -> str | None:
        if value is None:
            return None
        example = 'a Redis URL such as "redis://127.0.0.1:6379/0" (rediss:// for TLS)'
        match = _REDIS_URL.fullmatch(value)
        if not match:
            raise ValueError(f"must be {example}, got {_toml_repr(value)}")
        port = match.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            raise ValueError(f"the port must be 1 … 65535, got {_toml_repr(value)}")
        return value

    @model_validator(mode="after")
    def _queue_needs_key(self) -> Self:
        if self.message_queue is not None and not self.secret_key_file:
            raise ValueError(
                "message_queue needs secret_key_file: the controller and every web process must share the key "
                "that signs log-in sessions and console commands"
            )
        return self


class StoreConfig(_Model):
    """``[store]``: the journal database, as an SQLAlchemy URL (SQLite or PostgreSQL)."""

    url: Text = "sqlite:///var/chamber.db"

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not _URL_SCHEME.match(value):
            raise ValueError(
                'must be an SQLAlchemy URL such as "sqlite:///var/chamber.db" or '
                f'"postgresql+psycopg://chamber@localhost/chamber", got {_toml_repr(value)}'
            )
        scheme = value.split(":", 1)[0]
        # the drivers installed with the project: SQLite's built into Python, psycopg 3 for PostgreSQL
        installed = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
        if scheme not in installed:
            raise ValueError(
                f"{scheme}:// needs a database driver this installation does not have; use one of "
                f"{', '.join(s + '://' for s in installed)}"
            )
        return value


class SigningConfig(_Model):
    """``[signing]``: the certificate protocols are signed with, as a PEM/DER certificate and key or as
    one PKCS#12 file; empty: signing is disabled.  protocol_export.keys loads them."""

    certificate: Text = ""
    key: Text = ""
    pkcs12: Text = ""  # a .p12/.pfx file holding both (how trust service providers hand keys out)
    passphrase_env: str = ""  # name of the environment variable holding the key's passphrase

    @field_validator("passphrase_env")
    @classmethod
    def _check_env(cls, value: str) -> str:
        if value and not _ENV_NAME.fullmatch(value):
            raise ValueError(f"must be an environment variable name, got {_toml_repr(value)}")
        return value

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if self.pkcs12 and (self.certificate or self.key):
            raise ValueError('give either "pkcs12" or "certificate" and "key", not both')
        if bool(self.certificate) != bool(self.key):
            raise ValueError('give both "certificate" and "key", or neither (signing disabled)')
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.certificate or self.pkcs12)


# the sample rates Ogg Opus takes (libsndfile refuses any other)
OPUS_SAMPLERATES = (8000, 12000, 16000, 24000, 48000)


class RecordingConfig(_Model):
    """``[recording]``: one audio file per speech, cut by the speech log from the hall mixer's line out
    (protocol_export.recording); off unless ``enabled``."""

    enabled: bool = False
    source: Literal["alsa", "generated"] = "alsa"  # generated: a test tone, to try it without a sound card
    device: NonBlank = "default"  # the ALSA device: "default", "hw:1,0" or part of its name
    format: Literal["opus", "vorbis", "flac"] = "opus"
    samplerate: int = Field(default=48000, ge=8000, le=192000)
    channels: int = Field(default=1, ge=1, le=2)
    pre_roll_s: float = Field(default=0.5, ge=0, le=5)  # sound kept from before the microphone came on
    directory: NonBlank = "var/recordings"  # relative paths: against the config file's directory

    @field_validator("samplerate")
    @classmethod
    def _rate_fits_format(cls, value: int, info: ValidationInfo) -> int:
        if info.data.get("format") == "opus" and value not in OPUS_SAMPLERATES:
            rates = ", ".join(map(str, OPUS_SAMPLERATES[:-1])) + f" or {OPUS_SAMPLERATES[-1]}"
            raise ValueError(
                f'format "opus" takes a sample rate of {rates} Hz, got {value} (ALSA converts the device\'s rate; '
                'or choose format "vorbis" or "flac")'
            )
        return value

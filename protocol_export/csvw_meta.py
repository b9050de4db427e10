"""The Resolution 835 table schemas as strict CSVW metadata, and the checks of a folder of CSVs.

The schema files (``schemas/ua-open-data/NAME/schema.json``, vendored unchanged from
shared/standards) are CSVW-like but not CSVW metadata a validator accepts as they are: ``context``
instead of ``@context``, no ``url``, ``title``/``description`` where CSVW has ``titles`` and
``dc:description``, the datatype ``anyURL`` (xsd has ``anyURI``), ``primaryKey`` beside
``tableSchema`` instead of in it, and in voteEvents a column named ``"votingAgainst\\n"`` (schema.csv
says ``votingAgainst``).  ``table_spec`` reads a file as it is and ``csvw_metadata`` writes the
mechanical translation, one table group for every table written, with these decisions:

* names are stripped of surrounding white space (the voteEvents newline; a test checks that then
  schema.json and schema.csv agree column by column);
* a value set is read from the column's own description — a string column whose description lists
  two or more values in «“…”» quotes after a colon («Голос: “За”, “Проти”, …») — and becomes the
  datatype's ``format``, a regular expression of exactly those values;
* ``primaryKey`` moves into the table schema.  For ``vote`` and ``votings`` the declared key
  (``uid``, ``motionUid``) cannot be unique — their rows are one per deputy per vote (motion), as
  their descriptions say — so their key is the pair with the voter (``uid, voterUid`` and
  ``motionUid, voterId``);
* the references the descriptions state in words («атрибут uid ресурсу motions») become foreign
  keys (``REFERENCES``), so referential integrity is checked too;
* the dialect is CSVW's default, which is what the tables are written in: UTF-8 (no byte-order mark),
  comma, double quotes doubled inside quoted cells, a header row, CRLF line ends.

``check_folder`` validates written tables twice, and says which check found what:

* ``csvw:`` — the ``csvw`` package (the CSVW implementation of the CLDF project, a maintained
  library) reading the folder's ``csv-metadata.json``: required cells, datatypes, value sets,
  primary keys and foreign keys;
* ``schema:`` — a strict check driven by the schema files themselves, for what ``csvw`` 4.1 accepts
  too readily: it matches the header to columns loosely (order and spelling are not enforced), it
  takes ``2023-04-09T10:00`` as a ``date``, ``2023-04-09`` as a ``dateTime`` and ``30.0`` as an
  ``integer``, and any text as an ``anyURI``.  Here the header must
  be the schema's names in the schema's order, every row as long as the header, dates ``yyyy-mm-dd``,
  date-times with seconds and a zone, integers whole numbers, URLs without white space and, when
  absolute, http(s) as the schemas ask, and the file UTF-8 without a byte-order mark.
  The folder's ``csv-metadata.json`` must also be exactly what the vendored schemas give, so that a
  hand-loosened copy cannot make the first check pass.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SCHEMAS = Path(__file__).resolve().parent / "schemas"
UA_OPEN_DATA = SCHEMAS / "ua-open-data"
METADATA_NAME = "csv-metadata.json"

#: The tables, in the order they are written: the pair councils publish, then the extension.
TABLES = ("motions2", "votings", "convocations", "sessions", "motions", "voteEvents", "vote")

#: The schemas' datatypes in CSVW's words.
DATATYPES = {"string": "string", "integer": "integer", "date": "date", "dateTime": "dateTime", "anyURL": "anyURI"}

#: Keys of the tables whose declared key cannot be unique (see the module docstring).
KEY_FIX: dict[str, tuple[str, ...]] = {"vote": ("uid", "voterUid"), "votings": ("motionUid", "voterId")}

#: (table, column) -> (table, column) it refers to, as the columns' descriptions say.
REFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("votings", "motionUid"): ("motions2", "uid"),
    ("sessions", "convocationUid"): ("convocations", "uid"),
    ("motions", "sessionUid"): ("sessions", "uid"),
    ("voteEvents", "motionUid"): ("motions", "uid"),
    ("vote", "uid"): ("voteEvents", "uid"),
}

_QUOTED = re.compile(r"“([^”]+)”")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    title: str
    description: str
    datatype: str  # as the schema file says it ("anyURL")
    required: bool
    values: tuple[str, ...]  # the value set from the description; () when the column has none


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def value_set(datatype: str, description: str) -> tuple[str, ...]:
    """The values a string column's description enumerates after a colon, or () (see the docstring)."""
    if datatype != "string" or ":" not in description:
        return ()
    values = tuple(_QUOTED.findall(description.split(":", 1)[1]))
    return values if len(values) >= 2 else ()


def table_spec(name: str, root: Path = UA_OPEN_DATA) -> TableSpec:
    raw = json.loads((root / name / "schema.json").read_text(encoding="utf-8"))
    columns = tuple(
        ColumnSpec(
            name=col["name"].strip(),
            title=col["title"].strip(),
            description=col["description"].strip(),
            datatype=col["datatype"],
            required=bool(col["required"]),
            values=value_set(col["datatype"], col["description"]),
        )
        for col in raw["tableSchema"]["columns"]
    )
    declared = raw.get("primaryKey") or raw["tableSchema"].get("primaryKey")
    key = KEY_FIX.get(name) or ((declared,) if isinstance(declared, str) else tuple(declared or ()))
    return TableSpec(name=name, columns=columns, primary_key=key)


def schema_csv_rows(name: str, root: Path = UA_OPEN_DATA) -> list[dict[str, str]]:
    """schema.csv of table ``name`` as rows (name, title, description, datatype, required)."""
    with (root / name / "schema.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _regex_literal(text: str) -> str:
    # XSD and Python regular expressions agree on escaping these (a space needs none: \  is no XSD escape)
    return re.sub(r"([.^$*+?()\[\]{}|\\-])", r"\\\1", text)


def _column(col: ColumnSpec) -> dict[str, Any]:
    datatype: str | dict[str, str] = DATATYPES[col.datatype]
    if col.values:
        datatype = {"base": "string", "format": "|".join(_regex_literal(v) for v in col.values)}
    return {
        "name": col.name,
        "titles": col.title,
        "dc:description": col.description,
        "datatype": datatype,
        "required": col.required,
    }


def csvw_metadata(tables: tuple[str, ...] = TABLES) -> dict[str, Any]:
    """The CSVW table group describing ``NAME.csv`` for each of ``tables`` (see the module docstring)."""
    groups: list[dict[str, Any]] = []
    for name in tables:
        spec = table_spec(name)
        schema: dict[str, Any] = {
            "columns": [_column(c) for c in spec.columns],
            "primaryKey": list(spec.primary_key),
        }
        keys = [
            {"columnReference": column, "reference": {"resource": f"{target}.csv", "columnReference": target_column}}
            for (table, column), (target, target_column) in REFERENCES.items()
            if table == name and target in tables
        ]
        if keys:
            schema["foreignKeys"] = keys
        groups.append({"url": f"{name}.csv", "dc:title": name, "tableSchema": schema})
    return {
        "@context": ["http://www.w3.org/ns/csvw", {"@language": "uk"}],
        "dc:description": "Поіменні результати голосування депутатів (постанова КМУ № 835)",
        "tables": groups,
    }


def metadata_bytes(tables: tuple[str, ...] = TABLES) -> bytes:
    return (json.dumps(csvw_metadata(tables), ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --- checks ----------------------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_INTEGER = re.compile(r"[+-]?\d+")


def cell_problem(col: ColumnSpec, value: str) -> str | None:
    """Why ``value`` cannot stand in column ``col``, or None."""
    if value == "":
        return "required value is missing" if col.required else None
    if col.values and value not in col.values:
        return f"{value!r} is not one of {', '.join(col.values)}"
    kind = col.datatype
    if kind == "integer" and not _INTEGER.fullmatch(value):
        return f"{value!r} is not an integer"
    if kind == "date":
        try:
            ok = bool(_DATE.fullmatch(value)) and date.fromisoformat(value) is not None
        except ValueError:
            ok = False
        if not ok:
            return f"{value!r} is not a date yyyy-mm-dd"
    if kind == "dateTime":
        try:
            ok = bool(_DATETIME.fullmatch(value)) and datetime.fromisoformat(value) is not None
        except ValueError:
            ok = False
        if not ok:
            return f"{value!r} is not a date-time with seconds and a zone (2023-04-09T15:00:00.000000Z)"
    if kind == "anyURL":
        if any(ch.isspace() or ord(ch) < 0x20 for ch in value):
            return f"{value!r} is not a URL (white space)"
        parts = urlsplit(value)
        if parts.scheme and (parts.scheme not in ("http", "https") or not parts.netloc):
            return f"{value!r}: an absolute URL must start with http:// or https://"
    return None


def check_table(path: Path, spec: TableSpec) -> list[str]:
    """The strict check of one CSV file against its table's schema (see the module docstring)."""
    name = path.name
    if not path.exists():
        return [f"schema: {name}: missing"]
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        return [f"schema: {name}: starts with a byte-order mark (the tables are UTF-8 without one)"]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"schema: {name}: not UTF-8: {exc}"]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return [f"schema: {name}: empty (no header row)"]
    problems: list[str] = []
    if tuple(rows[0]) != spec.names:
        problems.append(f"schema: {name}: header {rows[0]} is not the schema's columns {list(spec.names)}")
        return problems
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(spec.columns):
            problems.append(f"schema: {name}:{line}: {len(row)} cells, the header has {len(spec.columns)}")
            continue
        for col, value in zip(spec.columns, row, strict=True):
            why = cell_problem(col, value)
            if why is not None:
                problems.append(f"schema: {name}:{line}: {col.name}: {why}")
    return problems


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def csvw_problems(metadata: Path) -> list[str]:
    """What the ``csvw`` package finds in the tables ``metadata`` describes (see the module docstring)."""
    import csvw  # imported here: only validation needs it

    log = logging.getLogger(f"{__name__}.csvw")
    log.propagate = False  # collected, not printed
    collect = _Collect()
    log.addHandler(collect)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                group = csvw.TableGroup.from_file(metadata)
                for table in group.tables:
                    for _ in table.iterdicts(log=log):
                        pass
                    table.check_primary_key(log=log)
                group.check_referential_integrity(log=log)
            except ValueError as exc:  # what csvw refuses outright: a missing file, a header it cannot map
                collect.messages.append(str(exc))
    finally:
        log.removeHandler(collect)
    found = collect.messages + [str(w.message) for w in caught]
    return [f"csvw: {m}" for m in dict.fromkeys(found)]  # iterdicts runs per check: each finding once


def check_folder(folder: Path, tables: tuple[str, ...] = TABLES) -> list[str]:
    """Every problem of the tables in ``folder`` against the schemas; [] when they are valid."""
    problems: list[str] = []
    metadata = folder / METADATA_NAME
    if not metadata.exists():
        problems.append(f"schema: {METADATA_NAME}: missing")
    elif metadata.read_bytes() != metadata_bytes(tables):
        problems.append(f"schema: {METADATA_NAME}: is not the metadata the vendored schemas give")
    for name in tables:
        problems += check_table(folder / f"{name}.csv", table_spec(name))
    if metadata.exists():
        problems += csvw_problems(metadata)
    return problems

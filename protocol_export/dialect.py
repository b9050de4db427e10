"""How every data file is encoded, in one place: CSV in CSVW's default dialect, JSON as UTF-8.

CSV: UTF-8 without a byte-order mark, comma, ``"`` quoting where needed (a quote inside is doubled),
CRLF line ends (RFC 4180, and one of CSVW's default line terminators), a header row; None is an empty
cell, which CSVW reads as null.  JSON: UTF-8 (Cyrillic as itself, not ``\\u`` escapes), two-space
indent, a final newline.  Neither carries a time of writing: the same journal gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence

Cell = str | int | None
Row = tuple[Cell, ...]


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow("" if cell is None else cell for cell in row)
    return buf.getvalue().encode("utf-8")


def json_bytes(value: object) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

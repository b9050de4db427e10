"""The faults the simulated line can inject, per line or per unit, and their validation.

``Faults`` is a frozen value: the line's faults, with a unit's overrides laid over them when the wire
serves that unit.  ``Wire.set_faults`` checks every name and value with ``checked`` before it changes
anything, under the wire's lock, so a bad value changes nothing and the wire thread never sees half
an update.
"""

from __future__ import annotations

from dataclasses import dataclass

FAULT_NAMES = (
    "dead",
    "crc_rate",
    "drop_rate",
    "slow_ms",
    "noise_rate",
    "miss_rate",
    "wrong_unit_rate",
    "exception_rate",
    "truncate_rate",
)
#: Kinds counted in ``stats()["faults"]`` (``powered_off``: a request to a console switched off).
FAULT_KINDS = (
    "dead",
    "crc",
    "drop",
    "slow",
    "noise",
    "miss",
    "wrong_unit",
    "exception",
    "truncate",
    "garbage",
    "powered_off",
)


@dataclass(frozen=True)
class Faults:
    """Faults of a line or of one unit.  Rates are probabilities per reply (0 … 1)."""

    dead: bool = False
    crc_rate: float = 0.0
    drop_rate: float = 0.0
    slow_ms: float = 0.0
    noise_rate: float = 0.0
    miss_rate: float = 0.0  # the console does not hear a frame meant for it (or a broadcast): no action, no reply
    wrong_unit_rate: float = 0.0  # the reply carries another unit id (two consoles set to one id, a stale id)
    exception_rate: float = 0.0  # the console answers with exception 04 (device failure) instead
    truncate_rate: float = 0.0  # the reply stops short (a console reset mid-reply, a break in the cable)


def checked(name: str, value: object) -> bool | float:
    if name == "dead":
        if not isinstance(value, bool):
            raise ValueError(f"fault 'dead' must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name!r} must be a number, got {value!r}")
    number = float(value)
    if name.endswith("_rate") and not 0.0 <= number <= 1.0:
        raise ValueError(f"fault {name!r} is a probability 0 … 1, got {value!r}")
    if name == "slow_ms" and not 0.0 <= number <= 10_000.0:
        raise ValueError(f"fault 'slow_ms' must be 0 … 10000, got {value!r}")
    return number

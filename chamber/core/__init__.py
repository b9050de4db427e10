"""The pure domain core of a plenary sitting.

No module in this package does I/O, reads a clock, or starts a thread (a test
checks the imports).  ``Sitting.apply(input, now)`` is the one way the state
changes; inputs (chamber.core.events) and effects (chamber.core.effects) are
immutable values; the legal moves between phases are one table
(chamber.core.phases).
"""

from chamber.core.events import Input, decode_input, encode_input
from chamber.core.phases import Phase
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot

__all__ = ["Input", "Phase", "Sitting", "Snapshot", "decode_input", "encode_input"]

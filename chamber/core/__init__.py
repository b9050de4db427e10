"""The pure domain core of a plenary sitting.

No module in this package does I/O, reads a clock, or starts a thread (tests/test_properties.py checks
the source).  ``Sitting.apply(input, now)`` (chamber.core.sitting) is the one way the state changes;
inputs (chamber.core.events) and effects (chamber.core.effects) are immutable values.

How it is layered, from the bottom of the import graph up: values, threshold, roster, numbering,
events, effects, speakers, voting, snapshot; ``state`` (``SittingState``, the plain state, which
imports no handler); the handlers, functions of (state, input, now) that return effects and never set
the phase (``keys``, ``seat_handlers``, ``sitting_handlers``, ``vote_handlers``, ``floor_handlers``);
``phases``, the table of every legal move (which handler runs for an input in a phase, and which phase
follows), built once; and ``sitting``, the machine that reads the table and is the only code that
sets the phase.
"""

from chamber.core.events import Input, decode_input, encode_input
from chamber.core.phases import Phase
from chamber.core.sitting import Sitting
from chamber.core.snapshot import Snapshot

__all__ = ["Input", "Phase", "Sitting", "Snapshot", "decode_input", "encode_input"]

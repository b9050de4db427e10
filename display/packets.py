"""The Socket.IO packet class of the web app: UTF-8 JSON, and a malformed event turned into one the
namespaces refuse (an ``error`` back, a log line) instead of the Socket.IO server failing in its decoder."""

from __future__ import annotations

from typing import Any

from socketio import packet as sio_packet

from display import state as st

#: The event name a packet gets whose JSON does not parse, or is not ``[name, ...]``: the namespaces
#: refuse it like any unknown event (an ``error`` back, a log line) instead of the Socket.IO server
#: failing inside its decoder.
MALFORMED = "<malformed>"

#: Event names Socket.IO keeps for itself; a client never sends them (the browser's client refuses to).
RESERVED = frozenset({"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})


class Packet(sio_packet.Packet):  # type: ignore[misc]  # python-socketio has no type hints
    json = st.Utf8Json

    def decode(self, encoded_packet: Any) -> int:
        try:
            count: int = super().decode(encoded_packet)
        except ValueError as exc:  # bad JSON (JSONDecodeError is a ValueError), or a broken header
            if self.namespace is None or self.packet_type not in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
                raise
            self.data = [MALFORMED, f"the packet's JSON does not parse: {exc}"]
            return 0
        if self.packet_type == sio_packet.EVENT and not (
            isinstance(self.data, list) and self.data and isinstance(self.data[0], str)
        ):
            self.data = [MALFORMED, "an event is a JSON array starting with its name"]
        elif self.packet_type == sio_packet.EVENT and self.data[0] in RESERVED:
            # the server's own events: a client that sends "connect" would run the connect handler
            # again (and "disconnect" the disconnect handler) on a live connection
            self.data = [MALFORMED, f"the event name {self.data[0]!r} is reserved"]
        return count

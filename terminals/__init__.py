"""Seat consoles on RS-485 lines with Modbus RTU: register map, line loops, card readers (issue 3)."""

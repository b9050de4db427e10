"""Seat consoles on RS-485 lines with Modbus RTU: register map, sans-IO line protocol, its I/O loop, card readers."""

"""Simulated seat consoles on virtual serial lines (issue 3)."""

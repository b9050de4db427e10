"""Signed PDF protocols and open data exports (later issue)."""

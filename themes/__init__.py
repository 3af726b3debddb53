"""Textual themes shipped with maestro-tui."""

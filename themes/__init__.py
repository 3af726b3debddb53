"""Textual themes shipped with maestro-tui: a dark default, a light one, a high-contrast one.

Textual's own themes (ansi-dark and ansi-light use the terminal's palette) work too;
NO_COLOR is honoured by Textual itself.
"""

from __future__ import annotations

from textual.theme import Theme

MAESTRO_DARK = Theme(
    name="maestro-dark",
    primary="#4EA1D3",
    secondary="#7AA2F7",
    accent="#E0AF68",
    warning="#E0AF68",
    error="#F7768E",
    success="#9ECE6A",
    foreground="#C0CAF5",
    background="#16161E",
    surface="#1F2335",
    panel="#24283B",
    dark=True,
)

MAESTRO_LIGHT = Theme(
    name="maestro-light",
    primary="#1D5FA8",
    secondary="#3760BF",
    accent="#8C4A00",
    warning="#8C6C00",
    error="#B3261E",
    success="#2E7D32",
    foreground="#1A1B26",
    background="#F5F5F0",
    surface="#E9E9E3",
    panel="#DCDCD4",
    dark=False,
)

MAESTRO_HIGH_CONTRAST = Theme(
    name="maestro-high-contrast",
    primary="#00FFFF",
    secondary="#FFFFFF",
    accent="#FFFF00",
    warning="#FFFF00",
    error="#FF3030",
    success="#00FF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#1A1A1A",
    dark=True,
)

THEMES = (MAESTRO_DARK, MAESTRO_LIGHT, MAESTRO_HIGH_CONTRAST)
DEFAULT_THEME = MAESTRO_DARK.name

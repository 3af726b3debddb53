"""maestro-tui: the Textual console (screens, widgets, bindings) and the command line."""

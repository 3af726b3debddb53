"""The console's panes: each reads the SessionView and redraws by diff."""

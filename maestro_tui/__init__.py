"""maestro-tui: the Textual console (screens, widgets, bindings) and the command line."""

import os

# Textual draws a frame at most every 1/TEXTUAL_FPS s, and after a frame its screen timer waits for the period
# after next: a key pressed just after a frame (a progress tick, a toast) waited up to two periods, 33 ms at
# Textual's 60, before its own frame. At 120 the wait is half that (benchmarks/bench_tui.py: key-to-screen p95
# 32 ms against 61). Frames are drawn only when something changed, so the cap costs nothing on a slow link.
# Set before anything imports textual (its constants are read then); TEXTUAL_FPS in the environment wins.
os.environ.setdefault("TEXTUAL_FPS", "120")

"""What wakes the conductor's loop: decisions.jsonl changing, a tick each second, and signals.

Each arrives as one item on the loop's queue — ("decisions", None), ("tick", None),
("stop", signum) for SIGINT/SIGTERM, ("pause", None) for SIGUSR1 — so the loop never polls.
"""

from __future__ import annotations

import queue
import signal
import threading
from pathlib import Path
from typing import Any


class Wakeups:
    """The watcher and ticker threads and the signal handlers, from `start()` until `stop()`."""

    def __init__(self, events: queue.Queue[tuple[str, Any]], decisions: Path) -> None:
        self.events = events
        self.decisions = decisions
        self._stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def start(self) -> None:
        """Handle the signals (the main thread only) and start both threads."""
        for s in (signal.SIGINT, signal.SIGTERM):
            self._previous[s] = signal.signal(s, lambda signum, _frame: self.events.put(("stop", signum)))
        self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: self.events.put(("pause", None)))
        for target, name in ((self._watch_decisions, "decisions"), (self._tick, "ticker")):
            threading.Thread(target=target, daemon=True, name=name).start()

    def stop(self) -> None:
        """Stop the threads and give the signals back to their earlier handlers."""
        self._stop.set()
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _watch_decisions(self) -> None:
        import watchfiles

        target = str(self.decisions)
        # decisions.jsonl is in the session folder itself: not its test folders, thousands of files
        for _changes in watchfiles.watch(
            self.decisions.parent, stop_event=self._stop, watch_filter=lambda _c, path: path == target,
            debounce=50, step=20, yield_on_timeout=False, rust_timeout=1000, recursive=False,
        ):
            self.events.put(("decisions", None))

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.events.put(("tick", None))

"""The console's long-lived objects kept out of the garbage collector's way.

A full collection walks every object the process holds: the imports, the widgets, the view of
the session. Run when the young generations fill, it stopped the console for 60 to 180 ms a few
times a session, and a key pressed then waited as long (benchmarks/bench_tui.py). What lives on is
frozen instead (`gc.freeze`): after the console has started, and after each tick that folded new
data into the view. The collector then walks only what came since; reference counting still frees a
frozen object nobody holds. A frozen cycle that became garbage is only found by a reclaim: when what
is frozen has doubled since the last one, at a moment nobody is pressing keys.
"""

from __future__ import annotations

import gc

RECLAIM_GROWTH = 2.0  # reclaim when what is frozen has grown by this factor since the last reclaim


class Heap:
    def __init__(self) -> None:
        self.settled = 0  # objects frozen at the last settle or reclaim; 0: not settled

    def settle(self) -> None:
        """Collect once and freeze all that is left: the console as it starts."""
        gc.collect()
        gc.freeze()
        self.settled = max(gc.get_freeze_count(), 1)

    def fold_in(self) -> None:
        """Freeze what the last tick kept: young garbage is collected first (a cheap, young collection)."""
        if self.settled:
            gc.collect(1)
            gc.freeze()

    def reclaim_due(self) -> bool:
        return bool(self.settled) and gc.get_freeze_count() > RECLAIM_GROWTH * self.settled

    def reclaim(self) -> None:
        """Hand everything back to the collector, collect, freeze again (a full collection's pause: when idle)."""
        gc.unfreeze()
        self.settle()

    def release(self) -> None:
        """Hand everything back to the collector: the console is going (a test's process goes on)."""
        if self.settled:
            gc.unfreeze()
            self.settled = 0

"""The console's heap: frozen out of the collector's walks while the console runs, reclaimed when a
frozen cycle is garbage, handed back to the collector when the console goes."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from maestro_tui.app import console
from maestro_tui.heap import Heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a


def test_a_frozen_cycle_that_became_garbage_is_freed_by_a_reclaim_and_not_before():
    heap = Heap()
    try:
        heap.settle()
        kept = cycle()
        gone = weakref.ref(kept)
        heap.fold_in()  # still held: frozen with what the tick kept
        del kept
        gc.collect()
        assert gone() is not None  # frozen: no collection walks it
        heap.reclaim()
        assert gone() is None
    finally:
        heap.release()
    assert gc.get_freeze_count() == 0


def test_a_reclaim_is_due_when_what_is_frozen_has_doubled():
    heap = Heap()
    try:
        heap.settle()
        assert not heap.reclaim_due()
        held = [cycle() for _ in range(heap.settled)]  # as many objects again, and more: each cycle is two
        heap.fold_in()
        assert heap.reclaim_due()
        heap.reclaim()
        assert not heap.reclaim_due()
        del held
    finally:
        heap.release()


async def test_the_console_freezes_what_it_holds_and_hands_it_back_when_it_quits(tmp_path: Path):
    root = tmp_path / "empty_session"
    root.mkdir()
    app = console(root, read_only=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0

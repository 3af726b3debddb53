"""Crash points for the crash-safety tests: a conductor that kills itself at a named write.

MAESTRO_CRASH_AT=<name>[:<n>] makes the conductor kill itself with SIGKILL the n-th time
(default the 1st) it passes that point; the tests then resume the session and compare it
with an uninterrupted run. Unset, a crash point costs one environment lookup.

The conductor's writes are made in order on a thread of their own (engine.session.
SessionWriter), so a crash point takes its place among them (`in_order`): it fires once
every write asked before it is on disk, and none asked after — exactly the files a
conductor writing them itself would leave at that point.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

CRASH_ENV = "MAESTRO_CRASH_AT"
_crash_counts: dict[str, int] = {}
_in_order: Callable[..., Any] | None = None  # SessionWriter.write of the running conductor


def in_order(write: Callable[..., Any] | None) -> None:
    """Make crash points take their place among the writes `write` orders (None: fire where they are called)."""
    global _in_order
    _in_order = write


def crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    if _in_order is not None:
        _in_order(_count, name, int(nth or 1))
    else:
        _count(name, int(nth or 1))


def _count(name: str, nth: int) -> None:
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == nth:
        os.kill(os.getpid(), signal.SIGKILL)

"""Crash points for the crash-safety tests: a conductor that kills itself at a named write.

MAESTRO_CRASH_AT=<name>[:<n>] makes the conductor kill itself with SIGKILL the n-th time
(default the 1st) it passes that point; the tests then resume the session and compare it
with an uninterrupted run. Unset, a crash point costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "MAESTRO_CRASH_AT"
_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)

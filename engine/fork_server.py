"""The fork server every worker process is forked from, warm: the engine imported, the kernels compiled.

Starting it takes a second (imports, then numba's cache or compiler), so a process that
will run tests starts it first thing (`start`), before its own imports: by the time it
submits its first test, the server is ready. This module imports nothing heavy for that.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

# engine.warmup compiles the kernels once in the server, and every worker forked from it starts
# with them compiled, instead of each compiling its own copy
PRELOAD = ["engine.executor", "engine.warmup", "engine.fork_server_exit"]


def context() -> BaseContext:
    """The multiprocessing context of worker pools: processes forked from the warm fork server."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def start() -> None:
    """Start the fork server (if it is not running) and return at once; it gets ready meanwhile."""
    context()
    forkserver.ensure_running()

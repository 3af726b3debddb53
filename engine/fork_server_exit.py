"""Imported by the fork server only (engine.fork_server.PRELOAD): when it ends, it skips Python's teardown.

The fork server ends when its conductor does. Tearing down an interpreter that holds
numba's compiled code took 0.3–0.4 s of CPU, and whatever reads the conductor's output
through a pipe (`maestro-tui run --headless | tee run.log`) waited for it, since the
server holds the same pipe. Nothing in that teardown matters to the server: its workers
have been joined, and it writes no file. Its atexit functions run last-registered first,
so this one, registered after the others, is the first and the last to run.
"""

from __future__ import annotations

import atexit
import os

atexit.register(os._exit, 0)

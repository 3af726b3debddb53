"""The conductor as a process of its own (DESIGN.md §2), started from the console's side.

`maestro-tui` with the console starts one for a new session, and the console starts one
again (`resume`) when a session's conductor died. Either way it is `maestro-tui conduct
SESSION_DIR` (maestro_tui.cli), detached from the terminal: its own session and process
group, so an SSH drop (SIGHUP) does not take it down, and no stdin, stdout or stderr
(it writes conductor.log in the session folder).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

NICE = 10  # research yields the CPU to the console; its workers inherit it


def start_conductor(session_root: Path) -> subprocess.Popen:
    """Start a detached conductor on the session at `session_root`: it runs the session, or resumes it from its files."""
    return subprocess.Popen(
        [sys.executable, "-m", "maestro_tui.cli", "conduct", "--nice", str(NICE), str(session_root)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )

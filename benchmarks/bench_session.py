"""A full default headless session: wall time and peak memory, cold and warm numba cache.

    .venv/bin/python benchmarks/bench_session.py

Runs `maestro-tui run --headless` (500 tests, offline agents, auto approval) as a real
process, twice: first with an empty numba cache (NUMBA_CACHE_DIR pointed at a fresh folder,
so every kernel compiles), then again with that cache populated. Peak RSS is the largest
resident set of the conductor and of its worker processes, sampled from /proc every 20 ms,
and their sum at the worst moment (RSS counts the pages the fork-server workers share
with each other once per process; PSS divides them among the sharers).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _pss_mb(pid: int) -> float:
    """Proportional set size: shared pages divided among the processes sharing them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_session(cache_dir: str) -> tuple[float, float, float, float]:
    """(wall s, peak RSS of one process MB, peak summed RSS and summed PSS of the process tree MB)."""
    with tempfile.TemporaryDirectory() as sessions:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--sessions-dir", sessions],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        peak_one = peak_sum = peak_pss = 0.0
        while proc.poll() is None:
            tree = _tree(proc.pid)
            sizes = [_rss_mb(p) for p in tree]
            peak_one = max(peak_one, max(sizes, default=0.0))
            peak_sum = max(peak_sum, sum(sizes))
            peak_pss = max(peak_pss, sum(_pss_mb(p) for p in tree))
            time.sleep(0.02)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"session failed: {proc.stderr.read().decode()[-500:]}")
        return wall, peak_one, peak_sum, peak_pss


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold numba cache", "warm numba cache"):
            wall, one, total, pss = run_session(cache)
            print(f"{label}: {wall:5.2f} s wall; peak RSS {one:4.0f} MB largest process, {total:4.0f} MB summed over "
                  f"the conductor and its workers ({pss:4.0f} MB PSS: shared pages counted once)")
    print("targets: ≤ 10 s cold, ≤ 5 s warm, ≤ 400 MB peak RSS")


if __name__ == "__main__":
    main()

"""What a headless session cannot go below on this machine, whatever its conductor does: the start of its
worker processes, the workers' own CPU, the compile of the simulator — and the bounds they put on the
session targets.

    .venv/bin/python benchmarks/bench_floor.py              # 5 runs of each measure
    .venv/bin/python benchmarks/bench_floor.py --runs 9

Measured, medians and [min–max] over the runs:

- **import floor**: a Python process importing what a worker needs and loading every kernel from numba's
  (warm) cache — `import engine.executor, engine.warmup`, what the fork server does before it can fork the
  first worker; beside it the bare stack (`import numpy, numba, pydantic`).
- **a warm default session** (`maestro-tui run --headless --seed 11`, 500 tests, 2 workers) with its
  processes sampled from /proc every 20 ms: S, when the first worker started (from the conductor's own
  start, both read from /proc's start times); K, the CPU seconds of all its workers together; C, the
  conductor's (all its threads); F, the fork server's; and the session's wall time.
- **the simulator's compile** on a cold cache (`simulate_into` as the sweep kernel calls it, numba's
  compile events, inclusive of its helpers): one function's compile runs on one core, so no split of the
  work over processes shortens it.

Bounds, from those medians, for a session whose conductor cost nothing once its workers start (the
workers' CPU is the session's backtests and their results — the kernels, metrics, trial cells and the
text of every test folder — which no conductor can take off them):

- a warm 500-test session takes at least S + K/2 on two cores (and at least I + K/2, I the import floor,
  for any start);
- `--workers 2` can be at most (S + K) / (S + K/2) times faster than `--workers 1`;
- a cold session takes at least the bare stack's import + the simulator's compile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench_session import TICKS, children, cpu_seconds, figures  # the benchmark beside this one (run as scripts)

ROOT = Path(__file__).resolve().parent.parent
SEED = "11"

COMPILE = """
import json, time
from numba.core import event
took = {}
starts = []
class Timing(event.Listener):
    def on_start(self, e):
        starts.append(time.perf_counter())
    def on_end(self, e):
        took.setdefault(e.data["dispatcher"].py_func.__name__, time.perf_counter() - starts.pop())
event.register("numba:compile", Timing())
from engine import warmup  # noqa: F401 - compiles every kernel of a worker, the simulator first
print(json.dumps(took))
"""


@dataclass
class Sampled:
    """One session's timeline and CPU, by process role."""

    wall: float
    first_worker: float  # S: seconds from the conductor's start to the first worker's
    workers: float  # K: CPU seconds, all workers
    conductor: float  # C
    fork_server: float  # F


def _started(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (/proc's stat, field 22)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def sampled_session(env: dict[str, str], sessions: Path) -> Sampled:
    """A warm default session, its processes read from /proc every 20 ms (CPU: utime + stime;
    start: /proc's start time)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--seed", SEED,
                             "--sessions-dir", str(sessions)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cpu: dict[int, float] = {}
    role: dict[int, str] = {}
    start: dict[int, int] = {}
    while proc.poll() is None:
        kids = children()
        for pid in kids.get(proc.pid, []):
            if pid not in role and "forkserver" in _cmdline(pid):
                role[pid] = "fork server"
        role[proc.pid] = "conductor"
        for server in [p for p, r in role.items() if r == "fork server"]:
            for pid in kids.get(server, []):
                role.setdefault(pid, "worker")
        for pid in role:
            used, began = cpu_seconds(pid), _started(pid)
            if used is not None:
                cpu[pid] = used
            if began is not None:
                start.setdefault(pid, began)
        time.sleep(0.02)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the session failed: {err.decode()[-800:]}")
    workers = [p for p, r in role.items() if r == "worker"]
    if not workers:
        raise SystemExit("no worker process was seen: the sampler missed them")
    return Sampled(
        wall=wall,
        first_worker=(min(start[p] for p in workers) - start[proc.pid]) / TICKS,
        workers=sum(cpu.get(p, 0.0) for p in workers),
        conductor=cpu.get(proc.pid, 0.0),
        fork_server=sum(cpu.get(p, 0.0) for p, r in role.items() if r == "fork server"),
    )


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="runs of each measure (default 5)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_CACHE_DIR": str(work / "numba")}
        subprocess.run([sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--tests", "20",
                        "--sessions-dir", str(work / "prime")], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        stack, floor, sessions, compiles, cold_ready = [], [], [], [], []
        for r in range(args.runs):
            stack.append(timed([sys.executable, "-c", "import numpy, numba, pydantic"], env))
            floor.append(timed([sys.executable, "-c", "import engine.executor, engine.warmup"], env))
            sessions.append(sampled_session(env, work / f"s-{r}"))
            cold = {**env, "NUMBA_CACHE_DIR": str(work / f"cold-{r}")}
            cold_ready.append(time.perf_counter())
            out = subprocess.run([sys.executable, "-c", COMPILE], cwd=ROOT, env=cold, check=True,
                                 capture_output=True, text=True).stdout
            cold_ready[-1] = time.perf_counter() - cold_ready[-1]
            compiles.append(json.loads(out.splitlines()[-1]))
            print(f"  run {r + 1}: session {sessions[-1].wall:.2f} s", file=sys.stderr, flush=True)

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    simulator = [c["simulate_into"] for c in compiles]
    sweep_kernel = [c.get("simulate_sweep", 0.0) for c in compiles]  # compiled after the simulator, in the same process
    S = [s.first_worker for s in sessions]
    K = [s.workers for s in sessions]
    print(f"\nthe floors, medians [min–max] over {args.runs} runs")
    print(f"  bare stack import (numpy, numba, pydantic)        {figures(stack)}")
    print(f"  I: a worker's imports and kernels, warm cache       {figures(floor)}")
    print(f"  the simulator's compile, cold cache (one core)      {figures(simulator)}")
    print(f"    then the sweep kernel's own, after it             {figures(sweep_kernel)}")
    print(f"    a worker's imports and kernels, cold cache        {figures(cold_ready)}")
    print("  a warm default session (500 tests, 2 workers):")
    print(f"    wall                                              {figures([s.wall for s in sessions])}")
    print(f"    S: the first worker starts at                     {figures(S)}")
    print(f"    K: CPU of its workers                             {figures(K)}")
    print(f"    C: CPU of the conductor                           {figures([s.conductor for s in sessions])}")
    print(f"    F: CPU of the fork server                         {figures([s.fork_server for s in sessions])}")
    s, k, i = med(S), med(K), med(floor)
    print("\nbounds, for a conductor that cost nothing once the workers start (medians):")
    print(f"  warm 500 tests ≥ S + K/2 = {s + k / 2:.2f} s; with the import floor, I + K/2 = {i + k / 2:.2f} s"
          "   target ≤ 1.5 s")
    print(f"  1 worker / 2 workers ≤ (S + K) / (S + K/2) = {(s + k) / (s + k / 2):.2f}×; "
          f"with I, {(i + k) / (i + k / 2):.2f}×   target ≥ 1.6×")
    print(f"  cold 500 tests ≥ the bare stack import + the simulator's compile = {med(stack) + med(simulator):.2f} s"
          "   target ≤ 5 s")


if __name__ == "__main__":
    main()

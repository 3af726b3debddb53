"""Whole headless sessions as real processes: wall time cold and warm, one worker against two, 500 tests
against 2,000, dask against local workers — medians and ranges, optionally beside another checkout.

    .venv/bin/python benchmarks/bench_session.py                  # this tree, 5 warm runs each
    .venv/bin/python benchmarks/bench_session.py --before ../main --runs 7
    .venv/bin/python benchmarks/bench_session.py --only warm500,workers1 --sample

Each run is `maestro-tui run --headless --seed 11` (offline agents, auto approval) in a fresh
sessions folder, timed from the process's start to its exit, imports included. "Cold" runs
with an empty numba cache (NUMBA_CACHE_DIR pointed at a fresh folder, so every kernel
compiles); "warm" with a cache an untimed first run populated. The runs of every scenario
(and of both trees, with --before) alternate, so a slower moment of this shared machine
hits them all alike; figures are medians with [min–max] over the runs.

Dask: a local scheduler with two single-threaded worker processes (distributed.LocalCluster, in
a process of its own importing the tree's code), started for each dask run and primed with a
small session, against two local worker processes on the same 2,000-test session run just
before it; the two sessions' trades, scores, plans and leaderboards must be identical.
--sample also sums the CPU seconds the session's processes used (conductor, fork server, workers;
on a machine shared with others, steadier than wall time) and their peak RSS, sampled from /proc
every 50 ms (which itself costs a little CPU: off by default). The CPU a dask cluster used during
each session is always read (its processes outlive the session, so before and after it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = "11"

# name: (what it is, extra flags, numba cache) — "dask" gets the scheduler's address added
SCENARIOS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "cold500": ("500 tests, 2 workers, cold numba cache", ("--workers", "2"), "cold"),
    "warm500": ("500 tests, 2 workers", ("--workers", "2"), "warm"),
    "workers1": ("500 tests, 1 worker", ("--workers", "1"), "warm"),
    "warm2000": ("2,000 tests, 2 workers", ("--workers", "2", "--tests", "400"), "warm"),
    "dask2000": ("2,000 tests, dask: 2 workers", ("--tests", "400"), "warm"),
}


@dataclass
class Tree:
    """A checkout whose sessions are timed: its path, its warm numba cache, its dask cluster."""

    name: str
    path: Path
    cache: str = ""
    walls: dict[str, list[float]] = field(default_factory=dict)
    peaks: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[str, list[float]] = field(default_factory=dict)
    last: dict[str, Path] = field(default_factory=dict)  # the last session folder of each scenario
    cluster_cpus: list[float] = field(default_factory=list)  # CPU seconds a dask cluster used during each session

    def env(self, cache: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.path), "NUMBA_CACHE_DIR": cache}


def children() -> dict[int, list[int]]:
    """Every process's children, by parent pid (Linux /proc)."""
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def _tree_pids(pid: int) -> list[int]:
    """pid and all its descendants (Linux /proc)."""
    kids = children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds process `pid` has used so far (not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return None


TICKS = os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds process `pid` and its descendants have used so far (each one's own, not its children's)."""
    return sum(cpu_seconds(p) or 0.0 for p in _tree_pids(pid))


def run_session(tree: Tree, flags: tuple[str, ...], cache: str, sessions: Path, sample: bool,
                ) -> tuple[float, float, float]:
    """(wall s, peak summed RSS MB, CPU s) of one headless session into `sessions`; the last two sampled from
    /proc every 50 ms over the process tree (conductor, fork server, workers) when `sample`, else 0."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--seed", SEED, *flags,
         "--sessions-dir", str(sessions)],
        cwd=tree.path, env=tree.env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    peak = 0.0
    cpu: dict[int, float] = {}  # pid -> CPU seconds as last seen (a process's last 50 ms may be missed)
    if sample:
        while proc.poll() is None:
            pids = _tree_pids(proc.pid)
            peak = max(peak, sum(_rss_mb(p) for p in pids))
            for p in pids:
                used = cpu_seconds(p)
                if used is not None:
                    cpu[p] = used
            time.sleep(0.05)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{tree.name}: session failed ({' '.join(flags)}): {err.decode()[-800:]}")
    return wall, peak, sum(cpu.values())


_CLUSTER = """
import sys
from distributed import LocalCluster
with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
                  silence_logs=50) as cluster:
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()  # until the benchmark closes it
"""


@contextlib.contextmanager
def dask_cluster(tree: Tree) -> Iterator[tuple[str, int]]:
    """A local dask scheduler with two single-threaded worker processes, all importing `tree`'s code.

    The scheduler runs in a process of its own (it unpickles every task, so it must import the
    tree's engine, not this process's).
    """
    proc = subprocess.Popen([sys.executable, "-c", _CLUSTER], cwd=tree.path, env=tree.env(tree.cache),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        address = proc.stdout.readline().strip()
        if not address:
            raise SystemExit(f"{tree.name}: the dask cluster did not start")
        yield address, proc.pid
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def results_of(session_dir: Path) -> dict[str, object]:
    """Every trades/scores/plans line (timestamps and ids aside) and every leaderboard's bytes, by file."""
    volatile = {"emitted_at", "session_id", "nonce", "created_at"}

    def scrub(v: object) -> object:
        if isinstance(v, dict):
            return {k: scrub(x) for k, x in v.items() if k not in volatile}
        if isinstance(v, list):
            return [scrub(x) for x in v]
        return v

    (session,) = [p for p in session_dir.iterdir() if (p / "session_config.json").exists()]
    out: dict[str, object] = {}
    for path in sorted(session.rglob("*")):
        if path.name in ("trades.jsonl", "scores.jsonl", "plans.jsonl"):
            out[str(path.relative_to(session))] = [scrub(json.loads(line)) for line in path.read_text().splitlines()]
        elif path.name == "leaderboard_base.csv":
            out[str(path.relative_to(session))] = path.read_bytes()
    return out


def figures(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s [{min(values):.2f}–{max(values):.2f}]"


def ratio(a: list[float], b: list[float]) -> str:
    """median(a) / median(b), with the range of the per-run ratios (runs pair up in the order they ran)."""
    per_run = [x / y for x, y in zip(a, b)]
    return f"{statistics.median(a) / statistics.median(b):5.2f}× [{min(per_run):.2f}–{max(per_run):.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each warm scenario (default 5)")
    ap.add_argument("--cold-runs", type=int, default=3, help="timed cold runs (default 3)")
    ap.add_argument("--before", type=Path, help="another checkout to time beside this one (e.g. main)")
    ap.add_argument("--only", default=",".join(SCENARIOS), help=f"scenarios, comma-separated: {','.join(SCENARIOS)}")
    ap.add_argument("--sample", action="store_true",
                    help="sample the process tree's CPU seconds and peak RSS every 50 ms (costs some CPU itself)")
    args = ap.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    trees = ([Tree("before", args.before.resolve())] if args.before else []) + [Tree("after" if args.before else "this", ROOT)]

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for tree in trees:
            tree.cache = str(work / f"numba-{tree.name}")
            run_session(tree, ("--workers", "2", "--tests", "20"), tree.cache, work / f"prime-{tree.name}", False)
        n = 0

        def timed(tree: Tree, r: int, name: str, flags: tuple[str, ...], cache: str) -> None:
            nonlocal n
            n += 1
            sessions = work / f"s-{n}"
            wall, peak, cpu = run_session(tree, flags, cache, sessions, args.sample)
            tree.walls.setdefault(name, []).append(wall)
            tree.peaks.setdefault(name, []).append(peak)
            tree.cpus.setdefault(name, []).append(cpu)
            tree.last[name] = sessions
            print(f"  run {r + 1} {tree.name:6s} {name:9s} {wall:6.2f} s", file=sys.stderr, flush=True)

        local = [name for name in chosen if name != "dask2000"]
        rounds = max(args.runs, args.cold_runs if "cold500" in chosen else 0)
        for r in range(rounds):
            for name in local:
                what, flags, cache_kind = SCENARIOS[name]
                if r >= (args.cold_runs if cache_kind == "cold" else args.runs):
                    continue
                for tree in trees:
                    timed(tree, r, name, flags, str(work / f"cold-{n}") if cache_kind == "cold" else tree.cache)
        if "dask2000" in chosen:
            # a cluster runs only around its own session (idle, its processes still take CPU), and each
            # dask session is paired with a local one run just before it
            for r in range(args.runs):
                for tree in trees:
                    timed(tree, r, "local2000", ("--workers", "2", "--tests", "400"), tree.cache)
                    with dask_cluster(tree) as (address, cluster):
                        run_session(tree, ("--tests", "20", "--dask", address), tree.cache, work / f"prime-dask-{n}", False)
                        used = _tree_cpu(cluster)
                        timed(tree, r, "dask2000", ("--tests", "400", "--dask", address), tree.cache)
                        tree.cluster_cpus.append(_tree_cpu(cluster) - used)

        print(f"\nsessions of seed {SEED}, wall time from process start to exit; median [min–max] over the runs")
        for name in chosen:
            what = SCENARIOS[name][0]
            cells = "   ".join(f"{t.name}: {figures(t.walls[name])}" for t in trees)
            print(f"{name:9s} {what:38s} {cells}")
            if args.sample and name != "dask2000":  # a cluster's processes are not the session's children
                cells = "   ".join(f"{t.name}: {figures(t.cpus[name])} CPU, peak RSS {max(t.peaks[name]):.0f} MB"
                                   for t in trees)
                print(f"{'':9s} {'  the process tree used':38s} {cells}")
        for tree in trees:
            w = tree.walls
            print(f"\n{tree.name}:")
            if "workers1" in w and "warm500" in w:
                print(f"  1 worker / 2 workers (500 tests):     {ratio(w['workers1'], w['warm500'])}   target ≥ 1.6×")
            if "warm2000" in w and "warm500" in w:
                print(f"  2,000 tests / 500 tests (2 workers):  {ratio(w['warm2000'], w['warm500'])}   target < 3×")
            if "dask2000" in w:
                same = results_of(tree.last["dask2000"]) == results_of(tree.last["local2000"])
                print(f"  dask / local (2,000 tests, 2 workers): {ratio(w['dask2000'], w['local2000'])}   target ≤ 1×; "
                      f"results {'identical' if same else 'DIFFER'} (local: {figures(w['local2000'])})")
                print(f"    the cluster (scheduler, nannies, workers) used {figures(tree.cluster_cpus)} CPU "
                      "during each dask session, on the same two cores")
                if args.sample:
                    total = [a + b for a, b in zip(tree.cpus["dask2000"], tree.cluster_cpus)]
                    print(f"    CPU in all: dask {figures(total)} (its conductor {figures(tree.cpus['dask2000'])}), "
                          f"local {figures(tree.cpus['local2000'])} (conductor, fork server and workers)")
            if "warm500" in w:
                print(f"  warm 500 tests: {figures(w['warm500'])}   target ≤ 1.5 s")
            if "cold500" in w:
                print(f"  cold 500 tests: {figures(w['cold500'])}   target ≤ 5 s")
        if len(trees) == 2:
            before, after = trees
            print("\nbefore / after (wall):")
            for name in chosen:
                print(f"  {name:9s} {ratio(before.walls[name], after.walls[name])}")
            if args.sample:
                print("before / after (CPU seconds of the process tree):")
                for name in (n for n in chosen if n != "dask2000"):
                    print(f"  {name:9s} {ratio(before.cpus[name], after.cpus[name])}")


if __name__ == "__main__":
    main()

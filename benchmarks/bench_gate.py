"""How many decisions the default session asks of a human, and how long it runs with one.

    .venv/bin/python benchmarks/bench_gate.py [--seed 11] [--tests 100] [--segments 5]

Runs `maestro-tui run --approval manual --headless` on the embedded defaults as a real
process, and decides by script the way a trader who approves everything would: every plan
that becomes pending is approved with `maestro-tui decide DIR PLAN approve` as soon as it
shows up in plans.jsonl. Prints the number of decisions asked, per parameter and rule,
how many plans ended otherwise (superseded, expired), and the wall time.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.events import latest_plans  # noqa: E402
from engine.jsonl import read_json  # noqa: E402


def _latest_plans(session: Path) -> dict[str, dict]:
    return {plan_id: p.model_dump() for plan_id, p in latest_plans(session / "plans.jsonl").items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--tests", type=int, default=100)
    ap.add_argument("--segments", type=int, default=5)
    ap.add_argument("--verbose", action="store_true", help="list every plan with its outcome")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as sessions:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "maestro_tui.cli", "run", "--approval", "manual", "--headless",
             "--seed", str(args.seed), "--tests", str(args.tests), "--segments", str(args.segments),
             "--sessions-dir", sessions],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env={**os.environ, "MAESTRO_CONFIG": os.environ.get("BENCH_CONFIG", os.devnull)},
        )
        decided: list[dict] = []
        session: Path | None = None
        while proc.poll() is None:
            if session is None:
                found = [p for p in Path(sessions).iterdir() if (p / "session_config.json").exists()]
                session = found[0] if found else None
            if session is not None:
                for plan in _latest_plans(session).values():
                    if plan["status"] == "pending" and plan["plan_id"] not in {d["plan_id"] for d in decided}:
                        decided.append(plan)
                        subprocess.run(
                            [sys.executable, "-m", "maestro_tui.cli", "decide", str(session), plan["plan_id"], "approve",
                             "--wait", "0"],
                            cwd=ROOT, capture_output=True, stdin=subprocess.DEVNULL,
                        )
            time.sleep(0.05)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"session failed ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
        assert session is not None
        final = _latest_plans(session)
        by_change = collections.Counter(
            f"{p.get('note') or p['agent']}: {', '.join(i['parameter'] for i in p['patch'])}" for p in decided
        )
        ends = collections.Counter(p["status"] for p in final.values())
        tests = read_json(session / "conductor.json")["tests_done"]
        print(f"decisions asked: {len(decided)} in {tests} tests (seed {args.seed}, manual approval, all approved); "
              f"wall {wall:.1f} s")
        for what, n in by_change.most_common():
            print(f"  {n:3d}  {what}")
        print("plans by final status: " + ", ".join(f"{k} {v}" for k, v in sorted(ends.items())))
        if args.verbose:
            from engine.reports.summary import describe_outcome

            for p in final.values():
                change = ", ".join(f"{k} {v}" for k, v in p["change"].items())
                print(f"  {p['plan_id']} {p['test_id']} {p['status']:9s} {change:28s} {describe_outcome(p.get('outcome'))}")


if __name__ == "__main__":
    main()

"""Replay speed: open-to-first-paint, seek times and RSS, for a 500-test and a 5,000-test session.

    .venv/bin/python benchmarks/bench_replay.py [SESSION_DIR ...]

Without arguments it makes the two sessions first (`maestro-tui run --headless`, 5 × 100
and 5 × 1,000 tests) in a temporary folder. For each session, in a fresh process:
first paint = from creating the replay console until its first frame shows the session;
seek = `G` (end), `g` (start), `]` (next plan) and `}` (next segment), each until redrawn.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = r"""
import asyncio, json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from maestro_tui.replay import ReplayApp

async def main():
    t0 = time.perf_counter()
    app = ReplayApp(sys.argv[1])
    out = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0)
        out["first_paint_s"] = time.perf_counter() - t0
        out["items"] = len(app.feed.timeline)
        for key in ("G", "g", "right_square_bracket", "right_curly_bracket", "G"):
            t = time.perf_counter()
            await pilot.press(key)
            out.setdefault("seek_ms", []).append(round((time.perf_counter() - t) * 1000, 1))
        out["tests_at_end"] = app.view.tests_seen
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


def measure(session: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, str(session), str(ROOT)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make(base: Path, tests: int) -> Path:
    folder = base / f"t{tests}"
    subprocess.run([sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--segments", "5", "--tests",
                    str(tests), "--sessions-dir", str(folder)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return next(p for p in folder.iterdir() if (p / "session_config.json").exists())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        sessions = [Path(a) for a in sys.argv[1:]] or [make(Path(tmp), 100), make(Path(tmp), 1000)]
        for s in sessions:
            m = measure(s)
            print(f"{s.name}: {m['tests_at_end']} tests, {m['items']} items: first paint {m['first_paint_s']:.2f} s, "
                  f"seeks G/g/]/}}/G {m['seek_ms']} ms (Pilot.press included), RSS {m['rss_mb']:.0f} MB")
    print("targets (5,000 tests): first paint ≤ 2 s, seek ≤ 200 ms, RSS ≤ 400 MB")


if __name__ == "__main__":
    main()

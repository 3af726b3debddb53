"""Replay speed: open-to-first-paint, seek times and RSS, for a 500-test and a 5,000-test session.

    .venv/bin/python benchmarks/bench_replay.py [SESSION_DIR ...]

Without arguments it makes the two sessions first (`maestro-tui run --headless`, 5 × 100
and 5 × 1,000 tests) in a temporary folder. For each session, in a fresh process:
first paint = from creating the replay console (reading the folder included) until its first
frame — the session at its end, where a replay opens — is written to the terminal; seek = from a key press (`G` end, `g` start, `]`/`[` next
and previous plan, `}`/`{` next and previous segment) until the last frame the seek causes
is written — tables measure and paint their new rows on frames after the seek itself — i.e.
until the screen stops changing: what the trader waits for. A paused replay writes no frame
of its own, so every frame in the 0.5 s after a seek is the seek's.
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
from maestro_tui.app import console

KEYS = ("g", "G", "g", "right_square_bracket", "right_curly_bracket", "right_curly_bracket", "left_square_bracket",
        "G", "left_curly_bracket", "g")

async def main():
    t0 = time.perf_counter()
    app = console(sys.argv[1], replay=True)
    frames, seeks = [], []
    display, seek = app._display, app.feed.seek  # every key of the timeline ends in the feed's seek
    def on_display(screen, renderable):
        frames.append(time.perf_counter())
        return display(screen, renderable)
    def on_seek(position):
        seek(position)
        seeks.append(time.perf_counter())
    app._display, app.feed.seek = on_display, on_seek
    out = {"seek_ms": []}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0)
        out["first_paint_s"] = frames[0] - t0
        out["items"] = len(app.feed.timeline)
        for key in KEYS:
            await pilot.pause(0.3)  # let the 5 Hz tick settle
            n_seeks, start = len(seeks), time.perf_counter()
            app.simulate_key(key)
            while len(seeks) == n_seeks:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.6)  # every frame the seek causes comes well within this
            done = seeks[-1]
            painted = [f for f in frames if done < f <= done + 0.5]
            out["seek_ms"].append(round(((painted[-1] if painted else done) - start) * 1000, 1))
        out["tests_at_end"] = app.feed.tests_before[-1]
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
                  f"seeks g G g ] }} }} [ G {{ g: {m['seek_ms']} ms (max {max(m['seek_ms']):.0f}), RSS {m['rss_mb']:.0f} MB")
    print("targets (5,000 tests): first paint ≤ 2 s, seek ≤ 200 ms, RSS ≤ 400 MB")


if __name__ == "__main__":
    main()

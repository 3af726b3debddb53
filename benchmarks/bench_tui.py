"""Console responsiveness while a full default session streams at full speed.

    .venv/bin/python benchmarks/bench_tui.py [--runs 3]

Starts a real conductor (500 tests, offline agents, auto approval) and, at the same time,
the console headless (Textual's run_test, 160×48) on its directory. Every 50 ms it presses
j or k on the episodes table and measures key-to-screen latency: from the key press to the
first frame the console composes with the cursor moved (the frame a terminal would be sent;
headless, it is composed and not written). Prints median, p95 and max of each
session and of all of them together (a 500-test session now streams for a few seconds: one gives
some 50 key presses), and the console's peak RSS. The conductor runs niced, as the console
starts it (background research yields the CPU to the person at the keyboard).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.session_start import new_session_config  # noqa: E402
from agents.settings import Settings  # noqa: E402
from engine.jsonl import write_json_atomic  # noqa: E402
from engine.session import CONFIG, SessionDir  # noqa: E402
from maestro_tui.app import console  # noqa: E402
from maestro_tui.widgets.panes import EpisodesTable  # noqa: E402


async def drive(root: Path, conductor: subprocess.Popen) -> tuple[list[float], int]:
    """Key-to-frame latencies (s), and how many keys no frame showed within 5 s."""
    app = console(root)
    latencies: list[float] = []
    missed = 0
    async with app.run_test(size=(160, 48)):
        table = app.query_one(EpisodesTable)
        table.focus()
        pressed: list[tuple[float, int]] = []  # the key waiting for its frame: (when, cursor row before it)
        compose_frame = app._display  # Textual's one door to the terminal: every frame passes here

        def frame(screen, renderable) -> None:
            compose_frame(screen, renderable)
            if renderable is not None and pressed and table.cursor_row != pressed[0][1]:
                latencies.append(time.perf_counter() - pressed.pop()[0])

        app._display = frame  # type: ignore[method-assign]
        key = "j"
        while conductor.poll() is None or app.feed.items:
            await asyncio.sleep(0.05)
            if table.row_count < 3:
                continue
            before = table.cursor_row
            if before >= table.row_count - 1:
                key = "k"
            elif before == 0:
                key = "j"
            # the key goes in as the terminal driver would post it (Pilot.press adds waits of its own)
            pressed.append((time.perf_counter(), before))
            app.simulate_key(key)
            deadline = time.perf_counter() + 5
            while pressed and time.perf_counter() < deadline:
                await asyncio.sleep(0.001)
            if pressed:  # no frame showed it: left out of the latencies, and counted
                missed += 1
                pressed.clear()
        print(f"console saw {app.session.view.tests_seen} tests, {len(app.session.view.plans)} plans, "
              f"{len(app.session.view.conversation)} messages")
    return latencies, missed


def session(tmp: Path) -> tuple[list[float], int, float]:
    """One default session streamed to the console: its key-to-frame latencies (s), keys never shown, seconds."""
    root = tmp / "session_bench"
    root.mkdir()
    session = SessionDir(root)
    write_json_atomic(session.file(CONFIG), new_session_config(session, Settings(sessions_dir=tmp), "auto"))
    started = time.perf_counter()
    conductor = subprocess.Popen([sys.executable, "-m", "maestro_tui.cli", "conduct", "--nice", "10", str(root)], cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latencies, missed = asyncio.run(drive(root, conductor))
    conductor.wait()
    return latencies, missed, time.perf_counter() - started


def p95(ms: list[float]) -> float:
    ms = sorted(ms)
    return ms[int(0.95 * (len(ms) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="sessions streamed, one after the other (default 3)")
    runs = parser.parse_args().runs
    pooled: list[float] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            latencies, missed, took = session(Path(tmp))
        ms = sorted(x * 1000 for x in latencies)
        pooled += ms
        print(f"run {run + 1}: {len(ms)} key presses over {took:.1f} s of streaming: key-to-screen median "
              f"{statistics.median(ms):.1f} ms, p95 {p95(ms):.1f} ms, max {ms[-1]:.1f} ms; {missed} keys never shown")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"all {runs} runs, {len(pooled)} key presses: key-to-screen median {statistics.median(pooled):.1f} ms, "
          f"p95 {p95(pooled):.1f} ms, max {max(pooled):.1f} ms; console peak RSS {rss:.0f} MB")
    print("targets: p95 ≤ 50 ms, max ≤ 250 ms, RSS ≤ 300 MB")


if __name__ == "__main__":
    main()

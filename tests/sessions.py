"""Running real sessions from tests: the `maestro-tui` command in a subprocess, and comparing them.

Waiting is on conditions (a file says so), never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from engine.jsonl import read_json, read_jsonl

ROOT = Path(__file__).resolve().parent.parent

# rules on a hair trigger (point estimates, 10 trades): for tests about what plans and decisions
# do, which need plans early in short sessions, not about when rules fire
EAGER_RULES = {"MAESTRO_RULES__CONFIDENCE_Z": "0", "MAESTRO_RULES__MIN_TRADES": "10"}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `maestro-tui ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "maestro_tui.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})}, cwd=ROOT, stdin=subprocess.DEVNULL,
    )


def cli_background(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    """Start `maestro-tui ARGS` (in `cwd`) and return at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "maestro_tui.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL,
    )


def headless_session(sessions_dir: Path, *args: str, env: dict[str, str] | None = None) -> Path:
    """Run `maestro-tui run --headless ARGS` into `sessions_dir` to a clean finish; its session folder."""
    out = cli("run", "--headless", *args, "--sessions-dir", str(sessions_dir), env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    return only_session(sessions_dir)


def only_session(sessions_dir: Path) -> Path:
    found = [p for p in sessions_dir.iterdir() if (p / "session_config.json").exists()]
    assert len(found) == 1, found
    return found[0]


def find_session(sessions_dir: Path) -> Path | None:
    """The one session in a folder once its config is written, else None (for wait_for)."""
    if not sessions_dir.exists():
        return None
    found = [p for p in sessions_dir.iterdir() if (p / "session_config.json").exists()]
    return found[0] if len(found) == 1 else None


def wait_for(condition: Callable[[], object], timeout: float = 60.0, what: str = "condition") -> object:
    """Wait until `condition()` is truthy (checked every 20 ms); fail the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def conductor_state(session: Path) -> dict:
    try:
        return read_json(session / "conductor.json")
    except Exception:  # noqa: BLE001 - not written yet, or mid-rename
        return {}


def pending_plans(session: Path) -> list[dict]:
    latest: dict[str, dict] = {}
    for rec in read_jsonl(session / "plans.jsonl").records:
        latest[rec["plan_id"]] = rec
    return [p for p in latest.values() if p["status"] == "pending"]


# fields that legitimately differ between two runs of the same session
VOLATILE = {"emitted_at", "session_id", "nonce", "created_at", "heartbeat"}


def _scrub(value):
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def snapshot(session: Path) -> dict[str, object]:
    """Every file of a session that must be reproducible, with timestamps and ids removed."""
    out: dict[str, object] = {}
    for path in sorted(session.rglob("*")):
        rel = path.relative_to(session).as_posix()
        if not path.is_file() or rel in ("conductor.json", "conductor.log", "session_config.json"):
            continue
        if rel.endswith((".lock", ".png")) or "/." in rel:  # charts are drawn from the files compared here
            continue
        if path.suffix == ".jsonl":
            recs = read_jsonl(path).records
            if rel == "audit.jsonl":
                # the decision's byte offset depends on the decider's clock and user name
                for r in recs:
                    if isinstance(r.get("details"), dict):  # (a damaged record may hold anything)
                        r["details"].pop("decision_offset", None)
                    if r.get("action") == "patch_applied":
                        r.pop("who", None)
            if rel == "decisions.jsonl":
                recs = [{k: v for k, v in r.items() if k not in ("by",)} for r in recs]
            out[rel] = _scrub(recs)
        elif path.suffix == ".json":
            try:
                out[rel] = _scrub(json.loads(path.read_text()))
            except ValueError:  # a damaged document is compared as it is
                out[rel] = path.read_text()
        elif path.name == "test.log":
            # how many attempts a test took is operations, not results: a worker death retries
            # every test that was in flight with it
            out[rel] = [line for line in path.read_text().splitlines() if not line.startswith("attempts:")]
        elif path.suffix == ".md":
            out[rel] = path.read_text().replace(session.name, "SESSION")
        else:
            out[rel] = path.read_text()
    return out


def assert_same_sessions(a: Path, b: Path) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sorted(sa) == sorted(sb), f"files differ: {sorted(set(sa) ^ set(sb))[:10]}"
    for name in sa:
        assert sa[name] == sb[name], f"{name} differs between {a.name} and {b.name}"


def write_binance_csv(path: Path, bars) -> Path:
    """`bars` (engine.data.Bars) as a headerless Binance kline CSV, as data.binance.vision ships it."""
    lines = []
    for t, o, h, low, c, v, tb in zip(bars.ts.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(),
                                      bars.close.tolist(), bars.volume.tolist(), bars.taker_buy_volume.tolist()):
        lines.append(f"{t},{o!r},{h!r},{low!r},{c!r},{v!r},{t + bars.interval_ms - 1},{v * c!r},100,{tb!r},{tb * c!r},0\n")
    path.write_text("".join(lines))
    return path


def days_of_bars(path: Path, days: float, seed: int = 3) -> Path:
    """A Binance CSV of `days` days of synthetic 5-minute bars."""
    from engine.synthetic import synthetic_bars

    return write_binance_csv(path, synthetic_bars(int(days * 288), seed=seed))


def showing(app, kind: type) -> bool:
    """Whether the console's top screen is a `kind` and has composed its widgets: a screen is the top one
    from the moment it is pushed, a frame before its widgets can be queried."""
    return isinstance(app.screen, kind) and app.screen.is_mounted


async def settle(pilot, condition, timeout: float = 30.0) -> None:
    """Let a console under Pilot run until `condition()` holds (AssertionError after `timeout` seconds)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("the console never showed what was expected")
        await pilot.pause(0.05)

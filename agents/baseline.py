"""The smart baseline: which config a new session starts from, and why (DESIGN.md §6).

A session starts from the best config of an earlier session only when that config earned
it out of sample; otherwise from the defaults. Stated as a rule:

- Candidates are finished sessions in the same sessions folder that ran on the **same
  data** (same file contents by SHA-256, or the same synthetic series) and on windows of
  their own (a session that reused windows has no independent evidence).
- The latest candidate (by session id) whose best config — rank 1 of its leaderboard,
  ranked on validation — has a **deflated Sharpe at least `baseline_min_dsr`** (0.95) is
  carried forward. None: the defaults.
- `--baseline defaults` always starts from the defaults; `--baseline SESSION` from that
  session's best whatever its record (the origin then says how it stood).

Holdout results play no part: the choice reads validation standings only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.jsonl import read_json
from engine.params import Params

log = logging.getLogger("maestro.baseline")


class BaselineError(ValueError):
    """`--baseline` names no finished session with a leaderboard."""


@dataclass(frozen=True)
class Baseline:
    """The config a session starts from; `origin` says where it came from in one line."""

    params: Params
    origin: str
    session: str | None = None  # the session it came from; None: the defaults
    config_id: str | None = None
    deflated_sharpe: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"session": self.session, "config_id": self.config_id, "deflated_sharpe": self.deflated_sharpe}


def same_data(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two sessions' `data` records name the same bars (a file by its contents)."""
    if a.get("kind") != b.get("kind"):
        return False
    if a["kind"] == "file":
        return a.get("sha256") is not None and a.get("sha256") == b.get("sha256")
    return all(a.get(k) == b.get(k) for k in ("seed", "n_bars", "interval_ms"))


def _evidence(best: dict[str, Any]) -> str:
    dsr = best.get("deflated_sharpe")
    return (f"{best['config_id']} {best['label']}: {best['tests']} tests, validation PnL {best['val_pnl']:,.0f} USD, "
            f"deflated Sharpe {'n/a' if dsr is None else f'{dsr:.2f}'}")


def _best_of(folder: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(session config, best standing) of a finished session, or None when it has none or is unreadable."""
    try:
        config = read_json(folder / "session_config.json")
        best = read_json(folder / "metrics_global.json").get("best")
        if not best:
            return None
        Params.model_validate_json(best["params_json"])
        return config, best
    except Exception:  # noqa: BLE001 - a damaged earlier session just does not count
        log.warning("ignoring %s as a baseline: unreadable", folder)
        return None


def choose_baseline(sessions_dir: Path, data: dict[str, Any], choice: str, min_dsr: float) -> Baseline:
    """The baseline for a new session on `data` (the module docstring's rule); BaselineError for a bad `choice`."""
    if choice == "defaults":
        return Baseline(Params(), "defaults (--baseline defaults)")
    if choice != "auto":
        folder = Path(choice) if Path(choice).is_dir() else sessions_dir / choice
        found = _best_of(folder) if folder.is_dir() else None
        if found is None:
            raise BaselineError(f"--baseline {choice}: not a finished session with a leaderboard "
                                f"(a session folder, a session id in {sessions_dir}, auto or defaults)")
        config, best = found
        other = "" if same_data(config.get("data", {}), data) else ", on other data"
        return Baseline(Params.model_validate_json(best["params_json"]),
                        f"{folder.name}'s best (--baseline{other}): {_evidence(best)}",
                        folder.name, best["config_id"], best.get("deflated_sharpe"))
    below: str | None = None
    finished = []
    if sessions_dir.is_dir():
        for folder in (p.parent for p in sessions_dir.glob("*/metrics_global.json")):
            found = _best_of(folder)
            if found is not None:
                finished.append((str(found[0].get("created_at", "")), folder.name, folder, *found))
    for _, _, folder, config, best in sorted(finished, key=lambda f: f[:2], reverse=True):  # the latest first
        if not same_data(config.get("data", {}), data):
            continue
        if config.get("windows", {}).get("reuse", True):
            below = below or f"{folder.name} reused windows: no independent evidence"
        else:
            dsr = best.get("deflated_sharpe")
            if dsr is not None and dsr >= min_dsr:
                return Baseline(Params.model_validate_json(best["params_json"]),
                                f"{folder.name}'s best: {_evidence(best)} ≥ {min_dsr:g}",
                                folder.name, best["config_id"], dsr)
            below = below or f"{folder.name}'s best, {_evidence(best)}, is below {min_dsr:g}"
    return Baseline(Params(), f"defaults ({below or 'no earlier session on this data'})")

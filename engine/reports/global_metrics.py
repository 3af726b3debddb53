"""metrics_global.json: the session's aggregates, rebuilt from its files."""

from __future__ import annotations

from typing import Any

from engine.events import latest_plans, read_events
from engine.jsonl import read_json
from engine.leaderboard import LeaderboardRow, read_leaderboard_csv
from engine.reports.segment_results import Tally, standing_dict
from engine.session import AUDIT, LEADERBOARD, PLANS, SEGMENT_RESULTS, SessionDir, test_folders
from engine.standings import standings
from engine.windows import TestPlan


def session_rows(session: SessionDir, up_to_segment: int | None = None) -> list[LeaderboardRow]:
    """Every leaderboard row of every complete test (of segments ≤ up_to_segment), in session order."""
    rows: list[LeaderboardRow] = []
    for segment, _, folder in test_folders(session):
        if (up_to_segment is None or segment <= up_to_segment) and (folder / LEADERBOARD).exists():
            rows.extend(read_leaderboard_csv(folder / LEADERBOARD))
    return rows


def global_metrics(session: SessionDir, segments: int) -> dict[str, Any]:
    """metrics_global.json: the session's aggregates, rebuilt from its files."""
    rows = session_rows(session)
    ranked = standings(rows)
    seg_results = []
    total = Tally()
    for k in range(1, segments + 1):
        path = session.segment_dir(k) / SEGMENT_RESULTS
        if path.exists():
            seg_results.append(read_json(path))
    tests = sum(r["tests"] for r in seg_results)
    failed = sum(r["tests_failed"] for r in seg_results)
    for r in seg_results:
        m = r["chosen"]["validation"]
        total.trades += m["n_trades"]
        total.pnl += m["total_pnl"]
    last_status = {plan_id: p.status for plan_id, p in latest_plans(session.file(PLANS)).items()}
    statuses: dict[str, int] = {}
    for s in last_status.values():
        statuses[s] = statuses.get(s, 0) + 1
    applied = [a for a in read_events(session.file(AUDIT)).records if a["action"] == "patch_applied"]
    best = ranked[0] if ranked else None
    ensemble = next((r["ensemble_portfolio"] for r in seg_results if "ensemble_portfolio" in r), None)
    try:
        conductor = read_json(session.file("conductor.json"))
    except ValueError:
        conductor = {}
    config = read_json(session.file("session_config.json"))
    over = next((r["overfitting"] for r in reversed(seg_results) if r.get("overfitting")), None)
    plan = config.get("windows")
    return {
        "session_id": session.session_id,
        "segments_done": len(seg_results),
        "tests": tests,
        "tests_failed": failed,
        "configs_tried": over["trials"] if over else len(ranked),
        "research_validation_trades": total.trades,
        "research_validation_pnl": total.pnl,
        "plans": len(last_status),
        "plans_by_status": dict(sorted(statuses.items())),
        "patches_applied": len(applied),
        "best": standing_dict(best) if best else None,
        "standings": [standing_dict(s) for s in ranked[:10]],
        "ensemble": ensemble,
        "agents": {"providers": conductor.get("providers", config.get("agents", {})), "llm_usage": conductor.get("llm", {})},
        "segments": [
            {"segment": r["segment"], "role": r["role"], "validation": r["chosen"]["validation"], "targets_met": r["targets_met"]}
            for r in seg_results
        ],
        "overfitting": over,
        "windows": TestPlan.from_json(plan).summary() if plan else "windows reused in turn (a session from before fitting)",
        "baseline": config.get("base_origin", ""),
        "reused_tests": sum(r.get("reused_tests", 0) for r in seg_results),
    }

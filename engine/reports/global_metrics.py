"""metrics_global.json: the session's aggregates, rebuilt from its files."""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine.events import AuditEvent, latest_plans
from engine.jsonl import SessionFileError, read_document, read_jsonl
from engine.leaderboard import LeaderboardRow, read_leaderboard_csv
from engine.reports.documents import ConfigFacts, SegmentResultsDoc
from engine.reports.segment_results import standing_dict
from engine.session import (
    AUDIT,
    CONDUCTOR,
    CONFIG,
    LEADERBOARD,
    PLANS,
    SEGMENT_RESULTS,
    ConductorState,
    SessionDir,
    test_folders,
)
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
    seg_results = [
        read_document(path, SegmentResultsDoc)
        for path in (session.segment_dir(k) / SEGMENT_RESULTS for k in range(1, segments + 1)) if path.exists()
    ]
    statuses = Counter(p.status for p in latest_plans(session.file(PLANS)).values())
    applied = [a for a in read_jsonl(session.file(AUDIT), AuditEvent).records if a.action == "patch_applied"]
    best = ranked[0] if ranked else None
    ensemble = next((r.ensemble_portfolio for r in seg_results if r.ensemble_portfolio), None)
    try:
        conductor: ConductorState | None = read_document(session.file(CONDUCTOR), ConductorState)
    except SessionFileError:  # a damaged conductor.json costs the usage figures, not the report
        conductor = None
    config = read_document(session.file(CONFIG), ConfigFacts)
    over = next((r.overfitting for r in reversed(seg_results) if r.overfitting), None)
    return {
        "session_id": session.session_id,
        "segments_done": len(seg_results),
        "tests": sum(r.tests for r in seg_results),
        "tests_failed": sum(r.tests_failed for r in seg_results),
        "configs_tried": over.trials if over else len(ranked),
        "research_validation_trades": sum(r.chosen["validation"].n_trades for r in seg_results),
        "research_validation_pnl": sum(r.chosen["validation"].total_pnl for r in seg_results),
        "plans": statuses.total(),
        "plans_by_status": dict(sorted(statuses.items())),
        "patches_applied": len(applied),
        "best": standing_dict(best) if best else None,
        "standings": [standing_dict(s) for s in ranked[:10]],
        "ensemble": ensemble.model_dump() if ensemble else None,
        "agents": {"providers": conductor.providers if conductor else config.agents,
                   "llm_usage": conductor.llm if conductor else {}},
        "segments": [
            {"segment": r.segment, "role": r.role, "validation": r.chosen["validation"].model_dump(),
             "targets_met": r.targets_met}
            for r in seg_results
        ],
        "overfitting": over.model_dump() if over else None,
        "windows": TestPlan.from_json(config.windows).summary() if config.windows
                   else "windows reused in turn (a session from before fitting)",
        "baseline": config.base_origin,
        "reused_tests": sum(r.reused_tests for r in seg_results),
    }

"""Aggregates and documents: segment_results.json, the one-page plans, the session summary.

Everything here is computed from the session's files (trades, scores, leaderboards, plans,
audit), so `maestro-tui report DIR` rewrites the same documents the conductor wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from agents.documents import checked
from agents.plans import describe_outcome
from engine.events import latest_plans, read_events
from engine.jsonl import read_json, write_json_atomic, write_text_atomic
from engine.leaderboard import LeaderboardRow, read_leaderboard_csv
from engine.metrics import TradeTally
from engine.session import AUDIT, LEADERBOARD, METRICS_GLOBAL, PLANS, SEGMENT_RESULTS, SUMMARY, SessionDir, test_folders
from engine.standings import Standing, standings
from engine.targets import Targets, targets_met
from engine.text import visible
from engine.windows import TestPlan

PHASE_NAMES = ("train", "validation", "holdout")


@dataclass
class Tally(TradeTally):
    """Running trade statistics of one config over many tests, for one phase."""

    worst_test_maxdd: float = 0.0
    tests: int = 0

    def add_trades(self, trades: Iterable[Mapping[str, Any]], blunder_bars: int) -> None:
        for t in trades:
            self.add(t, blunder_bars)

    def metrics(self) -> dict[str, float | int]:
        """hit, payoff, pnl and the rest, as engine.metrics defines them, over every trade tallied."""
        return {
            "tests": self.tests,
            "n_trades": self.trades,
            "hit": self.hit,
            "payoff": self.payoff,
            "total_pnl": self.pnl,
            "maxdd": self.worst_test_maxdd,
            "blunders": self.blunders,
            "blunders_per_100": self.blunders_per_100,
            "high_vol_share": self.high_vol_share,
        }


@dataclass
class SegmentTally:
    """What a segment's research config did, per phase, and how many tests ran or failed."""

    by_phase: dict[str, Tally] = field(default_factory=lambda: {p: Tally() for p in PHASE_NAMES})
    tests: int = 0
    failed: int = 0

    def add_test(self, trades: list[Mapping[str, Any]], row: LeaderboardRow | None, blunder_bars: int) -> None:
        self.tests += 1
        if row is None:
            self.failed += 1
            return
        for phase, prefix in zip(PHASE_NAMES, ("train", "val", "hold")):
            tally = self.by_phase[phase]
            tally.tests += 1
            tally.add_trades((t for t in trades if t["phase"] == phase), blunder_bars)
            tally.worst_test_maxdd = min(tally.worst_test_maxdd, getattr(row, f"{prefix}_maxdd"))


def standing_dict(s: Standing) -> dict[str, Any]:
    return asdict(s)


def segment_results(
    segment: int,
    role: str,
    tally: SegmentTally,
    rows: list[LeaderboardRow],
    plan: Mapping[str, Any],
    patches: list[dict[str, Any]],
    targets: Targets,
) -> dict[str, Any]:
    """segment_results.json: the research config per phase, each baseline, the segment's standings."""
    chosen = {phase: t.metrics() for phase, t in tally.by_phase.items()}
    by_method: dict[str, list[LeaderboardRow]] = {}
    for r in rows:
        if r.role == "baseline":
            by_method.setdefault(r.method, []).append(r)
    baselines = {
        m: {
            "tests": len(rs),
            "val_trades": sum(r.val_trades for r in rs),
            "val_pnl": sum(r.val_pnl for r in rs),
            "val_score": sum(r.val_score for r in rs) / len(rs),
        }
        for m, rs in sorted(by_method.items())
    }
    return {
        "segment": segment,
        "role": role,
        "tests": tally.tests,
        "tests_failed": tally.failed,
        "chosen_config": plan.get("chosen", []),
        "patches": patches,
        "chosen": chosen,
        "targets": targets.model_dump(),
        "targets_met": targets_met(targets, chosen["validation"]),
        "baselines": baselines,
        "standings": [standing_dict(s) for s in standings(rows)[:10]],
    }


# ---------------------------------------------------------------- reading a session back


def session_rows(session: SessionDir, up_to_segment: int | None = None) -> list[LeaderboardRow]:
    """Every leaderboard row of every complete test (of segments ≤ up_to_segment), in session order."""
    rows: list[LeaderboardRow] = []
    for segment, _, folder in test_folders(session):
        if (up_to_segment is None or segment <= up_to_segment) and (folder / LEADERBOARD).exists():
            rows.extend(read_leaderboard_csv(folder / LEADERBOARD))
    return rows


def _fmt_metrics(m: Mapping[str, Any]) -> str:
    return (
        f"{m.get('n_trades', 0)} trades, hit {m.get('hit', 0):.3f}, payoff {m.get('payoff', 0):.2f}, "
        f"pnl {m.get('total_pnl', 0):,.0f} USD, worst test drawdown {m.get('maxdd', 0):,.0f} USD, "
        f"blunders {m.get('blunders_per_100', 0):.1f}/100, high-vol share {m.get('high_vol_share', 0):.0%}"
    )


def plan_after_segment(session: SessionDir, segment: int, segments: int) -> str:
    """The one-page plan written after segments 2 and 4: where the research stands, what comes next."""
    res = read_json(session.segment_dir(segment) / SEGMENT_RESULTS)
    rows = session_rows(session, up_to_segment=segment)  # as it stood then, even when rewritten later
    top = standings(rows)[:3]
    lines = [
        f"# Plan after segment {segment} of {segments}",
        "",
        f"Session `{session.session_id}`. Research config of segment {segment} ({res['role']}):",
        "",
        f"- validation: {_fmt_metrics(res['chosen']['validation'])}",
        f"- holdout: {_fmt_metrics(res['chosen']['holdout'])}",
        "",
        "Targets: " + ", ".join(f"{k} {'met' if ok else 'missed'}" for k, ok in res["targets_met"].items()) + ".",
        "",
        "## Best configs so far (validation only)",
        "",
        "| rank | config | tests | val trades | val hit | val pnl USD | val score | deflated Sharpe |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in top:
        dsr = "n/a" if s.deflated_sharpe is None else f"{s.deflated_sharpe:.2f}"
        lines.append(
            f"| {s.rank} | {s.label} | {s.tests} | {s.val_trades} | {s.val_hit:.3f} | {s.val_pnl:,.0f} | {s.val_score:.1f} | {dsr} |"
        )
    nxt = {2: "segment 3 tries the methods not yet researched, with the exits and gates learned so far",
           4: "segment 5 runs the best configs together as an ensemble under the allocation layer"}.get(segment, "")
    lines += ["", "## Next", "", f"- {nxt}." if nxt else "- the session ends.", ""]
    if res["patches"]:
        lines += ["## Changes applied in this segment", ""]
        lines += [f"- {p['change']} (from {p['from_test']}, {p['who']})" for p in res["patches"]]
        lines.append("")
    return visible("\n".join(lines))  # agents' words and notes: text, never a control sequence


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


def luck_section(metrics: Mapping[str, Any]) -> list[str]:
    """How much of the result chance alone would give: trials, PBO, profitable configs against luck."""
    o = metrics.get("overfitting")
    if not o:
        return []
    n = o["trials"]
    pbo = (f"**{o['pbo']:.2f}** over {o['tests']} tests ({o['pbo_splits']} blocks, {o['pbo_combinations']:,} "
           f"in/out-of-sample splits; median logit {o['pbo_median_logit']})") if o["pbo"] is not None else f"n/a ({o['pbo_why']})"
    alpha = o["significance_alpha"]
    return [
        "",
        "## How much of this is luck",
        "",
        f"- Configs tried: **{n}** (every proposal, every plan's variant — agents' and humans' — the ensemble and the baselines).",
        f"- Probability of backtest overfitting (CSCV): {pbo}. Near 0.5: picking the best in-sample config is no "
        "better than picking one at random; near 0: the in-sample winner keeps ranking well out of sample.",
        f"- Profitable out of sample (validation PnL > 0 over all {o['tests']} tests): **{o['profitable_validation']}** "
        f"of {n}; chance alone: about {o['profitable_by_chance']:g}.",
        f"- Significant at {alpha:.0%} (one-sided t-test of the per-test returns): **{o['significant_validation']}**; "
        f"chance alone: about {o['significant_by_chance']:.1f}. Of those, {o['significant_and_holdout_profitable']} also "
        f"made money on holdout.",
        f"- Profitable on holdout: {o['profitable_holdout']} of {n}.",
    ]


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, no column breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plans_section(session: SessionDir) -> list[str]:
    """Every plan with how it ended and, for applied ones, what it did (its outcome)."""
    latest = latest_plans(session.file(PLANS))
    if not latest:
        return []
    lines = [
        "",
        "## Plans and their effect",
        "",
        "Effect: the metric that triggered the plan and the mean episode score, on the research config's validation "
        "episodes, in the rule window before the plan vs the first full window of tests run with its patch "
        "(✓: better even at the cautious end of the noise, with the score holding up).",
        "",
        "| plan | test | change | ended | by / why | effect |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in latest.values():
        change = ", ".join(f"{k} {v}" for k, v in p.change.items())
        if p.status in ("applied", "edited"):
            ended = f"{p.status} from {p.applied_from or '?'}"
            effect = describe_outcome(p.outcome) or "not measured: the segment ended first"
        else:
            ended = p.status + (f" by {p.superseded_by}" if p.superseded_by else "")
            effect = ""
        lines.append(f"| {p.plan_id} | {p.test_id or ''} | {_cell(change)} | {ended} | "
                     f"{_cell(p.note or '')} | {_cell(effect)} |")
    return lines


def session_summary(session: SessionDir, metrics: Mapping[str, Any]) -> str:
    """session_summary.md: the final report, figures equal to metrics_global.json."""
    lines = [
        f"# Session {metrics['session_id']}",
        "",
        f"{metrics['tests']} tests in {metrics['segments_done']} segments ({metrics['tests_failed']} failed), "
        f"{metrics['configs_tried']} configs tried, {metrics['plans']} plans "
        f"({', '.join(f'{v} {k}' for k, v in metrics['plans_by_status'].items()) or 'none'}), "
        f"{metrics['patches_applied']} patches applied.",
        "",
        f"- Started from: {metrics.get('baseline') or 'the defaults'}.",
        f"- Windows: {metrics.get('windows', '')}.",
        "",
        "## Segments (research config, validation)",
        "",
        "| segment | role | trades | hit | payoff | pnl USD | worst test dd USD | targets met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in metrics["segments"]:
        m = s["validation"]
        met = sum(s["targets_met"].values())
        lines.append(
            f"| {s['segment']} | {s['role']} | {m['n_trades']} | {m['hit']:.3f} | {m['payoff']:.2f} | "
            f"{m['total_pnl']:,.0f} | {m['maxdd']:,.0f} | {met}/{len(s['targets_met'])} |"
        )
    lines += [
        "",
        "## Leaderboard (ranked on validation; deflated Sharpe given every config tried)",
        "",
        "| rank | config | id | tests | val trades | val hit | val payoff | val pnl USD | val score | holdout pnl USD | deflated Sharpe |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in metrics["standings"]:
        dsr = "n/a" if s["deflated_sharpe"] is None else f"{s['deflated_sharpe']:.2f}"
        lines.append(
            f"| {s['rank']} | {s['label']} | {s['config_id']} | {s['tests']} | {s['val_trades']} | {s['val_hit']:.3f} | "
            f"{s['val_payoff']:.2f} | {s['val_pnl']:,.0f} | {s['val_score']:.1f} | {s['holdout_pnl']:,.0f} | {dsr} |"
        )
    lines += luck_section(metrics)
    lines += plans_section(session)
    agents = metrics.get("agents", {})
    usage = agents.get("llm_usage") or {}
    providers = ", ".join(f"{role}: {p}" for role, p in agents.get("providers", {}).items())
    lines += ["", "## Agents", "", f"{providers or 'offline'}; LLM usage: {usage.get('calls', 0)} calls, "
              f"{usage.get('input_tokens', 0):,} input and {usage.get('output_tokens', 0):,} output tokens, "
              f"cost {usage.get('cost_usd', 0.0):.4f} USD (prices are settings)."]
    charts = [name for name in ("equity.png", "targets.png", "allocation.png") if session.file(name).exists()]
    if charts:
        lines += ["", "## Charts", ""] + [f"![{name[:-4]}]({name})" for name in charts]
    e = metrics.get("ensemble")
    if e:
        lines += [
            "",
            "## Ensemble portfolio (segment 5, under the allocation layer)",
            "",
            f"{len(e['members'])} configs over {e['bars']:,} bars, {e['capital_usd']:,.0f} USD: "
            f"pnl {e['pnl']:,.0f} USD, Sharpe {e['sharpe']:.2f}, max drawdown {e['maxdd']:,.0f} USD; "
            f"equal weights {e['equal_weights_pnl']:,.0f} USD, without the systemic override "
            f"{e['no_override_pnl']:,.0f} USD; {e['override_bars']} bars with BUYs held, {e['rebalances']} rebalances.",
            "",
            "| member | final mode | final allocation |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {name} | {f['mode']} | {f['allocation']:.0%} |" for name, f in e["final"].items()]
    lines.append("")
    return visible("\n".join(lines))  # agents' words and notes: text, never a control sequence


def write_reports(session: SessionDir, segments: int) -> dict[str, Any]:
    """(Re)write metrics_global.json and session_summary.md from the session's files."""
    metrics = global_metrics(session, segments)
    write_json_atomic(session.file(METRICS_GLOBAL), checked(METRICS_GLOBAL, metrics))
    write_text_atomic(session.file(SUMMARY), session_summary(session, metrics))
    return metrics


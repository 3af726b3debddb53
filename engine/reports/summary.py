"""session_summary.md: the session's aggregates (metrics_global.json) in words and tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.events import describe_change, latest_plans
from engine.jsonl import write_json_atomic, write_text_atomic
from engine.reports.documents import MetricsGlobalDoc, checked
from engine.reports.global_metrics import global_metrics
from engine.session import METRICS_GLOBAL, PLANS, SUMMARY, SessionDir
from engine.text import visible


def _num(v: Any) -> str:
    if v is None:
        return "?"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def outcome_metric(o: Mapping[str, Any]) -> str:
    """The triggering metric of a plan's outcome, before → after: `hit 0.41→0.47`."""
    name = {"blunders_per_100": "blunders/100", "high_vol_share": "high-vol share"}.get(o["metric"], o["metric"])
    return f"{name} {_num(o.get('before'))}→{_num(o.get('after'))}"


def describe_outcome(o: Mapping[str, Any] | None) -> str:
    """One short line for a plan's outcome: `hit 0.41→0.47 ✓, score 38→44 (12→15 trades)`."""
    if not o:
        return ""
    mark = "✓" if o.get("improved") else "✗"
    return (f"{outcome_metric(o)} {mark}, score {_num(o.get('score_before'))}→"
            f"{_num(o.get('score_after'))} ({o.get('trades_before', '?')}→{o.get('trades_after', '?')} trades)")


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
        change = describe_change(p.change)
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
            "| member | id | final mode | final allocation |",
            "| --- | --- | --- | --- |",
        ]
        # a member is named "k:" + its config label; the leaderboard above has its id (a label names one config)
        ids = {s["label"]: s["config_id"] for s in metrics["standings"]}
        lines += [f"| {name} | {ids.get(name.split(':', 1)[-1], '')} | {f['mode']} | {f['allocation']:.0%} |"
                  for name, f in e["final"].items()]
    lines.append("")
    return visible("\n".join(lines))  # agents' words and notes: text, never a control sequence


def write_reports(session: SessionDir, segments: int) -> dict[str, Any]:
    """(Re)write metrics_global.json and session_summary.md from the session's files."""
    metrics = global_metrics(session, segments)
    write_json_atomic(session.file(METRICS_GLOBAL), checked(MetricsGlobalDoc, metrics))
    write_text_atomic(session.file(SUMMARY), session_summary(session, metrics))
    return metrics

"""The one-page plan written after segments 2 and 4: where the research stands, what comes next."""

from __future__ import annotations

from engine.events import describe_change
from engine.jsonl import read_document
from engine.reports.documents import PhaseFigures, SegmentResultsDoc
from engine.reports.global_metrics import session_rows
from engine.session import SEGMENT_RESULTS, SessionDir
from engine.standings import standings
from engine.text import visible


def _fmt_metrics(m: PhaseFigures) -> str:
    return (
        f"{m.n_trades} trades, hit {m.hit:.3f}, payoff {m.payoff:.2f}, "
        f"pnl {m.total_pnl:,.0f} USD, worst test drawdown {m.maxdd:,.0f} USD, "
        f"blunders {m.blunders_per_100:.1f}/100, high-vol share {m.high_vol_share:.0%}"
    )


def plan_after_segment(session: SessionDir, segment: int, segments: int) -> str:
    """The one-page plan written after segments 2 and 4: where the research stands, what comes next."""
    res = read_document(session.segment_dir(segment) / SEGMENT_RESULTS, SegmentResultsDoc)
    rows = session_rows(session, up_to_segment=segment)  # as it stood then, even when rewritten later
    top = standings(rows)[:3]
    lines = [
        f"# Plan after segment {segment} of {segments}",
        "",
        f"Session `{session.session_id}`. Research config of segment {segment} ({res.role}):",
        "",
        f"- validation: {_fmt_metrics(res.chosen['validation'])}",
        f"- holdout: {_fmt_metrics(res.chosen['holdout'])}",
        "",
        "Targets: " + ", ".join(f"{k} {'met' if ok else 'missed'}" for k, ok in res.targets_met.items()) + ".",
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
    if res.patches:
        lines += ["## Changes applied in this segment", ""]
        lines += [f"- {describe_change(p.change) or 'no change'} (plan {p.plan_id}, from {p.from_test}, by {p.who})"
                  for p in res.patches]
        lines.append("")
    return visible("\n".join(lines))  # agents' words and notes: text, never a control sequence

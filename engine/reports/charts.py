"""PNG charts for the session report: traders would rather look than read.

- equity.png: cumulative validation PnL of the top configs over the tests they ran in;
- targets.png: the research config's target metrics per test, with plan decisions marked;
- allocation.png: each strategy's share of capital over time, research and ensemble apart.
Everything comes from the session's files; matplotlib renders off-screen (Agg).
"""

from __future__ import annotations

from pathlib import Path

from engine.events import AllocationEvent, AuditEvent, latest_plans
from engine.jsonl import read_document, read_jsonl
from engine.leaderboard import LeaderboardRow
from engine.reports.documents import ConfigFacts
from engine.session import ALLOCATION, AUDIT, CONFIG, PLANS, SessionDir, parse_test_id
from engine.standings import StandingsBook
from engine.targets import TARGETS, Targets, target_values

CHARTS = {"equity": "equity.png", "targets": "targets.png", "allocation": "allocation.png"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _legend_or_note(ax, empty: str) -> None:
    """The legend of the labelled lines; with none (a session stopped before any), `empty` in the middle
    of the axes instead: matplotlib warns on stderr about a legend of nothing."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    else:
        ax.text(0.5, 0.5, empty, transform=ax.transAxes, ha="center", va="center", color="grey")


def _test_index(test_id: str, tests: int) -> int:
    seg, t = parse_test_id(test_id)
    return (seg - 1) * tests + (t - 1)


def equity_chart(path: Path, rows: list[LeaderboardRow], tests: int, top: int = 5) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5), dpi=110)
    book = StandingsBook()  # one pass over the rows for the ranking and every curve
    book.add(rows)
    for s in book.table()[:top]:
        curve = book.equity(s.config_id)
        xs = [_test_index(test_id, tests) for test_id, _ in curve]
        ys = [total for _, total in curve]
        # solid where the config ran test after test; dotted and flat across the tests it sat out
        # (its PnL did not move there), so a gap never reads as a trend
        color, start = None, 0
        for i in range(1, len(xs) + 1):
            if i == len(xs) or xs[i] != xs[i - 1] + 1:
                (line,) = ax.plot(xs[start:i], ys[start:i], color=color, linewidth=1.4,
                                  label=f"#{s.rank} {s.label} ({s.config_id})" if start == 0 else None)
                color = line.get_color()
                if i < len(xs):
                    ax.plot([xs[i - 1], xs[i]], [ys[i - 1], ys[i - 1]], color=color, linewidth=0.8, linestyle=":")
                start = i
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set_title("Top configs: cumulative validation PnL (USD)")
    ax.set_xlabel("test (session order)")
    ax.set_ylabel("USD")
    _legend_or_note(ax, "no test has finished yet")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def targets_chart(path: Path, rows: list[LeaderboardRow], targets: Targets, tests: int, decisions: list[dict]) -> None:
    plt = _plt()
    research = [r for r in rows if r.role in ("chosen", "ensemble")]
    firsts: dict[str, LeaderboardRow] = {}
    for r in research:
        firsts.setdefault(r.test_id, r)
    xs = [_test_index(t, tests) for t in firsts]
    per_test = list(firsts.values())
    # thin: each test alone (a test has few trades, so it jumps); bold: the last 10 tests pooled,
    # the figure the console's targets pane shows and the rules judge by
    single = [target_values([r]) for r in per_test]
    pooled = [target_values(per_test[max(0, i - 9): i + 1]) for i in range(len(per_test))]
    fig, axes = plt.subplots(len(TARGETS), 1, figsize=(10, 9), dpi=110, sharex=True)
    for ax, t in zip(axes, TARGETS):
        ax.plot(xs, [v[t.metric] for v in single], linewidth=0.6, alpha=0.35, color="tab:blue")
        ax.plot(xs, [v[t.metric] for v in pooled], linewidth=1.4, color="tab:blue")
        target = t.threshold(targets)
        if target is not None:
            ax.axhline(target, color="tab:red", linestyle="--", linewidth=0.8)
        for d in decisions:
            color = {"applied": "tab:green", "vetoed": "tab:red"}.get(d["status"], "tab:orange")
            ax.axvline(d["x"], color=color, linewidth=0.6, alpha=0.7)
        ax.set_ylabel(t.label, fontsize=8)
    axes[0].set_title("Research config, validation: last 10 tests pooled (bold), each test (faint); "
                      "targets dashed; plans: green applied, red vetoed", fontsize=9)
    axes[-1].set_xlabel("test (session order)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# the two environments the allocation layer runs in (engine/allocation.py's agent_id prefix)
_ALLOCATION_VIEWS = {"research": "Research: each method's family",
                     "ensemble": "Segment 5 ensemble: each member under the allocation layer"}


def _allocation_view(e: AllocationEvent) -> str:
    """Which environment decided `e`: its agent_id's prefix; files older than agent_id, by name
    (ensemble members are numbered `1:macd_trend ...`)."""
    if e.agent_id and "/" in e.agent_id:
        return e.agent_id.split("/", 1)[0]
    return "ensemble" if e.override or e.strategy.split(":", 1)[0].isdigit() else "research"


def allocation_chart(path: Path, events: list[AllocationEvent]) -> None:
    """Share of capital per strategy over the bars' time (UTC), one panel per environment, overrides marked."""
    from datetime import datetime

    plt = _plt()
    from matplotlib.dates import ConciseDateFormatter

    when = lambda ts: datetime.fromisoformat(ts.replace("Z", "+00:00"))  # noqa: E731
    views: dict[str, dict[str, list[tuple[datetime, float]]]] = {}
    overrides: dict[str, list[datetime]] = {}
    for e in events:
        view = _allocation_view(e)
        if e.override:
            overrides.setdefault(view, []).append(when(e.ts))
        else:
            views.setdefault(view, {}).setdefault(e.strategy, []).append((when(e.ts), e.allocation))
    order = list(_ALLOCATION_VIEWS)
    names = sorted(set(views) | set(overrides), key=lambda v: (order.index(v) if v in order else len(order), v))
    names = names or ["research"]
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 3.2 * len(names)), dpi=110, squeeze=False)
    for ax, view in zip(axes[:, 0], names):
        for name, points in sorted(views.get(view, {}).items()):
            points.sort()
            ax.step([t for t, _ in points], [a for _, a in points], where="post", label=name[:40])
        for t in overrides.get(view, []):
            ax.axvline(t, color="tab:red", linewidth=0.8, linestyle="--")
        n = len(overrides.get(view, []))
        ax.set_title(f"{_ALLOCATION_VIEWS.get(view, view)} ({n} systemic-risk override{'s' * (n != 1)}, red dashed)",
                     fontsize=9)
        ax.set_ylabel("share of capital")
        ax.set_xlabel("bar time (UTC)", fontsize=8)
        # each panel its own span: the ensemble's weeks would be a sliver on the research months
        ax.xaxis.set_major_formatter(ConciseDateFormatter(ax.xaxis.get_major_locator()))
        _legend_or_note(ax, "no allocation decision yet")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_charts(session: SessionDir, rows: list[LeaderboardRow]) -> dict[str, str]:
    """Write the three PNGs next to the summary; returns {chart: file name}."""
    settings = read_document(session.file(CONFIG), ConfigFacts).settings
    tests, targets = settings.tests, settings.targets
    latest = latest_plans(session.file(PLANS))
    applied_at = {a.plan_id: a.details["from_index"] for a in read_jsonl(session.file(AUDIT), AuditEvent).records
                  if a.action == "patch_applied"}
    decisions = [
        {"status": p.status, "x": applied_at.get(pid, _test_index(p.test_id, tests) if p.test_id else 0)}
        for pid, p in latest.items() if p.status in ("applied", "vetoed", "pending")
    ]
    equity_chart(session.file(CHARTS["equity"]), rows, tests)
    targets_chart(session.file(CHARTS["targets"]), rows, targets, tests, decisions)
    allocation_chart(session.file(CHARTS["allocation"]), read_jsonl(session.file(ALLOCATION), AllocationEvent).records)
    return dict(CHARTS)

"""The main screen's panes. Each `show(view)` redraws from the SessionView, by diff."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.containers import Vertical
from textual.events import Resize
from textual.message import Message
from textual.widgets import DataTable, Log, Static

from engine.configs import short_labels
from engine.events import PlanEvent
from engine.metrics import PAYOFF_CAP
from engine.reports.summary import outcome_metric
from engine.session import parse_test_id
from engine.standings import Standing
from engine.targets import TARGET_OF, TARGETS, thresholds
from engine.text import visible
from maestro_tui.state import RECENT_TESTS, SessionView
from maestro_tui.widgets.table import SyncedTable

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 14) -> str:
    """A one-line trend of the last `width` values."""
    vals = values[-width:]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(BARS[min(7, int((v - lo) / span * 7.999))] for v in vals)


def show_text(widget: Static, content: Text | str) -> None:
    """Update a Static only when its content changed: an unchanged pane costs no repaint and no frame."""
    if content != widget.content:
        widget.update(content)


def _ok(ok: bool, text: str, judged: bool = True) -> Text:
    """A number judged against a target: green when it meets it, red when not; dim when there is nothing to judge."""
    return Text(text, style=("green" if ok else "red") if judged else "dim", justify="right")


def num(text: str, style: str = "") -> Text:
    """A number's cell: right-aligned, so digits line up down the column."""
    return Text(text, style=style, justify="right")


def usd(value: float) -> str:
    """Whole USD with thousands separators: `-12,345`, `550` (never `-0`)."""
    return f"{round(value):,}"


def payoff_text(value: float) -> str:
    """A payoff: `1.30`, or `≥10` at the cap (engine.metrics.PAYOFF_CAP: wins and no loss, or wins 10× the losses)."""
    return f"≥{PAYOFF_CAP:g}" if value >= PAYOFF_CAP else f"{value:.2f}"


def metric_text(metric: str, value: float) -> str:
    """A target metric's value as the targets show it (payoff capped: `≥10`)."""
    return payoff_text(value) if metric == "payoff" else TARGET_OF[metric].fmt.format(value)


def cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, ending in `…` when cut."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _widths(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[int]:
    """Each column's width: its widest cell or its header."""
    return [max([len(h), *(len(str(r[i])) for r in rows)]) for i, h in enumerate(headers)]


class Pane(Vertical):
    """A titled box around one widget."""

    DEFAULT_CSS = """
    Pane { border: round $primary-darken-2; border-title-color: $text-accent; height: 1fr; }
    Pane:focus-within { border: round $accent; }
    Pane.hidden { display: none; }
    """

    def __init__(self, title: str, *children, **kw) -> None:
        super().__init__(*children, **kw)
        self.border_title = title


PHASE_CODES = {"train": "T", "validation": "V", "holdout": "H"}  # the episodes pane's `ph`, told in its foot


def short_test_id(test_id: str) -> str:
    """`s5 t100` for seg5_test100 (a narrow column); any other text as it is."""
    try:
        segment, test = parse_test_id(test_id)
    except ValueError:
        return test_id
    return f"s{segment} t{test}"


class EpisodesTable(SyncedTable):
    """ScoreEvents as they arrive, newest first, coloured against the targets; an episode without trades is dim.

    The columns a trader reads first (test, phase, trades, pnl, hit, payoff) fit a third of a
    160-column screen beside the scrollbar; maxdd, score and the volatility regime follow.
    """

    MAX_ROWS = 40  # newest first, so every new episode re-lays the table out: hold what a tall pane shows
    COLUMNS = ("test", "ep", "ph", "trades", "pnl USD", "hit", "payoff", "maxdd", "score", "vol")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)
        if self.parent is not None:
            self.parent.border_subtitle = "ph: " + " · ".join(f"{c} {p}" for p, c in PHASE_CODES.items())

    def show(self, view: SessionView, targets: Mapping[str, Any]) -> None:
        """`targets`: the session's settings.targets (SessionConfig.targets); a threshold not there takes its default."""
        limits = thresholds(targets)

        def met(metric: str, value: float) -> bool:
            return TARGET_OF[metric].met(value, limits[metric])

        rows = []
        for s in reversed(list(view.episodes)[-self.MAX_ROWS:]):
            traded = s.n_trades > 0
            plain = "" if traded else "dim"  # an episode without trades has nothing to judge: no colour says it did well

            dd_ok = met("maxdd", s.maxdd)
            rows.append((f"{s.test_id}:{s.episode_id}", [
                Text(short_test_id(s.test_id), style=plain), num(str(s.episode_id), plain),
                Text(PHASE_CODES.get(s.phase, s.phase), style=plain), num(str(s.n_trades), plain),
                _ok(s.total_pnl >= 0, usd(s.total_pnl), traded),
                _ok(met("hit", s.hit), f"{s.hit:.2f}" if traded else "—", traded),
                _ok(met("payoff", s.payoff), payoff_text(s.payoff) if traded else "—", traded),
                # a drawdown is of the equity, an open position's too: one beyond the target shows without trades
                _ok(dd_ok, usd(s.maxdd), traded or not dd_ok),
                num(f"{s.score:.0f}", plain), Text(s.vol_regime, style=plain),
            ]))
        self.sync(rows)


# What `s` cycles through, each with the direction that puts the best first: (title word, column, higher is better)
SORTS = (
    ("score", "score", True), ("pnl", "val pnl", True), ("hit", "hit", True), ("payoff", "payoff", True),
    ("DSR", "DSR", True), ("trades", "trades", True), ("tests", "tests", True), ("method", "method", False),
    ("config", "config", False),
)
# the figure each column sorts by (None: not known yet, listed last either way)
SORT_KEYS: dict[str, Callable[[Standing], Any]] = {
    "score": lambda s: s.val_score, "val pnl": lambda s: s.val_pnl, "hit": lambda s: s.val_hit,
    "payoff": lambda s: s.val_payoff, "DSR": lambda s: s.deflated_sharpe, "trades": lambda s: s.val_trades,
    "tests": lambda s: s.tests, "method": lambda s: s.method, "config": lambda s: s.label,
}


class LeaderboardDetail(Static):
    """The selected leaderboard row's whole config — rank, id and label (engine.configs.config_label: every
    parameter away from its default) — under the table (LeaderboardTable mounts it)."""

    DEFAULT_CSS = "LeaderboardDetail { height: auto; max-height: 3; color: $text-muted; }"


class LeaderboardTable(SyncedTable):
    """Configs ranked on out-of-sample (validation) results, with the deflated Sharpe; sortable (best first);
    filterable by method.

    The label (engine.configs.short_labels: what sets a config apart, unique on the table) stays
    in sight when the table scrolls sideways; the figures a trader scans first follow it and fit
    a third of a 160-column screen; the selected row's whole config is the line under the table.
    """

    COLUMNS = ("config", "val pnl", "score", "DSR", "tests", "rank", "method", "trades", "hit", "payoff")
    FIRST = 5  # the label and the figures that must fit beside it: the label takes the room they leave
    MAX_ROWS = 200  # a table holds what a trader scrolls through; sort or filter to see others
    MIN_LABEL = 12  # short_labels keeps labels apart down to this width

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.detail = LeaderboardDetail()
        self._view: SessionView | None = None
        self._labels: tuple[tuple[str, ...], int | None, dict[str, str]] = ((), None, {})

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.fixed_columns = 1
        self.add_columns(*self.COLUMNS)
        self.sort_index = 0  # into SORTS: by score, best first, which is the ranking's order
        self.sort_reverse = False  # True: worst first
        self.method_filter: str | None = None
        if self.parent is not None:
            self.parent.mount(self.detail, after=self)

    def next_sort(self) -> None:
        """Sort by the next column of SORTS, best first."""
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.sort_reverse = False

    def sort_title(self) -> str:
        """`by score ↓ · ema_crossover only`: the order (↓ best first, ↑ worst first) and the method filter."""
        word = SORTS[self.sort_index][0]
        title = f"by {word} {'↑' if self.sort_reverse else '↓'}"
        return title + (f" · {self.method_filter} only" if self.method_filter else "")

    def _short_labels(self, listed: list[Standing], width: int | None) -> dict[str, str]:
        """short_labels of the listed configs, computed again only when the list or the width changed."""
        ids = tuple(s.config_id for s in listed)
        if self._labels[:2] != (ids, width):
            self._labels = (ids, width, short_labels({s.config_id: json.loads(s.params_json) for s in listed}, width))
        return self._labels[2]

    def show(self, view: SessionView) -> None:
        self._view = view
        listed = [s for s in view.standings() if not self.method_filter or s.method == self.method_filter]
        _, column, higher_better = SORTS[self.sort_index]
        key = SORT_KEYS[column]
        known = [s for s in listed if key(s) is not None]
        # best first: descending where higher is better; ties keep the ranking's order (standings come ranked)
        known.sort(key=key, reverse=higher_better != self.sort_reverse)
        ordered = (known + [s for s in listed if key(s) is None])[: self.MAX_ROWS]  # a DSR not known yet is last
        figures = [[
            usd(s.val_pnl), f"{s.val_score:.1f}", "n/a" if s.deflated_sharpe is None else f"{s.deflated_sharpe:.2f}",
            str(s.tests), str(s.rank), s.method, str(s.val_trades), f"{s.val_hit:.3f}", payoff_text(s.val_payoff),
        ] for s in ordered]
        room = self.room(len(ordered))
        width = None
        if room is not None:
            beside = sum(w + 2 * self.cell_padding for w in _widths(self.COLUMNS[1:self.FIRST], figures))
            width = max(self.MIN_LABEL, room - beside - 2 * self.cell_padding)
        labels = self._short_labels(ordered, width)
        if width is not None:
            self.set_width(0, max([len(self.COLUMNS[0]), *(len(t) for t in labels.values())]))
        rows = [(s.config_id, [Text(labels[s.config_id]), *(num(f) for f in cells[:5]), cells[5],
                               *(num(f) for f in cells[6:])])
                for s, cells in zip(ordered, figures)]
        if self.parent is not None:
            # the frame's title says what is listed and in what order; its foot, how many there are when not
            # all are listed and how much of the ranking luck could make (trials and PBO, once a segment ended)
            self.parent.border_title = f"3 leaderboard · {self.sort_title()}"
            foot = [] if view.trials is None else [
                f"{view.trials} tried · PBO {'n/a' if view.pbo is None else f'{view.pbo:.2f}'}"]
            if len(listed) > self.MAX_ROWS:
                foot.append(f"top {self.MAX_ROWS} of {len(listed)}")
            self.parent.border_subtitle = " · ".join(foot)
        self.sync(rows)
        self._show_detail()

    def _show_detail(self) -> None:
        key = self.selected_key()
        chosen = next((s for s in self._view.standings() if s.config_id == key), None) if self._view and key else None
        show_text(self.detail, one_line(f"#{chosen.rank} {chosen.config_id} {chosen.label}") if chosen else Text(""))

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    def on_resize(self, event: Resize) -> None:
        if self._view is not None:  # the label takes the room the figures leave: a new width, new labels
            self.show(self._view)

    def selected_config(self) -> str | None:
        return self.selected_key()


STATUS_STYLE = {
    "pending": "bold yellow", "applied": "green", "approved": "green", "edited": "cyan",
    "vetoed": "red", "superseded": "dim", "expired": "dim",
}


def value_text(value: object) -> str:
    """A parameter value for people: `on`, `240`, `1.5`, `100,000`."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        if float(value).is_integer() and abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:g}" if isinstance(value, float) else str(value)
    return "—" if value is None else str(value)


def plan_change(plan: PlanEvent) -> str:
    """`atr_stop_mult 1.5 → 1.8`, with `(was 1.2)` where the plan showed another old value than the one in force.

    From the patch, which a PlanEvent never has empty; its `change` is the same in the files' spelling (`->`).
    """
    parts = []
    for item in plan.patch:
        text = f"{item.parameter} {value_text(item.old_value)} → {value_text(item.new_value)}"
        if item.shown_old_value is not None:
            text += f" (was {value_text(item.shown_old_value)})"
        parts.append(text)
    return ", ".join(parts)


def plan_effect(plan: PlanEvent, finished: bool = False) -> Text:
    """What an applied or edited plan did to the metric that triggered it (`✓ hit 0.3→0.58`: the verdict first,
    so a narrow pane keeps it), or that it is being measured."""
    outcome = plan.outcome
    if outcome:
        improved = bool(outcome.get("improved"))
        return Text(f"{'✓' if improved else '✗'} {outcome_metric(outcome)}", style="green" if improved else "red")
    if plan.status in ("applied", "edited") and plan.applied_from:
        return Text("not measured" if finished else "measuring…", style="dim")
    return Text("")


def one_line(text: object, limit: int | None = None) -> Text:
    """File or LLM text as one line of data: never markup, no escape sequence, cut at `limit` characters."""
    # escapes first: str.split() would take some control characters (\x1c, \u2028) for spaces
    flat = " ".join(visible(str(text if text is not None else "")).split())
    return Text(flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…")


class PlansTable(SyncedTable):
    """Pending plans first, then recent ones, each over two lines: its id over its status; its change and
    measured effect over its reason, each line as long as the pane is wide (the review shows all of it).

    Enter (or a, e, v) on a plan opens the review modal; the keys live here, on the focused
    pane, so nothing is decided by a stray key elsewhere. Every cell made from a file is a
    Text: a DataTable reads a plain string as markup, and a reason is anybody's text.
    """

    BINDINGS = [
        Binding("enter", "review", "review plan", id="plans.review"),
        Binding("a", "review", "approve…", id="plans.approve"),
        Binding("e", "review", "edit…", show=False, id="plans.edit"),
        Binding("v", "review", "veto…", show=False, id="plans.veto"),
    ]
    COLUMNS = ("plan", "change · effect / reason")
    ROW_HEIGHT = 2  # a plan over two lines: its id over its status; its change and effect over its reason
    MAX_ROWS = 40  # pending plans first, then the newest: older ones are in plans.jsonl and the replay
    MIN_TEXT = 24  # the change and the reason get the room the plan column leaves, at least this
    FOLLOW = False  # a decided plan leaves the pending ones: the cursor stays, on the next plan to decide

    class Review(Message):
        """Open the review modal on a plan."""

        def __init__(self, plan_id: str) -> None:
            super().__init__()
            self.plan_id = plan_id

    def action_review(self) -> None:
        plan_id = self.selected_plan()
        if plan_id is not None:
            self.post_message(self.Review(plan_id))

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._view: SessionView | None = None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*self.COLUMNS)

    def show(self, view: SessionView) -> None:
        self._view = view
        finished = view.conductor_status.state == "finished"
        plans = view.plans_newest_first()[: self.MAX_ROWS]
        first = max([len(self.COLUMNS[0]), *(max(len(p.plan_id), len(p.status)) for p in plans)])
        room = self.room(len(plans))
        width = None if room is None else max(self.MIN_TEXT, room - first - 4 * self.cell_padding)
        if width is not None:
            self.set_width(1, width)
        rows = []
        for p in plans:
            change = one_line(plan_change(p))
            effect = plan_effect(p, finished)
            if effect.plain:
                change.append("  ").append_text(effect)
            reason = one_line(p.reason)
            if width is not None:  # each line in its width: a longer one would wrap onto the next
                change.truncate(width, overflow="ellipsis")
                reason.truncate(width, overflow="ellipsis")
            rows.append((p.plan_id, [  # made visible here, line by line, and by the table itself (SyncedTable)
                Text.assemble(one_line(p.plan_id), "\n", Text(p.status, style=STATUS_STYLE.get(p.status, ""))),
                Text.assemble(change, "\n", reason),
            ]))
        self.sync(rows)

    def on_resize(self, event: Resize) -> None:
        if self._view is not None:  # the change and the reason take the room there is: a new width, new lines
            self.show(self._view)

    def selected_plan(self) -> str | None:
        return self.selected_key()


MODE_STYLE = {"ACTIVE": "bold black on green", "REDUCED": "bold black on yellow", "SHADOW": "bold white on grey37"}


class AllocationTable(SyncedTable):
    """Per strategy: its mode, its trailing Sharpe now and over how many tests, since when it is in that mode,
    its allocation and why; then systemic-risk overrides.

    The research families' Sharpe is the allocation desk's, recomputed by the view after every
    test (SessionView.ratings); an ensemble member's is the one written at its last change of
    mode (dim: the portfolio runs at the end of its segment and is not rated test by test).
    """

    COLUMNS = ("strategy", "mode", "sharpe", "n", "since", "alloc", "reason")
    FIRST = 5  # the strategy and what must fit beside it: the name takes the room they leave
    MIN_NAME = 14  # trend_breakout

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._view: SessionView | None = None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.fixed_columns = 1
        self.add_columns(*self.COLUMNS)
        if self.parent is not None:
            self.parent.border_subtitle = "sharpe: of the last n tests · since: bar date"

    def _names(self, view: SessionView, members: list[str], width: int | None) -> dict[str, str]:
        """Ensemble members ("2:macd_trend 12/26/9 stop2.1 tp900 z-1") by number and short label, unique on the table."""
        by_label = {s.label: s for s in view.standings()}
        known = {m: by_label[m.split(":", 1)[1]] for m in members if m.split(":", 1)[1] in by_label}
        labels = short_labels({s.config_id: json.loads(s.params_json) for s in known.values()},
                              None if width is None else max(self.MIN_NAME, width) - 2)
        return {m: f"{m.split(':', 1)[0]} {labels[known[m].config_id]}" if m in known else m for m in members}

    def show(self, view: SessionView) -> None:
        self._view = view
        ratings = view.ratings()
        families = sorted(set(ratings) | {n for n in view.allocation if ":" not in n})
        members = sorted((n for n in view.allocation if ":" in n), key=lambda n: (len(n.split(":")[0]), n))
        cells: list[tuple[str, list[Any]]] = []
        for name in [*families, *members]:
            a = view.allocation.get(name)
            changed = view.mode_changes.get(name)
            if name in ratings:
                sharpe, n = ratings[name]
                sharpe_cell = num("—" if sharpe is None else f"{sharpe:.2f}")
            else:  # an ensemble member: as at its last change
                sharpe_cell, n = num("—" if a is None or a.sharpe is None else f"{a.sharpe:.2f}", "dim"), None
            mode = a.mode if a else "ACTIVE"  # every strategy starts ACTIVE, until it is rated (engine.allocation)
            cells.append((name, [
                None,  # the name: once its width is known
                Text(mode, style=MODE_STYLE[mode]), sharpe_cell, num("—" if n is None else str(n)),
                changed.ts[:10] if changed else "start", num("—" if a is None else f"{a.allocation:.0%}"),
                one_line((changed or a).reason if (changed or a) else "not rated yet"),
            ]))
        if view.overrides:
            last = view.overrides[-1]
            cells.append(("__systemic__", [None, Text("OVERRIDE", style="bold white on red"), "", "",
                                           last.ts[:10], num(f"{len(view.overrides)}×"), one_line(last.reason)]))
        names = {**self._names(view, members, None), "__systemic__": "systemic risk"}
        width = self._name_width(cells, max([len(self.COLUMNS[0]), *(len(names.get(k, k)) for k, _ in cells)]))
        if width is not None:
            names.update(self._names(view, members, width))
            self.set_width(0, width)
        self.sync([(key, [Text(cut(names.get(key, key), width) if width else names.get(key, key)), *row[1:]])
                   for key, row in cells])

    def _name_width(self, cells: list[tuple[str, list[Any]]], longest: int) -> int | None:
        """How wide the names may be: the room the figures leave, and the allocation's too where the names
        keep MIN_NAME; else the allocation starts where the pane ends (half a column reads as another figure)."""
        room = self.room(len(cells))
        if room is None:
            return None
        pad = 2 * self.cell_padding
        alloc = self.COLUMNS.index("alloc")
        beside = [w + pad for w in _widths(self.COLUMNS[1:alloc + 1], [[str(c) for c in row[1:alloc + 1]]
                                                                           for _, row in cells])]
        with_alloc = room - sum(beside) - pad
        if with_alloc >= self.MIN_NAME:
            return min(longest, with_alloc)
        return max(self.MIN_NAME, room - sum(beside[: self.FIRST - 1]) - pad)

    def on_resize(self, event: Resize) -> None:
        if self._view is not None:  # the names take the room there is
            self.show(self._view)


class TargetsPanel(Static):
    """Hit, payoff, maxdd, blunders/100 and high-vol share of the research config over its last tests: each value,
    whether it meets its target in words and colour (`✓ met ≥ 0.520`, `✗ needs ≥ 0.520`), and its trend."""

    can_focus = True  # a pane the keys go to shows that they did (its frame), as the tables' panes do
    SPARK = 14  # the trend's most tests, when the pane is wide enough

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self._view: SessionView | None = None

    def show(self, view: SessionView) -> None:
        self._view = view
        t = view.session_config.targets
        if not t:  # no session config yet (or a replay back at its start): nothing to measure against
            show_text(self, "")
            return
        now = view.targets()
        trades = view.target_trades()
        limits = thresholds(t)
        lines = [Text(f"research config · last {min(RECENT_TESTS, len(view.research))} tests · {trades} trades",
                      style="dim")]
        for target in TARGETS:
            value, trend = now[target.metric]
            threshold = target.fmt.format(limits[target.metric])
            line = Text(f"{target.label:14s}")
            if not trades:  # no trade: the figures are zeros, not results; nothing is met or missed
                line.append(f"{'—':>7s}  no trades", style="dim")
            else:
                ok = target.met(value, limits[target.metric])
                line.append(f"{metric_text(target.metric, value):>7s}", style="bold green" if ok else "bold red")
                line.append(f" {'✓ met  ' if ok else '✗ needs'} {target.sign}{threshold:>7s}", style="green" if ok else "red")
            spark = min(self.SPARK, (self.size.width or 60) - line.cell_len - 1)
            if spark > 2 and trades:
                line.append(" ").append(sparkline(trend, spark), style="cyan")
            lines.append(line)
        show_text(self, Text("\n").join(lines))

    def on_resize(self, event: Resize) -> None:
        if self._view is not None:  # the trend takes the room there is
            self.show(self._view)


class EquityPlot(Static):
    """The selected leaderboard row's cumulative validation PnL over its tests, as a terminal plot."""

    can_focus = True  # as TargetsPanel

    def show(self, view: SessionView, config_id: str | None) -> None:
        if not config_id:
            show_text(self, "select a leaderboard row")
            return
        curve = view.equity_of(config_id)
        if not curve:
            show_text(self, "")
            return
        width = max(10, (self.size.width or 60) - 2)
        height = max(3, (self.size.height or 6) - 1)
        vals = curve[-width:]
        lo, hi = min(0.0, min(vals)), max(0.0, max(vals))
        span = hi - lo or 1.0
        grid = [[" "] * len(vals) for _ in range(height)]
        for x, v in enumerate(vals):
            y = int((v - lo) / span * (height - 1))
            grid[height - 1 - y][x] = "•"
        zero = height - 1 - int((0 - lo) / span * (height - 1))
        for x in range(len(vals)):
            if grid[zero][x] == " ":
                grid[zero][x] = "·"
        label = f"{config_id}: {curve[-1]:,.0f} USD over {len(curve)} tests"
        show_text(self, Text(label + "\n" + "\n".join("".join(r) for r in grid), style="green" if curve[-1] >= 0 else "red"))


class Conversation(Log):
    """Strategist / critic / maestro messages, one readable line each (plain Log speed)."""

    def show_new(self, view: SessionView) -> None:
        seen = getattr(self, "_seen", 0)
        new = view.conversation[max(seen, len(view.conversation) - self.max_lines):] if self.max_lines else view.conversation[seen:]
        if new:  # one write: a replay seek can bring hundreds of lines, each write_line would scroll
            self.write_lines([visible(f"[s{m.segment}] {m.agent:10s} ({m.provider}) {m.text}", one_line=True)
                              for m in new])
        self._seen = len(view.conversation)

    def restart(self) -> None:
        """Empty, for a view that starts again (a replay gone back): show_new shows its messages from the first."""
        self.clear()
        self._seen = 0


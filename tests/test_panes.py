"""The main screen's panes read at a glance, at 160×48 (a pane is a third of the width) and at 80×24.

Labels that tell every config apart; the leaderboard's figures beside its label; episodes in
whole USD; plans whose reason can be read; the allocation desk's Sharpe as of the latest
test; targets that say met or missed in words. Most tests build a small view in the test and
show one pane in a box as wide as a third of 160 columns; the ones marked slow run a session.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.app import App

from agents.allocator import AllocationDesk
from engine.allocation import AllocationSettings
from engine.configs import LABEL_CODES, config_id, config_label, short_labels
from engine.events import AllocationEvent, PatchItem, PlanEvent, ScoreEvent
from engine.metrics import PAYOFF_CAP
from engine.params import Params
from engine.targets import Targets
from maestro_tui import state  # state.TestDone: a name pytest would try to collect
from maestro_tui.app import MaestroApp, console
from maestro_tui.state import Item, SessionView
from maestro_tui.widgets.panes import (
    AllocationTable,
    EpisodesTable,
    LeaderboardTable,
    Pane,
    PlansTable,
    TargetsPanel,
)
from maestro_tui.widgets.table import SyncedTable
from tests.sessions import EAGER_RULES, headless_session, settle
from tests.test_leaderboard import _changed_value, row

THIRD = (54, 20)  # one pane of the 160×48 grid: 52 columns inside its frame, as the right-hand third is
BASE = {"session_id": "session_2026-11-21_1405", "emitted_at": "2026-11-21T14:05:00.123Z"}
CONFIG = {"session_id": BASE["session_id"], "settings": {"segments": 1, "tests": 40, "targets": Targets().model_dump(),
                                                         "allocation": AllocationSettings().model_dump()}}


class OnePane(App):
    """One pane of the console in a box of its own; `show()` draws it from the view."""

    def __init__(self, widget, view: SessionView) -> None:
        super().__init__()
        self.widget, self.view = widget, view

    def compose(self):
        yield Pane("pane", self.widget)

    def show(self) -> None:
        if isinstance(self.widget, EpisodesTable):
            self.widget.show(self.view, self.view.session_config.targets)
        else:
            self.widget.show(self.view)


@contextlib.asynccontextmanager
async def in_pane(widget, view: SessionView):
    """`widget` in a pane a third of 160 columns wide, drawn from `view`: the pilot."""
    app = OnePane(widget, view)
    async with app.run_test(size=THIRD) as pilot:
        app.show()
        await pilot.pause()
        yield pilot


def plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def styles(cell: object) -> str:
    """Every style a cell is drawn with (its own and its spans'), as one string."""
    assert isinstance(cell, Text)
    return " ".join([str(cell.style), *(str(s.style) for s in cell.spans)])


def column_edges(table: SyncedTable) -> dict[str, tuple[int, int]]:
    """Each column's (left, right) cell offsets in the table, padding included."""
    edges, x = {}, 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        edges[column.label.plain] = (x, x + width)
        x += width
    return edges


def screen_lines(widget) -> list[str]:
    """What a widget shows, line by line (its visible region, as drawn)."""
    return [widget.render_line(y).text for y in range(widget.size.height)]


# ---------------------------------------------------------------- labels


def variants() -> list[Params]:
    """The defaults of each built-in, each shared parameter changed alone, and every pair of those changed together."""
    base = Params()
    singles = [base.with_changes(**{name: _changed_value(name, getattr(base, name))}) for name in LABEL_CODES]
    pairs = [a.with_changes(**{k: v for k, v in b.model_dump().items() if k in LABEL_CODES and v != getattr(base, k)})
             for a, b in itertools.combinations(singles, 2)]
    methods = [Params(method=m) for m in ("ema_crossover", "macd_trend", "trend_breakout")]
    return [*methods, Params(ema_fast=9), Params(method="trend_breakout", breakout_lookback=96), *singles, *pairs]


def test_config_label_names_every_shared_parameter_away_from_its_default():
    assert config_label(Params()) == "ema_crossover 12/48 stop1.5 tp400"  # stop and take-profit always
    changed = Params(timeout_bars=180, gate_cvd=False, atr_z_min=-0.75, vhf_min=0.3, hard_tp_usd=900)
    assert config_label(changed) == "ema_crossover 12/48 stop1.5 tp900 to180 -cvd z-0.75 vhf0.3"
    assert config_label(Params(method="macd_trend", notional_usd=50_000)) == "macd_trend 12/26/9 stop1.5 tp400 $50000"


def test_configs_that_differ_in_any_parameter_never_share_a_label():
    configs = variants()
    assert len({config_id(p) for p in configs}) == len(configs) > 150
    assert len({config_label(p) for p in configs}) == len(configs)
    by_id = {config_id(p): p.model_dump() for p in configs}
    for width in (None, 40, 18, 14, 12):
        labels = short_labels(by_id, width)
        assert len(set(labels.values())) == len(configs), width
        assert width is None or max(len(t) for t in labels.values()) <= width


def test_a_short_label_says_what_differs_from_the_strategys_defaults():
    configs = {"c-1": Params(), "c-2": Params(hard_tp_usd=900, timeout_bars=180, gate_imb=False),
               "c-3": Params(method="macd_trend", atr_z_min=-1.25), "c-4": Params(method="trend_breakout", breakout_lookback=96)}
    assert short_labels({k: p.model_dump() for k, p in configs.items()}) == {
        "c-1": "ema defaults", "c-2": "ema tp900 to180 -imb", "c-3": "macd z-1.25", "c-4": "trend 96"}


def test_a_label_too_long_for_its_column_keeps_the_changes_that_set_it_apart_and_says_it_is_cut():
    shared = dict(atr_stop_mult=2.1, hard_tp_usd=900, timeout_bars=180, vhf_min=0.3)
    a, b = Params(**shared, atr_z_min=-0.75), Params(**shared)
    labels = short_labels({config_id(a): a.model_dump(), config_id(b): b.model_dump()}, 17)
    assert labels[config_id(a)].startswith("ema ") and "z-0.75" in labels[config_id(a)]
    assert labels[config_id(a)].endswith("…") and labels[config_id(b)].endswith("…")
    assert labels[config_id(a)] != labels[config_id(b)]
    for text in labels.values():  # whole codes only: a cut code would read as another value
        assert all(word.rstrip("…") in {"ema", "stop2.1", "tp900", "to180", "vhf0.3", "z-0.75", ""}
                   for word in text.split())


def test_labels_that_would_still_read_the_same_end_in_their_config_ids_digits():
    # what sets them apart (slippage 2.125, 2.375, 2.625 bps) is longer than a 12-character column leaves
    configs = [Params(atr_stop_mult=2.1, hard_tp_usd=900, slippage_bps=bps) for bps in (2.125, 2.375, 2.625)]
    by_id = {config_id(p): p.model_dump() for p in configs}
    assert sorted(short_labels(by_id).values()) == [f"ema stop2.1 tp900 slip{bps}" for bps in ("2.125", "2.375", "2.625")]
    labels = short_labels(by_id, 12)
    assert len(set(labels.values())) == 3 and all(len(t) <= 12 for t in labels.values())
    for cid, text in labels.items():
        assert text == f"ema… {cid.removeprefix('c-')[:4]}"


# ---------------------------------------------------------------- the leaderboard


def board_view() -> SessionView:
    """Two tests of twelve configs that differ in what plans change (timeout, gates, thresholds), with figures."""
    configs = [Params(method="trend_breakout", hard_tp_usd=800, **change) for change in (
        {}, {"timeout_bars": 180}, {"timeout_bars": 120}, {"gate_cvd": False}, {"gate_vhf": False}, {"atr_z_min": -1.0},
        {"atr_z_min": -1.25}, {"vhf_min": 0.3}, {"imb_min": 0.05}, {"timeout_bars": 180, "atr_z_min": -1.0},
        {"timeout_bars": 180, "gate_cvd": False}, {"atr_stop_mult": 2.1, "timeout_bars": 180, "vhf_min": 0.3})]
    view = SessionView()
    view.apply(Item("config", CONFIG))
    for t in (1, 2, 3):
        view.apply(Item("test", state.TestDone(f"seg1_test00{t}", [
            row(f"seg1_test00{t}", p, "chosen", val_score=40.0 + i, val_pnl=-123_456.7 + 10_000 * i * t, val_trades=30 + i,
                val_hit=0.4, val_payoff=PAYOFF_CAP if i == 3 else 1.5) for i, p in enumerate(configs)])))
    return view


async def test_the_leaderboard_shows_a_unique_label_and_the_figures_beside_it_in_a_third_of_160_columns():
    view = board_view()
    table = LeaderboardTable()
    async with in_pane(table, view):
        labels = [plain(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert len(labels) == 12 and len(set(labels)) == 12, labels  # the same headline, told apart
        assert all(t.startswith("trend ") for t in labels)
        edges = column_edges(table)
        room = table.scrollable_content_region.width  # beside the vertical scrollbar, when there is one
        for column in ("config", "val pnl", "score", "DSR", "tests"):  # in sight, beside the scrollbar
            assert edges[column][1] <= room, (column, edges, room)
        assert [c.label.plain for c in table.ordered_columns][:5] == ["config", "val pnl", "score", "DSR", "tests"]
        best = table.keys[0]
        # the best: -123,456.7 + 10,000 × 11 × t USD over tests 1, 2 and 3
        assert plain(table.cell_of(best, "val pnl")) == "289,630" and plain(table.cell_of(best, "score")) == "51.0"
        assert plain(table.cell_of(best, "tests")) == "3" and plain(table.cell_of(best, "DSR")) not in ("", "n/a")
        assert "≥10" in [plain(table.get_row_at(i)[-1]) for i in range(table.row_count)]  # the capped payoff
        lines = screen_lines(table)  # drawn: the label and its figures on one line
        assert labels[0] in lines[1] and "289,630" in lines[1] and lines[1].rstrip().endswith("3")


async def test_the_leaderboards_label_stays_in_sight_when_the_table_scrolls_sideways():
    table = LeaderboardTable()
    async with in_pane(table, board_view()) as pilot:
        label = plain(table.get_row_at(0)[0])
        assert table.fixed_columns == 1 and table.max_scroll_x > 0
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        line = screen_lines(table)[1]
        assert table.scroll_x > 0 and line.lstrip().startswith(label)
        assert "payoff" in screen_lines(table)[0]  # the last column, scrolled into sight next to it


async def test_the_selected_rows_whole_config_is_the_line_under_the_leaderboard():
    view = board_view()
    table = LeaderboardTable()
    async with in_pane(table, view) as pilot:
        chosen = next(s for s in view.standings() if s.config_id == table.keys[0])
        assert str(table.detail.content) == f"#{chosen.rank} {chosen.config_id} {chosen.label}"
        assert table.detail.parent is table.parent and table.detail.region.y > table.region.y
        table.focus()
        await pilot.press("down", "down")
        chosen = next(s for s in view.standings() if s.config_id == table.keys[2])
        assert "to180 z-1" in chosen.label and str(table.detail.content).endswith(chosen.label)


async def test_sorting_keeps_working_and_the_title_says_by_what():
    view = board_view()
    table = LeaderboardTable()
    async with in_pane(table, view) as pilot:
        table.next_sort()  # by pnl, best first
        table.show(view)
        await pilot.pause()
        pnl = [int(plain(table.cell_of(k, "val pnl")).replace(",", "")) for k in table.keys]
        assert pnl == sorted(pnl, reverse=True) and table.parent.border_title == "3 leaderboard · by pnl ↓"
        table.sort_reverse = True
        table.show(view)
        pnl = [int(plain(table.cell_of(k, "val pnl")).replace(",", "")) for k in table.keys]
        assert pnl == sorted(pnl) and table.sort_title() == "by pnl ↑"


# ---------------------------------------------------------------- episodes


def episode(n: int, trades: int, pnl: float, **kw: Any) -> ScoreEvent:
    values = dict(bars=120, hit=0.5, payoff=1.3, maxdd=-200.0, blunders=0, score=55.0, vol_regime="high",
                  phase="validation")
    values.update(kw)
    return ScoreEvent(**BASE, episode_id=n, test_id="seg5_test100", n_trades=trades, total_pnl=pnl, **values)


async def test_episodes_show_pnl_in_whole_usd_beside_the_scrollbar_and_say_what_the_phase_codes_mean():
    view = SessionView()
    view.apply(Item("config", CONFIG))
    view.episodes.extend([episode(n, 0, 0.0, hit=0.0, payoff=0.0, maxdd=0.0, score=0.0) for n in range(4, 40)]
                         + [episode(1, 3, 550.18, phase="train"), episode(2, 4, -12_345.6, phase="holdout"),
                            episode(3, 1, 80.0, payoff=PAYOFF_CAP, hit=1.0)])  # newest last: shown on top
    table = EpisodesTable()
    async with in_pane(table, view):
        pnl = {k: plain(table.cell_of(k, "pnl USD")) for k in table.keys}
        assert pnl["seg5_test100:1"] == "550" and pnl["seg5_test100:2"] == "-12,346"
        assert plain(table.cell_of("seg5_test100:3", "payoff")) == "≥10"
        assert [plain(table.cell_of(f"seg5_test100:{n}", "ph")) for n in (1, 2, 3)] == ["T", "H", "V"]
        assert table.parent.border_subtitle == "ph: T train · V validation · H holdout"
        assert plain(table.cell_of("seg5_test100:1", "test")) == "s5 t100"
        assert table.max_scroll_y > 0  # the scrollbar is there, and the columns up to payoff stand beside it
        assert column_edges(table)["payoff"][1] <= table.scrollable_content_region.width
        drawn = "\n".join(screen_lines(table))
        assert "-12,346" in drawn and "550" in drawn


async def test_an_episode_without_trades_is_dim_never_green():
    view = SessionView()
    view.apply(Item("config", CONFIG))
    view.episodes.extend([episode(1, 0, 0.0, hit=0.0, payoff=0.0, maxdd=0.0, score=0.0),
                          episode(2, 0, 0.0, hit=0.0, payoff=0.0, maxdd=-2_500.0, score=0.0),
                          episode(3, 5, 900.0, hit=0.6, payoff=1.5)])
    table = EpisodesTable()
    async with in_pane(table, view):
        idle = table.cells_of("seg5_test100:1")
        assert all("green" not in styles(c) for c in idle) and "dim" in styles(table.cell_of("seg5_test100:1", "pnl USD"))
        assert plain(table.cell_of("seg5_test100:1", "hit")) == "—" == plain(table.cell_of("seg5_test100:1", "payoff"))
        # an open position's drawdown beyond the target is a fact with or without trades
        assert "red" in styles(table.cell_of("seg5_test100:2", "maxdd"))
        assert "green" in styles(table.cell_of("seg5_test100:3", "hit"))
        assert "green" in styles(table.cell_of("seg5_test100:3", "pnl USD"))


# ---------------------------------------------------------------- plans


def plan(plan_id: str, status: str, reason: str, **kw: Any) -> PlanEvent:
    patch = [PatchItem(parameter="atr_z_min", old_value=-1.0, new_value=-1.25)]
    return PlanEvent(**BASE, plan_id=plan_id, nonce=plan_id, episode_id=10, test_id="seg3_test042", agent="maestro",
                     action="adjust", change=PlanEvent.change_from_patch(patch), patch=patch, reason=reason,
                     evidence={"high_vol_share": 0.19}, status=status, **kw)


async def test_a_plan_shows_its_change_status_effect_and_reason_in_a_third_of_160_columns():
    reason = "drawdown [bold]-2,502[/] USD < -2,000: hold losers for less time, and more words than fit"
    view = SessionView()
    for p in (plan("P3-008", "pending", reason),
              plan("P3-007", "applied", "high-vol share 16% < 30%: widen the ATR gate", applied_from="seg3_test030",
                   outcome={"metric": "high_vol_share", "before": 0.161, "after": 0.258, "improved": True})):
        view.apply(Item("plans", p))
    table = PlansTable()
    async with in_pane(table, view):
        assert table.keys == ["P3-008", "P3-007"]
        head, text = (plain(c).split("\n") for c in table.cells_of("P3-008"))
        assert head == ["P3-008", "pending"]
        assert text[0] == "atr_z_min -1 → -1.25"
        assert text[1].endswith("…") and len(text[1]) >= 35 and reason.startswith(text[1][:-1])  # not `drawdo`
        assert "[bold]-2,502[/]" in text[1]  # a reason is text, never markup
        head, text = (plain(c).split("\n") for c in table.cells_of("P3-007"))
        assert head == ["P3-007", "applied"] and text[0].startswith("atr_z_min -1 → -1.25  ✓ high-vol share")
        shown = text[1].removesuffix("…")
        assert len(shown) >= 38 and "high-vol share 16% < 30%: widen the ATR gate".startswith(shown)
        assert column_edges(table)["change · effect / reason"][1] <= table.scrollable_content_region.width
        drawn = screen_lines(table)
        assert drawn[1].split() == ["P3-008", "atr_z_min", "-1", "→", "-1.25"]
        assert drawn[2].split()[:3] == ["pending", "drawdown", "[bold]-2,502[/]"]


# ---------------------------------------------------------------- allocation


def family_rows(test: str, pnl: dict[str, float]) -> list:
    """A test's baseline rows, one per method, with these validation PnLs (USD on 100,000 notional)."""
    return [row(test, Params(method=m), "baseline", val_pnl=v, val_trades=5) for m, v in pnl.items()]


def test_the_view_rates_every_family_as_the_allocation_desk_does_after_every_test():
    settings = AllocationSettings()
    families = ["ema_crossover", "macd_trend"]
    desk = AllocationDesk(families, settings, BASE["session_id"])
    view = SessionView()
    view.apply(Item("config", CONFIG))
    seen = []
    for t in range(1, 25):
        rows = family_rows(f"seg1_test{t:03d}", {"ema_crossover": 900.0 * ((t * 7) % 5 - 2) + t, "macd_trend": 150.0 * t})
        desk.after_test(f"seg1_test{t:03d}", rows, "2024-01-01T00:00:00.000Z")
        view.apply(Item("test", state.TestDone(f"seg1_test{t:03d}", rows)))
        for f in families:
            want = desk.rating.sharpe(list(desk.returns[f]))
            assert view.ratings()[f] == (want, min(t, desk.rating.window)), (t, f)
        seen.append(view.ratings()["ema_crossover"][0])
    assert seen[:desk.rating.min_history - 1] == [None] * (desk.rating.min_history - 1)  # too little history
    rated = [s for s in seen if s is not None]
    assert all(a != b for a, b in itertools.pairwise(rated))  # it moves test by test, not only at changes of mode


def allocation(strategy: str, mode: str, ts: str, sharpe: float | None = None, reason: str = "") -> AllocationEvent:
    return AllocationEvent(**BASE, ts=ts, strategy=strategy, sharpe=sharpe, mode=mode, allocation=0.0,
                           previous_allocation=0.5, reason=reason or f"mode -> {mode}")


async def test_allocation_shows_the_sharpe_now_with_its_tests_and_the_date_of_the_last_change_of_mode():
    view = SessionView()
    view.apply(Item("config", CONFIG))
    for t in range(1, 6):  # trend_breakout in the first two only: too little history to rate
        view.apply(Item("test", state.TestDone(f"seg1_test{t:03d}", family_rows(
            f"seg1_test{t:03d}", {"ema_crossover": [300.0, -900.0, 200.0, -50.0, -700.0][t - 1],
                                  **({"trend_breakout": 100.0 * t} if t <= 2 else {})}))))
    view.apply(Item("allocation", allocation("ema_crossover", "SHADOW", "2024-01-19T23:55:00.000Z", -56.27)))
    view.apply(Item("allocation", allocation("ema_crossover", "SHADOW", "2024-02-02T23:55:00.000Z", -60.0,
                                             "end of segment 1")))  # the same mode: no change
    table = AllocationTable()
    async with in_pane(table, view) as pilot:
        now, n = view.ratings()["ema_crossover"]
        assert now is not None and round(now, 2) != -56.27 and n == 5
        cells = {c: plain(table.cell_of("ema_crossover", c)) for c in ("mode", "sharpe", "n", "since")}
        assert cells == {"mode": "SHADOW", "sharpe": f"{now:.2f}", "n": "5", "since": "2024-01-19"}
        assert [plain(table.cell_of("trend_breakout", c)) for c in ("mode", "sharpe", "n", "since")] == [
            "ACTIVE", "—", "2", "start"]
        assert column_edges(table)["since"][1] <= table.scrollable_content_region.width
        assert "trend_breakout" in screen_lines(table)[2]
        for t in range(6, 9):  # more tests: the Sharpe and its sample move with them, no new allocation line
            view.apply(Item("test", state.TestDone(f"seg1_test{t:03d}", family_rows(
                f"seg1_test{t:03d}", {"ema_crossover": 400.0 * t}))))
        pilot.app.show()
        await pilot.pause()
        later = view.ratings()["ema_crossover"][0]
        assert later != now and plain(table.cell_of("ema_crossover", "sharpe")) == f"{later:.2f}"
        assert plain(table.cell_of("ema_crossover", "n")) == "8"


# ---------------------------------------------------------------- targets


def research_rows(trades: int, payoff: float, hit: float) -> SessionView:
    view = SessionView()
    view.apply(Item("config", CONFIG))
    for t in range(1, 11):
        view.apply(Item("test", state.TestDone(f"seg1_test{t:03d}", [
            row(f"seg1_test{t:03d}", Params(), "chosen", val_trades=trades, val_hit=hit, val_payoff=payoff,
                val_maxdd=-100.0)])))
    return view


async def test_targets_say_met_or_missed_in_words_and_a_capped_payoff_reads_at_least_10():
    panel = TargetsPanel()
    async with in_pane(panel, research_rows(trades=4, payoff=PAYOFF_CAP, hit=0.339)):
        lines = str(panel.content).split("\n")
        assert lines[0] == "research config · last 10 tests · 40 trades"
        hit, payoff = lines[1], lines[2]
        assert hit.split()[:6] == ["hit", "0.339", "✗", "needs", "≥", "0.520"]  # a true statement
        assert payoff.split()[:5] == ["payoff", "≥10", "✓", "met", "≥"] and "10.00" not in payoff
        line = panel.content.split("\n")[1]
        assert any("red" in str(s.style) for s in line.spans)
        assert all(len(t) <= panel.size.width for t in lines)


async def test_targets_without_trades_judge_nothing_and_show_no_green():
    panel = TargetsPanel()
    async with in_pane(panel, research_rows(trades=0, payoff=0.0, hit=0.0)):
        text = panel.content
        assert "0 trades" in text.plain.split("\n")[0]
        assert all(line.endswith("no trades") for line in text.plain.split("\n")[1:])
        assert "✓" not in text.plain and "✗" not in text.plain
        assert not any("green" in str(s.style) for s in text.spans)


# ---------------------------------------------------------------- on a real session


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A session whose plans change the research config several times (rules on a hair trigger)."""
    return headless_session(tmp_path_factory.mktemp("panes"), "--segments", "4", "--tests", "25", "--seed", "11",
                            "--workers", "1", env=EAGER_RULES)


def loaded(app: MaestroApp) -> bool:
    session = app.session
    return session.view.tests_seen == 100 and session.w_board.row_count > 3 and session.view.conductor_status.present


@pytest.mark.slow
async def test_on_a_real_session_every_leaderboard_row_reads_differently_with_its_figures_in_sight(finished: Path):
    app = console(finished)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.pause()
        board = app.session.w_board
        standings = app.session.view.standings()
        headlines = {" ".join(s.label.split()[:4]) for s in standings}  # method, periods, stop, take-profit
        assert len(headlines) < len(standings)  # configs that only those would not tell apart
        assert len({s.label for s in standings}) == len(standings)  # the long labels do
        labels = [plain(board.get_row_at(i)[0]) for i in range(board.row_count)]
        assert len(labels) == len(standings) >= 8 and len(set(labels)) == len(labels), labels
        assert board.parent.outer_size.width in (53, 54) and board.fixed_columns == 1
        room = board.scrollable_content_region.width
        assert all(column_edges(board)[c][1] <= room for c in ("config", "val pnl", "score", "DSR", "tests"))
        first = standings[0]
        drawn = screen_lines(board)[1]
        assert labels[0] in drawn and f"{round(first.val_pnl):,}" in drawn and f"{first.val_score:.1f}" in drawn
        assert str(board.detail.content) == f"#1 {first.config_id} {first.label}"
        # the research config's plans changed more than stop and take-profit: the labels say what
        assert any(word.startswith(("to", "z", "vhf", "imb", "-", "+")) for t in labels for word in t.split()[1:])


@pytest.mark.slow
async def test_on_a_real_session_at_80x24_the_leaderboard_holds_whole_labels(finished: Path):
    app = console(finished)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.press("3")
        await pilot.pause()
        board = app.session.w_board
        labels = [plain(board.get_row_at(i)[0]) for i in range(board.row_count)]
        assert len(set(labels)) == len(labels) and not any(t.endswith("…") or "… " in t for t in labels)
        room = board.scrollable_content_region.width
        assert all(column_edges(board)[c][1] <= room for c in ("config", "val pnl", "score", "DSR", "tests"))


@pytest.mark.slow
async def test_on_a_real_session_the_allocation_pane_shows_the_desks_last_decision_values(finished: Path):
    app = console(finished)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: loaded(app))
        await pilot.pause()
        table = app.session.w_allocation
        # at a segment's end the desk wrote every family's Sharpe: the pane shows the same, and over how many tests
        ends = [json.loads(line) for line in (finished / "allocation.jsonl").read_text().splitlines()]
        last = {e["strategy"]: e for e in ends if e["reason"] == "end of segment 4"}
        assert set(last) == set(app.session.view.session_config.methods)
        for name, e in last.items():
            assert plain(table.cell_of(name, "sharpe")) == ("—" if e["sharpe"] is None else f"{e['sharpe']:.2f}")
            assert plain(table.cell_of(name, "n")) == "15" and plain(table.cell_of(name, "mode")) == e["mode"]
            changes = [c for c in ends if c["strategy"] == name and c["reason"].startswith("mode ")]
            assert plain(table.cell_of(name, "since")) == (changes[-1]["ts"][:10] if changes else "start")

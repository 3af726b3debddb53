"""The plan life cycle and the rules, without a conductor: agents.plans and agents.rules as plain objects."""

from __future__ import annotations

import logging

import pytest

from agents.gate import HoldLog
from agents.plans import PlanBook, PlanError, PlanRecord, checked_patch, edited_patch, outcome
from agents.rules import RULE_METRIC, Analyzer, EpisodeStat, window_metrics
from agents.settings import Rules
from engine.events import DecisionEvent, PatchItem, PlanEvent
from engine.params import Params

NOW = "2026-12-01T10:00:00.000Z"


def plan(plan_id: str, parameter: str, old, new, *, test_id: str = "seg1_test010", status: str = "pending") -> PlanEvent:
    patch = [PatchItem(parameter=parameter, old_value=old, new_value=new)]
    return PlanEvent(
        session_id="s", emitted_at=NOW, plan_id=plan_id, nonce=f"nonce-{plan_id}", episode_id=3, test_id=test_id,
        agent="critic:offline", action="adjust", change=PlanEvent.change_from_patch(patch), patch=patch,
        reason="because", evidence={"hit": 0.4, "score": 30.0, "trades": 30}, status=status, rule="blunders_high",
    )


def decision(p: PlanEvent, kind: str, **values) -> DecisionEvent:
    patch = [] if kind == "veto" else (
        [PatchItem(parameter=k, old_value=v, new_value=v) for k, v in values.items()] if values else list(p.patch)
    )
    return DecisionEvent(session_id="s", emitted_at=NOW, plan_id=p.plan_id, nonce=p.nonce, decision=kind,
                         patch=patch, by="trader@box")


def book_with(*events: PlanEvent, emit_index: int = 9) -> PlanBook:
    book = PlanBook()
    for e in events:
        book.plans[e.plan_id] = PlanRecord(e, 1, emit_index)
    return book


# ---------------------------------------------------------------- supersession, one pending plan per parameter


def test_a_newer_plan_on_a_parameter_supersedes_the_pending_one_and_leaves_others_alone():
    old, other = plan("P1-001", "vhf_min", 0.25, 0.3), plan("P1-002", "hard_tp_usd", 400.0, 600.0)
    book = book_with(old, other)
    new = PlanRecord(plan("P1-003", "vhf_min", 0.25, 0.35), 1, 20)
    book.plans["P1-003"] = new
    assert [r.event.plan_id for r in book.superseded_by(new)] == ["P1-001"]
    book.advance(book.plans["P1-001"], "superseded", NOW, superseded_by="P1-003")
    pending_on = {p for r in book.pending() for p in r.parameters}
    assert sorted(r.event.plan_id for r in book.pending()) == ["P1-002", "P1-003"]
    assert len(pending_on) == len(book.pending()), "one pending plan per parameter"


def test_only_the_life_cycles_moves_are_allowed():
    book = book_with(plan("P1-001", "vhf_min", 0.25, 0.3))
    record = book.plans["P1-001"]
    with pytest.raises(PlanError, match="pending: it cannot become approved"):
        book.advance(record, "approved", NOW)
    book.advance(record, "edited", NOW)
    for later in ("vetoed", "applied", "pending", "expired"):
        with pytest.raises(PlanError, match="is edited"):
            book.advance(record, later, NOW)
    book.advance(record, "edited", NOW, outcome={"metric": "hit", "improved": True})  # the outcome line
    assert record.event.status == "edited" and record.event.outcome["improved"] is True


# ---------------------------------------------------------------- edits


def test_an_edit_naming_another_parameter_is_refused_saying_which_the_plan_changes():
    p = plan("P1-001", "vhf_min", 0.25, 0.3)
    with pytest.raises(PlanError, match=r"P1-001 changes vhf_min; an edit decides those only, not atr_z_min"):
        edited_patch(p, {"atr_z_min": "-1"}, Params())
    verdict = book_with(p).judge(decision(p, "edit", atr_z_min=-1.0), Params())
    assert verdict.kind == "refuse" and "vhf_min" in verdict.reason


@pytest.mark.parametrize("typed", ["4000", "1e3", "60"])
def test_an_edit_beyond_the_max_step_from_the_value_in_force_is_refused_naming_the_step(typed):
    p = plan("P1-001", "timeout_bars", 240, 180)
    with pytest.raises(PlanError, match=r"timeout_bars: 240 → \d+ is a step of \d+, more than its max step 120"):
        edited_patch(p, {"timeout_bars": typed}, Params())


def test_an_edit_outside_the_bounds_is_refused_naming_the_bounds():
    p = plan("P1-001", "vhf_min", 0.25, 0.3)
    with pytest.raises(PlanError, match=r"vhf_min: 5 is outside its bounds 0 … 1"):
        edited_patch(p, {"vhf_min": "5"}, Params())


def test_a_valid_edit_is_typed_and_applies_with_status_edited():
    p = plan("P1-001", "timeout_bars", 240, 180)
    book = book_with(p)
    verdict = book.judge(decision(p, "edit", timeout_bars="200"), Params())
    assert verdict.kind == "apply"
    assert verdict.patch == [PatchItem(parameter="timeout_bars", old_value=240, new_value=200)]
    assert isinstance(verdict.patch[0].new_value, int)
    book.advance(verdict.plan, "edited", NOW, patch=verdict.patch)
    assert book.plans["P1-001"].event.status == "edited"


def test_old_value_is_the_value_in_force_and_the_plans_own_is_kept_when_they_differ():
    p = plan("P1-001", "atr_z_min", -0.5, -0.75)
    in_force = Params(atr_z_min=-0.75)
    [item] = checked_patch(p.patch, in_force)
    assert (item.old_value, item.new_value, item.shown_old_value) == (-0.75, -0.75, -0.5)
    [same] = checked_patch(p.patch, Params())
    assert same.shown_old_value is None and "shown_old_value" not in same.model_dump()
    # and an approval whose step from the value in force breaks the max step is refused
    far = Params(atr_z_min=0.5)
    verdict = book_with(p).judge(decision(p, "approve"), far)
    assert verdict.kind == "refuse" and "max step 0.5 from the value in force" in verdict.reason


# ---------------------------------------------------------------- vetoes and evidence


def test_a_vetoed_change_waits_for_a_window_of_tests_started_after_the_veto_then_says_so():
    p = plan("P1-003", "vhf_min", 0.25, 0.3, test_id="seg1_test019")
    book = book_with(p, emit_index=18)
    book.advance(book.plans["P1-003"], "vetoed", NOW)
    book.remember_veto(book.plans["P1-003"], from_index=27, at_index=20)
    same = PatchItem(parameter="vhf_min", old_value=0.25, new_value=0.3)
    hold = book.hold(same, 1, window_from=22, now=35)
    assert hold.held and "P1-003 at seg1_test019" in hold.why
    fresh = book.hold(same, 1, window_from=27, now=40)
    assert not fresh.held and fresh.vetoed_before.describe() == "P1-003 at seg1_test019"
    # the other direction is another change; a replay before the veto arrived does not know of it
    assert not book.hold(PatchItem(parameter="vhf_min", old_value=0.25, new_value=0.2), 1, 22, 35).held
    assert not book.hold(same, 1, window_from=10, now=20).held


def test_a_step_waits_for_its_outcome_and_is_not_repeated_once_it_did_not_improve():
    applied = plan("P1-001", "vhf_min", 0.25, 0.3, status="applied").with_changes(applied_from="seg1_test020")
    book = book_with(applied, emit_index=11)
    again = PatchItem(parameter="vhf_min", old_value=0.3, new_value=0.35)
    assert book.hold(again, 1, window_from=20, now=25).why == "P1-001 on vhf_min has no outcome yet"
    assert [r.event.plan_id for r in book.awaiting_outcome(25)] == ["P1-001"]
    record = book.plans["P1-001"]
    book.advance(record, "applied", NOW, outcome={"metric": "blunders_per_100", "improved": False, "at_index": 30})
    assert book.hold(again, 1, window_from=20, now=30).held  # measured at 30: not known yet while test 30 runs
    assert "did not improve" in book.hold(again, 1, window_from=31, now=40).why
    assert book.hold(again, 2, window_from=131, now=140).held, "a remedy that failed is not tried again"
    assert not book.hold(PatchItem(parameter="vhf_min", old_value=0.3, new_value=0.25), 1, 31, 40).held
    record.event = record.event.with_changes(outcome={"metric": "blunders_per_100", "improved": True, "at_index": 30})
    assert not book.hold(again, 1, window_from=31, now=40).held


def test_an_outcome_is_improved_only_when_even_the_cautious_value_beats_before_and_the_score_holds():
    before = {"hit": 0.30, "score": 20.0, "trades": 30}
    better = outcome("hit", 1, before, {"hit": 0.55, "score": 25.0, "trades": 31, "episodes": 30}, 0.41,
                     ["seg1_test020", "seg1_test024"], 24)
    assert better["improved"] and better["trades_after"] == 31 and better["first_test"] == "seg1_test020"
    noise = outcome("hit", 1, before, {"hit": 0.36, "score": 25.0, "trades": 31}, 0.22, [], 24)
    assert not noise["improved"], "a rise inside the noise is no improvement"
    worse_whole = outcome("hit", 1, before, {"hit": 0.55, "score": 12.0, "trades": 31}, 0.41, [], 24)
    assert not worse_whole["improved"], "the metric bought with a worse score is no improvement"
    fewer_blunders = outcome("blunders_per_100", -1, {"blunders_per_100": 20.0, "score": 10.0},
                             {"blunders_per_100": 2.0, "score": 11.0}, 9.0, [], 24)
    assert fewer_blunders["improved"]


# ---------------------------------------------------------------- the five rules


def episodes(n: int, *, trades: int = 1, wins: int | None = None, win: float = 100.0, loss: float = -100.0,
             blunders: int = 0, high_vol: int = 1, maxdd: float = -50.0, start: int = 0) -> list[EpisodeStat]:
    """n episodes of `trades` trades each, `wins` of them winners (default: all)."""
    wins = trades if wins is None else wins
    losses = trades - wins
    return [
        EpisodeStat(test_index=start + k // 7, episode_id=k, n_trades=trades, wins=wins, sum_win=win * wins,
                    losses=losses, sum_loss=loss * losses, blunders=blunders, high_vol=high_vol,
                    pnl=win * wins + loss * losses, maxdd=maxdd, score=50.0,
                    sumsq_win=(win * 1.1) ** 2 * wins, sumsq_loss=(loss * 1.1) ** 2 * losses)
        for k in range(n)
    ]


def run(rules: Rules, eps: list[EpisodeStat], params: Params | None = None) -> list[str]:
    analyzer = Analyzer(rules)
    fired: list[str] = []
    for k in range(0, len(eps), 7):  # one test = 7 validation episodes
        check = analyzer.feed(eps[k:k + 7], params or Params())
        if check is not None:
            fired += [f.rule for f in check.firings]
    return fired


RULES = Rules()


def test_no_rule_fires_on_results_that_meet_every_target():
    good = episodes(80, trades=1, wins=None, high_vol=1)
    assert window_metrics(good).hit == 1.0
    assert run(RULES, good) == []


def test_maxdd_fires_on_a_deep_test_drawdown_and_steps_timeout_down_within_its_max_step():
    deep = episodes(80, maxdd=-2500.0)
    analyzer = Analyzer(RULES)
    checks = [c for k in range(0, 80, 7) if (c := analyzer.feed(deep[k:k + 7], Params())) is not None]
    firing = next(f for c in checks for f in c.firings if f.rule == "maxdd_deep")
    assert (firing.parameter, firing.old_value, firing.new_value) == ("timeout_bars", 240, 180)
    assert "maxdd_deep" not in run(RULES, episodes(80, maxdd=-1500.0))


def test_blunders_fire_only_when_the_rate_is_above_target_beyond_the_noise():
    assert "blunders_high" in run(RULES, episodes(80, trades=1, wins=0, blunders=1))
    # 1 blunder in 40 trades: 2.5/100 is above 2 on the estimate, not beyond the noise
    few = episodes(80, trades=1)
    few[5] = episodes(1, trades=1, wins=0, blunders=1, start=0)[0]
    assert "blunders_high" not in run(RULES, few)
    assert "blunders_high" in run(Rules(confidence_z=0), few)


def test_blunders_switch_the_trend_gate_on_first():
    analyzer = Analyzer(RULES)
    eps = episodes(40, trades=1, wins=0, blunders=1)
    checks = [c for k in range(0, 40, 7) if (c := analyzer.feed(eps[k:k + 7], Params(gate_vhf=False))) is not None]
    firing = next(f for c in checks for f in c.firings if f.rule == "blunders_high")
    assert (firing.parameter, firing.new_value) == ("gate_vhf", True)


def test_hit_fires_after_three_consecutive_low_checks_only():
    low = episodes(120, trades=1, wins=0, loss=-10.0)
    fired = run(RULES, low)
    assert fired.count("hit_low") >= 1
    analyzer = Analyzer(RULES)
    first_checks = []
    for k in range(0, 120, 7):
        check = analyzer.feed(low[k:k + 7], Params())
        if check is not None:
            first_checks.append("hit_low" in [f.rule for f in check.firings])
    assert first_checks[:3] == [False, False, True]
    assert "hit_low" not in run(RULES, episodes(120, trades=2, wins=1))


def test_payoff_fires_when_winners_are_clearly_smaller_than_losers():
    small_wins = episodes(80, trades=2, wins=1, win=50.0, loss=-100.0)
    assert "payoff_low" in run(RULES, small_wins)
    assert "payoff_low" not in run(RULES, episodes(80, trades=2, wins=1, win=150.0, loss=-100.0))


def test_high_vol_share_fires_when_few_trades_are_in_the_high_volatility_bin():
    assert "high_vol_share_low" in run(RULES, episodes(80, trades=1, high_vol=0))
    assert "high_vol_share_low" not in run(RULES, episodes(80, trades=1, high_vol=1))


def test_no_check_before_a_full_window_with_enough_trades():
    analyzer = Analyzer(Rules(window_episodes=30, min_trades=30))
    sparse = episodes(70, trades=0, high_vol=0) + episodes(7, trades=1, high_vol=0)
    assert all(analyzer.feed(sparse[k:k + 7], Params()) is None for k in range(0, 77, 7))


def test_every_rule_names_the_metric_its_outcome_is_judged_on():
    assert set(RULE_METRIC) == {"maxdd_deep", "blunders_high", "hit_low", "payoff_low", "high_vol_share_low"}


def test_a_held_change_is_said_once_and_its_repeats_in_one_line_when_its_reason_changes_or_the_segment_ends(caplog):
    holds = HoldLog()
    caplog.set_level(logging.INFO, logger="maestro.gate")
    waiting = "P1-001 on vhf_min has no outcome yet"
    for t in range(10, 15):
        holds.held("blunders_high", "vhf_min", f"seg1_test{t:03d}", waiting)
    holds.held("hit_low", "atr_stop_mult", "seg1_test012", "vetoed 1×")  # another rule's hold is its own
    holds.held("blunders_high", "vhf_min", "seg1_test015", "P1-001 already stepped vhf_min this way")
    holds.held("blunders_high", "vhf_min", "seg1_test016", "P1-001 already stepped vhf_min this way")
    holds.lifted("hit_low", "atr_stop_mult")  # proposed after a single hold: nothing more to say
    holds.close()
    holds.close()  # said once
    assert [r.getMessage() for r in caplog.records] == [
        f"rule blunders_high on vhf_min at seg1_test010 held: {waiting}",
        "rule hit_low on atr_stop_mult at seg1_test012 held: vetoed 1×",
        "rule blunders_high on vhf_min held 4 more times for the same reason, from seg1_test010 to seg1_test014",
        "rule blunders_high on vhf_min at seg1_test015 held: P1-001 already stepped vhf_min this way",
        "rule blunders_high on vhf_min held 1 more time for the same reason, from seg1_test015 to seg1_test016",
    ]

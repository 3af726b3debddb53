"""Research that cannot flatter noise: windows never reused silently, a baseline that must be
earned on the same data, overfitting measured, holdout never read by a choice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine.jsonl import read_json, read_jsonl
from engine.synthetic import synthetic_bars
from engine.windows import NoWindow, bars_needed, fit_tests, walk_forward_windows
from tests.llm_server import LLMServer, sensible
from tests.sessions import EAGER_RULES, cli, days_of_bars, headless_session, only_session, settle, write_binance_csv

# ------------------------------------------------------------------ fitting tests to windows


def test_enough_windows_run_as_asked():
    plan = fit_tests(600, 5, 100)
    assert (plan.segments, plan.tests, plan.reused_tests, plan.unused_windows) == (5, 100, 0, 100)
    assert plan.note() is None and not plan.fitted


def test_too_few_windows_shrink_the_tests_per_segment_and_reuse_none():
    plan = fit_tests(23, 5, 100)
    assert (plan.segments, plan.tests) == (5, 4)
    assert [plan.window_of(g) for g in range(plan.total)] == list(range(20))
    assert not any(plan.reused(g) for g in range(plan.total))
    assert "23 walk-forward windows, not the 500 asked: 5 segments of 4 tests" in plan.note()


def test_fewer_windows_than_segments_skip_the_later_segments_and_say_so():
    plan = fit_tests(3, 5, 100)
    assert (plan.segments, plan.tests) == (3, 1)
    assert "segments 4–5 skipped: no unseen window left" in plan.note()


def test_allow_reuse_keeps_the_size_and_marks_every_reused_test():
    plan = fit_tests(3, 5, 100, allow_reuse=True)
    assert (plan.segments, plan.tests, plan.reused_tests) == (5, 100, 497)
    assert [plan.reused(g) for g in range(5)] == [False, False, False, True, True]
    assert not plan.unseen(4) and "497 tests reuse a window" in plan.note()


def test_no_window_at_all_is_refused():
    with pytest.raises(NoWindow):
        fit_tests(0, 5, 100)


# ------------------------------------------------------------------ a trader's own short file


@pytest.mark.slow
def test_a_20_day_file_runs_on_windows_of_its_own_and_says_so(tmp_path: Path):
    data = days_of_bars(tmp_path / "BTCUSDT-5m-2025-03.csv", 20)
    out = cli("run", "--headless", "--data", str(data), "--sessions-dir", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    line = "the data holds 3 walk-forward windows, not the 500 asked: 3 segments of 1 test"
    assert line in out.stderr and len(out.stderr.strip().splitlines()) == 1
    session = only_session(tmp_path / "s")
    windows = [t["window"] for k in (1, 2, 3) for t in read_json(session / f"segment_{k}/segment_plan.json")["tests_planned"]]
    assert sorted(windows) == [0, 1, 2]  # each window once
    assert not (session / "segment_4").exists()
    assert f"- Windows: {line}" in (session / "session_summary.md").read_text()
    assert read_json(session / "metrics_global.json")["reused_tests"] == 0


@pytest.mark.slow
def test_allow_reuse_marks_every_reused_test_and_every_result_built_on_them(tmp_path: Path):
    data = days_of_bars(tmp_path / "short.csv", 20)
    out = cli("run", "--headless", "--data", str(data), "--allow-reuse", "--segments", "4", "--tests", "2",
              "--sessions-dir", str(tmp_path / "s"))
    assert out.returncode == 0, out.stderr
    assert "3 walk-forward windows for 8 tests: 5 tests reuse a window" in out.stderr
    session = only_session(tmp_path / "s")
    planned = [t for k in range(1, 5) for t in read_json(session / f"segment_{k}/segment_plan.json")["tests_planned"]]
    assert [t["reused"] for t in planned] == [False] * 3 + [True] * 5
    assert [read_json(session / f"segment_{k}/segment_results.json")["reused_tests"] for k in range(1, 5)] == [0, 1, 2, 2]
    said = [m["text"] for m in read_jsonl(session / "conversation.jsonl").records if m["agent"] == "maestro"]
    assert any("segment 4 cannot validate on unseen windows: the data has none left" in t for t in said)
    summary = (session / "session_summary.md").read_text()
    assert "5 tests reuse a window (marked as reused" in summary
    assert read_json(session / "metrics_global.json")["reused_tests"] == 5
    assert "2 on reused windows" in out.stdout  # the segment lines


@pytest.mark.slow
def test_a_10_day_file_is_refused_by_check_data_and_run_before_any_folder(tmp_path: Path):
    data = days_of_bars(tmp_path / "ten.csv", 10)
    reason = f"{data}: 2880 bars (10.0 days) hold no walk-forward window: one needs 15 days"
    checked = cli("check-data", str(data))
    assert checked.returncode == 2 and reason in checked.stderr and len(checked.stderr.splitlines()) == 1
    ran = cli("run", "--headless", "--data", str(data), "--sessions-dir", str(tmp_path / "s"))
    assert ran.returncode == 2 and reason in ran.stderr and len(ran.stderr.splitlines()) == 1
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_check_data_says_span_gaps_windows_and_tests_per_segment(tmp_path: Path):
    bars = synthetic_bars(20 * 288, seed=3)
    keep = np.ones(len(bars), bool)
    keep[1000:1006] = False  # a 6-bar hole
    holed = replace(bars, ts=bars.ts[keep], open=bars.open[keep], high=bars.high[keep], low=bars.low[keep],
                    close=bars.close[keep], volume=bars.volume[keep], taker_buy_volume=bars.taker_buy_volume[keep])
    data = write_binance_csv(tmp_path / "holed.csv", holed)
    out = cli("check-data", str(data))
    assert out.returncode == 0, out.stderr
    assert "5754 bars of 5m, 2024-01-01 00:00 to 2024-01-20 23:55 UTC (20.0 days)" in out.stdout
    assert "gaps: 1 (6 bars missing in all; never bridged)" in out.stdout
    assert "walk-forward windows: 3" in out.stdout and "runs 3 × 1" in out.stdout


# ------------------------------------------------------------------ the smart baseline

SMALL = ("--segments", "2", "--tests", "8", "--seed", "5")


@pytest.mark.slow
def test_a_best_below_the_bar_is_not_carried_forward_and_repeated_runs_do_not_drift(tmp_path: Path):
    for _ in range(4):
        out = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path))
        assert out.returncode == 0, out.stderr
    sessions = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    configs = [read_json(s / "session_config.json") for s in sessions]
    assert configs[0]["base_origin"] == "defaults (no earlier session on this data)"
    first_best = read_json(sessions[0] / "metrics_global.json")["best"]
    assert first_best["deflated_sharpe"] < 0.95
    assert f"{sessions[0].name}'s best, {first_best['config_id']}" in configs[1]["base_origin"]
    assert "is below 0.95" in configs[1]["base_origin"]
    assert all(c["base_params"] == configs[0]["base_params"] for c in configs)  # the defaults, every time
    bests = [read_json(s / "metrics_global.json")["best"] for s in sessions]
    assert len({(b["config_id"], b["val_pnl"]) for b in bests}) == 1
    assert "- Started from: defaults (" in (sessions[1] / "session_summary.md").read_text()


@pytest.mark.slow
def test_a_best_that_clears_the_bar_is_carried_only_onto_the_same_data(tmp_path: Path):
    earn = {"MAESTRO_BASELINE_MIN_DSR": "0"}  # every best clears a bar of 0
    first = headless_session(tmp_path / "a", *SMALL, env=earn)
    best = read_json(first / "metrics_global.json")["best"]
    same = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path / "a"), env=earn)
    assert same.returncode == 0, same.stderr
    second = max((p for p in (tmp_path / "a").iterdir() if p != first), key=lambda p: p.name)
    config = read_json(second / "session_config.json")
    assert json.loads(best["params_json"]) == config["base_params"]
    assert config["base_origin"].startswith(f"{first.name}'s best: {best['config_id']}")
    assert config["baseline"] == {"session": first.name, "config_id": best["config_id"],
                                  "deflated_sharpe": best["deflated_sharpe"]}
    said = read_jsonl(second / "conversation.jsonl").records[0]
    assert said["agent"] == "maestro" and config["base_origin"] in said["text"]  # the first Maestro message
    # another synthetic series is other data: it does not feed this folder's baseline
    other = cli("run", "--headless", "--segments", "2", "--tests", "8", "--seed", "6", "--sessions-dir", str(tmp_path / "a"),
                env=earn)
    assert other.returncode == 0
    third = max((p for p in (tmp_path / "a").iterdir() if p not in (first, second)), key=lambda p: p.name)
    assert read_json(third / "session_config.json")["base_origin"] == "defaults (no earlier session on this data)"


@pytest.mark.slow
def test_the_baseline_flag_overrides_and_a_bad_one_is_refused(tmp_path: Path):
    first = headless_session(tmp_path / "a", *SMALL)
    out = cli("run", "--headless", *SMALL, "--baseline", str(first), "--sessions-dir", str(tmp_path / "b"))
    assert out.returncode == 0, out.stderr
    config = read_json(only_session(tmp_path / "b") / "session_config.json")
    assert config["base_origin"].startswith(f"{first.name}'s best (--baseline)")
    assert json.loads(read_json(first / "metrics_global.json")["best"]["params_json"]) == config["base_params"]
    out = cli("run", "--headless", *SMALL, "--baseline", "defaults", "--sessions-dir", str(tmp_path / "a"))
    assert out.returncode == 0
    bad = cli("run", "--headless", *SMALL, "--baseline", "session_nowhere", "--sessions-dir", str(tmp_path / "c"))
    assert bad.returncode == 2 and "--baseline session_nowhere: not a finished session" in bad.stderr
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


@pytest.mark.slow
async def test_the_status_bar_names_the_baseline_and_the_fit(tmp_path: Path):
    from maestro_tui.app import console

    data = days_of_bars(tmp_path / "short.csv", 20)
    session = headless_session(tmp_path / "s", "--data", str(data))
    app = console(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot, lambda: "tried" in str(app.session.w_board.parent.border_subtitle))  # the feed read it all
        foot, status = str(app.session.w_board.parent.border_subtitle), str(app.session.w_status.render())
    assert "base: defaults" in status and "fitted to 3 windows" in status
    trials = read_json(session / "metrics_global.json")["overfitting"]["trials"]
    assert foot == f"{trials} tried · PBO n/a"  # 3 tests: too few to split


# ------------------------------------------------------------------ overfitting measured


@pytest.mark.slow
def test_every_proposal_counts_as_a_trial_and_the_summary_says_how_much_is_luck(tmp_path: Path):
    session = headless_session(tmp_path, "--segments", "2", "--tests", "12", "--seed", "11")
    metrics = read_json(session / "metrics_global.json")
    over = metrics["overfitting"]
    proposed = set()
    for k in (1, 2):
        plan = read_json(session / f"segment_{k}/segment_plan.json")
        proposed |= {json.dumps(p["parametros"], sort_keys=True) + p["metodo"] for p in plan["proposals"]["proposta"]}
    tested = {s["config_id"] for s in metrics["standings"]}
    assert over["trials"] >= len(tested) and over["trials"] == metrics["configs_tried"]
    assert over["tests"] == 24 and over["pbo"] is not None and 0 <= over["pbo"] <= 1
    summary = (session / "session_summary.md").read_text()
    assert f"- Configs tried: **{over['trials']}**" in summary
    assert f"Probability of backtest overfitting (CSCV): **{over['pbo']:.2f}** over 24 tests" in summary
    assert f"chance alone: about {over['profitable_by_chance']:g}" in summary


# ------------------------------------------------------------------ holdout untouched by selection


def _holdout_only_change(path: Path, bars, segments: int, tests: int) -> Path:
    """`bars` with the bars only the last window's holdout covers moved (every window before ends earlier)."""
    windows = walk_forward_windows(len(bars), bars.interval_ms)
    assert len(windows) == segments * tests
    start = windows[-2].end  # the last window's holdout: no other window's train or validation reaches it
    assert start == windows[-1].validation_end
    scale = np.ones(len(bars))
    scale[start:] = np.linspace(1.0, 1.3, len(bars) - start)  # a steady rally nobody may act on
    return write_binance_csv(path, replace(bars, open=bars.open * scale, high=bars.high * scale,
                                           low=bars.low * scale, close=bars.close * scale))


SELECTION = ("plans.jsonl", "decisions.jsonl", "allocation.jsonl", "segment_1/segment_plan.json",
             "segment_2/segment_plan.json")


@pytest.mark.slow
def test_changing_holdout_bars_changes_no_choice_and_no_prompt(tmp_path: Path):
    segments, tests = 2, 3
    bars = synthetic_bars(bars_needed(segments * tests, 300_000), seed=9)
    a = write_binance_csv(tmp_path / "a.csv", bars)
    b = _holdout_only_change(tmp_path / "b.csv", bars, segments, tests)
    runs = []
    for data in (a, b):
        with LLMServer(sensible) as server:
            env = {**EAGER_RULES, "ANTHROPIC_API_KEY": "sk-ant-test", "OPENAI_API_KEY": "sk-test",
                   "ANTHROPIC_BASE_URL": server.url, "OPENAI_BASE_URL": server.url + "/v1"}
            session = headless_session(tmp_path / data.stem, "--data", str(data), "--segments", str(segments),
                                       "--tests", str(tests), env=env)
            runs.append((session, list(server.requests)))
    (sa, ra), (sb, rb) = runs
    assert ra and ra == rb  # every prompt to both LLMs, word for word
    for name in SELECTION:
        strip = lambda r: {k: v for k, v in r.items() if k not in ("emitted_at", "session_id", "nonce")}  # noqa: E731
        if name.endswith(".jsonl"):
            assert [strip(r) for r in read_jsonl(sa / name).records] == [strip(r) for r in read_jsonl(sb / name).records], name
        else:
            assert read_json(sa / name) == read_json(sb / name), name
    said = [[(m["agent"], m["message"]) for m in read_jsonl(s / "conversation.jsonl").records] for s in (sa, sb)]
    assert said[0] == said[1]
    ma, mb = read_json(sa / "metrics_global.json"), read_json(sb / "metrics_global.json")
    rank = lambda m: [(s["config_id"], s["val_score"], s["deflated_sharpe"]) for s in m["standings"]]  # noqa: E731
    assert rank(ma) == rank(mb) and ma["best"]["config_id"] == mb["best"]["config_id"]
    assert ma["overfitting"]["pbo"] == mb["overfitting"]["pbo"]
    # ... while the holdout itself did change: the test can see it
    assert [s["holdout_pnl"] for s in ma["standings"]] != [s["holdout_pnl"] for s in mb["standings"]]

"""Leaderboards: config identity, validation-only ranking, the CSV file, session standings, deflated Sharpe."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from engine.configs import config_id, config_label, params_json
from engine.deflated_sharpe import EULER_GAMMA, deflated_sharpe, expected_max_sharpe
from engine.jsonl import SessionFileError
from engine.leaderboard import (
    CSV_COLUMNS,
    LeaderboardRow,
    rank_test_rows,
    read_leaderboard_csv,
    row_from_metrics,
    write_leaderboard_csv,
)
from engine.metrics import Metrics
from engine.params import Params, bounds_for, params_from_dict
from engine.standings import Standing, standings

PHI = NormalDist()

_METRIC_NAMES = ("trades", "hit", "payoff", "pnl", "maxdd", "sharpe", "score", "blunders", "high_vol_share")


def row(test_id: str, params: Params, role: str = "chosen", **values: Any) -> LeaderboardRow:
    """A row with every metric 0 unless given (e.g. val_score=60)."""
    metrics: dict[str, Any] = {
        f"{prefix}_{m}": (0 if m in ("trades", "blunders") else 0.0)
        for prefix in ("val", "hold", "train")
        for m in _METRIC_NAMES
    }
    metrics.update(values)
    return LeaderboardRow(
        test_id=test_id,
        config_id=config_id(params),
        role=role,
        method=params.method,
        params_json=params_json(params),
        **metrics,
    )


def metrics(**values: Any) -> Metrics:
    base = dict(
        n_trades=0, hit=0.0, payoff=0.0, total_pnl=0.0, maxdd=0.0, blunders=0,
        blunders_per_100=0.0, high_vol_share=0.0, sharpe=0.0, score=0.0,
    )
    base.update(values)
    return Metrics(**base)


def _changed_value(name: str, value: Any) -> Any:
    """A valid value for field `name` of an ema_crossover config different from `value` (keeps fast < slow)."""
    bound = bounds_for("ema_crossover")[name]
    if bound.kind == "method":
        return "macd_trend" if value != "macd_trend" else "ema_crossover"
    if bound.kind == "bool":
        return not value
    if bound.kind == "int":
        return value + 1 if value < bound.hi else value - 1
    return (value + bound.hi) / 2 if value < bound.hi else (value + bound.lo) / 2


# ---------------------------------------------------------------------------- config identity


def test_config_id_is_the_short_sha256_of_the_canonical_params_json() -> None:
    p = Params()
    canonical = json.dumps(p.model_dump(), sort_keys=True, separators=(",", ":"))
    assert params_json(p) == canonical
    assert config_id(p) == "c-" + hashlib.sha256(canonical.encode()).hexdigest()[:8]
    assert re.fullmatch(r"c-[0-9a-f]{8}", config_id(p))


def test_config_id_is_the_same_for_the_same_params_however_they_were_built() -> None:
    typed_in = params_from_dict({"ema_fast": "12", "atr_stop_mult": "1.5", "hard_tp_usd": 400, "gate_cvd": "on"})
    reordered = Params(**dict(reversed(list(Params().model_dump().items()))))
    assert config_id(typed_in) == config_id(Params()) == config_id(reordered)
    assert config_id(Params(atr_stop_mult=2)) == config_id(Params(atr_stop_mult=2.0))


def test_config_id_changes_when_any_single_parameter_changes() -> None:
    base = Params()
    seen = {config_id(base)}
    names = list(base.bounds())  # method, the strategy's own parameters, the shared ones
    for name in names:
        changed = base.with_changes(**{name: _changed_value(name, base.value(name))})
        cid = config_id(changed)
        assert cid != config_id(base), name
        seen.add(cid)
    assert len(seen) == len(names) + 1


def test_config_label_names_method_its_periods_stop_and_take_profit() -> None:
    assert config_label(Params()) == "ema_crossover 12/48 stop1.5 tp400"
    macd = Params(method="macd_trend", atr_stop_mult=1.8, hard_tp_usd=600)
    assert config_label(macd) == "macd_trend 12/26/9 stop1.8 tp600"
    assert config_label(Params(method="trend_breakout", breakout_lookback=96, hard_tp_usd=1250.5)) == (
        "trend_breakout 96 stop1.5 tp1250.5"
    )


# ---------------------------------------------------------------------------- rows and ranking


def test_row_from_metrics_maps_each_phase_to_its_columns() -> None:
    by_phase = {
        "train": metrics(n_trades=40, total_pnl=900.0, score=80.0),
        "validation": metrics(n_trades=7, hit=4 / 7, payoff=1.3, total_pnl=210.5, maxdd=-120.0, blunders=1,
                              high_vol_share=0.25, sharpe=1.1, score=55.0),
        "holdout": metrics(n_trades=3, total_pnl=-40.0),
        "all": metrics(n_trades=50),  # extra keys (BacktestResult.by_phase) are ignored
    }
    r = row_from_metrics("seg1_test001", Params(), "chosen", by_phase)
    assert (r.val_trades, r.val_hit, r.val_payoff, r.val_pnl, r.val_maxdd) == (7, 4 / 7, 1.3, 210.5, -120.0)
    assert (r.val_blunders, r.val_high_vol_share, r.val_sharpe, r.val_score) == (1, 0.25, 1.1, 55.0)
    assert (r.hold_trades, r.hold_pnl, r.train_trades, r.train_pnl, r.train_score) == (3, -40.0, 40, 900.0, 80.0)
    assert r.config_id == config_id(Params()) and r.method == "ema_crossover" and r.rank == 0


def test_row_from_metrics_refuses_a_missing_phase_and_an_unknown_role() -> None:
    with pytest.raises(ValueError, match="holdout"):
        row_from_metrics("t1", Params(), "chosen", {"train": metrics(), "validation": metrics()})
    full = {p: metrics() for p in ("train", "validation", "holdout")}
    with pytest.raises(ValueError, match="role"):
        row_from_metrics("t1", Params(), "hero", full)


def test_ranking_uses_validation_only_not_train_or_holdout() -> None:
    overfit = row("t1", Params(ema_fast=5), train_score=95.0, train_pnl=9000.0, hold_score=90.0, hold_pnl=5000.0,
                  val_score=40.0, val_pnl=100.0)
    robust = row("t1", Params(ema_fast=20), train_score=10.0, train_pnl=-500.0, hold_score=5.0, hold_pnl=-300.0,
                 val_score=60.0, val_pnl=50.0)
    ranked = rank_test_rows([overfit, robust])
    assert [r.config_id for r in ranked] == [robust.config_id, overfit.config_id]
    assert [r.rank for r in ranked] == [1, 2]


def test_ranking_breaks_score_ties_by_validation_pnl_then_config_id_whatever_the_input_order() -> None:
    configs = [Params(ema_fast=f) for f in (5, 6, 7, 8)]
    rows = [
        row("t1", configs[0], val_score=50.0, val_pnl=100.0),
        row("t1", configs[1], val_score=50.0, val_pnl=300.0),
        row("t1", configs[2], val_score=50.0, val_pnl=100.0),
        row("t1", configs[3], val_score=70.0, val_pnl=-10.0),
    ]
    tied = sorted([rows[0].config_id, rows[2].config_id])
    expected = [rows[3].config_id, rows[1].config_id, *tied]
    rng = random.Random(7)
    for _ in range(5):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        ranked = rank_test_rows(shuffled)
        assert [r.config_id for r in ranked] == expected
        assert [r.rank for r in ranked] == [1, 2, 3, 4]


def test_ranking_refuses_rows_from_more_than_one_test() -> None:
    with pytest.raises(ValueError, match="one test"):
        rank_test_rows([row("t1", Params()), row("t2", Params())])


# ---------------------------------------------------------------------------- CSV


def _awkward_rows() -> list[LeaderboardRow]:
    a = row("seg1_test001", Params(), "chosen", val_trades=7, val_hit=4 / 7, val_payoff=0.1 + 0.2,
            val_pnl=-1234.5678901234567, val_maxdd=-0.0, val_sharpe=1e-300, val_score=55.55555555555556,
            val_blunders=2, val_high_vol_share=1 / 3, hold_pnl=12345678.9, train_sharpe=-3.14159e-7)
    b = row("seg1_test001", Params(method="macd_trend", hard_tp_usd=600.25), "baseline", val_score=12.0,
            train_trades=123, train_hit=2 / 3)
    c = row("seg1, test \"quoted\"", Params(method="trend_breakout"), "ensemble", val_pnl=5e-324)
    return rank_test_rows([a, b]) + [c]


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    rows = _awkward_rows()
    path = tmp_path / "leaderboard_base.csv"
    write_leaderboard_csv(path, rows)
    back = read_leaderboard_csv(path)
    assert back == rows
    for original, read in zip(rows, back):  # == would let -0.0 pass for 0.0; repr does not
        for column in CSV_COLUMNS:
            assert repr(getattr(read, column)) == repr(getattr(original, column)), column
    first_text = path.read_text()
    write_leaderboard_csv(path, back)
    assert path.read_text() == first_text


def test_csv_has_the_documented_header_and_json_params_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "lb.csv"
    write_leaderboard_csv(path, _awkward_rows())
    with open(path, newline="") as f:
        cells = list(csv.reader(f))
    assert tuple(cells[0]) == CSV_COLUMNS
    assert CSV_COLUMNS[:5] == ("test_id", "rank", "config_id", "role", "method")
    assert CSV_COLUMNS[5:8] == ("val_trades", "val_hit", "val_payoff") and CSV_COLUMNS[-1] == "params_json"
    assert json.loads(cells[1][-1]) == Params().model_dump()


def test_writing_a_nan_names_row_and_column_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "lb.csv"
    write_leaderboard_csv(path, _awkward_rows())
    before = path.read_bytes()
    bad = [row("t1", Params()), row("t1", Params(ema_fast=5), val_pnl=math.nan)]
    with pytest.raises(ValueError, match=r"row 3, column val_pnl"):
        write_leaderboard_csv(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["lb.csv"]  # no temporary file left behind


def _good_cells(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "good.csv"
    write_leaderboard_csv(path, _awkward_rows())
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _set(cells: list[list[str]], row_no: int, column: str, value: str) -> list[list[str]]:
    cells = [list(c) for c in cells]
    cells[row_no - 1][CSV_COLUMNS.index(column)] = value
    return cells


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: _set(c, 3, "val_hit", "abc"), r"row 3, column val_hit: 'abc' is not a number"),
        (lambda c: _set(c, 2, "rank", "1.5"), r"row 2, column rank: '1.5' is not a whole number"),
        (lambda c: _set(c, 4, "val_pnl", "nan"), r"row 4, column val_pnl: 'nan' is not a finite number"),
        (lambda c: _set(c, 2, "val_trades", "-3"), r"row 2, column val_trades: -3 is negative"),
        (lambda c: _set(c, 3, "role", "hero"), r"row 3, column role: 'hero' is not one of"),
        (lambda c: _set(c, 2, "params_json", "{not json"), r"row 2, column params_json: not valid JSON"),
        (lambda c: _set(c, 2, "params_json", '{"method":"ema_crossover"}'), r"row 2, column params_json: notional_usd"),
        (lambda c: _set(c, 2, "config_id", ""), r"row 2, column config_id: empty"),
        (lambda c: c[:2] + [c[2][:5]] + c[3:], r"row 3: 5 columns, expected"),
        (lambda c: [[x for x in c[0] if x != "val_pnl"]] + c[1:], r"row 1 \(header\): missing column val_pnl"),
        (lambda c: [c[0] + ["bonus"]] + [r + ["1"] for r in c[1:]], r"row 1 \(header\): unexpected column 'bonus'"),
    ],
    ids=["bad-float", "bad-int", "nan", "negative-count", "bad-role", "bad-json", "no-notional", "empty-id",
         "short-row", "missing-column", "extra-column"],
)
def test_malformed_csv_raises_session_file_error_naming_row_and_column(
    tmp_path: Path, edit: Any, expected: str
) -> None:
    path = tmp_path / "leaderboard_base.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(edit(_good_cells(tmp_path)))
    with pytest.raises(SessionFileError, match=expected) as info:
        read_leaderboard_csv(path)
    assert info.value.path == path
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (",".join(CSV_COLUMNS).encode() + b'\nt1,1,"unterminated\n', "not valid CSV"),
        (",".join(CSV_COLUMNS).encode() + b"\n\xff\xfe,1\n", "not UTF-8"),
    ],
    ids=["empty", "unterminated-quote", "not-utf8"],
)
def test_unreadable_csv_raises_session_file_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "lb.csv"
    path.write_bytes(content)
    with pytest.raises(SessionFileError, match=expected):
        read_leaderboard_csv(path)


def test_missing_csv_raises_session_file_error(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="file not found"):
        read_leaderboard_csv(tmp_path / "nope.csv")


def test_huge_finite_values_are_read_and_an_infinite_one_is_named(tmp_path: Path) -> None:
    # the whole-row check sums the floats; a sum that overflows must not refuse finite cells
    path = tmp_path / "lb.csv"
    cells = _set(_set(_good_cells(tmp_path), 2, "val_pnl", "1.7e308"), 2, "hold_pnl", "1.7e308")
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(cells)
    assert read_leaderboard_csv(path)[0].hold_pnl == 1.7e308
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(_set(cells, 3, "train_pnl", "-inf"))
    with pytest.raises(SessionFileError, match=r"row 3, column train_pnl: '-inf' is not a finite number"):
        read_leaderboard_csv(path)


def test_header_only_csv_reads_as_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "lb.csv"
    write_leaderboard_csv(path, [])
    assert read_leaderboard_csv(path) == []


# ---------------------------------------------------------------------------- deflated Sharpe


def test_deflated_sharpe_matches_the_formula_step_by_step() -> None:
    sr, t, skew, kurt, n, v = 0.5, 20, 0.0, 3.0, 10, 0.04
    # SR0: the best of 10 luck-only configs with Sharpe sd 0.2
    z_n = PHI.inv_cdf(1 - 1 / 10)  # Φ⁻¹(0.9) ≈ 1.28155
    z_ne = PHI.inv_cdf(1 - 1 / (10 * math.e))  # Φ⁻¹(0.96321) ≈ 1.7894
    sr0 = math.sqrt(0.04) * ((1 - 0.5772156649) * z_n + 0.5772156649 * z_ne)
    assert sr0 == pytest.approx(0.31492, abs=1e-4)
    assert expected_max_sharpe(n, v) == pytest.approx(sr0, rel=1e-12)
    # normal returns: 1 − 0·0.5 + (3 − 1)/4·0.25 = 1.125
    z = (0.5 - sr0) * math.sqrt(19) / math.sqrt(1.125)
    assert deflated_sharpe(sr, t, skew, kurt, n, v) == pytest.approx(PHI.cdf(z), rel=1e-12)
    assert deflated_sharpe(sr, t, skew, kurt, n, v) == pytest.approx(0.77655, abs=1e-4)
    assert EULER_GAMMA == 0.5772156649


def test_deflated_sharpe_with_one_trial_is_the_plain_probabilistic_sharpe() -> None:
    sr, t, skew, kurt = 0.5, 20, -0.4, 4.5
    expected = PHI.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert deflated_sharpe(sr, t, skew, kurt, 1, 0.04) == pytest.approx(expected, rel=1e-12)
    assert deflated_sharpe(sr, t, skew, kurt, 1, 0.0) == pytest.approx(expected, rel=1e-12)


def test_more_trials_deflate_more() -> None:
    values = [deflated_sharpe(0.5, 20, 0.0, 3.0, n, 0.04) for n in (1, 2, 5, 10, 100, 1000)]
    assert all(a > b for a, b in itertools.pairwise(values)), values
    assert all(0.0 <= d <= 1.0 for d in values)


def test_deflated_sharpe_floors_an_impossible_variance_instead_of_failing() -> None:
    # 1 − 3·1 + (3 − 1)/4·1 = −1.5: moments that cannot come from one sample; floored, so saturated
    assert deflated_sharpe(1.0, 10, 3.0, 3.0, 1, 0.0) == pytest.approx(1.0)
    assert deflated_sharpe(-1.0, 10, -3.0, 3.0, 1, 0.0) == pytest.approx(0.0)


def test_deflated_sharpe_refuses_meaningless_inputs() -> None:
    with pytest.raises(ValueError, match="t must be"):
        deflated_sharpe(0.5, 1, 0.0, 3.0, 1, 0.0)
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe(0.5, 10, 0.0, 3.0, 0, 0.0)
    with pytest.raises(ValueError, match="var_trials"):
        expected_max_sharpe(3, -0.1)
    with pytest.raises(ValueError, match="sr"):
        deflated_sharpe(math.nan, 10, 0.0, 3.0, 1, 0.0)


# ---------------------------------------------------------------------------- standings

A = Params()  # notional 100,000 USD
B = Params(ema_fast=20, notional_usd=50_000.0)
C = Params(method="macd_trend")


def _session_rows() -> list[LeaderboardRow]:
    return [
        # A: chosen in three tests; no validation trades in t3
        row("t1", A, "chosen", val_trades=10, val_hit=0.6, val_payoff=1.5, val_pnl=1000.0, val_maxdd=-300.0,
            val_score=60.0, hold_pnl=100.0, train_score=99.0, train_pnl=9999.0),
        row("t2", A, "chosen", val_trades=5, val_hit=0.2, val_payoff=0.8, val_pnl=-500.0, val_maxdd=-900.0,
            val_score=20.0, hold_pnl=-50.0, train_score=99.0),
        row("t3", A, "chosen", hold_pnl=0.0, train_score=99.0),
        # B: baseline in three tests, listed a second time (as ensemble) in t3
        row("t1", B, "baseline", val_trades=4, val_hit=0.5, val_payoff=2.0, val_pnl=500.0, val_maxdd=-200.0,
            val_score=50.0, hold_pnl=10.0),
        row("t2", B, "baseline", val_trades=6, val_hit=0.5, val_payoff=1.0, val_pnl=500.0, val_maxdd=-100.0,
            val_score=40.0, hold_pnl=20.0),
        row("t3", B, "baseline", val_trades=2, val_hit=0.0, val_payoff=0.0, val_pnl=-250.0, val_maxdd=-400.0,
            val_score=30.0, hold_pnl=30.0),
        row("t3", B, "ensemble", val_trades=2, val_hit=0.0, val_payoff=0.0, val_pnl=-250.0, val_maxdd=-400.0,
            val_score=30.0, hold_pnl=30.0),
        # C: one test only
        row("t1", C, "baseline", val_trades=3, val_hit=1.0, val_payoff=10.0, val_pnl=900.0, val_score=90.0),
    ]


def _sharpe_skew_kurt_by_hand(r: list[float]) -> tuple[float, float, float]:
    """Textbook formulas: mean / sample sd; population central moments m3/m2^1.5, m4/m2²."""
    n = len(r)
    mean = sum(r) / n
    d = [x - mean for x in r]
    sd = math.sqrt(sum(x * x for x in d) / (n - 1))
    m2 = sum(x**2 for x in d) / n
    m3 = sum(x**3 for x in d) / n
    m4 = sum(x**4 for x in d) / n
    return mean / sd, m3 / m2**1.5, m4 / m2**2


def test_standings_aggregate_validation_results_per_config() -> None:
    table = {s.config_id: s for s in standings(_session_rows())}
    a, b, c = table[config_id(A)], table[config_id(B)], table[config_id(C)]

    # A: 10 + 5 + 0 trades; wins 0.6·10 + 0.2·5 = 7; payoff mean over the 2 tests that traded
    assert (a.tests, a.val_trades, a.roles) == (3, 15, ("chosen",))
    assert a.val_hit == pytest.approx(7 / 15)
    assert a.val_payoff == pytest.approx((1.5 + 0.8) / 2)
    assert a.val_pnl == pytest.approx(1000.0 - 500.0 + 0.0)
    assert a.val_maxdd == -900.0
    assert a.val_score == pytest.approx((60.0 + 20.0 + 0.0) / 3)
    assert a.holdout_pnl == pytest.approx(50.0)
    assert a.label == "ema_crossover 12/48 stop1.5 tp400" and a.method == "ema_crossover"
    assert a.params_json == params_json(A)

    # B: t3 counted once although listed twice; wins 2 + 3 + 0 = 5 of 12; every test traded
    assert (b.tests, b.val_trades, b.roles) == (3, 12, ("baseline", "ensemble"))
    assert b.val_hit == pytest.approx(5 / 12)
    assert b.val_payoff == pytest.approx((2.0 + 1.0 + 0.0) / 3)
    assert b.val_pnl == pytest.approx(750.0)
    assert b.val_maxdd == -400.0
    assert b.val_score == pytest.approx(40.0)
    assert b.holdout_pnl == pytest.approx(60.0)

    # C: one test, so no Sharpe and no DSR
    assert (c.tests, c.val_trades, c.val_pnl, c.sharpe_per_test, c.deflated_sharpe) == (1, 3, 900.0, 0.0, None)

    # per-test returns: val_pnl / notional (A 100,000 USD, B 50,000 USD)
    r_a = [1000 / 100_000, -500 / 100_000, 0 / 100_000]  # 0.01, −0.005, 0
    r_b = [500 / 50_000, 500 / 50_000, -250 / 50_000]  # 0.01, 0.01, −0.005
    sr_a, skew_a, kurt_a = _sharpe_skew_kurt_by_hand(r_a)
    sr_b, skew_b, kurt_b = _sharpe_skew_kurt_by_hand(r_b)
    # B by pencil: mean 0.005, deviations (0.005, 0.005, −0.01), sample sd sqrt(7.5e-5)
    assert sr_b == pytest.approx(1 / math.sqrt(3))
    assert skew_b == pytest.approx(-1 / math.sqrt(2)) and kurt_b == pytest.approx(1.5)
    assert sr_a == pytest.approx(0.0016667 / 0.0076376, rel=1e-4)
    assert a.sharpe_per_test == pytest.approx(sr_a, rel=1e-12)
    assert b.sharpe_per_test == pytest.approx(sr_b, rel=1e-12)

    # N = 3 configs tried; V = sample variance of the Sharpes of A and B (C has one test)
    v = (sr_a - sr_b) ** 2 / 2
    sr0 = math.sqrt(v) * ((1 - EULER_GAMMA) * PHI.inv_cdf(1 - 1 / 3) + EULER_GAMMA * PHI.inv_cdf(1 - 1 / (3 * math.e)))
    dsr_a = PHI.cdf((sr_a - sr0) * math.sqrt(2) / math.sqrt(1 - skew_a * sr_a + (kurt_a - 1) / 4 * sr_a**2))
    dsr_b = PHI.cdf((sr_b - sr0) * math.sqrt(2) / math.sqrt(1 - skew_b * sr_b + (kurt_b - 1) / 4 * sr_b**2))
    assert a.deflated_sharpe == pytest.approx(dsr_a, rel=1e-9)
    assert b.deflated_sharpe == pytest.approx(dsr_b, rel=1e-9)


def test_standings_rank_on_validation_score_not_train() -> None:
    table = standings(_session_rows())
    # A has by far the best train score, yet the worst validation score
    assert [s.config_id for s in table] == [config_id(C), config_id(B), config_id(A)]
    assert [s.rank for s in table] == [1, 2, 3]
    assert all(isinstance(s, Standing) for s in table)


def test_standings_do_not_depend_on_row_order() -> None:
    rows = _session_rows()
    expected = standings(rows)
    rng = random.Random(3)
    for _ in range(5):
        shuffled = rows[:]
        rng.shuffle(shuffled)
        assert standings(shuffled) == expected
    assert standings(reversed(rows)) == expected


def test_standings_break_ties_by_validation_pnl_then_config_id() -> None:
    x, y, z = Params(ema_fast=5), Params(ema_fast=6), Params(ema_fast=7)
    rows = [row("t1", x, val_score=50.0, val_pnl=10.0), row("t1", y, val_score=50.0, val_pnl=10.0),
            row("t1", z, val_score=50.0, val_pnl=20.0)]
    ids = [s.config_id for s in standings(rows)]
    assert ids == [config_id(z), *sorted([config_id(x), config_id(y)])]


def test_dsr_is_none_below_three_tests_and_trial_variance_needs_two_multi_test_configs() -> None:
    rows = [row(f"t{i}", A, val_pnl=p, val_score=10.0) for i, p in enumerate([300.0, -100.0, 500.0, 200.0])]
    rows += [row("t0", C, val_pnl=50.0), row("t1", B, val_pnl=10.0)]  # one test each: counted in N only
    table = {s.config_id: s for s in standings(rows)}
    assert table[config_id(C)].deflated_sharpe is None and table[config_id(B)].deflated_sharpe is None
    # Only A has ≥ 2 tests, so V = 0 and SR0 = 0 although N = 3
    sr, skew, kurt = _sharpe_skew_kurt_by_hand([0.003, -0.001, 0.005, 0.002])
    expected = PHI.cdf(sr * math.sqrt(3) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2))
    assert table[config_id(A)].deflated_sharpe == pytest.approx(expected, rel=1e-9)

    two_tests = standings([row("t1", A, val_pnl=100.0), row("t2", A, val_pnl=300.0)])
    assert two_tests[0].deflated_sharpe is None and two_tests[0].sharpe_per_test != 0.0


def test_constant_returns_have_zero_sharpe_and_an_even_dsr() -> None:
    # a config that never traded: sd 0, so SR̂ = 0 and returns taken as normal
    table = standings([row(f"t{i}", A) for i in range(4)])
    assert table[0].sharpe_per_test == 0.0
    assert table[0].deflated_sharpe == pytest.approx(0.5)
    assert table[0].val_hit == 0.0 and table[0].val_payoff == 0.0


def test_standings_read_back_from_csv_equal_those_from_memory(tmp_path: Path) -> None:
    rows = _session_rows()
    for test_id in ("t1", "t2", "t3"):
        write_leaderboard_csv(tmp_path / f"{test_id}.csv", rank_test_rows(r for r in rows if r.test_id == test_id))
    back = [r for t in ("t1", "t2", "t3") for r in read_leaderboard_csv(tmp_path / f"{t}.csv")]
    assert standings(back) == standings([replace(r, rank=0) for r in rows])


# ---------------------------------------------------------------------------- the standings book


def _many_tests(n: int = 12) -> list[list[LeaderboardRow]]:
    """n tests: A and B in every test (B twice in some), C chosen from test 5 on, D only in the last."""
    rng = random.Random(5)
    D = Params(method="trend_breakout", breakout_lookback=30)
    tests = []
    for i in range(n):
        t = f"seg1_test{i + 1:03d}"
        rows = [row(t, A, "baseline", val_trades=rng.randint(0, 9), val_hit=rng.random(), val_payoff=rng.random() * 3,
                    val_pnl=rng.uniform(-900, 900), val_maxdd=-rng.random() * 1000, val_score=rng.uniform(0, 100),
                    hold_pnl=rng.uniform(-50, 50)),
                row(t, B, "baseline", val_trades=3, val_pnl=rng.uniform(-300, 300), val_score=rng.uniform(0, 100))]
        if i % 3 == 0:
            rows.append(replace(rows[1], role="ensemble"))
        if i >= 4:
            rows.append(row(t, C, "chosen", val_trades=5, val_hit=0.6, val_pnl=rng.uniform(-100, 400),
                            val_score=rng.uniform(20, 80)))
        if i == n - 1:
            rows.append(row(t, D, "chosen", val_pnl=10.0))
        tests.append(rows)
    return tests


def test_the_book_added_test_by_test_equals_standings_of_all_rows_at_every_step() -> None:
    from engine.standings import StandingsBook

    tests = _many_tests()
    book = StandingsBook()
    for k, rows in enumerate(tests, start=1):
        book.add(rows)
        assert book.tests == k
        assert book.table() == standings([r for t in tests[:k] for r in t])


def test_the_book_shown_as_of_an_earlier_test_equals_standings_of_those_tests_and_goes_forward_again() -> None:
    from engine.standings import StandingsBook

    tests = _many_tests()
    book = StandingsBook()
    for rows in tests:
        book.add(rows)
    full = book.table()
    for k in (11, 7, 4, 1, 0, 12, 3):
        book.show(k)
        assert (book.tests, book.stored) == (k, 12)
        assert book.table() == standings([r for t in tests[:k] for r in t]), k
    # C came in test 5 and D in test 12: absent as of test 4; B's ensemble role (test 1) is there
    book.show(4)
    ids = {s.config_id: s for s in book.table()}
    assert set(ids) == {config_id(A), config_id(B)} and ids[config_id(B)].roles == ("baseline", "ensemble")
    assert book.equity(config_id(B)) == _book_of(tests[:4]).equity(config_id(B))
    with pytest.raises(ValueError, match="show them all before adding"):
        book.add(tests[4])
    with pytest.raises(ValueError, match="between 0 and 12"):
        book.show(13)
    book.show(12)
    assert book.table() == full


def _book_of(tests: list[list[LeaderboardRow]]):
    from engine.standings import StandingsBook

    book = StandingsBook()
    for rows in tests:
        book.add(rows)
    return book


def test_the_books_equity_is_the_cumulative_validation_pnl_once_per_test() -> None:
    from engine.standings import StandingsBook

    tests = _many_tests()
    book = StandingsBook()
    for rows in tests:
        book.add(rows)
    b_pnl = [next(r.val_pnl for r in t if r.config_id == config_id(B)) for t in tests]
    curve = book.equity(config_id(B))
    assert [tid for tid, _ in curve] == [f"seg1_test{i:03d}" for i in range(1, 13)]
    assert [v for _, v in curve] == pytest.approx(list(itertools.accumulate(b_pnl)))
    assert _book_of([[r for t in tests for r in t]]).equity(config_id(B)) == curve  # all rows at once: the same
    assert book.equity("c-00000000") == []


def test_a_leaderboard_read_again_is_the_file_as_it_is_now(tmp_path: Path) -> None:
    # the conductor's reports read every test's leaderboard again: a file unchanged is parsed once,
    # a file replaced (a test rerun after a crash) or edited in place is read anew
    path = tmp_path / "leaderboard_base.csv"
    first = [row("seg1_test001", Params(), val_score=60.0)]
    write_leaderboard_csv(path, first)
    got = read_leaderboard_csv(path)
    assert got == first
    got.clear()  # the caller's own list
    assert read_leaderboard_csv(path) == first
    second = [row("seg1_test001", Params(atr_stop_mult=2.0), val_score=70.0), row("seg1_test001", Params(), "baseline")]
    write_leaderboard_csv(path, second)
    assert read_leaderboard_csv(path) == second
    with open(path, "r+", encoding="utf-8") as fh:  # the same inode, edited in place
        text = fh.read()
        fh.seek(0)
        fh.write(text.replace("seg1_test001", "seg1_test0002"))
    assert [r.test_id for r in read_leaderboard_csv(path)] == ["seg1_test0002"] * 2

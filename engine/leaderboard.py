"""Leaderboards: the configs of one walk-forward test ranked, and session standings across tests.

Each test (one window) backtests several configs; each gives one `LeaderboardRow` with its
metrics per phase. Ranking — within a test and across the session — uses the validation
(out-of-sample) phase only, never train and never holdout (DESIGN.md §9): by validation
score, then validation PnL, then config id so ties always fall the same way.

A config is named by `config_id`: "c-" + the first 8 hex digits of the SHA-256 of its
canonical parameter JSON (all fields, sorted keys, compact), so the same parameters get the
same id in every test, session and process, and any change of any parameter gives a new one.

CSV file (`leaderboard_base.csv` in each test folder, DESIGN.md §4): a header row, then one
row per config, in the column order of `CSV_COLUMNS`:

    test_id, rank, config_id, role, method,
    val_{trades,hit,payoff,pnl,maxdd,sharpe,score,blunders,high_vol_share},
    hold_{...same nine...}, train_{...same nine...}, params_json

Counts are integers; every other number is written with repr() so it reads back bit for
bit; params_json is last because it is long, and quoted by the csv module.

Session standings (`standings`), per config, over the tests it ran in:

- val_trades, val_pnl, holdout_pnl: sums (trades, USD).
- val_hit: trade-weighted (all validation wins / all validation trades).
- val_payoff: mean of the per-test payoffs over the tests with validation trades (a test
  without trades has no payoff to average; 0 when no test had trades).
- val_maxdd: the worst (most negative) per-test validation drawdown, USD ≤ 0.
- val_score: mean of the per-test validation scores; a test without trades counts as 0.
- sharpe_per_test: mean / sample sd (n − 1) of the per-test validation returns
  r_i = val_pnl_i / notional_usd. Not annualised: one unit is one test. 0 with fewer than
  2 tests or when the sd is 0.
- deflated_sharpe: see below; None with fewer than 3 tests.

Deflated Sharpe ratio (Bailey & López de Prado, 2014, "The Deflated Sharpe Ratio: Correcting
for Selection Bias, Backtest Overfitting and Non-Normality"). In a trader's words: the
probability that the config's true Sharpe is above what the best of N random configs would
show by luck alone. Trying many configs and keeping the best inflates its Sharpe; the DSR
asks how much of it survives that selection and the fat tails of few test results.

    SR0 = sqrt(V) · ((1 − γ)·Φ⁻¹(1 − 1/N) + γ·Φ⁻¹(1 − 1/(N·e)))         (SR0 = 0 when N = 1)
    DSR = Φ( (SR̂ − SR0)·sqrt(T − 1) / sqrt(1 − γ3·SR̂ + (γ4 − 1)/4 · SR̂²) )

- SR̂: the config's sharpe_per_test; T: its number of tests (returns).
- γ3, γ4: skewness and (non-excess, normal = 3) kurtosis of its per-test returns, moment
  estimators (population central moments m3 / m2^1.5, m4 / m2²).
- N: the number of configs tried in the session (every config in the rows).
- V: sample variance across configs of their SR̂, over configs with at least 2 tests;
  0 when fewer than 2 such configs.
- γ = 0.5772156649 (Euler–Mascheroni); Φ, Φ⁻¹ the standard normal cdf and its inverse.
- SR0 is the Sharpe the best of N luck-only configs is expected to show (`expected_max_sharpe`).

Guards: the term under the square root is the variance of the SR̂ estimate (× T − 1). With
moments estimated from the same returns it cannot be negative (γ4 − 1 ≥ γ3²), but it can
reach 0, and caller-given moments can make it negative; it is floored at
`MIN_SR_VARIANCE` (1e-6), so the DSR then saturates near 0 or 1 by the sign of SR̂ − SR0.
Returns with sd 0 (e.g. a config that never traded) have SR̂ = 0, and are taken as normal
(γ3 = 0, γ4 = 3).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import io
import itertools
import json
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from engine.jsonl import SessionFileError, write_text_atomic
from engine.methods import METHODS
from engine.metrics import Metrics
from engine.params import Params

EULER_GAMMA = 0.5772156649
# Floor for the variance term of the DSR denominator (see the module docstring, "Guards").
MIN_SR_VARIANCE = 1e-6

ROLES = ("chosen", "baseline", "ensemble")
# Phase name -> column prefix; validation first because it is the one that ranks.
PHASE_PREFIXES = {"validation": "val", "holdout": "hold", "train": "train"}
# Row metric name -> Metrics field it comes from.
METRIC_SOURCES = {
    "trades": "n_trades",
    "hit": "hit",
    "payoff": "payoff",
    "pnl": "total_pnl",
    "maxdd": "maxdd",
    "sharpe": "sharpe",
    "score": "score",
    "blunders": "blunders",
    "high_vol_share": "high_vol_share",
}
_COUNT_METRICS = ("trades", "blunders")
_PHASE_COLUMNS = tuple(f"{prefix}_{m}" for prefix in PHASE_PREFIXES.values() for m in METRIC_SOURCES)
CSV_COLUMNS: tuple[str, ...] = ("test_id", "rank", "config_id", "role", "method", *_PHASE_COLUMNS, "params_json")
_INT_COLUMNS = frozenset({"rank", *(f"{p}_{m}" for p in PHASE_PREFIXES.values() for m in _COUNT_METRICS)})
_FLOAT_COLUMNS = frozenset(c for c in _PHASE_COLUMNS if c not in _INT_COLUMNS)


# ---------------------------------------------------------------------------- config identity


def params_json(params: Params) -> str:
    """Canonical JSON of every parameter: sorted keys, compact separators (the hashed form)."""
    return json.dumps(params.model_dump(), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _id_of_json(canonical: str) -> str:
    return "c-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def config_id(params: Params) -> str:
    """Short stable id of a config: "c-" + 8 hex digits of SHA-256 of its canonical JSON."""
    return _id_of_json(params_json(params))


def _number(x: Any) -> str:
    # 400.0 reads better as "400"; other floats keep enough digits to tell configs apart.
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return format(x, ".10g") if isinstance(x, float) else str(x)


def _label_of(values: Mapping[str, Any]) -> str:
    method = str(values.get("method", "?"))
    known = METHODS.get(method)
    parts = [method]
    if known is not None:
        parts.append("/".join(_number(values[n]) for n in known.param_names if n in values))
    if "atr_stop_mult" in values:
        parts.append(f"stop{_number(values['atr_stop_mult'])}")
    if "hard_tp_usd" in values:
        parts.append(f"tp{_number(values['hard_tp_usd'])}")
    return " ".join(p for p in parts if p)


def config_label(params: Params) -> str:
    """Human label: method, its periods (bars), stop (ATRs), take-profit (USD): "ema_crossover 12/48 stop1.5 tp400"."""
    return _label_of(params.model_dump())


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class LeaderboardRow:
    """One config's results in one test: identity, then nine metrics for each phase.

    Units: pnl and maxdd in USD (maxdd ≤ 0); hit and high_vol_share fractions in [0, 1];
    payoff a ratio; sharpe annualised per-bar (engine.metrics); score 0–100; trades and
    blunders counts. rank is 1-based within the test, 0 until `rank_test_rows` sets it.
    """

    test_id: str
    config_id: str
    role: str
    method: str
    params_json: str
    val_trades: int
    val_hit: float
    val_payoff: float
    val_pnl: float
    val_maxdd: float
    val_sharpe: float
    val_score: float
    val_blunders: int
    val_high_vol_share: float
    hold_trades: int
    hold_hit: float
    hold_payoff: float
    hold_pnl: float
    hold_maxdd: float
    hold_sharpe: float
    hold_score: float
    hold_blunders: int
    hold_high_vol_share: float
    train_trades: int
    train_hit: float
    train_payoff: float
    train_pnl: float
    train_maxdd: float
    train_sharpe: float
    train_score: float
    train_blunders: int
    train_high_vol_share: float
    rank: int = 0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} is not one of {', '.join(ROLES)}")


# CSV position of each LeaderboardRow field, in field order: rows read fast are built positionally
_FIELD_AT = tuple(CSV_COLUMNS.index(f.name) for f in fields(LeaderboardRow))


def row_from_metrics(
    test_id: str,
    params: Params,
    role: str,
    by_phase: Mapping[str, Metrics],
    rank: int = 0,
) -> LeaderboardRow:
    """A row from a backtest's per-phase Metrics (keys validation, holdout, train; others ignored)."""
    missing = [p for p in PHASE_PREFIXES if p not in by_phase]
    if missing:
        raise ValueError(f"{test_id}: metrics missing for phase {', '.join(missing)}")
    values: dict[str, Any] = {}
    for phase, prefix in PHASE_PREFIXES.items():
        m = by_phase[phase]
        for name, source in METRIC_SOURCES.items():
            raw = getattr(m, source)
            values[f"{prefix}_{name}"] = int(raw) if name in _COUNT_METRICS else float(raw)
    return LeaderboardRow(
        test_id=test_id,
        config_id=config_id(params),
        role=role,
        method=params.method,
        params_json=params_json(params),
        rank=rank,
        **values,
    )


def _validation_key(score: float, pnl: float, cid: str) -> tuple[float, float, str]:
    # Best first: higher out-of-sample score, then higher out-of-sample PnL, then id for a fixed order.
    return (-score, -pnl, cid)


def rank_test_rows(rows: Iterable[LeaderboardRow]) -> list[LeaderboardRow]:
    """The rows of ONE test, best first, with rank 1..n by validation score, then validation PnL, then config_id."""
    rows = list(rows)
    tests = {r.test_id for r in rows}
    if len(tests) > 1:
        raise ValueError(f"rank_test_rows ranks one test; got {len(tests)}: {', '.join(sorted(tests))}")
    ordered = sorted(
        rows, key=lambda r: (*_validation_key(r.val_score, r.val_pnl, r.config_id), ROLES.index(r.role))
    )
    return [replace(r, rank=i) for i, r in enumerate(ordered, start=1)]


# ---------------------------------------------------------------------------- CSV


def _cell(row_no: int, column: str, value: Any) -> str:
    if column in _INT_COLUMNS:
        return str(int(value))
    if column in _FLOAT_COLUMNS:
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"row {row_no}, column {column}: {x!r} is not a finite number")
        return repr(x)  # repr is the shortest text that reads back to the same float
    return str(value)


def leaderboard_csv_text(rows: Iterable[LeaderboardRow]) -> str:
    """The CSV text of rows (in the order given) with a header.

    Raises ValueError naming the row and column of a NaN or infinite value.
    """
    # Row numbers as a spreadsheet shows them: the header is row 1.
    lines = [
        [_cell(i, c, getattr(r, c)) for c in CSV_COLUMNS] for i, r in enumerate(rows, start=2)
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(lines)
    return out.getvalue()


def write_leaderboard_csv(path: str | os.PathLike[str], rows: Iterable[LeaderboardRow]) -> None:
    """Write rows (in the order given) with a header, replacing the file whole.

    Raises ValueError naming the row and column of a NaN or infinite value; the file is
    then left untouched.
    """
    # renamed into place whole, so the console never reads half a leaderboard
    write_text_atomic(path, leaderboard_csv_text(rows))


def _parse_cell(column: str, text: str) -> Any:
    """A cell's value, or ValueError with a one-line reason."""
    if column in _INT_COLUMNS:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if column in _FLOAT_COLUMNS:
        try:
            x = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not math.isfinite(x):
            raise ValueError(f"{text!r} is not a finite number")
        return x
    if column == "role" and text not in ROLES:
        raise ValueError(f"{text!r} is not one of {', '.join(ROLES)}")
    if column == "params_json":
        try:
            obj = json.loads(text)
        except ValueError:
            raise ValueError("not valid JSON") from None
        if not isinstance(obj, dict):
            raise ValueError("not a JSON object")
        # standings need the size to turn USD into returns
        notional = obj.get("notional_usd")
        if isinstance(notional, bool) or not isinstance(notional, (int, float)) or not 0 < notional < math.inf:
            raise ValueError(f"notional_usd {notional!r} is not a positive number")
    elif column in ("test_id", "config_id", "method") and not text:
        raise ValueError("empty")
    return text


_CONVERTERS = tuple(int if c in _INT_COLUMNS else float if c in _FLOAT_COLUMNS else str for c in CSV_COLUMNS)
_INT_AT = tuple(i for i, c in enumerate(CSV_COLUMNS) if c in _INT_COLUMNS)
_FLOAT_AT = tuple(i for i, c in enumerate(CSV_COLUMNS) if c in _FLOAT_COLUMNS)
_TEXT_AT = tuple(CSV_COLUMNS.index(c) for c in ("test_id", "config_id", "method"))
_ROLE_AT = CSV_COLUMNS.index("role")
_PARAMS_AT = CSV_COLUMNS.index("params_json")
_GOOD_PARAMS: dict[str, None] = {}  # params_json texts already checked (a session has few configs)


def _fast_row(cells: list[str]) -> LeaderboardRow | None:
    """The row when every cell is right, else None (then `_parse_cell` says what is wrong, cell by cell).

    A 5,000-test session has 22,000 rows: checking each cell through `_parse_cell` took a
    replay 1.5 s to open. Same checks, whole row at once.
    """
    if len(cells) != len(CSV_COLUMNS):
        return None
    try:
        values = [conv(text) for conv, text in zip(_CONVERTERS, cells)]
    except ValueError:
        return None
    if min(values[i] for i in _INT_AT) < 0 or not math.isfinite(sum([values[i] for i in _FLOAT_AT])):
        return None  # a sum of finite floats overflows only past 1e308: the slow path then agrees
    if cells[_ROLE_AT] not in ROLES or not all(cells[i] for i in _TEXT_AT):
        return None
    text = cells[_PARAMS_AT]
    if text not in _GOOD_PARAMS:
        try:
            _parse_cell("params_json", text)
        except ValueError:
            return None
        if len(_GOOD_PARAMS) < 10_000:
            _GOOD_PARAMS[text] = None
    return LeaderboardRow(*[values[i] for i in _FIELD_AT])


def read_leaderboard_csv(path: str | os.PathLike[str]) -> list[LeaderboardRow]:
    """Read a leaderboard CSV written by `write_leaderboard_csv`.

    Raises SessionFileError naming the row (header = row 1) and column of the first problem.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            return _read_rows(path, csv.reader(f, strict=True))
    except FileNotFoundError:
        raise SessionFileError(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise SessionFileError(path, f"not UTF-8 (byte {exc.start} of a chunk)") from None
    except OSError as exc:
        raise SessionFileError(path, f"cannot read: {exc.strerror or exc}") from None


def _read_rows(path: Path, reader: Any) -> list[LeaderboardRow]:
    try:
        header = next(reader, None)
        if header is None:
            raise SessionFileError(path, "empty file: expected a header row")
        if tuple(header) != CSV_COLUMNS:
            missing = [c for c in CSV_COLUMNS if c not in header]
            extra = [c for c in header if c not in CSV_COLUMNS]
            detail = "; ".join(
                part
                for part in (
                    f"missing column {', '.join(missing)}" if missing else "",
                    f"unexpected column {', '.join(repr(c) for c in extra)}" if extra else "",
                )
                if part
            ) or "columns out of order"
            raise SessionFileError(path, f"row 1 (header): {detail}; rewrite it with write_leaderboard_csv")
        rows: list[LeaderboardRow] = []
        for cells in reader:
            row_no = reader.line_num
            if not cells:
                continue  # a blank line carries nothing
            fast = _fast_row(cells)
            if fast is not None:
                rows.append(fast)
                continue
            # something is off: the cell-by-cell path below names the row and the column
            if len(cells) != len(CSV_COLUMNS):
                raise SessionFileError(
                    path, f"row {row_no}: {len(cells)} columns, expected {len(CSV_COLUMNS)}"
                )
            values: dict[str, Any] = {}
            for column, text in zip(CSV_COLUMNS, cells):
                try:
                    values[column] = _parse_cell(column, text)
                except ValueError as exc:
                    raise SessionFileError(path, f"row {row_no}, column {column}: {exc}") from None
            rows.append(LeaderboardRow(**values))
        return rows
    except csv.Error as exc:
        raise SessionFileError(path, f"row {reader.line_num}: not valid CSV ({exc})") from None


# ---------------------------------------------------------------------------- deflated Sharpe


_NORMAL = NormalDist()


def expected_max_sharpe(n_trials: int, var_trials: float) -> float:
    """SR0: the Sharpe the best of `n_trials` luck-only configs is expected to show (0 for 1 trial).

    `var_trials` is the variance across configs of their Sharpe estimates (same units as
    the Sharpe squared: here per test, not annualised).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if not (var_trials >= 0.0 and math.isfinite(var_trials)):
        raise ValueError(f"var_trials must be a finite number ≥ 0, got {var_trials}")
    if n_trials == 1:
        return 0.0  # one config is not a selection: nothing to deflate (and Φ⁻¹(0) is −∞)
    z_n = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z_ne = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(var_trials) * ((1.0 - EULER_GAMMA) * z_n + EULER_GAMMA * z_ne)


def deflated_sharpe(sr: float, t: int, skew: float, kurt: float, n_trials: int, var_trials: float) -> float:
    """Probability in [0, 1] that the true Sharpe beats the best of `n_trials` by luck (module docstring).

    `sr` is the non-annualised Sharpe of `t` returns, `skew` their skewness, `kurt` their
    non-excess kurtosis (3 for normal returns).
    """
    if t < 2:
        raise ValueError(f"t must be at least 2 returns, got {t}")
    for name, value in (("sr", sr), ("skew", skew), ("kurt", kurt)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    sr0 = expected_max_sharpe(n_trials, var_trials)
    sr_variance = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, MIN_SR_VARIANCE)
    return _NORMAL.cdf((sr - sr0) * math.sqrt(t - 1) / math.sqrt(sr_variance))


def _return_stats(returns: Sequence[float]) -> tuple[float, float, float]:
    """(Sharpe = mean / sample sd, skewness, kurtosis) of returns; (0, 0, 3) when the sd is 0.

    Two passes: the mean first, then exact sums (fsum) of the deviations' powers; the
    element-wise products run in numpy, bit for bit what Python's floats give.
    """
    n = len(returns)
    if n < 2:
        return 0.0, 0.0, 3.0
    mean = math.fsum(returns) / n
    dev = np.asarray(returns, dtype=np.float64) - mean
    d2 = dev * dev
    m2 = math.fsum(d2.tolist()) / n
    # relative threshold: returns equal up to rounding have no spread worth a ratio
    if m2 <= (1e-12 * max(map(abs, returns))) ** 2:
        return 0.0, 0.0, 3.0
    m3 = math.fsum((d2 * dev).tolist()) / n
    m4 = math.fsum((d2 * d2).tolist()) / n
    sd_sample = math.sqrt(m2 * n / (n - 1))
    return mean / sd_sample, m3 / m2**1.5, m4 / (m2 * m2)


# ---------------------------------------------------------------------------- standings


@dataclass(frozen=True)
class Standing:
    """One config across the session's tests, on validation results (holdout_pnl for reference).

    Units and aggregation rules: module docstring, "Session standings". rank is 1-based.
    """

    rank: int
    config_id: str
    method: str
    params_json: str
    label: str
    roles: tuple[str, ...]
    tests: int
    val_trades: int
    val_hit: float
    val_payoff: float
    val_pnl: float
    val_maxdd: float
    val_score: float
    sharpe_per_test: float
    holdout_pnl: float
    deflated_sharpe: float | None


class _Tally:
    """One config's validation results, one entry per test, in the order the tests came.

    Entries are never dropped: `summary(n)` sums the first n, so a book shown as of an
    earlier test (a replay seeking back) and then as of a later one recomputes nothing.
    """

    __slots__ = ("config_id", "method", "params_json", "label", "notional", "where", "test_ids", "ordinals",
                 "role_of", "role_since", "trades", "wins", "payoffs", "pnl", "maxdd", "score", "hold_pnl",
                 "returns", "cached")

    def __init__(self, row: LeaderboardRow) -> None:
        params = json.loads(row.params_json)
        self.config_id, self.method, self.params_json = row.config_id, row.method, row.params_json
        self.label = _label_of(params)
        self.notional = float(params["notional_usd"])
        self.where: dict[str, int] = {}  # test_id -> entry
        self.test_ids: list[str] = []
        self.ordinals: list[int] = []  # the book's test count when the entry came
        self.role_of: list[int] = []  # ROLES index of the row kept for the test
        self.role_since: list[int | None] = [None] * len(ROLES)  # ordinal of the first row in each role
        self.trades: list[int] = []
        self.wins: list[float] = []  # hit × trades
        self.payoffs: list[float] = []  # 0 for a test without trades (then not averaged)
        self.pnl: list[float] = []
        self.maxdd: list[float] = []
        self.score: list[float] = []
        self.hold_pnl: list[float] = []
        self.returns: list[float] = []
        self.cached: dict[int, tuple] = {}  # entries summed -> summary

    def add(self, r: LeaderboardRow, ordinal: int) -> bool:
        """Take a row; True when it changed an entry of an earlier test (a test id seen before)."""
        role = ROLES.index(r.role)
        if self.role_since[role] is None:
            self.role_since[role] = ordinal
        at = self.where.get(r.test_id)
        if at is None:
            self.where[r.test_id] = len(self.test_ids)
            self.test_ids.append(r.test_id)
            self.ordinals.append(ordinal)
            self.role_of.append(role)
            for column, value in zip(self._columns(), self._values(r)):
                column.append(value)
        elif role < self.role_of[at]:  # the same config twice in one test: the first role of ROLES counts
            self.role_of[at] = role
            for column, value in zip(self._columns(), self._values(r)):
                column[at] = value
            self.cached = {n: c for n, c in self.cached.items() if n <= at}
            return self.ordinals[at] < ordinal
        return False

    def _columns(self) -> tuple[list, ...]:
        return (self.trades, self.wins, self.payoffs, self.pnl, self.maxdd, self.score, self.hold_pnl, self.returns)

    def _values(self, r: LeaderboardRow) -> tuple:
        return (r.val_trades, r.val_hit * r.val_trades, r.val_payoff if r.val_trades > 0 else 0.0, r.val_pnl,
                r.val_maxdd, r.val_score, r.hold_pnl, r.val_pnl / self.notional)

    def entries_before(self, ordinal: int) -> int:
        """How many entries came from the first `ordinal` tests."""
        return bisect.bisect_left(self.ordinals, ordinal)

    def summary(self, n: int, ordinal: int) -> tuple:
        """(Standing fields but rank and DSR, (sr, skew, kurt)) of the first n entries (those before `ordinal`)."""
        got = self.cached.get(n)
        if got is None:
            trades_n = self.trades[:n]
            trades = sum(trades_n)
            traded = sum(1 for k in trades_n if k > 0)
            sr, skew, kurt = _return_stats(self.returns[:n])
            got = (
                dict(config_id=self.config_id, method=self.method, params_json=self.params_json, label=self.label,
                     roles=tuple(role for role, since in zip(ROLES, self.role_since) if since is not None and since < ordinal),
                     tests=n, val_trades=trades,
                     val_hit=math.fsum(self.wins[:n]) / trades if trades else 0.0,
                     val_payoff=math.fsum(self.payoffs[:n]) / traded if traded else 0.0,
                     val_pnl=math.fsum(self.pnl[:n]), val_maxdd=min(self.maxdd[:n]),
                     val_score=math.fsum(self.score[:n]) / n, sharpe_per_test=sr,
                     holdout_pnl=math.fsum(self.hold_pnl[:n])),
                (sr, skew, kurt),
            )
            if len(self.cached) >= 8:  # a replay goes back and forth between a few moments
                del self.cached[next(iter(self.cached))]
            self.cached[n] = got
        return got


class StandingsBook:
    """Session standings kept as the tests come: `add` a test's rows, `table()` ranks.

    The same figures as ranking all rows at once (sums are exact, so order does not change
    them), without going over every row again: the console and the conductor add one test
    at a time. A replay `show`s the book as of an earlier test and later as of a later one
    again; what was added stays, so going back and forth costs nothing but the ranking.
    """

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}
        self._stored = 0  # tests added
        self._shown = 0  # tests the table is of (≤ stored)
        self._tables: dict[int, list[Standing]] = {}

    @property
    def tests(self) -> int:
        """How many tests the table is of."""
        return self._shown

    @property
    def stored(self) -> int:
        """How many tests were added."""
        return self._stored

    def add(self, rows: Iterable[LeaderboardRow]) -> None:
        """The rows of the next test (rows of many tests at once are fine: they then count as one)."""
        if self._shown != self._stored:
            raise ValueError(f"the book shows {self._shown} of {self._stored} tests: show them all before adding")
        for r in rows:
            tally = self._tallies.get(r.config_id)
            if tally is None:
                tally = self._tallies[r.config_id] = _Tally(r)
            if tally.add(r, self._stored):
                self._tables.clear()  # an earlier test changed: its tables with it
        self._stored += 1
        self._shown = self._stored

    def show(self, tests: int) -> None:
        """Rank as of the first `tests` tests added (0 ≤ tests ≤ stored)."""
        if not 0 <= tests <= self._stored:
            raise ValueError(f"tests must be between 0 and {self._stored}, got {tests}")
        self._shown = tests

    def table(self) -> list[Standing]:
        """Standings, best first by mean validation score, then validation PnL, then config_id (rank 1..n)."""
        shown = self._shown
        table = self._tables.get(shown)
        if table is None:
            summaries = []
            for tally in self._tallies.values():
                n = tally.entries_before(shown)
                if n:
                    summaries.append(tally.summary(n, shown))
            n_trials = len(summaries)
            srs = [stats[0] for fields_, stats in summaries if fields_["tests"] >= 2]
            var_trials = statistics.variance(srs) if len(srs) >= 2 else 0.0
            ranked = [
                Standing(rank=0, **fields_, deflated_sharpe=(
                    deflated_sharpe(sr, fields_["tests"], skew, kurt, n_trials, var_trials) if fields_["tests"] >= 3 else None))
                for fields_, (sr, skew, kurt) in summaries
            ]
            ranked.sort(key=lambda s: _validation_key(s.val_score, s.val_pnl, s.config_id))
            table = [replace(s, rank=i) for i, s in enumerate(ranked, start=1)]
            if len(self._tables) >= 8:
                del self._tables[next(iter(self._tables))]
            self._tables[shown] = table
        return table

    def equity(self, config_id: str) -> list[tuple[str, float]]:
        """(test_id, cumulative validation PnL in USD) of a config over the tests it ran in, in the order they came."""
        tally = self._tallies.get(config_id)
        if tally is None:
            return []
        n = tally.entries_before(self._shown)
        return list(zip(tally.test_ids[:n], itertools.accumulate(tally.pnl[:n])))


def standings(rows: Iterable[LeaderboardRow]) -> list[Standing]:
    """Per-config standings across tests, best first by mean validation score, then validation PnL, then config_id.

    A config listed twice in one test (e.g. as chosen and as baseline) counts once there;
    its roles are all kept.
    """
    book = StandingsBook()
    book.add(rows)
    return book.table()

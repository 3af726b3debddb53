"""Leaderboard of one walk-forward test: its configs ranked, and the CSV file they are kept in.

Each test (one window) backtests several configs; each gives one `LeaderboardRow` with its
metrics per phase. Ranking — within a test and across the session (`engine.standings`) — uses
the validation (out-of-sample) phase only, never train and never holdout (DESIGN.md §9): by
validation score, then validation PnL, then config id so ties always fall the same way.

CSV file (`leaderboard_base.csv` in each test folder, DESIGN.md §4): a header row, then one
row per config, in the column order of `CSV_COLUMNS`:

    test_id, rank, config_id, role, method,
    val_{trades,hit,payoff,pnl,maxdd,sharpe,score,blunders,high_vol_share},
    hold_{...same nine...}, train_{...same nine...}, params_json

Counts are integers; every other number is written with repr() so it reads back bit for
bit; params_json is last because it is long, and quoted by the csv module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from engine.configs import config_id, params_json
from engine.jsonl import SessionFileError, write_text_atomic
from engine.metrics import Metrics
from engine.params import Params

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
    *,
    identity: tuple[str, str] | None = None,
) -> LeaderboardRow:
    """A row from a backtest's per-phase Metrics (keys validation, holdout, train; others ignored).

    `identity`: `params`' (config_id, params_json) when the caller has them already; else worked out here.
    """
    missing = [p for p in PHASE_PREFIXES if p not in by_phase]
    if missing:
        raise ValueError(f"{test_id}: metrics missing for phase {', '.join(missing)}")
    values: dict[str, Any] = {}
    for phase, prefix in PHASE_PREFIXES.items():
        m = by_phase[phase]
        for name, source in METRIC_SOURCES.items():
            raw = getattr(m, source)
            values[f"{prefix}_{name}"] = int(raw) if name in _COUNT_METRICS else float(raw)
    cid, canonical = identity if identity is not None else (config_id(params), params_json(params))
    return LeaderboardRow(
        test_id=test_id,
        config_id=cid,
        role=role,
        method=params.method,
        params_json=canonical,
        rank=rank,
        **values,
    )


def validation_key(score: float, pnl: float, cid: str) -> tuple[float, float, str]:
    """Sort key, best first: validation score, then validation PnL (USD), then config id."""
    # Best first: higher out-of-sample score, then higher out-of-sample PnL, then id for a fixed order.
    return (-score, -pnl, cid)


def rank_test_rows(rows: Iterable[LeaderboardRow]) -> list[LeaderboardRow]:
    """The rows of ONE test, best first, with rank 1..n by validation score, then validation PnL, then config_id."""
    rows = list(rows)
    tests = {r.test_id for r in rows}
    if len(tests) > 1:
        raise ValueError(f"rank_test_rows ranks one test; got {len(tests)}: {', '.join(sorted(tests))}")
    ordered = sorted(
        rows, key=lambda r: (*validation_key(r.val_score, r.val_pnl, r.config_id), ROLES.index(r.role))
    )
    return [_ranked(r, i) for i, r in enumerate(ordered, start=1)]


def _ranked(row: LeaderboardRow, rank: int) -> LeaderboardRow:
    """`replace(row, rank=rank)` without checking again a row checked when made (every test ranks its rows)."""
    new = object.__new__(LeaderboardRow)
    new.__dict__.update(row.__dict__, rank=rank)
    return new


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
        values: list[Any] = [conv(text) for conv, text in zip(_CONVERTERS, cells)]  # int, float or str by column
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


# Files read before, by path: (inode, size, mtime in ns) and their rows. The conductor's reports
# read every test's leaderboard again after segments 2 and 4 and at the end: each is parsed once.
# (A file rewritten in place at the same size within one tick of the file system's clock would
# pass for unchanged; the session's never are: a test folder is renamed into place whole.)
_READ: dict[str, tuple[tuple[int, int, int], list[LeaderboardRow]]] = {}
_READ_MAX = 20_000  # files (~5 rows each)


def remember_leaderboard(path: str | os.PathLike[str], rows: list[LeaderboardRow]) -> None:
    """`rows` are what the CSV just written at `path` holds (`leaderboard_csv_text`): read back, it need not be parsed."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if len(_READ) >= _READ_MAX:
        del _READ[next(iter(_READ))]
    _READ[str(path)] = ((st.st_ino, st.st_size, st.st_mtime_ns), list(rows))


def read_leaderboard_csv(path: str | os.PathLike[str]) -> list[LeaderboardRow]:
    """Read a leaderboard CSV written by `write_leaderboard_csv`.

    Raises SessionFileError naming the row (header = row 1) and column of the first problem.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            st = os.fstat(f.fileno())
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = _READ.get(str(path))
            if known is not None and known[0] == stamp:
                return list(known[1])
            rows = _read_rows(path, csv.reader(f, strict=True))
        if len(_READ) >= _READ_MAX:
            del _READ[next(iter(_READ))]  # the oldest
        _READ[str(path)] = (stamp, rows)
        return list(rows)
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

"""Market data: OHLCV bars loaded from Binance kline CSV, CSV with a header or Parquet.

Everything downstream (indicators, simulator, walk-forward windows) trusts a `Bars`: times
strictly increasing on a regular grid, prices positive, high and low bracketing open and
close, volumes non-negative. The checks live here, at the edge, and every failure is a
`DataError` that tells a trader which file, row and field to fix. Gaps in the grid are
listed in `Bars.gaps`, never filled: a bridged gap would invent prices.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import gzip
import io
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np


class _LazyModule:
    """A module imported on first use. pandas and pyarrow cost ~65 MB in every process that
    imports them; backtests and workers never read files, so only file loading pays."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            import importlib

            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


if TYPE_CHECKING:  # the checker reads the modules the lazy ones stand for
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
else:
    pd = _LazyModule("pandas")
    pa = _LazyModule("pyarrow")
    pc = _LazyModule("pyarrow.compute")
    pa_csv = _LazyModule("pyarrow.csv")
    pq = _LazyModule("pyarrow.parquet")

__all__ = ["Bars", "DataError", "Gap", "bars_from_arrays", "load_bars", "validate_bars"]

# Binance kline files as downloaded from data.binance.vision: no header, these 12 columns.
BINANCE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time",
    "quote_volume", "count", "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
)
# Names accepted for the time column of a CSV with a header or a Parquet file, by preference.
TIME_COLUMNS = ("timestamp", "open_time", "time", "date", "datetime")
TAKER_BUY_COLUMNS = ("taker_buy_volume", "taker_buy_base_volume")
PARQUET_SUFFIXES = (".parquet", ".pq")

# Binance spot files switched open times from milliseconds to microseconds in 2025; an
# open time this large cannot be milliseconds (that would be the year 5138).
_BINANCE_MICROSECONDS_FROM = 10**14
# Beyond year 9999 no time is real, and Python's datetime can no longer name it.
_MAX_ABS_MS = 253_402_300_799_999
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DataError(ValueError):
    """Bad market data. str(err) is one line: `file: row N: field: problem`.

    `row` is 1-based as a spreadsheet shows it (a CSV header is row 1, so the first bar of
    a headed CSV is row 2; the first bar of a headerless Binance file is row 1; Parquet and
    in-memory arrays count records from 1). `row` and `field` are None when the problem
    belongs to the whole file. `field` is the column name as the source spells it.
    """

    path: str
    row: int | None
    field: str | None
    problem: str

    def __init__(self, path: str, row: int | None, field: str | None, problem: str) -> None:
        # All four go to args so the error survives pickling back from a worker process.
        super().__init__(path, row, field, problem)
        self.path = path
        self.row = row
        self.field = field
        self.problem = problem.replace("\r", " ").replace("\n", " ")

    def __str__(self) -> str:
        parts = [self.path]
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.field is not None:
            parts.append(self.field)
        parts.append(self.problem)
        return ": ".join(parts)


@dataclass(frozen=True)
class Gap:
    """Bars missing from the grid: `missing_bars` whole intervals between two bars."""

    row: int | np.integer  # 1-based row (as in DataError) of the first bar AFTER the gap; np.int64 from the checks
    after_ts: int  # ms, open time of the bar before the gap
    before_ts: int  # ms, open time of the bar after the gap
    missing_bars: int


@dataclass(frozen=True, eq=False)
class Bars:
    """OHLCV bars on a regular grid. Times are bar OPEN times in ms since epoch UTC."""

    ts: np.ndarray  # int64, bar open time, ms since epoch UTC
    open: np.ndarray  # float64, C-contiguous
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base asset units
    taker_buy_volume: np.ndarray | None  # float64 base units, or None when the source has none
    interval_ms: int
    source: str  # the file path, or e.g. "synthetic(seed=7, n_bars=1000)"
    gaps: tuple[Gap, ...] = ()

    def __len__(self) -> int:
        """Number of bars."""
        return len(self.ts)

    def slice(self, start: int, stop: int) -> Bars:
        """Bars[start:stop] as views of these arrays; keeps the gaps that lie inside."""
        ts = self.ts[start:stop]
        gaps: tuple[Gap, ...] = ()
        if len(ts):
            first, last = int(ts[0]), int(ts[-1])
            gaps = tuple(g for g in self.gaps if g.after_ts >= first and g.before_ts <= last)
        taker = self.taker_buy_volume
        return dataclasses.replace(
            self,
            ts=ts,
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
            taker_buy_volume=None if taker is None else taker[start:stop],
            gaps=gaps,
        )

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame: ts as datetime64[ms, UTC], then open, high, low, close, volume[, taker_buy_volume]."""
        columns: dict[str, object] = {
            "ts": pd.Series(self.ts.astype("datetime64[ms]")).dt.tz_localize("UTC"),
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }
        if self.taker_buy_volume is not None:
            columns["taker_buy_volume"] = self.taker_buy_volume
        return pd.DataFrame(columns)

    def __repr__(self) -> str:
        span = f"{_iso(int(self.ts[0]))}..{_iso(int(self.ts[-1]))}, " if len(self) else ""
        return (
            f"Bars({len(self)} bars, {span}interval {_duration(self.interval_ms)}, "
            f"{len(self.gaps)} gaps, source={self.source!r})"
        )


# ---------------------------------------------------------------------------- public API


def load_bars(path: str | os.PathLike[str], *, interval_ms: int | None = None) -> Bars:
    """Read bars from a Binance kline CSV (ms or µs open times), a headed CSV or Parquet.

    The format is told from the content (zip and gzip wrappers included). `interval_ms` is
    inferred as the most common spacing unless given. Raises DataError for any bad content.
    """
    _check_interval_argument(interval_ms)
    name = os.fspath(path)
    raw = _read_bytes(name)
    if raw[:4] == b"PAR1":
        table = _parquet_table(name, raw)
    elif name.lower().endswith(PARQUET_SUFFIXES):
        raise DataError(name, None, None, "not a Parquet file (it lacks the PAR1 signature)")
    else:
        table = _csv_table(name, raw)
    return _bars_from_table(name, table, interval_ms)


def validate_bars(bars: Bars) -> None:
    """Raise DataError (rows counted from 1, fields named as attributes) unless `bars` are sound."""
    source = bars.source
    interval = bars.interval_ms
    if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval <= 0:
        raise DataError(
            source, None, "interval_ms", f"must be a positive number of milliseconds, got {interval!r}"
        )
    n = _check_array(source, "ts", bars.ts, np.int64, None)

    def checked(name: str) -> _Field:
        values = getattr(bars, name)
        _check_array(source, name, values, np.float64, n)
        return _float_field(name, values)

    o, h, lo, c, v = (checked(name) for name in ("open", "high", "low", "close", "volume"))
    taker = None if bars.taker_buy_volume is None else checked("taker_buy_volume")
    ts_field = _Field("ts", bars.ts, np.zeros(n, dtype=bool), lambda i: "missing time")
    _check_rows(source, 1, ts_field, o, h, lo, c, v, taker, interval_ms=int(interval), strict_interval=False)


def bars_from_arrays(
    ts: np.ndarray,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    taker_buy_volume: np.ndarray | None = None,
    *,
    source: str = "arrays",
    interval_ms: int | None = None,
) -> Bars:
    """Checked Bars from array-likes; ts in ms since epoch UTC (ints or datetime64).

    Arrays already float64/int64 and contiguous are used without a copy. Gaps are listed,
    the interval inferred unless given. Raises DataError naming the record (from 1).
    """
    _check_interval_argument(interval_ms)
    ts_field = _ms_array_field(source, ts)
    n = len(ts_field.values)

    def checked(name: str, values: np.ndarray) -> _Field:
        try:
            array = np.ascontiguousarray(values, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(source, None, name, f"cannot read as numbers ({err})") from err
        _check_array(source, name, array, np.float64, n)
        return _float_field(name, array)

    named = {"open": open, "high": high, "low": low, "close": close, "volume": volume}
    o, h, lo, c, v = (checked(name, values) for name, values in named.items())
    taker = None if taker_buy_volume is None else checked("taker_buy_volume", taker_buy_volume)
    interval, gaps = _check_rows(
        source, 1, ts_field, o, h, lo, c, v, taker, interval_ms=interval_ms, strict_interval=interval_ms is not None
    )
    t = None if taker is None else taker.values
    return Bars(ts_field.values, o.values, h.values, lo.values, c.values, v.values, t, interval, source, gaps)


# ---------------------------------------------------------------------- reading the file


@dataclass
class _Table:
    """Columns as read, before any check."""

    table: pa.Table
    first_row: int  # spreadsheet row of the table's first record
    names: dict[str, str]  # our name (ts, open, ..., taker_buy_volume) -> the source's name
    time_units: str  # "binance": ms or µs; "epoch": s, ms, µs or ns, told by magnitude
    bad_line: tuple[int, str] | None = None  # first line with a wrong column count, and why


def _read_bytes(name: str) -> bytes:
    try:
        with open(name, "rb") as file:
            raw = file.read()
    except FileNotFoundError as err:
        raise DataError(name, None, None, "file not found") from err
    except IsADirectoryError as err:
        raise DataError(name, None, None, "is a folder, not a data file") from err
    except PermissionError as err:
        raise DataError(name, None, None, "permission denied; check the file's access rights") from err
    except OSError as err:
        raise DataError(name, None, None, f"cannot read the file: {err.strerror or err}") from err
    if raw[:4] == b"PK\x03\x04":
        return _unzip(name, raw)
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(name, None, None, f"damaged gzip file ({err})") from err
    return raw


def _unzip(name: str, raw: bytes) -> bytes:
    # Binance ships every kline file as a zip holding one CSV; read it as downloaded.
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if len(members) != 1:
                raise DataError(
                    name, None, None,
                    f"zip archive holds {len(members)} files; expected exactly one CSV or Parquet file",
                )
            return archive.read(members[0])
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, zlib.error) as err:
        raise DataError(name, None, None, f"cannot open the zip archive ({err})") from err


def _csv_table(name: str, raw: bytes) -> _Table:
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    # Trailing blank lines are an editor's habit, not missing bars.
    raw = raw.rstrip(b" \t\r\n")
    if not raw:
        raise DataError(name, None, None, "file is empty")
    end = raw.find(b"\n")
    try:
        first_line = (raw if end < 0 else raw[:end]).rstrip(b"\r").decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(name, 1, None, "not a UTF-8 text file; export the data as CSV") from err
    first = next(csv.reader([first_line]), [])
    if not first or not "".join(first).strip():
        raise DataError(name, 1, None, "first line is blank; start with a header row or the first bar")

    if _float_or_none(first[0]) is not None:
        if len(first) != len(BINANCE_COLUMNS):
            raise DataError(
                name, 1, None,
                f"found {len(first)} columns and no header; a Binance kline file has "
                f"{len(BINANCE_COLUMNS)}. For other layouts add a header row: "
                "timestamp,open,high,low,close,volume",
            )
        names = {
            "ts": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
            "volume": "volume", "taker_buy_volume": "taker_buy_base_volume",
        }
        read_options = pa_csv.ReadOptions(use_threads=False, column_names=list(BINANCE_COLUMNS))
        first_row, time_units = 1, "binance"
    else:
        names = _pick_columns(name, first, header_row=1)
        if end < 0:
            raise DataError(name, None, None, "no bars: the file has a header but no data rows")
        # Row numbers of invalid lines are only known when reading on one thread; the
        # parse is no faster on several threads anyway (measured).
        read_options = pa_csv.ReadOptions(use_threads=False)
        first_row, time_units = 2, "epoch"

    bad_lines: list[tuple[int | None, int, int]] = []

    def on_invalid_row(row: pa_csv.InvalidRow) -> str:
        bad_lines.append((row.number, row.actual_columns, row.expected_columns))
        return "skip"

    parse_options = pa_csv.ParseOptions(invalid_row_handler=on_invalid_row, ignore_empty_lines=False)
    wanted = list(dict.fromkeys(names.values()))
    try:
        table = _read_csv(raw, read_options, parse_options, wanted)
    except pa.ArrowInvalid:
        # pyarrow failed to convert a column it typed itself: read every column as text
        # so the checks can still point at the row instead of failing on the whole file.
        bad_lines.clear()
        try:
            table = _read_csv(raw, read_options, parse_options, wanted, as_text=True)
        except (pa.ArrowException, ValueError) as err:
            raise DataError(name, None, None, f"cannot parse as CSV: {_first_line(err)}") from err
    except (pa.ArrowException, ValueError) as err:
        raise DataError(name, None, None, f"cannot parse as CSV: {_first_line(err)}") from err

    bad_line = None
    if bad_lines:
        number, actual, expected = min(bad_lines, key=lambda b: (b[0] is None, b[0] or 0))
        layout = "a Binance kline file" if time_units == "binance" else "the header"
        why = f"found {actual} columns, expected {expected} as in {layout}"
        if number is None:
            raise DataError(name, None, None, f"a line has the wrong number of columns: {why}")
        bad_line = (number, why)
    return _Table(table, first_row, names, time_units, bad_line)


def _read_csv(
    raw: bytes,
    read_options: pa_csv.ReadOptions,
    parse_options: pa_csv.ParseOptions,
    columns: list[str],
    *,
    as_text: bool = False,
) -> pa.Table:
    convert_options = pa_csv.ConvertOptions(
        include_columns=columns,
        # So an empty cell in a column that holds text is "missing", not the text "".
        strings_can_be_null=True,
        column_types={c: pa.string() for c in columns} if as_text else None,
    )
    return pa_csv.read_csv(
        io.BytesIO(raw),
        read_options=read_options,
        parse_options=parse_options,
        convert_options=convert_options,
    )


def _parquet_table(name: str, raw: bytes) -> _Table:
    try:
        parquet = pq.ParquetFile(io.BytesIO(raw))
        columns = list(parquet.schema_arrow.names)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(name, None, None, f"cannot read as Parquet: {_first_line(err)}") from err
    names = _pick_columns(name, columns, header_row=None)
    try:
        table = parquet.read(columns=list(dict.fromkeys(names.values())), use_threads=True)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise DataError(name, None, None, f"cannot read as Parquet: {_first_line(err)}") from err
    return _Table(table, 1, names, "epoch")


def _pick_columns(name: str, columns: list[str], *, header_row: int | None) -> dict[str, str]:
    """Map our column names to the source's, matching case-insensitively."""
    by_lower: dict[str, str] = {}
    for column in columns:
        by_lower.setdefault(column.strip().lower(), column)
    shown = [c if c.isprintable() else repr(c) for c in columns[:20]]
    found = ", ".join(shown) + (", ..." if len(columns) > 20 else "")
    hint = ""
    if len(columns) == 1 and ";" in columns[0]:
        hint = "; the file seems to use ';' between values, save it with commas"
    names: dict[str, str] = {}
    time = next((by_lower[c] for c in TIME_COLUMNS if c in by_lower), None)
    if time is None:
        raise DataError(
            name, header_row, "timestamp",
            f"missing time column: name it {', '.join(TIME_COLUMNS[:-1])} or {TIME_COLUMNS[-1]} "
            f"(columns found: {found}){hint}",
        )
    names["ts"] = time
    for column in ("open", "high", "low", "close", "volume"):
        if column not in by_lower:
            raise DataError(
                name, header_row, column, f"missing required column '{column}' (columns found: {found}){hint}"
            )
        names[column] = by_lower[column]
    taker = next((by_lower[c] for c in TAKER_BUY_COLUMNS if c in by_lower), None)
    if taker is not None:
        names["taker_buy_volume"] = taker
    return names


def _bars_from_table(name: str, source: _Table, interval_ms: int | None) -> Bars:
    table = source.table
    if source.bad_line is not None:
        # Rows after a skipped line no longer match line numbers: check only those before
        # it, so an earlier problem is still the one reported.
        table = table.slice(0, max(0, source.bad_line[0] - source.first_row))
    names = source.names
    time = _time_field(names["ts"], table.column(names["ts"]), source.time_units)
    explain_time = time.explain

    def explain_blank_line(i: int) -> str:
        # A blank line has no time either, so the time check is where it surfaces.
        if all(table.column(c)[i].as_py() is None for c in table.column_names):
            return "blank line; delete it"
        return explain_time(i)

    time.explain = explain_blank_line
    o, h, lo, c, v = (
        _number_field(names[k], table.column(names[k])) for k in ("open", "high", "low", "close", "volume")
    )
    taker_name = names.get("taker_buy_volume")
    taker = None if taker_name is None else _number_field(taker_name, table.column(taker_name))
    interval, gaps = _check_rows(
        name, source.first_row, time, o, h, lo, c, v, taker,
        interval_ms=interval_ms, strict_interval=interval_ms is not None,
        complete=source.bad_line is None,
    )
    if source.bad_line is not None:
        raise DataError(name, source.bad_line[0], None, source.bad_line[1])
    t = None if taker is None else taker.values
    return Bars(time.values, o.values, h.values, lo.values, c.values, v.values, t, interval, name, gaps)


# --------------------------------------------------------------------- columns to arrays


@dataclass
class _Field:
    """One column as numbers, which rows are unusable, and why (asked only for the first)."""

    name: str  # as the source spells it
    values: np.ndarray  # float64, or int64 ms for the time column; unusable rows hold NaN / 0
    bad: np.ndarray  # bool: missing, unreadable, not finite or out of range
    explain: Callable[[int], str]


def _number_field(name: str, column: pa.ChunkedArray) -> _Field:
    kind = column.type
    if _is_number_type(kind):
        floats = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        values = np.array(floats, dtype=np.float64)  # a copy, as pyarrow's own view is read-only
    else:
        # Text in a number column: pandas marks every unreadable cell at once, where
        # pyarrow would stop at the first without saying which row it was.
        numbers = pd.to_numeric(column.to_pandas(), errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)

    def explain(i: int) -> str:
        raw = column[i].as_py()
        if raw is None:
            return "missing value (empty or NaN)"
        number = _float_or_none(raw) if isinstance(raw, str) else _float_or_none(str(raw))
        if number is None or (isinstance(raw, str) and math.isfinite(number)):
            return f"cannot read {_quote(str(raw))} as a number"
        if math.isnan(number):
            return "value is NaN"
        return "value is infinite"

    return _Field(name, values, ~np.isfinite(values), explain)


def _float_field(name: str, values: np.ndarray) -> _Field:
    def explain(i: int) -> str:
        return "value is NaN" if math.isnan(values[i]) else "value is infinite"

    return _Field(name, values, ~np.isfinite(values), explain)


def _time_field(name: str, column: pa.ChunkedArray, units: str) -> _Field:
    kind = column.type
    missing = column.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        target = pa.timestamp("ms", tz=kind.tz) if pa.types.is_timestamp(kind) else pa.timestamp("ms")
        ms = pc.cast(pc.cast(column, target, safe=False), pa.int64())
        # A copy: pyarrow's zero-copy view is read-only, and Bars arrays should all behave alike.
        values, bad = np.array(pc.fill_null(ms, 0).to_numpy(), dtype=np.int64), missing.copy()
    elif pa.types.is_integer(kind):
        ints = pc.fill_null(pc.cast(column, pa.int64(), safe=False), 0).to_numpy()
        values, bad = _epoch_ints(ints, units)
        bad |= missing
    elif _is_number_type(kind):
        floats = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        values, bad = _epoch_floats(floats, units)
    else:
        text = column.to_pandas()
        present = text.dropna()
        if len(present) and _float_or_none(str(present.iloc[0])) is None:
            # ISO 8601 text; a naive time is UTC, an offset is converted to UTC.
            stamps = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
            bad = stamps.isna().to_numpy()
            values = stamps.dt.tz_localize(None).to_numpy().astype("datetime64[ms]").view(np.int64).copy()
            values[bad] = 0
        else:
            floats = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            values, bad = _epoch_floats(floats, units)

    def explain(i: int) -> str:
        raw = column[i].as_py()
        if raw is None:
            return "missing time (empty)"
        if isinstance(raw, float) and not math.isfinite(raw):
            return f"time is {raw}"
        if isinstance(raw, str) and _float_or_none(raw) is None:
            return (
                f"cannot read {_quote(raw)} as a time; use epoch milliseconds or "
                "ISO 8601 such as 2024-01-01T00:05:00Z"
            )
        return f"time {_quote(str(raw))} is out of range"

    return _Field(name, values.astype(np.int64, copy=False), bad, explain)


def _epoch_ints(values: np.ndarray, units: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch integers in any unit (told by magnitude) -> ms, and which are out of range."""
    if units == "binance":
        ms = np.where(values >= _BINANCE_MICROSECONDS_FROM, values // 1000, values)
    else:
        size = np.abs(values)
        ms = np.select(
            [size < 10**11, size < 10**14, size < 10**17],
            [values * 1000, values, values // 1000],
            values // 1_000_000,
        )
    bad = np.abs(ms) > _MAX_ABS_MS
    ms[bad] = 0
    return ms, bad


def _epoch_floats(values: np.ndarray, units: str) -> tuple[np.ndarray, np.ndarray]:
    """Epoch numbers in any unit (told by magnitude) -> ms, and which are unusable."""
    size = np.abs(values)
    # Divide rather than multiply by 1e-3, which is inexact: µs 1704067200000000 must
    # become exactly 1704067200000 ms. Rounding keeps "1704067200.123" s at .123 s.
    if units == "binance":
        ms = np.where(size >= _BINANCE_MICROSECONDS_FROM, values / 1000, values)
    else:
        ms = np.select(
            [size < 1e11, size < 1e14, size < 1e17],
            [values * 1000, values, values / 1000],
            values / 1_000_000,
        )
    ms = np.rint(ms)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(ms) <= _MAX_ABS_MS)  # NaN compares False, so it is bad too
    return np.where(bad, 0.0, ms).astype(np.int64), bad


def _ms_array_field(source: str, ts: object) -> _Field:
    """In-memory times (ints in ms, whole floats, datetime64, tz-aware pandas) -> ms field."""
    if isinstance(ts, (pd.Series, pd.Index)) and isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = pd.DatetimeIndex(ts).tz_convert("UTC").tz_localize(None)
    try:
        array = np.asarray(ts)
    except (TypeError, ValueError) as err:
        raise DataError(source, None, "ts", f"cannot read as times ({err})") from err
    if array.ndim != 1:
        raise DataError(source, None, "ts", f"must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind == "M":
        bad = np.isnat(array)
        values = array.astype("datetime64[ms]").view(np.int64).copy()
        values[bad] = 0
        return _Field("ts", values, bad, lambda i: "missing time (NaT)")
    if array.dtype.kind in "iu":
        ints = np.ascontiguousarray(array, dtype=np.int64)
        return _Field("ts", ints, np.zeros(len(ints), dtype=bool), lambda i: "missing time")
    try:
        floats = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(source, None, "ts", f"cannot read as times in milliseconds ({err})") from err
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(floats) <= _MAX_ABS_MS) | (floats != np.floor(floats))
    values = np.where(bad, 0.0, floats).astype(np.int64)

    def explain(i: int) -> str:
        return f"time {_num(floats[i])} is not a whole number of milliseconds since 1970"

    return _Field("ts", values, bad, explain)


def _check_array(source: str, name: str, values: object, dtype: type, n: int | None) -> int:
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        raise DataError(source, None, name, "must be a one-dimensional numpy array")
    if values.dtype != dtype:
        raise DataError(source, None, name, f"must be {np.dtype(dtype).name}, got {values.dtype}")
    if not values.flags.c_contiguous:
        raise DataError(source, None, name, "must be C-contiguous (use np.ascontiguousarray)")
    if n is not None and len(values) != n:
        raise DataError(source, None, name, f"has {len(values)} values but ts has {n}")
    return len(values)


# ------------------------------------------------------------------------------- checks


def _check_rows(
    source: str,
    first_row: int,
    time: _Field,
    open_: _Field,
    high: _Field,
    low: _Field,
    close: _Field,
    volume: _Field,
    taker: _Field | None,
    *,
    interval_ms: int | None,
    strict_interval: bool,
    complete: bool = True,
) -> tuple[int, tuple[Gap, ...]]:
    """Raise the first problem in row order; return the bar interval (ms) and the gaps.

    Every check is one vectorized mask; only a failing mask is searched for its first row,
    and on a tie the check listed first (the more basic problem) wins.
    """
    ts = time.values
    n = len(ts)
    Check = tuple[np.ndarray, str, Callable[[int], str]]
    checks: list[Check] = [(time.bad, time.name, time.explain)]
    for field in (open_, high, low, close, volume, taker):
        if field is not None:
            checks.append((field.bad, field.name, field.explain))

    pair = ~time.bad[1:] & ~time.bad[:-1]
    step = np.diff(ts)
    ahead = pair & (step > 0)
    checks.append((
        np.r_[False, pair & (step == 0)], time.name,
        lambda i: f"duplicate timestamp {_iso(ts[i])}: row {first_row + i - 1} has the same time",
    ))
    checks.append((
        np.r_[False, pair & (step < 0)], time.name,
        lambda i: f"unsorted: {_iso(ts[i])} comes after {_iso(ts[i - 1])} on row {first_row + i - 1}; "
        "sort the file by time",
    ))

    interval = interval_ms
    if interval is None and ahead.any():
        if (pair & (step <= 0)).any():
            # Out-of-order rows make row-to-row steps meaningless; the grid is still
            # visible in the sorted times, so a misplaced row is called unsorted, not irregular.
            interval = _most_common(np.diff(np.unique(ts[~time.bad])))
        else:
            interval = _most_common(step[ahead])
    if interval is not None:
        checks.append((
            np.r_[False, ahead & (step % interval != 0)], time.name,
            lambda i: f"irregular bar spacing: {_iso(ts[i])} is {_duration(ts[i] - ts[i - 1])} after the "
            f"previous bar, not a whole number of {_duration(interval)} bars",
        ))

    o, h, lo, c, v = open_.values, high.values, low.values, close.values, volume.values
    for field in (open_, high, low, close):

        def not_positive(i: int, x: np.ndarray = field.values) -> str:
            return f"price must be positive, got {_num(x[i])}"

        checks.append((field.values <= 0, field.name, not_positive))
    checks.append((h < lo, high.name, lambda i: f"high {_num(h[i])} is below low {_num(lo[i])}"))
    checks.append((
        (h < o) | (h < c), high.name,
        lambda i: f"high {_num(h[i])} is below {'close' if c[i] >= o[i] else 'open'} {_num(max(o[i], c[i]))}",
    ))
    checks.append((
        (lo > o) | (lo > c), low.name,
        lambda i: f"low {_num(lo[i])} is above {'close' if c[i] <= o[i] else 'open'} {_num(min(o[i], c[i]))}",
    ))
    checks.append((v < 0, volume.name, lambda i: f"negative volume {_num(v[i])}"))
    if taker is not None:
        t = taker.values
        checks.append((t < 0, taker.name, lambda i: f"negative taker-buy volume {_num(t[i])}"))
        checks.append((
            t > v, taker.name,
            lambda i: f"taker-buy volume {_num(t[i])} is more than the bar's volume {_num(v[i])}",
        ))

    first: tuple[int, str, Callable[[int], str]] | None = None
    for mask, field_name, explain in checks:
        if mask.any():
            i = int(mask.argmax())
            if first is None or i < first[0]:
                first = (i, field_name, explain)
    if first is not None:
        i, field_name, explain = first
        raise DataError(source, first_row + i, field_name, explain(i))
    if not complete:
        return interval or 0, ()

    if n < 2:
        problem = (
            "no bars (no data rows)" if n == 0
            else "only 1 bar; at least 2 are needed to tell the bar interval"
        )
        raise DataError(source, None, None, problem)
    assert interval is not None  # n >= 2 and no problems: the times step forward
    if strict_interval:
        usual = _most_common(step)
        if usual != interval:
            i = int(np.argmax(step != interval))
            raise DataError(
                source, first_row + i + 1, time.name,
                f"bars are {_duration(usual)} apart (the most common spacing), "
                f"but {_duration(interval)} bars were asked for",
            )
    after = np.flatnonzero(step > interval)
    gaps = tuple(
        Gap(first_row + i + 1, int(ts[i]), int(ts[i + 1]), int(step[i] // interval - 1)) for i in after
    )
    return int(interval), gaps


def _most_common(steps: np.ndarray) -> int:
    """Mode of positive time steps; on a tie the shortest, which is the likelier bar size."""
    if (steps == steps[0]).all():
        return int(steps[0])
    values, counts = np.unique(steps, return_counts=True)
    return int(values[counts.argmax()])


def _check_interval_argument(interval_ms: int | None) -> None:
    if interval_ms is None:
        return
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, (int, np.integer)) or interval_ms <= 0:
        raise ValueError(f"interval_ms must be a positive whole number of milliseconds, got {interval_ms!r}")


# ----------------------------------------------------------------------------- wording


def _is_number_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind) or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind) or pa.types.is_null(kind)
    )


def _float_or_none(text: str) -> float | None:
    try:
        return float(text.strip().strip('"'))
    except ValueError:
        return None


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _num(x: float) -> str:
    return repr(float(x))


def _iso(ms: int) -> str:
    """2024-01-01T00:05:00Z (with .123 when the time is not a whole second)."""
    ms = int(ms)
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return f"{ms} ms"
    fraction = f".{ms % 1000:03d}" if ms % 1000 else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _duration(ms: int) -> str:
    """300000 -> '5 min': the largest unit that divides the duration exactly."""
    ms = int(ms)
    for size, unit in ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s")):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

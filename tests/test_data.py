"""Market data: the formats load_bars reads, the problems it names, and the synthetic default."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import (
    BINANCE_COLUMNS,
    Bars,
    DataError,
    Gap,
    bars_from_arrays,
    load_bars,
    validate_bars,
)
from engine.synthetic import synthetic_bars

START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
FIVE_MIN = 300_000


# ------------------------------------------------------------------ files made in tests


def bar(i: int, **changes: object) -> dict[str, object]:
    """Bar i of a sound 5-minute series in Binance's column names; `changes` override fields."""
    t = START_MS + i * FIVE_MIN
    o = 65_000.0 + i
    fields: dict[str, object] = {
        "open_time": t, "open": o, "high": o + 15.0, "low": o - 10.0, "close": o + 5.0,
        "volume": 12.5, "close_time": t + FIVE_MIN - 1, "quote_volume": 812_500.0, "count": 100,
        "taker_buy_base_volume": 6.25, "taker_buy_quote_volume": 406_250.0, "ignore": 0,
    }
    fields.update(changes)
    return fields


def write_binance(path: Path, rows: list[dict[str, object]]) -> Path:
    """A headerless 12-column kline CSV, as data.binance.vision ships it."""
    path.write_text("".join(",".join(str(r[c]) for c in BINANCE_COLUMNS) + "\n" for r in rows))
    return path


def write_csv(path: Path, rows: list[dict[str, object]], columns: dict[str, str]) -> Path:
    """A CSV with a header; `columns` maps header names to the bar() field each holds."""
    lines = [",".join(columns)]
    lines += [",".join(str(r[field]) for field in columns.values()) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


HEADED = {
    "timestamp": "open_time", "open": "open", "high": "high", "low": "low", "close": "close",
    "volume": "volume", "taker_buy_volume": "taker_buy_base_volume",
}


def load_error(path: Path, **kwargs: object) -> DataError:
    with pytest.raises(DataError) as caught:
        load_bars(path, **kwargs)
    return caught.value


def assert_names(err: DataError, path: Path, row: int | None, field: str | None) -> None:
    """The message a trader sees names the file, the row and the field, on one line."""
    text = str(err)
    assert "\n" not in text
    assert text.startswith(f"{path}: ")
    assert err.path == str(path)
    assert err.row == row
    assert err.field == field
    if row is not None:
        assert f": row {row}: " in text
    if field is not None:
        assert f": {field}: " in text


# ----------------------------------------------------------------------------- formats


def test_binance_csv_with_millisecond_open_times_loads(tmp_path: Path) -> None:
    bars = load_bars(write_binance(tmp_path / "BTCUSDT-5m-2024-01.csv", [bar(i) for i in range(5)]))
    assert len(bars) == 5
    assert bars.ts.dtype == np.int64
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(5)]
    assert bars.open.tolist() == [65_000.0 + i for i in range(5)]
    assert bars.high[0] == 65_015.0 and bars.low[0] == 64_990.0 and bars.close[0] == 65_005.0
    assert bars.volume.tolist() == [12.5] * 5
    assert bars.taker_buy_volume is not None and bars.taker_buy_volume.tolist() == [6.25] * 5
    assert bars.interval_ms == FIVE_MIN
    assert bars.gaps == ()
    assert bars.source == str(tmp_path / "BTCUSDT-5m-2024-01.csv")
    for column in (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.taker_buy_volume):
        assert column.dtype == np.float64 and column.flags.c_contiguous


def test_binance_csv_with_microsecond_open_times_loads_as_milliseconds(tmp_path: Path) -> None:
    rows = [bar(i, open_time=(START_MS + i * FIVE_MIN) * 1000) for i in range(4)]
    bars = load_bars(write_binance(tmp_path / "BTCUSDT-5m-2025-02.csv", rows))
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(4)]
    assert bars.interval_ms == FIVE_MIN


def test_binance_files_joined_across_the_switch_to_microseconds_load(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(3)] + [bar(i, open_time=(START_MS + i * FIVE_MIN) * 1000) for i in range(3, 6)]
    bars = load_bars(write_binance(tmp_path / "joined.csv", rows))
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(6)]


def test_binance_zip_as_downloaded_loads(tmp_path: Path) -> None:
    csv = write_binance(tmp_path / "BTCUSDT-5m-2024-01.csv", [bar(i) for i in range(3)])
    archive = tmp_path / "BTCUSDT-5m-2024-01.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(csv, csv.name)
    assert load_bars(archive).ts.tolist() == load_bars(csv).ts.tolist()


def test_header_csv_with_epoch_milliseconds_loads(tmp_path: Path) -> None:
    bars = load_bars(write_csv(tmp_path / "btc.csv", [bar(i) for i in range(4)], HEADED))
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(4)]
    assert bars.close.tolist() == [65_005.0 + i for i in range(4)]
    assert bars.taker_buy_volume is not None and bars.taker_buy_volume.tolist() == [6.25] * 4


@pytest.mark.parametrize("per_ms", [0.001, 1000, 1_000_000], ids=["seconds", "microseconds", "nanoseconds"])
def test_header_csv_epoch_unit_is_told_by_magnitude(tmp_path: Path, per_ms: float) -> None:
    rows = [bar(i, open_time=int((START_MS + i * FIVE_MIN) * per_ms)) for i in range(3)]
    bars = load_bars(write_csv(tmp_path / "btc.csv", rows, HEADED))
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(3)]


def test_header_csv_with_iso_times_reads_naive_times_as_utc(tmp_path: Path) -> None:
    times = ["2024-01-01 00:00:00", "2024-01-01T00:05:00", "2024-01-01T00:10:00Z"]
    rows = [bar(i, open_time=t) for i, t in enumerate(times)]
    bars = load_bars(write_csv(tmp_path / "btc.csv", rows, HEADED))
    assert bars.ts.tolist() == [START_MS, START_MS + FIVE_MIN, START_MS + 2 * FIVE_MIN]


def test_header_csv_iso_times_with_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    times = ["2024-01-01T02:00:00+02:00", "2024-01-01T02:05:00+02:00", "2023-12-31T19:10:00-05:00"]
    rows = [bar(i, open_time=t) for i, t in enumerate(times)]
    bars = load_bars(write_csv(tmp_path / "btc.csv", rows, HEADED))
    assert bars.ts.tolist() == [START_MS, START_MS + FIVE_MIN, START_MS + 2 * FIVE_MIN]


def test_header_csv_names_are_case_insensitive_and_taker_buy_base_volume_is_accepted(tmp_path: Path) -> None:
    columns = {
        "Open_Time": "open_time", "OPEN": "open", "High": "high", "Low": "low", "Close": "close",
        "Volume": "volume", "Taker_Buy_Base_Volume": "taker_buy_base_volume", "count": "count",
    }
    bars = load_bars(write_csv(tmp_path / "btc.csv", [bar(i) for i in range(3)], columns))
    assert bars.taker_buy_volume is not None and bars.taker_buy_volume.tolist() == [6.25] * 3
    assert bars.open.tolist() == [65_000.0, 65_001.0, 65_002.0]


@pytest.mark.parametrize("time_column", ["time", "date"])
def test_header_csv_time_column_may_be_called_time_or_date(tmp_path: Path, time_column: str) -> None:
    columns = {time_column: "open_time", **{c: c for c in ("open", "high", "low", "close", "volume")}}
    bars = load_bars(write_csv(tmp_path / "btc.csv", [bar(i) for i in range(3)], columns))
    assert bars.ts[0] == START_MS


def test_header_csv_without_taker_buy_column_has_no_taker_buy_volume(tmp_path: Path) -> None:
    columns = {c: c for c in ("open_time", "open", "high", "low", "close", "volume")}
    bars = load_bars(write_csv(tmp_path / "btc.csv", [bar(i) for i in range(3)], columns))
    assert bars.taker_buy_volume is None
    assert "taker_buy_volume" not in bars.to_frame().columns


def frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "timestamp": pd.to_datetime([START_MS + i * FIVE_MIN for i in range(n)], unit="ms", utc=True),
        "open": [65_000.0 + i for i in range(n)],
        "high": [65_015.0 + i for i in range(n)],
        "low": [64_990.0 + i for i in range(n)],
        "close": [65_005.0 + i for i in range(n)],
        "volume": [12.5] * n,
        "taker_buy_volume": [6.25] * n,
    })


def test_parquet_with_a_datetime_column_loads(tmp_path: Path) -> None:
    path = tmp_path / "btc.parquet"
    frame(4).to_parquet(path)
    bars = load_bars(path)
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in range(4)]
    assert bars.close.tolist() == [65_005.0 + i for i in range(4)]
    assert bars.taker_buy_volume is not None
    for column in (bars.ts, bars.open, bars.close, bars.taker_buy_volume):
        assert column.flags.c_contiguous and column.flags.writeable


def test_parquet_with_epoch_milliseconds_and_pq_suffix_loads(tmp_path: Path) -> None:
    path = tmp_path / "btc.pq"
    data = frame(4)
    data["timestamp"] = [START_MS + i * FIVE_MIN for i in range(4)]
    data.rename(columns={"timestamp": "Open_Time"}).to_parquet(path)
    assert load_bars(path).ts.tolist() == [START_MS + i * FIVE_MIN for i in range(4)]


def test_parquet_is_recognised_by_content_whatever_the_file_is_called(tmp_path: Path) -> None:
    path = tmp_path / "btc.data"
    frame(3).to_parquet(path)
    assert len(load_bars(path)) == 3


def test_trailing_blank_lines_are_not_bars(tmp_path: Path) -> None:
    path = write_binance(tmp_path / "btc.csv", [bar(i) for i in range(3)])
    path.write_text(path.read_text() + "\n\n")
    assert len(load_bars(path)) == 3


# -------------------------------------------------------------------- interval and gaps


def test_interval_is_the_most_common_spacing(tmp_path: Path) -> None:
    hourly = [bar(0, open_time=START_MS + h * 3_600_000) for h in (0, 1, 2, 4, 5)]
    bars = load_bars(write_binance(tmp_path / "btc-1h.csv", hourly))
    assert bars.interval_ms == 3_600_000
    assert bars.gaps == (Gap(row=4, after_ts=START_MS + 2 * 3_600_000, before_ts=START_MS + 4 * 3_600_000, missing_bars=1),)


def test_given_interval_is_used_when_it_matches_the_data(tmp_path: Path) -> None:
    rows = [bar(i) for i in (0, 3, 4)]  # spacing 15 min once, 5 min once: no clear mode
    bars = load_bars(write_binance(tmp_path / "btc.csv", rows), interval_ms=FIVE_MIN)
    assert bars.interval_ms == FIVE_MIN
    assert bars.gaps == (Gap(row=2, after_ts=START_MS, before_ts=START_MS + 3 * FIVE_MIN, missing_bars=2),)


def test_given_interval_that_disagrees_with_the_data_is_an_error(tmp_path: Path) -> None:
    path = write_binance(tmp_path / "btc-1h.csv", [bar(0, open_time=START_MS + h * 3_600_000) for h in range(4)])
    err = load_error(path, interval_ms=FIVE_MIN)
    assert_names(err, path, 2, "open_time")
    assert "1 h apart" in str(err) and "5 min bars were asked for" in str(err)


def test_gaps_are_listed_not_filled(tmp_path: Path) -> None:
    kept = [0, 1, 2, 6, 7, 8, 9, 20]
    path = write_csv(tmp_path / "btc.csv", [bar(i) for i in kept], HEADED)
    bars = load_bars(path)
    assert len(bars) == len(kept)
    assert bars.ts.tolist() == [START_MS + i * FIVE_MIN for i in kept]
    assert bars.gaps == (
        Gap(row=5, after_ts=START_MS + 2 * FIVE_MIN, before_ts=START_MS + 6 * FIVE_MIN, missing_bars=3),
        Gap(row=9, after_ts=START_MS + 9 * FIVE_MIN, before_ts=START_MS + 20 * FIVE_MIN, missing_bars=10),
    )


def test_irregular_spacing_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(5)] + [bar(5, open_time=START_MS + 4 * FIVE_MIN + 120_000)]
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 6, "open_time")
    assert "irregular bar spacing" in str(err)
    assert "2024-01-01T00:22:00Z is 2 min after the previous bar" in str(err)


# -------------------------------------------------------------------------- bad data


def test_unreadable_number_names_the_raw_text(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(5)]
    rows[3]["close"] = "65O03.5"
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 4, "close")
    assert "cannot read '65O03.5' as a number" in str(err)


def test_empty_value_is_reported_as_missing(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(5)]
    rows[2]["volume"] = ""
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 4, "volume")
    assert "missing value" in str(err)


def test_nan_value_is_reported_as_missing(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(5)]
    rows[4]["open"] = "NaN"
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 6, "open")
    assert "NaN" in err.problem


def test_infinite_value_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[1]["high"] = "inf"
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 2, "high")
    assert "infinite" in str(err)


def test_missing_time_is_reported(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[2]["open_time"] = ""
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 4, "timestamp")
    assert "missing time" in str(err)


def test_unreadable_time_names_the_raw_text(tmp_path: Path) -> None:
    times = ["2024-01-01T00:00:00", "2024-01-01T00:05:00", "2024-13-01T00:10:00"]
    path = write_csv(tmp_path / "btc.csv", [bar(i, open_time=t) for i, t in enumerate(times)], HEADED)
    err = load_error(path)
    assert_names(err, path, 4, "timestamp")
    assert "cannot read '2024-13-01T00:10:00' as a time" in str(err)


def test_duplicate_timestamp_is_reported_as_duplicate(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(6)]
    rows[4]["open_time"] = rows[3]["open_time"]
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 5, "open_time")
    assert "duplicate timestamp 2024-01-01T00:15:00Z" in str(err)
    assert "unsorted" not in str(err)


def test_unsorted_timestamps_are_reported_as_unsorted(tmp_path: Path) -> None:
    rows = [bar(i) for i in (0, 1, 3, 2, 4)]
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 5, "timestamp")
    assert str(err).startswith(f"{path}: row 5: timestamp: unsorted: 2024-01-01T00:10:00Z comes after 2024-01-01T00:15:00Z")
    assert "duplicate" not in str(err)


def test_high_below_close_is_rejected_with_both_prices(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(60)]
    rows[55].update(open=64_000.0, high=64_010.5, low=63_990.0, close=64_020.0)
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert str(err) == f"{path}: row 57: high: high 64010.5 is below close 64020.0"
    assert (err.row, err.field) == (57, "high")


def test_high_below_open_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[0].update(open=65_020.0, high=65_010.0, low=64_990.0, close=65_000.0)
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 1, "high")
    assert "high 65010.0 is below open 65020.0" in str(err)


def test_low_above_open_or_close_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[2].update(open=65_000.0, high=65_050.0, low=65_010.0, close=65_040.0)
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 3, "low")
    assert "low 65010.0 is above open 65000.0" in str(err)


def test_high_below_low_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[1].update(open=65_000.0, high=64_000.0, low=66_000.0, close=65_000.0)
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 2, "high")
    assert "high 64000.0 is below low 66000.0" in str(err)


@pytest.mark.parametrize("field", ["open", "high", "low", "close"])
@pytest.mark.parametrize("price", [0.0, -1.5])
def test_non_positive_price_is_rejected(tmp_path: Path, field: str, price: float) -> None:
    rows = [bar(i) for i in range(4)]
    rows[2][field] = price
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    # Reported as a bad price, not as the high/low inconsistency it also causes.
    assert_names(err, path, 3, field)
    assert f"price must be positive, got {price}" in str(err)


def test_negative_volume_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[3]["volume"] = -0.5
    rows[3]["taker_buy_base_volume"] = 0.0
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 4, "volume")
    assert "negative volume -0.5" in str(err)


def test_negative_taker_buy_volume_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[1]["taker_buy_base_volume"] = -1.0
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 2, "taker_buy_base_volume")
    assert "negative taker-buy volume -1.0" in str(err)


def test_taker_buy_volume_above_volume_is_rejected(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(4)]
    rows[2]["taker_buy_base_volume"] = 13.0
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 4, "taker_buy_volume")
    assert "taker-buy volume 13.0 is more than the bar's volume 12.5" in str(err)


def test_a_single_bar_is_too_few(tmp_path: Path) -> None:
    path = write_binance(tmp_path / "btc.csv", [bar(0)])
    err = load_error(path)
    assert_names(err, path, None, None)
    assert "only 1 bar" in str(err)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    path.write_text("")
    err = load_error(path)
    assert str(err) == f"{path}: file is empty"


def test_header_without_bars_is_rejected(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "btc.csv", [], HEADED)
    err = load_error(path)
    assert_names(err, path, None, None)
    assert "no bars" in str(err)


def test_missing_file_is_a_data_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    err = load_error(path)
    assert str(err) == f"{path}: file not found"


def test_headerless_file_with_the_wrong_column_count_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    path.write_text(f"{START_MS},1,2,0.5,1.5,10\n{START_MS + FIVE_MIN},1,2,0.5,1.5,10\n")
    err = load_error(path)
    assert_names(err, path, 1, None)
    assert "found 6 columns and no header" in str(err)
    assert "timestamp,open,high,low,close,volume" in str(err)


def test_binance_row_with_the_wrong_column_count_is_named(tmp_path: Path) -> None:
    path = write_binance(tmp_path / "btc.csv", [bar(i) for i in range(6)])
    lines = path.read_text().splitlines()
    lines[3] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    err = load_error(path)
    assert_names(err, path, 4, None)
    assert "found 13 columns, expected 12" in str(err)


def test_headed_row_with_too_few_columns_is_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "btc.csv", [bar(i) for i in range(6)], HEADED)
    lines = path.read_text().splitlines()
    lines[5] = lines[5].rsplit(",", 2)[0]
    path.write_text("\n".join(lines) + "\n")
    err = load_error(path)
    assert_names(err, path, 6, None)
    assert "found 5 columns, expected 7" in str(err)


def test_a_bad_value_above_a_bad_line_is_reported_first(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(6)]
    rows[1]["open"] = "abc"
    path = write_binance(tmp_path / "btc.csv", rows)
    lines = path.read_text().splitlines()
    lines[4] = "1,2"
    path.write_text("\n".join(lines) + "\n")
    err = load_error(path)
    assert_names(err, path, 2, "open")


def test_the_first_problem_in_row_order_is_reported(tmp_path: Path) -> None:
    rows = [bar(i) for i in range(8)]
    rows[6]["open"] = "x"  # unreadable, but further down
    rows[3]["volume"] = -1.0  # the first problem a reader meets
    rows[3]["taker_buy_base_volume"] = 0.0
    path = write_csv(tmp_path / "btc.csv", rows, HEADED)
    err = load_error(path)
    assert_names(err, path, 5, "volume")


def test_missing_required_column_is_named(tmp_path: Path) -> None:
    columns = {c: c for c in ("timestamp", "open", "high", "low", "volume")}
    path = write_csv(tmp_path / "btc.csv", [bar(i, timestamp=START_MS + i * FIVE_MIN) for i in range(3)], columns)
    err = load_error(path)
    assert_names(err, path, 1, "close")
    assert "missing required column 'close'" in str(err)


def test_missing_time_column_is_named(tmp_path: Path) -> None:
    columns = {"when": "open_time", **{c: c for c in ("open", "high", "low", "close", "volume")}}
    path = write_csv(tmp_path / "btc.csv", [bar(i) for i in range(3)], columns)
    err = load_error(path)
    assert_names(err, path, 1, "timestamp")
    assert "missing time column" in str(err) and "when" in str(err)


def test_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    path.write_text(f"timestamp;open;high;low;close;volume\n{START_MS};1;2;0.5;1.5;10\n")
    assert "';'" in str(load_error(path))


def test_parquet_bad_record_is_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "btc.parquet"
    data = frame(5)
    data.loc[2, "low"] = data.loc[2, "close"] + 1.0
    data.to_parquet(path)
    err = load_error(path)
    assert_names(err, path, 3, "low")
    assert "is above" in str(err)


def test_parquet_suffix_on_a_text_file_is_a_data_error(tmp_path: Path) -> None:
    path = write_binance(tmp_path / "btc.parquet", [bar(i) for i in range(3)])
    assert "not a Parquet file" in str(load_error(path))


def test_bad_text_deep_in_a_large_file_is_found(tmp_path: Path) -> None:
    # Far past the first block that pyarrow infers column types from.
    rows = [bar(i) for i in range(20_000)]
    rows[19_000]["high"] = "n/a?"
    path = write_binance(tmp_path / "btc.csv", rows)
    err = load_error(path)
    assert_names(err, path, 19_001, "high")
    assert "'n/a?'" in str(err)


def test_data_error_survives_pickling_from_a_worker(tmp_path: Path) -> None:
    err = DataError("data/btc.csv", 57, "high", "high 64010.5 is below close 64020.0")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err) == "data/btc.csv: row 57: high: high 64010.5 is below close 64020.0"
    assert (copy.path, copy.row, copy.field, copy.problem) == (err.path, err.row, err.field, err.problem)
    assert isinstance(copy, ValueError)


# -------------------------------------------------------------------------- in memory


def arrays(n: int) -> dict[str, np.ndarray]:
    close = 65_000.0 + np.arange(n, dtype=np.float64)
    return {
        "ts": START_MS + np.arange(n, dtype=np.int64) * FIVE_MIN,
        "open": close - 5.0, "high": close + 10.0, "low": close - 15.0, "close": close,
        "volume": np.full(n, 10.0), "taker_buy_volume": np.full(n, 4.0),
    }


def test_bars_from_arrays_infers_the_interval_and_lists_gaps() -> None:
    a = arrays(6)
    a["ts"] = START_MS + np.array([0, 1, 2, 5, 6, 7], dtype=np.int64) * FIVE_MIN
    bars = bars_from_arrays(**a, source="test")
    assert bars.interval_ms == FIVE_MIN
    assert bars.gaps == (Gap(row=4, after_ts=START_MS + 2 * FIVE_MIN, before_ts=START_MS + 5 * FIVE_MIN, missing_bars=2),)
    assert bars.source == "test"


def test_bars_from_arrays_accepts_datetime64_and_lists() -> None:
    a = arrays(3)
    bars = bars_from_arrays(
        a["ts"].astype("datetime64[ms]").astype("datetime64[ns]"),
        a["open"].tolist(), a["high"].tolist(), a["low"].tolist(), a["close"].tolist(), a["volume"].tolist(),
    )
    assert bars.ts.tolist() == a["ts"].tolist()
    assert bars.close.dtype == np.float64 and bars.taker_buy_volume is None


def test_bars_from_arrays_names_the_record_and_attribute() -> None:
    a = arrays(5)
    a["low"][3] = np.nan
    with pytest.raises(DataError) as caught:
        bars_from_arrays(**a, source="arrays")
    assert str(caught.value) == "arrays: row 4: low: value is NaN"


def test_bars_from_arrays_rejects_arrays_of_different_lengths() -> None:
    a = arrays(5)
    a["volume"] = a["volume"][:4]
    with pytest.raises(DataError, match="volume: has 4 values but ts has 5"):
        bars_from_arrays(**a)


def test_validate_bars_checks_in_memory_bars() -> None:
    a = arrays(5)
    a["high"][1] = a["close"][1] - 1.0
    bars = Bars(**a, interval_ms=FIVE_MIN, source="hand-made")
    with pytest.raises(DataError) as caught:
        validate_bars(bars)
    assert (caught.value.row, caught.value.field) == (2, "high")
    assert str(caught.value).startswith("hand-made: row 2: high: high ")


def test_validate_bars_rejects_off_grid_times_and_wrong_dtypes() -> None:
    a = arrays(4)
    a["ts"][3] += 1000
    with pytest.raises(DataError, match="irregular bar spacing"):
        validate_bars(Bars(**a, interval_ms=FIVE_MIN, source="x"))
    b = arrays(4)
    b["close"] = b["close"].astype(np.float32)
    with pytest.raises(DataError, match="close: must be float64"):
        validate_bars(Bars(**b, interval_ms=FIVE_MIN, source="x"))


def test_slice_gives_views_and_keeps_only_the_gaps_inside() -> None:
    a = arrays(10)
    a["ts"] = START_MS + np.array([0, 1, 2, 4, 5, 6, 9, 10, 11, 12], dtype=np.int64) * FIVE_MIN
    bars = bars_from_arrays(**a)
    assert len(bars.gaps) == 2
    part = bars.slice(4, 9)
    assert len(part) == 5
    assert np.shares_memory(part.close, bars.close)
    assert part.close.tolist() == bars.close[4:9].tolist()
    assert part.interval_ms == bars.interval_ms and part.source == bars.source
    assert part.gaps == (bars.gaps[1],)
    assert bars.slice(0, 3).gaps == ()
    assert bars.slice(2, 4).gaps == (bars.gaps[0],)
    validate_bars(part)


def test_to_frame_has_utc_millisecond_times_and_the_bar_columns() -> None:
    bars = bars_from_arrays(**arrays(3))
    df = bars.to_frame()
    assert list(df.columns) == ["ts", "open", "high", "low", "close", "volume", "taker_buy_volume"]
    assert str(df["ts"].dtype) == "datetime64[ms, UTC]"
    assert df["ts"].iloc[1] == pd.Timestamp("2024-01-01T00:05:00Z")
    assert df["close"].tolist() == bars.close.tolist()


# -------------------------------------------------------------------------- synthetic


@pytest.fixture(scope="module")
def year() -> Bars:
    return synthetic_bars(seed=0)


def test_synthetic_same_seed_gives_bit_identical_bars(year: Bars) -> None:
    again = synthetic_bars(seed=0)
    for name in ("ts", "open", "high", "low", "close", "volume", "taker_buy_volume"):
        assert getattr(again, name).tobytes() == getattr(year, name).tobytes(), name


def test_synthetic_other_seed_gives_other_bars(year: Bars) -> None:
    other = synthetic_bars(seed=1)
    assert not np.array_equal(other.close, year.close)
    assert other.source == "synthetic(seed=1, n_bars=105120)"


def test_synthetic_year_passes_validation_on_a_gapless_five_minute_grid(year: Bars) -> None:
    validate_bars(year)
    assert len(year) == 105_120
    assert year.interval_ms == FIVE_MIN and year.gaps == ()
    assert year.ts[0] == START_MS
    assert np.all(np.diff(year.ts) == FIVE_MIN)
    assert year.open[0] == 65_000.0
    assert year.taker_buy_volume is not None
    assert np.all(year.volume > 0)


def test_synthetic_bars_at_another_interval_pass_validation() -> None:
    bars = synthetic_bars(5_000, seed=3, interval_ms=60_000, start_price=100.0)
    validate_bars(bars)
    assert bars.interval_ms == 60_000 and 50.0 < bars.close.min() and bars.close.max() < 200.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_prices_stay_btc_like_over_a_year(seed: int) -> None:
    close = synthetic_bars(seed=seed).close
    assert 45_000 < close.min() and close.max() < 90_000
    low, high = np.percentile(close, [5, 95])
    assert 58_000 < low and high < 72_000
    daily = close[::288]
    moves = np.abs(np.diff(daily) / daily[:-1])
    assert 0.01 < np.median(moves) < 0.05  # a few percent a day
    assert moves.max() < 0.25


def test_synthetic_taker_buy_share_rises_with_the_bar_return(year: Bars) -> None:
    assert year.taker_buy_volume is not None
    share = year.taker_buy_volume / year.volume
    assert share.min() >= 0.0 and share.max() <= 1.0
    bar_return = year.close / year.open - 1.0
    assert np.corrcoef(share, bar_return)[0, 1] > 0.3


def test_synthetic_volatility_regimes_differ_by_a_clear_factor(year: Bars) -> None:
    returns = pd.Series(np.diff(np.log(year.close)))
    daily_sd = returns.rolling(288).std().dropna().to_numpy()
    calm, stormy = np.percentile(daily_sd, [5, 95])
    assert stormy > 2.0 * calm


def test_synthetic_volume_is_larger_when_volatility_is_high(year: Bars) -> None:
    bar_range = (year.high - year.low) / year.close
    wide = bar_range > np.percentile(bar_range, 80)
    narrow = bar_range < np.percentile(bar_range, 20)
    assert year.volume[wide].mean() > 2.0 * year.volume[narrow].mean()


def test_synthetic_rejects_fewer_than_two_bars() -> None:
    with pytest.raises(ValueError, match="n_bars"):
        synthetic_bars(1)

"""Session-file primitives: JSON Lines appends and reads that survive crashes, atomic JSON."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.events import TradeEvent
from engine.jsonl import (
    BadLine,
    JsonlTail,
    JsonlWriter,
    SessionFileError,
    append_jsonl,
    read_json,
    read_jsonl,
    write_json_atomic,
)


def trade(i: int = 0, **changes: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "kind": "trade",
        "session_id": "s1",
        "emitted_at": "2026-11-21T14:05:00.123Z",
        "ts": "2026-01-03T10:35:00Z",
        "episode_id": i,
        "test_id": "seg1_test001",
        "tf": "5m",
        "side": "SHORT",
        "reason": "macd_trend",
        "entry_ts": "2026-01-03T10:05:00Z",
        "entry": 100.0 + i,
        "exit": 99.0 + i,
        "qty": 1.5,
        "fees": 0.3,
        "pnl": 1.2,
        "gates": {"cvd": True, "imb": True, "atrz": False, "vhf": True},
        "bars_held": 6,
        "exit_reason": "sl_hit",
        "vol_bin": "mid",
        "phase": "train",
        **changes,
    }


# ---------------------------------------------------------------------------- writing


def test_append_writes_one_compact_utf8_line_per_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert append_jsonl(path, [{"a": 1, "who": "ana"}, {"why": "análise ✓"}]) == 2
    assert append_jsonl(path, [{"b": [1, 2.5, None, True]}]) == 1
    assert path.read_bytes() == (
        '{"a":1,"who":"ana"}\n{"why":"análise ✓"}\n{"b":[1,2.5,null,true]}\n'.encode()
    )


def test_append_accepts_events_and_dicts_alike(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    append_jsonl(path, [TradeEvent.model_validate(trade(0)), trade(1)])
    read = read_jsonl(path, TradeEvent)
    assert [t.episode_id for t in read.records] == [0, 1] and not read.bad_lines


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (trade(pnl=math.nan), "pnl"),
        (trade(fees=math.inf), "fees"),
        ({"details": {"curve": [1.0, -math.inf]}}, "details.curve[1]"),
        ({"x": np.float32("nan")}, "x"),
    ],
)
def test_append_refuses_nan_naming_the_field_and_writes_nothing(
    tmp_path: Path, record: dict[str, Any], field: str
) -> None:
    path = tmp_path / "trades.jsonl"
    with pytest.raises(ValueError, match=rf"record 2: field '{re.escape(field)}'.*finite"):
        append_jsonl(path, [trade(0), record])
    assert not path.exists() or path.read_bytes() == b""


def test_writer_refuses_nan_naming_the_field(tmp_path: Path) -> None:
    with JsonlWriter(tmp_path / "trades.jsonl") as writer:
        writer.append(trade(0))
        with pytest.raises(ValueError, match="record 2: field 'pnl'"):
            writer.append(trade(pnl=math.nan))
        assert writer.lines_written == 1


def test_numpy_scalars_from_record_arrays_are_written_as_plain_json(tmp_path: Path) -> None:
    path = tmp_path / "scores.jsonl"
    append_jsonl(path, [{"n": np.int64(7), "ok": np.bool_(True), "x": np.float32(0.5),
                         "pnl": np.float64(-2.25)}])
    assert read_jsonl(path).records == [{"n": 7, "ok": True, "x": 0.5, "pnl": -2.25}]


def test_append_after_a_torn_line_starts_a_fresh_line(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2,"b":')  # a crash cut the second record short
    append_jsonl(path, [{"a": 3}])
    read = read_jsonl(path)
    assert read.records == [{"a": 1}, {"a": 3}]
    assert [b.line_no for b in read.bad_lines] == [2] and not read.torn_tail


def test_writer_makes_each_record_visible_at_once(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    with JsonlWriter(path) as writer:
        writer.append(trade(0))
        assert len(read_jsonl(path).records) == 1  # no buffer between append and the file
        assert writer.append_many([trade(1), TradeEvent.model_validate(trade(2))]) == 2
        assert len(read_jsonl(path).records) == 3
        assert writer.lines_written == 3
    with pytest.raises(ValueError, match="closed"):
        writer.append(trade(3))
    writer.close()  # closing twice is harmless


def test_writer_with_fsync_writes_the_same_lines(tmp_path: Path) -> None:
    path = tmp_path / "plans.jsonl"
    with JsonlWriter(path, fsync=True) as writer:
        writer.append({"a": 1})
    append_jsonl(path, [{"a": 2}], fsync=True)
    assert read_jsonl(path).records == [{"a": 1}, {"a": 2}]


def _append_batches(path: str, worker: int) -> None:
    payload = "x" * 4000  # lines far longer than a pipe buffer's atomic size
    for batch in range(25):
        append_jsonl(path, [{"w": worker, "b": batch, "i": i, "p": payload} for i in range(4)])


def test_concurrent_appenders_never_interleave_inside_a_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_batches, args=(str(path), w)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join()
        assert p.exitcode == 0
    read = read_jsonl(path)
    assert not read.bad_lines and len(read.records) == 4 * 25 * 4
    # Each batch was one write, so its four lines stay together.
    for first in range(0, len(read.records), 4):
        batch = read.records[first : first + 4]
        assert {(r["w"], r["b"]) for r in batch} == {(batch[0]["w"], batch[0]["b"])}


# ---------------------------------------------------------------------------- reading


def test_missing_file_reads_as_empty(tmp_path: Path) -> None:
    read = read_jsonl(tmp_path / "nothing.jsonl")
    assert read.records == [] and read.bad_lines == [] and not read.torn_tail


def test_torn_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    good = json.dumps(trade(0)) + "\n"
    path.write_text(good + json.dumps(trade(1))[:40])
    read = read_jsonl(path, TradeEvent)
    assert [t.episode_id for t in read.records] == [0]
    assert read.torn_tail
    assert read.bad_lines == [
        BadLine(2, len(good.encode()), read.bad_lines[0].reason)
    ]
    assert read.bad_lines[0].reason.startswith("torn last line")


def test_last_line_without_newline_that_parses_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"a":1}\n{"a":2}')
    read = read_jsonl(path)
    assert read.records == [{"a": 1}, {"a": 2}] and not read.torn_tail and not read.bad_lines


def test_corrupt_middle_line_is_skipped_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = [b'{"a":1}\n', b'{"a":2,,}\n', b'{"a":3}\n']
    path.write_bytes(b"".join(lines))
    read = read_jsonl(path)
    assert read.records == [{"a": 1}, {"a": 3}]
    assert len(read.bad_lines) == 1 and not read.torn_tail
    bad = read.bad_lines[0]
    assert (bad.line_no, bad.byte_offset) == (2, len(lines[0]))
    assert bad.reason.startswith("invalid JSON") and "\n" not in bad.reason


def test_line_failing_its_model_is_skipped_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    append_jsonl(path, [trade(0), trade(1, side="FLAT"), trade(2, v=2)])
    read = read_jsonl(path, TradeEvent)
    assert [t.episode_id for t in read.records] == [0]
    assert [b.line_no for b in read.bad_lines] == [2, 3]
    assert read.bad_lines[0].reason.startswith("side:")
    assert "unsupported schema version v=2" in read.bad_lines[1].reason
    assert all("\n" not in b.reason for b in read.bad_lines)


def test_line_with_bad_utf8_is_counted_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "conversation.jsonl"
    path.write_bytes(b'{"a":1}\n{"t":"\xff\xfe"}\n{"a":3}\n')
    read = read_jsonl(path)
    assert read.records == [{"a": 1}, {"a": 3}]
    assert read.bad_lines[0].line_no == 2 and "UTF-8" in read.bad_lines[0].reason


@pytest.mark.parametrize("line", [b'{"pnl":NaN}', b'{"pnl":-Infinity}', b"[1,2]", b"7"])
def test_nan_tokens_and_non_objects_are_bad_lines(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"a":1}\n' + line + b"\n")
    read = read_jsonl(path)
    assert read.records == [{"a": 1}] and [b.line_no for b in read.bad_lines] == [2]


def test_blank_lines_are_ignored_but_keep_line_numbers_true(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"a":1}\n\n{"a":2,\n')
    read = read_jsonl(path)
    assert read.records == [{"a": 1}] and [b.line_no for b in read.bad_lines] == [3]


def test_unreadable_path_raises_a_session_file_error(tmp_path: Path) -> None:
    with pytest.raises(SessionFileError, match="cannot read"):
        read_jsonl(tmp_path)  # a directory


# ---------------------------------------------------------------------------- tailing


def test_tail_waits_for_a_line_to_end_then_returns_it(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    line = (json.dumps(trade(1)) + "\n").encode()
    tail = JsonlTail(path, TradeEvent)
    append_jsonl(path, [trade(0)])
    with path.open("ab") as f:
        f.write(line[:50])  # the writer is mid-line
    first = tail.read_new()
    assert [t.episode_id for t in first.records] == [0] and not first.bad_lines
    assert tail.read_new().records == []  # still incomplete: nothing consumed
    with path.open("ab") as f:
        f.write(line[50:])
    second = tail.read_new()
    assert [t.episode_id for t in second.records] == [1] and not second.bad_lines
    assert tail.offset == path.stat().st_size


def test_tail_final_read_counts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":')
    tail = JsonlTail(path)
    assert tail.read_new().records == [{"a": 1}]
    final = tail.read_new(final=True)
    assert final.torn_tail and [b.line_no for b in final.bad_lines] == [2]
    assert tail.read_new(final=True).bad_lines == []  # counted once
    append_jsonl(path, [{"a": 3}])  # a restarted writer starts a fresh line
    after = tail.read_new()
    assert after.records == [{"a": 3}] and not after.bad_lines
    assert tail.lines_read == 3


def test_tail_of_a_file_that_does_not_exist_yet(tmp_path: Path) -> None:
    path = tmp_path / "plans.jsonl"
    tail = JsonlTail(path)
    assert tail.read_new().records == [] and not tail.restarted
    append_jsonl(path, [{"a": 1}])
    assert tail.read_new().records == [{"a": 1}]


def test_tail_restarts_when_the_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append_jsonl(path, [{"a": 1}, {"a": 2}])
    tail = JsonlTail(path)
    assert len(tail.read_new().records) == 2
    path.write_bytes(b'{"a":9}\n')
    read = tail.read_new()
    assert tail.restarted and read.records == [{"a": 9}]
    assert tail.read_new().records == [] and not tail.restarted


def test_tail_restarts_when_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    append_jsonl(path, [{"a": 1}])
    tail = JsonlTail(path)
    tail.read_new()
    other = tmp_path / "other.jsonl"
    append_jsonl(other, [{"b": 1}, {"b": 2}, {"b": 3}])  # larger than the old one
    os.replace(other, path)
    read = tail.read_new()
    assert tail.restarted and read.records == [{"b": 1}, {"b": 2}, {"b": 3}]


def test_tail_index_gives_the_byte_offset_of_every_record(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl"
    append_jsonl(path, [trade(0), trade(1)])
    with path.open("ab") as f:
        f.write(b"garbage\n")
    append_jsonl(path, [trade(2)])
    tail = JsonlTail(path, TradeEvent, index=True)
    read = tail.read_new()
    assert tail.offsets is not None and len(tail.offsets) == len(read.records) == 3
    with path.open("rb") as f:
        f.seek(tail.offsets[2])
        assert TradeEvent.model_validate_json(f.readline()).episode_id == 2
    assert JsonlTail(path).offsets is None


# ---------------------------------------------------------------------------- documents


def test_atomic_json_round_trips_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "conductor.json"
    write_json_atomic(path, {"pid": 4242, "state": "running", "host": "trading-box"})
    write_json_atomic(path, {"pid": 4242, "state": "waiting", "waiting_for": "plan-0007"})
    assert read_json(path) == {"pid": 4242, "state": "waiting", "waiting_for": "plan-0007"}
    assert [p.name for p in tmp_path.iterdir()] == ["conductor.json"]
    assert path.stat().st_mode & 0o777 == 0o644


def test_atomic_json_accepts_a_pydantic_model(tmp_path: Path) -> None:
    event = TradeEvent.model_validate(trade(3))
    write_json_atomic(tmp_path / "last_trade.json", event)
    assert TradeEvent.model_validate(read_json(tmp_path / "last_trade.json")) == event


@pytest.mark.parametrize(
    ("bad", "field"),
    [({"metrics": {"hit": math.nan}}, "metrics.hit"), ({"when": object()}, "when")],
)
def test_unserialisable_object_leaves_the_old_document_in_place(
    tmp_path: Path, bad: dict[str, Any], field: str
) -> None:
    path = tmp_path / "metrics_global.json"
    write_json_atomic(path, {"hit": 0.55})
    with pytest.raises(ValueError, match=rf"not written, field '{re.escape(field)}'"):
        write_json_atomic(path, bad)
    assert read_json(path) == {"hit": 0.55}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics_global.json"]


def test_failed_rename_leaves_the_old_document_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "conductor.json"
    write_json_atomic(path, {"state": "running"})

    def disk_full(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        write_json_atomic(path, {"state": "finished"})
    assert read_json(path) == {"state": "running"}
    assert [p.name for p in tmp_path.iterdir()] == ["conductor.json"]


def test_reading_a_missing_document_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "session_config.json"
    with pytest.raises(SessionFileError, match=r"session_config\.json: file not found") as info:
        read_json(path)
    assert info.value.path == path and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"seed": 7,', "corrupt JSON"),
        (b'{"hit": NaN}', "corrupt JSON"),
        (b"[1, 2]", "expected a JSON object, found a list"),
        (b'{"t": "\xff"}', "not UTF-8"),
    ],
)
def test_reading_a_corrupt_document_says_what_is_wrong_on_one_line(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "segment_plan.json"
    path.write_bytes(content)
    with pytest.raises(SessionFileError, match=problem) as info:
        read_json(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_event_forced_into_nan_is_refused_not_written_as_null(tmp_path: Path) -> None:
    # model_construct skips validation; pydantic would serialise the NaN as null.
    valid = TradeEvent.model_validate(trade(0))
    event = TradeEvent.model_construct(**{**dict(valid), "pnl": math.nan})
    with pytest.raises(ValueError, match="'pnl'"):
        append_jsonl(tmp_path / "trades.jsonl", [event])

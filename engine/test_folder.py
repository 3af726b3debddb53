"""A finished test as the files of its folder: engine records turned into events and a log.

A test's records (numpy record arrays, engine.executor.TestOutcome) become TradeEvent and
ScoreEvent lines (DESIGN.md §5), test.log and the test's leaderboard. The worker that ran
the test writes their text (`folder_text`), every event's `emitted_at` left as `EMITTED_AT`
for the conductor to stamp when it writes the folder (`stamped`); the conductor builds the
fields of the same events that it tallies as dicts (`tallied_records`) and writes the folder
in one atomic rename (engine.session.write_test_dir).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.configs import config_label
from engine.data import Bars
from engine.events import event_fields
from engine.leaderboard import LeaderboardRow, leaderboard_csv_text
from engine.metrics import EXIT_REASONS, PHASES, VOL_BINS
from engine.params import Params
from engine.session import LEADERBOARD, SCORES, TEST_LOG, TRADES
from engine.text import visible
from engine.windows import Window

if TYPE_CHECKING:  # the executor's workers call this module
    from engine.executor import TestOutcome


# what a worker writes for every event's emitted_at: the conductor stamps the time it writes the folder
EMITTED_AT = "@emitted_at@"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_LABELS: dict[str, str] = {}  # params_json -> config_label: a session has few configs, each parsed once


def test_files(outcome: TestOutcome, bars: Bars, w: Window, tid: str, sid: str,
               rows: list[LeaderboardRow]) -> tuple[dict[str, str], list[dict[str, Any]], list[dict[str, Any]]]:
    """(files of the folder by name, trade records, score records) of a test; a failed one has no trades."""
    trades = trade_records(outcome, bars, w, tid, sid) if outcome.ok else []
    scores = score_records(outcome, tid, sid) if outcome.ok else []
    return _files(outcome, bars, w, rows, trades, scores), trades, scores


def folder_text(outcome: TestOutcome, bars: Bars, w: Window, tid: str, sid: str,
                rows: list[LeaderboardRow]) -> dict[str, str]:
    """The files of a finished test's folder, every event's emitted_at `EMITTED_AT` (to be `stamped`)."""
    return {
        TRADES: trade_lines(outcome, bars, w, tid, sid, EMITTED_AT),
        SCORES: score_lines(outcome, tid, sid, EMITTED_AT),
        TEST_LOG: test_log(outcome, bars, w, rows),
        LEADERBOARD: leaderboard_csv_text(rows),
    }


def stamped(files: dict[str, str], emitted_at: str) -> dict[str, str]:
    """`folder_text`'s files with every event's emitted_at set to `emitted_at` (ISO 8601 UTC)."""
    mark, stamp = _ENCODE(EMITTED_AT), _ENCODE(emitted_at)
    return {name: text.replace(mark, stamp) if name in (TRADES, SCORES) else text for name, text in files.items()}


def _files(outcome: TestOutcome, bars: Bars, w: Window, rows: list[LeaderboardRow], trades: list[dict[str, Any]],
           scores: list[dict[str, Any]]) -> dict[str, str]:
    return {
        TRADES: "".join(_ENCODE(r) + "\n" for r in trades),
        SCORES: "".join(_ENCODE(r) + "\n" for r in scores),
        TEST_LOG: test_log(outcome, bars, w, rows),
        LEADERBOARD: leaderboard_csv_text(rows),  # inside the folder's atomic rename, like the rest
    }


def trade_records(outcome: TestOutcome, bars: Bars, w: Window, tid: str, sid: str,
                  emitted_at: str | None = None) -> list[dict[str, Any]]:
    """The TradeEvents of a finished test (DESIGN.md §5), times from the bars of its window."""
    if len(outcome.trades) == 0:
        return []
    method = outcome.rows[0].method
    head = event_fields("trade", sid, emitted_at)
    tf = _timeframe(bars)
    out = []
    for exit_ts, entry_ts, side, entry, exit_, qty, fees, pnl, held, reason, vbin, phase, ep, gc, gi, ga, gv in (
        _trade_columns(outcome.trades, bars, w)
    ):
        out.append({
            **head,
            "ts": exit_ts + "Z", "episode_id": ep, "test_id": tid, "tf": tf,
            "side": "LONG" if side == 1 else "SHORT", "reason": method, "entry_ts": entry_ts + "Z",
            "entry": entry, "exit": exit_, "qty": qty, "fees": fees, "pnl": pnl,
            "gates": {"cvd": gc, "imb": gi, "atrz": ga, "vhf": gv}, "bars_held": held,
            "exit_reason": EXIT_REASONS[reason], "vol_bin": VOL_BINS[vbin], "phase": PHASES[phase],
        })
    return out


def _timeframe(bars: Bars) -> str:
    """A TradeEvent's `tf`: the bars' interval in minutes, as `5m`."""
    return f"{bars.interval_ms // 60_000}m"


def _trade_columns(tr: np.ndarray, bars: Bars, w: Window) -> Iterator[tuple[Any, ...]]:
    """Each trade's values as a TradeEvent takes them (Python numbers; its exit and entry times as ISO text
    from the bars of its window), in `trade_records`' order."""
    ts = bars.ts
    iso = lambda idx: (np.datetime_as_string((ts[w.start + idx]).astype("datetime64[ms]"), unit="ms")).tolist()  # noqa: E731
    return zip(
        iso(tr["exit_idx"]), iso(tr["entry_idx"]), tr["side"].tolist(), tr["entry"].tolist(), tr["exit"].tolist(),
        tr["qty"].tolist(), tr["fees"].tolist(), tr["pnl"].tolist(), tr["bars_held"].tolist(),
        tr["exit_reason"].tolist(), tr["vol_bin"].tolist(), tr["phase"].tolist(), tr["episode"].tolist(),
        tr["gate_cvd"].tolist(), tr["gate_imb"].tolist(), tr["gate_atrz"].tolist(), tr["gate_vhf"].tolist(),
    )


def _score_columns(ep: np.ndarray) -> Iterator[tuple[Any, ...]]:
    """Each episode's values as a ScoreEvent takes them, in `score_records`' order."""
    return zip(*(ep[name].tolist() for name in ("episode", "start", "stop", "n_trades", "hit", "payoff", "total_pnl",
                                                 "maxdd", "blunders", "score", "vol_regime", "phase")))


# JSON of the values a line takes from a small set, as _ENCODE writes them
_BOOL = ("false", "true")
_SIDE = {1: _ENCODE("LONG"), -1: _ENCODE("SHORT")}
_EXIT_REASONS = tuple(_ENCODE(r) for r in EXIT_REASONS)
_VOL_BINS = tuple(_ENCODE(b) for b in VOL_BINS)
_PHASES = tuple(_ENCODE(p) for p in PHASES)


def _head(kind: str, sid: str, emitted_at: str) -> str:
    """The fields every event line starts with, as _ENCODE writes them, without the closing brace."""
    return _ENCODE(event_fields(kind, sid, emitted_at))[:-1]


def _finite(columns: np.ndarray, names: tuple[str, ...]) -> bool:
    return all(bool(np.isfinite(columns[name]).all()) for name in names)


def trade_lines(outcome: TestOutcome, bars: Bars, w: Window, tid: str, sid: str, emitted_at: str) -> str:
    """The TRADES file: `trade_records`' lines as _ENCODE writes them, byte for byte, written straight from the
    columns (a dict a line, then encoded, took twice as long: half a worker's time on its test's files).
    Floats are Python's repr, as JSON's encoder writes a finite one; a test with any other goes the dict way."""
    tr = outcome.trades
    if len(tr) == 0:
        return ""
    if not _finite(tr, ("entry", "exit", "qty", "fees", "pnl")):
        return "".join(_ENCODE(r) + "\n" for r in trade_records(outcome, bars, w, tid, sid, emitted_at))
    head = _head("trade", sid, emitted_at)
    test_tf = f',"test_id":{_ENCODE(tid)},"tf":{_ENCODE(_timeframe(bars))}'
    reason = _ENCODE(outcome.rows[0].method)
    b = _BOOL
    return "".join(
        f'{head},"ts":"{exit_ts}Z","episode_id":{ep}{test_tf},"side":{_SIDE[side]},"reason":{reason},'
        f'"entry_ts":"{entry_ts}Z","entry":{entry!r},"exit":{exit_!r},"qty":{qty!r},"fees":{fees!r},"pnl":{pnl!r},'
        f'"gates":{{"cvd":{b[gc]},"imb":{b[gi]},"atrz":{b[ga]},"vhf":{b[gv]}}},"bars_held":{held},'
        f'"exit_reason":{_EXIT_REASONS[why]},"vol_bin":{_VOL_BINS[vbin]},"phase":{_PHASES[phase]}}}\n'
        for exit_ts, entry_ts, side, entry, exit_, qty, fees, pnl, held, why, vbin, phase, ep, gc, gi, ga, gv
        in _trade_columns(tr, bars, w)
    )


def score_lines(outcome: TestOutcome, tid: str, sid: str, emitted_at: str) -> str:
    """The SCORES file: `score_records`' lines as _ENCODE writes them, byte for byte (as `trade_lines`)."""
    ep = outcome.episodes
    if len(ep) == 0:
        return ""
    if not _finite(ep, ("hit", "payoff", "total_pnl", "maxdd", "score")):
        return "".join(_ENCODE(r) + "\n" for r in score_records(outcome, tid, sid, emitted_at))
    head = _head("score", sid, emitted_at)
    test = f',"test_id":{_ENCODE(tid)}'
    return "".join(
        f'{head},"episode_id":{episode}{test},"bars":{stop - start},"n_trades":{n_trades},"hit":{hit!r},'
        f'"payoff":{payoff!r},"total_pnl":{total_pnl!r},"maxdd":{maxdd!r},"blunders":{blunders},"score":{score!r},'
        f'"vol_regime":{_VOL_BINS[vol_regime]},"phase":{_PHASES[phase]}}}\n'
        for episode, start, stop, n_trades, hit, payoff, total_pnl, maxdd, blunders, score, vol_regime, phase
        in _score_columns(ep)
    )


# the fields of a TradeEvent and a ScoreEvent that the conductor tallies
TALLIED_TRADE = ("phase", "episode_id", "pnl", "exit_reason", "bars_held", "vol_bin")
TALLIED_SCORE = ("phase", "episode_id", "total_pnl", "maxdd", "score")


def tallied_records(outcome: TestOutcome) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A finished test's TradeEvents and ScoreEvents cut to the fields the conductor tallies (segment results,
    the rules' episode stats): `TALLIED_TRADE` and `TALLIED_SCORE`, valued as in `trade_records` and
    `score_records`, without the times and names only the files need (the times cost most to make)."""
    tr, ep = outcome.trades, outcome.episodes
    trades = [
        dict(zip(TALLIED_TRADE, (PHASES[phase], episode, pnl, EXIT_REASONS[reason], held, VOL_BINS[vbin])))
        for phase, episode, pnl, reason, held, vbin in zip(
            tr["phase"].tolist(), tr["episode"].tolist(), tr["pnl"].tolist(), tr["exit_reason"].tolist(),
            tr["bars_held"].tolist(), tr["vol_bin"].tolist())
    ]
    scores = [
        dict(zip(TALLIED_SCORE, (PHASES[phase], episode, pnl, maxdd, score)))
        for phase, episode, pnl, maxdd, score in zip(
            ep["phase"].tolist(), ep["episode"].tolist(), ep["total_pnl"].tolist(), ep["maxdd"].tolist(),
            ep["score"].tolist())
    ]
    return trades, scores


def score_records(outcome: TestOutcome, tid: str, sid: str, emitted_at: str | None = None) -> list[dict[str, Any]]:
    """The ScoreEvents of a finished test: one per episode."""
    head = event_fields("score", sid, emitted_at)
    return [
        {
            **head,
            "episode_id": episode, "test_id": tid, "bars": stop - start, "n_trades": n_trades,
            "hit": hit, "payoff": payoff, "total_pnl": total_pnl, "maxdd": maxdd,
            "blunders": blunders, "score": score, "vol_regime": VOL_BINS[vol_regime], "phase": PHASES[phase],
        }
        for episode, start, stop, n_trades, hit, payoff, total_pnl, maxdd, blunders, score, vol_regime, phase
        in _score_columns(outcome.episodes)
    ]

def test_log(outcome: TestOutcome, bars: Bars, w: Window, rows: list[LeaderboardRow]) -> str:
    """test.log: the window, the attempts, the failure if any, and each config's validation line."""
    b = bars
    day = lambda i: np.datetime_as_string(b.ts[i].astype("datetime64[ms]"), unit="m")  # noqa: E731
    lines = [
        f"{outcome.test_id}: window {w.index}, bars {w.start}..{w.end - 1} "
        f"(train from {day(w.start)}, validation from {day(w.train_end)}, holdout from {day(w.validation_end)} "
        f"to {day(w.end - 1)})",
        f"attempts: {outcome.attempts}",
    ]
    if not outcome.ok:
        lines.append(f"FAILED: {visible(outcome.error.strip())}")
    for r in rows:
        lines.append(
            f"#{r.rank} {r.role:8s} {r.config_id} {_label(r.params_json)}: "
            f"validation {r.val_trades} trades, hit {r.val_hit:.3f}, payoff {r.val_payoff:.2f}, "
            f"pnl {r.val_pnl:,.2f} USD, maxdd {r.val_maxdd:,.2f} USD, score {r.val_score:.1f}"
        )
    return "\n".join(lines) + "\n"


def _label(params_json: str) -> str:
    label = _LABELS.get(params_json)
    if label is None:
        label = _LABELS[params_json] = config_label(Params.model_validate_json(params_json))
    return label

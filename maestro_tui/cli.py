"""The `maestro-tui` command line (DESIGN.md §10).

Exit codes: 0 done, 1 a session failed, 2 bad usage or bad input (one-line reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exit code 2 is ours too
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"maestro-tui: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="maestro-tui",
        description="Supervise AI-steered strategy research: walk-forward micro-backtests on 5-minute bars.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    bt = sub.add_parser("backtest", help="walk-forward backtests of the three methods on the default or given data")
    bt.add_argument("--data", metavar="FILE", help="bars: Binance kline CSV, CSV with a header, or Parquet")
    bt.add_argument("--windows", type=int, default=100, help="walk-forward windows to test (default 100)")
    bt.add_argument("--seed", type=int, default=7, help="seed of the synthetic data (default 7)")

    chk = sub.add_parser("check-data", help="validate a market-data file and list its gaps")
    chk.add_argument("file", metavar="FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command is None:  # bare `maestro-tui`: the main job on its embedded defaults
        args = build_parser().parse_args(["backtest"])
    from engine import DataError

    try:
        if args.command == "check-data":
            return _check_data(args.file)
        return _backtest(args)
    except DataError as err:
        print(f"maestro-tui: bad market data: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_FAILED


def _check_data(path: str) -> int:
    from engine import load_bars

    bars = load_bars(path)
    print(f"{path}: {len(bars)} bars of {bars.interval_ms // 60_000}m, taker-buy volume: "
          f"{'yes' if bars.taker_buy_volume is not None else 'no'}, gaps: {len(bars.gaps)}")
    for gap in bars.gaps[:20]:
        print(f"  gap before row {gap.row}: {gap.missing_bars} bars missing")
    return EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    import numpy as np

    from engine import METHODS, Params, bars_needed, load_bars, run_backtest, synthetic_bars, walk_forward_windows

    if args.windows < 1:
        print("maestro-tui: --windows must be at least 1", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.data:
        bars = load_bars(args.data)
    else:
        bars = synthetic_bars(bars_needed(args.windows, 300_000), seed=args.seed)
    windows = walk_forward_windows(len(bars), bars.interval_ms)[: args.windows]
    if not windows:
        print(f"maestro-tui: {len(bars)} bars hold no full 15-day walk-forward window", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{bars.source}: {len(bars)} bars, {len(windows)} walk-forward windows")
    print(f"{'method':16s} {'trades':>7s} {'hit':>6s} {'payoff':>7s} {'pnl USD':>11s} {'maxdd USD':>10s} {'score':>6s}  (validation)")
    for name in METHODS:
        params = Params(method=name)
        started = time.perf_counter()
        rows = []
        for w in windows:
            r = run_backtest(bars.slice(w.start, w.end), params)
            rows.append(r.metrics("validation"))
        took = time.perf_counter() - started
        trades = sum(m.n_trades for m in rows)
        hit = sum(m.hit * m.n_trades for m in rows) / trades if trades else 0.0
        print(
            f"{name:16s} {trades:7d} {hit:6.3f} {np.mean([m.payoff for m in rows]):7.2f} "
            f"{sum(m.total_pnl for m in rows):11.0f} {min(m.maxdd for m in rows):10.0f} "
            f"{np.mean([m.score for m in rows]):6.1f}  {took * 1000:.0f} ms"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

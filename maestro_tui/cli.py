"""The `maestro-tui` command line (DESIGN.md §10).

Exit codes: 0 done, 1 a session failed, 2 bad usage or bad input (one-line reason on
stderr), 130 a session stopped by Ctrl-C / SIGTERM (resumable with `run --resume`).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from engine.text import visible  # outside text on stdout and stderr: never a control sequence

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def package_version() -> str:
    """The installed package's version; from pyproject.toml when running from a tree not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("maestro-tui")
    except PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, ValueError, KeyError):
            return "unknown"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's default exit code 2 is ours too
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"maestro-tui: {message}\n")


class BadInput(Exception):
    """An expected failure: one line for the person at the terminal, exit code 2."""


def _sessions_dir(arg: str | None) -> Path:
    """The sessions folder to read (flag, MAESTRO_SESSIONS_DIR, ./sessions); BadInput when that path is no folder.

    A folder that does not exist yet is fine: it holds no session.
    """
    path = Path(arg or os.environ.get("MAESTRO_SESSIONS_DIR") or "sessions")
    _check_folder(path, "sessions folder")
    return path


def _check_folder(path: Path, what: str, *, writing: bool = False, must_exist: bool = False) -> None:
    """BadInput, one line naming `path`, when it cannot be a folder to read in (or, `writing`, to write in).

    Asked before anything is written, so a bad `--sessions-dir` leaves no trace. A missing
    folder passes unless `must_exist`; to write, its nearest existing parent must take it.
    """
    if path.is_symlink() and not path.exists():
        raise BadInput(f"{what} {path} is a dangling symbolic link (to {os.readlink(path)}): "
                       "point it at a folder, or remove it")
    if path.exists():
        if not path.is_dir():
            raise BadInput(f"{what} {path} is a file, not a folder")
        if writing and (why := _unwritable(path)):
            raise BadInput(f"{what} {path} {why}: nothing can be written there")
        return
    if must_exist:
        raise BadInput(f"{what} {path} does not exist")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise BadInput(f"{what} {path} cannot be created: {parent} is a file, not a folder")
    if writing and (why := _unwritable(parent)):
        raise BadInput(f"{what} {path} cannot be created: {parent} {why}")


def _unwritable(folder: Path) -> str | None:
    """Why nothing can be created in `folder` (read-only filesystem, no permission), or None."""
    if os.access(folder, os.W_OK | os.X_OK):  # refuses a read-only filesystem even to root
        return None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "is on a read-only filesystem"
    except OSError:
        pass
    return "is not writable (no write permission)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="maestro-tui",
        description="Supervise AI-steered strategy research: walk-forward micro-backtests on 5-minute bars.",
        epilog="Without a command: a new session on the embedded defaults (`maestro-tui run`).",
    )
    parser.add_argument("--version", action="version", version=f"maestro-tui {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="start a research session (or --resume one)")
    run.add_argument("--data", metavar="FILE", help="bars: Binance kline CSV, CSV with a header, or Parquet")
    run.add_argument("--config", metavar="FILE", help="a config.toml instead of ~/.config/maestro-tui/config.toml")
    run.add_argument("--segments", type=int, help="segments (default 5)")
    run.add_argument("--tests", type=int, help="tests per segment (default 100)")
    run.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    run.add_argument("--approval", choices=("manual", "auto", "veto-only"),
                     help="who decides plans (default: auto headless, manual in the console)")
    run.add_argument("--seed", type=int, help="seed of the synthetic data and offline agents (default 7)")
    run.add_argument("--allow-reuse", action="store_true", default=None,
                     help="data with fewer windows than tests: reuse windows (every reused test marked) instead of fitting")
    run.add_argument("--strategy", metavar="FILE|NAME", action="append", dest="strategies",
                     help="research this strategy: a file of your own (checked first) or a registered name; "
                     "repeatable (default: every registered strategy)")
    run.add_argument("--baseline", metavar="SESSION|defaults",
                     help="start from this session's best config, or the defaults (default: auto, see README)")
    run.add_argument("--pipeline-depth", type=int, help="tests started ahead of the one processed (default 8)")
    run.add_argument("--headless", action="store_true", help="no console: progress lines on stdout")
    run.add_argument("--sessions-dir", metavar="DIR", help="where sessions live (default ./sessions)")
    run.add_argument("--dask", metavar="ADDRESS", help="run the tests on this dask.distributed scheduler")
    run.add_argument("--resume", metavar="SESSION_DIR", help="continue an interrupted session")
    run.add_argument("--record-llm", action="store_true", default=None,
                     help="write LLM request/response pairs to llm_records.jsonl (no keys, no headers)")

    att = sub.add_parser("attach", help="reopen the console on a running session")
    att.add_argument("session", metavar="SESSION_DIR")
    att.add_argument("--read-only", action="store_true", help="watch only: decide nothing")

    rp = sub.add_parser("replay", help="replay a session, decision by decision")
    rp.add_argument("session", metavar="SESSION_DIR")

    # the conductor process the console starts: no `help`, so argparse leaves it out of the listing
    con = sub.add_parser("conduct")
    con.add_argument("session", metavar="SESSION_DIR")
    con.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)

    ls = sub.add_parser("ls", help="list sessions with their state and headline metrics")
    ls.add_argument("--sessions-dir", metavar="DIR")

    rep = sub.add_parser("report", help="(re)write session_summary.md and metrics_global.json")
    rep.add_argument("session", metavar="SESSION_DIR")

    dec = sub.add_parser("decide", help="list pending plans, or approve, veto or edit one, without the console")
    dec.add_argument("session", metavar="SESSION_DIR")
    dec.add_argument("plan", metavar="PLAN", nargs="?", help="the plan to decide (none: list the pending plans)")
    dec.add_argument("decision", choices=("approve", "veto", "edit"), nargs="?")
    dec.add_argument("values", nargs="*", metavar="PARAM=VALUE", help="the edited values (edit only)")
    dec.add_argument("--note", default="", help="why, for the audit trail")
    dec.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the conductor (default 10)")

    bt = sub.add_parser("backtest", help="walk-forward backtests of the three methods, no agents")
    bt.add_argument("--data", metavar="FILE", help="bars: Binance kline CSV, CSV with a header, or Parquet")
    bt.add_argument("--windows", type=int, default=100, help="walk-forward windows to test (default 100)")
    bt.add_argument("--seed", type=int, default=7, help="seed of the synthetic data (default 7)")

    chk = sub.add_parser("check-data", help="validate a market-data file: its span, gaps and the tests it supports")
    chk.add_argument("file", metavar="FILE")
    chk.add_argument("--config", metavar="FILE", help="a config.toml instead of ~/.config/maestro-tui/config.toml")
    chk.add_argument("--segments", type=int, help="segments (default 5)")
    chk.add_argument("--tests", type=int, help="tests per segment (default 100)")
    chk.add_argument("--allow-reuse", action="store_true", default=None, help="as `run --allow-reuse`")

    cs = sub.add_parser("check-strategy", help="check a strategy file (or a registered name): its declaration, "
                        "its signal, look-ahead and warm-up, as a session starting on it does")
    cs.add_argument("file", metavar="FILE|NAME")
    cs.add_argument("--data", metavar="FILE", help="bars to check on (default: the synthetic bars a session uses)")
    cs.add_argument("--seed", type=int, help="seed of the synthetic data and of the parameter draws (default 7)")
    cs.set_defaults(config=None)  # the settings a session would read (config.toml, MAESTRO_*), no flag of its own
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command is None:  # bare `maestro-tui`: the main job on its embedded defaults
        args = build_parser().parse_args(["run"])
    if args.command == "conduct" and args.nice:
        os.nice(args.nice)  # research yields the CPU to the console; the fork server and the workers inherit it
    conducts = args.command == "conduct" or (args.command == "run" and not _with_console(args))
    if conducts:
        # numpy's BLAS would start a thread that spins on the cores the workers need, for the
        # conductor's few small matrix products (before numpy is imported, here or in the workers)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        _start_workers_early(_dask_named(args))  # before anything below imports the engine's kernels
    code = _dispatch(args)
    if conducts and argv is None:  # a process of its own (the console script), not a caller's function
        _exit_at_once(code)
    return code


def _exit_at_once(code: int) -> NoReturn:
    """End a process that conducted a session as soon as its files are closed (Conductor.run closed them).

    Python's own teardown after a session (freeing numba's compiled code, every module) took
    0.45–0.5 s from the last line printed to the process's end, an eighth of a default
    session; nothing in it writes what the session needs. The exit functions still run
    (logging, multiprocessing's clean-up of its temporary folder); the worker pool has been
    joined, and the fork server (engine.fork_server_exit) and the resource tracker end when
    this process's pipes close.
    """
    import atexit

    atexit._run_exitfuncs()  # what the program asked to run at exit (logging, multiprocessing's clean-up) still runs
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _dispatch(args: argparse.Namespace) -> int:
    import logging

    from engine import DataError
    from engine.jsonl import SessionFileError, os_error_line
    from engine.strategy import StrategyError

    handlers = {
        "run": _run, "attach": _attach, "replay": _replay, "conduct": _conduct, "ls": _ls, "report": _report, "decide": _decide,
        "backtest": _backtest, "check-data": _check_data, "check-strategy": _check_strategy,
    }
    # A log file the disk refuses (conductor.log on a full disk) costs its lines, not a
    # traceback on the screen.
    logging.raiseExceptions = False
    try:
        return handlers[args.command](args)
    except DataError as err:
        print(visible(f"maestro-tui: bad market data: {err}", one_line=True), file=sys.stderr)
    except (BadInput, SessionFileError, StrategyError) as err:
        print(visible(f"maestro-tui: {err}", one_line=True), file=sys.stderr)
    except OSError as err:  # a path the OS refuses (a file for a folder, read-only, disk full…): its name and why
        print(visible(f"maestro-tui: {os_error_line(err)}", one_line=True), file=sys.stderr)
    except KeyboardInterrupt:
        return 130
    return EXIT_BAD_INPUT


# ---------------------------------------------------------------- run


def _session_arg(path: str, *, writing: bool = False):
    """The session folder a command names; BadInput when it is not one (or, `writing`, cannot take writes)."""
    from engine.session import SessionDir

    _check_folder(Path(path), "session folder", writing=writing, must_exist=True)
    session = SessionDir(Path(path))
    if not session.exists():
        raise BadInput(f"{path} is not a session folder (no session_config.json)")
    session.check_version()
    return session


# `run` flags that are settings (flags win over MAESTRO_* variables and config.toml)
_SETTING_FLAGS = ("data", "segments", "tests", "workers", "approval", "seed", "pipeline_depth", "dask", "record_llm",
                  "allow_reuse", "baseline", "strategies")


def _settings(args: argparse.Namespace):
    from pydantic import ValidationError

    from agents.settings import config_path, load_settings

    if args.config:
        if not Path(args.config).is_file():
            raise BadInput(f"--config {args.config}: no such file")
        os.environ["MAESTRO_CONFIG"] = args.config
    flag = lambda name: getattr(args, name, None)  # noqa: E731 - `check-data` has only some of `run`'s flags
    try:
        return load_settings(
            **{name: flag(name) for name in _SETTING_FLAGS},
            sessions_dir=flag("sessions_dir") or os.environ.get("MAESTRO_SESSIONS_DIR"),
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BadInput(f"setting {where}: {first['msg']} (flags, MAESTRO_* variables or {config_path()})") from None
    except ValueError as err:  # an unreadable config.toml
        raise BadInput(f"{config_path()}: {err}") from None


def _with_console(args: argparse.Namespace) -> bool:
    """Whether `run` opens the console (which starts a conductor process) or conducts here, headless."""
    return not args.headless and sys.stdout.isatty() and sys.stdin.isatty()


def _run(args: argparse.Namespace) -> int:
    console = _with_console(args)
    from agents.baseline import BaselineError
    from agents.conductor import Conductor
    from agents.session_start import new_session_config, session_start
    from engine.jsonl import write_json_atomic
    from engine.session import CONFIG, new_session_dir
    from engine.windows import NoWindow

    if args.resume:
        session = _session_arg(args.resume, writing=True)
        from engine.session import conductor_alive, read_conductor_state

        state = read_conductor_state(session)
        if state is not None and state.state == "finished":
            raise BadInput(f"{args.resume} has finished: there is nothing to resume (replay it, or start a new session)")
        if conductor_alive(state):
            raise BadInput(f"{args.resume} is still running (its conductor is alive)")
        print(f"resuming {session.root}")
    else:
        settings = _settings(args)
        _check_folder(Path(settings.sessions_dir), "sessions folder", writing=True)  # before anything is written
        approval = settings.approval or ("manual" if console else "auto")
        # bad data, or too little of it: stop before making a folder
        try:
            start = session_start(settings)
        except (NoWindow, BaselineError) as err:
            raise BadInput(str(err)) from None
        session = new_session_dir(settings.sessions_dir)
        write_json_atomic(session.file(CONFIG), new_session_config(session, settings, approval, start))
        if start.tests.note():
            print(visible(f"maestro-tui: {start.tests.note()}", one_line=True), file=sys.stderr)
        if approval == "auto":
            print(f"approval: auto (headless: nobody at the keyboard; plans apply at once) — session {session.root}")
        else:
            print(f"approval: {approval} — session {session.root}; decide with `maestro-tui decide {session.root} PLAN approve`")
    if console:
        return _console(session, start_conductor=True)
    started = time.perf_counter()
    code = Conductor(session, echo=lambda line: print(visible(line))).run()
    took = time.perf_counter() - started
    if code == 0:
        print(f"done in {took:.1f} s: {session.file('session_summary.md')}")
    elif code == 130:
        print(f"stopped; resume with: maestro-tui run --resume {session.root}")
    return code


def _dask_named(args: argparse.Namespace) -> str | None:
    """The dask scheduler a session will run on, as far as it can be told without reading the settings:
    `--dask`, MAESTRO_DASK, or the session_config.json of a session resumed or conducted."""
    if getattr(args, "dask", None) or os.environ.get("MAESTRO_DASK"):
        return getattr(args, "dask", None) or os.environ.get("MAESTRO_DASK")
    folder = args.session if args.command == "conduct" else getattr(args, "resume", None)
    if folder:
        import json

        try:
            with open(Path(folder) / "session_config.json", encoding="utf-8") as fh:
                return json.load(fh).get("settings", {}).get("dask")
        except (OSError, ValueError, AttributeError):
            return None  # the command says what is wrong with it
    return None


def _start_workers_early(dask: str | None) -> None:
    """The worker pool's fork server, started before the conductor's own start-up (not for a dask cluster).

    It imports the engine and loads the kernels meanwhile, instead of after, when the
    first test is submitted. (A new session on a dask cluster named only in the config
    file starts one for nothing, which exits with this process.)
    """
    if not dask:
        from engine import fork_server

        try:
            fork_server.start()
        except OSError as err:  # its socket goes in the temporary folder: a path too long for one, a folder refused
            import tempfile

            print(visible(f"maestro-tui: cannot start the worker processes: {err.strerror or err} (their socket goes "
                          f"in the temporary folder {tempfile.gettempdir()}: set TMPDIR to a short, writable folder)",
                          one_line=True), file=sys.stderr)
            raise SystemExit(EXIT_BAD_INPUT) from None


def _conduct(args: argparse.Namespace) -> int:
    from agents.conductor import Conductor
    from engine.session import SessionDir

    return Conductor(SessionDir(Path(args.session)), echo=lambda _line: None).run()


def _console(session, *, start_conductor: bool, read_only: bool = False) -> int:
    """Open the console on `session`, first starting its conductor in a process group of its own."""
    from maestro_tui import conductor_process
    from maestro_tui.app import console as open_console

    if start_conductor:
        conductor_process.start_conductor(session.root)
    from agents.settings import load_settings

    try:
        console = load_settings().console
    except ValueError as err:
        raise BadInput(f"console settings: {str(err).splitlines()[0]}") from None
    app = open_console(session.root, read_only=read_only, keymap=console.keys, bell=console.bell, theme=console.theme)
    result = app.run()
    if result == "leave":
        print(f"the session goes on; reattach with: maestro-tui attach {session.root}")
    elif result == "stop":
        print(f"stopping the session; resume later with: maestro-tui run --resume {session.root}")
    return _failed(session) or EXIT_OK


def _failed(session) -> int:
    """EXIT_FAILED, with the reason on stderr, when the session's conductor.json says it failed; else 0."""
    from engine.jsonl import SessionFileError
    from engine.session import read_conductor_state

    try:
        state = read_conductor_state(session)
    except SessionFileError:
        return 0
    if state is None or state.state != "failed":
        return 0
    print(visible(f"the session failed: {state.error or 'no reason given'} (see {session.file(state.log)})"),
          file=sys.stderr)
    return EXIT_FAILED


def _replay(args: argparse.Namespace) -> int:
    from maestro_tui.app import console

    session = _session_arg(args.session)
    console(session.root, replay=True).run()
    return EXIT_OK


def _attach(args: argparse.Namespace) -> int:
    session = _session_arg(args.session)
    return _console(session, start_conductor=False, read_only=args.read_only)


# ---------------------------------------------------------------- ls, report, decide


def _ls(args: argparse.Namespace) -> int:
    from engine.session import list_sessions

    sessions = list_sessions(_sessions_dir(args.sessions_dir))
    if not sessions:
        print(f"no sessions in {_sessions_dir(args.sessions_dir)}")
        return EXIT_OK
    print(f"{'session':28s} {'state':12s} {'started':20s} {'tests':>9s}  best config (validation)")
    for s in sessions:
        print(visible(_ls_line(s), one_line=True))
    return EXIT_OK


def _ls_line(s) -> str:
    """One session's line; a folder whose files cannot be read says so, and the listing goes on."""
    from engine.jsonl import read_json
    from engine.session import read_conductor_state, session_status

    status = session_status(s)
    try:
        state = read_conductor_state(s)
    except ValueError:
        state = None
    tests = f"{state.tests_done}/{state.tests_total}" if state else "-"
    try:
        started = str(read_json(s.file("session_config.json")).get("created_at", ""))[:19].replace("T", " ")
    except (ValueError, AttributeError) as err:
        return f"{s.session_id:28s} unreadable ({str(err).splitlines()[0]})"
    return f"{s.session_id:28s} {status:12s} {started:20s} {tests:>9s}  {_best_config(s)}"


def _best_config(session) -> str:
    """The best config on validation with its headline figures: the session's own verdict when it
    finished (metrics_global.json), else ranked from the tests done so far."""
    from engine.jsonl import SessionFileError, read_document
    from engine.reports.documents import MetricsGlobalDoc
    from engine.reports.global_metrics import session_rows
    from engine.session import METRICS_GLOBAL
    from engine.standings import standings

    so_far = ""
    if session.file(METRICS_GLOBAL).exists():
        try:
            top = read_document(session.file(METRICS_GLOBAL), MetricsGlobalDoc).best
        except SessionFileError as err:  # a hand-edited or damaged metrics_global.json
            return f"(unreadable: {err})"
    else:
        try:
            ranked = standings(session_rows(session))
        except SessionFileError as err:
            return f"(unreadable: {err})"
        top = ranked[0] if ranked else None
        so_far = " (so far)"
    if not top:
        return ""
    return (f"{top.label}: hit {top.val_hit:.3f}, payoff {top.val_payoff:.2f}, "
            f"pnl {top.val_pnl:,.0f} USD, score {top.val_score:.1f}{so_far}")


def _report(args: argparse.Namespace) -> int:
    from engine.jsonl import read_document, write_text_atomic
    from engine.reports.charts import write_charts
    from engine.reports.documents import ConfigFacts
    from engine.reports.global_metrics import session_rows
    from engine.reports.plan_page import plan_after_segment
    from engine.reports.summary import write_reports
    from engine.session import CONFIG, SEGMENT_RESULTS

    session = _session_arg(args.session)

    segments = read_document(session.file(CONFIG), ConfigFacts).settings.segments
    for k in (2, 4):
        if k < segments and (session.segment_dir(k) / SEGMENT_RESULTS).exists():
            write_text_atomic(session.plan_after(k), plan_after_segment(session, k, segments))
    charts = write_charts(session, session_rows(session))
    write_reports(session, segments)
    print(f"wrote {session.file('session_summary.md')}, {session.file('metrics_global.json')} and "
          f"{', '.join(charts.values())}")
    return EXIT_OK


def _decide(args: argparse.Namespace) -> int:
    from agents.approval import DecisionError, decision_outcome, describe_patch, record_decision
    from engine.session import conductor_alive, read_conductor_state

    session = _session_arg(args.session)
    if args.plan is None:
        return _list_pending(session)
    if args.decision is None:
        raise BadInput(f"say what to do with {args.plan}: approve, veto or edit PARAM=VALUE")
    edits: dict[str, str] = {}
    for item in args.values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise BadInput(f"{item!r}: write edits as parameter=value")
        if name in edits:
            raise BadInput(f"{name} is given twice: say its value once")
        edits[name] = value.strip()
    if args.decision != "edit" and edits:
        raise BadInput(f"parameter=value pairs go with edit only ({args.decision} takes the plan as it is)")
    if args.decision == "edit" and not edits:
        raise BadInput("edit needs at least one parameter=value")
    try:
        recorded = record_decision(
            session.root, args.plan, args.decision, edits, by=f"{getpass.getuser()}@{os.uname().nodename}", note=args.note
        )
    except DecisionError as err:
        raise BadInput(str(err)) from None
    change = describe_patch(recorded.decision.patch)
    if not conductor_alive(read_conductor_state(session)):
        print(visible(f"{args.plan}: {args.decision} recorded ({change}); the conductor is not running — "
                      "it applies when the session resumes", one_line=True))
        return EXIT_OK
    deadline = time.monotonic() + args.wait
    while True:
        outcome = decision_outcome(session.root, recorded.offset)
        if outcome:
            kind, details = outcome
            print(visible(f"{args.plan}: {kind} ({change}) {details}".rstrip(), one_line=True))
            return EXIT_OK if kind != "refused" else EXIT_BAD_INPUT
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    print(f"{args.plan}: {args.decision} recorded ({change}); the conductor has not acted on it yet")
    return EXIT_OK


def _list_pending(session) -> int:
    """`decide DIR`: the pending plans, one line each, with how to decide them."""
    import shlex

    from agents.approval import plan_age
    from engine.events import describe_change, latest_plans
    from engine.session import PLANS

    pending = [p for p in latest_plans(session.file(PLANS)).values() if p.status == "pending"]
    if not pending:
        print(f"no plan waits for a decision in {session.root}")
        return EXIT_OK
    print(f"{'plan':8s} {'age':>7s}  change — reason")
    for p in pending:
        change = describe_change(p.change)
        print(visible(f"{p.plan_id:8s} {plan_age(p):>7s}  {change} — {p.reason}", one_line=True))
    print(f"decide with: maestro-tui decide {shlex.quote(str(session.root))} PLAN approve|veto|edit PARAM=VALUE")
    return EXIT_OK


# ---------------------------------------------------------------- engine utilities


def _check_data(args: argparse.Namespace) -> int:
    """What a session would make of a file: its span, bar interval, gaps, and the windows and tests it supports."""
    from agents.session_start import plan_tests
    from engine import load_bars
    from engine.windows import NoWindow

    bars = load_bars(args.file)
    settings = _settings(args)
    when = lambda ms: time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))  # noqa: E731
    days = len(bars) * bars.interval_ms / 86_400_000
    print(visible(f"{args.file}: {len(bars)} bars of {bars.interval_ms // 60_000}m, {when(int(bars.ts[0]))} to "
                  f"{when(int(bars.ts[-1]))} UTC ({days:.1f} days), taker-buy volume: "
                  f"{'yes' if bars.taker_buy_volume is not None else 'no'}", one_line=True))
    missing = sum(g.missing_bars for g in bars.gaps)
    print(f"gaps: {len(bars.gaps)}" + (f" ({missing} bars missing in all; never bridged)" if bars.gaps else ""))
    for gap in bars.gaps[:20]:
        print(f"  gap before row {gap.row}: {gap.missing_bars} bars missing, {when(gap.after_ts)} to {when(gap.before_ts)}")
    if len(bars.gaps) > 20:
        print(f"  … and {len(bars.gaps) - 20} more")
    try:
        tests = plan_tests(len(bars), bars.interval_ms, args.file, settings)
    except NoWindow as err:
        raise BadInput(str(err)) from None
    print(f"walk-forward windows: {tests.windows} (15 days each, one every 2 days): a session of "
          f"{tests.asked_segments} segments × {tests.asked_tests} tests runs "
          f"{tests.segments} × {tests.tests}" + (" on reused windows" if tests.reuse else ""))
    if tests.note():
        print(tests.note())
    return EXIT_OK


def _check_strategy(args: argparse.Namespace) -> int:
    """Check every strategy FILE declares (or the one registered as NAME) on the bars a session on
    the same data and seed checks: one line per check; exit 2 with the failures on stderr."""
    from agents.session_start import data_source, load_source, named_strategies
    from engine.strategies import load_entry_points
    from engine.strategy_check import CHECK_BARS, check_strategy

    load_entry_points()
    strategies = named_strategies(args.file)
    settings = _settings(args)
    bars = load_source(data_source(settings))
    sample = bars.slice(0, min(len(bars), CHECK_BARS))
    when = lambda ms: time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))  # noqa: E731
    refusals = []
    for strategy in strategies:
        what = "built-in" if strategy.origin == "built-in" else strategy.origin
        print(visible(f"{strategy.name} ({what}) on {len(sample)} of the {len(bars)} bars of {bars.source}, "
                      f"{when(int(sample.ts[0]))} to {when(int(sample.ts[-1]))} UTC", one_line=True))
        verdict = check_strategy(strategy, sample, seed=settings.seed)
        for line in verdict.lines:
            print(visible(line, one_line=True))
        if verdict.refusal:
            refusals.append(verdict.refusal)
    for refusal in refusals:
        print(visible(f"maestro-tui: {refusal}", one_line=True), file=sys.stderr)
    return EXIT_BAD_INPUT if refusals else EXIT_OK


def _backtest(args: argparse.Namespace) -> int:
    from engine import Params, bars_needed, load_bars, registered, synthetic_bars, walk_forward_windows
    from engine.sweep import run_sweep, sweep_of

    if args.windows < 1:
        raise BadInput("--windows must be at least 1")
    bars = load_bars(args.data) if args.data else synthetic_bars(bars_needed(args.windows, 300_000), seed=args.seed)
    windows = walk_forward_windows(len(bars), bars.interval_ms)[: args.windows]
    if not windows:
        raise BadInput(f"{len(bars):,} bars hold no full 15-day walk-forward window")
    print(visible(f"{bars.source}: {len(bars):,} bars, {len(windows):,} walk-forward windows", one_line=True))
    # every method's default config in one sweep per window
    names = list(registered())
    sweep = sweep_of([Params(method=name) for name in names])
    swept = [run_sweep(bars.slice(w.start, w.end), sweep) for w in windows]
    results = {name: {phase: [s.by_phase(k)[phase] for s in swept] for phase in ("validation", "holdout")}
               for k, name in enumerate(names)}
    for line in backtest_table(results):
        print(line)
    return EXIT_OK


# (heading, width) of `backtest`'s columns, validation's then holdout's
_BACKTEST_COLUMNS = (("trades", 7), ("hit", 6), ("payoff", 7), ("pnl USD", 10), ("worst dd", 9), ("Sharpe", 7),
                     ("score", 6), ("trades", 7), ("pnl USD", 10))
_BACKTEST_LEGEND = (
    "validation: the days after each window's training, on which configs are ranked; holdout: each window's last "
    "days, never ranked on. trades and pnl USD: summed over the windows. hit: share of trades that won. payoff: "
    "mean win / mean loss. worst dd: the deepest drawdown of one window, USD. Sharpe: annualised, of per-bar "
    "returns. score: the 0-100 episode score. payoff, Sharpe and score: the mean over the windows."
)


def backtest_table(results: dict[str, dict[str, list]]) -> list[str]:
    """`backtest`'s table, one line per method, numbers with thousands separators, headed by
    the phase of each column group and followed by what each column is."""
    import textwrap

    import numpy as np

    widths = [w for _, w in _BACKTEST_COLUMNS]

    def row(first: str, cells: list[str]) -> str:
        return (f"{first:16s} " + " ".join(f"{c:>{w}s}" for c, w in zip(cells[:7], widths[:7])) + "  "
                + " ".join(f"{c:>{w}s}" for c, w in zip(cells[7:], widths[7:])))

    lines = [f"{'':16s} {' validation ':-^{sum(widths[:7]) + 6}}  {' holdout ':-^{sum(widths[7:]) + 1}}",
             row("method", [h for h, _ in _BACKTEST_COLUMNS])]
    for name, phases in results.items():
        val, hold = phases["validation"], phases["holdout"]
        trades = sum(m.n_trades for m in val)
        hit = sum(m.hit * m.n_trades for m in val) / trades if trades else 0.0
        cells = [f"{trades:,}", f"{hit:.3f}", f"{np.mean([m.payoff for m in val]):.2f}",
                 f"{sum(m.total_pnl for m in val):,.0f}", f"{min(m.maxdd for m in val):,.0f}",
                 f"{np.mean([m.sharpe for m in val]):.2f}", f"{np.mean([m.score for m in val]):.1f}",
                 f"{sum(m.n_trades for m in hold):,}", f"{sum(m.total_pnl for m in hold):,.0f}"]
        lines.append(visible(row(name, cells), one_line=True))
    lines += [""] + textwrap.wrap(_BACKTEST_LEGEND, width=100)
    return lines


if __name__ == "__main__":
    sys.exit(main())

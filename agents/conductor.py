"""The Maestro: the conductor process that runs a research session into its directory.

One loop, fed by one queue: test outcomes from the worker pool, "decisions.jsonl changed"
from a watchfiles thread, a tick each second (heartbeat, veto-only grace periods) and stop
signals. Nothing polls.

Reproducibility. Outcomes are processed in test order whatever order they finish in.
Test j is started once test j − W is processed (W = `pipeline_depth`), with the
parameters in force then; a patch decided while processing test k applies from test
k + W on (later, if a human took longer: from the first test not yet started). W does
not depend on the number of workers, so the same data, seed, settings and decisions give
the same files on one core, two, or a dask cluster.

Crash safety. The directory is the source of truth, and resuming replays it: complete
test folders are read back instead of re-run, every agent message, plan, status line and
audit record has a deterministic key and is written only if absent, decisions are re-read
and those already spent (audit.jsonl) are not applied again. So a conductor killed at any
moment resumes into the same files an uninterrupted run would have written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shlex
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.allocator import AllocationDesk, Record, ensemble_portfolio
from agents.baseline import Baseline, choose_baseline
from agents.trials import TrialMatrix
from agents.context import SegmentContext, Standing, segment_role
from agents.critic import Critic, OfflineCritic, proposal_params
from agents.documents import checked
from agents.llm import LLMClient, Meter, key_for
from agents.llm_agents import LLMCritic, LLMStrategist
from agents.messages import CriticMessage, MaestroMessage, StrategistMessage, one_line
from agents.report import SegmentTally, plan_after_segment, segment_results, write_reports
from agents.plans import Hold, PlanBook, PlanError, PlanRecord, checked_patch, new_nonce, outcome
from agents.rules import RULE_METRIC, Analyzer, Check, RuleFiring, episode_stats
from agents.notify import Notifier
from agents.settings import NotifySettings, Settings, load_settings
from agents.strategist import OfflineStrategist, Strategist
from engine.backtest import run_backtest
from engine.data import Bars, load_bars
from engine.events import SCHEMA_VERSION, DecisionEvent, PatchItem, PlanEvent, event_fields, latest_plans, read_events, utc_now_iso
from engine.executor import ConfigSpec, TestOutcome, TestRunner, TestTask, process_pool
from engine.jsonl import JsonlTail, JsonlWriter, SessionFileError, read_json, read_jsonl, write_json_atomic, write_text_atomic
from engine.leaderboard import (
    LeaderboardRow,
    config_id,
    config_label,
    params_json,
    rank_test_rows,
    StandingsBook,
    leaderboard_csv_text,
    read_leaderboard_csv,
)
from engine.methods import METHODS
from engine.metrics import EXIT_REASONS, PHASES, VOL_BINS
from engine.params import Params
from engine.session import (
    ALLOCATION,
    LLM_RECORDS,
    AUDIT,
    CONDUCTOR_LOG,
    CONFIG,
    CONVERSATION,
    DECISIONS,
    LEADERBOARD,
    PLANS,
    SCORES,
    SEGMENT_PLAN,
    SEGMENT_RESULTS,
    SUMMARY,
    TEST_LOG,
    TRADES,
    ConductorState,
    SessionDir,
    completed_tests,
    parse_test_id,
    process_start,
    test_id,
    this_host,
    write_conductor_state,
    write_test_dir,
)
from engine.synthetic import synthetic_bars
from engine.text import visible
from engine.windows import DAY_MS, NoWindow, TestPlan, Window, bars_needed, fit_tests, walk_forward_windows, window_need

log = logging.getLogger("maestro.conductor")

EXIT_DONE, EXIT_FAILED, EXIT_UNREADABLE, EXIT_STOPPED = 0, 1, 2, 130
PREFLIGHT_WINDOWS = 10

# Crash points for the crash-safety tests: MAESTRO_CRASH_AT=<name>[:<n>] makes the conductor
# kill itself with SIGKILL the n-th time (default 1st) it passes that point.
CRASH_ENV = "MAESTRO_CRASH_AT"
_crash_counts: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _crash_counts[name] = _crash_counts.get(name, 0) + 1
    if _crash_counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


class VisibleFormatter(logging.Formatter):
    """Log lines carry LLM text, reasons and notes: no control character reaches conductor.log raw."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record))


def _warm_portfolio_kernel() -> None:
    from engine.allocation import AllocationSettings, run_portfolio

    close = np.linspace(100.0, 101.0, 50)
    run_portfolio(close, np.zeros((1, 50)), ["warm-up"], np.ones(1), AllocationSettings(), 300_000, compare=False)


# ---------------------------------------------------------------- session creation


def data_source(settings: Settings) -> dict[str, Any]:
    """What session_config.json records about the bars: a file (with its SHA-256), or the synthetic generator."""
    if settings.data:
        path = Path(settings.data).resolve()
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return {"kind": "file", "path": str(path), "sha256": digest.hexdigest()}
    n = bars_needed(settings.segments * settings.tests, 300_000)
    return {"kind": "synthetic", "seed": settings.seed, "n_bars": n, "interval_ms": 300_000}


def load_source(source: dict[str, Any]) -> Bars:
    """The bars a session runs on (raises engine.DataError for bad files)."""
    if source["kind"] == "file":
        return load_bars(source["path"])
    return synthetic_bars(source["n_bars"], seed=source["seed"], interval_ms=source["interval_ms"])


def selection_view(results: dict[str, Any]) -> dict[str, Any]:
    """Segment results as the agents may see them: no holdout figure ever reaches a choice."""
    view = {k: v for k, v in results.items() if k not in ("standings", "overfitting")}
    view["chosen"] = {phase: m for phase, m in results["chosen"].items() if phase != "holdout"}
    return view


def plan_tests(n_bars: int, interval_ms: int, source: str, settings: Settings) -> TestPlan:
    """The session's tests fitted to the windows `n_bars` bars hold (NoWindow, with a one-line reason, when none)."""
    windows = len(walk_forward_windows(n_bars, interval_ms))
    if not windows:
        days = n_bars * interval_ms / DAY_MS
        raise NoWindow(f"{source}: {n_bars} bars ({days:.1f} days) hold no walk-forward window: one needs {window_need()}")
    return fit_tests(windows, settings.segments, settings.tests, settings.allow_reuse)


@dataclass(frozen=True)
class SessionStart:
    """What a new session is decided on before its folder exists: the data, its tests, its baseline."""

    data: dict[str, Any]
    tests: TestPlan
    baseline: Baseline


def session_start(settings: Settings) -> SessionStart:
    """Read the data and choose tests and baseline; DataError, NoWindow or ValueError (one line) on bad input."""
    data = data_source(settings)
    if data["kind"] == "file":
        bars = load_source(data)
        tests = plan_tests(len(bars), bars.interval_ms, settings.data or data["path"], settings)
    else:
        tests = plan_tests(data["n_bars"], data["interval_ms"], "synthetic data", settings)
    base = choose_baseline(Path(settings.sessions_dir), data, settings.baseline, settings.baseline_min_dsr)
    return SessionStart(data, tests, base)


def new_session_config(session: SessionDir, settings: Settings, approval: str,
                       start: SessionStart | None = None) -> dict[str, Any]:
    """session_config.json for a new session: the values it actually runs with (no API keys).

    `settings.segments` and `settings.tests` are what the session runs (fitted to the data);
    `windows` keeps what was asked and how many windows the data holds.
    """
    start = start or session_start(settings)
    values = settings.model_dump(mode="json")
    values.pop("notify")  # hook addresses can hold tokens (a Slack URL does): read from the settings at run time
    values["approval"] = approval
    values["workers"] = settings.effective_workers()
    values["segments"], values["tests"] = start.tests.segments, start.tests.tests
    return checked(CONFIG, {
        "v": SCHEMA_VERSION,
        "session_id": session.session_id,
        "created_at": utc_now_iso(),
        "settings": values,
        "data": start.data,
        "windows": start.tests.to_json(),
        "base_params": start.baseline.params.model_dump(),
        "base_origin": start.baseline.origin,
        "baseline": start.baseline.to_json(),
        # which provider plays each role (resolved now: a resume keeps them); never a key
        "agents": {role: settings.provider_for(role) for role in ("strategist", "critic")},
    })


def build_agents(config: dict[str, Any], settings: Settings, session: SessionDir,
                 on_note: Callable[[str], None], http_client: Any = None) -> tuple[Strategist, Critic, Meter]:
    """The Strategist and the Critic the session config names, sharing one budget meter."""
    meter = Meter(settings.llm)
    record = session.file(LLM_RECORDS) if settings.record_llm else None
    made: dict[str, Any] = {}
    for role in ("strategist", "critic"):
        provider = config.get("agents", {}).get(role, "offline")
        if provider not in ("anthropic", "openai"):
            made[role] = OfflineStrategist() if role == "strategist" else OfflineCritic()
            continue
        llm = settings.llm
        model = getattr(settings, role).model
        if model:
            llm = llm.model_copy(update={f"{provider}_model": model})
        client = LLMClient(provider, llm, meter, http_client=http_client, record_to=record)
        agent = (LLMStrategist if role == "strategist" else LLMCritic)(client, on_note=on_note)
        if not key_for(provider) and http_client is None:
            agent.offline_reason = f"no {provider.upper()}_API_KEY"
        made[role] = agent
    return made["strategist"], made["critic"], meter


def _notify_settings() -> NotifySettings:
    """The [notify] hooks of the settings in force now (never stored in the session: they may hold tokens)."""
    try:
        return load_settings().notify
    except ValueError as err:  # the CLI checked the settings when the session started; they changed since
        log.warning("notifications off: the settings do not load: %s", str(err).splitlines()[0])
        return NotifySettings()


# ---------------------------------------------------------------- the conductor


@dataclass
class Patch:
    """An applied change: which segment, from which test (global index) on, the items."""

    segment: int
    from_index: int
    items: list[PatchItem]
    plan_id: str
    who: str


@dataclass
class SegmentState:
    """The segment being run: its configs, patches, tallies and leaderboard rows."""

    number: int
    role: str
    research: Params  # the research config as chosen (patches come on top)
    ensemble: list[Params]
    baselines: list[Params]
    plan: dict[str, Any]
    patches: list[Patch] = field(default_factory=list)
    tally: SegmentTally = field(default_factory=SegmentTally)
    rows: list[LeaderboardRow] = field(default_factory=list)


class Conductor:
    """Runs (or resumes) one session; `run()` returns the exit code."""

    def __init__(
        self,
        session: SessionDir,
        *,
        echo: Callable[[str], None] = print,
        strategist: Strategist | None = None,
        critic: Critic | None = None,
        http_client: Any = None,
    ) -> None:
        self.session = session
        self.config = read_json(session.file(CONFIG))
        self.settings = Settings.model_validate(self.config["settings"])
        self.approval: str = self.config["settings"]["approval"]
        self.echo = echo
        self.sid = session.session_id
        self.notes = 0
        built_s, built_c, self.meter = build_agents(self.config, self.settings, session, self._note, http_client)
        self.strategist: Strategist = strategist or built_s
        self.critic: Critic = critic or built_c
        self.pid_start = process_start(os.getpid())  # with the pid, names this process and no later one
        self.notifier = Notifier(_notify_settings(), session_id=self.sid, session_dir=session.root)
        self.budget_told = False
        self.W = self.settings.pipeline_depth
        self.T = self.settings.tests
        self.S = self.settings.segments
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = False
        self.paused = False  # SIGUSR1 toggles: no new test starts while paused
        self.started = time.time()
        self.book = PlanBook()
        self.analyzer = Analyzer(self.settings.rules)
        self.patches: list[Patch] = []
        self.plan_seq = 0
        self.tests_done = 0
        self.tests_failed = 0
        self.waiting_for: str | None = None
        self.seg: SegmentState | None = None
        self.ranking = StandingsBook()  # session standings, one test at a time
        self.written: dict[str, set[str]] = {CONVERSATION: set(), PLANS: set(), AUDIT: set()}
        self.desk = AllocationDesk(list(METHODS), self.settings.allocation, self.sid)
        self.allocation_seq = 0  # allocation.jsonl is one deterministic stream: resume skips by count
        self.allocation_existing = 0
        self.refused_offsets: set[int] = set()  # byte offsets in decisions.jsonl of decisions refused
        self.spent_offsets: set[int] = set()  # ... and of decisions that spent a nonce
        self.next_unstarted = 0  # global index of the first test not yet started
        self.audited: list[dict[str, Any]] = []  # decisions audited before a restart: their effects are completed
        self._state_lock = threading.Lock()

    # ------------------------------------------------------------ infrastructure

    def _test_plan(self) -> TestPlan:
        """The tests on the windows, as the session config fixed them (older sessions: reused in turn)."""
        if "windows" in self.config:
            plan = TestPlan.from_json(self.config["windows"])
            if plan.windows != len(self.windows):
                raise SessionFileError(self.session.file(CONFIG), f"the data now holds {len(self.windows)} windows, "
                                       f"not the {plan.windows} the session was planned on: was the file changed?")
            return plan
        return TestPlan(len(self.windows), self.S, self.T, self.S, self.T, len(self.windows) < self.S * self.T)

    def _reused_in(self, segment: int) -> int:
        """How many of a segment's tests run on a window an earlier test ran on."""
        return sum(self.plan.reused(self._g(segment, t)) for t in range(1, self.T + 1))

    def _window(self, g: int) -> Window:
        return self.windows[self.plan.window_of(g)]

    def _g(self, segment: int, test: int) -> int:
        return (segment - 1) * self.T + (test - 1)

    def _test_of(self, g: int) -> str:
        return test_id(g // self.T + 1, g % self.T + 1)

    def _write_state(self, state: str = "running", error: str | None = None) -> None:
        """Rewrite conductor.json; SessionWriteError when the OS refuses, except for `failed`.

        The last word (finished, stopped, failed) survives a full disk by an in-place write
        (`write_conductor_state`). `failed` never raises: the session is failing already, and
        its reason must still reach the screen; if even the in-place write is refused, the
        file keeps its previous state and the log (if it can) says why.
        """
        with self._state_lock:
            record = ConductorState(
                session_id=self.sid,
                pid=os.getpid(),
                pid_start=self.pid_start,
                host=this_host(),
                state=state,  # type: ignore[arg-type]
                waiting_for=self.waiting_for,
                heartbeat=utc_now_iso(),
                started_at=self.config["created_at"],
                segment=self.seg.number if self.seg else 0,
                segments=self.S,
                tests_done=self.tests_done,
                tests_total=self.S * self.T,
                tests_failed=self.tests_failed,
                approval=self.approval,
                providers={"strategist": self.strategist.provider, "critic": self.critic.provider},
                pending_plans=len(self.book.pending()),
                llm=self.meter.summary(),
                error=error,
            )
            last_word = state in ("finished", "stopped", "failed")
            try:
                write_conductor_state(self.session, record, last_word=last_word)
            except OSError as err:
                if state != "failed":
                    raise
                from engine.jsonl import os_error_line

                log.error("conductor.json not updated to failed: %s", os_error_line(err))

    def _append(self, name: str, key: str, record: dict[str, Any] | Any) -> bool:
        """Append a record unless one with `key` was written before (resume); True if written."""
        if key in self.written[name]:
            return False
        self.written[name].add(key)
        self.writers[name].append(record)
        return True

    def _load_written(self) -> None:
        """Keys of the records already in the session's files, the plan book and the patch timeline."""
        for rec in read_events(self.session.file(CONVERSATION)).records:
            self.written[CONVERSATION].add(f"{rec['segment']}:{rec['turn']}:{rec['agent']}:{rec['message'].get('ref', '')}")
        for rec in read_jsonl(self.session.file(PLANS), PlanEvent).records:
            self.written[PLANS].add(f"{rec.plan_id}:{'outcome' if rec.outcome is not None else rec.status}")
        for plan_id, rec in latest_plans(self.session.file(PLANS)).items():
            seg, t = parse_test_id(rec.test_id or "seg1_test001")
            self.book.plans[plan_id] = PlanRecord(rec, seg, self._g(seg, t))
        self.allocation_existing = len(read_events(self.session.file(ALLOCATION)).records)
        for rec in read_events(self.session.file(AUDIT)).records:
            try:
                self._load_audited(rec)
            except (KeyError, TypeError, ValueError) as err:  # valid as an event, not as what its action needs
                log.warning("audit.jsonl: a %s record skipped: %s %s", rec.get("action"), type(err).__name__, err)

    def _load_audited(self, rec: dict[str, Any]) -> None:
        """What one audit record of an earlier run tells: spent nonces and offsets, patches, vetoes."""
        d = rec["details"]
        if rec["action"] == "patch_applied":  # checked before anything is taken from it
            patch = Patch(int(d["segment"]), int(d["from_index"]), [PatchItem(**p) for p in d["patch"]],
                          str(rec["plan_id"]), rec["who"])
        self.written[AUDIT].add(self._audit_key(rec))
        if rec.get("nonce") and rec["action"] in ("patch_applied", "plan_vetoed"):
            self.book.spent.add(rec["nonce"])
            if "decision_offset" in d:
                self.spent_offsets.add(d["decision_offset"])
        if rec["action"] == "patch_applied":
            self.patches.append(patch)
        if rec["action"] == "decision_refused" and "decision_offset" in d:
            self.refused_offsets.add(d["decision_offset"])
        if rec["action"] == "plan_vetoed" and rec.get("plan_id") in self.book.plans:
            self.book.remember_veto(self.book.plans[rec["plan_id"]], int(d.get("from_index", 0)), int(d.get("at_index", -1)))
        if rec["action"] in ("patch_applied", "plan_vetoed"):
            self.audited.append(rec)

    @staticmethod
    def _audit_key(rec: dict[str, Any]) -> str:
        d = rec.get("details", {})
        if rec["action"] == "allocation_decision":  # its nonce is fresh on every replay
            return f"allocation:{d.get('at')}:{d.get('strategy')}"
        return f"{rec['action']}:{rec.get('plan_id')}:{rec.get('nonce')}:{d.get('decision_offset', '')}:{d.get('test', '')}"

    def _audit(self, action: str, who: str, why: str, plan_id: str | None = None, nonce: str | None = None,
               **details: Any) -> dict[str, Any]:
        rec = {
            **event_fields("audit", self.sid),
            "action": action, "plan_id": plan_id, "nonce": nonce, "who": who, "why": why, "details": details,
        }
        self._append(AUDIT, self._audit_key(rec), rec)
        log.info("audit %s %s %s: %s", action, plan_id or "", nonce or "", why)
        return rec

    def _say(self, segment: int, turn: int, provider: str, message: Any, ref: str = "") -> None:
        """Append an agent message to conversation.jsonl (once per segment, turn, agent and ref)."""
        body = message.model_dump()
        if ref:
            body["ref"] = ref
        rec = {
            **event_fields("message", self.sid),
            "agent": body["agente"], "provider": provider, "segment": segment, "turn": turn,
            "message": body, "text": one_line(message),
        }
        self._append(CONVERSATION, f"{segment}:{turn}:{body['agente']}:{ref}", rec)

    def _note(self, text: str) -> None:
        """An LLM turn fell back to the offline agent, or a role went offline: say so in the conversation."""
        self.notes += 1
        if self.meter.spent and not self.budget_told:
            self.budget_told = True
            self.notifier.send("llm_budget_spent", **self.meter.summary(), detail=text)
        segment = self.seg.number if self.seg else 1
        self._say(segment, 1000 + self.notes, "maestro",
                  MaestroMessage(turno=5, acao="offline fallback", detalhes=text, status="recorded"), ref=f"note{self.notes}")

    def _watch_decisions(self, stop: threading.Event) -> None:
        import watchfiles

        target = str(self.session.file(DECISIONS))
        for _changes in watchfiles.watch(
            self.session.root, stop_event=stop, watch_filter=lambda _c, path: path == target,
            debounce=50, step=20, yield_on_timeout=False, rust_timeout=1000,
        ):
            self.events.put(("decisions", None))

    def _ticker(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            self.events.put(("tick", None))

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.events.put(("stop", signum))

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        """Run or resume the session to its end; 0 done, 1 failed, 130 stopped by a signal."""
        handler = logging.FileHandler(self.session.file(CONDUCTOR_LOG), encoding="utf-8")
        handler.setFormatter(VisibleFormatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger("maestro").addHandler(handler)
        logging.getLogger("maestro").setLevel(logging.INFO)
        stop_threads = threading.Event()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, lambda *_: self.events.put(("pause", None)))
        self.runner: TestRunner | None = None
        code = EXIT_FAILED
        try:
            self._write_state("starting")
            self._load_written()
            self.writers = {name: JsonlWriter(self.session.file(name)) for name in (CONVERSATION, PLANS, AUDIT, ALLOCATION)}
            for rec in self.audited:  # a crash between a decision's audit record and its effects: finish them
                self._carry_out(rec)
            self.decisions = JsonlTail(self.session.file(DECISIONS), DecisionEvent, index=True)
            self.bars = load_source(self.config["data"])
            self.windows = walk_forward_windows(len(self.bars), self.bars.interval_ms)
            if not self.windows:
                raise RuntimeError(f"{len(self.bars)} bars hold no full 15-day walk-forward window")
            self.plan = self._test_plan()
            self.trials = TrialMatrix(self.bars, self.settings.episode_bars, self.settings.blunder_bars)
            if self.plan.note():
                log.warning("%s", self.plan.note())
            self._say(1, 0, "maestro", MaestroMessage(
                turno=0, acao="session start",
                detalhes={"baseline": self.config["base_origin"], "windows": self.plan.summary()},
                status="reusing windows" if self.plan.reused_tests else "windows fitted" if self.plan.fitted else "ready",
            ))
            threads = [
                threading.Thread(target=self._watch_decisions, args=(stop_threads,), daemon=True, name="decisions"),
                threading.Thread(target=self._ticker, args=(stop_threads,), daemon=True, name="ticker"),
            ]
            for t in threads:
                t.start()
            self.runner = TestRunner(self._make_executor, lambda o: self.events.put(("outcome", o)))
            # compile the portfolio kernel (segment 5) while the worker pool compiles its own
            threading.Thread(target=_warm_portfolio_kernel, name="warm-up", daemon=True).start()
            self._write_state("running")
            for segment in range(1, self.S + 1):
                self._run_segment(segment)
                if self.stopping:
                    break
            if self.stopping:
                self._write_state("stopped")
                code = EXIT_STOPPED
            else:
                self._expire_undecided()
                crash_point("summary")
                write_reports(self.session, self.S)
                self._write_state("finished")
                self.notifier.send("session_finished", state="finished", summary=str(self.session.file(SUMMARY)),
                                   tests_done=self.tests_done, tests_failed=self.tests_failed)
                code = EXIT_DONE
        except SessionFileError as err:
            # a file the session cannot go on without is damaged: one line, and the session is
            # left as it was (interrupted, resumable once the file is repaired), never `failed`
            import sys

            log.error("cannot go on: %s\n%s", err, traceback.format_exc())
            print(visible(f"maestro-tui: cannot resume: {err} (the session was left as it was)", one_line=True),
                  file=sys.stderr)
            code = EXIT_UNREADABLE
        except Exception as err:  # noqa: BLE001 - the session failed: say so in conductor.json and the log
            import sys

            from engine.jsonl import os_error_line

            # A refused write (disk full, read-only) is said as its path and the OS reason;
            # `run --resume` continues once the cause is gone.
            shown = os_error_line(err) if isinstance(err, OSError) else str(err)
            reason = shown if isinstance(err, OSError) else f"{type(err).__name__}: {err}"
            log.error("session failed: %s\n%s", reason, traceback.format_exc())  # on a full disk it may not land
            self._write_state("failed", error=reason)
            self.notifier.send("session_failed", state="failed", error=reason,
                               log=str(self.session.file(CONDUCTOR_LOG)))
            # stderr, one line: the traceback is for the log, never the screen
            print(visible(f"maestro-tui: session failed: {shown} (details in {self.session.file(CONDUCTOR_LOG)})",
                          one_line=True), file=sys.stderr)
            code = EXIT_FAILED
        finally:
            stop_threads.set()
            if self.runner is not None:
                self.runner.shutdown(cancel=True)
            if getattr(self, "_dask_client", None) is not None:
                self._dask_client.close()
            for name, writer in getattr(self, "writers", {}).items():
                writer.close()
            for s, h in previous.items():
                signal.signal(s, h)
            self.notifier.close()  # the last word (finished, failed) gets its hooks' time, no more
            logging.getLogger("maestro").removeHandler(handler)
            try:
                handler.close()  # flushes: a full disk refuses the last lines, and that is all
            except OSError:
                pass
        return code

    def _make_executor(self):
        if self.settings.dask:
            from distributed import Client

            self._dask_client = getattr(self, "_dask_client", None) or Client(self.settings.dask)
            return self._dask_client.get_executor()
        return process_pool(self.settings.effective_workers())

    # ------------------------------------------------------------ segments

    def _standings(self):
        """The session standings so far (the book ranks again only after a new test)."""
        return self.ranking.table()

    def _context(self, segment: int, base: Params) -> SegmentContext:
        ranked = self._standings()
        stand = [
            Standing(s.config_id, s.label, Params.model_validate_json(s.params_json), s.tests, s.val_trades,
                     s.val_hit, s.val_payoff, s.val_pnl, s.val_score, s.deflated_sharpe)
            for s in ranked[:5]
        ]
        return SegmentContext(
            segment=segment, segments=self.S, role=segment_role(segment), base=base,
            targets=self.settings.targets, seed=self.settings.seed, standings=stand,
            preflight=self._preflight(segment),
        )

    def _preflight(self, segment: int) -> Callable[[Params], float | None]:
        """A config's mean validation score on the windows just before the segment's (seen already)."""
        first = self.plan.window_of(self._g(segment, 1))
        past = self.windows[max(0, first - PREFLIGHT_WINDOWS):first] if segment > 1 else []

        def score(params: Params) -> float | None:
            if not past:
                return None
            values = []
            for w in past:
                r = run_backtest(self.bars.slice(w.start, w.end), params, train_end=w.train_bars,
                                 validation_end=w.train_bars + w.validation_bars,
                                 episode_bars=self.settings.episode_bars, blunder_bars=self.settings.blunder_bars)
                values.append(r.metrics("validation").score)
            return float(np.mean(values))

        return score

    def _current_research(self) -> Params:
        """The research config with every patch applied so far (what the next test would use)."""
        assert self.seg is not None
        return self._apply(self.seg.research, [p for p in self.patches if p.segment == self.seg.number])

    @staticmethod
    def _apply(params: Params, patches: list[Patch]) -> Params:
        for p in patches:
            params = params.with_changes(**{i.parameter: i.new_value for i in p.items})
        return params

    def _params_for(self, g: int) -> Params:
        assert self.seg is not None
        return self._apply(self.seg.research, [p for p in self.patches if p.segment == self.seg.number and p.from_index <= g])

    def _carried_base(self, segment: int) -> Params:
        """What the next segment starts from: the previous research config with all its patches."""
        if segment == 1:
            return Params.model_validate(self.config["base_params"])
        prev = read_json(self.session.segment_dir(segment - 1) / SEGMENT_PLAN)
        research = Params.model_validate_json(prev["research_params_json"])
        return self._apply(research, [p for p in self.patches if p.segment == segment - 1])

    def _segment_start(self, segment: int) -> SegmentState:
        path = self.session.segment_dir(segment) / SEGMENT_PLAN
        base = self._carried_base(segment)
        ctx = self._context(segment, base)
        if path.exists():  # resuming: the agents already spoke; reuse what they said
            plan = read_json(path)
            try:
                checked(SEGMENT_PLAN, plan)
            except ValueError as err:
                raise SessionFileError(path, f"not a segment plan: {str(err).splitlines()[0]}") from None
        else:
            proposals = self.strategist.propose(ctx)
            choice = self.critic.choose(ctx, proposals)
            candidates = proposal_params(base, proposals)
            chosen = [candidates[i] for i in choice.chosen]
            plan = {
                "segment": segment,
                "role": ctx.role,
                "base_params_json": params_json(base),
                "proposals": proposals.model_dump(),
                "critic": choice.message.model_dump(),
                "chosen": [{"index": i, "name": proposals.proposta[i].nome, "config_id": config_id(candidates[i]),
                            "label": config_label(candidates[i]), "params": candidates[i].model_dump()}
                           for i in choice.chosen],
                "research_params_json": params_json(chosen[0]),
                "ensemble_params_json": [params_json(p) for p in chosen[1:]],
                "targets": self.settings.targets.model_dump(),
                "tests_planned": [
                    {"test_id": test_id(segment, t), "window": self.plan.window_of(self._g(segment, t)),
                     "reused": self.plan.reused(self._g(segment, t))}
                    for t in range(1, self.T + 1)
                ],
            }
            self.session.segment_dir(segment).mkdir(parents=True, exist_ok=True)
            write_json_atomic(path, checked(SEGMENT_PLAN, plan))
        crash_point("segment_start")
        self._say(segment, 0, self.strategist.provider, StrategistMessage.model_validate(plan["proposals"]))
        self._say(segment, 1, self.critic.provider, CriticMessage.model_validate(plan["critic"]))
        reused = self._reused_in(segment)
        if reused:
            what = ("cannot validate on unseen windows: the data has none left" if ctx.role == "validate"
                    else "runs on windows earlier tests saw")
            self._say(segment, 0, "maestro", MaestroMessage(
                turno=0, acao=f"segment {segment} {what}",
                detalhes=f"{reused} of its {self.T} tests reuse a window: their results are not independent evidence",
                status="windows reused"))
        research = Params.model_validate_json(plan["research_params_json"])
        ensemble = [Params.model_validate_json(j) for j in plan["ensemble_params_json"]]
        baselines = [Params(method=m) for m in METHODS]
        for p in proposal_params(Params.model_validate_json(plan["base_params_json"]),
                                 StrategistMessage.model_validate(plan["proposals"])):
            self.trials.tried(p)  # chosen or not: the Critic chose among them
        return SegmentState(segment, plan["role"], research, ensemble, baselines, plan)

    def _run_segment(self, segment: int) -> None:
        self.seg = self._segment_start(segment)
        self.analyzer.reset()
        self._write_state("running")
        done = completed_tests(self.session, segment)
        processed = 0
        next_t = 1
        waiting: dict[int, TestOutcome] = {}
        in_flight: set[int] = set()
        self._read_decisions()  # any that arrived while nobody watched
        while processed < self.T:
            if processed + 1 in done:  # resuming: read back instead of re-running
                self._absorb_from_disk(segment, processed + 1)
                processed += 1
                next_t = max(next_t, processed + 1)
                continue
            if processed + 1 in waiting:
                self._absorb_outcome(waiting.pop(processed + 1))
                processed += 1
                continue
            if self.stopping and not in_flight:
                return
            while (not self.stopping and next_t <= self.T and next_t <= processed + self.W
                   and self._may_start(self._g(segment, next_t))):
                if next_t not in done:
                    self._start(segment, next_t)
                    in_flight.add(next_t)
                next_t += 1
            self.next_unstarted = self._g(segment, next_t)
            self._update_waiting(segment, next_t)
            self._grace_expiries()  # not only on the tick: a short grace must not wait for the next second
            kind, payload = self.events.get()
            if kind == "outcome":
                in_flight.discard(payload.test)
                waiting[payload.test] = payload
            else:
                self._handle(kind, payload)
        if segment < self.S:
            self._await_decisions(segment)
        if not self.stopping:
            self._segment_end(segment)

    def _await_decisions(self, segment: int) -> None:
        """Manual mode: the segment's pending plans are decided before the next segment starts from its config.

        A plan is evidence about this segment's research config; the next segment starts from
        that config with its applied patches, so its plans are settled first. (The last
        segment's are left to expire: no test would run with them.)
        """
        while self.approval == "manual" and not self.stopping:
            pending = [r for r in self.book.pending() if r.segment <= segment]
            if not pending:
                break
            what = f"decision on plan {', '.join(r.event.plan_id for r in pending)}"
            if what != self.waiting_for:
                self.waiting_for = what
                self._write_state("paused" if self.paused else "waiting")
            self._handle(*self.events.get())
        if self.waiting_for is not None:
            self.waiting_for = None
            self._write_state("running")

    def _may_start(self, g: int) -> bool:
        if self.paused:
            return False
        if self.approval != "manual":
            return True
        # a pending plan holds back every test that would start after its effect point
        return not any(r.emit_index <= g - self.W or r.segment < self.seg.number for r in self.book.pending())  # type: ignore[union-attr]

    def _update_waiting(self, segment: int, next_t: int) -> None:
        blocked = next_t <= self.T and not self._may_start(self._g(segment, next_t)) and not self.stopping
        pending = self.book.pending()
        what = f"decision on plan {', '.join(r.event.plan_id for r in pending)}" if blocked and pending else None
        if what != self.waiting_for:
            self.waiting_for = what
            self._write_state("paused" if self.paused else ("waiting" if what else "running"))

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "decisions":
            self._read_decisions()
        elif kind == "tick":
            self._grace_expiries()
            self._write_state("paused" if self.paused else ("waiting" if self.waiting_for else "running"))
        elif kind == "pause":
            self.paused = not self.paused
            log.info("%s starting new tests", "paused" if self.paused else "resumed")
            self._write_state("paused" if self.paused else ("waiting" if self.waiting_for else "running"))
        elif kind == "stop":
            log.info("signal %s: stopping after the tests already running", payload)
            self.stopping = True

    def _start(self, segment: int, t: int) -> None:
        assert self.seg is not None and self.runner is not None
        g = self._g(segment, t)
        w = self._window(g)
        research = self._params_for(g)
        role = "ensemble" if self.seg.role == "ensemble" else "chosen"
        configs = [research, *self.seg.ensemble, *self.seg.baselines]
        roles = [role] + ["ensemble"] * len(self.seg.ensemble) + ["baseline"] * len(self.seg.baselines)
        specs = tuple(ConfigSpec(config_id(p), r, params_json(p)) for p, r in zip(configs, roles))
        self.runner.submit(
            TestTask(
                test_id(segment, t), segment, t, w.index, self.bars.slice(w.start, w.end),
                w.train_bars, w.train_bars + w.validation_bars, specs,
                self.settings.episode_bars, self.settings.blunder_bars,
            )
        )

    def _segment_end(self, segment: int) -> None:
        assert self.seg is not None
        seg = self.seg
        patches = [
            {"plan_id": p.plan_id, "from_test": self._test_of(p.from_index), "who": p.who,
             "change": PlanEvent.change_from_patch(p.items)}
            for p in self.patches if p.segment == segment
        ]
        results = segment_results(segment, seg.role, seg.tally, seg.rows, seg.plan, patches, self.settings.targets)
        first = self._window(self._g(segment, 1))
        last = self._window(self._g(segment, self.T))
        if seg.role == "ensemble":
            results["ensemble_portfolio"], records = self._ensemble(first, last)
            self._write_records(records)
        self._write_records(self.desk.segment_end(segment, self._iso(last.validation_end - 1)))
        results["reused_tests"] = self._reused_in(segment)
        took = time.perf_counter()
        results["overfitting"] = over = self.trials.figures()
        log.info("overfitting: %d trials over %d tests, PBO %s, in %.2f s", over["trials"], over["tests"], over["pbo"],
                 time.perf_counter() - took)
        write_json_atomic(self.session.segment_dir(segment) / SEGMENT_RESULTS, checked(SEGMENT_RESULTS, results))
        ctx = self._context(segment, self._current_research())
        self._say(segment, 2, self.critic.provider, self.critic.judge(ctx, selection_view(results)))
        v = results["chosen"]["validation"]
        self._say(
            segment, 3, "maestro",
            MaestroMessage(
                turno=3, acao=f"segment {segment} done",
                detalhes={"tests": results["tests"], "failed": results["tests_failed"], "patches": len(patches),
                          **({"reused windows": results["reused_tests"]} if results["reused_tests"] else {})},
                metricas_pos_patch={**{k: round(v[k], 4) for k in ("hit", "payoff", "total_pnl", "maxdd")},
                                    "configs_tried": over["trials"], "pbo": over["pbo"]},
                status="next segment" if segment < self.S else "session done",
            ),
        )
        if segment in (2, 4) and segment < self.S:
            write_text_atomic(self.session.plan_after(segment), plan_after_segment(self.session, segment, self.S))
        pending = len(self.book.pending())
        failed = f" ({results['tests_failed']} failed)" if results["tests_failed"] else ""
        failed += f" ({results['reused_tests']} on reused windows)" if results["reused_tests"] else ""
        self.echo(
            f"segment {segment}/{self.S} ({seg.role}): {results['tests'] - results['tests_failed']}/{self.T} tests{failed}, "
            f"{v['n_trades']} validation trades, hit {v['hit']:.3f}, payoff {v['payoff']:.2f}, "
            f"pnl {v['total_pnl']:,.0f} USD, plans applied {len(patches)}, pending {pending}"
        )

    def _ensemble(self, first: Window, last: Window) -> tuple[dict[str, Any], list[Record]]:
        """The best configs so far as one portfolio over the segment's bars, under the controller."""
        assert self.seg is not None
        members = [self._current_research(), *self.seg.ensemble]
        for s in self._standings():
            if len(members) >= 5:
                break
            p = Params.model_validate_json(s.params_json)
            if params_json(p) not in {params_json(m) for m in members}:
                members.append(p)
        start, end = first.start, max(last.end, first.end)
        return ensemble_portfolio(self.bars, start, end, first.train_bars, members, self.settings.allocation,
                                  self.sid, lambda bar: self._iso(bar))

    # ------------------------------------------------------------ one test's results

    def _absorb_outcome(self, outcome: TestOutcome) -> None:
        """Write a finished test's folder, then account for it (in test order)."""
        assert self.seg is not None
        seg, t = outcome.segment, outcome.test
        g = self._g(seg, t)
        w = self._window(g)
        tid = test_id(seg, t)
        if outcome.ok:
            trades = self._trade_records(outcome, w, tid)
            scores = self._score_records(outcome, tid)
            rows = rank_test_rows(outcome.rows)
        else:
            trades, scores, rows = [], [], []
        files = {
            TRADES: "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in trades),
            SCORES: "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in scores),
            TEST_LOG: self._test_log(outcome, w, rows),
            LEADERBOARD: leaderboard_csv_text(rows),  # inside the folder's atomic rename, like the rest
        }
        write_test_dir(self.session, seg, t, files)
        crash_point("after_test")
        if not outcome.ok:
            self._audit("test_failed", "maestro", outcome.error.splitlines()[0] if outcome.error else "failed",
                        test=tid, attempts=outcome.attempts)
        self._account(seg, t, trades, scores, rows, outcome.ok)

    def _absorb_from_disk(self, seg: int, t: int) -> None:
        folder = self.session.test_dir(seg, t)
        trades = read_events(folder / TRADES).records
        scores = read_events(folder / SCORES).records
        rows = read_leaderboard_csv(folder / LEADERBOARD)
        ok = bool(rows)
        self._account(seg, t, trades, scores, rows, ok)

    def _account(self, seg: int, t: int, trades: list, scores: list, rows: list[LeaderboardRow], ok: bool) -> None:
        """Tallies, leaderboard and the analyzer; the same whether the test ran now or before a crash."""
        assert self.seg is not None
        g = self._g(seg, t)
        research = next((r for r in rows if r.role in ("chosen", "ensemble") and r.params_json == params_json(self._params_for(g))), None)
        self.seg.tally.add_test(trades, research if ok else None, self.settings.blunder_bars)
        self.seg.rows.extend(rows)
        self.ranking.add(rows)
        self.tests_done += 1
        if not ok:
            self.tests_failed += 1
            return
        w = self._window(g)
        self.trials.tested(w, rows)
        self._write_records(self.desk.after_test(test_id(seg, t), rows, self._iso(w.validation_end - 1)))
        if g < self._muted_until(seg, g):
            return  # these tests started before the latest plan could change anything: stale evidence
        stats = episode_stats(g, trades, scores, self.settings.blunder_bars)
        check = self.analyzer.feed(stats, self._current_research())
        if check is not None:
            self._on_check(check, seg, t, g)

    def _iso(self, bar: int) -> str:
        """Market time of a bar (its open), ISO UTC."""
        return str(np.datetime_as_string(self.bars.ts[bar].astype("datetime64[ms]"), unit="ms")) + "Z"

    def _write_records(self, records: list[Record]) -> None:
        for rec in records:
            if rec.file == ALLOCATION:
                self.allocation_seq += 1
                if self.allocation_seq > self.allocation_existing:
                    self.writers[ALLOCATION].append(rec.body)
            else:
                self._append(AUDIT, rec.key, rec.body)

    def _muted_until(self, seg: int, g: int) -> int:
        """First test whose results count for the rules again after the plans emitted before test g.

        Positional, not timed, so a replay feeds the analyzer exactly as the original run did:
        a plan's evidence is spent at emission; the tests already in flight then (up to W − 1
        after it) and, when it applied, the tests before its patch took effect do not count.
        """
        until = 0
        for r in self.book.plans.values():
            if r.segment == seg and r.emit_index < g:
                until = max(until, r.emit_index + self.W)
        for p in self.patches:
            plan = self.book.plans.get(p.plan_id)
            if p.segment == seg and plan is not None and plan.emit_index < g:
                until = max(until, p.from_index)
        return until

    def _trade_records(self, outcome: TestOutcome, w: Window, tid: str) -> list[dict[str, Any]]:
        tr = outcome.trades
        if len(tr) == 0:
            return []
        ts = self.bars.ts
        iso = lambda idx: (np.datetime_as_string((ts[w.start + idx]).astype("datetime64[ms]"), unit="ms")).tolist()  # noqa: E731
        exit_ts, entry_ts = iso(tr["exit_idx"]), iso(tr["entry_idx"])
        method = outcome.rows[0].method
        head = event_fields("trade", self.sid)
        tf = f"{self.bars.interval_ms // 60_000}m"
        out = []
        for k, (side, entry, exit_, qty, fees, pnl, held, reason, vbin, phase, ep, gc, gi, ga, gv) in enumerate(zip(
            tr["side"].tolist(), tr["entry"].tolist(), tr["exit"].tolist(), tr["qty"].tolist(), tr["fees"].tolist(),
            tr["pnl"].tolist(), tr["bars_held"].tolist(), tr["exit_reason"].tolist(), tr["vol_bin"].tolist(),
            tr["phase"].tolist(), tr["episode"].tolist(), tr["gate_cvd"].tolist(), tr["gate_imb"].tolist(),
            tr["gate_atrz"].tolist(), tr["gate_vhf"].tolist(),
        )):
            out.append({
                **head,
                "ts": exit_ts[k] + "Z", "episode_id": ep, "test_id": tid, "tf": tf,
                "side": "LONG" if side == 1 else "SHORT", "reason": method, "entry_ts": entry_ts[k] + "Z",
                "entry": entry, "exit": exit_, "qty": qty, "fees": fees, "pnl": pnl,
                "gates": {"cvd": gc, "imb": gi, "atrz": ga, "vhf": gv}, "bars_held": held,
                "exit_reason": EXIT_REASONS[reason], "vol_bin": VOL_BINS[vbin], "phase": PHASES[phase],
            })
        return out

    def _score_records(self, outcome: TestOutcome, tid: str) -> list[dict[str, Any]]:
        head = event_fields("score", self.sid)
        return [
            {
                **head,
                "episode_id": e["episode"], "test_id": tid, "bars": e["stop"] - e["start"], "n_trades": e["n_trades"],
                "hit": e["hit"], "payoff": e["payoff"], "total_pnl": e["total_pnl"], "maxdd": e["maxdd"],
                "blunders": e["blunders"], "score": e["score"], "vol_regime": VOL_BINS[e["vol_regime"]],
                "phase": PHASES[e["phase"]],
            }
            for e in (dict(zip(outcome.episodes.dtype.names, rec)) for rec in outcome.episodes.tolist())
        ]

    def _test_log(self, outcome: TestOutcome, w: Window, rows: list[LeaderboardRow]) -> str:
        b = self.bars
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
                f"#{r.rank} {r.role:8s} {r.config_id} {config_label(Params.model_validate_json(r.params_json))}: "
                f"validation {r.val_trades} trades, hit {r.val_hit:.3f}, payoff {r.val_payoff:.2f}, "
                f"pnl {r.val_pnl:,.2f} USD, maxdd {r.val_maxdd:,.2f} USD, score {r.val_score:.1f}"
            )
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ plans and decisions

    def _on_check(self, check: Check, seg: int, t: int, g: int) -> None:
        """A full window of evidence: it measures the plans awaiting their effect, or else may bring one new plan.

        Evidence is used once: the window that judged a change is not also the reason for the
        next one (it was gathered right after a plan chose its moment, and would flatter it).
        """
        tests = [self._test_of(i) for i in sorted({e.test_index for e in self.analyzer.window})]
        measured = False
        for record in self.book.awaiting_outcome(g):
            patch = next((p for p in self.patches if p.plan_id == record.event.plan_id), None)
            rule = record.event.rule
            if patch is None or rule not in RULE_METRIC or check.metrics.first_test < patch.from_index:
                continue
            metric, better = RULE_METRIC[rule]
            result = outcome(metric, better, record.event.evidence, check.metrics.evidence(),
                             check.metrics.cautious(metric, self.settings.rules.confidence_z), tests, g)
            self._set_status(record, record.status, key="outcome", outcome=result)
            self._say(seg, 200 + int(record.event.plan_id.split("-")[1]), "maestro", MaestroMessage(
                turno=4, acao=f"effect of {record.event.plan_id}", detalhes=record.event.change,
                metricas_pos_patch=result, status="improved" if result["improved"] else "no better",
            ), ref=record.event.plan_id)
            measured = True
        if measured:  # this window is spent on judging a change; the next plan needs evidence of its own
            self.analyzer.reset()
            return
        if g + self.W > self.S * self.T - 1:
            if check.firings:  # a plan would apply from a test the session does not have: nothing to decide
                log.info("rules at %s: %s held: no test left to apply a change to", test_id(seg, t),
                         ", ".join(f.rule for f in check.firings))
            return
        for firing in check.firings:
            item = PatchItem(parameter=firing.parameter, old_value=firing.old_value, new_value=firing.new_value)
            hold = self.book.hold(item, seg, check.metrics.first_test, g)
            if hold.held:
                log.info("rule %s on %s at %s held: %s", firing.rule, firing.parameter, test_id(seg, t), hold.why)
                continue
            self._propose(firing, check, seg, t, g, hold)
            break  # one change at a time: the others are judged again on evidence gathered after it

    def _scope(self, check: Check, research: Params) -> dict[str, Any]:
        """What a plan's evidence covers: the research config, validation, which tests, how much."""
        m = check.metrics
        return {"config_id": config_id(research), "label": config_label(research), "method": research.method,
                "phase": "validation", "first_test": self._test_of(m.first_test), "last_test": self._test_of(m.last_test),
                "episodes": m.episodes, "trades": m.trades}

    def _propose(self, firing: RuleFiring, check: Check, seg: int, t: int, g: int, hold: Hold) -> None:
        """A rule fired: the Critic reviews it; a plan is written and goes through approval."""
        self.plan_seq += 1
        plan_id = f"P{seg}-{self.plan_seq:03d}"
        self.analyzer.reset()  # the evidence is spent on this plan
        in_force = self._current_research()
        ctx = self._context(seg, in_force)
        review = self.critic.review(ctx, firing)
        self._say(seg, 10 + self.plan_seq, self.critic.provider, review.message, ref=plan_id)
        if review.patch is None:
            return
        existing = self.book.plans.get(plan_id)
        if existing is None:
            try:
                patch = checked_patch(review.patch, in_force)
            except PlanError as err:  # the critic's patch breaks a bound or a step: no plan
                log.warning("%s not proposed: %s", plan_id, err)
                return
            reason = firing.reason
            vetoed_before = hold.vetoed_before
            if vetoed_before is not None:
                times = f" {hold.vetoes}×" if hold.vetoes > 1 else ""
                reason += f" (vetoed{times} before: {vetoed_before.describe()})"
            event = PlanEvent(
                session_id=self.sid, emitted_at=utc_now_iso(), plan_id=plan_id, nonce=new_nonce(),
                episode_id=firing.episode_id, test_id=test_id(seg, t), agent=f"critic:{self.critic.provider}",
                action="adjust", change=PlanEvent.change_from_patch(patch), patch=patch, reason=reason,
                evidence=dict(firing.evidence), status="pending", note=f"rule {firing.rule}", rule=firing.rule,
                scope=self._scope(check, in_force), vetoed_before=vetoed_before.describe() if vetoed_before else None,
            )
            record = PlanRecord(event, seg, g)
            self.book.plans[plan_id] = record
            self._append(PLANS, f"{plan_id}:pending", event.model_dump())
            crash_point("plan_written")
            if self.approval != "auto":
                decide = f"maestro-tui decide {shlex.quote(str(self.session.root))} {plan_id} approve|veto|edit PARAM=VALUE"
                if self.approval == "manual":
                    self.echo(f"plan {plan_id} waits for a decision: "
                              f"{', '.join(f'{k} {v}' for k, v in event.change.items())} — {reason}; decide: {decide}")
                self.notifier.send("plan_pending", plan_id=plan_id, change=event.change, reason=reason, decide=decide,
                                   approval=self.approval)
        else:
            record = existing
        if record.status != "pending":
            return
        for old in self.book.superseded_by(record):
            self._audit("plan_superseded", "maestro", f"{plan_id} changes the same parameter", old.event.plan_id,
                        old.event.nonce)
            self._set_status(old, "superseded", superseded_by=plan_id)
        if self.approval == "auto":
            self._apply_without_human(record, "maestro (auto approval)", "auto mode")
        elif self.approval == "veto-only" and record.deadline is None:
            record.deadline = time.monotonic() + self.settings.veto_grace_s

    def _set_status(self, record: PlanRecord, status: str, key: str | None = None, **changes: Any) -> None:
        """Write the plan's next line (once: keyed by plan and status, or `key`)."""
        event = self.book.advance(record, status, utc_now_iso(), **changes)
        self._append(PLANS, f"{event.plan_id}:{key or status}", event.model_dump())

    def _apply_without_human(self, record: PlanRecord, who: str, why: str) -> None:
        """Auto mode and veto-only's grace: the patch as proposed, if it still keeps its bounds and steps."""
        try:
            patch = checked_patch(record.event.patch, self._current_research())
        except PlanError as err:
            self._expire(record, f"cannot apply: {err}")
            return
        self._apply_plan(record, patch, "applied", who, why)

    def _effect_point(self, record: PlanRecord) -> int:
        """The first test a decision on `record` can reach: W tests after its emission, or the first not yet started.

        Auto mode applies at emission, when exactly W tests are in flight; a human's decision
        reaches no test already started.
        """
        if self.approval == "auto":
            return record.emit_index + self.W
        return max(record.emit_index + self.W, self.next_unstarted)

    def _apply_plan(self, record: PlanRecord, patch: list[PatchItem], status: str, who: str, why: str,
                    decision_offset: int | None = None) -> None:
        """Spend the plan's nonce and put its patch in force from the first test not yet started.

        The audit record is the fact, written first; the plan's status line and the Maestro's
        message follow from it, and a resume completes them from it (`_carry_out`).
        """
        assert self.seg is not None
        plan_id = record.event.plan_id
        from_index = self._effect_point(record)
        if record.segment != self.seg.number:  # decided after its segment ended: carried into this one
            from_index = max(from_index, self._g(self.seg.number, 1))
        # past the segment's last test: the next segment starts from this config with the patch (_carried_base)
        from_index = min(from_index, self._g(self.seg.number + 1, 1))
        self.book.spent.add(record.event.nonce)
        self.patches.append(Patch(self.seg.number, from_index, patch, plan_id, who))
        after = self._current_research()
        rec = self._audit(
            "patch_applied", who, why, plan_id, record.event.nonce,
            segment=self.seg.number, from_index=from_index, from_test=self._test_of(from_index), status=status,
            patch=[p.model_dump() for p in patch], params_after=json.loads(params_json(after)),
            **({} if decision_offset is None else {"decision_offset": decision_offset}),
        )
        crash_point("decision_audited")
        self._carry_out(rec)

    def _carry_out(self, rec: dict[str, Any]) -> None:
        """The plan line and the Maestro's message an audited decision calls for; each written once."""
        record = self.book.plans.get(rec.get("plan_id") or "")
        if record is None:
            return
        d = rec["details"]
        plan_id = record.event.plan_id
        if rec["action"] == "plan_vetoed":
            if record.status == "pending":
                self._set_status(record, "vetoed", note=rec["why"] if rec["why"] != "vetoed" else None)
            crash_point("decision_status")
            return
        if rec["action"] != "patch_applied":
            return
        status = d.get("status", "applied")
        patch = [PatchItem(**p) for p in d["patch"]]
        if record.status in ("pending", "approved"):
            self._set_status(record, status, patch=patch, change=PlanEvent.change_from_patch(patch),
                             applied_from=d["from_test"], note=f"{status} by {rec['who']}: applies from {d['from_test']}")
        crash_point("decision_status")
        self._say(
            d["segment"], 100 + int(plan_id.split("-")[1]), "maestro",
            MaestroMessage(turno=4, acao=f"apply {plan_id}", detalhes=PlanEvent.change_from_patch(patch),
                           metricas_pos_patch={}, status=f"from {d['from_test']} ({rec['who']})"),
            ref=plan_id,
        )
        crash_point("decision_said")

    def _expire(self, record: PlanRecord, why: str) -> None:
        self._audit("plan_expired", "maestro", why, record.event.plan_id, record.event.nonce)
        self._set_status(record, "expired", note=why)

    def _expire_undecided(self) -> None:
        """A finishing session leaves no plan pending: each becomes expired, with the reason."""
        self._grace_expiries()  # a grace already over applies rather than expires
        for record in self.book.pending():
            if self.approval == "veto-only":
                why = "the session finished inside its veto grace period"
            else:
                why = "the session finished before a decision"
            self._expire(record, why)

    def _read_decisions(self) -> None:
        """Take every decision appended since the last read, in file order."""
        got = self.decisions.read_new()
        for bad in got.bad_lines:
            self._audit("decision_refused", "maestro", f"unreadable decisions.jsonl line {bad.line_no}: {bad.reason}",
                        decision_offset=bad.byte_offset)
        offsets = self.decisions.offsets[len(self.decisions.offsets) - len(got.records):]
        for decision, offset in zip(got.records, offsets):
            self._decide(decision, offset)

    def _decide(self, decision: DecisionEvent, offset: int) -> None:
        """Apply, veto or refuse one decision; `offset` (its byte offset) keys it across restarts."""
        assert self.seg is not None
        if offset in self.spent_offsets or offset in self.refused_offsets:
            return  # handled before a restart
        crash_point("decision_taken")
        verdict = self.book.judge(decision, self._current_research())
        if verdict.kind == "replay":
            self._audit("nonce_replayed", decision.by, verdict.reason, decision.plan_id, decision.nonce,
                        decision_offset=offset)
            return
        if verdict.kind == "refuse":
            self.refused_offsets.add(offset)
            self._audit("decision_refused", decision.by, verdict.reason, decision.plan_id, decision.nonce,
                        decision_offset=offset)
            self.echo(f"decision on {decision.plan_id} refused: {verdict.reason}")
            return
        record = verdict.plan
        assert record is not None
        self.spent_offsets.add(offset)
        if verdict.kind == "veto":
            self.book.spent.add(record.event.nonce)
            # positional, like a patch: fresh evidence starts with the first test the veto could have
            # held back, so a resume that reads the veto first thing rebuilds the same state
            from_index = self._effect_point(record)
            self.book.remember_veto(record, from_index, from_index - 1)
            rec = self._audit("plan_vetoed", decision.by, decision.note or "vetoed", record.event.plan_id,
                              record.event.nonce, decision_offset=offset, from_index=from_index, at_index=from_index - 1)
            crash_point("decision_audited")
            self._carry_out(rec)
        else:
            status = "applied" if decision.decision == "approve" else "edited"
            self._apply_plan(record, verdict.patch, status, decision.by, decision.note or f"{status} by {decision.by}",
                             decision_offset=offset)

    def _grace_expiries(self) -> None:
        if self.approval != "veto-only":
            return
        now = time.monotonic()
        for record in self.book.pending():
            if record.deadline is not None and now >= record.deadline:
                self._apply_without_human(record, "maestro (veto-only grace period)",
                                          f"no veto within {self.settings.veto_grace_s:g} s")

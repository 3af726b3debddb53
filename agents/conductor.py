"""The Maestro: the conductor process that runs a research session into its directory.

One loop, fed by one queue: test outcomes from the worker pool, "decisions.jsonl changed"
from a watchfiles thread, a tick each second (heartbeat, veto-only grace periods) and stop
signals. Nothing polls.

Reproducibility. Outcomes are processed in test order whatever order they finish in.
Test j is started once test j − W is processed (W = `pipeline_depth`), with the
parameters in force then; a patch decided while processing test k applies from test
k + W on (later, if a human took longer: from the first test not yet started). W does
not depend on the number of workers, so the same data, seed, settings and decisions give
the same files on one core, two, or a dask cluster. (A test starts when its task is made,
its parameters fixed; tasks travel to the workers in bundles, which changes when they
run, never what.)

Crash safety. The directory is the source of truth, and resuming replays it: complete
test folders are read back instead of re-run, every agent message, plan, status line and
audit record has a deterministic key and is written only if absent, decisions are re-read
and those already spent (audit.jsonl) are not applied again. So a conductor killed at any
moment resumes into the same files an uninterrupted run would have written. The writes
themselves run on a thread of their own in the order the loop asks for them
(engine.session.SessionWriter): the loop may be a few tests ahead of the disk, but the
disk only ever holds what a conductor writing everything itself would have held.
"""

from __future__ import annotations

import functools
import gc
import logging
import logging.handlers
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from agents import crash_points
from agents.allocator import AllocationDesk, Record
from agents.crash_points import crash_point
from agents.critic import Critic, Review
from agents.gate import Gate
from agents.journal import Journal
from agents.messages import MaestroMessage
from agents.notify import Notifier, hooks_in_force
from agents.rules import Analyzer, RuleFiring
from agents.schedule import Schedule
from agents.segments import Segments, SegmentState
from agents.session_start import build_agents, load_source
from agents.settings import Settings
from agents.strategist import Strategist
from agents.trials import TrialMatrix
from agents.wakeups import Wakeups
from engine.allocation import portfolio_cached, warm_up_portfolio
from engine.events import utc_now_iso
from engine.executor import SharedBars, TestOutcome, TestRunner, TestTask, process_pool
from engine.jsonl import SessionFileError, read_json
from engine.params import Params
from engine.reports.summary import write_reports
from engine.session import (
    ALLOCATION,
    AUDIT,
    CONDUCTOR_LOG,
    CONFIG,
    DECISIONS,
    SUMMARY,
    ConductorState,
    SessionDir,
    SessionWriter,
    completed_tests,
    process_start,
    this_host,
    write_conductor_state,
)
from engine.standings import StandingsBook
from engine.strategies import load_recorded, recorded_files
from engine.sweep import kernels_cached
from engine.text import VisibleFormatter, visible

log = logging.getLogger("maestro.conductor")

# what conductor.json says the session waits for (state "starting") while the workers compile the kernels
COMPILING = "compiling the backtest kernels"

EXIT_DONE, EXIT_FAILED, EXIT_UNREADABLE, EXIT_STOPPED = 0, 1, 2, 130

# ---------------------------------------------------------------- the conductor


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
        self.methods = load_recorded(self.config.get("strategies"))  # the trader's files registered again (StrategyError)
        self.echo = echo
        self.sid = session.session_id
        self.notes = 0
        built_s, built_c, self.meter = build_agents(self.config, self.settings, session, self._note, http_client)
        self.strategist: Strategist = strategist or built_s
        self.critic: Critic = critic or built_c
        self.pid_start = process_start(os.getpid())  # with the pid, names this process and no later one
        self.notifier = Notifier(hooks_in_force(), session_id=self.sid, session_dir=session.root)
        self.budget_told = False
        self.W = self.settings.pipeline_depth
        self.T = self.settings.tests
        self.S = self.settings.segments
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = False
        self.paused = False  # SIGUSR1 toggles: no new test starts while paused
        self._portfolio_warmed = False  # the portfolio kernel being loaded (see _warm_up_portfolio)
        self.started = time.time()
        self.analyzer = Analyzer(self.settings.rules)
        self.waiting_for: str | None = None
        self.compiling: str | None = None  # set while the workers compile the kernels, until the first outcome
        self.seg: SegmentState | None = None
        self.ranking = StandingsBook()  # session standings, one test at a time
        self.schedule = Schedule(self.S, self.T)
        self.trials = TrialMatrix(self.settings.episode_bars, self.settings.blunder_bars,
                                  recorded_files(self.config.get("strategies")))
        self.out = SessionWriter()  # every write to the session directory, in order, off this thread
        self.journal = Journal(session, self.out)
        self.desk = AllocationDesk(list(self.methods), self.settings.allocation, self.sid)
        self.gate = Gate(self, session, self.schedule, self.journal, self.settings, self.approval, self.analyzer,
                         self.notifier, echo)
        self.book = self.gate.book  # the plans, read by the state line and the segment's wait
        self.segments = Segments(session, self.settings, self.journal, self.schedule, self.gate, self.ranking, self.trials,
                                 self.desk, self.strategist, self.critic, Params.model_validate(self.config["base_params"]),
                                 echo, self.analyzer, self._write_records,
                                 methods=self.methods, strategy_files=recorded_files(self.config.get("strategies")))
        self.next_unstarted = 0  # global index of the first test not yet started
        self.runner: TestRunner | None = None  # the worker pool, from run() on
        self._unsent: list[TestTask] = []  # tests started (their tasks made) not yet sent to the workers
        # tests sent in one bundle: one each to a local pool; on a dask cluster, where every task costs
        # the scheduler and the client a few milliseconds, as many as keep every worker busy (`_runner`)
        self.tests_per_task = 1
        self._dask_client: Any = None  # settings.dask: the cluster's client, made with the runner
        self._shared: SharedBars | None = None  # the bars the pool's workers map
        self._state_lock = threading.Lock()

    # ------------------------------------------------------------ what the gate asks of its host (agents.gate.Host)

    @property
    def segment(self) -> int:
        return self.seg.number if self.seg else 1

    def research(self) -> Params:
        assert self.seg is not None
        return self.seg.research

    def review(self, segment: int, in_force: Params, firing: RuleFiring) -> Review:
        return self.critic.review(self.segments.context(segment, in_force), firing)

    def critic_provider(self) -> str:
        return self.critic.provider

    def _write_live_state(self) -> None:
        """conductor.json as the running session stands: paused, waiting for something, or running."""
        self._write_state("paused" if self.paused else ("waiting" if self.waiting_for else "running"))

    def _write_state(self, state: str = "running", error: str | None = None) -> None:
        """Rewrite conductor.json; SessionWriteError when the OS refuses, except for `failed`.

        The last word (finished, stopped, failed) survives a full disk by an in-place write
        (`write_conductor_state`). `failed` never raises: the session is failing already, and
        its reason must still reach the screen; if even the in-place write is refused, the
        file keeps its previous state and the log (if it can) says why.
        """
        compiling = state == "running" and self.compiling is not None
        if compiling:
            state = "starting"  # no test can run before the kernels are compiled
        with self._state_lock:
            record = ConductorState(
                session_id=self.sid,
                pid=os.getpid(),
                pid_start=self.pid_start,
                host=this_host(),
                state=state,
                waiting_for=self.compiling if compiling else self.waiting_for,
                heartbeat=utc_now_iso(),
                started_at=self.config["created_at"],
                segment=self.seg.number if self.seg else 0,
                segments=self.S,
                tests_done=self.segments.tests_done,
                tests_total=self.S * self.T,
                tests_failed=self.segments.tests_failed,
                approval=self.approval,
                providers={"strategist": self.strategist.provider, "critic": self.critic.provider},
                pending_plans=len(self.book.pending()),
                llm=self.meter.summary(),
                error=error,
            )
            if state != "failed":  # in order with the other writes; the last words wait for theirs
                self.out.write(functools.partial(write_conductor_state, last_word=state in ("finished", "stopped")),
                               self.session, record)
                if state in ("finished", "stopped"):
                    self.out.flush()
                return
            self.out.drain()  # what was asked before it is written first, unless that is what failed
            try:
                write_conductor_state(self.session, record, last_word=True)
            except OSError as err:
                from engine.jsonl import os_error_line

                log.error("conductor.json not updated to failed: %s", os_error_line(err))

    def _note(self, text: str) -> None:
        """An LLM turn fell back to the offline agent, or a role went offline: say so in the conversation."""
        self.notes += 1
        if self.meter.spent and not self.budget_told:
            self.budget_told = True
            self.notifier.send("llm_budget_spent", **self.meter.summary(), detail=text)
        segment = self.seg.number if self.seg else 1
        self.journal.say(f"note:{self.notes}", segment, "maestro",
                         MaestroMessage(turno=5, acao="offline fallback", detalhes=text, status="recorded"),
                         ref=f"note{self.notes}")

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        """Run or resume the session to its end; 0 done, 1 failed, 130 stopped by a signal."""
        handler = logging.FileHandler(self.session.file(CONDUCTOR_LOG), encoding="utf-8")
        handler.setFormatter(VisibleFormatter("%(asctime)s %(levelname)s %(message)s"))
        # conductor.log is written on a thread of its own: a line is a write and a flush
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        to_log = logging.handlers.QueueHandler(lines)
        log_writer = logging.handlers.QueueListener(lines, handler)
        log_writer.start()
        logging.getLogger("maestro").addHandler(to_log)
        logging.getLogger("maestro").setLevel(logging.INFO)
        wakeups = Wakeups(self.events, self.session.file(DECISIONS))
        code = EXIT_FAILED
        crash_points.in_order(self.out.write)
        self.notifier.before_send = self.out.drain  # a hook may read the files: they say what it is told
        try:
            self._write_state("starting")
            self.gate.load_written()
            self.journal.open()
            self.gate.finish_audited()
            plan = self.schedule.place(load_source(self.config["data"]), self.config.get("windows"),
                                       self.session.file(CONFIG))
            if plan.note():
                log.warning("%s", plan.note())
            self.journal.say("start", 1, "maestro", MaestroMessage(
                turno=0, acao="session start",
                detalhes={"baseline": self.config["base_origin"], "windows": plan.summary()},
                status="reusing windows" if plan.reused_tests else "windows fitted" if plan.fitted else "ready",
            ))
            wakeups.start()
            if not self.settings.dask and not kernels_cached():  # a dask cluster's workers compile on their own
                # the pool waits for its fork server, which compiles them first: say so before waiting
                self.compiling = COMPILING
                self._write_state("running")
                self.echo(f"{COMPILING}: numba's cache is empty (a first session, or the engine changed); "
                          "about 10 s on 2 cores, once")
            self.runner = self._runner()
            self.segments.returns = self.runner.returns
            self._write_state("running")
            for segment in range(1, self.S + 1):
                self._run_segment(segment)
                if self.stopping:
                    break
            if self.stopping:
                self._write_state("stopped")
                code = EXIT_STOPPED
            else:
                self.gate.expire_undecided()
                crash_point("summary")
                self.out.flush()  # the reports are made from the files
                write_reports(self.session, self.S)
                self._write_state("finished")
                self.notifier.send("session_finished", state="finished", summary=str(self.session.file(SUMMARY)),
                                   tests_done=self.segments.tests_done, tests_failed=self.segments.tests_failed)
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
            gc.unfreeze()
            wakeups.stop()
            if self.runner is not None:
                self.runner.shutdown(cancel=True)
            if self._dask_client is not None:
                self._dask_client.close()
            if self._shared is not None:
                self._shared.close()
            self.out.close()
            crash_points.in_order(None)
            self.journal.close()
            self.notifier.close()  # the last word (finished, failed) gets its hooks' time, no more
            self.gate.holds.close()  # a session stopped mid-segment: its holds' repeats too
            logging.getLogger("maestro").removeHandler(to_log)
            log_writer.stop()  # the lines still queued are written
            try:
                handler.close()  # flushes: a full disk refuses the last lines, and that is all
            except OSError:
                pass
        return code

    def _runner(self) -> TestRunner:
        """The worker pool (or the dask cluster), each worker holding the session's bars once."""
        bars = self.schedule.bars
        assert bars is not None
        self._shared = shared = SharedBars(bars)
        on_outcome = lambda o: self.events.put(("outcome", o))  # noqa: E731
        isolated = lambda: process_pool(1, shared.handle)  # noqa: E731
        if self.settings.dask:
            from distributed import Client

            self._dask_client = client = Client(self.settings.dask)
            self.tests_per_task = max(1, self.W // (2 * max(1, sum(client.nthreads().values()))))
            # one copy on every worker, fetched by any worker that joins later; tasks name it
            scattered = client.scatter(bars, broadcast=True, hash=False)
            # not "pure": dask would hash every task's arguments to name it, and a test is never asked twice
            return TestRunner(lambda: client.get_executor(pure=False), on_outcome, isolated, bars=scattered)
        workers = self.settings.effective_workers()
        if portfolio_cached():  # loaded while the pool starts (it waits for the fork server), not on the way of a test
            self._warm_up_portfolio()
        return TestRunner(lambda: process_pool(workers, shared.handle), on_outcome, isolated)

    def _warm_up_portfolio(self) -> None:
        """The portfolio kernel (the ensemble segment's), loaded from numba's cache on a thread of its own."""
        self._portfolio_warmed = True
        threading.Thread(target=warm_up_portfolio, name="warm-up", daemon=True).start()

    # ------------------------------------------------------------ segments

    def _run_segment(self, segment: int) -> None:
        # What lives on (the engine, numba's compiled code, the segments before) is left out of the collector's
        # full passes, which walked all of it: 0.14 s of a default session, 0.02 s once frozen. The young
        # generations' garbage is collected first; `run` gives what is frozen back when the session ends.
        gc.collect(1)
        gc.freeze()
        if not self._portfolio_warmed and (segment == self.S or portfolio_cached()):
            # on a cold start the worker pool's warm-up compiles it on the other core (engine.warmup_aside),
            # last: from the next segment on it is only loaded; the last segment, whose ensemble runs it,
            # compiles it if nothing has
            self._warm_up_portfolio()
        self.seg = self.segments.start(segment)
        self.analyzer.reset()
        self._write_state("running")
        done = completed_tests(self.session, segment)
        processed = 0
        next_t = 1
        waiting: dict[int, TestOutcome] = {}
        in_flight: set[int] = set()
        self.gate.read_decisions()  # any that arrived while nobody watched
        while processed < self.T:
            if processed + 1 in done:  # resuming: read back instead of re-running
                self.segments.read_back(self.seg, processed + 1)
                processed += 1
                next_t = max(next_t, processed + 1)
                continue
            if processed + 1 in waiting:
                self.segments.absorb(self.seg, waiting.pop(processed + 1))
                processed += 1
                continue
            if self.stopping and not in_flight:
                return
            while (not self.stopping and next_t <= self.T and next_t <= processed + self.W
                   and self._may_start(self.schedule.index(segment, next_t))):
                if next_t not in done:
                    self._start(segment, next_t)
                    in_flight.add(next_t)
                next_t += 1
            # a test started is a task made (its parameters fixed); the tasks go to the workers in bundles
            self._launch(every=next_t > self.T or self.stopping or len(in_flight) == len(self._unsent))
            self.next_unstarted = self.schedule.index(segment, next_t)
            self._update_waiting(segment, next_t)
            self.gate.grace_expiries()  # not only on the tick: a short grace must not wait for the next second
            kind, payload = self.events.get()
            if kind == "outcome":
                if self.compiling is not None:  # the workers are warm
                    self.compiling = None
                    self._write_live_state()
                in_flight.discard(payload.test)
                waiting[payload.test] = payload
            else:
                self._handle(kind, payload)
        if segment < self.S:
            self._await_decisions(segment)
        if not self.stopping:
            self.segments.end(self.seg, len(self.book.pending()))

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
        return not self.paused and self.gate.may_start(g)

    def _update_waiting(self, segment: int, next_t: int) -> None:
        blocked = next_t <= self.T and not self._may_start(self.schedule.index(segment, next_t)) and not self.stopping
        pending = self.book.pending()
        what = f"decision on plan {', '.join(r.event.plan_id for r in pending)}" if blocked and pending else None
        if what != self.waiting_for:
            self.waiting_for = what
            self._write_live_state()

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "decisions":
            self.gate.read_decisions()
        elif kind == "tick":
            self.gate.grace_expiries()
            self._write_live_state()
        elif kind == "pause":
            self.paused = not self.paused
            log.info("%s starting new tests", "paused" if self.paused else "resumed")
            self._write_live_state()
        elif kind == "stop":
            log.info("signal %s: stopping after the tests already running", payload)
            self.stopping = True

    def _start(self, segment: int, t: int) -> None:
        assert self.seg is not None
        self._unsent.append(self.segments.task(self.seg, t))

    def _launch(self, every: bool) -> None:
        """Send the tasks made, `tests_per_task` to a bundle (`every`: the rest too), each with its share
        of the trial matrix's cells."""
        assert self.seg is not None and self.runner is not None
        while self._unsent and (every or len(self._unsent) >= self.tests_per_task):
            bundle = tuple(self._unsent[:self.tests_per_task])
            del self._unsent[:self.tests_per_task]
            cells = self.trials.next_batch(self.seg.trial_tasks_per_test * len(bundle))
            future = self.runner.submit(bundle, cells)
            if cells:
                self.trials.started(cells, future)

    def _write_records(self, records: list[Record]) -> None:
        for rec in records:
            if rec.file == ALLOCATION:
                self.journal.allocation(rec.body)
            else:
                self.journal.append(AUDIT, rec.key, rec.body)

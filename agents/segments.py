"""A segment: the agents plan it at its start, each test is accounted for, its results are judged at its end.

Start: the Strategist proposes from the config carried into the segment, the Critic
chooses (scoring proposals on the windows just before the segment — data already seen),
and segment_plan.json records it all; a resume reads that file back instead of asking the
agents again. Each test, in test order: its folder written (or read back after a crash),
its rows in the tallies, the standings, the trial matrix and the allocation desk, its
episodes fed to the rules — the same whether it ran now or before a crash. End: segment_results.json (the research config per phase, baselines,
standings, the ensemble portfolio in segment 5, the overfitting figures so far), the
Critic's verdict on what it may see (no holdout), the Maestro's line and, after segments
2 and 4, the one-page plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.allocator import AllocationDesk, Record, ensemble_portfolio
from agents.context import SegmentContext, Standing, segment_role, selection_view
from agents.crash_points import crash_point
from agents.critic import Critic, proposal_params
from agents.documents import SegmentPlanDoc
from agents.gate import Gate
from agents.journal import Journal
from agents.messages import CriticMessage, MaestroMessage, StrategistMessage
from agents.rules import Analyzer, episode_stats
from agents.schedule import Schedule
from agents.settings import Settings
from agents.strategist import Strategist
from agents.trials import Submit, TrialMatrix
from engine.configs import config_id, config_label, params_json
from engine.events import PlanEvent, read_events, utc_now_iso
from engine.executor import ConfigSpec, TestOutcome, TestTask
from engine.jsonl import SessionFileError, read_json, write_json_atomic, write_text_atomic
from engine.leaderboard import LeaderboardRow, rank_test_rows, read_leaderboard_csv, remember_leaderboard
from engine.params import Params
from engine.reports.documents import SegmentResultsDoc, checked
from engine.reports.plan_page import plan_after_segment
from engine.reports.segment_results import SegmentTally, segment_results
from engine.session import (
    LEADERBOARD,
    SCORES,
    SEGMENT_PLAN,
    SEGMENT_RESULTS,
    TRADES,
    SessionDir,
    test_id,
    write_test_dir,
)
from engine.standings import StandingsBook
from engine.sweep import run_sweep, sweep_of
from engine.test_folder import stamped, tallied_records, test_files

log = logging.getLogger("maestro.segments")

PREFLIGHT_WINDOWS = 10  # the Critic scores proposals on this many windows before the segment's first


@dataclass
class SegmentState:
    """The segment being run: its configs, tallies and leaderboard rows."""

    number: int
    role: str
    research: Params  # the research config as chosen (patches come on top)
    ensemble: list[Params]
    baselines: list[Params]
    plan: dict[str, Any]
    tally: SegmentTally = field(default_factory=SegmentTally)
    rows: list[LeaderboardRow] = field(default_factory=list)
    trial_tasks_per_test: int = 0  # the trial matrix's cells started beside each test (agents.trials)
    specs: tuple[Params, tuple[ConfigSpec, ...]] | None = None  # the research config in force, and the tests' configs


class Segments:
    """Starts and ends the session's segments (the module docstring)."""

    def __init__(self, session: SessionDir, settings: Settings, journal: Journal, schedule: Schedule, gate: Gate,
                 ranking: StandingsBook, trials: TrialMatrix, desk: AllocationDesk,
                 strategist: Strategist, critic: Critic, base: Params, echo: Callable[[str], None],
                 analyzer: Analyzer, write_records: Callable[[list[Record]], None], *,
                 methods: tuple[str, ...], strategy_files: tuple[str, ...] = ()) -> None:
        self.session = session
        self.settings = settings
        self.journal = journal
        self.out = journal.out  # the conductor's writes, in order (engine.session.SessionWriter)
        self.schedule = schedule
        self.gate = gate
        self.ranking = ranking
        self.trials = trials
        self.desk = desk
        self.strategist = strategist
        self.critic = critic
        self.base = base  # the session's starting config (the smart baseline)
        self.echo = echo
        self.analyzer = analyzer
        self.write_records = write_records  # allocation and audit records, in the journal
        self.methods = methods  # the session's strategies: each runs as a baseline in every test
        self.strategy_files = strategy_files  # the trader's, loaded by the workers too
        self.tests_done = 0
        self.tests_failed = 0
        self.returns: Submit = None  # where the trial matrix's backtests run: the workers, once they are up

    # ------------------------------------------------------------ what the agents are told

    def context(self, segment: int, base: Params) -> SegmentContext:
        stand = [
            Standing(s.config_id, s.label, Params.model_validate_json(s.params_json), s.tests, s.val_trades,
                     s.val_hit, s.val_payoff, s.val_pnl, s.val_score, s.deflated_sharpe)
            for s in self.ranking.table()[:5]
        ]
        return SegmentContext(
            segment=segment, segments=self.schedule.S, role=segment_role(segment), base=base,
            targets=self.settings.targets, seed=self.settings.seed, standings=stand,
            preflight=self._preflight(segment), methods=self.methods,
        )

    def _preflight(self, segment: int) -> Callable[[Params], float | None]:
        """A config's mean validation score on the windows just before the segment's (seen already)."""
        s = self.schedule
        first = s.plan.window_of(s.index(segment, 1))
        past = s.windows[max(0, first - PREFLIGHT_WINDOWS):first] if segment > 1 else []

        def score(params: Params) -> float | None:
            if not past:
                return None
            assert s.bars is not None
            values = []
            one = sweep_of([params])  # the workers' kernel (a one-config sweep is run_backtest, bit for bit)
            for w in past:
                swept = run_sweep(s.bars.slice(w.start, w.end), one, train_end=w.train_bars,
                                  validation_end=w.train_bars + w.validation_bars,
                                  episode_bars=self.settings.episode_bars, blunder_bars=self.settings.blunder_bars)
                values.append(swept.by_phase(0)["validation"].score)
            return float(np.mean(values))

        return score

    def carried_base(self, segment: int) -> Params:
        """What a segment starts from: the previous research config with all its patches (segment 1: the baseline)."""
        if segment == 1:
            return self.base
        prev = read_json(self.session.segment_dir(segment - 1) / SEGMENT_PLAN)
        return self.gate.in_force(segment - 1, Params.model_validate_json(prev["research_params_json"]))

    # ------------------------------------------------------------ the start

    def start(self, segment: int) -> SegmentState:
        """Plan the segment (or read its plan back), say it, and return its state."""
        self.out.flush()  # what the segment starts from is read back from the files
        path = self.session.segment_dir(segment) / SEGMENT_PLAN
        base = self.carried_base(segment)
        ctx = self.context(segment, base)
        if path.exists():  # resuming: the agents already spoke; reuse what they said
            plan = read_json(path)
            try:
                checked(SegmentPlanDoc, plan)
            except ValueError as err:
                raise SessionFileError(path, f"not a segment plan: {str(err).splitlines()[0]}") from None
        else:
            plan = self._plan(segment, base, ctx)
            self.out.write(_write_segment_plan, path, checked(SegmentPlanDoc, plan))
        crash_point("segment_start")
        self.journal.say(f"s{segment}:proposals", segment, self.strategist.provider,
                         StrategistMessage.model_validate(plan["proposals"]))
        self.journal.say(f"s{segment}:choice", segment, self.critic.provider, CriticMessage.model_validate(plan["critic"]))
        reused = self.schedule.reused_in(segment)
        if reused:
            what = ("cannot validate on unseen windows: the data has none left" if ctx.role == "validate"
                    else "runs on windows earlier tests saw")
            self.journal.say(f"s{segment}:reused", segment, "maestro", MaestroMessage(
                turno=0, acao=f"segment {segment} {what}",
                detalhes=f"{reused} of its {self.schedule.T} tests reuse a window: their results are not independent evidence",
                status="windows reused"))
        for p in proposal_params(Params.model_validate_json(plan["base_params_json"]),
                                 StrategistMessage.model_validate(plan["proposals"])):
            self.trials.tried(p)  # chosen or not: the Critic chose among them
        seg = SegmentState(
            segment, plan["role"], Params.model_validate_json(plan["research_params_json"]),
            [Params.model_validate_json(j) for j in plan["ensemble_params_json"]],
            [Params(method=m) for m in self.methods], plan,
        )
        # the trial matrix's cells this segment's end will miss, backtested beside its tests
        s = self.schedule
        running = [self.gate.in_force(segment, seg.research, up_to=s.index(segment, 1)), *seg.ensemble, *seg.baselines]
        tasks = self.trials.reckon_ahead([s.window(s.index(segment, t)) for t in range(1, s.T + 1)],
                                         {config_id(p) for p in running})
        seg.trial_tasks_per_test = -(-tasks // s.T)
        return seg

    def _plan(self, segment: int, base: Params, ctx: SegmentContext) -> dict[str, Any]:
        """segment_plan.json: the Strategist's proposals, the Critic's choice, the tests planned."""
        proposals = self.strategist.propose(ctx)
        choice = self.critic.choose(ctx, proposals)
        candidates = proposal_params(base, proposals)
        chosen = [candidates[i] for i in choice.chosen]
        return {
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
            "tests_planned": self.schedule.planned(segment),
        }

    # ------------------------------------------------------------ each test, in test order

    def task(self, seg: SegmentState, t: int) -> TestTask:
        """Test t of the segment for the worker pool: its window, the research config in force, the others."""
        s = self.schedule
        g = s.index(seg.number, t)
        w = s.window(g)
        research = self.gate.in_force(seg.number, seg.research, up_to=g)
        if seg.specs is None or seg.specs[0] is not research:  # the same configs test after test, till a patch
            role = "ensemble" if seg.role == "ensemble" else "chosen"
            configs = [research, *seg.ensemble, *seg.baselines]
            roles = [role] + ["ensemble"] * len(seg.ensemble) + ["baseline"] * len(seg.baselines)
            seg.specs = (research, tuple(ConfigSpec(config_id(p), r, params_json(p)) for p, r in zip(configs, roles)))
        specs = seg.specs[1]
        return TestTask(test_id(seg.number, t), seg.number, t, w.index, start=w.start, end=w.end,
                        train_end=w.train_bars, validation_end=w.train_bars + w.validation_bars, configs=specs,
                        episode_bars=self.settings.episode_bars, blunder_bars=self.settings.blunder_bars,
                        strategy_files=self.strategy_files, session_id=self.session.session_id)

    def absorb(self, seg: SegmentState, outcome: TestOutcome) -> None:
        """Write a finished test's folder, then account for it (in test order)."""
        t = outcome.test
        g = self.schedule.index(seg.number, t)
        w = self.schedule.window(g)
        tid = test_id(seg.number, t)
        rows = rank_test_rows(outcome.rows) if outcome.ok else []
        bars, sid = self.schedule.bars, self.session.session_id
        assert bars is not None  # set before the first test is submitted
        if outcome.ok and outcome.files:  # the worker wrote the text: stamp it now, as it is written
            files = stamped(outcome.files, utc_now_iso())
            trades, scores = tallied_records(outcome)  # what _account reads of the events the files hold
        else:
            files, trades, scores = test_files(outcome, bars, w, tid, sid, rows)
        self.out.write(_write_test_folder, self.session, seg.number, t, files, rows)
        crash_point("after_test")
        if not outcome.ok:
            self.journal.audit("test_failed", "maestro", outcome.error.splitlines()[0] if outcome.error else "failed",
                               test=tid, attempts=outcome.attempts)
        self._account(seg, t, trades, scores, rows, outcome.ok)

    def read_back(self, seg: SegmentState, t: int) -> None:
        """A test a run before a crash finished: its folder read back, accounted for as if it ran now."""
        folder = self.session.test_dir(seg.number, t)
        trades = read_events(folder / TRADES).records
        scores = read_events(folder / SCORES).records
        rows = read_leaderboard_csv(folder / LEADERBOARD)
        ok = bool(rows)
        self._account(seg, t, trades, scores, rows, ok)

    def _account(self, seg: SegmentState, t: int, trades: list, scores: list, rows: list[LeaderboardRow],
                 ok: bool) -> None:
        """Tallies, leaderboard and the analyzer; the same whether the test ran now or before a crash."""
        g = self.schedule.index(seg.number, t)
        in_force = self.gate.in_force_json(seg.number, seg.research, up_to=g)
        research = next((r for r in rows if r.role in ("chosen", "ensemble") and r.params_json == in_force), None)
        seg.tally.add_test(trades, research if ok else None, self.settings.blunder_bars)
        seg.rows.extend(rows)
        self.ranking.add(rows)
        self.tests_done += 1
        if not ok:
            self.tests_failed += 1
            return
        w = self.schedule.window(g)
        self.trials.tested(w, rows)
        self.write_records(self.desk.after_test(test_id(seg.number, t), rows, self.schedule.bar_time(w.validation_end - 1)))
        if g < self.gate.muted_until(seg.number, g):
            return  # these tests started before the latest plan could change anything: stale evidence
        stats = episode_stats(g, trades, scores, self.settings.blunder_bars)
        check = self.analyzer.feed(stats, self.gate.current())
        if check is not None:
            self.gate.on_check(check, seg.number, t, g)

    # ------------------------------------------------------------ the end

    def end(self, seg: SegmentState, pending: int) -> None:
        """Write the allocation records and segment_results.json; say the verdict and the Maestro's line."""
        segment, s = seg.number, self.schedule
        self.gate.holds.close()  # the segment's repeated holds, each in one line
        patches = [
            {"plan_id": p.plan_id, "from_test": s.test_of(p.from_index), "who": p.who,
             "change": PlanEvent.change_from_patch(p.items)}
            for p in self.gate.patches if p.segment == segment
        ]
        results = segment_results(segment, seg.role, seg.tally, seg.rows, seg.plan, patches, self.settings.targets)
        first, last = s.window(s.index(segment, 1)), s.window(s.index(segment, s.T))
        if seg.role == "ensemble":
            results["ensemble_portfolio"], records = self._ensemble(seg, first.start, max(last.end, first.end),
                                                                     first.train_bars)
            self.write_records(records)
        self.write_records(self.desk.segment_end(segment, s.bar_time(last.validation_end - 1)))
        results["reused_tests"] = s.reused_in(segment)
        took = time.perf_counter()
        assert s.bars is not None
        results["overfitting"] = over = self.trials.figures(s.bars, self.returns)
        log.info("overfitting: %d trials over %d tests, PBO %s, in %.2f s", over["trials"], over["tests"], over["pbo"],
                 time.perf_counter() - took)
        self.out.write(write_json_atomic, self.session.segment_dir(segment) / SEGMENT_RESULTS,
                       checked(SegmentResultsDoc, results))
        ctx = self.context(segment, self.gate.current())
        self.journal.say(f"s{segment}:verdict", segment, self.critic.provider, self.critic.judge(ctx, selection_view(results)))
        v = results["chosen"]["validation"]
        self.journal.say(
            f"s{segment}:done", segment, "maestro",
            MaestroMessage(
                turno=3, acao=f"segment {segment} done",
                detalhes={"tests": results["tests"], "failed": results["tests_failed"], "patches": len(patches),
                          **({"reused windows": results["reused_tests"]} if results["reused_tests"] else {})},
                metricas_pos_patch={**{k: round(v[k], 4) for k in ("hit", "payoff", "total_pnl", "maxdd")},
                                    "configs_tried": over["trials"], "pbo": over["pbo"]},
                status="next segment" if segment < s.S else "session done",
            ),
        )
        if segment in (2, 4) and segment < s.S:
            self.out.flush()  # the plan page is made from the files
            self.out.write(write_text_atomic, self.session.plan_after(segment), plan_after_segment(self.session, segment, s.S))
        failed = f" ({results['tests_failed']} failed)" if results["tests_failed"] else ""
        failed += f" ({results['reused_tests']} on reused windows)" if results["reused_tests"] else ""
        self.echo(
            f"segment {segment}/{s.S} ({seg.role}): {results['tests'] - results['tests_failed']}/{s.T} tests{failed}, "
            f"{v['n_trades']} validation trades, hit {v['hit']:.3f}, payoff {v['payoff']:.2f}, "
            f"pnl {v['total_pnl']:,.0f} USD, plans applied {len(patches)}, pending {pending}"
        )

    def _ensemble(self, seg: SegmentState, start: int, end: int, train_bars: int) -> tuple[dict[str, Any], list[Record]]:
        """The best configs so far as one portfolio over the segment's bars, under the controller."""
        members = [self.gate.current(), *seg.ensemble]
        for st in self.ranking.table():
            if len(members) >= 5:
                break
            p = Params.model_validate_json(st.params_json)
            if params_json(p) not in {params_json(m) for m in members}:
                members.append(p)
        assert self.schedule.bars is not None
        return ensemble_portfolio(self.schedule.bars, start, end, train_bars, members, self.settings.allocation,
                                  self.session.session_id, self.schedule.bar_time)


def _write_segment_plan(path: Path, plan: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, plan)


def _write_test_folder(session: SessionDir, segment: int, test: int, files: dict[str, str],
                       rows: list[LeaderboardRow]) -> None:
    folder = write_test_dir(session, segment, test, files)
    if rows:  # the reports read every leaderboard back: these are its rows, no need to parse them
        remember_leaderboard(folder / LEADERBOARD, rows)

"""The conductor as a real process: a whole session on disk, reproducible, crash-safe, steerable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.events import EVENT_FILES
from engine.jsonl import append_jsonl, read_json, read_jsonl
from engine.leaderboard import read_leaderboard_csv
from engine.session import ConductorState
from tests.sessions import (
    EAGER_RULES,
    ROOT,
    assert_same_sessions,
    cli,
    cli_background,
    conductor_state,
    find_session,
    headless_session,
    only_session,
    pending_plans,
    snapshot,
    wait_for,
)

pytestmark = pytest.mark.slow  # every test runs sessions, or reads the module's full session

SMALL = ("--segments", "5", "--tests", "12", "--seed", "11")


@pytest.fixture(scope="module")
def full_session(tmp_path_factory) -> Path:
    """One default headless session: 5 segments × 100 tests, offline agents, auto approval."""
    sessions = tmp_path_factory.mktemp("full")
    out = cli("run", "--headless", "--sessions-dir", str(sessions))
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.splitlines()[0].startswith("approval: auto (headless")
    return only_session(sessions)


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory) -> Path:
    """An uninterrupted small session, the yardstick of the crash tests."""
    return headless_session(tmp_path_factory.mktemp("reference"), *SMALL)


def test_a_first_session_says_it_is_compiling_the_kernels_until_its_first_test_then_runs(tmp_path: Path):
    """On an empty numba cache the workers compile the kernels first, seconds with nothing to show: the
    status says so (state "starting", waiting for the compile) until the first test is back, and no longer."""
    sessions = tmp_path / "sessions"
    proc = cli_background("run", "--headless", "--segments", "1", "--tests", "4", "--seed", "5",
                          "--sessions-dir", str(sessions), env={"NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    session = wait_for(lambda: find_session(sessions), what="the session folder")
    seen: list[dict] = []
    running = True
    while running:  # every state conductor.json goes through, the last read after the conductor exits
        running = proc.poll() is None
        state = conductor_state(session)
        if state and (not seen or state != seen[-1]):
            seen.append(state)
        time.sleep(0.02)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "compiling the backtest kernels: numba's cache is empty" in out
    said = [(s["state"], s.get("waiting_for"), s["tests_done"]) for s in seen]
    assert ("starting", "compiling the backtest kernels", 0) in said, said
    assert all(s.get("waiting_for") != "compiling the backtest kernels" for s in seen if s["tests_done"] > 0), said
    assert said[-1] == ("finished", None, 4), said


def test_default_session_writes_every_file_and_every_line_validates(full_session: Path):
    s = full_session
    for name in ("session_config.json", "conductor.json", "conversation.jsonl", "plans.jsonl", "audit.jsonl",
                 "plan_after_segment_2.md", "plan_after_segment_4.md", "session_summary.md", "metrics_global.json"):
        assert (s / name).is_file(), name
    assert ConductorState.model_validate(read_json(s / "conductor.json")).state == "finished"
    # every JSON document against its schema
    from agents.documents import DOCUMENTS

    documents = [p for p in s.rglob("*.json") if p.name != "conductor.json"]
    assert len(documents) == 1 + 5 + 5 + 1
    for path in documents:
        DOCUMENTS[path.name].model_validate(read_json(path))
    tests = 0
    for k in range(1, 6):
        seg = s / f"segment_{k}"
        plan = read_json(seg / "segment_plan.json")
        assert len(plan["proposals"]["proposta"]) == 3 and plan["chosen"]
        results = read_json(seg / "segment_results.json")
        assert results["tests"] == 100 and results["tests_failed"] == 0
        for t in range(1, 101):
            folder = seg / f"seg{k}_test{t:03d}"
            for name in ("leaderboard_base.csv", "trades.jsonl", "scores.jsonl", "test.log"):
                assert (folder / name).is_file(), folder / name
            rows = read_leaderboard_csv(folder / "leaderboard_base.csv")
            assert [r.rank for r in rows] == list(range(1, len(rows) + 1))
            assert {r.role for r in rows} >= {"baseline"}
            tests += 1
    assert tests == 500
    # every line of every JSONL file is a valid event of its file's kind
    checked = 0
    for path in s.rglob("*.jsonl"):
        model = EVENT_FILES[path.name]
        got = read_jsonl(path, model)
        assert not got.bad_lines and not got.torn_tail, (path, got.bad_lines[:3])
        checked += len(got.records)
    assert checked > 10_000
    trades = read_jsonl(s / "segment_1" / "seg1_test001" / "trades.jsonl").records
    assert all(t["test_id"] == "seg1_test001" for t in trades)
    # the agents spoke in the §6 shapes, and the rules did steer
    messages = read_jsonl(s / "conversation.jsonl").records
    assert {"strategist", "critic", "maestro"} <= {m["agent"] for m in messages}
    shapes = {m["agent"]: set(m["message"]) for m in messages}
    assert {"agente", "turno", "proposta", "plano_curto", "metricas_esperadas", "proximo_passo"} <= shapes["strategist"]
    assert {"agente", "turno", "veredito", "analise", "ajuste_proposto"} <= shapes["critic"]
    assert {"agente", "turno", "acao", "detalhes", "metricas_pos_patch", "status"} <= shapes["maestro"]
    assert read_jsonl(s / "plans.jsonl").records, "no rule fired in a whole default session"
    # the allocation layer rated the method families and ran the ensemble as a portfolio
    allocations = read_jsonl(s / "allocation.jsonl").records
    assert {a["strategy"] for a in allocations} >= {"ema_crossover", "macd_trend", "trend_breakout"}
    # every allocation decision and every override carries its identity, each nonce spent once
    assert all(a.get("agent_id") and a.get("nonce") for a in allocations)
    assert len({a["nonce"] for a in allocations}) == len(allocations)
    assert any(a["agent_id"].startswith("ensemble/") for a in allocations)
    summaries = [a for a in read_jsonl(s / "audit.jsonl").records if a["action"] == "allocation_decision"]
    assert summaries and "trailing Sharpe" in summaries[0]["why"] and "allocation" in summaries[0]["why"]
    ensemble = read_json(s / "segment_5" / "segment_results.json")["ensemble_portfolio"]
    assert len(ensemble["members"]) >= 3 and ensemble["rebalances"] > 0
    assert {"pnl", "equal_weights_pnl", "no_override_pnl", "override_bars", "final"} <= set(ensemble)
    assert read_json(s / "metrics_global.json")["ensemble"] == ensemble
    summary = (s / "session_summary.md").read_text()
    assert "Ensemble portfolio" in summary
    # each member on a line of its own, told apart by its label and found on the leaderboard by its id
    table = [line.split(" | ") for line in summary.split("## Ensemble portfolio")[1].splitlines() if line.startswith("| ")]
    members = [(cells[0].removeprefix("| "), cells[1]) for cells in table[2:]]
    assert [m for m, _ in members] == ensemble["members"] and len({m.split(":", 1)[1] for m, _ in members}) == len(members)
    assert all(cid.startswith("c-") and f"| {cid} |" in summary.split("## Ensemble")[0] for _, cid in members)
    config = read_json(s / "session_config.json")
    assert config["settings"]["approval"] == "auto" and config["data"]["kind"] == "synthetic"
    assert "api_key" not in json.dumps(config).lower()  # the sentinel-key test of the LLM issue goes further


def test_leaderboard_ranks_on_validation_and_shows_the_deflated_sharpe(full_session: Path):
    metrics = read_json(full_session / "metrics_global.json")
    standings = metrics["standings"]
    assert standings[0]["rank"] == 1 and metrics["best"]["config_id"] == standings[0]["config_id"]
    keys = [(-s["val_score"], -s["val_pnl"], s["config_id"]) for s in standings]
    assert keys == sorted(keys)
    assert any(s["deflated_sharpe"] is not None for s in standings)
    assert all(s["deflated_sharpe"] is None or 0.0 <= s["deflated_sharpe"] <= 1.0 for s in standings)
    summary = (full_session / "session_summary.md").read_text()
    assert "deflated Sharpe" in summary and standings[0]["config_id"] in summary


def test_same_seed_gives_identical_trades_scores_and_plans(tmp_path: Path, small_reference: Path):
    out = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path), "--workers", "1")
    assert out.returncode == 0, out.stderr
    # one worker instead of two: the pipeline depth, not the pool, fixes when patches apply
    assert_same_sessions(small_reference, only_session(tmp_path))


def test_another_seed_gives_other_trades(tmp_path: Path, small_reference: Path):
    out = cli("run", "--headless", "--segments", "5", "--tests", "12", "--seed", "12", "--sessions-dir", str(tmp_path))
    assert out.returncode == 0
    other = only_session(tmp_path)
    a = snapshot(small_reference)["segment_1/seg1_test001/trades.jsonl"]
    b = snapshot(other)["segment_1/seg1_test001/trades.jsonl"]
    assert a != b


@pytest.mark.parametrize(
    "crash_at",
    ["after_test:5", "after_test:29", "segment_start:3", "summary"],
    ids=["mid-segment-1", "mid-segment-3", "at-a-segment-start", "while-writing-the-summary"],
)
def test_sigkill_at_any_point_then_resume_equals_an_uninterrupted_run(tmp_path: Path, small_reference: Path, crash_at):
    crashed = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path), env={"MAESTRO_CRASH_AT": crash_at})
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    session = only_session(tmp_path)
    assert conductor_state(session)["state"] in ("running", "waiting")
    status = cli("ls", "--sessions-dir", str(tmp_path))
    assert "interrupted" in status.stdout
    resumed = cli("run", "--resume", str(session))
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert_same_sessions(small_reference, session)
    applied = [a["plan_id"] for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert len(applied) == len(set(applied)), "a patch was applied twice"


def approve_all(session: Path, proc) -> None:
    """Play the human: approve every plan as it comes, until the conductor exits."""
    decided: set[str] = set()

    def new_plans():
        if conductor_state(session).get("state") != "waiting":
            return []
        return [p for p in pending_plans(session) if p["plan_id"] not in decided]

    while True:
        wait_for(lambda: proc.poll() is not None or new_plans(), timeout=60, what="a plan to decide or the end")
        if proc.poll() is not None:
            return
        for plan in new_plans():
            decided.add(plan["plan_id"])
            out = cli("decide", str(session), plan["plan_id"], "approve")
            assert out.returncode == 0, out.stderr


def test_sigkill_with_a_plan_pending_then_resume_keeps_it_pending_and_applies_it_once(tmp_path: Path):
    manual = ("--segments", "2", "--tests", "15", "--seed", "5", "--approval", "manual")
    ref_dir = tmp_path / "reference"
    ref = cli_background("run", "--headless", *manual, "--sessions-dir", str(ref_dir), env=EAGER_RULES)
    ref_session = wait_for(lambda: find_session(ref_dir), what="the reference session folder")
    approve_all(ref_session, ref)
    assert ref.wait(60) == 0, ref.stderr.read()

    crash_dir = tmp_path / "crashed"
    proc = cli_background("run", "--headless", *manual, "--sessions-dir", str(crash_dir), env=EAGER_RULES)
    session = wait_for(lambda: find_session(crash_dir), what="the session folder")
    waiting = wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
                       what="a pending plan")
    plan_id = waiting[0]["plan_id"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    resumed = cli_background("run", "--resume", str(session))
    wait_for(lambda: conductor_state(session).get("pid") == resumed.pid and conductor_state(session).get("state") == "waiting",
             what="the resumed conductor to wait again")
    assert plan_id in {p["plan_id"] for p in pending_plans(session)}, "the pending plan was lost"
    approve_all(session, resumed)
    assert resumed.wait(60) == 0, resumed.stderr.read()
    assert_same_sessions(ref_session, session)
    applied = [a["plan_id"] for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert applied.count(plan_id) == 1


def test_worker_killed_mid_test_is_retried_once_and_the_session_goes_on(tmp_path: Path, small_reference: Path):
    out = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path),
              env={"MAESTRO_FAULT_KILL_WORKER": "seg1_test003@1"})
    assert out.returncode == 0, out.stderr
    session = only_session(tmp_path)
    log = (session / "segment_1" / "seg1_test003" / "test.log").read_text()
    assert "attempts: 2" in log and "FAILED" not in log
    assert_same_sessions(small_reference, session)  # the retry changed nothing


def test_worker_that_dies_twice_fails_its_test_and_the_session_completes(tmp_path: Path):
    out = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path),
              env={"MAESTRO_FAULT_KILL_WORKER": "seg2_test004"})
    assert out.returncode == 0, out.stderr
    session = only_session(tmp_path)
    log = (session / "segment_2" / "seg2_test004" / "test.log").read_text()
    assert "FAILED: worker process died twice" in log and "attempts: 2" in log
    assert read_json(session / "segment_2" / "segment_results.json")["tests_failed"] == 1
    failures = [a for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "test_failed"]
    assert [f["details"]["test"] for f in failures] == ["seg2_test004"]
    assert (session / "segment_2" / "seg2_test005" / "trades.jsonl").exists()
    assert read_json(session / "conductor.json")["state"] == "finished"


def research_params_of(session: Path, test: str) -> dict:
    seg = test.split("_")[0].replace("seg", "segment_")
    rows = read_leaderboard_csv(session / seg / test / "leaderboard_base.csv")
    return json.loads(next(r for r in rows if r.role == "chosen").params_json)


def test_manual_mode_stops_at_a_plan_and_decisions_take_effect(tmp_path: Path):
    proc = cli_background("run", "--headless", "--segments", "1", "--tests", "60", "--seed", "5",
                          "--approval", "manual", "--sessions-dir", str(tmp_path), env=EAGER_RULES)
    session = wait_for(lambda: find_session(tmp_path), what="the session folder")
    depth = read_json(session / "session_config.json")["settings"]["pipeline_depth"]

    def next_plan(exclude=frozenset()):
        return wait_for(
            lambda: conductor_state(session).get("state") == "waiting"
            and sorted((p for p in pending_plans(session) if p["plan_id"] not in exclude), key=lambda p: p["plan_id"]),
            what="a pending plan",
        )[0]

    # 1. the conductor holds: no test after the ones already in flight has started
    plan = next_plan()
    emitted_at_test = int(plan["test_id"].split("test")[1])
    last_in_flight = session / "segment_1" / f"seg1_test{emitted_at_test + depth - 1:03d}"
    wait_for(last_in_flight.exists, what="the tests in flight to finish")
    assert not (session / "segment_1" / f"seg1_test{emitted_at_test + depth:03d}").exists()
    assert conductor_state(session)["waiting_for"].startswith(f"decision on plan {plan['plan_id']}")
    parameter = plan["patch"][0]["parameter"]

    # 2. an out-of-range edit is refused by `decide`, nothing is written, the plan stays pending
    bad_value = {"atr_stop_mult": "50", "hard_tp_usd": "1e9", "timeout_bars": "0", "vhf_min": "5",
                 "atr_z_min": "-99", "gate_vhf": "maybe"}[parameter]
    out = cli("decide", str(session), plan["plan_id"], "edit", f"{parameter}={bad_value}")
    assert out.returncode == 2 and parameter in out.stderr and "Traceback" not in out.stderr
    assert not (session / "decisions.jsonl").exists() or not read_jsonl(session / "decisions.jsonl").records
    # ... and one written straight into decisions.jsonl is refused by the conductor, with a reason
    append_jsonl(session / "decisions.jsonl", [{
        "v": 1, "kind": "decision", "session_id": session.name, "emitted_at": "2026-11-21T00:00:00Z",
        "plan_id": plan["plan_id"], "nonce": plan["nonce"], "decision": "edit", "by": "test@box", "note": "",
        "patch": [{"parameter": parameter, "old_value": plan["patch"][0]["old_value"], "new_value": bad_value}],
    }])
    refusal = wait_for(lambda: [a for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "decision_refused"],
                       what="the conductor's refusal")
    assert parameter in refusal[0]["why"]
    assert plan["plan_id"] in {p["plan_id"] for p in pending_plans(session)}

    # 3. a valid edit applies the human's value to the tests that start afterwards
    new_value = {"atr_stop_mult": "2.25", "hard_tp_usd": "750", "timeout_bars": "150", "vhf_min": "0.33",
                 "atr_z_min": "-0.9", "gate_vhf": "true"}[parameter]
    out = cli("decide", str(session), plan["plan_id"], "edit", f"{parameter}={new_value}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{plan['plan_id']}: edited"), out.stdout
    audit = [a for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "patch_applied"]
    assert audit[-1]["plan_id"] == plan["plan_id"]
    from_test = audit[-1]["details"]["from_test"]
    assert from_test == f"seg1_test{emitted_at_test + depth:03d}"
    # 4. approve, then veto
    plan2 = next_plan(exclude={plan["plan_id"]})
    out = cli("decide", str(session), plan2["plan_id"], "approve")
    assert out.returncode == 0 and "applied" in out.stdout, out.stdout + out.stderr
    plan3 = next_plan(exclude={plan["plan_id"], plan2["plan_id"]})
    out = cli("decide", str(session), plan3["plan_id"], "veto", "--note", "not now")
    assert out.returncode == 0 and "vetoed" in out.stdout, out.stdout + out.stderr

    # the edited value reached the tests that started after the decision, not those before
    wait_for((session / "segment_1" / from_test).exists, what=from_test)
    after = research_params_of(session, from_test)[parameter]
    assert after == pytest.approx(float(new_value)) if parameter != "gate_vhf" else after is True
    before = f"seg1_test{emitted_at_test + depth - 1:03d}"
    assert research_params_of(session, before)[parameter] == plan["patch"][0]["old_value"]
    statuses = {}
    for rec in read_jsonl(session / "plans.jsonl").records:
        statuses.setdefault(rec["plan_id"], []).append(rec["status"])
    # an edited plan is `edited` for good (a later line may add its outcome), an approved one `applied`
    assert set(statuses[plan["plan_id"]]) == {"pending", "edited"}
    assert set(statuses[plan2["plan_id"]]) == {"pending", "applied"}
    assert statuses[plan3["plan_id"]] == ["pending", "vetoed"]
    audit = read_jsonl(session / "audit.jsonl").records
    assert not [a for a in audit if a["action"] == "patch_applied" and a["plan_id"] == plan3["plan_id"]]
    # a replayed decision is a logged no-op
    decisions = read_jsonl(session / "decisions.jsonl").records
    append_jsonl(session / "decisions.jsonl", [decisions[-1]])
    wait_for(lambda: [a for a in read_jsonl(session / "audit.jsonl").records if a["action"] == "nonce_replayed"],
             what="the replay to be logged")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    assert conductor_state(session)["state"] == "stopped"


def test_ctrl_c_to_a_headless_run_stops_it_cleanly_after_the_tests_running(tmp_path: Path):
    """A terminal's Ctrl-C reaches the whole process group (conductor, fork server, workers): the workers leave
    it to the conductor, which stops cleanly, not with a worker's traceback or a failed session."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "maestro_tui.cli", "run", "--headless", "--segments", "2", "--tests", "200",
         "--sessions-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    session = wait_for(lambda: find_session(tmp_path), what="the session folder")
    wait_for(lambda: (session / "segment_1" / "seg1_test010").exists(), what="ten tests done", timeout=120)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "stopped; resume with" in out and "Traceback" not in err and "failed" not in out + err
    assert conductor_state(session)["state"] == "stopped"
    assert len(list((session / "segment_1").glob("seg1_test*"))) < 200


def test_a_session_named_by_a_relative_path_still_hears_its_decisions(tmp_path: Path):
    # the console starts its conductor with the path as typed: watchfiles reports absolute paths
    proc = cli_background("run", "--headless", "--segments", "1", "--tests", "30", "--seed", "5", "--approval",
                          "manual", "--sessions-dir", "relative-sessions", cwd=tmp_path, env=EAGER_RULES)
    session = wait_for(lambda: find_session(tmp_path / "relative-sessions"), what="the session folder")
    plan = wait_for(lambda: conductor_state(session).get("state") == "waiting" and pending_plans(session),
                    what="a pending plan")[0]
    out = cli("decide", str(session), plan["plan_id"], "approve", "--wait", "20")
    assert out.returncode == 0 and "applied" in out.stdout, out.stdout + out.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130


def test_decide_on_an_unknown_plan_says_so(tmp_path: Path, small_reference: Path):
    stopped = tmp_path / small_reference.name
    shutil.copytree(small_reference, stopped)
    (stopped / "conductor.json").unlink()  # interrupted before it said anything: decisions still welcome
    out = cli("decide", str(stopped), "P9-999", "approve")
    assert out.returncode == 2 and "no plan P9-999" in out.stderr


def test_a_finished_session_takes_no_decision_and_no_resume(small_reference: Path):
    before = snapshot(small_reference)
    applied = read_jsonl(small_reference / "plans.jsonl").records[0]["plan_id"]
    out = cli("decide", str(small_reference), applied, "veto")
    assert out.returncode == 2 and "has finished" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = cli("run", "--resume", str(small_reference))
    assert out.returncode == 2 and "has finished" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert snapshot(small_reference) == before, "a refused command wrote to the session"


def test_ls_and_report(tmp_path: Path, small_reference: Path):
    out = cli("ls", "--sessions-dir", str(small_reference.parent))
    assert small_reference.name in out.stdout and "finished" in out.stdout and "60/60" in out.stdout
    import shutil

    small_reference = Path(shutil.copytree(small_reference, tmp_path / small_reference.name))  # others compare the original
    before = read_json(small_reference / "metrics_global.json")
    (small_reference / "session_summary.md").unlink()
    out = cli("report", str(small_reference))
    assert out.returncode == 0
    assert read_json(small_reference / "metrics_global.json") == before
    summary = (small_reference / "session_summary.md").read_text()
    for chart in ("equity.png", "targets.png", "allocation.png"):
        assert (small_reference / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", chart
        assert f"]({chart})" in summary
    best = before["best"]
    assert f"| 1 | {best['label']} | {best['config_id']} | {best['tests']} | {best['val_trades']} |" in summary


def test_bad_market_data_stops_before_a_session_folder_is_made(tmp_path: Path):
    bad = tmp_path / "bars.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n1700000000000,1,1,1,1,1\n1700000000000,1,1,1,1,1\n")
    out = cli("run", "--headless", "--data", str(bad), "--sessions-dir", str(tmp_path / "s"))
    assert out.returncode == 2 and "row 3" in out.stderr and "duplicate" in out.stderr
    assert not (tmp_path / "s").exists() or not list((tmp_path / "s").iterdir())


def test_dask_local_cluster_gives_the_same_files_as_the_process_pool(tmp_path: Path, small_reference: Path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        out = cli("run", "--headless", *SMALL, "--sessions-dir", str(tmp_path), "--dask", cluster.scheduler_address)
    assert out.returncode == 0, out.stderr
    assert_same_sessions(small_reference, only_session(tmp_path))

"""Setting a session up: the bars it runs on, the tests it fits to them, its baseline, its config, its agents.

Everything here is decided before the session's folder exists (`session_start`: bad data,
too little of it, a trader's strategy that fails its check or a bad `--baseline` stop the
command with one line) or when a conductor opens the folder (`build_agents`).
session_config.json records the outcome; a resume reads it back and decides nothing again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.baseline import Baseline, choose_baseline
from agents.critic import Critic, OfflineCritic
from agents.documents import SessionConfigDoc
from agents.llm import LLMClient, Meter, key_for
from agents.llm_agents import LLMCritic, LLMStrategist
from agents.settings import Settings
from agents.strategist import OfflineStrategist, Strategist
from engine.data import Bars, load_bars
from engine.events import SCHEMA_VERSION, utc_now_iso
from engine.params import Params
from engine.reports.documents import checked
from engine.session import LLM_RECORDS, SessionDir
from engine.strategies import get as get_strategy
from engine.strategies import load_entry_points, load_file, recorded, registered
from engine.strategy import Strategy, StrategyError
from engine.strategy_check import CHECK_BARS, check_strategy
from engine.synthetic import synthetic_bars
from engine.windows import DAY_MS, NoWindow, TestPlan, bars_needed, fit_tests, walk_forward_windows, window_need


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


def plan_tests(n_bars: int, interval_ms: int, source: str, settings: Settings) -> TestPlan:
    """The session's tests fitted to the windows `n_bars` bars hold (NoWindow, with a one-line reason, when none)."""
    windows = len(walk_forward_windows(n_bars, interval_ms))
    if not windows:
        days = n_bars * interval_ms / DAY_MS
        raise NoWindow(f"{source}: {n_bars} bars ({days:.1f} days) hold no walk-forward window: one needs {window_need()}")
    return fit_tests(windows, settings.segments, settings.tests, settings.allow_reuse)


def session_strategies(settings: Settings) -> list[Strategy]:
    """What the session researches: `settings.strategies` in order (a file — the trader's own code,
    loaded because they named it — or a registered name); none named: every registered strategy,
    the built-ins and the installed packages'. StrategyError (one line) for a file that fails."""
    load_entry_points()
    if not settings.strategies:
        return list(registered().values())
    out: dict[str, Strategy] = {}
    for item in settings.strategies:
        out.update((s.name, s) for s in named_strategies(item))
    return list(out.values())


def named_strategies(item: str) -> tuple[Strategy, ...]:
    """What `--strategy ITEM` names: a registered strategy (a name, no file suffix), else what the
    file ITEM declares, loaded and registered. StrategyError (one line) for an unknown name or a
    file that fails. Load the entry points first for their names to count."""
    if not Path(item).suffix and (item in registered() or not Path(item).exists()):
        return (get_strategy(item),)
    return load_file(item)


def check_own_strategies(strategies: list[Strategy], bars: Bars, seed: int) -> None:
    """Refuse the trader's strategies (every one not built in) that fail `check_strategy` on the
    first CHECK_BARS of `bars`: StrategyError, the first failure in one line. The built-ins are
    checked by the tests, not at every session start."""
    sample = bars.slice(0, min(len(bars), CHECK_BARS))
    for s in strategies:
        if s.origin == "built-in":
            continue
        verdict = check_strategy(s, sample, seed=seed)
        if verdict.refusal:
            raise StrategyError(verdict.refusal)


@dataclass(frozen=True)
class SessionStart:
    """What a new session is decided on before its folder exists: the data, its tests, its strategies, its baseline."""

    data: dict[str, Any]
    tests: TestPlan
    baseline: Baseline
    strategies: list[Strategy]


def session_start(settings: Settings) -> SessionStart:
    """Read the data and the strategies, check the trader's own (`check_own_strategies`), choose tests and
    baseline; DataError, NoWindow, StrategyError or ValueError (one line) on bad input."""
    strategies = session_strategies(settings)
    data = data_source(settings)
    bars: Bars | None = None
    if data["kind"] == "file":
        bars = load_source(data)
        tests = plan_tests(len(bars), bars.interval_ms, settings.data or data["path"], settings)
    else:
        tests = plan_tests(data["n_bars"], data["interval_ms"], "synthetic data", settings)
    if any(s.origin != "built-in" for s in strategies):  # the trader's own code: checked before it is used
        check_own_strategies(strategies, bars or load_source(data), settings.seed)
    base = choose_baseline(Path(settings.sessions_dir), data, settings.baseline, settings.baseline_min_dsr)
    names = [s.name for s in strategies]
    if base.params.method not in names:  # the trader named other strategies: start from the first one's defaults
        base = Baseline(Params(method=names[0], **base.params.model_dump(exclude={"method", "method_params"})),
                        f"{names[0]} at its declared defaults (the first strategy named), the shared parameters "
                        f"from {base.origin}")
    return SessionStart(data, tests, base, strategies)


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
    return checked(SessionConfigDoc, {
        "v": SCHEMA_VERSION,
        "session_id": session.session_id,
        "created_at": utc_now_iso(),
        "settings": values,
        "data": start.data,
        "windows": start.tests.to_json(),
        "strategies": recorded(start.strategies),
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

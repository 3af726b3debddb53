"""Session settings: defaults < ~/.config/maestro-tui/config.toml < MAESTRO_* env < flags.

`session_config.json` records the values a session actually ran with (never API keys).
Nested values take `__` in the environment: MAESTRO_TARGETS__HIT_MIN=0.55.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from agents.llm import LLMSettings
from engine.allocation import AllocationSettings
from engine.targets import Targets

ApprovalMode = Literal["manual", "auto", "veto-only"]
NotifyEvent = Literal["plan_pending", "session_finished", "session_failed", "llm_budget_spent"]


def config_path() -> Path:
    """The user config file: $MAESTRO_CONFIG, else $XDG_CONFIG_HOME or ~/.config, /maestro-tui/config.toml."""
    if os.environ.get("MAESTRO_CONFIG"):
        return Path(os.environ["MAESTRO_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "maestro-tui" / "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Rules(_Section):
    """The analyzer's deterministic rules: when each fires and the step it proposes."""

    check_every_episodes: int = Field(10, ge=1, description="run the rules every N out-of-sample episodes")
    window_episodes: int = Field(30, ge=5, description="rules look at the last N out-of-sample episodes, or more")
    min_trades: int = Field(30, ge=1, description="... as many more as it takes to hold this many trades")
    confidence_z: float = Field(
        1.28, ge=0, le=5,
        description="a rule fires only when the window shows its condition at this one-sided z (1.28: 90 %; 0: on the estimate alone)",
    )
    hit_below: float = Field(0.48, ge=0, le=1)
    hit_consecutive_checks: int = Field(3, ge=1)
    hit_step_atr_stop_mult: float = Field(0.3, gt=0)
    payoff_below: float = Field(1.1, ge=0)
    payoff_step_hard_tp_usd: float = Field(200.0, gt=0)
    maxdd_below_usd: float = Field(-2000.0, le=0)
    maxdd_step_timeout_bars: int = Field(60, ge=1)
    blunders_per_100_above: float = Field(2.0, ge=0)
    blunders_step_vhf_min: float = Field(0.05, gt=0)
    high_vol_share_below: float = Field(0.30, ge=0, le=1)
    high_vol_step_atr_z_min: float = Field(0.25, gt=0)

    @model_validator(mode="after")
    def _steps_within_max_step(self) -> Rules:
        # a rule's step is a plan's change: it keeps the parameter's max step like any other
        from engine.params import SHARED_BOUNDS

        for name, value in self.model_dump().items():
            if "_step_" in name:
                parameter = name.split("_step_", 1)[1]
                limit = SHARED_BOUNDS[parameter].max_step
                if limit is not None and value > limit:
                    raise ValueError(f"{name} = {value:g} is more than {parameter}'s max step {limit:g}")
        return self


class AgentChoice(_Section):
    """Which provider plays a role. "auto": the role's default provider if its API key is
    set (ANTHROPIC_API_KEY for the Strategist, OPENAI_API_KEY for the Critic), else offline."""

    provider: Literal["auto", "offline", "anthropic", "openai"] = "auto"
    model: str = Field("", description="the provider's model; empty: the llm settings' default")


class ConsoleSettings(_Section):
    """The console's look and keys."""

    theme: str = Field("maestro-dark", description="maestro-dark, maestro-light, maestro-high-contrast or a Textual theme")
    bell: bool = Field(False, description="ring the terminal bell on a new plan")
    keys: dict[str, str] = Field(default_factory=dict, description="binding id -> key(s), e.g. plans.review = 'r'")


class NotifySettings(_Section):
    """Hooks for a trader who is not watching (agents/notify.py): a command, a webhook, or both."""

    command: str = Field("", description="command line (no shell) that gets each event's JSON on stdin; empty: none")
    webhook_url: str = Field("", description="http(s) URL that gets each event's JSON by POST; empty: none")
    timeout_s: float = Field(5.0, ge=0.1, le=60, description="seconds each hook call may take")
    events: list[NotifyEvent] = Field(
        default_factory=lambda: list(get_args(NotifyEvent)), description="the events that fire the hooks"
    )

    @field_validator("command")
    @classmethod
    def _splits(cls, value: str) -> str:
        shlex.split(value)  # an unbalanced quote: ValueError, reported on this field
        return value

    @field_validator("webhook_url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - a port that is not a number raises ValueError here
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
        return value


class Settings(BaseSettings):
    """Everything a session can be told; see README "Settings"."""

    model_config = SettingsConfigDict(
        env_prefix="MAESTRO_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    sessions_dir: Path = Field(Path("sessions"), description="where sessions live")
    data: str | None = Field(None, description="bars file; None = the embedded synthetic data")
    seed: int = Field(7, description="seed of the synthetic data and the offline agents")
    segments: int = Field(5, ge=1, le=50)
    tests: int = Field(100, ge=1, le=100_000, description="tests per segment")
    allow_reuse: bool = Field(
        False, description="data with fewer windows than tests: run every test asked, reusing windows (marked), "
        "instead of fitting the session to the windows the data holds",
    )
    baseline: str = Field(
        "auto", min_length=1,
        description="the config the session starts from: auto (an earlier session's best that cleared "
        "baseline_min_dsr, on the same data), defaults, or a session folder or id",
    )
    baseline_min_dsr: float = Field(
        0.95, ge=0, le=1, description="auto baseline: the deflated Sharpe an earlier session's best needs to be carried forward",
    )
    strategies: list[str] = Field(
        default_factory=list,
        description="what the session researches: strategy files (the trader's own) or registered names; "
        "empty: every registered strategy (the built-ins and installed packages')",
    )
    workers: int = Field(0, ge=0, le=512, description="worker processes; 0 = one per core")
    approval: ApprovalMode | None = Field(None, description="None: auto when headless, manual in the console")
    veto_grace_s: float = Field(30.0, ge=0, le=86_400, description="veto-only: seconds before a plan applies itself")
    pipeline_depth: int = Field(
        8, ge=1, le=10_000,
        description="tests started ahead of the one being processed; a patch applies this many tests later",
    )
    dask: str | None = Field(None, description="dask.distributed scheduler address instead of local processes")
    episode_bars: int = Field(120, ge=10, le=10_000)
    blunder_bars: int = Field(3, ge=1, le=100)
    targets: Targets = Targets()
    rules: Rules = Rules()
    allocation: AllocationSettings = AllocationSettings()
    console: ConsoleSettings = ConsoleSettings()
    notify: NotifySettings = NotifySettings()
    llm: LLMSettings = LLMSettings()
    record_llm: bool = Field(False, description="write LLM request/response pairs to llm_records.jsonl (no keys)")
    strategist: AgentChoice = AgentChoice()
    critic: AgentChoice = AgentChoice()

    def provider_for(self, role: Literal["strategist", "critic"]) -> str:
        """The provider a role will use: "auto" resolved by whether its default's key is set."""
        from agents.llm import key_for

        choice = getattr(self, role).provider
        if choice == "auto":
            default = "anthropic" if role == "strategist" else "openai"
            return default if key_for(default) else "offline"
        return choice

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: flags (init) > environment > config file > defaults
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path())

    def effective_workers(self) -> int:
        """Worker processes to start: the setting, or one per core."""
        return self.workers or os.cpu_count() or 1


def load_settings(**flags: Any) -> Settings:
    """Settings from every source; `flags` (None values dropped) win over the rest."""
    return Settings(**{k: v for k, v in flags.items() if v is not None})

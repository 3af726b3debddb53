"""Talking to LLMs: one call shape over the anthropic and openai SDKs, with budget and cost.

`LLMClient.ask(system, user, schema_name, schema)` returns the model's JSON object and the
tokens it used. Anthropic answers through a forced tool whose input_schema is ours; OpenAI
(or any OpenAI-compatible server: ollama, vLLM, llama.cpp) through structured outputs.
The SDKs retry 408/409/429/5xx themselves with timeouts. Errors come back as LLMError with
`kind`: "auth" (401/403: the role goes offline for the session), "budget", "malformed",
or "transient" (this turn only). Keys are read by the SDKs from the environment and never
written anywhere by us; recorded exchanges carry no headers.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.events import utc_now_iso
from engine.jsonl import append_jsonl

ErrorKind = Literal["auth", "budget", "malformed", "transient"]


class LLMError(Exception):
    """A failed LLM call; `kind` says what the conductor should do about it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class LLMSettings(BaseModel):
    """Models, limits and prices; keys and base URLs come from the environment."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    anthropic_model: str = "claude-sonnet-5"
    openai_model: str = "gpt-4o-mini"
    max_tokens: int = Field(1024, ge=64, le=32_000)
    timeout_s: float = Field(30.0, gt=0, le=600)
    max_retries: int = Field(2, ge=0, le=10)
    max_calls: int = Field(60, ge=0, description="LLM calls per session, all roles together")
    max_tokens_total: int = Field(200_000, ge=0, description="input + output tokens per session")
    price_in_per_mtok: dict[str, float] = Field(default_factory=lambda: {"anthropic": 3.0, "openai": 0.15})
    price_out_per_mtok: dict[str, float] = Field(default_factory=lambda: {"anthropic": 15.0, "openai": 0.60})


@dataclass
class Meter:
    """Calls, tokens and cost of a session's LLM use, shared by every role (thread-safe)."""

    settings: LLMSettings
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> None:
        """Raise LLMError("budget") when another call would break a cap."""
        s = self.settings
        if self.calls >= s.max_calls:
            raise LLMError("budget", f"LLM budget spent: {self.calls} of {s.max_calls} calls")
        if self.input_tokens + self.output_tokens >= s.max_tokens_total:
            raise LLMError("budget", f"LLM budget spent: {self.input_tokens + self.output_tokens} of {s.max_tokens_total} tokens")

    @property
    def spent(self) -> bool:
        """Whether a cap is reached: no further call will be made."""
        try:
            self.check()
        except LLMError:
            return True
        return False

    def record(self, provider: str, input_tokens: int, output_tokens: int) -> None:
        with self._lock:
            self.calls += 1
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens
            self.cost_usd += (input_tokens * self.settings.price_in_per_mtok.get(provider, 0.0)
                              + output_tokens * self.settings.price_out_per_mtok.get(provider, 0.0)) / 1e6

    def summary(self) -> dict[str, Any]:
        return {"calls": self.calls, "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": round(self.cost_usd, 6)}


@dataclass(frozen=True)
class Answer:
    """A model's JSON object (or None if it sent none) and the raw text, for the repair prompt."""

    data: dict[str, Any] | None
    raw: str
    input_tokens: int
    output_tokens: int


def key_for(provider: str) -> str | None:
    """The API key the SDK would use for `provider`, if any (never logged or written)."""
    return os.environ.get("ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY") or None


class LLMClient:
    """One provider's client; `ask` makes a call and meters it."""

    def __init__(self, provider: Literal["anthropic", "openai"], settings: LLMSettings, meter: Meter, *,
                 http_client: Any = None, record_to: Path | None = None) -> None:
        self.provider = provider
        self.settings = settings
        self.meter = meter
        self.record_to = record_to
        kw: dict[str, Any] = {"timeout": settings.timeout_s, "max_retries": settings.max_retries}
        if http_client is not None:
            kw["http_client"] = http_client
        self._sdk: ModuleType  # the provider's SDK, for its error classes
        self.client: Any  # anthropic.Anthropic or openai.OpenAI, as self.provider says; `ask` calls it by provider
        if provider == "anthropic":
            import anthropic

            self.model = settings.anthropic_model
            self._sdk = anthropic
            self.client = anthropic.Anthropic(**kw)
        else:
            import openai

            self.model = settings.openai_model
            self._sdk = openai
            self.client = openai.OpenAI(**kw)

    def ask(self, system: str, user: str, schema_name: str, schema: dict[str, Any]) -> Answer:
        """One call: the answer as a JSON object shaped by `schema` (not yet validated)."""
        self.meter.check()
        request: dict[str, Any]
        try:
            if self.provider == "anthropic":
                request = {
                    "model": self.model, "max_tokens": self.settings.max_tokens, "system": system,
                    "messages": [{"role": "user", "content": user}],
                    "tools": [{"name": schema_name, "description": f"Answer with a {schema_name}.", "input_schema": schema}],
                    "tool_choice": {"type": "tool", "name": schema_name},
                }
                response = self.client.messages.create(**request)
                usage = response.usage
                tokens_in, tokens_out = usage.input_tokens or 0, usage.output_tokens or 0
                block = next((b for b in response.content if getattr(b, "type", "") == "tool_use"), None)
                data = block.input if block is not None and isinstance(block.input, dict) else None
                raw = json.dumps(data) if data is not None else "".join(getattr(b, "text", "") for b in response.content)
            else:
                request = {
                    "model": self.model, "max_tokens": self.settings.max_tokens,
                    "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                    "response_format": {"type": "json_schema",
                                        "json_schema": {"name": schema_name, "schema": schema, "strict": False}},
                }
                response = self.client.chat.completions.create(**request)
                usage = response.usage
                tokens_in = (usage.prompt_tokens or 0) if usage else 0
                tokens_out = (usage.completion_tokens or 0) if usage else 0
                raw = response.choices[0].message.content or ""
                try:
                    parsed = json.loads(raw)
                    data = parsed if isinstance(parsed, dict) else None
                except json.JSONDecodeError:
                    data = None
        except self._sdk.AuthenticationError as err:
            raise LLMError("auth", f"{self.provider}: authentication refused ({err.status_code})") from None
        except self._sdk.PermissionDeniedError as err:
            raise LLMError("auth", f"{self.provider}: permission denied ({err.status_code})") from None
        except self._sdk.APIStatusError as err:
            raise LLMError("transient", f"{self.provider}: HTTP {err.status_code}") from None
        except self._sdk.APIConnectionError as err:
            raise LLMError("transient", f"{self.provider}: {type(err).__name__}: cannot reach the API") from None
        except (self._sdk.APIResponseValidationError, ValueError, TypeError, AttributeError, IndexError) as err:
            raise LLMError("malformed", f"{self.provider}: malformed response ({type(err).__name__})") from None
        self.meter.record(self.provider, tokens_in, tokens_out)
        if self.record_to is not None:
            append_jsonl(self.record_to, [{
                "at": utc_now_iso(), "provider": self.provider, "request": request, "response": raw,
                "input_tokens": tokens_in, "output_tokens": tokens_out,
            }])
        return Answer(data, raw, tokens_in, tokens_out)

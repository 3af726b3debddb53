"""Hermetic tests: no real LLM keys or endpoints reach a test, whatever the shell exports."""

from __future__ import annotations

import os

import pytest

LLM_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "ANTHROPIC_AUTH_TOKEN")


@pytest.fixture(autouse=True, scope="session")
def no_real_llm():
    saved = {name: os.environ.pop(name) for name in LLM_VARIABLES if name in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def own_registry(monkeypatch):
    """The strategies a test registers (files, entry points; a console in this process loading a session's)
    are forgotten after it: a session started with none named researches every registered strategy."""
    from engine import strategies

    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies.registered()))
    monkeypatch.setattr(strategies, "_FILES", {})
    monkeypatch.setattr(strategies, "_ENTRY_POINTS_LOADED", strategies._ENTRY_POINTS_LOADED)

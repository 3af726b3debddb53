"""Settings: defaults < config.toml < MAESTRO_* environment < flags; bad values named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from agents.settings import load_settings
from tests.sessions import cli

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "config.toml"
    monkeypatch.setenv("MAESTRO_CONFIG", str(path))
    for name in ("MAESTRO_SEED", "MAESTRO_TESTS", "MAESTRO_TARGETS__HIT_MIN", "MAESTRO_SESSIONS_DIR"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_each_source_overrides_the_one_before(config_file, monkeypatch):
    assert load_settings().seed == 7  # default
    config_file.write_text("seed = 11\ntests = 40\n[targets]\nhit_min = 0.55\n")
    s = load_settings()
    assert (s.seed, s.tests, s.targets.hit_min) == (11, 40, 0.55)
    monkeypatch.setenv("MAESTRO_SEED", "12")
    monkeypatch.setenv("MAESTRO_TARGETS__HIT_MIN", "0.6")
    s = load_settings()
    assert (s.seed, s.tests, s.targets.hit_min) == (12, 40, 0.6)
    assert load_settings(seed=13).seed == 13


def test_unknown_or_out_of_range_settings_are_refused(config_file):
    config_file.write_text("segmints = 3\n")
    with pytest.raises(ValidationError, match="segmints"):
        load_settings()
    config_file.write_text("[targets]\nhit_min = 1.5\n")
    with pytest.raises(ValidationError, match="hit_min"):
        load_settings()


def test_the_readme_config_examples_are_valid(config_file):
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2, "README lost its config.toml examples"
    config_file.write_text(blocks[0])
    s = load_settings()
    assert s.approval == "manual" and s.rules.hit_below == 0.48
    for block in blocks[1:]:
        config_file.write_text(block)
        load_settings()


def test_a_bad_setting_is_one_line_on_the_command_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules]\nwindow_episodes = 1\n")
    out = cli("run", "--headless", "--config", str(bad), "--sessions-dir", str(tmp_path / "s"))
    assert out.returncode == 2
    assert "rules.window_episodes" in out.stderr and "Traceback" not in out.stderr

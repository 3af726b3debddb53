"""The session reports in words a trader reads: plan pages, the summary's plans, charts of a stopped session."""

from __future__ import annotations

import re
import warnings

import pytest

from engine.events import describe_change
from engine.reports.charts import allocation_chart, equity_chart
from tests.sessions import EAGER_RULES, cli, headless_session, only_session


def test_a_change_reads_as_parameter_then_step():
    assert describe_change({"atr_stop_mult": "1.5 -> 1.8", "vhf_min": "0.25 -> 0.3"}) == (
        "atr_stop_mult 1.5 -> 1.8, vhf_min 0.25 -> 0.3")


def test_charts_of_a_session_with_no_test_and_no_allocation_warn_nothing(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib's "No artists with labels found to put in legend"
        equity_chart(tmp_path / "equity.png", [], tests=3)
        allocation_chart(tmp_path / "allocation.png", [])
    assert (tmp_path / "equity.png").stat().st_size and (tmp_path / "allocation.png").stat().st_size


def test_allocation_chart_puts_research_and_ensemble_on_panels_of_their_own_over_bar_time(tmp_path, monkeypatch):
    import engine.reports.charts as charts
    from engine.events import AllocationEvent, event_fields

    def event(ts: str, strategy: str, agent: str, override: bool = False) -> AllocationEvent:
        return AllocationEvent(**event_fields("allocation", "s"), ts=ts, strategy=strategy, sharpe=None, mode="ACTIVE",
                               allocation=0.2, previous_allocation=0.0, reason="test", agent_id=agent, override=override)

    saved = {}
    monkeypatch.setattr(charts._plt().Figure, "savefig", lambda fig, path: saved.setdefault("fig", fig))
    allocation_chart(tmp_path / "allocation.png", [
        event("2024-01-01T00:00:00.000Z", "macd_trend", "research/macd_trend"),
        event("2024-03-01T00:00:00.000Z", "1:macd_trend 12/26/9", "ensemble/1:macd_trend 12/26/9"),
        event("2024-03-02T00:00:00.000Z", "systemic-risk", "ensemble/systemic-risk", override=True),
    ])
    research, ensemble = saved["fig"].axes
    assert research.get_title().startswith("Research") and ensemble.get_title().startswith("Segment 5 ensemble")
    assert [line.get_label() for line in research.get_lines()] == ["macd_trend"]
    assert "1 systemic-risk override," in ensemble.get_title()
    assert research.xaxis.get_label().get_text() == "bar time (UTC)"


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    # eager rules: plans early enough that segments 2 and 4 apply some
    return headless_session(tmp_path_factory.mktemp("reports"), "--segments", "5", "--tests", "12", env=EAGER_RULES)


@pytest.mark.slow
def test_plan_pages_list_each_applied_change_as_a_sentence_not_a_dict(session):
    changes = []
    for k in (2, 4):
        page = (session / f"plan_after_segment_{k}.md").read_text()
        if "## Changes applied in this segment" in page:
            changes += [line for line in page.split("## Changes applied in this segment", 1)[1].splitlines()
                        if line.startswith("- ")]
    assert changes, "no plan was applied in segments 2 or 4: the test needs one"
    for line in changes:
        assert "{" not in line and "'" not in line, line
        assert re.fullmatch(r"- \w+ \S+ -> \S+(, \w+ \S+ -> \S+)* \(plan P\d+-\d+, from seg\d+_test\d+, by .+\)", line), line


@pytest.mark.slow
def test_the_summarys_plans_table_names_each_change_in_words(session):
    summary = (session / "session_summary.md").read_text()
    rows = [line for line in summary.split("## Plans and their effect", 1)[1].splitlines() if line.startswith("| P")]
    assert rows
    for row in rows:
        change = row.split(" | ")[2]
        assert "{" not in change and re.fullmatch(r"\w+ \S+ -> \S+(, \w+ \S+ -> \S+)*", change), row


@pytest.mark.slow
def test_report_on_a_session_killed_before_its_first_test_writes_every_chart_and_nothing_on_stderr(tmp_path):
    out = cli("run", "--headless", "--segments", "1", "--tests", "3", "--sessions-dir", str(tmp_path),
              env={"MAESTRO_CRASH_AT": "segment_start"})
    assert out.returncode != 0
    folder = only_session(tmp_path)
    out = cli("report", str(folder))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    for chart in ("equity.png", "targets.png", "allocation.png"):
        assert (folder / chart).stat().st_size

"""The event models of DESIGN.md §5: what they accept, what they refuse, how they round-trip."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from engine.events import (
    EVENT_FILES,
    SCHEMA_VERSION,
    AllocationEvent,
    AuditEvent,
    DecisionEvent,
    Event,
    MessageEvent,
    PatchItem,
    PlanEvent,
    ScoreEvent,
    TradeEvent,
    event_fields,
    event_to_json,
    latest_plans,
    parse_event,
    utc_now_iso,
)

BASE = {"session_id": "session_2026-11-21_1405", "emitted_at": "2026-11-21T14:05:00.123Z"}


def trade(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "ts": "2026-01-03T10:35:00Z",
        "episode_id": 4,
        "test_id": "seg1_test001",
        "tf": "5m",
        "side": "LONG",
        "reason": "ema_crossover",
        "entry_ts": "2026-01-03T10:05:00Z",
        "entry": 42_150.5,
        "exit": 42_390.0,
        "qty": 0.0237,
        "fees": 0.8,
        "pnl": 4.87,
        "gates": {"cvd": True, "imb": False, "atrz": True, "vhf": True},
        "bars_held": 6,
        "exit_reason": "tp_hit",
        "vol_bin": "high",
        "phase": "validation",
        **changes,
    }


def score(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "episode_id": 4,
        "test_id": "seg1_test001",
        "bars": 120,
        "n_trades": 7,
        "hit": 0.57,
        "payoff": 1.31,
        "total_pnl": 112.4,
        "maxdd": -310.0,
        "blunders": 1,
        "score": 63.5,
        "vol_regime": "mid",
        "phase": "validation",
        **changes,
    }


PATCH = [{"parameter": "atr_stop_mult", "old_value": 1.5, "new_value": 1.8}]


def plan(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "plan_id": "P1-007",
        "nonce": "n-5f1c",
        "episode_id": 30,
        "test_id": "seg1_test004",
        "agent": "critic",
        "action": "adjust_stop",
        "change": {"atr_stop_mult": "1.5 -> 1.8"},
        "patch": PATCH,
        "reason": "hit < 0.48 on 3 consecutive checks",
        "evidence": {"hit": 0.44, "checks": 3, "rule": "low_hit", "gated": True, "payoff": None},
        "status": "pending",
        **changes,
    }


def decision(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "plan_id": "P1-007",
        "nonce": "n-5f1c",
        "decision": "approve",
        "patch": PATCH,
        "by": "ana@trading-box",
        **changes,
    }


def allocation(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "ts": "2026-01-09T00:00:00Z",
        "strategy": "macd_trend",
        "sharpe": 0.72,
        "mode": "REDUCED",
        "allocation": 0.5,
        "previous_allocation": 1.0,
        "reason": "trailing Sharpe 0.72 is between 0.5 and 1.0",
        **changes,
    }


def audit(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "action": "patch_applied",
        "plan_id": "P1-007",
        "nonce": "n-5f1c",
        "who": "ana@trading-box",
        "why": "approved in the TUI",
        "details": {"applies_from": "seg1_test005", "patch": PATCH, "ok": True, "n": None},
        **changes,
    }


def message(**changes: Any) -> dict[str, Any]:
    return {
        **BASE,
        "agent": "critic",
        "provider": "offline",
        "segment": 1,
        "turn": 2,
        "message": {"agente": "critic", "turno": 2, "veredito": "ok", "ajuste_proposto": None},
        "text": "critic: results on target, no adjustment",
        **changes,
    }


EXAMPLES: dict[type[Event], dict[str, Any]] = {
    TradeEvent: trade(),
    ScoreEvent: score(),
    PlanEvent: plan(),
    DecisionEvent: decision(),
    AllocationEvent: allocation(),
    AuditEvent: audit(),
    MessageEvent: message(),
}
MODELS = list(EXAMPLES)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_event_round_trips_through_one_json_line(model: type[Event]) -> None:
    event = model.model_validate(EXAMPLES[model])
    line = event_to_json(event)
    assert "\n" not in line
    assert line == json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False)
    assert model.model_validate_json(line) == event
    assert parse_event(json.loads(line)) == event
    assert json.loads(line)["v"] == SCHEMA_VERSION


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_event_names_its_kind(model: type[Event]) -> None:
    obj = json.loads(event_to_json(model.model_validate(EXAMPLES[model])))
    assert type(parse_event(obj)) is model
    assert obj["kind"] == model.model_fields["kind"].default


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_unknown_field_is_refused(model: type[Event]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({**EXAMPLES[model], "pnl_usd": 1.0})


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_other_schema_version_is_refused_naming_the_version(model: type[Event]) -> None:
    with pytest.raises(ValidationError, match=r"unsupported schema version v=2.*reads v=1"):
        model.model_validate({**EXAMPLES[model], "v": 2})


def test_other_schema_version_is_refused_before_an_unknown_kind() -> None:
    with pytest.raises(ValidationError, match="unsupported schema version v=2"):
        parse_event({**trade(), "v": 2, "kind": "liquidation"})


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="kind"):
        parse_event({**trade(), "kind": "liquidation"})


def test_event_files_map_each_session_file_to_its_model() -> None:
    assert EVENT_FILES["trades.jsonl"] is TradeEvent
    assert EVENT_FILES["conversation.jsonl"] is MessageEvent
    assert set(EVENT_FILES.values()) == set(MODELS)


@pytest.mark.parametrize(
    ("model", "field"),
    [
        (TradeEvent, "pnl"),
        (TradeEvent, "entry"),
        (ScoreEvent, "total_pnl"),
        (ScoreEvent, "payoff"),
        (AllocationEvent, "sharpe"),
    ],
)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(model: type[Event], field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate({**EXAMPLES[model], field: value})


def test_nan_is_refused_inside_evidence_patch_and_details() -> None:
    with pytest.raises(ValidationError, match="finite"):
        PlanEvent.model_validate(plan(evidence={"hit": math.nan}))
    with pytest.raises(ValidationError, match="finite"):
        PatchItem(parameter="atr_stop_mult", old_value=1.5, new_value=math.inf)
    with pytest.raises(ValidationError, match="finite"):
        AuditEvent.model_validate(audit(details={"curve": [1.0, math.nan]}))


def test_nan_cannot_be_assigned_after_construction() -> None:
    event = TradeEvent.model_validate(trade())
    with pytest.raises(ValidationError, match="finite"):
        event.pnl = math.nan


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, bool), (False, bool), (1, int), (0, int), (1.0, float), (1.8, float), ("tight", str)],
)
def test_patch_values_keep_their_exact_type(value: Any, kind: type) -> None:
    item = PatchItem(parameter="p", old_value=value, new_value=value)
    assert type(item.new_value) is kind
    again = PatchItem.model_validate_json(item.model_dump_json())
    assert type(again.new_value) is kind and again.new_value == value
    parsed = PlanEvent.model_validate_json(
        event_to_json(PlanEvent.model_validate(plan(patch=[item.model_dump()])))
    )
    assert type(parsed.patch[0].old_value) is kind


def test_evidence_values_keep_their_exact_type() -> None:
    event = PlanEvent.model_validate_json(event_to_json(PlanEvent.model_validate(plan())))
    assert [type(v) for v in event.evidence.values()] == [float, int, str, bool, type(None)]


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (TradeEvent, "side", "long"),
        (TradeEvent, "exit_reason", "stop"),
        (TradeEvent, "vol_bin", "extreme"),
        (TradeEvent, "phase", "test"),
        (ScoreEvent, "vol_regime", "HIGH"),
        (PlanEvent, "status", "done"),
        (DecisionEvent, "decision", "approved"),
        (AllocationEvent, "mode", "ON"),
        (MessageEvent, "agent", "analyst"),
    ],
)
def test_value_outside_its_literal_is_refused(
    model: type[Event], field: str, value: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate({**EXAMPLES[model], field: value})


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (TradeEvent, "entry", 0.0),
        (TradeEvent, "qty", -1.0),
        (TradeEvent, "fees", -0.01),
        (TradeEvent, "bars_held", -1),
        (ScoreEvent, "hit", 1.2),
        (ScoreEvent, "maxdd", 5.0),
        (ScoreEvent, "score", 101.0),
        (ScoreEvent, "bars", 0),
        (AllocationEvent, "allocation", -0.5),
        (MessageEvent, "segment", 0),
    ],
)
def test_value_out_of_bounds_is_refused(model: type[Event], field: str, value: Any) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate({**EXAMPLES[model], field: value})


def test_trade_gates_must_be_the_four_known_gates() -> None:
    with pytest.raises(ValidationError, match=r"gates\.vwap"):
        TradeEvent.model_validate(trade(gates={"cvd": True, "imb": True, "atrz": True,
                                              "vhf": True, "vwap": True}))
    with pytest.raises(ValidationError, match=r"gates\.vhf"):
        TradeEvent.model_validate(trade(gates={"cvd": True, "imb": True, "atrz": True}))


@pytest.mark.parametrize(
    "stamp",
    ["2026-01-03T10:35:00", "2026-01-03T10:35:00+01:00", "2026-01-03 10:35:00Z",
     "2026-02-30T10:35:00Z", "yesterday", "1767436500"],
)
def test_timestamps_must_be_iso_utc(stamp: str) -> None:
    with pytest.raises(ValidationError, match="ts"):
        TradeEvent.model_validate(trade(ts=stamp))
    with pytest.raises(ValidationError, match="emitted_at"):
        TradeEvent.model_validate(trade(emitted_at=stamp))


@pytest.mark.parametrize("stamp", ["2026-01-03T10:35:00Z", "2026-01-03T10:35:00.5+00:00",
                                   "2026-01-03T10:35:00.123456Z"])
def test_utc_timestamps_with_z_or_zero_offset_are_accepted(stamp: str) -> None:
    assert TradeEvent.model_validate(trade(ts=stamp)).ts == stamp


def test_utc_now_iso_has_millisecond_precision_and_z() -> None:
    stamp = utc_now_iso()
    assert stamp.endswith("Z") and len(stamp) == len("2026-11-21T14:05:00.123Z")
    TradeEvent.model_validate(trade(emitted_at=stamp))


def test_plan_needs_a_non_empty_patch_with_one_item_per_parameter() -> None:
    with pytest.raises(ValidationError, match="patch"):
        PlanEvent.model_validate(plan(patch=[]))
    with pytest.raises(ValidationError, match="appears twice"):
        PlanEvent.model_validate(plan(patch=PATCH + PATCH))


def test_plan_change_is_displayed_from_its_patch() -> None:
    patch = [
        PatchItem(parameter="atr_stop_mult", old_value=1.5, new_value=1.8),
        {"parameter": "timeout_bars", "old_value": 240, "new_value": 180},
        {"parameter": "use_vhf_gate", "old_value": False, "new_value": True},
        {"parameter": "method", "old_value": "ema_crossover", "new_value": "macd_trend"},
    ]
    assert PlanEvent.change_from_patch(patch) == {
        "atr_stop_mult": "1.5 -> 1.8",
        "timeout_bars": "240 -> 180",
        "use_vhf_gate": "false -> true",
        "method": "ema_crossover -> macd_trend",
    }


def test_plan_status_change_is_validated_again() -> None:
    pending = PlanEvent.model_validate(plan())
    applied = pending.with_changes(status="applied", note="from seg1_test005")
    assert applied.status == "applied" and pending.status == "pending"
    with pytest.raises(ValidationError, match="status"):
        pending.with_changes(status="done")


def test_veto_may_carry_an_empty_patch_but_approve_and_edit_may_not() -> None:
    assert DecisionEvent.model_validate(decision(decision="veto", patch=[])).patch == []
    for kind in ("approve", "edit"):
        with pytest.raises(ValidationError, match="non-empty patch"):
            DecisionEvent.model_validate(decision(decision=kind, patch=[]))


def test_allocation_without_enough_history_has_no_sharpe() -> None:
    event = AllocationEvent.model_validate(allocation(sharpe=None, mode="ACTIVE"))
    assert AllocationEvent.model_validate_json(event_to_json(event)).sharpe is None
    assert event.override is False and event.signals_changed == []


def test_override_allocation_names_the_signals_changed() -> None:
    event = AllocationEvent.model_validate(
        allocation(override=True, signals_changed=["ema_crossover", "trend_breakout"],
                   agent_id="maestro", nonce="n-77")
    )
    again = AllocationEvent.model_validate_json(event_to_json(event))
    assert again.signals_changed == ["ema_crossover", "trend_breakout"] and again.override


def test_message_text_is_folded_to_one_line() -> None:
    event = MessageEvent.model_validate(message(text="critic: hit too low\n  raise the stop\r\n"))
    assert event.text == "critic: hit too low raise the stop"


def test_event_json_keeps_non_ascii_text_readable() -> None:
    event = MessageEvent.model_validate(message(text="crítico: análise concluída"))
    assert "análise" in event_to_json(event)


def test_hot_path_trade_dict_matches_the_model() -> None:
    # The conductor may write trades as plain dicts through json.dumps; this is the shape.
    line = json.dumps({"v": SCHEMA_VERSION, "kind": "trade", **trade()}, allow_nan=False)
    assert TradeEvent.model_validate(json.loads(line)) == TradeEvent.model_validate(trade())


def test_a_plain_dict_event_starts_with_the_fields_a_model_writes_first_and_this_schema_version():
    record = {**event_fields("audit", BASE["session_id"], BASE["emitted_at"]), "action": "a", "who": "w", "why": ""}
    model = AuditEvent(**BASE, action="a", who="w", why="")
    assert list(record)[:4] == list(json.loads(event_to_json(model)))[:4] == ["v", "kind", "session_id", "emitted_at"]
    assert record["v"] == SCHEMA_VERSION and parse_event(record) == model


def test_a_plan_is_its_latest_line_and_plans_keep_the_order_they_were_first_written(tmp_path) -> None:
    lines = [plan(plan_id="P1-002"), plan(plan_id="P1-001"), plan(plan_id="P1-002", status="vetoed")]
    path = tmp_path / "plans.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    latest = latest_plans(path)
    assert list(latest) == ["P1-002", "P1-001"]
    assert [p.status for p in latest.values()] == ["vetoed", "pending"]
    assert latest_plans(tmp_path / "none.jsonl") == {}

"""The JSON documents' schemas refuse what a reader could not trust."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from agents.documents import DOCUMENTS
from engine.jsonl import read_json
from tests.sessions import cli, only_session

pytestmark = pytest.mark.slow  # every test reads one session run through the CLI


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    base = tmp_path_factory.mktemp("docs")
    assert cli("run", "--headless", "--segments", "5", "--tests", "6", "--sessions-dir", str(base)).returncode == 0
    return only_session(base)


@pytest.mark.parametrize(
    ("path", "where", "bad"),
    [
        ("session_config.json", ("settings", "targets", "hit_min"), 1.7),
        ("session_config.json", ("agents", "critic"), "gpt-5-secret"),
        ("segment_1/segment_plan.json", ("chosen", 0, "params", "atr_stop_mult"), 99.0),
        ("segment_1/segment_results.json", ("chosen", "validation", "hit"), 2.0),
        ("segment_5/segment_results.json", ("ensemble_portfolio", "final"), {"x": {"mode": "LOUD", "allocation": 0.1}}),
        ("metrics_global.json", ("tests",), -1),
    ],
)
def test_a_document_out_of_shape_is_refused(session, path, where, bad):
    doc = read_json(session / path)
    DOCUMENTS[path.rsplit("/", 1)[-1]].model_validate(doc)  # as written: valid
    broken = copy.deepcopy(doc)
    target = broken
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = bad
    with pytest.raises(ValidationError):
        DOCUMENTS[path.rsplit("/", 1)[-1]].model_validate(broken)


def test_an_unknown_field_is_refused(session):
    doc = read_json(session / "metrics_global.json")
    doc["api_key"] = "sk-..."
    with pytest.raises(ValidationError, match="api_key"):
        DOCUMENTS["metrics_global.json"].model_validate(doc)

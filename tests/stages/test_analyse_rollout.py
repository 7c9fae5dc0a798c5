"""analyse_rollout: the plan's analysis on the running canary; no evidence holds (never a
promotion on silence), the champion keeps its traffic, the reports are written."""

import json

import pytest

from conveyor.local.prometheus import PrometheusServer
from conveyor.stages import analyse_rollout
from tests.stages._rollout import canary_v2, split

pytestmark = pytest.mark.integration

PLAN = json.dumps({"steps": [10, 100], "analysis": {"interval_seconds": 0.2,
                                                    "max_inconclusive": 2}})  # fmt: skip


def test_an_empty_prometheus_holds(champion_live, registry_uri, tmp_path):
    canary_v2(registry_uri)
    with PrometheusServer({}) as prom:
        reports = tmp_path / "analysis.json", tmp_path / "analysis.md"
        result = analyse_rollout.run("fraud", "models", PLAN, prom.url, registry_uri, *reports)
    assert result.decision == "hold"
    assert len(result.intervals) >= 2
    assert split(champion_live) == {"fraud-predictor-00001": 90, "fraud-predictor-00002": 10}
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert doc["final"]["decision"] == "hold" and doc["intervals"] == result.intervals
    assert (tmp_path / "analysis.md").read_text().startswith("# Analysis of fraud: hold")

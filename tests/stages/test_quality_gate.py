"""quality_gate: decide, write gate.json and reports, tag the training run."""

import json

import pytest

from conveyor import gate
from tests.test_gate import CANDIDATE, CHAMPION, REFERENCE_POLICY

pytestmark = pytest.mark.unit


def test_writes_gate_json_and_reports(tmp_path):
    from conveyor.config import TrackingSpec
    from conveyor.registry import MemoryTracker
    from conveyor.stages import quality_gate

    evaluation = {**CANDIDATE, "champion": CHAMPION}
    (tmp_path / "evaluation.json").write_text(json.dumps(evaluation))
    tracker = MemoryTracker()
    run_id = tracker.start_run("t", {})
    result = quality_gate.run(
        tmp_path / "evaluation.json",
        REFERENCE_POLICY,
        tmp_path / "gate.json",
        tmp_path / "gate.md",
        tmp_path / "gate.html",
        TrackingSpec(uri="memory://", experiment="t"),
        run_id,
    )
    assert result.verdict == "reject"
    doc = json.loads((tmp_path / "gate.json").read_text())
    assert doc["verdict"] == "reject" and doc["champion_present"] is True
    assert len(doc["checks"]) == 3
    assert gate.GateResult.from_dict(doc) == result  # gate.json reads back whole
    assert "<h1" in (tmp_path / "gate.html").read_text()
    run = MemoryTracker.runs[run_id]
    assert run["tags"]["gate.verdict"] == "reject"
    assert run["artifacts"]["gate"] == ["gate.html", "gate.json", "gate.md"]

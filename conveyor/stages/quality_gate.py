"""quality_gate: decide approve or reject from the evaluation and the gate policy."""

import json
import os
import tempfile
from pathlib import Path

from conveyor.config import TrackingSpec
from conveyor.gate import GateResult, Policy, decide, policy_from_yaml, render_html, render_markdown
from conveyor.tables import write_json, write_text

__all__ = ["Result", "run"]

PathLike = str | os.PathLike[str]
Result = GateResult


def run(
    evaluation_json: PathLike,
    policy: Policy | str,
    gate_json: PathLike,
    report_md: PathLike,
    report_html: PathLike | None = None,
    tracking: TrackingSpec | None = None,
    run_id: str = "",
) -> Result:
    """Decide, write gate.json + reports, and tag the training run ``run_id`` with the verdict
    (an empty policy text means no policy: the gate approves nothing without rules)."""
    if isinstance(policy, str):
        parsed = policy_from_yaml(policy, "policy") if policy.strip() else None
    else:
        parsed = policy
    evaluation = json.loads(Path(evaluation_json).read_text(encoding="utf-8"))
    result = decide(parsed, evaluation, evaluation.get("champion"))
    write_json(result.to_dict(), gate_json)
    write_text(render_markdown(result), report_md)
    if report_html is not None:
        write_text(render_html(result), report_html)
    if run_id and tracking is not None:
        from conveyor.registry import tracker_for

        tracker = tracker_for(tracking.uri, tracking.experiment, tracking.artifact_root)
        tracker.log(run_id, tags={"gate.verdict": result.verdict, "gate.policy": result.policy})
        with tempfile.TemporaryDirectory() as tmp:
            write_json(result.to_dict(), Path(tmp) / "gate.json")
            write_text(render_markdown(result), Path(tmp) / "gate.md")
            write_text(render_html(result), Path(tmp) / "gate.html")
            tracker.log_artifacts(run_id, tmp, "gate")
    return result

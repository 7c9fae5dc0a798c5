"""quality_gate: decide approve or reject from the evaluation and the gate policy."""

import os
import tempfile
from pathlib import Path

from conveyor.config import TrackingSpec
from conveyor.gate import GateResult, Policy, decide, policy_from_yaml, render_html, render_markdown
from conveyor.tables import read_json_object, write_json, write_text

__all__ = ["Result", "run"]

PathLike = str | os.PathLike[str]
Result = GateResult


def run(
    evaluation_json: PathLike,
    policy: Policy | str,
    gate_json: PathLike | None,
    report_md: PathLike | None,
    report_html: PathLike | None = None,
    tracking: TrackingSpec | None = None,
    run_id: str = "",
    *,
    champion_json: PathLike | None = None,
) -> Result:
    """Decide, write gate.json + reports (those given), and tag the training run ``run_id``
    with the verdict (an empty policy text means no policy: the gate approves nothing without
    rules). The champion is the one evaluate embedded, or ``champion_json``'s."""
    if isinstance(policy, str):
        parsed = policy_from_yaml(policy, "policy") if policy.strip() else None
    else:
        parsed = policy
    evaluation = read_json_object(evaluation_json, "candidate evaluation")
    champion = (
        read_json_object(champion_json, "champion evaluation")
        if champion_json is not None
        else evaluation.get("champion")  # evaluate embeds the champion it scored
    )
    result = decide(parsed, evaluation, champion)
    if gate_json is not None:
        write_json(result.to_dict(), gate_json)
    if report_md is not None:
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

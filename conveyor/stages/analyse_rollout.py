"""analyse_rollout: judge the running canary or shadow interval by interval to its end."""

import os
from dataclasses import dataclass
from typing import Any

from conveyor import context
from conveyor.config import model_from_yaml
from conveyor.rollout.plan import RolloutPlan
from conveyor.stages._parts import rollout_actor, rollout_cluster
from conveyor.tables import write_json, write_text

__all__ = ["Result", "run"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Result:
    final: dict[str, Any]  # the last Decision: decision, reason, interval, checks
    intervals: list[str]  # one progress line per interval

    @property
    def decision(self) -> str:
        """promote, rollback, hold, ... as the analysis ended."""
        return str(self.final["decision"])


def run(
    inference_service: str,
    namespace: str,
    plan: RolloutPlan | str,
    prometheus_url: str,
    tracking_uri: str,
    report_json: PathLike,
    report_md: PathLike,
    max_intervals: int = 0,
) -> Result:
    """Run the plan's analysis (it acts: promote or roll back), write its JSON and Markdown."""
    from conveyor.rollout.analysis import cluster_analysis

    if isinstance(plan, str):
        plan = model_from_yaml(RolloutPlan, plan or "{}", "rollout plan")
    uri = context.tracking_uri(tracking_uri)
    analysis = cluster_analysis(
        rollout_cluster(namespace), inference_service, plan, prometheus_url, uri, rollout_actor()
    )
    lines: list[str] = []

    def progress(d: Any) -> None:
        print(d.line(), flush=True)
        lines.append(d.line())

    final = analysis.run(max_intervals=max_intervals or None, progress=progress)
    write_json({"final": final.to_dict(), "intervals": lines}, report_json)
    md = [f"# Analysis of {inference_service}: {final.decision}", "", final.reason, "", "```",
          *lines, "```", ""]  # fmt: skip
    write_text("\n".join(md), report_md)
    return Result(final.to_dict(), lines)

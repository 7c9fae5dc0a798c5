"""finalize_rollout: the rollout pipeline's exit handler; a failed run leaves no canary."""

from dataclasses import dataclass

from conveyor.rollout.cluster import ISVC
from conveyor.serving import isvc as inf
from conveyor.stages import rollback
from conveyor.stages._parts import rollout_cluster

__all__ = ["Result", "run"]


@dataclass(frozen=True)
class Result:
    outcome: str  # succeeded | unchanged | rolled_back
    version: str = ""  # the version rolled back


def run(
    state: str,
    error: str,
    inference_service: str,
    namespace: str,
    model_name: str,
    tracking_uri: str,
) -> Result:
    """After a failed task, undo a canary in progress (champion annotation present) or a
    shadow; a finished rollout is left as it is."""
    if state == "SUCCEEDED":
        return Result("succeeded")
    cluster = rollout_cluster(namespace)
    isvc = cluster.find(ISVC, inference_service)
    canary = isvc is not None and inf.champion_of(isvc) is not None
    shadow = cluster.find(ISVC, inf.shadow_name(inference_service)) is not None
    if not canary and not shadow:
        print(f"rollout {state.lower()}: no canary or shadow in progress, nothing to undo")
        return Result("unchanged")
    why = f"rollout pipeline {state.lower()}: {(error or 'a task failed').strip()[:300]}"
    done = rollback.run(inference_service, namespace, model_name, tracking_uri, why)
    print(f"{why}; v{done.version} rolled back, traffic on the champion")
    return Result("rolled_back", done.version)

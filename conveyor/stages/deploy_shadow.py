"""deploy_shadow: a version answering mirrored requests beside the champion, no traffic."""

from conveyor.rollout import actions
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change
from conveyor.stages._parts import rollout_actor, rollout_cluster
from conveyor.stages._rollout import Deployed

__all__ = ["Result", "run"]

Result = Deployed


def run(
    inference_service: str,
    namespace: str,
    model_name: str,
    version: str,
    percent: float,
    tracking_uri: str,
    require_approval: bool,
    reason: str,
    wait_seconds: float = 600.0,
    score_log_url: str = "",
    runtime: str = "",
) -> Result:
    """Shadow the version once its approval, checksum and scikit-learn (against ``runtime``'s,
    empty: the champion's) are checked, then wait until the shadow is ready."""
    cluster = rollout_cluster(namespace)
    model = actions.resolve_version(
        tracking_uri, model_name, version, cluster=cluster,
        inference_service=inference_service, runtime=runtime, require_approval=require_approval,
    )  # fmt: skip
    change = Change("shadow", reason or "rollout pipeline", rollout_actor(),
                    details={"version": model.version, "percent": percent})  # fmt: skip
    actions.deploy_shadow(
        cluster, inference_service, model, percent, change, score_log=score_log_url or None
    )
    actions.wait_ready(cluster, inf.shadow_name(inference_service), timeout=wait_seconds)
    return Deployed(model.version, actions.status(cluster, inference_service))

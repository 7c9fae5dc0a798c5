"""deploy_canary: serve a registered version beside the champion at a traffic share."""

from conveyor.config import model_from_yaml
from conveyor.errors import ClusterError
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, get
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, Resources
from conveyor.stages._parts import rollout_actor, rollout_cluster
from conveyor.stages._rollout import Deployed

__all__ = ["Result", "run"]

Result = Deployed


def run(
    inference_service: str,
    namespace: str,
    model_name: str,
    version: str,
    percent: int,
    tracking_uri: str,
    require_approval: bool,
    reason: str,
    resources: Resources | str = "",
    wait_seconds: float = 600.0,
    score_log_url: str = "",
    runtime: str = "",
) -> Result:
    """Deploy or step, then wait until the new revision is ready (a revision that never gets
    ready is rolled back). The version's approval, checksum and scikit-learn (against
    ``runtime``'s, empty: the InferenceService's own) are checked before any write."""
    cluster = rollout_cluster(namespace)
    model = actions.resolve_version(
        tracking_uri, model_name, version, cluster=cluster,
        inference_service=inference_service, runtime=runtime, require_approval=require_approval,
    )  # fmt: skip
    if isinstance(resources, str):
        resources = model_from_yaml(Resources, resources or "{}", "resources")
    change = Change("canary", reason or "rollout pipeline", rollout_actor(),
                    details={"version": model.version, "percent": percent})  # fmt: skip
    current = cluster.find(ISVC, inference_service)
    if current is not None and inf.champion_of(current) is None:
        serving = inf.current_model(current)
        if serving["version"] == model.version and serving["sha256"] == model.sha256:
            # A first release (created at 100 %) or a re-run: nothing to step.
            return Deployed(model.version, actions.status(cluster, inference_service))
    actions.deploy(
        cluster, inference_service, model, percent, change,
        resources=resources, score_log=score_log_url or None,
    )  # fmt: skip
    try:
        actions.wait_ready(cluster, inference_service, timeout=wait_seconds)
    except ClusterError:
        if inf.champion_of(get(cluster, ISVC, inference_service)) is not None:
            why = Change("rollback", f"v{model.version} never became ready", rollout_actor())
            actions.rollback(cluster, inference_service, why)
        raise
    return Deployed(model.version, actions.status(cluster, inference_service))

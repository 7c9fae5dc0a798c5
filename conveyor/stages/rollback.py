"""rollback: traffic back on the champion (or the shadow removed), the candidate rejected."""

from conveyor import context
from conveyor.rollout import actions
from conveyor.rollout.actions import RolledBack
from conveyor.serving.isvc import Change
from conveyor.stages._parts import rollout_actor, rollout_cluster

__all__ = ["Result", "run"]

Result = RolledBack


def run(
    inference_service: str, namespace: str, model_name: str, tracking_uri: str, reason: str
) -> Result:
    """Traffic first, then the registry; a registry failure fails the stage after traffic is
    safe (the result is raised as the error, the champion already serving)."""
    from conveyor.registry import ModelRegistry

    cluster = rollout_cluster(namespace)
    why = reason or "rollout pipeline: candidate failed its checks"
    uri = context.tracking_uri(tracking_uri)
    done = actions.rollback_release(
        cluster, inference_service, Change("rollback", why, rollout_actor()),
        (lambda: ModelRegistry(uri)) if uri else None, model_name,
    )  # fmt: skip
    if done.error is not None:
        raise done.error
    return done

"""promote: the candidate becomes the champion, in MLflow and then in traffic."""

from dataclasses import dataclass

from conveyor import context
from conveyor.rollout import actions
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change
from conveyor.stages._parts import rollout_actor, rollout_cluster

__all__ = ["Result", "run"]


@dataclass(frozen=True)
class Result:
    version: str  # the version now serving 100 %
    alias_moved: bool  # False when no tracking URI was known


def run(
    inference_service: str, namespace: str, model_name: str, tracking_uri: str, reason: str
) -> Result:
    """MLflow ``champion`` moves to the candidate, then traffic to 100 % on it (the alias is
    put back if the traffic change fails)."""
    from conveyor.registry import ModelRegistry

    cluster = rollout_cluster(namespace)
    why = reason or "rollout pipeline: smoke test and steps passed"
    uri = context.tracking_uri(tracking_uri)
    if not uri:
        print("promote: no MLflow tracking URI; the champion alias was not moved")
    out = actions.promote_release(
        cluster, inference_service, Change("promote", why, rollout_actor()),
        ModelRegistry(uri) if uri else None, model_name,
        first_release_ok=True,  # a first release already serves 100 %: only the alias moves
    )  # fmt: skip
    return Result(str(inf.current_model(out)["version"]), bool(uri))

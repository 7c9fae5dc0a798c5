"""Small pieces every stage needs: config as text or model, the tracker's settings, the
rollout stages' cluster and actor."""

from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel

from conveyor import context
from conveyor.config import TrackingSpec, model_from_yaml

if TYPE_CHECKING:
    from conveyor.rollout.cluster import KubeCluster

__all__ = ["rollout_actor", "rollout_cluster", "spec", "tracking"]


M = TypeVar("M", bound=BaseModel)


def spec(model: type[M], value: "M | str", field: str) -> M:
    """``value`` parsed into ``model`` (YAML/JSON text; empty: the defaults), or as given."""
    if isinstance(value, model):
        return value
    return model_from_yaml(model, str(value).strip() or "{}", field)


def tracking(uri: str = "", experiment: str = "conveyor", artifact_root: str = "") -> TrackingSpec:
    """The tracker settings a component receives as three strings."""
    return TrackingSpec(uri=uri, experiment=experiment, artifact_root=artifact_root)


def rollout_actor() -> str:
    """Who the rollout stages act as in annotations and Events."""
    return context.actor("kfp-rollout-pipeline", person=False)


def rollout_cluster(namespace: str) -> "KubeCluster":
    """The cluster as the pipeline pod sees it (its service account; KUBECONFIG elsewhere)."""
    from conveyor.rollout.cluster import KubeCluster

    return KubeCluster(namespace or None, actor=rollout_actor())

"""Helpers of the rollout stage tests: the fake cluster's traffic and events."""

from conveyor.rollout.cluster import ISVC, KubeCluster
from tests.fakes.kube_api import traffic_split

API = "serving.kserve.io/v1beta1"
V1 = {"fraud-predictor-00001": 100}


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


def reasons(api) -> list[str]:
    return [e["reason"] for e in api.events("models")]


def canary_v2(registry_uri: str, percent: int = 10) -> None:
    """v2 as a canary beside the champion v1, through the deploy_canary stage itself."""
    from conveyor.stages import deploy_canary

    deploy_canary.run("fraud", "models", "fraud", "2", percent, registry_uri, False, "test")
    assert KubeCluster().find(ISVC, "fraud") is not None

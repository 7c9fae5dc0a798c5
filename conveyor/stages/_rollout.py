"""What the deploy stages share: a version resolved and checked, and the status they return."""

import os
from dataclasses import dataclass
from typing import Any

from conveyor.rollout import actions
from conveyor.rollout.actions import ServedModel
from conveyor.rollout.cluster import KubeCluster
from conveyor.tables import write_json

__all__ = ["Deployed", "resolve"]


@dataclass(frozen=True)
class Deployed:
    version: str  # the registered version now deployed
    status: dict[str, Any]  # actions.status after the change (revisions, traffic, events)

    @property
    def phase(self) -> str:
        return str(self.status.get("phase", ""))

    def write_status(self, path: str | os.PathLike[str]) -> None:
        """The status as the component's JSON artifact."""
        write_json(self.status, path)


def resolve(
    cluster: KubeCluster,
    tracking_uri: str,
    model_name: str,
    version: str,
    inference_service: str,
    runtime: str,
    require_approval: bool,
) -> ServedModel:
    """The version's registry record, its approval, checksum and scikit-learn (against
    ``runtime``'s) checked before any write."""
    return actions.resolve_version(
        tracking_uri, model_name, version, cluster=cluster,
        inference_service=inference_service, runtime=runtime, require_approval=require_approval,
    )  # fmt: skip

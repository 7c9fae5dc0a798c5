"""What the deploy stages return: the version deployed and the rollout status after it."""

import os
from dataclasses import dataclass
from typing import Any

from conveyor.tables import write_json

__all__ = ["Deployed"]


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

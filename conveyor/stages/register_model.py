"""register_model: a model version with its full lineage, per the gate's verdict."""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor import context
from conveyor.registry import ModelRegistry, lineage_tags

__all__ = ["Result", "run"]


@dataclass(frozen=True)
class Result:
    registered: dict[str, Any] | None  # the version (name, version, run_id, aliases, tags)

    @property
    def version(self) -> str:
        return str(self.registered["version"]) if self.registered else ""

    @property
    def status(self) -> str:
        """approved (alias candidate), held (no alias) or "not registered" (rejected)."""
        return str(self.registered["status"]) if self.registered else "not registered"


def run(
    model_name: str,
    run_id: str,
    gate_json: str | os.PathLike[str],
    evaluation_json: str | os.PathLike[str],
    tracking_uri: str = "",
    git_commit: str = "",
) -> Result:
    """approve: a new version with alias ``candidate``; hold: a version tagged held; reject:
    nothing. Idempotent per (model, run); a failure part-way leaves the registry as it was."""
    gate = json.loads(Path(gate_json).read_text(encoding="utf-8"))
    evaluation = json.loads(Path(evaluation_json).read_text(encoding="utf-8"))
    registry = ModelRegistry(context.tracking_uri(tracking_uri))
    tags = lineage_tags(
        registry, run_id, gate["verdict"], evaluation.get("metrics", {}), git_commit
    )
    return Result(registry.register(model_name, run_id, gate["verdict"], tags))

"""smoke_test: V1 and V2 requests to the candidate (or the shadow) before it gets traffic."""

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import pandas as pd

from conveyor.config import model_from_yaml
from conveyor.errors import BadInputError
from conveyor.rollout.cluster import ISVC, get
from conveyor.serving import isvc as inf
from conveyor.serving.smoke import SmokePolicy, render_markdown, smoke_test
from conveyor.stages._parts import rollout_cluster
from conveyor.tables import write_json, write_text

__all__ = ["Result", "candidate_endpoint", "run"]

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Result:
    report: dict[str, Any]  # smoke.json: checks, latencies, version seen

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])

    @property
    def failed_checks(self) -> int:
        return sum(not c["passed"] for c in self.report["checks"])


def run(
    inference_service: str,
    namespace: str,
    endpoint: str,
    version: str,
    examples_json: str,
    model_name: str,
    tracking_uri: str,
    policy: SmokePolicy | str,
    report_json: PathLike,
    report_md: PathLike,
    target: str = "candidate",
) -> Result:
    """Smoke test the candidate (or ``<name>-shadow``) and write its JSON and Markdown."""
    if isinstance(policy, str):
        policy = model_from_yaml(SmokePolicy, policy or "{}", "smoke policy")
    feature_spec, version = _feature_spec(tracking_uri, model_name, version)
    rows = pd.DataFrame(json.loads(examples_json or "[]"))
    if rows.empty:
        raise BadInputError("examples_json: no example rows to smoke test with")
    name = inf.shadow_name(inference_service) if target == "shadow" else inference_service
    if not endpoint:
        endpoint = candidate_endpoint(get(rollout_cluster(namespace), ISVC, name))
        if not endpoint:
            raise BadInputError(f"{name}: no URL in its status yet; pass `endpoint`")
    report = smoke_test(
        endpoint, name, rows, feature_spec,
        expected_version=version or None, policy=policy,
    )  # fmt: skip
    write_json(report, report_json)
    write_text(render_markdown(report), report_md)
    return Result(report)


def candidate_endpoint(isvc: dict[str, Any]) -> str:
    """Where the newest revision answers before it has traffic: its ``latest`` tag URL
    (tag routing), else the service's address."""
    pred = (isvc.get("status") or {}).get("components", {}).get("predictor", {})
    for entry in pred.get("traffic", []):
        if entry.get("latestRevision") and entry.get("url"):
            return str(entry["url"])
    status = isvc.get("status") or {}
    return str((status.get("address") or {}).get("url") or status.get("url") or "")


def _feature_spec(tracking_uri: str, model_name: str, version: str) -> tuple[dict[str, Any], str]:
    """The version's feature_spec.json, from its checksum-verified serving files, and the
    version number (``version`` may be an alias)."""
    from conveyor.model import SPEC_FILE
    from conveyor.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="conveyor-smoke-") as tmp:
        row = registry.resolve(model_name, version) if version else None
        if row is None:
            raise BadInputError("version: empty; which registered version is being smoke tested?")
        folder = registry.download(row, tmp)
        spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        return dict(spec), str(row["version"])

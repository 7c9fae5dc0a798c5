"""register_model: the verdict decides; a typed result says what the registry now holds.
Lineage tags and idempotence in depth: tests/test_model_registry.py."""

import pytest

from conveyor.registry import ModelRegistry
from conveyor.stages import register_model
from conveyor.tables import write_json

pytestmark = pytest.mark.integration


def _files(tmp_path, verdict: str):
    gate = write_json({"verdict": verdict}, tmp_path / f"gate-{verdict}.json")
    evaluation = write_json({"metrics": {"roc_auc": 0.91, "recall": 0.5}}, tmp_path / "eval.json")
    return gate, evaluation


def test_approve_registers_a_candidate_with_its_lineage(tmp_path, registry_uri):
    run_id = ModelRegistry(registry_uri).get("fraud", "1")["run_id"]
    result = register_model.run("payments", run_id, *_files(tmp_path, "approve"), registry_uri,
                                git_commit="abc123")  # fmt: skip
    assert (result.version, result.status) == ("1", "approved")
    row = ModelRegistry(registry_uri).get("payments", "1")
    assert row["aliases"] == ["candidate"]
    assert row["tags"]["metric.roc_auc"] == "0.91" and row["tags"]["git.commit"] == "abc123"
    assert row["tags"]["conveyor.run_id"] == run_id


def test_reject_registers_nothing(tmp_path, registry_uri):
    run_id = ModelRegistry(registry_uri).get("fraud", "1")["run_id"]
    result = register_model.run("payments", run_id, *_files(tmp_path, "reject"), registry_uri)
    assert (result.registered, result.version, result.status) == (None, "", "not registered")
    assert ModelRegistry(registry_uri).versions("payments") == []

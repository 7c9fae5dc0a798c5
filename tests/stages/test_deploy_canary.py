"""deploy_canary: a checked version beside the champion at a traffic share, then stepped; a
version the registry does not approve changes nothing. Fake Kubernetes API, real MLflow."""

import pytest

from conveyor.errors import ConveyorError
from conveyor.registry import ModelRegistry
from conveyor.stages import deploy_canary
from tests.stages._rollout import V1, reasons, split

pytestmark = pytest.mark.integration


def test_starts_and_steps_a_canary(champion_live, registry_uri, tmp_path):
    result = deploy_canary.run("fraud", "models", "fraud", "2", 10, registry_uri, False, "test")
    assert result.version == "2" and result.phase == "Canary"
    assert split(champion_live) == {"fraud-predictor-00001": 90, "fraud-predictor-00002": 10}
    stepped = deploy_canary.run("fraud", "models", "fraud", "candidate", 50, registry_uri,
                                False, "step")  # fmt: skip
    assert stepped.version == "2"
    assert split(champion_live) == {"fraud-predictor-00001": 50, "fraud-predictor-00002": 50}
    assert reasons(champion_live) == ["Deployed", "CanaryStarted", "CanaryStep"]
    result.write_status(tmp_path / "status.json")
    assert '"phase": "Canary"' in (tmp_path / "status.json").read_text()


def test_an_unapproved_version_changes_nothing(champion_live, registry_uri):
    ModelRegistry(registry_uri).reject_candidate("fraud", "2", "bad metrics")
    with pytest.raises(ConveyorError, match="fraud v2"):
        deploy_canary.run("fraud", "models", "fraud", "2", 10, registry_uri, False, "test")
    assert split(champion_live) == V1
    assert reasons(champion_live) == ["Deployed"]

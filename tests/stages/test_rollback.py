"""rollback: traffic back on the champion first, then the candidate rejected in MLflow."""

import pytest

from conveyor.registry import ModelRegistry
from conveyor.stages import rollback
from tests.stages._rollout import V1, canary_v2, reasons, split

pytestmark = pytest.mark.integration


def test_the_canary_is_undone_and_rejected(champion_live, registry_uri):
    canary_v2(registry_uri, percent=50)
    result = rollback.run("fraud", "models", "fraud", registry_uri, "errors")
    assert (result.version, result.undone, result.registry_error) == ("2", "canary", "")
    assert split(champion_live) == V1
    assert reasons(champion_live)[-1] == "RolledBack"
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]
    assert "champion" in ModelRegistry(registry_uri).get("fraud", "1")["aliases"]

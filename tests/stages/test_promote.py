"""promote: MLflow's champion moves to the canary's version, then traffic to 100 % on it."""

import pytest

from conveyor.registry import ModelRegistry
from conveyor.stages import promote
from tests.stages._rollout import canary_v2, reasons, split

pytestmark = pytest.mark.integration


def test_the_canary_becomes_the_champion(champion_live, registry_uri):
    canary_v2(registry_uri)
    result = promote.run("fraud", "models", "fraud", registry_uri, "steps passed")
    assert (result.version, result.alias_moved) == ("2", True)
    assert split(champion_live) == {"fraud-predictor-00002": 100}
    assert reasons(champion_live)[-1] == "Promoted"
    assert "champion" in ModelRegistry(registry_uri).get("fraud", "2")["aliases"]

"""deploy_shadow: the version answers mirrored requests; the champion keeps all traffic."""

import pytest

from conveyor.stages import deploy_shadow
from tests.stages._rollout import API, V1, reasons, split

pytestmark = pytest.mark.integration


def test_shadows_without_taking_traffic(champion_live, registry_uri):
    result = deploy_shadow.run("fraud", "models", "fraud", "2", 100, registry_uri, False, "test")
    assert result.version == "2"
    assert split(champion_live) == V1
    shadow = champion_live.get(API, "inferenceservices", "models", "fraud-shadow")
    assert shadow["metadata"]["annotations"]["conveyor.io/model-version"] == "2"
    assert reasons(champion_live) == ["Deployed", "ShadowStarted"]

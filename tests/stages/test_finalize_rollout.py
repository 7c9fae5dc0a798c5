"""finalize_rollout: the exit handler leaves a finished rollout alone and undoes one that a
failed task left half-way."""

import pytest

from conveyor.stages import finalize_rollout
from tests.stages._rollout import V1, canary_v2, reasons, split

pytestmark = pytest.mark.integration


def test_a_succeeded_or_empty_rollout_is_left_as_it_is(champion_live, registry_uri):
    canary_v2(registry_uri)
    done = finalize_rollout.run("SUCCEEDED", "", "fraud", "models", "fraud", registry_uri)
    assert done.outcome == "succeeded"
    assert split(champion_live) == {"fraud-predictor-00001": 90, "fraud-predictor-00002": 10}


def test_nothing_in_progress_is_unchanged(champion_live, registry_uri):
    result = finalize_rollout.run("FAILED", "boom", "fraud", "models", "fraud", registry_uri)
    assert result == finalize_rollout.Result("unchanged")
    assert reasons(champion_live) == ["Deployed"]


def test_a_failed_run_rolls_the_canary_back(champion_live, registry_uri):
    canary_v2(registry_uri)
    result = finalize_rollout.run("FAILED", "smoke-test crashed", "fraud", "models", "fraud",
                                  registry_uri)  # fmt: skip
    assert result == finalize_rollout.Result("rolled_back", "2")
    assert split(champion_live) == V1
    assert reasons(champion_live)[-1] == "RolledBack"

"""What `conveyor run` does around the pipeline: the local smoke test's bounds."""

import pytest

from conveyor.config import load_pipeline_config
from conveyor.local.run import smoke_policy
from conveyor.serving.smoke import SmokePolicy
from tests.conftest import copy_examples

pytestmark = pytest.mark.unit


def test_the_local_smoke_test_is_held_to_the_rollout_plans_bounds(tmp_path) -> None:
    folder = copy_examples(tmp_path)
    plan = folder / "rollout.yaml"
    plan.write_text(plan.read_text().replace("max_p99_ms: 250", "max_p99_ms: 900"))
    config = load_pipeline_config(folder / "pipeline.yaml")
    assert smoke_policy(config).max_p99_ms == 900
    assert smoke_policy(config.model_copy(update={"rollout": None})) == SmokePolicy()

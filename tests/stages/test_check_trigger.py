"""check_trigger: the training key, the unchanged-run lookup and the policy, on a real
MLflow sqlite registry."""

import pytest

from conveyor import trigger
from conveyor.config import RetrainPolicy
from conveyor.registry import ModelRegistry
from conveyor.sample import generate
from conveyor.stages import check_trigger
from conveyor.tables import sha256_file, write_table
from tests.test_trigger import AS_OF, INPUTS, KEYS, _tag

pytestmark = pytest.mark.integration


@pytest.fixture
def batch(tmp_path) -> str:
    return str(write_table(generate(300, seed=5, as_of=AS_OF), tmp_path / "batch.parquet"))


def test_skips_an_unchanged_batch(registry_uri, batch):
    key = trigger.training_key(sha256_file(batch), git_commit="abc123", **INPUTS)
    _tag(registry_uri, "2", key)
    result = check_trigger.run(
        batch,
        model_name="fraud",
        tracking_uri=registry_uri,
        policy=RetrainPolicy(),
        key_inputs=KEYS,
        git_commit="abc123",
    )
    assert result.training_key == key
    assert result.data_sha256 == sha256_file(batch)
    assert result.decision == "skip"
    assert "fraud v2 (approved, aliases candidate)" in result.skipped_because
    # force trains anyway, with the same key.
    forced = check_trigger.run(
        batch,
        model_name="fraud",
        tracking_uri=registry_uri,
        policy=RetrainPolicy(),
        key_inputs=KEYS,
        git_commit="abc123",
        force=True,
    )
    assert forced.decision == "retrain" and forced.reasons == ["forced"]
    assert forced.training_key == key


def test_retrains_when_anything_changed(registry_uri, batch):
    key = trigger.training_key(sha256_file(batch), git_commit="abc123", **INPUTS)
    _tag(registry_uri, "2", key)
    common = {"model_name": "fraud", "tracking_uri": registry_uri, "key_inputs": KEYS}
    # Another commit: a different key; the fixture registry has no champion.
    result = check_trigger.run(batch, policy=RetrainPolicy(), git_commit="def456", **common)
    assert result.training_key != key
    assert result.decision == "retrain"
    assert result.reasons == ["no champion: fraud has no version with alias champion"]

    # With a champion, the policy's triggers decide.
    ModelRegistry(registry_uri).client.set_registered_model_alias("fraud", "champion", "1")
    policy = RetrainPolicy(on_new_data=True)
    result = check_trigger.run(
        batch, policy=policy, git_commit="def456", drift_decision="drift", **common
    )
    assert result.decision == "retrain"
    assert [r.split(":")[0] for r in result.reasons] == ["new data", "drift"]
    assert "champion v1" in result.reasons[0]
    quiet = check_trigger.run(batch, policy=RetrainPolicy(), git_commit="def456", **common)
    assert quiet.decision == "skip"
    assert quiet.skipped_because.startswith("no trigger fired for champion v1")

    # skip_if_unchanged off: the matching key no longer skips.
    off = RetrainPolicy(skip_if_unchanged=False)
    result = check_trigger.run(
        batch, policy=off, git_commit="abc123", drift_decision="drift", **common
    )
    assert result.training_key == key
    assert result.decision == "retrain"

"""train: a model folder whose sha256 the run records, from the config text a component
receives; a config mistake opens no run."""

import pytest

from conveyor import features
from conveyor import model as model_files
from conveyor.config import TrackingSpec
from conveyor.errors import BadInputError
from conveyor.registry import TRAINING_KEY_TAG, MemoryTracker
from conveyor.stages import train
from conveyor.tables import sha256_file

pytestmark = pytest.mark.unit

TRACKING = TrackingSpec(uri="memory://", experiment="stages")


@pytest.fixture
def prep(tmp_path, small_df, config) -> features.FeatureOutputs:
    out = features.FeatureOutputs.under(tmp_path / "prep")
    features.prepare(small_df, config.features, out)
    return out


def test_trains_saves_and_tracks_with_lineage(tmp_path, prep):
    result = train.run(
        prep.train, prep.validation, prep.preprocessing,
        '{"estimator": "logistic_regression", "seed": 1, "params": {"max_iter": 50}}',
        TRACKING, tmp_path / "model", data_sha256="d" * 64, training_key="k1",
    )  # fmt: skip
    assert result.model_sha256 == sha256_file(tmp_path / "model" / model_files.MODEL_FILE)
    assert 0.5 < result.validation_metrics["roc_auc"] <= 1
    run = MemoryTracker.runs[result.run_id]
    assert run["tags"]["data.sha256"] == "d" * 64
    assert run["tags"][TRAINING_KEY_TAG] == "k1"
    assert run["tags"]["model.sha256"] == result.model_sha256


def test_a_config_mistake_opens_no_run(tmp_path, prep):
    before = set(MemoryTracker.runs)
    with pytest.raises(BadInputError, match=r"training: estimator: .*\(got 'forest'\)"):
        train.run(prep.train, prep.validation, prep.preprocessing, '{"estimator": "forest"}',
                  TRACKING, tmp_path / "model")  # fmt: skip
    assert set(MemoryTracker.runs) == before
    assert not (tmp_path / "model").exists()

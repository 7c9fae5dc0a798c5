"""train: estimator config, reproducibility, checksums, and no model from a failed run."""

import hashlib
import json

import pytest
import sklearn

from conveyor import features, training
from conveyor import model as model_files
from conveyor.config import TrackingSpec, TrainingSpec
from conveyor.errors import BadInputError, ConveyorError
from conveyor.registry import MemoryTracker

pytestmark = pytest.mark.unit
MEMORY = TrackingSpec(uri="memory://", experiment="t")


@pytest.fixture
def prepared(tmp_path, small_df, config):
    out = features.FeatureOutputs.under(tmp_path / "prep")
    features.prepare(small_df, config.features, out)
    return out


def fit(prepared, out_dir, spec):
    return training.train(
        prepared.train, prepared.validation, prepared.preprocessing, spec, MEMORY, out_dir
    )


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting"])
def test_each_estimator_trains_and_tracks(tmp_path, prepared, estimator):
    spec = TrainingSpec(estimator=estimator, params={}, seed=1)
    result = fit(prepared, tmp_path / "model", spec)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "feature_spec.json",
        "model.joblib",
        "model.sha256",
    ]
    assert result.validation_metrics["roc_auc"] > 0.75
    run = MemoryTracker.runs[result.run_id]
    assert run["status"] == "FINISHED"
    assert run["params"]["estimator"] == estimator
    assert run["tags"]["model.sha256"] == result.model_sha256
    assert len(run["tags"]["data.train.sha256"]) == 64
    assert "validation_roc_auc" in run["metrics"]
    assert run["artifacts"]["serving"] == ["feature_spec.json", "model.joblib", "model.sha256"]
    assert "model" in run["models"]
    # the scikit-learn that pickled it: the serving runtime must have the same release
    assert run["tags"]["model.sklearn_version"] == sklearn.__version__
    spec = json.loads((tmp_path / "model" / "feature_spec.json").read_text())
    prep_spec = json.loads((prepared.preprocessing / "feature_spec.json").read_text())
    assert spec == {**prep_spec, "sklearn_version": sklearn.__version__}


def test_same_data_config_and_seed_give_byte_identical_model(tmp_path, prepared):
    spec = TrainingSpec(estimator="hist_gradient_boosting", params={"max_iter": 30}, seed=5)
    a = fit(prepared, tmp_path / "a", spec)
    b = fit(prepared, tmp_path / "b", spec)
    bytes_a = (tmp_path / "a" / "model.joblib").read_bytes()
    assert bytes_a == (tmp_path / "b" / "model.joblib").read_bytes()
    assert a.model_sha256 == b.model_sha256 == hashlib.sha256(bytes_a).hexdigest()
    assert a.validation_metrics == b.validation_metrics


def test_unknown_hyperparameter_is_named(tmp_path, prepared):
    spec = TrainingSpec(estimator="logistic_regression", params={"max_iters": 5})
    with pytest.raises(BadInputError, match=r"unknown parameter\(s\) \['max_iters'\]"):
        fit(prepared, tmp_path / "m", spec)
    assert not (tmp_path / "m").exists()


def test_out_of_bound_hyperparameter_is_rejected(tmp_path, prepared):
    spec = TrainingSpec(estimator="hist_gradient_boosting", params={"learning_rate": -1})
    with pytest.raises(BadInputError, match="learning_rate"):
        fit(prepared, tmp_path / "m", spec)


def test_failure_mid_run_marks_run_failed_and_leaves_no_model(tmp_path, prepared, monkeypatch):
    def broken_log(self, *args, **kwargs):
        raise RuntimeError("tracking store went away")

    before = set(MemoryTracker.runs)
    monkeypatch.setattr(MemoryTracker, "log_sklearn_model", broken_log)
    with pytest.raises(RuntimeError, match="tracking store went away"):
        fit(prepared, tmp_path / "m", TrainingSpec(params={"max_iter": 10}))
    (new,) = set(MemoryTracker.runs) - before
    assert MemoryTracker.runs[new]["status"] == "FAILED"
    assert not (tmp_path / "m").exists()


def test_tampered_model_is_refused(tmp_path, prepared):
    fit(prepared, tmp_path / "m", TrainingSpec(params={"max_iter": 10}))
    with open(tmp_path / "m" / "model.joblib", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ConveyorError, match=r"does not match model\.sha256"):
        model_files.load_model(tmp_path / "m")

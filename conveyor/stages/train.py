"""train: fit the estimator on the frozen preprocessing, save the model, track the run."""

from pathlib import Path

from conveyor.config import TrackingSpec, TrainingSpec
from conveyor.lifecycle import stop_on_sigterm
from conveyor.stages._parts import spec
from conveyor.training import TrainResult, train

__all__ = ["Result", "run"]

Result = TrainResult


def run(
    train_split: str | Path,
    validation_split: str | Path,
    preprocessing: str | Path,
    training: TrainingSpec | str,
    tracking: TrackingSpec,
    model_dir: str | Path,
    *,
    data_sha256: str = "",
    threshold: float = 0.5,
    training_key: str = "",
) -> Result:
    """One MLflow run (marked FAILED if anything breaks, SIGTERM included) and ``model_dir``
    with the model, its feature spec and its sha256."""
    with stop_on_sigterm():
        return train(
            train_split,
            validation_split,
            preprocessing,
            spec(TrainingSpec, training, "training"),
            tracking,
            model_dir,
            data_fingerprint=data_sha256,
            threshold=threshold,
            training_key=training_key,
        )

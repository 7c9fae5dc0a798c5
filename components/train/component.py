"""KFP component: train one model and track it in MLflow (logic: conveyor.stages.train)."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def train(
    train: Input[Dataset],
    validation: Input[Dataset],
    preprocessing: Input[Model],
    training: str,
    model: Output[Model],
    metrics: Output[Metrics],
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "conveyor",
    mlflow_artifact_root: str = "",
    data_sha256: str = "",
    threshold: float = 0.5,
    training_key: str = "",
) -> NamedTuple("TrainOutputs", [("run_id", str), ("model_sha256", str)]):  # type: ignore[valid-type]
    """Fit sklearn Pipeline(preprocessing + estimator) with fixed seeds and log an MLflow run.

    Args:
        train: Training rows (output of prepare_features).
        validation: Validation rows, scored for the run's validation metrics.
        preprocessing: The fitted preprocessing from prepare_features (kept frozen).
        training: The training config as YAML or JSON text (estimator, params, seed).
        model: Folder with ``model.joblib`` (what KServe's sklearn runtime loads),
            ``feature_spec.json`` and ``model.sha256``.
        metrics: Validation metrics for the KFP UI.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        mlflow_experiment: MLflow experiment name.
        mlflow_artifact_root: Artifact folder for a local (sqlite) store; empty on a server.
        data_sha256: Fingerprint of the validated batch (from validate_data), for lineage.
        threshold: Decision threshold for the validation metrics.
        training_key: Fingerprint of data, code, config and seed (conveyor.trigger), tagged on
            the run so an unchanged re-run can be skipped.

    Returns:
        run_id: The MLflow run id.
        model_sha256: sha256 of ``model.joblib``.
    """
    from collections import namedtuple

    from conveyor.stages._parts import tracking
    from conveyor.stages.train import run

    result = run(
        train.path,
        validation.path,
        preprocessing.path,
        training,
        tracking(mlflow_tracking_uri, mlflow_experiment, mlflow_artifact_root),
        model.path,
        data_sha256=data_sha256,
        threshold=threshold,
        training_key=training_key,
    )
    model.metadata.update(
        {"sha256": result.model_sha256, "mlflow_run_id": result.run_id, "framework": "sklearn"}
    )
    for name, value in result.validation_metrics.items():
        if value == value:  # NaN (e.g. AUC of a single-class split) is not a metric
            metrics.log_metric(f"validation_{name}", value)
    outputs = namedtuple("TrainOutputs", ["run_id", "model_sha256"])
    return outputs(result.run_id, result.model_sha256)

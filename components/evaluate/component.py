"""KFP component: score the model on the frozen holdout (logic: conveyor.stages.evaluate)."""

from kfp import dsl
from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Markdown,
    Metrics,
    Model,
    Output,
)

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def evaluate(
    model: Input[Model],
    holdout: Input[Dataset],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    report: Output[Markdown],
    evaluation_spec: str = "{}",
    golden_set: str = "[]",
    golden_set_version: str = "",
    champion_model: Input[Model] = None,
    registered_model_name: str = "",
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "conveyor",
    mlflow_artifact_root: str = "",
    mlflow_run_id: str = "",
):
    """Score the model (and the champion, if given) on the holdout: metrics, slices, fairness,
    latency, sanity checks, confusion matrix and ROC curve; log them to MLflow.

    Args:
        model: The trained model folder (output of train); its sha256 is verified first.
        holdout: The frozen holdout rows (output of prepare_features).
        evaluation: ``evaluation.json``: metrics, slices, fairness, latency, sanity, model
            facts, confusion matrix, ROC, and the same block for the champion.
        metrics: Candidate metrics, slice metrics, latency and fairness gaps for the KFP UI.
        classification_metrics: Confusion matrix and ROC curve for the KFP UI.
        report: The evaluation rendered as Markdown (candidate vs champion).
        evaluation_spec: The evaluation config as YAML or JSON text (threshold, slices,
            fairness, latency, min_slice_rows); ``golden_set`` inside it must be unset.
        golden_set: The golden set as one-line JSON records; ``[]`` for none.
        golden_set_version: The golden set's version (its file name stem, e.g. golden_v1).
        champion_model: Optional champion model folder, scored on the same holdout.
        registered_model_name: When set (and no ``champion_model`` is given), the model with
            alias ``champion`` of this registered model is fetched from the MLflow registry,
            its sha256 verified, and scored on the same holdout in this step.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        mlflow_experiment: MLflow experiment name.
        mlflow_artifact_root: Artifact folder for a local (sqlite) store; empty on a server.
        mlflow_run_id: The training run to attach the evaluation to; empty skips MLflow.
    """
    from conveyor.stages._parts import tracking
    from conveyor.stages.evaluate import run

    result = run(
        model.path,
        holdout.path,
        evaluation_spec,
        evaluation.path,
        report.path,
        tracking(mlflow_tracking_uri, mlflow_experiment, mlflow_artifact_root),
        mlflow_run_id,
        golden_records=golden_set,
        golden_version=golden_set_version,
        champion_dir=champion_model.path if champion_model is not None else None,
        champion_name=registered_model_name,
    )
    evaluation.metadata.update(
        {
            "model_sha256": result.model_sha256,
            "holdout_rows": result.holdout_rows,
            "champion_sha256": result.champion_sha256,
        }
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    cm = result.evaluation["confusion_matrix"]
    classification_metrics.log_confusion_matrix(cm["labels"], cm["matrix"])
    roc = result.evaluation["roc"]
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])

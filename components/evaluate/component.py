"""KFP component: score the model on the frozen holdout (logic: conveyor.evaluation)."""

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
    threshold: float = 0.5,
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "conveyor",
    mlflow_artifact_root: str = "",
    mlflow_run_id: str = "",
):
    """Compute holdout metrics, the confusion matrix and ROC curve, and log them to MLflow.

    Args:
        model: The trained model folder (output of train); its sha256 is verified first.
        holdout: The frozen holdout rows (output of prepare_features).
        evaluation: ``evaluation.json``: metrics, confusion matrix, ROC, model facts.
        metrics: Holdout metrics for the KFP UI.
        classification_metrics: Confusion matrix and ROC curve for the KFP UI.
        report: The evaluation rendered as Markdown.
        threshold: Decision threshold.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        mlflow_experiment: MLflow experiment name.
        mlflow_artifact_root: Artifact folder for a local (sqlite) store; empty on a server.
        mlflow_run_id: The training run to attach the evaluation to; empty skips MLflow.
    """
    from conveyor.config import TrackingSpec
    from conveyor.evaluation import evaluate_stage

    result = evaluate_stage(
        model.path,
        holdout.path,
        threshold,
        evaluation.path,
        report.path,
        TrackingSpec(
            uri=mlflow_tracking_uri,
            experiment=mlflow_experiment,
            artifact_root=mlflow_artifact_root,
        ),
        mlflow_run_id,
    )
    for name, value in result["metrics"].items():
        if value is not None:
            metrics.log_metric(name, value)
    cm = result["confusion_matrix"]
    classification_metrics.log_confusion_matrix(cm["labels"], cm["matrix"])
    roc = result["roc"]
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])

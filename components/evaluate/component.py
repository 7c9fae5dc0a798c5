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
    import tempfile

    from conveyor.config import EvaluationSpec, TrackingSpec, model_from_yaml
    from conveyor.evaluation import evaluate_stage, flat_metrics, golden_from_records

    spec = model_from_yaml(EvaluationSpec, evaluation_spec, "evaluation")
    with tempfile.TemporaryDirectory() as tmp:
        result = evaluate_stage(
            model.path,
            holdout.path,
            spec,
            evaluation.path,
            report.path,
            TrackingSpec(
                uri=mlflow_tracking_uri,
                experiment=mlflow_experiment,
                artifact_root=mlflow_artifact_root,
            ),
            mlflow_run_id,
            golden_path=golden_from_records(golden_set, golden_set_version, tmp),
            champion_dir=champion_model.path if champion_model is not None else None,
            champion_name=registered_model_name,
        )
    evaluation.metadata.update(
        {
            "model_sha256": result["model"]["sha256"],
            "holdout_rows": result["holdout"]["rows"],
            "champion_sha256": (result["champion"] or {}).get("model", {}).get("sha256", ""),
        }
    )
    for name, value in flat_metrics(result).items():
        metrics.log_metric(name, value)
    cm = result["confusion_matrix"]
    classification_metrics.log_confusion_matrix(cm["labels"], cm["matrix"])
    roc = result["roc"]
    classification_metrics.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])

"""KFP component: has the batch drifted from the champion's training data? (logic:
conveyor.drift)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def check_drift(
    batch: Input[Dataset],
    policy: str,
    model_name: str,
    drift: Output[Artifact],
    report: Output[Markdown],
    report_html: Output[HTML],
    metrics: Output[Metrics],
    mlflow_tracking_uri: str = "",
    reference_profile: Input[Artifact] = None,
) -> str:
    """PSI per feature (reference bins), KS for numeric features and PSI of the model's scores.

    Without ``reference_profile`` the batch is compared with the profile the champion's
    training run logged, and the champion (sha256-checked) scores the batch for score PSI.
    The task succeeds whatever the outcome; the decision is its string output for ``dsl.If``.

    Args:
        batch: The recent serving or incoming batch (CSV or Parquet).
        policy: The drift policy as YAML or JSON text (``retrain.drift`` of the pipeline
            config): PSI, KS and score-PSI thresholds; empty uses the conventional defaults.
        model_name: Registered model whose champion is the reference.
        drift: drift.json: per-feature PSI, band, KS and p-value, score PSI, decision.
        report: The drift report as Markdown (per-feature bars) for the KFP UI.
        report_html: The drift report as HTML.
        metrics: ``psi_<feature>``, ``score_psi`` and ``drifted_features`` for the KFP UI.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        reference_profile: A profile JSON to compare with instead of the champion's
            (no score PSI then).

    Returns:
        ``drift``, ``stable``, or ``no_reference`` (no champion, or one without a profile).
    """
    from conveyor.stages.check_drift import run

    result = run(
        batch.path,
        policy,
        model_name,
        drift.path,
        report.path,
        report_html.path,
        mlflow_tracking_uri,
        reference_profile.path if reference_profile is not None else None,
    )
    for name, value in result.metrics.items():
        metrics.log_metric(name, value)
    drift.metadata.update({"decision": result.decision, "summary": result.summary})
    print(result.summary)
    return result.decision

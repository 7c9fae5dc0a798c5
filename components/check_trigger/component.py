"""KFP component: retrain or skip, and the training key (logic: conveyor.stages.check_trigger)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Output, OutputPath

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def check_trigger(
    batch: Input[Dataset],
    policy: str,
    model_name: str,
    contract: str,
    features: str,
    training: str,
    evaluation: str,
    gate_policy: str,
    report: Output[Markdown],
    drift: Output[Artifact],
    drift_report: Output[Markdown],
    drift_html: Output[HTML],
    metrics: Output[Metrics],
    training_key: OutputPath(str),  # type: ignore[valid-type]
    drift_decision: str = "",
    git_commit: str = "",
    force: bool = False,
    mlflow_tracking_uri: str = "",
) -> str:
    """Apply the retrain policy: skip an unchanged re-run, else retrain on a trigger.

    Skip-if-unchanged: when the batch's sha256, the code version and commit, the contract,
    features, training and evaluation config and the gate policy (seeds included) match an
    earlier training run, training is skipped and the report names that version or run.
    Otherwise it retrains when there is no champion, on new data (``on_new_data``), on drift
    (``on_drift``: the batch against the champion's logged profile, as check_drift does, run
    here only when its answer can matter) or when the champion is older than ``max_age_days``.
    The decision is the string output, for ``dsl.If``.

    Args:
        batch: The incoming batch (CSV or Parquet).
        policy: The retrain policy as YAML or JSON text (``retrain`` of the pipeline config).
        model_name: Registered model name.
        contract: The data contract, exactly as the training pipeline receives it.
        features: The feature config, as the training pipeline receives it.
        training: The training config (estimator, params, seed).
        evaluation: The evaluation spec plus golden set, as the training pipeline receives it.
        gate_policy: The gate policy text.
        report: Why: the reasons that fired, or what the skip matched.
        drift: drift.json of the drift check (``not_checked`` with the reason when skipped).
        drift_report: The drift report as Markdown (per-feature bars).
        drift_html: The drift report as HTML.
        metrics: ``psi_<feature>``, ``score_psi`` and ``drifted_features``.
        training_key: Output: the fingerprint the train step tags its run with.
        drift_decision: A drift decision from elsewhere (e.g. check_drift's output); empty
            runs the drift check here.
        git_commit: Commit of the code being run.
        force: Retrain whatever the policy says.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.

    Returns:
        ``retrain`` or ``skip``.
    """
    from conveyor.stages.check_trigger import KeyInputs, Reports, run

    result = run(
        batch.path,
        model_name=model_name,
        policy=policy,
        key_inputs=KeyInputs(contract, features, training, evaluation, gate_policy),
        tracking_uri=mlflow_tracking_uri,
        git_commit=git_commit,
        drift_decision=drift_decision,
        force=force,
        check_drift=True,
        reports=Reports(report.path, drift.path, drift_report.path, drift_html.path, training_key),
    )
    checked = result.drift or {}
    for name, value in result.drift_metrics.items():
        metrics.log_metric(name, value)
    drift.metadata.update({"decision": checked.get("decision", "not_checked")})
    print(result.decision, "; ".join(result.reasons) or result.skipped_because)
    return result.decision

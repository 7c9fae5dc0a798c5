"""KFP component: retrain or skip, and the training key (logic: conveyor.retrain)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Output, OutputPath

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
    (``on_drift`` and ``drift_decision == "drift"``) or when the champion is older than
    ``max_age_days``. The decision is the string output, for ``dsl.If``.

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
        training_key: Output: the fingerprint the train step tags its run with.
        drift_decision: check_drift's output (``drift``, ``stable``, ``no_reference``).
        git_commit: Commit of the code being run.
        force: Retrain whatever the policy says.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.

    Returns:
        ``retrain`` or ``skip``.
    """
    import os
    from pathlib import Path

    from conveyor import retrain
    from conveyor.config import RetrainPolicy, model_from_yaml

    spec = model_from_yaml(RetrainPolicy, policy, "policy") if policy.strip() else RetrainPolicy()
    result = retrain.trigger_stage(
        batch.path,
        model_name=model_name,
        tracking_uri=mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", ""),
        policy=spec,
        key_inputs={
            "contract": contract,
            "features": features,
            "training": training,
            "evaluation": evaluation,
            "policy": gate_policy,
        },
        git_commit=git_commit,
        drift_decision=drift_decision,
        force=force,
    )
    Path(report.path).write_text(retrain.render_markdown(result))
    Path(training_key).write_text(result["training_key"])
    print(result["decision"], "; ".join(result["reasons"]) or result["skipped_because"])
    return str(result["decision"])

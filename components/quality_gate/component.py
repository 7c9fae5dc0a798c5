"""KFP component: apply the gate policy to the evaluation (logic: conveyor.stages.quality_gate)."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def quality_gate(
    evaluation: Input[Artifact],
    policy: str,
    gate: Output[Artifact],
    report: Output[Markdown],
    report_html: Output[HTML],
    mlflow_tracking_uri: str = "",
    mlflow_experiment: str = "conveyor",
    mlflow_artifact_root: str = "",
    mlflow_run_id: str = "",
) -> str:
    """Decide approve, hold or reject from the evaluation and the policy; fails closed.

    The task succeeds whatever the verdict: the verdict is the task's string output
    (``Output``) for ``dsl.If`` (``register_model`` runs only on approve or hold), and the
    report shows every rule with candidate value, champion value, bound and outcome. It is a
    plain return rather than a NamedTuple field because kfp.local cannot resolve a NamedTuple
    field inside a ``dsl.If`` condition.

    Args:
        evaluation: evaluation.json from evaluate (with the champion block when there is one).
        policy: The gate policy as YAML or JSON text (see examples/fraud/gate_policy.yaml).
            An empty policy holds.
        gate: gate.json: verdict, reasons and every check.
        report: The gate report as Markdown for the KFP UI.
        report_html: The gate report as HTML.
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        mlflow_experiment: MLflow experiment name.
        mlflow_artifact_root: Artifact folder for a local (sqlite) store; empty on a server.
        mlflow_run_id: The training run the verdict and reports are logged to; empty skips it.

    Returns:
        The verdict: ``approve``, ``hold`` or ``reject``.
    """
    from conveyor.stages._parts import tracking
    from conveyor.stages.quality_gate import run

    result = run(
        evaluation.path,
        policy,
        gate.path,
        report.path,
        report_html.path,
        tracking(mlflow_tracking_uri, mlflow_experiment, mlflow_artifact_root),
        mlflow_run_id,
    )
    gate.metadata.update({"verdict": result.verdict, "reasons": len(result.reasons)})
    return result.verdict

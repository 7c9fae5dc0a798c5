"""KFP component: the rollout pipeline's exit handler (logic: conveyor.stages.finalize_rollout)."""

from kfp import dsl

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def finalize_rollout(
    status: dsl.PipelineTaskFinalStatus,
    inference_service: str,
    model_name: str,
    namespace: str = "",
    mlflow_tracking_uri: str = "",
) -> str:
    """Runs after the rollout whatever happened; when a task failed mid-rollout, puts all
    traffic back on the champion (or removes the shadow) so a crash never leaves a canary
    holding traffic. A rollout that finished (promoted, rolled back or held) is left alone.

    Args:
        status: The pipeline's final status (KFP fills it in; not passed by the caller).
        inference_service: InferenceService name.
        model_name: Registered model name in MLflow.
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.

    Returns:
        ``succeeded`` (nothing to do), ``rolled_back`` or ``unchanged`` (failed before any
        change: nothing to undo).
    """
    from conveyor.stages.finalize_rollout import run

    result = run(
        status.state,
        status.error_message,
        inference_service,
        namespace,
        model_name,
        mlflow_tracking_uri,
    )
    return result.outcome

"""KFP component: promote the canary to 100 % and to champion (logic: conveyor.stages.promote)."""

from kfp import dsl

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def promote(
    inference_service: str,
    model_name: str,
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    reason: str = "",
) -> str:
    """Remove ``canaryTrafficPercent`` (the canary takes 100 %), then move MLflow ``champion``.

    Args:
        inference_service: InferenceService name.
        model_name: Registered model name in MLflow.
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.
        reason: Why, recorded in the annotation, the Event and the registry trail.

    Returns:
        The verdict ``promoted``.
    """
    from conveyor.stages.promote import run

    run(inference_service, namespace, model_name, mlflow_tracking_uri, reason)
    return "promoted"

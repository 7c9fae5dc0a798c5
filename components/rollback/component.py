"""KFP component: roll a canary or shadow back (logic: conveyor.stages.rollback)."""

from kfp import dsl

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def rollback(
    inference_service: str,
    model_name: str,
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    reason: str = "",
) -> str:
    """All traffic back on the champion in one write (its spec restored), or the shadow
    removed; the candidate version is marked rolled back and loses ``candidate`` in MLflow.

    Args:
        inference_service: InferenceService name.
        model_name: Registered model name in MLflow.
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.
        reason: Why, recorded in the annotation, the Event and the registry trail.

    Returns:
        The verdict ``rolled_back``.
    """
    from conveyor.stages.rollback import run

    run(inference_service, namespace, model_name, mlflow_tracking_uri, reason)
    return "rolled_back"

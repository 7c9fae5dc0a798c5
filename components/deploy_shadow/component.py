"""KFP component: shadow a version behind the champion (logic: conveyor.stages.deploy_shadow)."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def deploy_shadow(
    inference_service: str,
    model_name: str,
    version: str,
    status: Output[Artifact],
    percent: float = 10.0,
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    require_approval: bool = False,
    reason: str = "",
    score_log_url: str = "",
    runtime: str = "",
) -> str:
    """Serve a version on ``<inference_service>-shadow`` and mirror ``percent`` % of requests.

    An Istio VirtualService routes every request to the champion and mirrors a share to the
    shadow; the shadow's answers are dropped, so callers never see them. The champion's
    InferenceService and traffic are untouched.

    Args:
        inference_service: The champion's InferenceService name.
        model_name: Registered model name in MLflow.
        version: Registered version to shadow (approved; sha256 and scikit-learn version
            against the runtime's checked first).
        status: Rollout status after the change (JSON).
        percent: Share of requests mirrored to the shadow, 0-100.
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.
        require_approval: Refuse a version without a person's recorded approval.
        reason: Why, recorded in the annotation and the Kubernetes Event.
        score_log_url: The score-log receiver; the shadow logs its responses there under
            its own version, so its scores can be compared with the champion's. Empty: none.
        runtime: ServingRuntime / ClusterServingRuntime of the shadow. Empty: the champion's,
            else conveyor-sklearn.

    Returns:
        The shadowed model version.
    """
    from conveyor.stages.deploy_shadow import run

    result = run(
        inference_service, namespace, model_name, version, percent,
        mlflow_tracking_uri, require_approval, reason, score_log_url=score_log_url,
        runtime=runtime,
    )  # fmt: skip
    result.write_status(status.path)
    status.metadata.update({"shadow": version, "mirrorPercent": percent})
    return str(version)

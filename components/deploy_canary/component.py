"""KFP component: deploy a version as a canary, or step its traffic.

Logic: ``conveyor.stages.deploy_canary``."""

from kfp import dsl
from kfp.dsl import Artifact, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def deploy_canary(
    inference_service: str,
    model_name: str,
    version: str,
    percent: int,
    status: Output[Artifact],
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    require_approval: bool = False,
    reason: str = "",
    resources: str = "",
    score_log_url: str = "",
    runtime: str = "",
) -> str:
    """Serve a registered version on a KServe InferenceService at ``percent`` % of traffic.

    The version must be approved (and, with ``require_approval``, approved by a person); its
    model file's sha256 is checked against the registry, and the scikit-learn it was pickled
    with against the serving runtime's ``conveyor.io/sklearn-version``, before anything
    changes. A missing InferenceService is created serving the version at 100 %; otherwise a
    canary starts beside the champion, or a running canary of the same version moves to
    ``percent`` %.

    Args:
        inference_service: InferenceService name.
        model_name: Registered model name in MLflow.
        version: Registered version to deploy.
        percent: Traffic share for the new revision, 0-100 (0: deployed, no traffic yet).
        status: Rollout status after the change (JSON).
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.
        require_approval: Refuse a version without a person's recorded approval.
        reason: Why, recorded in the annotation and the Kubernetes Event.
        resources: JSON of requests/limits/replicas for the model container (empty: defaults).
        score_log_url: The score-log receiver; a new InferenceService logs its responses
            there (a canary inherits the logger, re-labelled with its version). Empty: none.
        runtime: ServingRuntime / ClusterServingRuntime of the new revision. Empty: the
            InferenceService's own, else conveyor-sklearn.

    Returns:
        The model version now taking ``percent`` % of traffic.
    """
    from conveyor.stages.deploy_canary import run

    result = run(
        inference_service, namespace, model_name, version, percent,
        mlflow_tracking_uri, require_approval, reason, resources,
        score_log_url=score_log_url, runtime=runtime,
    )  # fmt: skip
    result.write_status(status.path)
    status.metadata.update({"phase": result.phase, "canaryTrafficPercent": percent})
    return str(version)

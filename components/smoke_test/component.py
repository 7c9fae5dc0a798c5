"""KFP component: smoke test a served version before it takes traffic.

Logic: ``conveyor.stages.smoke_test``."""

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Metrics, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def smoke_test(
    inference_service: str,
    model_name: str,
    version: str,
    examples: str,
    report: Output[Markdown],
    report_json: Output[Artifact],
    metrics: Output[Metrics],
    endpoint: str = "",
    target: str = "candidate",
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    policy: str = "",
) -> str:
    """Send canonical V1 and V2 requests and edge cases; check schema, version and latency.

    Edge cases: empty batch, a missing feature, a wrong type (both must be refused and leave
    the server ready), the largest allowed batch. Single-row p99 must be within the policy.
    A failed smoke test returns ``failed`` so the pipeline rolls back with traffic untouched.

    Args:
        inference_service: InferenceService name (also the model name in the URLs).
        model_name: Registered model name (its feature_spec.json defines the request).
        version: The version expected to answer.
        examples: JSON list of example rows (objects of column -> value).
        report: Markdown report, one row per check.
        report_json: The full report (JSON).
        metrics: Latency p50/p99 (when the server answered) and the number of failed checks.
        endpoint: Base URL to test; empty uses the newest revision's ``latest`` tag URL.
        target: ``candidate`` (the canary's new revision) or ``shadow``.
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI.
        policy: JSON smoke policy (latency_requests, max_p99_ms, max_batch_rows, ...).

    Returns:
        ``passed`` or ``failed``.
    """
    import math

    from conveyor.stages.smoke_test import run

    result = run(
        inference_service, namespace, endpoint, version, examples, model_name,
        mlflow_tracking_uri, policy, report_json.path, report.path, target,
    )  # fmt: skip
    lat = result.report["latency_ms"]["v1"]
    for key in ("p50", "p99"):  # a server that never answered has no latency (NaN): not logged
        if math.isfinite(lat[key]):
            metrics.log_metric(f"v1_{key}_ms", round(lat[key], 3))
    metrics.log_metric("failed_checks", result.failed_checks)
    return "passed" if result.passed else "failed"

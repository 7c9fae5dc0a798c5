"""KFP component: judge the running canary or shadow from online metrics (logic:
conveyor.rollout)."""

from kfp import dsl
from kfp.dsl import Artifact, Markdown, Output

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def analyse_rollout(
    inference_service: str,
    plan: str,
    prometheus_url: str,
    report: Output[Markdown],
    decision: Output[Artifact],
    namespace: str = "",
    mlflow_tracking_uri: str = "",
    max_intervals: int = 0,
) -> str:
    """Step the canary up while online evidence is healthy, promote at the end, roll back or
    hold on its own when it is not. A shadow is judged first on the mirrored requests it
    answers; when it passes it becomes a canary at the plan's first step (``after_shadow``).

    Each interval queries the plan's checks in Prometheus (error rate, p99 against the
    champion, ...), records the decision with values and bounds as an annotation, an Event
    and an MLflow tag on the candidate, and notifies on hold, rollback and promotion. No
    traffic or an unreachable Prometheus is inconclusive: it holds, it never promotes.

    Args:
        inference_service: InferenceService with a canary (or a ``<name>-shadow``) in progress.
        plan: Rollout plan as one-line JSON (the ``analysis`` and ``steps`` blocks matter).
        prometheus_url: The cluster's Prometheus, e.g. http://prometheus-operated.monitoring:9090.
        report: One line per interval and the final decision (Markdown).
        decision: The final decision with every check's value and bound (JSON).
        namespace: Namespace; empty uses the pipeline pod's own.
        mlflow_tracking_uri: MLflow URI; empty uses MLFLOW_TRACKING_URI (aliases follow).
        max_intervals: Stop after this many intervals (0: run to promote, hold or rollback).

    Returns:
        ``promote``, ``hold``, ``rollback`` (or ``continue``/``step_up`` when stopped early).
    """
    from conveyor.stages.analyse_rollout import run

    result = run(
        inference_service, namespace, plan, prometheus_url, mlflow_tracking_uri,
        decision.path, report.path, max_intervals,
    )  # fmt: skip
    decision.metadata.update({"decision": result.decision, "interval": result.final["interval"]})
    return result.decision

"""The rollout pipeline's stages, one function per component (components stay thin).

Each stage talks to Kubernetes through ``KubeCluster`` (the pod's service account on a
cluster, KUBECONFIG elsewhere) and to MLflow through ``ModelRegistry``; each writes a JSON
report the component returns as an artifact.
"""

import json
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor import context
from conveyor.errors import BadInputError, ClusterError
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, KubeCluster, get
from conveyor.serving import inference as inf
from conveyor.serving.inference import Change, Resources
from conveyor.serving.smoke import SmokePolicy, render_markdown, smoke_test
from conveyor.tables import write_json, write_text


def _cluster(namespace: str) -> KubeCluster:
    return KubeCluster(namespace or None, actor=_actor())


def _actor() -> str:
    return context.actor("kfp-rollout-pipeline", person=False)


def _resources(resources_json: str) -> Resources:
    from conveyor.config import model_from_yaml

    return model_from_yaml(Resources, resources_json or "{}", "resources")


def deploy_canary_stage(
    inference_service: str,
    namespace: str,
    model_name: str,
    version: str,
    percent: int,
    tracking_uri: str,
    require_approval: bool,
    reason: str,
    resources_json: str = "",
    wait_seconds: float = 600.0,
    score_log_url: str = "",
    runtime: str = "",
) -> dict[str, Any]:
    """Deploy or step, then wait until the new revision is ready (a revision that never gets
    ready is rolled back). The version's approval, checksum and scikit-learn (against
    ``runtime``'s, empty: the InferenceService's own) are checked before any write."""
    cluster = _cluster(namespace)
    model = actions.resolve_version(
        tracking_uri, model_name, version, cluster=cluster,
        inference_service=inference_service, runtime=runtime, require_approval=require_approval,
    )  # fmt: skip
    change = Change("canary", reason or "rollout pipeline", _actor(),
                    details={"version": model.version, "percent": percent})  # fmt: skip
    current = cluster.find(ISVC, inference_service)
    if current is not None and inf.champion_of(current) is None:
        serving = inf.current_model(current)
        if serving["version"] == model.version and serving["sha256"] == model.sha256:
            # A first release (created at 100 %) or a re-run: nothing to step.
            return actions.status(cluster, inference_service)
    actions.deploy(
        cluster, inference_service, model, percent, change,
        resources=_resources(resources_json), score_log=score_log_url or None,
    )  # fmt: skip
    try:
        actions.wait_ready(cluster, inference_service, timeout=wait_seconds)
    except ClusterError:
        if inf.champion_of(get(cluster, ISVC, inference_service)) is not None:
            why = Change("rollback", f"v{model.version} never became ready", _actor())
            actions.rollback(cluster, inference_service, why)
        raise
    return actions.status(cluster, inference_service)


def deploy_shadow_stage(
    inference_service: str,
    namespace: str,
    model_name: str,
    version: str,
    percent: float,
    tracking_uri: str,
    require_approval: bool,
    reason: str,
    wait_seconds: float = 600.0,
    score_log_url: str = "",
    runtime: str = "",
) -> dict[str, Any]:
    """Shadow the version once its approval, checksum and scikit-learn (against ``runtime``'s,
    empty: the champion's) are checked, then wait until the shadow is ready."""
    cluster = _cluster(namespace)
    model = actions.resolve_version(
        tracking_uri, model_name, version, cluster=cluster,
        inference_service=inference_service, runtime=runtime, require_approval=require_approval,
    )  # fmt: skip
    change = Change("shadow", reason or "rollout pipeline", _actor(),
                    details={"version": model.version, "percent": percent})  # fmt: skip
    actions.deploy_shadow(
        cluster, inference_service, model, percent, change, score_log=score_log_url or None
    )
    actions.wait_ready(cluster, inf.shadow_name(inference_service), timeout=wait_seconds)
    return actions.status(cluster, inference_service)


def candidate_endpoint(isvc: dict[str, Any]) -> str:
    """Where the newest revision answers before it has traffic: its ``latest`` tag URL
    (tag routing), else the service's address."""
    pred = (isvc.get("status") or {}).get("components", {}).get("predictor", {})
    for entry in pred.get("traffic", []):
        if entry.get("latestRevision") and entry.get("url"):
            return str(entry["url"])
    status = isvc.get("status") or {}
    return str((status.get("address") or {}).get("url") or status.get("url") or "")


def smoke_stage(
    inference_service: str,
    namespace: str,
    endpoint: str,
    version: str,
    examples_json: str,
    model_name: str,
    tracking_uri: str,
    policy_json: str,
    report_dir: str | Path,
    target: str = "candidate",
) -> dict[str, Any]:
    """Smoke test the candidate (or ``<name>-shadow``) and write smoke.json + smoke.md."""
    from conveyor.config import model_from_yaml

    policy = model_from_yaml(SmokePolicy, policy_json or "{}", "smoke policy")
    feature_spec, version = _feature_spec(tracking_uri, model_name, version)
    rows = pd.DataFrame(json.loads(examples_json or "[]"))
    if rows.empty:
        raise BadInputError("examples_json: no example rows to smoke test with")
    name = inf.shadow_name(inference_service) if target == "shadow" else inference_service
    if not endpoint:
        endpoint = candidate_endpoint(get(_cluster(namespace), ISVC, name))
        if not endpoint:
            raise BadInputError(f"{name}: no URL in its status yet; pass `endpoint`")
    report = smoke_test(
        endpoint, name, rows, feature_spec,
        expected_version=version or None, policy=policy,
    )  # fmt: skip
    out = Path(report_dir)
    write_json(report, out / "smoke.json")
    write_text(render_markdown(report), out / "smoke.md")
    return report


def _feature_spec(tracking_uri: str, model_name: str, version: str) -> tuple[dict[str, Any], str]:
    """The version's feature_spec.json, from its checksum-verified serving files, and the
    version number (``version`` may be an alias)."""
    import tempfile

    from conveyor.model import SPEC_FILE
    from conveyor.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="conveyor-smoke-") as tmp:
        row = registry.resolve(model_name, version) if version else None
        if row is None:
            raise BadInputError("version: empty; which registered version is being smoke tested?")
        folder = registry.download(row, tmp)
        spec = json.loads((folder / SPEC_FILE).read_text(encoding="utf-8"))
        return dict(spec), str(row["version"])


def promote_stage(
    inference_service: str, namespace: str, model_name: str, tracking_uri: str, reason: str
) -> str:
    """MLflow ``champion`` moves to the candidate, then traffic to 100 % on it (the alias is
    put back if the traffic change fails)."""
    from conveyor.registry import ModelRegistry

    cluster = _cluster(namespace)
    why = reason or "rollout pipeline: smoke test and steps passed"
    uri = context.tracking_uri(tracking_uri)
    if not uri:
        print("promote: no MLflow tracking URI; the champion alias was not moved")
    out = actions.promote_release(
        cluster, inference_service, Change("promote", why, _actor()),
        ModelRegistry(uri) if uri else None, model_name,
        first_release_ok=True,  # a first release already serves 100 %: only the alias moves
    )  # fmt: skip
    return str(inf.current_model(out)["version"])


def rollback_stage(
    inference_service: str, namespace: str, model_name: str, tracking_uri: str, reason: str
) -> str:
    """Traffic back on the champion (or the shadow removed); the candidate is marked rolled
    back in MLflow. A registry failure fails the task after traffic is safe."""
    from conveyor.registry import ModelRegistry

    cluster = _cluster(namespace)
    why = reason or "rollout pipeline: candidate failed its checks"
    uri = context.tracking_uri(tracking_uri)
    done = actions.rollback_release(
        cluster, inference_service, Change("rollback", why, _actor()),
        (lambda: ModelRegistry(uri)) if uri else None, model_name,
    )  # fmt: skip
    if done.error is not None:
        raise done.error
    return done.version


def finalize_stage(
    state: str,
    error: str,
    inference_service: str,
    namespace: str,
    model_name: str,
    tracking_uri: str,
) -> str:
    """The rollout pipeline's exit handler: after a failed task, undo a canary in progress
    (champion annotation present) or a shadow; a finished rollout is left as it is."""
    if state == "SUCCEEDED":
        return "succeeded"
    cluster = _cluster(namespace)
    isvc = cluster.find(ISVC, inference_service)
    canary = isvc is not None and inf.champion_of(isvc) is not None
    shadow = cluster.find(ISVC, inf.shadow_name(inference_service)) is not None
    if not canary and not shadow:
        print(f"rollout {state.lower()}: no canary or shadow in progress, nothing to undo")
        return "unchanged"
    why = f"rollout pipeline {state.lower()}: {(error or 'a task failed').strip()[:300]}"
    version = rollback_stage(inference_service, namespace, model_name, tracking_uri, why)
    print(f"{why}; v{version} rolled back, traffic on the champion")
    return "rolled_back"


def analyse_stage(
    inference_service: str,
    namespace: str,
    plan_json: str,
    prometheus_url: str,
    tracking_uri: str,
    report_dir: str | Path,
    max_intervals: int = 0,
) -> dict[str, Any]:
    """Run the plan's analysis on the running canary or shadow to its end; write
    analysis.json/.md."""
    from conveyor.config import model_from_yaml
    from conveyor.rollout.analysis import cluster_analysis
    from conveyor.rollout.plan import RolloutPlan

    plan = model_from_yaml(RolloutPlan, plan_json or "{}", "rollout plan")
    uri = context.tracking_uri(tracking_uri)
    analysis = cluster_analysis(
        _cluster(namespace), inference_service, plan, prometheus_url, uri, _actor()
    )
    lines: list[str] = []

    def progress(d: Any) -> None:
        print(d.line(), flush=True)
        lines.append(d.line())

    final = analysis.run(max_intervals=max_intervals or None, progress=progress)
    out = Path(report_dir)
    write_json({"final": final.to_dict(), "intervals": lines}, out / "analysis.json")
    md = [f"# Analysis of {inference_service}: {final.decision}", "", final.reason, "", "```",
          *lines, "```", ""]  # fmt: skip
    write_text("\n".join(md), out / "analysis.md")
    return final.to_dict()

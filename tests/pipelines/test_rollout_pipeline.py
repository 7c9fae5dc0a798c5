"""The rollout pipeline on kfp.local: every task runs the real component against the fake
Kubernetes API (KServe semantics, via KUBECONFIG), a real MLflow registry (sqlite) and a real
kserve.ModelServer standing in for the candidate's revision."""

import pytest
from kfp import local

from conveyor.local.model_server import LocalServer
from conveyor.pipelines.rollout.pipeline import build_pipeline
from conveyor.registry import ModelRegistry
from conveyor.rollout import actions
from conveyor.rollout.cluster import KubeCluster
from conveyor.rollout.plan import RolloutPlan
from tests.conftest import SMOKE_ROWS
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


API = "serving.kserve.io/v1beta1"


def run_rollout(tmp_path, registry_uri, endpoint: str, **arguments):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "root"),
        raise_on_error=True,
    )
    # A generous latency bound: these tests are about the pipeline's branches (a wrong version
    # fails the smoke test below), and the slowest of 20 calls on a loaded runner is no signal.
    smoke = {"latency_requests": 20, "max_batch_rows": 100, "max_p99_ms": 10_000}
    plan = RolloutPlan(steps=[50, 100], smoke=smoke)
    pipeline = build_pipeline(plan, "fraud", "fraud", SMOKE_ROWS, tracking_uri=registry_uri)
    return pipeline(version="2", smoke_endpoint=endpoint, reason="pipeline test", **arguments)


def test_canary_rollout_promotes_a_healthy_candidate(
    champion_live, registry_uri, fraud_models, tmp_path
) -> None:
    with LocalServer(fraud_models.dirs["2"], "fraud", "2") as candidate:
        run_rollout(tmp_path, registry_uri, candidate.url)
    assert split(champion_live) == {"fraud-predictor-00002": 100}
    reasons = [e["reason"] for e in champion_live.events("models")]
    assert reasons == ["Deployed", "CanaryStarted", "CanaryStep", "CanaryStep", "Promoted"]
    registry = ModelRegistry(registry_uri)
    assert "champion" in registry.get("fraud", "2")["aliases"]
    assert "previous-champion" in registry.get("fraud", "1")["aliases"]


def test_failed_smoke_test_rolls_back_with_traffic_on_champion(
    champion_live, registry_uri, fraud_models, tmp_path
) -> None:
    # The server answers as v1, not the v2 being rolled out: the version check must fail.
    with LocalServer(fraud_models.dirs["1"], "fraud", "1") as wrong:
        run_rollout(tmp_path, registry_uri, wrong.url)
    assert split(champion_live) == {"fraud-predictor-00001": 100}
    reasons = [e["reason"] for e in champion_live.events("models")]
    assert reasons == ["Deployed", "CanaryStarted", "RolledBack"]  # no step ever took traffic
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]
    assert "champion" in ModelRegistry(registry_uri).get("fraud", "1")["aliases"]


def test_a_task_that_fails_mid_rollout_leaves_traffic_on_the_champion(
    champion_live, registry_uri, fraud_models, tmp_path
) -> None:
    """The exit handler: the smoke task crashes (no example rows) after the candidate was
    deployed at 0 %; finalize_rollout puts the champion's spec back and marks v2 rolled back."""
    with (
        LocalServer(fraud_models.dirs["2"], "fraud", "2") as candidate,
        pytest.raises(RuntimeError, match="smoke-test"),
    ):
        run_rollout(tmp_path, registry_uri, candidate.url, examples="[]")
    assert split(champion_live) == {"fraud-predictor-00001": 100}
    reasons = [e["reason"] for e in champion_live.events("models")]
    assert reasons == ["Deployed", "CanaryStarted", "RolledBack"]
    isvc = KubeCluster().find(actions.ISVC, "fraud")
    assert isvc is not None
    assert "conveyor.io/champion" not in (isvc["metadata"].get("annotations") or {})
    assert "rollout pipeline failed" in isvc["metadata"]["annotations"]["conveyor.io/last-change"]
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back"


def test_shadow_rollout_is_analysed_and_holds_without_evidence(
    champion_live, registry_uri, fraud_models, tmp_path
) -> None:
    """strategy shadow with a Prometheus: deploy the shadow, smoke test it, then
    analyse_rollout judges it; an empty Prometheus is no evidence, so it holds (never a
    canary) and the champion keeps all traffic."""
    import json

    from conveyor.local.prometheus import PrometheusServer

    # The smoke test's latency bound is not what this test is about: on a loaded runner the
    # slowest of its 20 timed calls passed 250 ms and the shadow was (rightly) removed before
    # any analysis; the bound itself is tested in tests/serving.
    plan = RolloutPlan.model_validate(
        {"strategy": "shadow", "analysis": {"interval_seconds": 0.2, "max_inconclusive": 2},
         "smoke": {"max_p99_ms": 10_000}}
    )  # fmt: skip
    with (
        PrometheusServer({}) as prom,
        # KServe names a runtime's model after its InferenceService: fraud-shadow
        LocalServer(fraud_models.dirs["2"], "fraud-shadow", "2") as shadow,
    ):
        plan_json = json.dumps(plan.model_dump(mode="json"))
        run_rollout(tmp_path, registry_uri, shadow.url, strategy="shadow",
                    prometheus_url=prom.url, plan=plan_json)  # fmt: skip
    assert split(champion_live) == {"fraud-predictor-00001": 100}
    shadow = champion_live.get(API, "inferenceservices", "models", "fraud-shadow")
    assert shadow["metadata"]["annotations"]["conveyor.io/phase"] == "Held"
    reasons = [e["reason"] for e in champion_live.events("models")]
    assert reasons == ["Deployed", "ShadowStarted", "AnalysisContinue", "AnalysisHold"]
    record = json.loads(shadow["metadata"]["annotations"]["conveyor.io/analysis"])
    assert "mirrored requests to the shadow in the interval < min 20" in record["last"]["reason"]


def test_a_shadow_that_never_answers_is_removed(
    champion_live, registry_uri, fraud_models, tmp_path
) -> None:
    """The shadow's endpoint knows no model `fraud-shadow` (404 everywhere): the smoke test
    fails without one timed call (no latency to report), and the shadow is removed."""
    with LocalServer(fraud_models.dirs["2"], "fraud", "2") as wrong_name:
        run_rollout(tmp_path, registry_uri, wrong_name.url, strategy="shadow")
    assert split(champion_live) == {"fraud-predictor-00001": 100}
    assert champion_live.get(API, "inferenceservices", "models", "fraud-shadow") is None
    reasons = [e["reason"] for e in champion_live.events("models")]
    assert reasons == ["Deployed", "ShadowStarted", "ShadowStopped"]
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]

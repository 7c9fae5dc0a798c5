"""The generated least-privilege Role is enough for every rollout path (canary, promote,
rollback, shadow, shadow to canary under analysis; with the runtime reader ClusterRole, the
runtime check) and forbids everything else: the fake API server enforces the rules the way
RBAC does."""

import dataclasses

import pytest

from conveyor.errors import ClusterError
from conveyor.rollout import actions, rbac
from conveyor.rollout.analysis import Analysis
from conveyor.rollout.cluster import ISVC, VSVC, KubeCluster
from conveyor.rollout.metrics import StaticMetrics
from conveyor.rollout.plan import AnalysisSpec, CheckSpec, RolloutPlan
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, ServedModel
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration


def model(version: str) -> ServedModel:
    return ServedModel("fraud", version, f"s3://models/{version}/serving", version * 64)


def change(what: str) -> Change:
    return Change(what, "rbac test", "pipeline-runner")


def test_every_rollout_path_runs_under_the_generated_role(fake_kube, conveyor_runtime) -> None:
    fake_kube.enforce_rules(rbac.rules(["fraud"]), cluster_rules=rbac.cluster_rules())
    cluster = KubeCluster()
    # deploy's check reads the namespace's ServingRuntimes, then the ClusterServingRuntime
    pinned = conveyor_runtime["metadata"]["annotations"][inf.SKLEARN_VERSION]
    checked = dataclasses.replace(model("1"), sklearn_version=pinned)
    assert actions.check_runtime(cluster, checked, inf.RUNTIME).runtime == inf.RUNTIME
    actions.deploy(cluster, "fraud", model("1"), 0, change("deploy"))
    actions.deploy(cluster, "fraud", model("2"), 10, change("canary"))
    actions.set_traffic(cluster, "fraud", 50, change("step"))
    actions.promote(cluster, "fraud", change("promote"))
    actions.deploy(cluster, "fraud", model("3"), 10, change("canary"))
    actions.rollback(cluster, "fraud", change("rollback"))
    actions.deploy_shadow(cluster, "fraud", model("4"), 20.0, change("shadow"))
    actions.deploy_shadow(cluster, "fraud", model("4"), 40.0, change("shadow"))  # patches both
    # the analysis passes the shadow: a canary of it, the shadow and its mirror deleted
    shadow_rev = "fraud-shadow-predictor-00001"
    plan = RolloutPlan(analysis=AnalysisSpec(
        interval_seconds=10, requests_query='req{rev="{{ revision }}"}', shadow_checks=1,
        checks=[CheckSpec(name="err", query='err{rev="{{ revision }}"}', op="above",
                          threshold=0.01)],
    ))  # fmt: skip
    metrics = StaticMetrics({f'req{{rev="{shadow_rev}"}}': 100.0, f'err{{rev="{shadow_rev}"}}': 0})
    assert Analysis(cluster, "fraud", plan, metrics).step().decision == "step_up"
    assert cluster.find(ISVC, "fraud-shadow") is None
    assert cluster.find(VSVC, "fraud-mirror") is None
    assert sum(traffic_split(fake_kube, "models", "fraud").values()) == 100
    status = actions.status(cluster, "fraud")  # reads the Events back
    assert status["candidate"] == "4" and status["events"]


def test_the_role_forbids_other_services_and_deleting_the_champion(fake_kube) -> None:
    cluster = KubeCluster()
    actions.deploy(cluster, "other", model("1"), 0, change("deploy"))  # before the Role
    actions.deploy(cluster, "fraud", model("1"), 0, change("deploy"))
    fake_kube.enforce_rules(rbac.rules(["fraud"]))
    with pytest.raises(ClusterError, match='cannot patch resource "inferenceservices"'):
        actions.deploy(cluster, "other", model("2"), 10, change("canary"))
    with pytest.raises(ClusterError, match='cannot delete resource "inferenceservices"'):
        cluster.delete(ISVC, "fraud")
    assert cluster.find(ISVC, "fraud") is not None and cluster.find(ISVC, "other") is not None


def test_rules_name_every_service_of_the_namespace() -> None:
    named = {tuple(r.get("resourceNames", ())): r["verbs"] for r in rbac.rules(["a", "b"])}
    assert named[("a", "b", "a-shadow", "b-shadow")] == ["patch"]
    assert named[("a-shadow", "b-shadow")] == ["delete"]
    assert named[("a-mirror", "b-mirror")] == ["patch", "delete"]
    with pytest.raises(ValueError, match="at least one InferenceService"):
        rbac.rules([])

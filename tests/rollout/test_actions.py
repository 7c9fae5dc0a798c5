"""Rollout actions through the real kubernetes client against the stateful fake API server,
which plays KServe's controller (traffic split, rolled-out revisions, readiness)."""

import json

import pytest

from conveyor.errors import BadInputError, ClusterError, NotFoundError
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, KubeCluster
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, ServedModel
from tests.fakes.kube_api import traffic_split
from tests.k8s_schema import validate

pytestmark = pytest.mark.integration


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


API = "serving.kserve.io/v1beta1"
V1 = ServedModel("fraud", "1", "s3://models/1/artifacts/serving", "a" * 64)
V2 = ServedModel("fraud", "2", "s3://models/2/artifacts/serving", "b" * 64)
V3 = ServedModel("fraud", "3", "s3://models/3/artifacts/serving", "c" * 64)


def why(action: str) -> Change:
    return Change(action, f"test {action}", "oncall@example.com")


@pytest.fixture
def cluster(fake_kube) -> KubeCluster:
    return KubeCluster()  # namespace from the kubeconfig context


@pytest.fixture
def live(fake_kube, cluster) -> KubeCluster:
    actions.deploy(cluster, "fraud", V1, 10, why("deploy"))
    return cluster


def test_first_deploy_creates_at_100_and_records_why(fake_kube, cluster) -> None:
    assert cluster.namespace == "models"
    actions.deploy(cluster, "fraud", V1, 10, why("deploy"))
    obj = fake_kube.get(API, "inferenceservices", "models", "fraud")
    validate(obj)
    assert split(fake_kube) == {"fraud-predictor-00001": 100}
    change = json.loads(obj["metadata"]["annotations"][inf.LAST_CHANGE])
    assert change["by"] == "oncall@example.com" and change["why"] == "test deploy"
    [event] = fake_kube.events("models")
    assert event["reason"] == "Deployed" and event["involvedObject"]["name"] == "fraud"
    assert "v1 serving 100 %" in event["message"]


def test_canary_walk_then_promote(fake_kube, live) -> None:
    actions.deploy(live, "fraud", V2, 0, why("canary"))
    assert split(fake_kube) == {"fraud-predictor-00001": 100}  # deployed, no traffic yet
    for percent in (5, 25, 50):
        actions.deploy(live, "fraud", V2, percent, why("step"))
        assert split(fake_kube) == {
            "fraud-predictor-00002": percent,
            "fraud-predictor-00001": 100 - percent,
        }
    assert len(fake_kube.revisions("models", "fraud")) == 2  # steps make no new revision
    s = actions.status(live, "fraud")
    assert (s["champion"], s["candidate"], s["canaryTrafficPercent"]) == ("1", "2", 50)
    assert {t["modelVersion"] for t in s["traffic"] if t["percent"]} == {"1", "2"}
    actions.promote(live, "fraud", why("promote"))
    obj = fake_kube.get(API, "inferenceservices", "models", "fraud")
    validate(obj)
    pred = obj["status"]["components"]["predictor"]
    assert split(fake_kube) == {"fraud-predictor-00002": 100}
    assert pred["previousRolledoutRevision"] == "fraud-predictor-00001"
    assert inf.champion_of(obj) is None
    reasons = [e["reason"] for e in fake_kube.events("models")]
    assert reasons == ["Deployed", "CanaryStarted", "CanaryStep", "CanaryStep", "CanaryStep",
                       "Promoted"]  # fmt: skip


def test_rollback_puts_all_traffic_on_champion_and_restores_spec(fake_kube, live) -> None:
    before = fake_kube.get(API, "inferenceservices", "models", "fraud")["spec"]["predictor"]
    actions.deploy(live, "fraud", V2, 25, why("canary"))
    actions.rollback(live, "fraud", why("rollback"))
    obj = fake_kube.get(API, "inferenceservices", "models", "fraud")
    validate(obj)
    assert split(fake_kube) == {"fraud-predictor-00001": 100}
    restored = dict(obj["spec"]["predictor"])
    assert restored.pop("canaryTrafficPercent") == 0
    assert restored == before
    assert obj["metadata"]["annotations"][inf.MODEL_VERSION] == "1"
    last = fake_kube.events("models")[-1]
    assert last["reason"] == "RolledBack" and last["type"] == "Warning"
    # the next canary starts cleanly from the restored champion
    actions.deploy(live, "fraud", V3, 10, why("canary"))
    assert split(fake_kube)["fraud-predictor-00001"] == 90


def test_second_canary_while_one_runs_is_refused_without_change(fake_kube, live) -> None:
    actions.deploy(live, "fraud", V2, 10, why("canary"))
    before = fake_kube.get(API, "inferenceservices", "models", "fraud")
    with pytest.raises(BadInputError, match=r"canary of v2 is already in progress at 10 %"):
        actions.deploy(live, "fraud", V3, 10, why("canary"))
    assert fake_kube.get(API, "inferenceservices", "models", "fraud") == before


def test_redeploying_the_serving_version_is_refused(live) -> None:
    with pytest.raises(BadInputError, match="already serves v1 at 100 %"):
        actions.deploy(live, "fraud", V1, 10, why("canary"))


def test_failed_revision_keeps_traffic_on_champion(fake_kube, live) -> None:
    fake_kube.fail_next_revision("models", "fraud", "RevisionFailed", "OOMKilled")
    actions.deploy(live, "fraud", V2, 10, why("canary"))
    assert split(fake_kube) == {"fraud-predictor-00001": 100}
    s = actions.status(live, "fraud")
    assert s["ready"] is False
    assert any(c.get("message") == "OOMKilled" for c in s["conditions"])


def test_conflicts_are_retried_on_a_fresh_read(fake_kube, live) -> None:
    fake_kube.conflict_next(2)
    actions.deploy(live, "fraud", V2, 10, why("canary"))
    assert split(fake_kube)["fraud-predictor-00002"] == 10
    patches = [p for m, p in fake_kube.requests if m == "PATCH"]
    assert len(patches) == 3  # two 409s, then success


def test_endless_conflicts_give_up_with_nothing_changed(fake_kube, live) -> None:
    fake_kube.conflict_next(50)
    with pytest.raises(ClusterError, match="still conflicting after 5 fresh reads"):
        actions.deploy(live, "fraud", V2, 10, why("canary"))
    assert split(fake_kube) == {"fraud-predictor-00001": 100}


def test_forbidden_is_a_clear_error_and_no_change(fake_kube, live) -> None:
    fake_kube.deny("patch", "inferenceservices")
    with pytest.raises(ClusterError, match=r"forbidden .*conveyor-rollout Role.*Nothing was"):
        actions.deploy(live, "fraud", V2, 10, why("canary"))
    assert split(fake_kube) == {"fraud-predictor-00001": 100}


def test_missing_inference_service_names_the_namespace(cluster) -> None:
    with pytest.raises(NotFoundError, match=r"InferenceService 'nope' not found in namespace"):
        actions.promote(cluster, "nope", why("promote"))


def test_unreachable_api_is_a_clear_error(tmp_path, monkeypatch, fake_kube) -> None:
    path = tmp_path / "dead.json"
    doc = json.loads(fake_kube.kubeconfig_path.read_text())
    doc["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # nothing listens
    path.write_text(json.dumps(doc))
    cluster = KubeCluster(kubeconfig=str(path))
    with pytest.raises(ClusterError, match=r"unreachable .*Nothing was changed"):
        actions.status(cluster, "fraud")


def test_shadow_on_and_off(fake_kube, live) -> None:
    actions.deploy_shadow(live, "fraud", V2, 20, why("shadow"))
    shadow = fake_kube.get(API, "inferenceservices", "models", "fraud-shadow")
    vs = fake_kube.get("networking.istio.io/v1beta1", "virtualservices", "models", "fraud-mirror")
    validate(shadow)
    validate(vs)
    assert shadow["metadata"]["labels"][inf.SHADOW_ROLE] == "shadow"
    assert vs["spec"]["http"][0]["mirrorPercentage"] == {"value": 20.0}
    assert split(fake_kube) == {"fraud-predictor-00001": 100}  # champion untouched
    s = actions.status(live, "fraud")
    assert s["shadow"] == {
        "name": "fraud-shadow", "version": "2", "mirrorPercent": 20.0,
        "phase": "Stable", "analysis": None,  # no analysis has judged the shadow yet
    }  # fmt: skip
    actions.deploy_shadow(live, "fraud", V3, 50, why("shadow"))  # re-point: patched, not duplicated
    vs = fake_kube.get("networking.istio.io/v1beta1", "virtualservices", "models", "fraud-mirror")
    assert vs["spec"]["http"][0]["mirrorPercentage"] == {"value": 50.0}
    actions.shadow_off(live, "fraud", why("off"))
    assert fake_kube.get(API, "inferenceservices", "models", "fraud-shadow") is None
    assert actions.status(live, "fraud")["shadow"] is None
    with pytest.raises(BadInputError, match="no shadow is running"):
        actions.shadow_off(live, "fraud", why("off"))


def test_shadow_needs_a_champion(cluster) -> None:
    with pytest.raises(NotFoundError, match="InferenceService 'fraud' not found"):
        actions.deploy_shadow(cluster, "fraud", V2, 20, why("shadow"))


def test_events_and_status_read_back(live) -> None:
    s = actions.status(live, "fraud")
    assert s["ready"] is True and s["phase"] == "Stable"
    assert s["events"][-1]["reason"] == "Deployed"
    assert s["lastChange"]["action"] == "deploy"
    assert live.find(ISVC, "fraud") is not None


def _registry_with_canary(registry_uri: str):
    from conveyor.registry import ModelRegistry

    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    return registry


def test_promote_release_puts_the_aliases_back_when_traffic_cannot_move(
    fake_kube, live, registry_uri
) -> None:
    """Registry first, traffic second: a 403 on the traffic change undoes the alias move, so
    MLflow never names a champion the cluster does not serve."""
    registry = _registry_with_canary(registry_uri)
    actions.deploy(live, "fraud", V2, 50, why("canary"))
    fake_kube.deny("patch", "inferenceservices")
    with pytest.raises(ClusterError, match=r"(?i)forbidden"):
        actions.promote_release(live, "fraud", why("promote"), registry, "fraud")
    assert split(fake_kube) == {"fraud-predictor-00001": 50, "fraud-predictor-00002": 50}
    assert registry.alias_snapshot("fraud") == {"champion": "1"}
    v2_events = [k for k in registry.get("fraud", "2")["tags"] if k.startswith("conveyor.event")]
    trail = " ".join(registry.get("fraud", "2")["tags"][k] for k in v2_events)
    assert "promotion undone" in trail and "traffic change failed" in trail


def test_promote_release_refuses_an_unapproved_version_before_traffic_moves(
    fake_kube, live, registry_uri
) -> None:
    registry = _registry_with_canary(registry_uri)
    registry.client.set_model_version_tag("fraud", "2", "conveyor.status", "held")
    actions.deploy(live, "fraud", V2, 50, why("canary"))
    with pytest.raises(BadInputError, match="v2 is held"):
        actions.promote_release(live, "fraud", why("promote"), registry, "fraud")
    assert split(fake_kube) == {"fraud-predictor-00001": 50, "fraud-predictor-00002": 50}
    assert registry.alias_snapshot("fraud") == {"champion": "1"}


def test_promote_release_moves_both(fake_kube, live, registry_uri) -> None:
    registry = _registry_with_canary(registry_uri)
    actions.deploy(live, "fraud", V2, 50, why("canary"))
    actions.promote_release(live, "fraud", why("promote"), registry, "fraud")
    assert split(fake_kube) == {"fraud-predictor-00002": 100}
    assert registry.alias_snapshot("fraud") == {"champion": "2", "previous-champion": "1"}

"""A rollback is two writes in two systems (traffic, then MLflow): it records its intent on the
InferenceService first, so a call that dies or meets a failing MLflow in between is finished by
the next one. Real kubernetes client, the stateful fake API server, a real MLflow registry on
sqlite; a "crash" is an exception no caller catches, raised between two steps."""

import json
import re

import pytest

from conveyor.cli.kubectl import main as kubectl
from conveyor.errors import TrackingError
from conveyor.registry import ModelRegistry
from conveyor.rollout import actions
from conveyor.rollout.cluster import ISVC, VSVC, KubeCluster
from conveyor.serving.isvc import Change, ServedModel
from tests.fakes.kube_api import traffic_split
from tests.k8s_schema import validate

pytestmark = pytest.mark.integration

INTENT = "conveyor.io/rollback-intent"  # the annotation's name is part of the contract
API = "serving.kserve.io/v1beta1"
VS_API = "networking.istio.io/v1beta1"
V1 = ServedModel("fraud", "1", "s3://models/1/artifacts/serving", "a" * 64)
V2 = ServedModel("fraud", "2", "s3://models/2/artifacts/serving", "b" * 64)
OLD, NEW = "fraud-predictor-00001", "fraud-predictor-00002"
# ObjectMeta rules the API server applies to annotations (apimachinery ValidateAnnotations):
# the CRD schema only says `metadata: {type: object}`.
QUALIFIED = re.compile(
    r"^(?:(?P<prefix>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)$"
)
ANNOTATIONS_MAX = 256 * 1024


class Crash(BaseException):
    """The process dies here: nothing in Conveyor catches a BaseException."""


def why(action: str) -> Change:
    return Change(action, f"test {action}", "oncall@example.com")


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


def isvc(api) -> dict:
    return api.get(API, "inferenceservices", "models", "fraud")


def intents(api) -> list[dict]:
    raw = (isvc(api)["metadata"].get("annotations") or {}).get(INTENT)
    return json.loads(raw) if raw else []


def reasons(api) -> list[str]:
    return [e["reason"] for e in api.events("models")]


def event_tags(registry: ModelRegistry, version: str) -> int:
    return sum(k.startswith("conveyor.event.") for k in registry.get("fraud", version)["tags"])


def check_object(obj: dict) -> None:
    """The InferenceService as the API server holds it: valid against KServe's CRD schema, and
    its annotations valid ObjectMeta (qualified keys, string values, at most 256 KiB)."""
    validate(obj)
    annotations = obj["metadata"]["annotations"]
    for key, value in annotations.items():
        m = QUALIFIED.match(key)
        assert m and len(m["name"]) <= 63 and len(m["prefix"] or "") <= 253, key
        assert isinstance(value, str), key
    assert sum(len(k) + len(v) for k, v in annotations.items()) <= ANNOTATIONS_MAX


def opens(registry) -> object:
    """A registry handed over the way the plugin and the stage do: a function that opens it."""
    return lambda: registry


def crash() -> None:
    raise Crash


class FlakyReject:
    """The real registry, whose first ``failures`` rejections fail as MLflow answering 503."""

    def __init__(self, inner: ModelRegistry, failures: int = 1) -> None:
        self.inner, self.failures = inner, failures

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def reject_candidate(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise TrackingError("MLflow registry: delete alias 'candidate' failed: HTTP 503")
        return self.inner.reject_candidate(*args, **kwargs)


class DiesAfterReject(FlakyReject):
    """MLflow takes the rejection, then the process dies before the intent is cleared."""

    def reject_candidate(self, *args, **kwargs):
        self.inner.reject_candidate(*args, **kwargs)
        raise Crash


class CrashOn:
    """The real cluster, except that the process dies at the first ``verb`` (patch or delete)
    before it is sent; the body it was about to send is kept in ``attempted``."""

    def __init__(self, inner: KubeCluster, verb: str) -> None:
        self.inner, self.verb = inner, verb
        self.attempted: list[dict] = []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def patch(self, kind, name, patch):
        if self.verb == "patch":
            self.attempted.append(patch)
            raise Crash
        return self.inner.patch(kind, name, patch)

    def delete(self, kind, name):
        if self.verb == "delete":
            self.attempted.append({"delete": f"{kind.kind} {name}"})
            raise Crash
        return self.inner.delete(kind, name)


@pytest.fixture
def registry(registry_uri) -> ModelRegistry:
    """v1 champion, v2 approved with alias candidate."""
    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    v2 = registry.get("fraud", "2")
    assert v2["status"] == "approved" and "candidate" in v2["aliases"]
    return registry


@pytest.fixture
def canary(fake_kube, registry) -> KubeCluster:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, why("deploy"))
    actions.deploy(cluster, "fraud", V2, 50, why("canary"))
    assert split(fake_kube) == {OLD: 50, NEW: 50}
    return cluster


@pytest.fixture
def shadowing(fake_kube, registry) -> KubeCluster:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, why("deploy"))
    actions.deploy_shadow(cluster, "fraud", V2, 20, why("shadow"))
    return cluster


def assert_rejected_once(registry: ModelRegistry) -> None:
    v1, v2 = registry.get("fraud", "1"), registry.get("fraud", "2")
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]
    assert v2["tags"]["conveyor.deployable"] == "False"
    assert "champion" in v1["aliases"], "the champion's alias never moves on a rollback"
    assert event_tags(registry, "2") == 1, "rejected exactly once"


def assert_untouched(registry: ModelRegistry) -> None:
    v2 = registry.get("fraud", "2")
    assert v2["status"] == "approved" and "candidate" in v2["aliases"]
    assert event_tags(registry, "2") == 0


def test_a_crash_between_traffic_and_registry_is_finished_by_the_next_rollback(
    fake_kube, canary, registry
) -> None:
    with pytest.raises(Crash):  # traffic moved, then the process died opening MLflow
        actions.rollback_release(canary, "fraud", why("rollback"), crash, "fraud")
    assert split(fake_kube) == {OLD: 100}
    [intent] = intents(fake_kube)
    assert {k: intent[k] for k in ("version", "model_name", "kind", "reason", "actor")} == {
        "version": "2", "model_name": "fraud", "kind": "canary", "reason": "test rollback",
        "actor": "oncall@example.com",
    }  # fmt: skip
    assert intent["at"]
    check_object(isvc(fake_kube))
    assert_untouched(registry)

    done = actions.rollback_release(KubeCluster(), "fraud", why("again"), opens(registry), "fraud")
    assert (done.version, done.undone, done.registry_error) == ("2", "canary", "")
    assert_rejected_once(registry)
    assert INTENT not in isvc(fake_kube)["metadata"]["annotations"]
    assert split(fake_kube) == {OLD: 100}
    assert reasons(fake_kube)[-1] == "RollbackFinished"
    check_object(isvc(fake_kube))


def test_a_failed_registry_write_keeps_the_intent_status_shows_it_promote_finishes_it(
    fake_kube, canary, registry, capsys
) -> None:
    flaky = FlakyReject(registry)
    done = actions.rollback_release(canary, "fraud", why("rollback"), opens(flaky), "fraud")
    assert split(fake_kube) == {OLD: 100}  # traffic first, whatever MLflow says
    assert "MLflow not updated" in done.registry_error and "HTTP 503" in done.registry_error
    assert "`conveyor models reject fraud 2 --reason ...`" in done.registry_error
    assert INTENT in done.registry_error and isinstance(done.error, TrackingError)
    assert [(i["version"], i["kind"]) for i in intents(fake_kube)] == [("2", "canary")]
    assert_untouched(registry)
    check_object(isvc(fake_kube))
    last = fake_kube.events("models")[-1]
    assert (last["reason"], last["type"]) == ("RollbackPending", "Warning")

    writes = len([m for m, _ in fake_kube.requests if m in ("PATCH", "POST", "PUT", "DELETE")])
    assert kubectl(["status", "fraud", "-o", "json"]) == 0  # status shows it, reads only
    [pending] = json.loads(capsys.readouterr().out)["pendingRollbacks"]
    assert (pending["version"], pending["kind"], pending["waitingFor"]) == ("2", "canary", "MLflow")
    assert "conveyor models reject fraud 2" in pending["finish"]
    assert kubectl(["status", "fraud"]) == 0  # the text view: a line of its own, and Events
    text = capsys.readouterr().out
    assert "Pending rollback: v2 (canary) waiting for MLflow: " in text
    assert "RollbackPending" in text
    after = len([m for m, _ in fake_kube.requests if m in ("PATCH", "POST", "PUT", "DELETE")])
    assert after == writes and intents(fake_kube)

    # the next rollout action with MLflow at hand finishes it first (the promote stage's call)
    actions.promote_release(
        KubeCluster(), "fraud", why("promote"), flaky, "fraud", first_release_ok=True
    )
    assert_rejected_once(registry)
    assert INTENT not in isvc(fake_kube)["metadata"]["annotations"]
    assert "RollbackFinished" in reasons(fake_kube)


def test_finishing_is_idempotent_when_mlflow_already_has_the_rejection(
    fake_kube, canary, registry
) -> None:
    """MLflow took the rejection, the process died before clearing the intent: the next call
    clears it without rejecting again (no second event on the version)."""
    with pytest.raises(Crash):
        actions.rollback_release(
            canary, "fraud", why("rollback"), opens(DiesAfterReject(registry)), "fraud"
        )
    assert_rejected_once(registry)
    assert [i["version"] for i in intents(fake_kube)] == ["2"]
    done = actions.rollback_release(canary, "fraud", why("again"), opens(registry), "fraud")
    assert (done.version, done.registry_error) == ("2", "")
    assert_rejected_once(registry)
    assert intents(fake_kube) == []


def test_a_crash_before_the_canary_traffic_write_changes_nothing(
    fake_kube, canary, registry
) -> None:
    """The intent travels in the traffic write itself (one PATCH, atomic on the API server):
    dying before it leaves neither, so there is nothing to finish and the next rollback is an
    ordinary one."""
    before = isvc(fake_kube)
    dying = CrashOn(canary, "patch")
    with pytest.raises(Crash):
        actions.rollback_release(dying, "fraud", why("rollback"), opens(registry), "fraud")
    [patch] = dying.attempted
    assert patch["spec"]["predictor"]["canaryTrafficPercent"] == 0
    [intent] = json.loads(patch["metadata"]["annotations"][INTENT])
    assert (intent["version"], intent["kind"]) == ("2", "canary")
    assert isvc(fake_kube) == before and split(fake_kube) == {OLD: 50, NEW: 50}
    assert_untouched(registry)

    done = actions.rollback_release(canary, "fraud", why("rollback"), opens(registry), "fraud")
    assert (done.version, done.undone, done.registry_error) == ("2", "canary", "")
    assert split(fake_kube) == {OLD: 100}
    assert_rejected_once(registry)
    assert intents(fake_kube) == []


def test_a_crash_before_the_shadow_is_removed_is_finished_by_doing_the_rollback(
    fake_kube, shadowing, registry
) -> None:
    """A shadow's intent is written just before the mirror and the shadow go (they are other
    objects): the traffic never moved, and the next call completes the rollback that was
    decided, mirror and shadow first, then MLflow."""
    dying = CrashOn(shadowing, "delete")
    with pytest.raises(Crash):
        actions.rollback_release(dying, "fraud", why("rollback"), opens(registry), "fraud")
    shadow = fake_kube.get(API, "inferenceservices", "models", "fraud-shadow")
    assert shadow is not None
    assert fake_kube.get(VS_API, "virtualservices", "models", "fraud-mirror") is not None
    assert split(fake_kube) == {OLD: 100}
    [intent] = intents(fake_kube)
    assert (intent["version"], intent["kind"]) == ("2", "shadow")
    assert intent["uid"] == shadow["metadata"]["uid"]
    check_object(isvc(fake_kube))
    assert_untouched(registry)
    [pending] = actions.status(shadowing, "fraud")["pendingRollbacks"]
    assert pending["waitingFor"] == "the shadow's removal, then MLflow"

    done = actions.rollback_release(shadowing, "fraud", why("again"), opens(registry), "fraud")
    assert (done.version, done.undone, done.registry_error) == ("2", "shadow", "")
    assert fake_kube.get(API, "inferenceservices", "models", "fraud-shadow") is None
    assert fake_kube.get(VS_API, "virtualservices", "models", "fraud-mirror") is None
    assert_rejected_once(registry)
    assert intents(fake_kube) == []
    assert reasons(fake_kube)[-2:] == ["ShadowStopped", "RollbackFinished"]


def test_an_action_without_mlflow_finishes_the_traffic_part_and_keeps_the_rest(
    fake_kube, shadowing, registry
) -> None:
    with pytest.raises(Crash):
        actions.rollback_release(
            CrashOn(shadowing, "delete"), "fraud", why("rollback"), opens(registry), "fraud"
        )
    actions.shadow_off(shadowing, "fraud", why("off"))  # kubectl conveyor shadow --off
    assert fake_kube.get(API, "inferenceservices", "models", "fraud-shadow") is None
    [pending] = actions.status(shadowing, "fraud")["pendingRollbacks"]
    assert (pending["version"], pending["waitingFor"]) == ("2", "MLflow")
    assert_untouched(registry)
    actions.promote_release(
        shadowing, "fraud", why("promote"), registry, "fraud", first_release_ok=True
    )
    assert_rejected_once(registry)
    assert actions.status(shadowing, "fraud")["pendingRollbacks"] == []


def test_a_shadow_deployed_again_is_not_removed_by_an_old_intent(
    fake_kube, shadowing, registry
) -> None:
    """The intent names the very shadow object (its uid): one someone deployed after the
    crash is theirs, only the registry part of the old rollback remains."""
    with pytest.raises(Crash):
        actions.rollback_release(
            CrashOn(shadowing, "delete"), "fraud", why("rollback"), opens(registry), "fraud"
        )
    shadowing.delete(VSVC, "fraud-mirror")  # removed by hand, then deployed again
    shadowing.delete(ISVC, "fraud-shadow")
    actions.deploy_shadow(shadowing, "fraud", V2, 10, why("shadow again"))
    again = fake_kube.get(API, "inferenceservices", "models", "fraud-shadow")
    assert actions.finish_rollbacks(shadowing, "fraud")[0].version == "2"
    assert fake_kube.get(API, "inferenceservices", "models", "fraud-shadow") == again
    [pending] = actions.status(shadowing, "fraud")["pendingRollbacks"]
    assert pending["waitingFor"] == "MLflow"


def test_the_analysis_finishes_a_pending_rollback_before_it_reads_the_rollout(
    fake_kube, canary, registry
) -> None:
    """Its loop is often the next caller after a crash: with traffic back on the champion
    there is no rollout left to judge, but the registry write is finished first."""
    from conveyor.errors import BadInputError
    from conveyor.rollout.analysis import Analysis
    from conveyor.rollout.plan import RolloutPlan

    with pytest.raises(Crash):
        actions.rollback_release(canary, "fraud", why("rollback"), crash, "fraud")
    assert intents(fake_kube) and split(fake_kube) == {OLD: 100}

    class NoMetrics:
        def query(self, promql: str) -> float | None:
            raise AssertionError("nothing to measure: the rollout is over")

    analysis = Analysis(KubeCluster(), "fraud", RolloutPlan(), NoMetrics(), registry=registry)
    with pytest.raises(BadInputError):  # no canary and no shadow left to analyse
        analysis.step()
    assert_rejected_once(registry)
    assert INTENT not in isvc(fake_kube)["metadata"]["annotations"]

"""FakeKubeAPI behaves like the API server + KServe as seen through the real kubernetes client.

Rollout tests trust this fake, so its semantics (status codes, conflicts, merge patches, KServe's
canary bookkeeping) are pinned here with the same client the rollout code uses.
"""

import copy
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.fakes.kube_api import TAG_ROUTING_ANNOTATION, FakeKubeAPI
from tests.k8s_schema import validate

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"
NS = "default"
ISVC: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": "InferenceService",
    "metadata": {"name": "fraud", "namespace": NS, "labels": {"app.kubernetes.io/name": "fraud"}},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "runtime": "kserve-sklearnserver",
                "storageUri": "s3://models/fraud/1/serving",
            }
        }
    },
}
REV1, REV2, REV3 = (f"fraud-predictor-0000{i}" for i in (1, 2, 3))


def isvc(name: str = "fraud", **annotations: str) -> dict[str, Any]:
    obj = copy.deepcopy(ISVC)
    obj["metadata"]["name"] = name
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": name}
    if annotations:
        obj["metadata"]["annotations"] = annotations
    return obj


def api_client_for(kubeconfig: Path, context: str | None = None) -> client.ApiClient:
    """Load the kubeconfig the way the CLI does, into a private Configuration (no globals)."""
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig), context=context, client_configuration=configuration
    )
    return client.ApiClient(configuration)


@pytest.fixture
def fake() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI(namespaces=(NS, "staging")) as api:
        yield api


@pytest.fixture
def api_client(fake: FakeKubeAPI, tmp_path: Path) -> Iterator[client.ApiClient]:
    with api_client_for(fake.write_kubeconfig(tmp_path / "kubeconfig")) as api:
        yield api


@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


def create(custom: client.CustomObjectsApi, obj: dict[str, Any]) -> dict[str, Any]:
    return custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, obj)


def patch(custom: client.CustomObjectsApi, body: dict[str, Any], name: str = "fraud") -> Any:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, body)


def read(custom: client.CustomObjectsApi, name: str = "fraud") -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)


def new_model(uri: str, canary: int | None = None) -> dict[str, Any]:
    """A merge patch that points the predictor at another model, optionally as a canary."""
    predictor: dict[str, Any] = {"model": {"storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {"spec": {"predictor": predictor}}


def split(obj: dict[str, Any]) -> dict[str, int]:
    """Traffic percent per revision (entries for the same revision add up, as Knative routes)."""
    out: Counter[str] = Counter()
    for entry in obj["status"]["components"]["predictor"].get("traffic", []):
        out[entry["revisionName"]] += entry["percent"]
    return {revision: percent for revision, percent in out.items() if percent}


def message(exc: pytest.ExceptionInfo[ApiException]) -> str:
    """The ``message`` of the Status body the server answered with."""
    return json.loads(exc.value.body)["message"]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def stored(fake: FakeKubeAPI, name: str = "fraud") -> dict[str, Any]:
    """The stored object, checked against the vendored KServe CRD schema on every read."""
    obj = fake.get(API_VERSION, PLURAL, NS, name)
    assert obj is not None
    validate(obj)
    return obj


@pytest.mark.unit
def test_version_and_discovery(api_client: client.ApiClient, custom: Any) -> None:
    assert client.VersionApi(api_client).get_code().git_version == "v1.30.0"
    assert client.CoreApi(api_client).get_api_versions().versions == ["v1"]
    create(custom, isvc())
    groups = client.ApisApi(api_client).get_api_versions().groups
    assert GROUP in {g.name for g in groups}


@pytest.mark.unit
def test_create_get_and_list_with_label_selector(
    fake: FakeKubeAPI, custom: client.CustomObjectsApi
) -> None:
    created = create(custom, isvc())
    create(custom, isvc("churn"))
    meta = created["metadata"]
    assert meta["generation"] == 1 and meta["uid"] and meta["creationTimestamp"]
    assert read(custom)["metadata"]["resourceVersion"] == meta["resourceVersion"]

    listed = custom.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, label_selector="app.kubernetes.io/name=fraud"
    )
    assert listed["kind"] == "InferenceServiceList"
    assert listed["metadata"]["resourceVersion"]
    assert [i["metadata"]["name"] for i in listed["items"]] == ["fraud"]
    every = custom.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, label_selector="app.kubernetes.io/name"
    )
    assert [i["metadata"]["name"] for i in every["items"]] == ["fraud", "churn"]
    both = custom.list_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, label_selector="app.kubernetes.io/name in (churn,x),!team"
    )
    assert [i["metadata"]["name"] for i in both["items"]] == ["churn"]
    other_ns = custom.list_namespaced_custom_object(GROUP, VERSION, "staging", PLURAL)
    assert other_ns["items"] == []
    validate(stored(fake))


@pytest.mark.unit
def test_create_conflicts_and_validation(custom: client.CustomObjectsApi) -> None:
    create(custom, isvc())
    with pytest.raises(ApiException, match="AlreadyExists") as exc:
        create(custom, isvc())
    assert exc.value.status == 409
    nameless = isvc()
    del nameless["metadata"]["name"]
    with pytest.raises(ApiException, match="name or generateName is required") as exc:
        create(custom, nameless)
    assert exc.value.status == 422
    bad_canary = isvc("churn")
    bad_canary["spec"]["predictor"]["canaryTrafficPercent"] = 101
    with pytest.raises(ApiException, match="canaryTrafficPercent") as exc:
        create(custom, bad_canary)
    assert exc.value.status == 422


@pytest.mark.unit
def test_merge_patch_merges_and_null_deletes(fake: FakeKubeAPI, custom: Any) -> None:
    before = create(custom, isvc())
    patched = patch(custom, {"metadata": {"labels": {"team": "risk"}}})
    assert patched["metadata"]["labels"] == {"app.kubernetes.io/name": "fraud", "team": "risk"}
    assert patched["metadata"]["generation"] == 1  # metadata only: spec unchanged
    assert int(patched["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])

    patched = patch(custom, {"metadata": {"labels": {"app.kubernetes.io/name": None}}})
    assert patched["metadata"]["labels"] == {"team": "risk"}
    patched = patch(custom, {"spec": {"predictor": {"model": {"runtime": None}}}})
    assert "runtime" not in patched["spec"]["predictor"]["model"]
    assert patched["spec"]["predictor"]["model"]["storageUri"] == "s3://models/fraud/1/serving"
    assert patched["metadata"]["generation"] == 2
    assert stored(fake)["status"]["observedGeneration"] == 2


@pytest.mark.unit
def test_writes_ignore_status(fake: FakeKubeAPI, custom: client.CustomObjectsApi) -> None:
    create(custom, isvc())
    patched = patch(custom, {"status": {"url": "http://evil.example.com"}})
    assert patched["status"]["url"] == "http://fraud.default.example.com"
    assert stored(fake)["status"]["url"] == "http://fraud.default.example.com"


@pytest.mark.unit
def test_json_patch_through_the_real_client(api_client: client.ApiClient, custom: Any) -> None:
    create(custom, isvc())

    def json_patch(operations: list[dict[str, Any]]) -> Any:
        return api_client.call_api(
            f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/{PLURAL}/fraud",
            "PATCH",
            header_params={"Content-Type": "application/json-patch+json"},
            body=operations,
            response_type="object",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
        )

    uri = "/spec/predictor/model/storageUri"
    patched = json_patch(
        [
            {"op": "test", "path": uri, "value": "s3://models/fraud/1/serving"},
            {"op": "replace", "path": uri, "value": "s3://models/fraud/2/serving"},
            {"op": "add", "path": "/metadata/labels/team", "value": "risk"},
            {"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"},
        ]
    )
    assert patched["spec"]["predictor"]["model"]["storageUri"] == "s3://models/fraud/2/serving"
    assert patched["metadata"]["labels"] == {"team": "risk"}
    with pytest.raises(ApiException, match="test operation failed") as exc:
        json_patch([{"op": "test", "path": uri, "value": "s3://models/fraud/1/serving"}])
    assert exc.value.status == 422


@pytest.mark.unit
def test_replace_with_stale_resource_version_is_conflict(custom: client.CustomObjectsApi) -> None:
    create(custom, isvc())
    stale = read(custom)
    fresh = copy.deepcopy(stale)
    fresh["metadata"]["labels"]["team"] = "risk"
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fraud", fresh)
    assert replaced["metadata"]["labels"]["team"] == "risk"

    with pytest.raises(ApiException, match="the object has been modified") as exc:
        custom.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fraud", stale)
    assert exc.value.status == 409
    assert exc.value.reason == "Conflict"
    assert message(exc) == (
        'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "fraud": the object '
        "has been modified; please apply your changes to the latest version and try again"
    )


@pytest.mark.unit
def test_conflict_next_fails_one_guarded_patch(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    fake.conflict_next()

    def guarded(body: dict[str, Any]) -> Any:
        version = read(custom)["metadata"]["resourceVersion"]
        return patch(custom, merge({"metadata": {"resourceVersion": version}}, body))

    with pytest.raises(ApiException, match="Operation cannot be fulfilled") as exc:
        guarded(new_model("s3://models/fraud/2/serving", canary=10))
    assert exc.value.status == 409
    assert fake.revisions(NS, "fraud")[-1]["name"] == REV1  # nothing was applied

    patched = guarded(new_model("s3://models/fraud/2/serving", canary=10))  # re-read, retry
    assert split(patched) == {REV2: 10, REV1: 90}


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for key, value in b.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.mark.unit
def test_deny_answers_forbidden_until_allowed(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    fake.deny("patch", PLURAL, NS)
    with pytest.raises(ApiException, match="Forbidden") as exc:
        patch(custom, new_model("s3://models/fraud/2/serving"))
    assert exc.value.status == 403
    assert message(exc) == (
        'inferenceservices.serving.kserve.io "fraud" is forbidden: User '
        '"system:serviceaccount:default:runner" cannot patch resource "inferenceservices" in API '
        'group "serving.kserve.io" in the namespace "default"'
    )
    assert read(custom)["metadata"]["name"] == "fraud"  # other verbs still allowed

    fake.deny("list", PLURAL)  # every namespace
    with pytest.raises(ApiException, match="Forbidden") as exc:
        custom.list_namespaced_custom_object(GROUP, VERSION, "staging", PLURAL)
    assert exc.value.status == 403

    fake.allow_all()
    patch(custom, new_model("s3://models/fraud/2/serving"))
    patches = [path for method, path in fake.requests if method == "PATCH"]
    assert len(patches) == 2  # the denied attempt is logged too


RUNTIME_GROUP, RUNTIME_VERSION = "serving.kserve.io", "v1alpha1"
RUNTIME_MANIFEST = (
    Path(__file__).resolve().parents[1] / "manifests/runtime/clusterservingruntime.yaml"
)


def runtime_manifest() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(RUNTIME_MANIFEST.read_text())


@pytest.mark.unit
def test_cluster_scoped_runtimes_get_list_create(fake: FakeKubeAPI, custom: Any) -> None:
    """ClusterServingRuntimes live outside namespaces (a namespace in the body is cleared);
    ServingRuntimes inside them, like any namespaced custom object."""
    plural = "clusterservingruntimes"
    body = {**runtime_manifest(), "metadata": {**runtime_manifest()["metadata"], "namespace": NS}}
    created = custom.create_cluster_custom_object(RUNTIME_GROUP, RUNTIME_VERSION, plural, body)
    assert "namespace" not in created["metadata"] and created["metadata"]["resourceVersion"]
    got = custom.get_cluster_custom_object(
        RUNTIME_GROUP, RUNTIME_VERSION, plural, "conveyor-sklearn"
    )
    assert got["metadata"]["annotations"] == runtime_manifest()["metadata"]["annotations"]
    validate(got)
    listed = custom.list_cluster_custom_object(RUNTIME_GROUP, RUNTIME_VERSION, plural)
    assert (listed["kind"], [i["metadata"]["name"] for i in listed["items"]]) == (
        "ClusterServingRuntimeList",
        ["conveyor-sklearn"],
    )
    assert fake.get(f"{RUNTIME_GROUP}/{RUNTIME_VERSION}", plural, "", "conveyor-sklearn")
    with pytest.raises(ApiException, match="AlreadyExists"):
        custom.create_cluster_custom_object(RUNTIME_GROUP, RUNTIME_VERSION, plural, body)
    with pytest.raises(ApiException, match="NotFound") as exc:
        custom.get_cluster_custom_object(RUNTIME_GROUP, RUNTIME_VERSION, plural, "nope")
    assert message(exc) == 'clusterservingruntimes.serving.kserve.io "nope" not found'

    namespaced = {**runtime_manifest(), "kind": "ServingRuntime"}
    args = (RUNTIME_GROUP, RUNTIME_VERSION)
    custom.create_namespaced_custom_object(*args, "staging", "servingruntimes", namespaced)
    assert custom.list_namespaced_custom_object(*args, NS, "servingruntimes")["items"] == []
    staging = custom.list_namespaced_custom_object(*args, "staging", "servingruntimes")
    assert [i["metadata"]["namespace"] for i in staging["items"]] == ["staging"]
    seeded = fake.seed({**runtime_manifest(), "metadata": {"name": "kserve-sklearnserver"}})
    assert "namespace" not in seeded["metadata"]


@pytest.mark.unit
def test_only_cluster_rules_reach_cluster_scoped_kinds(fake: FakeKubeAPI, custom: Any) -> None:
    fake.seed(runtime_manifest())
    read_runtimes = [
        {"apiGroups": [RUNTIME_GROUP], "resources": ["clusterservingruntimes"], "verbs": ["get"]}
    ]
    fake.enforce_rules(read_runtimes)  # in a Role: grants nothing cluster-scoped
    with pytest.raises(ApiException, match="Forbidden") as exc:
        custom.get_cluster_custom_object(
            RUNTIME_GROUP, RUNTIME_VERSION, "clusterservingruntimes", "conveyor-sklearn"
        )
    assert message(exc) == (
        'clusterservingruntimes.serving.kserve.io "conveyor-sklearn" is forbidden: User '
        '"system:serviceaccount:default:runner" cannot get resource "clusterservingruntimes" '
        'in API group "serving.kserve.io" at the cluster scope'
    )
    fake.enforce_rules([], cluster_rules=read_runtimes)  # in a ClusterRole: allowed
    got = custom.get_cluster_custom_object(
        RUNTIME_GROUP, RUNTIME_VERSION, "clusterservingruntimes", "conveyor-sklearn"
    )
    assert got["metadata"]["name"] == "conveyor-sklearn"
    with pytest.raises(ApiException, match="Forbidden"):  # get only, not list
        custom.list_cluster_custom_object(RUNTIME_GROUP, RUNTIME_VERSION, "clusterservingruntimes")


@pytest.mark.unit
def test_not_found_for_missing_object_and_namespace(custom: client.CustomObjectsApi) -> None:
    with pytest.raises(ApiException, match="NotFound") as exc:
        read(custom, "nope")
    assert exc.value.status == 404
    assert message(exc) == 'inferenceservices.serving.kserve.io "nope" not found'
    with pytest.raises(ApiException, match="NotFound") as exc:
        custom.list_namespaced_custom_object(GROUP, VERSION, "prod", PLURAL)
    assert exc.value.status == 404
    assert message(exc) == 'namespaces "prod" not found'
    with pytest.raises(ApiException, match="NotFound") as exc:
        patch(custom, {"metadata": {"labels": {"a": "b"}}}, name="nope")
    assert exc.value.status == 404


@pytest.mark.unit
def test_delete_returns_success_and_forgets_revisions(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    status = custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fraud")
    assert status["status"] == "Success"
    assert fake.get(API_VERSION, PLURAL, NS, "fraud") is None
    assert fake.revisions(NS, "fraud") == []
    with pytest.raises(ApiException, match="not found") as exc:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fraud")
    assert exc.value.status == 404
    assert (
        create(custom, isvc())["status"]["components"]["predictor"]["traffic"][0]["revisionName"]
        == REV1
    )  # a re-created isvc starts numbering again


@pytest.mark.unit
def test_events_create_and_list_by_involved_object(
    fake: FakeKubeAPI, core: client.CoreV1Api
) -> None:
    for name, reason in (("fraud", "CanaryStarted"), ("churn", "Promoted"), ("fraud", "Promoted")):
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{name}."),
            involved_object=client.V1ObjectReference(
                api_version=API_VERSION, kind="InferenceService", name=name, namespace=NS
            ),
            reason=reason,
            message=f"{name}: {reason}",
            type="Normal",
        )
        core.create_namespaced_event(NS, event)

    fraud = core.list_namespaced_event(NS, field_selector="involvedObject.name=fraud")
    assert [e.reason for e in fraud.items] == ["CanaryStarted", "Promoted"]
    assert len(core.list_namespaced_event(NS).items) == 3
    assert [e["reason"] for e in fake.events(NS)] == ["CanaryStarted", "Promoted", "Promoted"]
    assert fake.events("staging") == []


@pytest.mark.unit
def test_canary_rollout_then_promote(fake: FakeKubeAPI, custom: client.CustomObjectsApi) -> None:
    created = create(custom, isvc())
    predictor = created["status"]["components"]["predictor"]
    assert split(created) == {REV1: 100}
    assert predictor["latestRolledoutRevision"] == REV1
    assert "previousRolledoutRevision" not in predictor
    assert condition(created, "Ready")["status"] == "True"
    assert created["status"]["url"] == "http://fraud.default.example.com"
    assert created["status"]["address"]["url"] == "http://fraud-predictor.default.svc.cluster.local"
    stored(fake)

    canary = patch(custom, new_model("s3://models/fraud/2/serving", canary=10))
    predictor = canary["status"]["components"]["predictor"]
    assert split(canary) == {REV2: 10, REV1: 90}
    assert predictor["latestRolledoutRevision"] == REV1  # unchanged during the canary
    assert predictor["latestReadyRevision"] == predictor["latestCreatedRevision"] == REV2
    latest, prev = predictor["traffic"]
    assert latest["latestRevision"] is True and prev["latestRevision"] is False
    assert prev["tag"] == "prev"
    assert canary["status"]["observedGeneration"] == canary["metadata"]["generation"] == 2
    stored(fake)

    widened = patch(custom, {"spec": {"predictor": {"canaryTrafficPercent": 50}}})
    assert split(widened) == {REV2: 50, REV1: 50}
    assert len(fake.revisions(NS, "fraud")) == 2  # a percentage change is not a new revision
    stored(fake)

    promoted = patch(custom, {"spec": {"predictor": {"canaryTrafficPercent": None}}})
    predictor = promoted["status"]["components"]["predictor"]
    assert split(promoted) == {REV2: 100}
    assert predictor["latestRolledoutRevision"] == REV2
    assert predictor["previousRolledoutRevision"] == REV1
    assert condition(promoted, "Ready")["status"] == "True"
    stored(fake)

    revisions = fake.revisions(NS, "fraud")
    assert [r["name"] for r in revisions] == [REV1, REV2]
    assert all(r["ready"] for r in revisions)
    assert revisions[1]["predictor"]["model"]["storageUri"] == "s3://models/fraud/2/serving"
    assert "canaryTrafficPercent" not in revisions[1]["predictor"]


@pytest.mark.unit
def test_spec_change_without_canary_rolls_out_at_once(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    updated = patch(custom, new_model("s3://models/fraud/2/serving"))
    predictor = updated["status"]["components"]["predictor"]
    assert split(updated) == {REV2: 100}
    assert (predictor["latestRolledoutRevision"], predictor["previousRolledoutRevision"]) == (
        REV2,
        REV1,
    )
    stored(fake)


@pytest.mark.unit
def test_canary_zero_rolls_back_to_the_rolled_out_revision(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    patch(custom, new_model("s3://models/fraud/2/serving", canary=10))
    rolled_back = patch(custom, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    assert split(rolled_back) == {REV1: 100}
    assert rolled_back["status"]["components"]["predictor"]["latestRolledoutRevision"] == REV1
    assert len(fake.revisions(NS, "fraud")) == 2
    stored(fake)


@pytest.mark.unit
def test_canary_zero_after_promotion_returns_to_previous(fake: FakeKubeAPI, custom: Any) -> None:
    """KServe's own rollback path: pinning a fully rolled-out revision to 0 % restores the one
    before it (previousRolledoutRevision)."""
    create(custom, isvc())
    patch(custom, new_model("s3://models/fraud/2/serving"))
    rolled_back = patch(custom, {"spec": {"predictor": {"canaryTrafficPercent": 0}}})
    assert split(rolled_back) == {REV1: 100}
    assert rolled_back["status"]["components"]["predictor"]["latestRolledoutRevision"] == REV1
    stored(fake)


@pytest.mark.unit
def test_failing_revision_keeps_traffic_on_the_champion(fake: FakeKubeAPI, custom: Any) -> None:
    create(custom, isvc())
    fake.fail_next_revision(NS, "fraud", reason="RevisionFailed", message="model not found")
    failed = patch(custom, new_model("s3://models/fraud/2/serving", canary=10))
    predictor = failed["status"]["components"]["predictor"]
    assert split(failed) == {REV1: 100}
    assert predictor["latestCreatedRevision"] == REV2
    assert predictor["latestReadyRevision"] == predictor["latestRolledoutRevision"] == REV1
    for kind in ("PredictorReady", "Ready"):
        cond = condition(failed, kind)
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "False",
            "RevisionFailed",
            "model not found",
        )
    assert failed["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert failed["status"]["url"] == "http://fraud.default.example.com"  # still serving
    assert [r["ready"] for r in fake.revisions(NS, "fraud")] == [True, False]
    stored(fake)

    fixed = patch(custom, new_model("s3://models/fraud/3/serving"))  # only one failure was armed
    assert split(fixed) == {REV3: 10, REV1: 90}  # the canary percentage is still in the spec
    assert condition(fixed, "Ready")["status"] == "True"
    stored(fake)


@pytest.mark.unit
def test_failing_first_revision_is_never_ready(fake: FakeKubeAPI, custom: Any) -> None:
    fake.fail_next_revision(NS, "fraud")
    created = create(custom, isvc())
    assert split(created) == {}
    assert condition(created, "Ready")["reason"] == "RevisionFailed"
    assert condition(created, "IngressReady")["status"] == "False"
    assert "url" not in created["status"]
    stored(fake)


@pytest.mark.unit
def test_tag_routing_urls(fake: FakeKubeAPI, custom: client.CustomObjectsApi) -> None:
    create(custom, isvc(**{TAG_ROUTING_ANNOTATION: "true"}))
    canary = patch(custom, new_model("s3://models/fraud/2/serving", canary=20))
    latest, prev = canary["status"]["components"]["predictor"]["traffic"]
    assert (latest["revisionName"], latest["tag"], latest["percent"]) == (REV2, "latest", 20)
    assert latest["url"] == "http://latest-fraud-predictor.default.example.com"
    assert (prev["revisionName"], prev["tag"], prev["percent"]) == (REV1, "prev", 80)
    assert prev["url"] == "http://prev-fraud-predictor.default.example.com"
    stored(fake)

    create(custom, isvc("churn"))  # no annotation: the latest target carries no tag
    untagged = patch(custom, new_model("s3://models/churn/2/serving", canary=20), name="churn")
    latest = untagged["status"]["components"]["predictor"]["traffic"][0]
    assert "tag" not in latest and "url" not in latest
    stored(fake, "churn")


@pytest.mark.unit
def test_url_for_overrides_reported_urls(tmp_path: Path) -> None:
    with FakeKubeAPI(url_for=lambda ns, name: f"http://127.0.0.1:9/{ns}/{name}") as fake:
        obj = fake.seed(isvc())
        assert (
            obj["status"]["url"]
            == obj["status"]["address"]["url"]
            == ("http://127.0.0.1:9/default/fraud")
        )
        assert obj["metadata"]["resourceVersion"] and obj["metadata"]["uid"]
        with api_client_for(fake.write_kubeconfig(tmp_path / "kubeconfig")) as api:
            read_back = client.CustomObjectsApi(api).get_namespaced_custom_object(
                GROUP, VERSION, NS, PLURAL, "fraud"
            )
        assert read_back["status"] == obj["status"]
        validate(obj)


@pytest.mark.unit
def test_kubeconfig_with_two_contexts(fake: FakeKubeAPI, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    fake.write_kubeconfig(path)
    fake.write_kubeconfig(path, context="staging", namespace="staging", token="staging-token")
    contexts, active = config.list_kube_config_contexts(config_file=str(path))
    assert sorted(c["name"] for c in contexts) == ["fake", "staging"]
    assert active["name"] == "fake"
    assert next(c for c in contexts if c["name"] == "staging")["context"]["namespace"] == "staging"

    fake.deny("list", PLURAL)
    for context, user in ((None, "default"), ("staging", "staging")):
        with api_client_for(path, context) as api:
            with pytest.raises(ApiException, match=f"serviceaccount:{user}:runner") as exc:
                client.CustomObjectsApi(api).list_namespaced_custom_object(
                    GROUP, VERSION, NS, PLURAL
                )
            assert exc.value.status == 403

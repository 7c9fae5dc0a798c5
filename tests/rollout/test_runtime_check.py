"""Deploy refuses, before any write, a version whose scikit-learn differs from the serving
runtime's: through the real plugin and the rollout stage, the real kubernetes client, the fake
API server (which serves ServingRuntimes and ClusterServingRuntimes) and a real MLflow registry
on sqlite. The runtime is created from manifests/runtime itself (the conveyor_runtime fixture)."""

import re
from pathlib import Path

import pytest
import sklearn
import yaml

from conveyor.cli.kubectl import main
from conveyor.errors import ClusterError, IncompatibleRuntimeError
from conveyor.registry import ModelRegistry
from conveyor.rollout import actions, rbac
from conveyor.rollout.cluster import KubeCluster
from conveyor.serving import isvc as inf
from conveyor.stages import deploy_canary
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration

API = "serving.kserve.io/v1beta1"
RUNTIMES = "serving.kserve.io/v1alpha1"
ROOT = Path(__file__).resolve().parents[2]
STOCK = ROOT / "tests" / "schemas" / "kserve-sklearnserver.yaml"
OURS = ROOT / "manifests" / "runtime" / "clusterservingruntime.yaml"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def writes(api) -> int:
    return sum(1 for method, _ in api.requests if method in WRITES)


def isvc(api, name: str = "fraud") -> dict | None:
    return api.get(API, "inferenceservices", "models", name)


def seed_stock_runtime(api, sklearn_version: str | None = None) -> None:
    """KServe's stock kserve-sklearnserver (the vendored copy), optionally annotated."""
    runtime = yaml.safe_load(STOCK.read_text())
    if sklearn_version is not None:
        runtime["metadata"]["annotations"][inf.SKLEARN_VERSION] = sklearn_version
    api.seed(runtime)


@pytest.fixture
def registry(fake_kube, registry_uri, monkeypatch) -> ModelRegistry:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_uri)
    monkeypatch.setenv("CONVEYOR_ACTOR", "oncall")
    return ModelRegistry(registry_uri)


@pytest.fixture
def live(fake_kube, conveyor_runtime, registry, capsys):
    """fraud v1 serving 100 % on conveyor-sklearn in namespace `models`."""
    code, _, err = run(capsys, "canary", "fraud", "--model", "fraud", "--version", "1",
                       "--percent", "10", "--reason", "first release")  # fmt: skip
    assert code == 0, err
    return fake_kube


def refused(api, capsys, *argv: str) -> str:
    """Run a deploy that must be refused with exit 2 and leave the cluster as it was: the
    InferenceService identical (resourceVersion and spec included) and no write sent."""
    before, shadow, sent = isvc(api), isvc(api, "fraud-shadow"), writes(api)
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    assert isvc(api) == before and isvc(api, "fraud-shadow") == shadow
    assert writes(api) == sent
    return err


def conveyor_pin(api) -> str:
    runtime = api.get(RUNTIMES, "clusterservingruntimes", "", inf.RUNTIME)
    return runtime["metadata"]["annotations"][inf.SKLEARN_VERSION]


def test_a_matching_version_deploys_on_conveyor_sklearn(live, registry, capsys) -> None:
    tag = registry.get("fraud", "2")["tags"]["model.sklearn_version"]
    assert tag == sklearn.__version__ == conveyor_pin(live)  # recorded at training
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "25")
    assert code == 0, err
    assert traffic_split(live, "models", "fraud") == {
        "fraud-predictor-00002": 25,
        "fraud-predictor-00001": 75,
    }
    obj = isvc(live)
    assert obj is not None and inf.runtime_of(obj) == "conveyor-sklearn"
    champion = inf.champion_of(obj)
    assert champion is not None and champion["predictor"]["model"]["runtime"] == inf.RUNTIME


def test_a_version_pickled_by_another_scikit_learn_is_refused(live, registry, capsys) -> None:
    registry.client.set_model_version_tag("fraud", "2", "model.sklearn_version", "1.5.2")
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    assert re.search(
        rf"fraud v2 was pickled by scikit-learn 1\.5\.2 but ClusterServingRuntime "
        rf"'conveyor-sklearn' serves scikit-learn {re.escape(sklearn.__version__)} .*nothing "
        r"was changed\. Retrain it with scikit-learn .*deploy it on a runtime whose image pins "
        r"1\.5\.2 .*kubectl annotate clusterservingruntime conveyor-sklearn "
        r"conveyor\.io/sklearn-version=1\.5\.2 --overwrite",
        err,
    ), err
    # the shadow path goes through the same check: no shadow, no mirror
    err = refused(live, capsys, "shadow", "fraud", "--version", "2", "--percent", "20")
    assert "fraud v2 was pickled by scikit-learn 1.5.2" in err
    assert (
        live.get("networking.istio.io/v1beta1", "virtualservices", "models", "fraud-mirror") is None
    )
    # and so does a dry run: what it would print could never be applied
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "10", "--dry-run")
    assert "fraud v2 was pickled by scikit-learn 1.5.2" in err


def test_a_version_without_the_tag_is_refused_with_how_to_fix(live, registry, capsys) -> None:
    registry.client.delete_model_version_tag("fraud", "2", "model.sklearn_version")
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    assert re.search(
        r"fraud v2 has no model\.sklearn_version tag \(registered before .*ClusterServingRuntime "
        r"'conveyor-sklearn', which serves scikit-learn .*nothing was changed\. Retrain and "
        r"register it again, or.*set_model_version_tag\('fraud', '2', 'model\.sklearn_version'",
        err,
    ), err


def test_a_missing_runtime_is_refused_and_nothing_is_created(fake_kube, registry, capsys) -> None:
    err = refused(fake_kube, capsys, "canary", "fraud", "--model", "fraud", "--version", "1",
                  "--percent", "10")  # fmt: skip
    assert re.search(
        r"fraud v1: serving runtime 'conveyor-sklearn' exists neither as a ServingRuntime in "
        r"namespace 'models' nor as a ClusterServingRuntime.*nothing was changed\. Install "
        r"Conveyor's runtime once per cluster \(`kubectl apply -k manifests/runtime`",
        err,
    ), err
    assert isvc(fake_kube) is None


def test_stock_runtime_without_the_annotation_is_refused(live, capsys) -> None:
    seed_stock_runtime(live)
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "10",
                  "--runtime", "kserve-sklearnserver")  # fmt: skip
    assert re.search(
        r"fraud v2: ClusterServingRuntime 'kserve-sklearnserver' has no "
        r"conveyor\.io/sklearn-version annotation.*nothing was changed\. Check the scikit-learn "
        r"its image pins \(`kubectl get clusterservingruntime kserve-sklearnserver -o "
        r".*`kubectl annotate clusterservingruntime kserve-sklearnserver "
        r"conveyor\.io/sklearn-version=<that version>`",
        err,
    ), err


def test_stock_runtime_annotated_with_the_models_version_serves_it(live, capsys) -> None:
    seed_stock_runtime(live, sklearn.__version__)
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "10",
                       "--runtime", "kserve-sklearnserver")  # fmt: skip
    assert code == 0, err
    revisions = {r["name"]: r["predictor"]["model"]["runtime"]
                 for r in live.revisions("models", "fraud")}  # fmt: skip
    assert revisions == {
        "fraud-predictor-00001": "conveyor-sklearn",
        "fraud-predictor-00002": "kserve-sklearnserver",  # the canary, on the stock runtime
    }
    # a step is checked against the runtime the canary runs on, and may not name another
    code, _, err = run(capsys, "canary", "fraud", "--version", "2", "--percent", "50")
    assert code == 0, err
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "75",
                  "--runtime", "conveyor-sklearn")  # fmt: skip
    assert "canary of v2 runs on runtime 'kserve-sklearnserver', not 'conveyor-sklearn'" in err
    assert traffic_split(live, "models", "fraud") == {
        "fraud-predictor-00002": 50,
        "fraud-predictor-00001": 50,
    }
    code, _, err = run(capsys, "rollback", "fraud")
    assert code == 0, err
    obj = isvc(live)
    assert obj is not None and inf.runtime_of(obj) == "conveyor-sklearn"  # the champion's


def test_stock_runtime_annotated_with_another_version_is_refused(live, capsys) -> None:
    seed_stock_runtime(live, "1.0.1")  # what KServe 0.11's image pinned
    err = refused(live, capsys, "shadow", "fraud", "--version", "2",
                  "--runtime", "kserve-sklearnserver")  # fmt: skip
    assert (
        f"fraud v2 was pickled by scikit-learn {sklearn.__version__} but ClusterServingRuntime "
        "'kserve-sklearnserver' serves scikit-learn 1.0.1" in err
    )


def test_a_namespaced_serving_runtime_wins_over_the_cluster_one(live, capsys) -> None:
    """KServe resolves a runtime name in the namespace first: so does the check."""
    own = yaml.safe_load(OURS.read_text())
    own["kind"] = "ServingRuntime"
    own["metadata"]["namespace"] = "models"
    own["metadata"]["annotations"][inf.SKLEARN_VERSION] = "1.6.1"
    live.seed(own)
    err = refused(live, capsys, "canary", "fraud", "--version", "2", "--percent", "10")
    assert (
        "but ServingRuntime 'conveyor-sklearn' in namespace 'models' serves scikit-learn 1.6.1"
        in err
    )
    assert "kubectl annotate servingruntime conveyor-sklearn -n models" in err


def test_a_disabled_runtime_is_refused(fake_kube, registry, capsys) -> None:
    runtime = yaml.safe_load(OURS.read_text())
    runtime["spec"]["disabled"] = True
    fake_kube.seed(runtime)
    err = refused(fake_kube, capsys, "canary", "fraud", "--model", "fraud", "--version", "1",
                  "--percent", "10")  # fmt: skip
    assert "fraud v1: ClusterServingRuntime 'conveyor-sklearn' is disabled" in err


def test_the_rollout_stage_checks_the_plans_runtime(live, registry, registry_uri) -> None:
    """The KFP deploy step (stages.deploy_canary) resolves through the same check."""
    before, sent = isvc(live), writes(live)
    with pytest.raises(
        IncompatibleRuntimeError,
        match=r"fraud v2: serving runtime 'team-sklearn' exists neither as a ServingRuntime",
    ):
        deploy_canary.run("fraud", "models", "fraud", "2", 0, registry_uri, False, "pipeline",
                            runtime="team-sklearn")  # fmt: skip
    registry.client.set_model_version_tag("fraud", "2", "model.sklearn_version", "1.7.0")
    with pytest.raises(IncompatibleRuntimeError, match=r"fraud v2 was pickled by scikit-learn "
                       r"1\.7\.0 but ClusterServingRuntime 'conveyor-sklearn'"):  # fmt: skip
        deploy_canary.run("fraud", "models", "fraud", "2", 0, registry_uri, False, "pipeline",
                            runtime="conveyor-sklearn")  # fmt: skip
    assert isvc(live) == before and writes(live) == sent


def test_the_check_runs_under_the_least_privilege_rbac(live, registry_uri) -> None:
    """Reading the ClusterServingRuntime needs the ClusterRole of manifests/runtime: the
    namespaced Role alone is refused (exit 7 from the plugin), nothing written either way."""
    cluster = KubeCluster()
    live.enforce_rules(rbac.rules(["fraud"]))
    with pytest.raises(ClusterError, match=r"forbidden .*ClusterRole conveyor-runtime-reader"):
        actions.resolve_version(registry_uri, "fraud", "2", cluster=cluster,
                                inference_service="fraud")  # fmt: skip
    live.enforce_rules(rbac.rules(["fraud"]), cluster_rules=rbac.cluster_rules())
    model = actions.resolve_version(registry_uri, "fraud", "2", cluster=cluster,
                                    inference_service="fraud")  # fmt: skip
    assert (model.runtime, model.sklearn_version) == ("conveyor-sklearn", sklearn.__version__)


def test_the_plans_runtime_reaches_every_deploy_task(tmp_path) -> None:
    from kfp import compiler

    from conveyor.pipelines.rollout.pipeline import build_pipeline
    from conveyor.rollout.plan import RolloutPlan

    pipeline = build_pipeline(RolloutPlan(runtime="kserve-sklearnserver"), "fraud", "fraud", [])
    compiler.Compiler().compile(pipeline, str(tmp_path / "rollout.yaml"))
    spec = yaml.safe_load((tmp_path / "rollout.yaml").read_text())
    assert spec["root"]["inputDefinitions"]["parameters"]["runtime"]["defaultValue"] == (
        "kserve-sklearnserver"
    )
    deploys = {
        name: task["inputs"]["parameters"].get("runtime")
        for component in spec["components"].values()
        for name, task in component.get("dag", {}).get("tasks", {}).items()
        if name.startswith(("deploy-canary", "deploy-shadow"))
    }
    # the shadow, the 0 % stage, the analysed first step, four plain steps, bluegreen's switch
    assert len(deploys) == 8
    channel = {"componentInputParameter": "pipelinechannel--runtime"}
    assert all(runtime == channel for runtime in deploys.values()), deploys

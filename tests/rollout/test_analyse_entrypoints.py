"""The analysis behind its two other doors: `kubectl conveyor analyze` and the analyse_rollout
component, on the fake API server and a real (empty) Prometheus: no data is never healthy."""

import json

import pytest
from kfp import dsl

from conveyor.cli.kubectl import main
from conveyor.components.analyse_rollout.component import analyse_rollout
from conveyor.local.prometheus import PrometheusServer
from conveyor.rollout import actions
from conveyor.rollout.cluster import KubeCluster
from conveyor.rollout.plan import RolloutPlan
from conveyor.serving.isvc import Change, ServedModel
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration

V1 = ServedModel("fraud", "1", "s3://models/1/artifacts/serving", "a" * 64)
V2 = ServedModel("fraud", "2", "s3://models/2/artifacts/serving", "b" * 64)


@pytest.fixture(scope="module")
def prometheus():
    with PrometheusServer({}) as prom:  # scrapes nothing: every query has no data
        yield prom


@pytest.fixture
def canary(fake_kube):
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    actions.deploy(cluster, "fraud", V2, 10, Change("canary", "test", "t"))
    return fake_kube


def quick_plan(tmp_path) -> tuple[str, str]:
    plan = RolloutPlan.model_validate(
        {"analysis": {"interval_seconds": 0.2, "max_inconclusive": 2}}
    )
    path = tmp_path / "plan.yaml"
    path.write_text(json.dumps(plan.model_dump(mode="json")))
    return str(path), json.dumps(plan.model_dump(mode="json"))


def test_plugin_analyze_once_then_to_the_end(canary, prometheus, tmp_path, capsys) -> None:
    path, _ = quick_plan(tmp_path)
    code = main(["analyze", "fraud", "--plan", path, "--prometheus", prometheus.url, "--once"])
    out = capsys.readouterr().out
    assert code == 0 and "interval   1" in out and "inconclusive (1/2)" in out
    # the stage's spelling (analyse_rollout) is the same command
    code = main(["analyse", "fraud", "--plan", path, "--prometheus", prometheus.url])
    out = capsys.readouterr().out
    assert code == 3  # held for a person
    assert "hold" in out and "candidate requests in the interval < min 20" in out
    assert main(["status", "fraud"]) == 0
    status = capsys.readouterr().out
    assert "Phase:           Held" in status
    assert "Analysis:        hold at interval 2 (" in status
    assert traffic_split(canary, "models", "fraud") == {
        "fraud-predictor-00002": 10,
        "fraud-predictor-00001": 90,
    }


def test_plugin_analyze_needs_prometheus(canary, capsys, monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert main(["analyze", "fraud"]) == 2
    assert "no Prometheus URL: the analysis needs" in capsys.readouterr().err


def test_component_holds_without_data(canary, prometheus, tmp_path) -> None:
    _, plan_json = quick_plan(tmp_path)
    report = dsl.Markdown(uri=str(tmp_path / "report.md"))
    decision = dsl.Artifact(uri=str(tmp_path / "out" / "decision.json"))
    (tmp_path / "out").mkdir()
    verdict = analyse_rollout.python_func(
        inference_service="fraud", plan=plan_json, prometheus_url=prometheus.url,
        report=report, decision=decision,
    )  # fmt: skip
    assert verdict == "hold"
    assert decision.metadata == {"decision": "hold", "interval": 2}
    assert "# Analysis of fraud: hold" in (tmp_path / "report.md").read_text()
    reasons = [e["reason"] for e in canary.events("models")]
    assert reasons[-1] == "AnalysisHold"


def test_plugin_analyzes_a_shadow_and_holds_without_data(
    fake_kube, prometheus, tmp_path, capsys
) -> None:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    actions.deploy_shadow(cluster, "fraud", V2, 25.0, Change("shadow", "test", "t"))
    path, _ = quick_plan(tmp_path)
    code = main(["analyze", "fraud", "--plan", path, "--prometheus", prometheus.url])
    out = capsys.readouterr().out
    assert code == 3, out  # held for a person
    assert "traffic shadow  continue" in out and "traffic shadow  hold" in out
    assert "mirrored requests to the shadow in the interval < min 20" in out
    assert traffic_split(fake_kube, "models", "fraud") == {"fraud-predictor-00001": 100}
    shadow = fake_kube.get("serving.kserve.io/v1beta1", "inferenceservices", "models",
                           "fraud-shadow")  # fmt: skip
    assert shadow["metadata"]["annotations"]["conveyor.io/phase"] == "Held"
    # the on-call view: the shadow's phase and the analysis' last word
    assert main(["status", "fraud"]) == 0
    status = capsys.readouterr().out
    assert "Shadow:          fraud-shadow v2 mirroring 25 %, phase Held" in status
    assert "  Analysis:      hold at interval 2 (" in status
    assert "inconclusive for 2 intervals in a row" in status
    assert "\nAnalysis:" not in status, "the champion itself was never analysed"

"""The analysis loop on a canary held in the fake API server (KServe semantics), with scripted
metrics: each fault ends rolled back or held, a healthy candidate is stepped up and promoted."""

import json

import numpy as np
import pytest

from conveyor.errors import BadInputError
from conveyor.registry import ModelRegistry
from conveyor.rollout import actions
from conveyor.rollout.analysis import ANALYSIS, Analysis
from conveyor.rollout.cluster import KubeCluster
from conveyor.rollout.metrics import StaticMetrics
from conveyor.rollout.plan import AnalysisSpec, CheckSpec, RolloutPlan
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, ServedModel
from tests.fakes.kube_api import traffic_split

pytestmark = pytest.mark.integration

V1 = ServedModel("fraud", "1", "s3://models/1/artifacts/serving", "a" * 64)
V2 = ServedModel("fraud", "2", "s3://models/2/artifacts/serving", "b" * 64)
NEW, OLD = "fraud-predictor-00002", "fraud-predictor-00001"


def split(api) -> dict[str, int]:
    return traffic_split(api, "models", "fraud")


def plan(**analysis) -> RolloutPlan:
    checks = [
        CheckSpec(name="error_rate", query='err{rev="{{ revision }}"}', op="above",
                  threshold=0.01),
        CheckSpec(name="latency_p99", query='p99{rev="{{ revision }}",w="{{ interval }}"}',
                  op="ratio_above", threshold=2.0, window_intervals=3, alert=True),
        CheckSpec(name="score_psi", op="psi_above", threshold=0.2, on_fail="hold"),
    ]  # fmt: skip
    spec = {"interval_seconds": 10, "requests_query": 'req{rev="{{ revision }}"}',
            "min_requests": 20, "checks": checks, **analysis}  # fmt: skip
    return RolloutPlan(analysis=AnalysisSpec(**spec))


def metrics(err=0.0, p99_new=0.1, p99_old=0.1, req=100.0, req_old=400.0) -> StaticMetrics:
    return StaticMetrics({
        f'err{{rev="{NEW}"}}': err,
        f'p99{{rev="{NEW}",w="30s"}}': p99_new,
        f'p99{{rev="{OLD}",w="30s"}}': p99_old,
        f'req{{rev="{NEW}"}}': req,
        f'req{{rev="{OLD}"}}': req_old,
    })  # fmt: skip


class Scores:
    def __init__(self, shift: float = 0.0) -> None:
        rng = np.random.default_rng(0)
        self.old = rng.beta(2, 8, 2000)
        self.new = np.clip(rng.beta(2, 8, 2000) + shift, 0, 1)

    def scores(self, role: str) -> np.ndarray:
        return self.new if role == "candidate" else self.old


@pytest.fixture
def canary(fake_kube) -> KubeCluster:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    actions.deploy(cluster, "fraud", V2, 5, Change("canary", "test", "t"))
    return cluster


def test_healthy_candidate_is_stepped_up_and_promoted(fake_kube, canary) -> None:
    seen = []
    analysis = Analysis(canary, "fraud", plan(), metrics(), scores=Scores())
    final = analysis.run(
        progress=lambda d: seen.append((d.decision, d.percent)), sleep=lambda s: None
    )
    assert seen == [("step_up", 25), ("step_up", 50), ("promote", 50)]
    assert final.decision == "promote"
    assert split(fake_kube) == {NEW: 100}
    reasons = [e["reason"] for e in fake_kube.events("models")]
    assert reasons[-4:] == ["CanaryStep", "AnalysisStepUp", "Promoted", "AnalysisPromote"]
    assert "all checks passed" in final.reason and "score_psi" in final.reason


def test_error_rate_fault_rolls_back_within_two_intervals(fake_kube, canary) -> None:
    analysis = Analysis(canary, "fraud", plan(), metrics(err=0.05))
    first = analysis.step()
    assert first.decision == "continue" and "(1/2)" in first.reason
    assert split(fake_kube) == {NEW: 5, OLD: 95}
    second = analysis.step()
    assert second.decision == "rollback"
    assert "error_rate 0.05 (fails > 0.01): FAILED for 2 interval(s)" in second.reason
    assert split(fake_kube) == {OLD: 100}
    event = fake_kube.events("models")[-1]
    assert event["reason"] == "AnalysisRollback" and event["type"] == "Warning"


def test_latency_against_the_champion_rolls_back(fake_kube, canary) -> None:
    final = Analysis(canary, "fraud", plan(), metrics(p99_new=0.3, p99_old=0.1)).run(
        sleep=lambda s: None
    )
    assert final.decision == "rollback" and final.interval == 2
    assert "3.00x (bound 2x)" in final.reason
    assert split(fake_kube) == {OLD: 100}


def test_score_drift_holds_for_a_person(fake_kube, canary) -> None:
    final = Analysis(canary, "fraud", plan(), metrics(), scores=Scores(shift=0.3)).run(
        sleep=lambda s: None
    )
    assert final.decision == "hold"
    obj = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    assert obj["metadata"]["annotations"][inf.PHASE] == "Held"
    assert split(fake_kube) == {NEW: 5, OLD: 95}  # traffic untouched, waiting for a person
    again = Analysis(canary, "fraud", plan(), metrics(), scores=Scores()).step()
    assert again.decision == "hold" and "waiting for a person" in again.reason


def test_no_traffic_is_inconclusive_never_healthy(fake_kube, canary) -> None:
    final = Analysis(canary, "fraud", plan(max_inconclusive=3), metrics(req=0)).run(
        sleep=lambda s: None
    )
    assert final.decision == "hold" and final.interval == 3
    assert "0 candidate requests in the interval < min 20" in final.reason
    assert split(fake_kube) == {NEW: 5, OLD: 95}


def test_metrics_backend_down_holds_and_never_promotes(fake_kube, canary) -> None:
    down = metrics()
    down.down = True
    final = Analysis(canary, "fraud", plan(max_inconclusive=2), down).run(sleep=lambda s: None)
    assert final.decision == "hold" and "metrics backend unreachable" in final.reason
    assert split(fake_kube) == {NEW: 5, OLD: 95}


def test_once_keeps_state_between_runs_in_the_annotation(fake_kube, canary) -> None:
    # cron style: a fresh Analysis object per interval reads the state back
    assert Analysis(canary, "fraud", plan(), metrics(err=0.05)).step().decision == "continue"
    obj = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    assert '"error_rate": 1' in obj["metadata"]["annotations"][ANALYSIS]
    assert Analysis(canary, "fraud", plan(), metrics(err=0.05)).step().decision == "rollback"


def test_a_recovered_check_resets_its_count(fake_kube, canary) -> None:
    flaky = metrics()
    flaky.script[f'err{{rev="{NEW}"}}'] = [0.05, 0.0, 0.05, 0.0]
    analysis = Analysis(canary, "fraud", plan(checks_per_step=3), flaky)
    decisions = [analysis.step().decision for _ in range(4)]
    assert "rollback" not in decisions


def test_analysis_needs_a_running_canary(fake_kube) -> None:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    with pytest.raises(BadInputError, match="no canary or shadow in progress"):
        Analysis(cluster, "fraud", plan(), metrics()).step()


def test_registry_follows_the_decision(fake_kube, registry_uri, fraud_models) -> None:
    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    cluster = KubeCluster()
    rows = {v: ServedModel.from_version(registry.get("fraud", v)) for v in ("1", "2")}
    actions.deploy(cluster, "fraud", rows["1"], 0, Change("deploy", "baseline", "t"))
    actions.deploy(cluster, "fraud", rows["2"], 50, Change("canary", "test", "t"))
    final = Analysis(cluster, "fraud", plan(), metrics(), registry=registry).run(
        sleep=lambda s: None
    )
    assert final.decision == "promote"
    v2 = registry.get("fraud", "2")
    assert "champion" in v2["aliases"]
    assert any(k.startswith("conveyor.analysis.") for k in v2["tags"])


def test_rollback_and_promotion_are_notified(fake_kube, canary) -> None:
    from conveyor.rollout.notify import MemoryNotifier

    sent = MemoryNotifier()
    Analysis(canary, "fraud", plan(), metrics(err=0.05), notifier=sent).run(sleep=lambda s: None)
    [note] = sent.sent
    payload = note.to_json()
    assert payload["kind"] == "rollout.rollback" and payload["version"] == "2"
    assert payload["champion_version"] == "1"
    assert any(c["name"] == "error_rate" and c["status"] == "failed" for c in payload["checks"])
    assert payload["alert"] is False  # error_rate has no alert: true: a rollback, not a page


def test_a_check_with_alert_pages_through_the_decision(fake_kube, canary, capsys) -> None:
    from conveyor.rollout.notify import MemoryNotifier

    sent = MemoryNotifier()
    final = Analysis(canary, "fraud", plan(), metrics(p99_new=0.3, p99_old=0.1),
                     notifier=sent).run(sleep=lambda s: None)  # fmt: skip
    assert final.decision == "rollback" and final.alerts == ["latency_p99"]
    assert final.line().endswith("[alert: latency_p99]")
    [note] = sent.sent
    assert note.severity == "critical" and note.alerts == ["latency_p99"]
    slack = json.dumps(note.to_slack(), ensure_ascii=False)
    assert "❌ latency_p99 0.3 vs champion 0.1 = 3.00x (bound 2x): FAILED" in slack
    event = fake_kube.events("models")[-1]
    assert event["reason"] == "AnalysisRollback" and "[alert: latency_p99]" in event["message"]
    obj = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    last = json.loads(obj["metadata"]["annotations"][ANALYSIS])["last"]
    assert last["alerts"] == ["latency_p99"]
    from conveyor.cli.kubectl import main

    capsys.readouterr()
    assert main(["status", "fraud"]) == 0  # on-call's view says it paged
    analysis_line = next(x for x in capsys.readouterr().out.splitlines() if "Analysis:" in x)
    assert analysis_line.startswith("Analysis:        rollback at interval 2")
    assert analysis_line.endswith("[alert: latency_p99]")


class Feedback:
    def __init__(self, candidate_noise: float) -> None:
        rng = np.random.default_rng(1)
        self.y = rng.integers(0, 2, 400)
        self.old = np.clip(self.y * 0.6 + rng.normal(0.2, 0.15, 400), 0, 1)
        self.new = np.clip(self.y * 0.6 + rng.normal(0.2, 0.15 + candidate_noise, 400), 0, 1)

    def labelled(self, role: str):
        return self.y, self.new if role == "candidate" else self.old


def auc_plan() -> RolloutPlan:
    checks = [CheckSpec(name="online_auc", op="auc_drop_pct_above", threshold=3.0)]
    return RolloutPlan(analysis=AnalysisSpec(
        interval_seconds=10, requests_query='req{rev="{{ revision }}"}', checks=checks,
    ))  # fmt: skip


def test_online_quality_drop_rolls_back(fake_kube, canary) -> None:
    final = Analysis(canary, "fraud", auc_plan(), metrics(), feedback=Feedback(0.6)).run(
        sleep=lambda s: None
    )
    assert final.decision == "rollback"
    assert "online_auc" in final.reason and "(max drop 3 %): FAILED" in final.reason


def test_online_quality_without_feedback_is_not_measured(fake_kube, canary) -> None:
    d = Analysis(canary, "fraud", auc_plan(), metrics()).step()
    assert d.decision == "step_up"
    assert "online_auc: not measured: no labelled feedback source" in d.reason


# ---------------------------------------------------------------- shadow analysis

SHADOW = "fraud-shadow-predictor-00001"


@pytest.fixture
def shadowing(fake_kube) -> KubeCluster:
    cluster = KubeCluster()
    actions.deploy(cluster, "fraud", V1, 0, Change("deploy", "baseline", "t"))
    actions.deploy_shadow(cluster, "fraud", V2, 50.0, Change("shadow", "test", "t"))
    return cluster


def shadow_metrics(err: float = 0.0, req: float = 100.0) -> StaticMetrics:
    """The shadow's revision answers the mirrored requests; the champion's is the baseline."""
    return StaticMetrics({
        f'err{{rev="{SHADOW}"}}': err,
        f'p99{{rev="{SHADOW}",w="30s"}}': 0.1,
        f'p99{{rev="{OLD}",w="30s"}}': 0.1,
        f'req{{rev="{SHADOW}"}}': req,
        f'req{{rev="{OLD}"}}': 400.0,
        # once the shadow has become a canary, its revision on the primary is NEW
        f'err{{rev="{NEW}"}}': 0.0,
        f'p99{{rev="{NEW}",w="30s"}}': 0.1,
        f'req{{rev="{NEW}"}}': 100.0,
    })  # fmt: skip


def shadow_objects(api) -> set[str]:
    """The shadow InferenceService and the mirroring VirtualService that still exist."""
    found = {
        "fraud-shadow": api.get(inf.API_VERSION, "inferenceservices", "models", "fraud-shadow"),
        "fraud-mirror": api.get(inf.ISTIO_API_VERSION, "virtualservices", "models", "fraud-mirror"),
    }
    return {name for name, obj in found.items() if obj is not None}


def test_a_healthy_shadow_becomes_a_canary_then_is_promoted(fake_kube, shadowing) -> None:
    seen: list[tuple[str, str, int | None]] = []
    lines: list[str] = []

    def progress(d) -> None:
        seen.append((d.mode, d.decision, d.percent))
        lines.append(d.line())

    analysis = Analysis(shadowing, "fraud", plan(shadow_checks=2), shadow_metrics(),
                        scores=Scores())  # fmt: skip
    final = analysis.run(progress=progress, sleep=lambda s: None)
    assert seen[:2] == [("shadow", "continue", None), ("shadow", "step_up", 5)]
    assert seen[2:] == [("canary", "step_up", 25), ("canary", "step_up", 50),
                        ("canary", "promote", 50)]  # fmt: skip
    assert final.decision == "promote" and split(fake_kube) == {NEW: 100}
    assert shadow_objects(fake_kube) == set(), "the shadow and its mirror are gone"
    reasons = [e["reason"] for e in fake_kube.events("models")]
    assert "ShadowStopped" in reasons and "CanaryStarted" in reasons
    assert lines[0].startswith("interval   1  traffic shadow  continue  healthy 1/2")
    assert "step_up   shadow passed 2 intervals: to canary 5 %: all checks passed" in lines[1]
    assert lines[2].startswith("interval   1  traffic    25%  step_up"), "a fresh count"


def test_a_failing_shadow_is_removed_and_traffic_never_moves(fake_kube, shadowing) -> None:
    before = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    analysis = Analysis(shadowing, "fraud", plan(), shadow_metrics(err=0.05))
    first = analysis.step()
    assert (first.mode, first.decision) == ("shadow", "continue")
    assert first.line().startswith("interval   1  traffic shadow  continue")
    second = analysis.step()
    assert second.decision == "rollback"
    assert "error_rate 0.05 (fails > 0.01): FAILED for 2 interval(s)" in second.reason
    assert shadow_objects(fake_kube) == set()
    after = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    assert split(fake_kube) == {OLD: 100}
    assert after["spec"] == before["spec"], "the champion's spec was never written"
    assert json.loads(after["metadata"]["annotations"][ANALYSIS])["last"]["decision"] == (
        "rollback"
    )


def test_a_drifting_shadow_holds_and_keeps_mirroring(fake_kube, shadowing) -> None:
    final = Analysis(shadowing, "fraud", plan(), shadow_metrics(), scores=Scores(shift=0.3)).run(
        sleep=lambda s: None
    )
    assert (final.mode, final.decision) == ("shadow", "hold")
    assert "score_psi" in final.reason
    shadow = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud-shadow")
    assert shadow["metadata"]["annotations"][inf.PHASE] == "Held"
    assert shadow_objects(fake_kube) == {"fraud-shadow", "fraud-mirror"}
    assert split(fake_kube) == {OLD: 100}
    again = Analysis(shadowing, "fraud", plan(), shadow_metrics(), scores=Scores()).step()
    assert again.decision == "hold" and "waiting for the shadow" in again.reason


def test_after_shadow_hold_waits_for_a_person(fake_kube, shadowing) -> None:
    held = plan(shadow_checks=1).model_copy(update={"after_shadow": "hold"})
    d = Analysis(shadowing, "fraud", held, shadow_metrics()).step()
    assert d.decision == "hold"
    assert "shadow passed 1 intervals" in d.reason
    assert "`kubectl conveyor canary fraud --version 2 --percent 5`" in d.reason
    assert split(fake_kube) == {OLD: 100}


def test_a_new_rollout_does_not_inherit_the_last_ones_count(fake_kube, canary) -> None:
    Analysis(canary, "fraud", plan(failure_threshold=3), metrics(err=0.05)).step()
    Analysis(canary, "fraud", plan(failure_threshold=3), metrics(err=0.05)).step()
    actions.rollback(canary, "fraud", Change("rollback", "by hand", "t"))
    v3 = ServedModel("fraud", "3", "s3://models/3/artifacts/serving", "c" * 64)
    actions.deploy(canary, "fraud", v3, 5, Change("canary", "test", "t"))
    newest = "fraud-predictor-00004"  # 00003 restored the champion's spec at 0 %
    failing = StaticMetrics({f'err{{rev="{newest}"}}': 0.05, f'req{{rev="{newest}"}}': 100.0,
                             f'p99{{rev="{newest}",w="30s"}}': 0.1,
                             f'p99{{rev="{OLD}",w="30s"}}': 0.1})  # fmt: skip
    d = Analysis(canary, "fraud", plan(failure_threshold=3), failing).step()
    assert d.interval == 1 and d.decision == "continue" and "(1/3)" in d.reason


def test_a_failing_shadow_is_rejected_in_the_registry(
    fake_kube, registry_uri, fraud_models
) -> None:
    registry = ModelRegistry(registry_uri)
    registry.promote("fraud", "1", "baseline")
    cluster = KubeCluster()
    rows = {v: ServedModel.from_version(registry.get("fraud", v)) for v in ("1", "2")}
    actions.deploy(cluster, "fraud", rows["1"], 0, Change("deploy", "baseline", "t"))
    actions.deploy_shadow(cluster, "fraud", rows["2"], 50.0, Change("shadow", "test", "t"))
    final = Analysis(cluster, "fraud", plan(), shadow_metrics(err=0.05), registry=registry).run(
        sleep=lambda s: None
    )
    assert (final.mode, final.decision) == ("shadow", "rollback")
    v1, v2 = registry.get("fraud", "1"), registry.get("fraud", "2")
    assert "champion" in v1["aliases"], "the champion never moved"
    assert v2["status"] == "rolled_back" and "candidate" not in v2["aliases"]
    assert v2["tags"]["conveyor.deployable"] == "False"
    assert any(v.startswith("rollback: error_rate") for k, v in v2["tags"].items()
               if k.startswith("conveyor.analysis."))  # fmt: skip


class DownRegistry:
    """MLflow unreachable: every call fails the way the client does when it cannot connect."""

    @property
    def client(self) -> "DownRegistry":
        return self

    def __getattr__(self, name: str):
        def fail(*args, **kwargs):
            raise ConnectionError("MLflow at http://mlflow.mlflow:5000 is unreachable")

        return fail


def test_a_rollback_whose_registry_step_fails_keeps_the_decision(
    fake_kube, canary, registry_uri, fraud_models, capsys
) -> None:
    from conveyor.cli import main

    final = Analysis(canary, "fraud", plan(), metrics(err=0.05), registry=DownRegistry()).run(
        sleep=lambda s: None
    )
    assert final.decision == "rollback" and split(fake_kube) == {OLD: 100}
    assert "MLflow not updated (MLflow at http://mlflow.mlflow:5000 is unreachable)" in (
        final.registry_error
    )
    assert "`conveyor models reject fraud 2 --reason ...`" in final.line()
    events = fake_kube.events("models")
    assert [e["reason"] for e in events[-2:]] == ["AnalysisRollback", "RegistryNotUpdated"]
    obj = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    assert json.loads(obj["metadata"]["annotations"][ANALYSIS])["last"]["registry_error"]
    # once MLflow is back, the on-call engineer runs what the message says
    assert main(["models", "--tracking-uri", registry_uri, "reject", "fraud", "2",
                 "--reason", "canary failed error_rate"]) == 0  # fmt: skip
    assert "fraud v2 rejected: rolled_back, not deployable" in capsys.readouterr().out
    v2 = ModelRegistry(registry_uri).get("fraud", "2")
    assert v2["status"] == "rolled_back" and v2["tags"]["conveyor.deployable"] == "False"


def test_a_promotion_the_registry_refuses_holds_with_traffic_unchanged(fake_kube, canary) -> None:
    actions.set_traffic(canary, "fraud", 50, Change("step", "test", "t"))
    d = Analysis(canary, "fraud", plan(), metrics(), registry=DownRegistry()).step()
    assert d.decision == "hold"
    assert d.reason.startswith("promotion failed, traffic stays at 50 % and the aliases where")
    assert "`kubectl conveyor promote fraud`" in d.reason
    assert split(fake_kube) == {NEW: 50, OLD: 50}
    obj = fake_kube.get(inf.API_VERSION, "inferenceservices", "models", "fraud")
    assert obj["metadata"]["annotations"][inf.PHASE] == "Held"


class FewLabels:
    """Labels trickle in: 10 rows a side, far below MIN_FEEDBACK."""

    def labelled(self, role: str):
        return np.array([0, 1] * 5), np.linspace(0.1, 0.9, 10)


@pytest.mark.parametrize(("on_no_data", "decision", "said"), [
    ("inconclusive", "continue", "inconclusive (1/5): online_auc: no data (fewer than 50"),
    ("skip", "step_up", "online_auc: not measured: fewer than 50 labelled rows with both "
                        "classes (on_no_data: skip)"),
])  # fmt: skip
def test_no_feedback_yet_waits_or_is_skipped_as_the_check_says(
    fake_kube, canary, on_no_data, decision, said
) -> None:
    checks = [CheckSpec(name="online_auc", op="auc_drop_pct_above", threshold=3.0,
                        on_no_data=on_no_data)]  # fmt: skip
    spec = AnalysisSpec(interval_seconds=10, requests_query='req{rev="{{ revision }}"}',
                        checks=checks)  # fmt: skip
    d = Analysis(
        canary, "fraud", RolloutPlan(analysis=spec), metrics(), feedback=FewLabels()
    ).step()
    assert d.decision == decision and said in d.reason, d.reason


# ------------------------------------------------------------------- enough evidence


def test_a_ratio_is_not_judged_on_a_handful_of_champion_requests(fake_kube, canary) -> None:
    """3x slower, but the champion answered 5 requests in the window: no verdict either way."""
    analysis = Analysis(canary, "fraud", plan(), metrics(p99_new=0.3, req_old=5 / 3))
    first = analysis.step()
    latency = next(c for c in first.checks if c.name == "latency_p99")
    assert latency.passed is None
    assert latency.note == "too few requests to judge: champion 5 in the 3-interval window < 20"
    assert first.decision == "continue" and "inconclusive" in first.reason
    assert analysis.step().decision == "continue", "never a rollback on no evidence"
    assert split(fake_kube) == {NEW: 5, OLD: 95}


def test_the_candidates_window_needs_enough_requests_too(fake_kube, canary) -> None:
    d = Analysis(canary, "fraud", plan(), metrics(err=0.5, req=10)).step()
    error = next(c for c in d.checks if c.name == "error_rate")
    assert error.passed is None and "candidate 10 in the 1-interval window < 20" in error.note


def test_a_latency_check_waits_out_the_candidates_warm_up(fake_kube, canary) -> None:
    p = plan(warmup_intervals=1)
    p.analysis.checks[1] = p.analysis.checks[1].model_copy(update={"exclude_warmup": True})
    analysis = Analysis(canary, "fraud", p, metrics(p99_new=0.3, p99_old=0.1))
    judged = []
    for _ in range(5):
        d = analysis.step()
        latency = next(c for c in d.checks if c.name == "latency_p99")
        judged.append(latency.passed)
        if d.decision == "rollback":
            break
    # window 3, warm-up 1: intervals 1-3 still hold interval 1; judged from interval 4
    assert judged == [None, None, None, False, False]
    assert d.decision == "rollback"


def test_min_samples_follow_the_quantile() -> None:
    from conveyor.rollout.analysis import min_samples

    def check(query: str, **kw) -> CheckSpec:
        return CheckSpec(name="lat", op="ratio_above", threshold=2, query=query, **kw)

    q = "histogram_quantile({}, sum by (le) (rate(x_bucket[1m])))"
    assert min_samples(check(q.format(0.99)), 20) == 100
    assert min_samples(check(q.format("0.95")), 10) == 20
    assert min_samples(check(q.format(0.5)), 10) == 10  # never below the plan's min_requests
    assert min_samples(check("rate(x[1m])"), 7) == 7
    assert min_samples(check(q.format(0.99), min_samples=30), 20) == 30


def test_a_latency_ratio_fails_only_with_a_real_difference_too() -> None:
    """bench/verdicts.py, idle machine: a healthy candidate's p95 of 49 ms was 2.04x a 24 ms
    champion and rolled back. With min_delta the ratio and the difference must both be
    exceeded; a fault that adds tens of ms still fails."""
    from pydantic import ValidationError

    from conveyor.rollout.analysis import _compare

    lat = CheckSpec(name="lat", op="ratio_above", threshold=2.0, query="q", min_delta=0.03)
    assert _compare(lat, 0.0494, 0.0243) is True  # 2.04x, but 25 ms: noise
    assert _compare(lat, 0.1396, 0.0229) is False  # 6.1x and 117 ms: the injected fault
    assert _compare(lat, 0.0400, 0.0300) is True  # 1.33x: fine either way
    plain = lat.model_copy(update={"min_delta": 0.0})
    assert _compare(plain, 0.0494, 0.0243) is False  # without it, the ratio alone decides
    with pytest.raises(ValidationError, match="min_delta applies to ratio_above only"):
        CheckSpec(name="e", op="above", threshold=0.01, query="q", min_delta=0.1)

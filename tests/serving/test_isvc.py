"""InferenceService / VirtualService builders: valid against the real CRD schemas, and the
canary, promote and roll-back patches do what KServe's Serverless semantics need."""

import dataclasses
import json

import pytest

from conveyor.errors import BadInputError
from conveyor.rollout.plan import RolloutPlan
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, Resources, ServedModel
from tests.fakes.kube_api import merge_patch
from tests.k8s_schema import validate

pytestmark = pytest.mark.unit

V1 = ServedModel("fraud", "1", "s3://models/1/artifacts/serving", "a" * 64)
V2 = ServedModel("fraud", "2", "s3://models/2/artifacts/serving", "b" * 64)


def change(action: str = "test") -> Change:
    return Change(action, "unit test", "tester", at="2026-11-25T00:00:00+00:00")


def isvc() -> dict:
    obj = inf.inference_service("fraud", "models", V1, change("deploy"))
    obj["metadata"]["resourceVersion"] = "1"
    return obj


def test_inference_service_is_valid_and_carries_lineage() -> None:
    obj = inf.inference_service("fraud", "models", V1, change(), resources=Resources())
    validate(obj)
    meta, model = obj["metadata"], obj["spec"]["predictor"]["model"]
    assert meta["labels"][inf.MODEL] == "fraud"
    assert meta["annotations"][inf.MODEL_VERSION] == "1"
    assert meta["annotations"][inf.MODEL_SHA256] == "a" * 64
    assert meta["annotations"][inf.TAG_ROUTING] == "true"
    assert meta["annotations"][inf.DEPLOYMENT_MODE] == "Serverless"
    assert model["runtime"] == "conveyor-sklearn" == inf.RUNTIME
    assert model["storageUri"] == V1.storage_uri
    assert model["env"] == [
        {"name": "PREDICT_PROBA", "value": "true"},
        {"name": "OMP_NUM_THREADS", "value": "1"},
        {"name": "CONVEYOR_MODEL_VERSION", "value": V1.version},
    ]
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert model["securityContext"]["runAsNonRoot"] is True
    assert model["securityContext"]["allowPrivilegeEscalation"] is False
    assert json.loads(meta["annotations"][inf.LAST_CHANGE])["by"] == "tester"


def test_canary_patch_keeps_champion_and_sets_percent() -> None:
    current = isvc()
    patch = inf.canary_patch(current, V2, 10, change("canary"))
    after = merge_patch(current, patch)
    validate(after)
    assert after["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert after["spec"]["predictor"]["model"]["storageUri"] == V2.storage_uri
    assert after["metadata"]["annotations"][inf.MODEL_VERSION] == "2"
    champion = inf.champion_of(after)
    assert champion is not None and champion["version"] == "1"
    assert champion["predictor"]["model"]["storageUri"] == V1.storage_uri
    # the new revision reports (and labels its metrics with) its own version, once
    env = after["spec"]["predictor"]["model"]["env"]
    assert [e["value"] for e in env if e["name"] == inf.VERSION_ENV] == ["2"]
    assert [e["value"] for e in champion["predictor"]["model"]["env"]
            if e["name"] == inf.VERSION_ENV] == ["1"]  # fmt: skip


def test_a_model_bound_to_a_runtime_is_served_there() -> None:
    stock = dataclasses.replace(V1, runtime=inf.STOCK_RUNTIME)
    obj = inf.inference_service("fraud", "models", stock, change())
    validate(obj)
    assert obj["spec"]["predictor"]["model"]["runtime"] == "kserve-sklearnserver"
    assert inf.runtime_of(obj) == "kserve-sklearnserver"


def test_canary_may_move_runtime_and_rollback_restores_the_champions() -> None:
    start = isvc()  # V1 on conveyor-sklearn
    same = merge_patch(start, inf.canary_patch(start, V2, 10, change("canary")))
    assert inf.runtime_of(same) == "conveyor-sklearn"  # unbound: the champion's runtime
    stock = dataclasses.replace(V2, runtime=inf.STOCK_RUNTIME)
    moved = merge_patch(start, inf.canary_patch(start, stock, 10, change("canary")))
    validate(moved)
    assert inf.runtime_of(moved) == "kserve-sklearnserver"
    back = merge_patch(moved, inf.rollback_patch(moved, change("rollback")))
    assert inf.runtime_of(back) == "conveyor-sklearn"


def test_promote_removes_percent_and_champion_note() -> None:
    running = merge_patch(isvc(), inf.canary_patch(isvc(), V2, 50, change()))
    after = merge_patch(running, inf.promote_patch(change("promote")))
    validate(after)
    assert "canaryTrafficPercent" not in after["spec"]["predictor"]
    assert inf.champion_of(after) is None
    assert after["spec"]["predictor"]["model"]["storageUri"] == V2.storage_uri


def test_rollback_sets_zero_and_restores_the_champion_spec_exactly() -> None:
    start = isvc()
    running = merge_patch(start, inf.canary_patch(start, V2, 25, change()))
    running["spec"]["predictor"]["model"]["args"] = ["--extra"]  # drift in the candidate spec
    after = merge_patch(running, inf.rollback_patch(running, change("rollback")))
    validate(after)
    restored = dict(after["spec"]["predictor"])
    assert restored.pop("canaryTrafficPercent") == 0
    assert restored == start["spec"]["predictor"]
    assert after["metadata"]["annotations"][inf.MODEL_VERSION] == "1"
    assert after["metadata"]["annotations"][inf.PHASE] == "RolledBack"


def test_rollback_without_canary_is_refused() -> None:
    with pytest.raises(BadInputError, match="no canary to roll back"):
        inf.rollback_patch(isvc(), change())


@pytest.mark.parametrize("bad", [-1, 101, 12.5, True, "10"])
def test_percent_outside_bounds_is_refused(bad) -> None:
    with pytest.raises(BadInputError, match=r"outside 0\.\.100"):
        inf.canary_patch(isvc(), V2, bad, change())


def test_virtual_service_mirrors_to_shadow_and_is_valid() -> None:
    vs = inf.virtual_service("fraud", "models", 20, change())
    validate(vs)
    route = vs["spec"]["http"][0]
    assert route["route"] == [
        {"destination": {"host": "fraud-predictor.models.svc.cluster.local"}, "weight": 100}
    ]
    assert route["mirror"] == {"host": "fraud-shadow-predictor.models.svc.cluster.local"}
    assert route["mirrorPercentage"] == {"value": 20.0}
    shadow = inf.inference_service("fraud-shadow", "models", V2, change(), role="shadow")
    validate(shadow)


def test_merge_diff_round_trips() -> None:
    a = {"x": 1, "y": {"z": 2, "w": 3}, "gone": True}
    b = {"x": 1, "y": {"z": 5}, "new": [1]}
    assert merge_patch(a, inf.merge_diff(a, b)) == b


def version_row(**tags: str) -> dict:
    base = {"conveyor.deployable": "True", "serving.uri": "s3://x", "model.sha256": "c" * 64}
    return {"name": "fraud", "version": "3", "status": "approved", "tags": {**base, **tags}}


def test_served_model_refuses_held_and_unapproved_versions() -> None:
    held = {**version_row(**{"conveyor.deployable": "False"}), "status": "held"}
    with pytest.raises(BadInputError, match=r"fraud v3 is held .*conveyor models approve"):
        ServedModel.from_version(held)
    with pytest.raises(BadInputError, match="no recorded approval"):
        ServedModel.from_version(version_row(), require_approval=True)
    ok = ServedModel.from_version(
        version_row(**{"conveyor.approved_by": "alice"}), require_approval=True
    )
    assert ok.approved_by == "alice" and ok.storage_uri == "s3://x"


def test_served_model_carries_the_scikit_learn_that_pickled_it() -> None:
    tagged = ServedModel.from_version(version_row(**{"model.sklearn_version": "1.9.1"}))
    assert (tagged.sklearn_version, tagged.runtime) == ("1.9.1", "")
    assert ServedModel.from_version(version_row()).sklearn_version == ""  # checked at deploy


def test_plan_runtime_defaults_to_conveyor_sklearn_and_takes_any_runtime_name() -> None:
    assert RolloutPlan().runtime == "conveyor-sklearn"
    for name in ("kserve-sklearnserver", "team-sklearn-1-5"):
        assert RolloutPlan(runtime=name).runtime == name
    with pytest.raises(ValueError, match=r"runtime\n  String should match pattern"):
        RolloutPlan(runtime="Not_A_Name")


def test_plan_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"steps must increase: steps\[2\] = 20"):
        RolloutPlan(steps=[5, 25, 20, 100])
    with pytest.raises(ValueError, match="last step must be 100"):
        RolloutPlan(steps=[5, 50])
    with pytest.raises(ValueError, match=r"steps\[0\] = 0 is outside 1..100"):
        RolloutPlan(steps=[0, 100])
    assert RolloutPlan(strategy="bluegreen", steps=[5, 100]).steps == [100]


@pytest.mark.parametrize("name", ["rollout.yaml", "rollout-istio.yaml"])
def test_example_plans_load_and_use_recorded_series(name: str) -> None:
    """Every query of the shipped plans reads a recording rule that manifests/monitoring defines."""
    import re
    from pathlib import Path

    import yaml

    from conveyor.rollout.plan import load_plan

    root = Path(__file__).resolve().parents[2]
    rules = yaml.safe_load((root / "manifests/monitoring/rules/conveyor-rules.yaml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"]}
    plan = load_plan(root / "examples" / "fraud" / name)
    queries = [plan.analysis.requests_query] + [c.query for c in plan.analysis.checks if c.query]
    for query in queries:
        used = set(re.findall(r"conveyor:[a-z0-9_:]+", query))
        assert used and used <= recorded, (query, used - recorded)


SCORE_LOG = "http://conveyor-scorelog.models.svc.cluster.local/log"


def test_score_log_logger_is_versioned_and_a_canary_relabels_it() -> None:
    """Each revision logs its responses under its own version: the champion's spec keeps
    version 1, the canary's (inherited logger) says version 2."""
    obj = inf.inference_service("fraud", "models", V1, change(), score_log=SCORE_LOG)
    validate(obj)
    logger = obj["spec"]["predictor"]["logger"]
    assert logger == {"mode": "response", "url": f"{SCORE_LOG}?model=fraud&version=1"}
    obj["metadata"]["resourceVersion"] = "1"
    after = merge_patch(obj, inf.canary_patch(obj, V2, 10, change("canary")))
    validate(after)
    assert after["spec"]["predictor"]["logger"]["url"] == f"{SCORE_LOG}?model=fraud&version=2"
    champion = inf.champion_of(after)
    assert champion is not None
    assert champion["predictor"]["logger"]["url"].endswith("version=1")
    # Rollback restores the champion's spec, logger included.
    back = merge_patch(after, inf.rollback_patch(after, change("rollback")))
    assert back["spec"]["predictor"]["logger"]["url"].endswith("version=1")


def test_no_score_log_means_no_logger() -> None:
    obj = inf.inference_service("fraud", "models", V1, change())
    assert "logger" not in obj["spec"]["predictor"]
    after = merge_patch({**obj, "metadata": {**obj["metadata"], "resourceVersion": "1"}},
                        inf.canary_patch(obj, V2, 10, change("canary")))  # fmt: skip
    assert "logger" not in after["spec"]["predictor"]


def test_score_log_url_must_be_http() -> None:
    with pytest.raises(BadInputError, match="score_log_url"):
        from conveyor.config import model_from_data

        model_from_data(RolloutPlan, {"score_log_url": "conveyor-scorelog/log"}, "plan")


def test_cluster_score_source_reads_the_rollout_versions_and_the_check_window() -> None:
    from conveyor.rollout.analysis import Side, Sides
    from conveyor.rollout.plan import AnalysisSpec, CheckSpec
    from conveyor.rollout.prometheus import PrometheusProvider, PrometheusScores, score_source

    provider = PrometheusProvider("http://127.0.0.1:9")
    sides = Sides("shadow", {}, Side("fraud-shadow", "r2", "2"), Side("fraud", "r1", "1"), "fraud")
    checks = [CheckSpec(name="psi", op="psi_above", threshold=0.2, window_intervals=6)]
    plan = RolloutPlan(
        score_log_url=SCORE_LOG, analysis=AnalysisSpec(interval_seconds=30, checks=checks)
    )
    source = score_source(provider, sides, plan)
    assert isinstance(source, PrometheusScores)
    assert source.versions == {"champion": "1", "candidate": "2"}
    assert source.window == "180s", "the psi check's 6 intervals of 30 s"
    assert score_source(provider, sides, RolloutPlan()) is None, "no receiver configured"


def test_check_windows_default_per_op_and_allow_late_labels() -> None:
    from conveyor.config import model_from_data
    from conveyor.rollout.plan import AnalysisSpec, CheckSpec, window

    checks = [
        CheckSpec(name="err", op="above", threshold=0.01, query="q"),
        CheckSpec(name="psi", op="psi_above", threshold=0.2),
        CheckSpec(name="auc", op="auc_drop_pct_above", threshold=3, window_intervals=1440),
    ]
    plan = RolloutPlan(analysis=AnalysisSpec(interval_seconds=60, checks=checks))
    assert [c.window for c in checks] == [1, 4, 1440]
    assert window(plan, "psi_above") == "240s", "unset: the histogram default, 4 intervals"
    assert window(plan, "auc_drop_pct_above") == "86400s", "a day for late fraud labels"
    assert window(RolloutPlan(analysis=AnalysisSpec(checks=checks[:1])), "psi_above") == "240s"
    with pytest.raises(BadInputError, match=r"analysis\.checks\.0\.window_intervals"):
        model_from_data(
            RolloutPlan,
            {"analysis": {"checks": [{"name": "x", "op": "psi_above", "threshold": 0.2,
                                      "window_intervals": 20000}]}},
            "plan",
        )  # fmt: skip


def test_the_commented_business_rule_of_the_example_plan_is_a_valid_check() -> None:
    """Uncommenting it is all a team has to do: it must parse and render like any check."""
    from pathlib import Path

    import yaml

    from conveyor.rollout.plan import CheckSpec
    from conveyor.rollout.prometheus import render

    root = Path(__file__).resolve().parents[2]
    lines = (root / "examples/fraud/rollout.yaml").read_text().splitlines()
    block = [line.replace("    # ", "    ", 1) for line in lines
             if line.startswith(("    # - {", "    #    "))]  # fmt: skip
    [rule] = yaml.safe_load("\n".join(block))
    check = CheckSpec.model_validate(rule)
    assert (check.name, check.op, check.on_fail) == ("approval_rate", "drop_pct_above", "hold")
    query = render(check.query, namespace="fraud-prod", target="fraud", revision="r2",
                   version="2", interval="300s")  # fmt: skip
    assert "{{" not in query and 'revision_name="r2"' in query and "[300s]" in query

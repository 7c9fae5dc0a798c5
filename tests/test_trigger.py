"""Retrain triggers: the training key, every branch of decide(), the policy's validation, and
find_unchanged / the check_trigger stage against a real MLflow sqlite registry."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from conveyor import trigger
from conveyor.config import RetrainPolicy, model_from_data
from conveyor.errors import BadInputError
from conveyor.registry import TRAINING_KEY_TAG, ModelRegistry
from conveyor.sample import generate
from conveyor.stages import check_trigger
from conveyor.tables import write_table
from tests.conftest import AS_OF

pytestmark = pytest.mark.unit

SHA = "a" * 64
OTHER_SHA = "b" * 64
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

INPUTS = {
    "contract": json.dumps({"name": "fraud", "columns": {"id": {"dtype": "int"}}}),
    "features": json.dumps({"numeric": ["amount"], "categorical": ["channel"], "label": "label"}),
    "training": json.dumps({"estimator": "logistic_regression", "params": {}, "seed": 42}),
    "evaluation": json.dumps({"threshold": 0.5, "slices": []}),
    "policy": json.dumps({"rules": [{"metric": "metrics.roc_auc", "min": 0.8}]}),
}
KEYS = check_trigger.KeyInputs(**INPUTS)


def _key(data_sha256: str = SHA, git_commit: str = "abc123", **overrides: str) -> str:
    return trigger.training_key(data_sha256, git_commit=git_commit, **{**INPUTS, **overrides})


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _champion(version: str = "3", data_sha: str = SHA, age_days: float = 1.0) -> dict:
    return {
        "version": version,
        "tags": {"data.sha256": data_sha},
        "created": _ms(NOW - timedelta(days=age_days)),
    }


# ---------------------------------------------------------------------------------- training_key


def test_training_key_is_stable_for_the_same_inputs():
    assert _key() == _key()
    assert len(_key()) == 64 and int(_key(), 16) >= 0


def test_training_key_ignores_json_key_order_and_whitespace():
    reordered = {
        name: json.dumps(json.loads(text), sort_keys=True, indent=4)
        for name, text in INPUTS.items()
    }
    # Reverse the top-level key order too, with compact separators.
    compact = {
        name: json.dumps(dict(reversed(list(json.loads(text).items()))), separators=(",", ":"))
        for name, text in INPUTS.items()
    }
    assert reordered != INPUTS and compact != INPUTS
    assert _key(**reordered) == _key() == _key(**compact)


@pytest.mark.parametrize(
    "change",
    [
        {"data_sha256": OTHER_SHA},
        {"git_commit": "def456"},
        {"git_commit": ""},
        {"code_version": "0.0.0-test"},
        {"contract": json.dumps({"name": "fraud", "columns": {"id": {"dtype": "float"}}})},
        {"features": json.dumps({"numeric": ["amount", "x"], "categorical": ["channel"]})},
        {"training": json.dumps({"estimator": "logistic_regression", "params": {}, "seed": 43})},
        {"evaluation": json.dumps({"threshold": 0.6, "slices": []})},
        {"policy": json.dumps({"rules": [{"metric": "metrics.roc_auc", "min": 0.81}]})},
        {"policy": ""},
    ],
    ids=lambda c: next(iter(c)),
)
def test_training_key_changes_with_any_input(change):
    assert _key(**change) != _key()


def test_training_key_hashes_yaml_text_as_written():
    yaml_policy = "rules:\n  - {metric: metrics.roc_auc, min: 0.8}\n"
    assert _key(policy=yaml_policy) == _key(policy=yaml_policy)
    assert _key(policy=yaml_policy) != _key(policy=yaml_policy.replace("0.8", "0.9"))


# ---------------------------------------------------------------------------------------- decide


def _decide(policy: RetrainPolicy | None = None, **kwargs) -> dict:
    args = {
        "data_sha256": SHA,
        "champion": _champion(),
        "unchanged": None,
        "model_name": "fraud",
        "drift_decision": "stable",
        "now": NOW,
    }
    return trigger.decide(policy or RetrainPolicy(), **{**args, **kwargs})


MATCH = {"kind": "version", "version": "3", "run_id": "r1", "status": "approved",
         "aliases": ["champion"]}  # fmt: skip


def test_force_retrains_whatever_else_holds():
    result = _decide(force=True, unchanged=MATCH)
    assert result == {"decision": "retrain", "reasons": ["forced"], "skipped_because": ""}


def test_unchanged_inputs_skip_naming_the_version():
    result = _decide(unchanged=MATCH, drift_decision="drift")
    assert result["decision"] == "skip"
    assert result["reasons"] == []
    assert "fraud v3 (approved, aliases champion)" in result["skipped_because"]
    assert result["skipped_because"].startswith("unchanged inputs")
    assert result["unchanged"] == MATCH


def test_unchanged_run_match_names_the_run_and_its_verdict():
    match = {"kind": "run", "run_id": "0123abcd", "status": "reject"}
    result = _decide(unchanged=match)
    assert result["decision"] == "skip"
    assert "MLflow run 0123abcd (gate verdict reject, not registered)" in result["skipped_because"]


def test_skip_if_unchanged_false_ignores_a_match():
    policy = RetrainPolicy(skip_if_unchanged=False)
    result = _decide(policy, unchanged=MATCH, drift_decision="drift")
    assert result["decision"] == "retrain"
    assert result["reasons"] == ["drift: check_drift over threshold against the champion's profile"]
    # ... and with no trigger firing it is a no-trigger skip, not an unchanged one.
    quiet = _decide(policy, unchanged=MATCH)
    assert quiet["decision"] == "skip"
    assert quiet["skipped_because"].startswith("no trigger fired for champion v3")


def test_no_champion_retrains():
    result = _decide(champion=None)
    assert result["decision"] == "retrain"
    assert result["reasons"] == ["no champion: fraud has no version with alias champion"]


def test_on_new_data_fires_only_for_a_different_batch():
    policy = RetrainPolicy(on_new_data=True)
    assert _decide(policy)["decision"] == "skip"
    result = _decide(policy, data_sha256=OTHER_SHA)
    assert result["decision"] == "retrain"
    assert result["reasons"] == [
        f"new data: batch sha256 {OTHER_SHA[:12]} differs from champion v3's {SHA[:12]}"
    ]
    # Off by default: a new batch alone does not retrain.
    assert _decide(data_sha256=OTHER_SHA)["decision"] == "skip"


def test_on_drift_reads_the_drift_decision():
    drifted = _decide(drift_decision="drift")
    assert drifted["decision"] == "retrain"
    assert drifted["reasons"] == [
        "drift: check_drift over threshold against the champion's profile"
    ]
    assert _decide(drift_decision="stable")["decision"] == "skip"
    assert _decide(drift_decision="no_reference")["decision"] == "skip"
    off = _decide(RetrainPolicy(on_drift=False), drift_decision="drift")
    assert off["decision"] == "skip"


def test_max_age_days_exceeded():
    old = _decide(champion=_champion(age_days=40))
    assert old["decision"] == "retrain"
    assert old["reasons"] == ["age: champion v3 is 40.0 days old > max_age_days 30"]
    assert _decide(champion=_champion(age_days=29.5))["decision"] == "skip"
    no_limit = _decide(RetrainPolicy(max_age_days=None), champion=_champion(age_days=400))
    assert no_limit["decision"] == "skip"
    # A champion without a creation time has no age: the age trigger cannot fire.
    undated = {**_champion(age_days=400), "created": None}
    assert _decide(champion=undated)["decision"] == "skip"
    # `now` is what the age is measured against.
    later = _decide(champion=_champion(age_days=1), now=NOW + timedelta(days=35))
    assert later["reasons"] == ["age: champion v3 is 36.0 days old > max_age_days 30"]


def test_every_trigger_that_fires_is_listed():
    policy = RetrainPolicy(on_new_data=True)
    result = _decide(
        policy, data_sha256=OTHER_SHA, drift_decision="drift", champion=_champion(age_days=90)
    )
    assert result["decision"] == "retrain"
    assert [r.split(":")[0] for r in result["reasons"]] == ["new data", "drift", "age"]


def test_no_trigger_fired_names_the_champion_and_what_was_checked():
    result = _decide(RetrainPolicy(on_new_data=True))
    assert result == {
        "decision": "skip",
        "reasons": [],
        "skipped_because": "no trigger fired for champion v3: new data, drift (stable), "
        "age <= 30 days",
    }
    nothing = RetrainPolicy(on_drift=False, max_age_days=None)
    assert _decide(nothing)["skipped_because"] == (
        "no trigger fired for champion v3: no trigger enabled"
    )


def test_render_markdown_shows_the_decision_and_reasons():
    text = trigger.render_markdown(
        {**_decide(drift_decision="drift"), "training_key": "k" * 64}, drift_summary="drift: x"
    )
    assert text.startswith("# Retrain trigger: RETRAIN\n")
    assert "- drift: check_drift over threshold" in text
    assert "Drift check: drift: x" in text and f"`{'k' * 64}`" in text


# ----------------------------------------------------------------------------------- the policy


def test_retrain_policy_accepts_a_weekly_cron():
    assert RetrainPolicy(schedule="0 2 * * 0").schedule == "0 2 * * 0"
    assert RetrainPolicy(schedule="  0  2 * *   0 ").schedule == "0 2 * * 0"
    assert RetrainPolicy().schedule is None


@pytest.mark.parametrize("cron", ["0 2 * *", "61 * * * *", "0 2 * * 0 2026", "@weekly"])
def test_retrain_policy_rejects_bad_cron_naming_the_value(cron):
    escaped = cron.replace("*", r"\*")
    with pytest.raises(
        BadInputError, match=rf"retrain: schedule: .*'{escaped}' is not a 5-field cron"
    ):
        model_from_data(RetrainPolicy, {"schedule": cron}, "retrain")


def test_retrain_policy_rejects_max_age_zero():
    with pytest.raises(
        BadInputError, match=r"retrain: max_age_days: .*greater than or equal to 1 \(got 0\)"
    ):
        model_from_data(RetrainPolicy, {"max_age_days": 0}, "retrain")


def test_retrain_policy_rejects_unknown_keys_and_bad_drift_policy():
    with pytest.raises(BadInputError, match=r"retrain: on_drfit: Extra inputs are not permitted"):
        model_from_data(RetrainPolicy, {"on_drfit": True}, "retrain")
    with pytest.raises(BadInputError, match=r"retrain: drift.min_rows: .*greater than or equal"):
        model_from_data(RetrainPolicy, {"drift": {"min_rows": 0}}, "retrain")


# ------------------------------------------------------------------------ against the registry


@pytest.fixture
def batch(tmp_path) -> str:
    return str(write_table(generate(300, seed=5, as_of=AS_OF), tmp_path / "batch.parquet"))


def _tag(uri: str, version: str, key: str) -> None:
    ModelRegistry(uri).client.set_model_version_tag("fraud", version, TRAINING_KEY_TAG, key)


def test_find_unchanged_returns_the_tagged_version(registry_uri):
    key = _key()
    _tag(registry_uri, "1", key)
    registry = ModelRegistry(registry_uri)
    match = trigger.find_unchanged(registry, "fraud", key)
    assert match is not None
    assert match["kind"] == "version"
    assert match["version"] == "1"
    assert match["status"] == "approved"
    assert match["run_id"] == registry.get("fraud", "1")["run_id"]
    assert trigger.find_unchanged(registry, "fraud", _key(git_commit="other")) is None
    assert trigger.find_unchanged(registry, "no-such-model", key) is None


def test_find_unchanged_falls_back_to_a_finished_run(registry_uri):
    """A rejected run is never registered: its run tags are what says it already ran."""
    registry = ModelRegistry(registry_uri)
    client = registry.client
    experiment = client.get_experiment_by_name("rollout").experiment_id
    key = _key(training=json.dumps({"estimator": "x", "seed": 1}))
    running = client.create_run(experiment).info.run_id
    client.set_tag(running, TRAINING_KEY_TAG, key)
    assert trigger.find_unchanged(registry, "fraud", key) is None  # not finished: no match
    rejected = client.create_run(experiment).info.run_id
    client.set_tag(rejected, TRAINING_KEY_TAG, key)
    client.set_tag(rejected, "gate.verdict", "reject")  # as the quality gate tags it
    client.set_terminated(rejected, "FINISHED")
    match = trigger.find_unchanged(registry, "fraud", key)
    assert match == {"kind": "run", "run_id": rejected, "status": "reject"}
    assert "gate verdict reject, not registered" in trigger.describe(match, "fraud")

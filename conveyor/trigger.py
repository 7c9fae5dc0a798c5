"""Retrain triggers: should this batch start a training run, and is one already done?

A training key fingerprints everything a run depends on (the batch's sha256, the code version
and commit, the contract, feature, training and evaluation config, the gate policy; the seeds
live in the config). When an earlier run has the same key, training is skipped and the
message names the version (or run) that already holds the result. Otherwise the policy's
triggers decide: no champion yet, new data, drift, or a champion older than max_age_days.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from conveyor import __version__, progress
from conveyor.config import PipelineConfig, RetrainPolicy, one_line_json
from conveyor.registry import TRAINING_KEY_TAG, UNVERIFIED_TAG

__all__ = [
    "decide",
    "describe",
    "find_unchanged",
    "key_inputs",
    "pipeline_inputs",
    "render_markdown",
    "training_key",
]


RETRAIN, SKIP = "retrain", "skip"


def training_key(
    data_sha256: str,
    *,
    contract: str,
    features: str,
    training: str,
    evaluation: str,
    policy: str,
    git_commit: str = "",
    code_version: str = __version__,
) -> str:
    """sha256 over the run's inputs. Config values are the pipeline's JSON parameter strings,
    re-serialised with sorted keys so formatting differences do not change the key."""

    def canonical(text: str) -> Any:
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError:
            return text  # YAML text: hashed as written

    doc = {
        "data.sha256": data_sha256,
        "code": code_version,
        "git.commit": git_commit or "unknown",
        "contract": canonical(contract),
        "features": canonical(features),
        "training": canonical(training),
        "evaluation": canonical(evaluation),
        "policy": canonical(policy),
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def pipeline_inputs(config: PipelineConfig) -> dict[str, str]:
    """The config as the pipeline's string parameters (one-line JSON). The training key of an
    unchanged re-run is computed from exactly these strings (conveyor.trigger.training_key)."""
    from conveyor.contracts import load_contract
    from conveyor.gate import load_policy
    from conveyor.golden import component_inputs

    contract_path = config.resolve(config.contract)
    assert contract_path is not None
    contract = load_contract(contract_path).model_dump(mode="json", exclude_defaults=True)
    policy_path = config.resolve(config.gate_policy)
    # No policy file means an empty policy, which the gate holds (fails closed).
    policy = one_line_json(load_policy(policy_path).model_dump(mode="json")) if policy_path else ""
    evaluation = component_inputs(config.evaluation, config.resolve(config.evaluation.golden_set))
    return {
        "contract": one_line_json(contract),
        "features": json.dumps(config.features.model_dump(mode="json"), sort_keys=True),
        "training": json.dumps(config.training.model_dump(mode="json"), sort_keys=True),
        "evaluation": evaluation["evaluation_spec"],
        "golden_set": evaluation["golden_set"],
        "golden_set_version": evaluation["golden_set_version"],
        "policy": policy,
    }


def key_inputs(inputs: dict[str, str]) -> dict[str, str]:
    """The parts of ``pipeline_inputs`` a training key covers (the golden set's rows count as
    evaluation config)."""
    return {
        "contract": inputs["contract"],
        "features": inputs["features"],
        "training": inputs["training"],
        "evaluation": inputs["evaluation"] + inputs["golden_set"],
        "policy": inputs["policy"],
    }


def find_unchanged(registry: Any, model_name: str, key: str) -> dict[str, Any] | None:
    """The registered version, or else the finished training run, with this training key.
    A version stopped before its smoke test (``UNVERIFIED_TAG``) is no match, nor its run:
    the same inputs train again rather than skip onto a model nothing has checked."""
    if not key:
        return None
    # The versions with this key, read straight from a sqlite store's file when it is one
    # (milliseconds, no MLflow import: the answer of every unchanged re-run); else all of them.
    tagged = getattr(registry, "versions_tagged", None)
    rows = tagged(model_name, TRAINING_KEY_TAG, key) if tagged is not None else None
    unverified: set[str] = set()
    for v in registry.versions(model_name) if rows is None else rows:
        if v["tags"].get(TRAINING_KEY_TAG) == key and v["tags"].get(UNVERIFIED_TAG) == "true":
            unverified.add(v["run_id"])
            progress.note(
                f"{model_name} v{v['version']} had these inputs but was stopped before its "
                "smoke test, so it was never verified: training again"
            )
        elif v["tags"].get(TRAINING_KEY_TAG) == key:
            status = v["status"] or "registered"
            return {"kind": "version", "version": v["version"], "run_id": v["run_id"],
                    "status": status, "aliases": v["aliases"]}  # fmt: skip
    runs = registry.client.search_runs(
        experiment_ids=[e.experiment_id for e in registry.client.search_experiments()],
        filter_string=f"tags.`{TRAINING_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
        max_results=len(unverified) + 1,
    )
    runs = [r for r in runs if r.info.run_id not in unverified]
    if runs:
        verdict = runs[0].data.tags.get("gate.verdict", "no verdict")
        return {"kind": "run", "run_id": runs[0].info.run_id, "status": verdict}
    return None


def describe(match: dict[str, Any], model_name: str) -> str:
    if match["kind"] == "version":
        aliases = f", aliases {', '.join(match['aliases'])}" if match["aliases"] else ""
        return f"{model_name} v{match['version']} ({match['status']}{aliases})"
    return f"MLflow run {match['run_id']} (gate verdict {match['status']}, not registered)"


def decide(
    policy: RetrainPolicy,
    *,
    data_sha256: str,
    champion: dict[str, Any] | None,
    unchanged: dict[str, Any] | None,
    model_name: str,
    drift_decision: str = "",
    now: datetime | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Retrain or skip, with every reason that fired (or why none did)."""
    if force:
        return {"decision": RETRAIN, "reasons": ["forced"], "skipped_because": ""}
    if policy.skip_if_unchanged and unchanged is not None:
        why = (
            f"unchanged inputs: data, code, config and seed match {describe(unchanged, model_name)}"
            "; nothing to retrain (force to train anyway)"
        )
        return {"decision": SKIP, "reasons": [], "skipped_because": why, "unchanged": unchanged}
    reasons = []
    if champion is None:
        reasons.append(f"no champion: {model_name} has no version with alias champion")
    else:
        if policy.on_new_data and champion["tags"].get("data.sha256") != data_sha256:
            reasons.append(
                f"new data: batch sha256 {data_sha256[:12]} differs from champion "
                f"v{champion['version']}'s {champion['tags'].get('data.sha256', '?')[:12]}"
            )
        if policy.on_drift and drift_decision == "drift":
            reasons.append("drift: check_drift over threshold against the champion's profile")
        if policy.max_age_days is not None:
            age = _age_days(champion, now or datetime.now(UTC))
            if age is not None and age > policy.max_age_days:
                reasons.append(
                    f"age: champion v{champion['version']} is {age:.1f} days old "
                    f"> max_age_days {policy.max_age_days}"
                )
    if reasons or champion is None:
        return {"decision": RETRAIN, "reasons": reasons, "skipped_because": ""}
    fired = [
        "new data" if policy.on_new_data else "",
        f"drift ({drift_decision or 'not checked'})" if policy.on_drift else "",
        f"age <= {policy.max_age_days} days" if policy.max_age_days else "",
    ]
    checked = ", ".join(x for x in fired if x) or "no trigger enabled"
    return {
        "decision": SKIP,
        "reasons": [],
        "skipped_because": f"no trigger fired for champion v{champion['version']}: {checked}",
    }


def _age_days(version: dict[str, Any], now: datetime) -> float | None:
    created = version.get("created")
    if not created:
        return None
    then = datetime.fromtimestamp(int(created) / 1000, UTC)
    return (now - then).total_seconds() / 86400


def render_markdown(result: dict[str, Any], drift_summary: str = "") -> str:
    lines = [f"# Retrain trigger: {result['decision'].upper()}", ""]
    if result["decision"] == RETRAIN:
        lines += [f"- {r}" for r in result["reasons"]]
    else:
        lines.append(result["skipped_because"])
    if drift_summary:
        lines += ["", f"Drift check: {drift_summary}"]
    if result.get("training_key"):
        lines += ["", f"Training key: `{result['training_key']}`"]
    return "\n".join(lines) + "\n"

"""The ``rollout`` pipeline: an approved version reaches traffic one step at a time.

canary / bluegreen: deploy the version beside the champion at 0 % and wait until its
revision is ready -> smoke test that revision (its ``latest`` tag URL) -> on pass, with a
``prometheus_url``, the first step then ``analyse_rollout`` (online checks each interval: step
up, promote, hold or roll back on its own); without one, walk the plan's steps and promote
(output ``promoted``); bluegreen switches 100 % in one step and leaves
``canaryTrafficPercent: 100`` in place, so the old revision stays rolled out for an instant
rollback until the analysis (with ``prometheus_url``) or a person promotes. On a failed smoke
test the canary is rolled back (output ``rolled_back``): traffic never left the champion.
shadow: ``<name>-shadow`` plus a mirroring VirtualService -> smoke test the shadow -> on fail
the shadow is removed (``rolled_back``); on pass, with a ``prometheus_url``, ``analyse_rollout``
judges the shadow's answers to the mirrored requests against the champion's: a failing shadow
is removed and rejected, a passing one becomes a canary at the plan's first step
(``after_shadow: canary``) and the same task walks it to promotion or rollback, or it holds
for a person (``after_shadow: hold``); without one it keeps shadowing.

Training and rollout are separate pipelines on purpose: a finished training run never becomes
production traffic by accident.
"""

import json
from pathlib import Path

from kfp import dsl

from conveyor.components.analyse_rollout.component import analyse_rollout
from conveyor.components.deploy_canary.component import deploy_canary
from conveyor.components.deploy_shadow.component import deploy_shadow
from conveyor.components.finalize_rollout.component import finalize_rollout
from conveyor.components.promote.component import promote
from conveyor.components.rollback.component import rollback
from conveyor.components.smoke_test.component import smoke_test
from conveyor.config import one_line_json
from conveyor.pipelines.platform import configure
from conveyor.rollout.plan import RolloutPlan


def example_rows(golden_set: str | Path | None, limit: int = 20) -> list[dict]:
    """Up to ``limit`` rows of the golden set (feature columns are picked by the smoke test)."""
    if golden_set is None:
        return []
    from conveyor.tables import read_table

    frame = read_table(golden_set).head(limit)
    return json.loads(frame.to_json(orient="records"))


def build_pipeline(
    plan: RolloutPlan,
    model_name: str,
    inference_service: str,
    examples: list[dict],
    tracking_uri: str = "",
    namespace: str = "",
    prometheus_url: str = "",
):  # -> a kfp GraphComponent
    """Compose the rollout pipeline with ``plan`` baked in (steps unrolled at compile time)."""
    examples_json = one_line_json(examples)
    smoke_json = one_line_json(plan.smoke.model_dump(mode="json"))
    resources_json = one_line_json(plan.resources.model_dump(mode="json"))
    plan_json = one_line_json(plan.model_dump(mode="json"))
    steps = list(plan.steps)
    score_log_default = plan.score_log_url or ""

    @dsl.pipeline(
        name=f"{inference_service}-rollout",
        description=f"Conveyor rollout of {model_name} on InferenceService {inference_service}: "
        "deploy at 0 %, smoke test, step through the plan, promote or roll back.",
    )
    def rollout_pipeline(
        version: str,
        strategy: str = plan.strategy,
        model_name: str = model_name,
        inference_service: str = inference_service,
        namespace: str = namespace,
        mlflow_tracking_uri: str = tracking_uri,
        smoke_endpoint: str = "",
        examples: str = examples_json,
        smoke_policy: str = smoke_json,
        resources: str = resources_json,
        shadow_percent: float = plan.shadow_percent,
        require_approval: bool = plan.require_approval,
        reason: str = "",
        prometheus_url: str = prometheus_url,
        plan: str = plan_json,
        score_log_url: str = score_log_default,
        runtime: str = plan.runtime,
    ):
        where = {
            "inference_service": inference_service,
            "model_name": model_name,
            "namespace": namespace,
            "mlflow_tracking_uri": mlflow_tracking_uri,
        }
        deploy = {**where, "version": version, "require_approval": require_approval,
                  "reason": reason, "score_log_url": score_log_url,
                  "runtime": runtime}  # fmt: skip
        smoke = {**where, "version": version, "examples": examples, "endpoint": smoke_endpoint,
                 "policy": smoke_policy}  # fmt: skip
        settle = {**where, "reason": reason}
        analysis = {**where, "plan": plan, "prometheus_url": prometheus_url}
        analysis.pop("model_name")

        # A task that fails mid-rollout (crash, timeout, API error) must not leave a canary
        # holding traffic: the exit handler runs whatever happened and undoes it.
        guard = configure(finalize_rollout(**where))
        guard.set_display_name("on failure: traffic back on the champion")
        with dsl.ExitHandler(guard, name="rollout"):
            with dsl.If(strategy == "shadow", name="strategy shadow"):
                shadow = configure(deploy_shadow(**deploy, percent=shadow_percent))
                shadow.set_display_name("deploy shadow")
                checked = configure(smoke_test(**smoke, target="shadow")).after(shadow)
                checked.set_display_name("smoke test shadow")
                with dsl.If(checked.outputs["Output"] == "failed", name="shadow smoke failed"):
                    configure(rollback(**settle)).set_display_name("remove shadow")
                with (
                    dsl.If(checked.outputs["Output"] == "passed", name="shadow smoke passed"),
                    dsl.If(prometheus_url != "", name="analysed shadow"),
                ):
                    analysed = configure(analyse_rollout(**analysis)).after(checked)
                    analysed.set_display_name("analyse shadow, then canary steps")

            with dsl.If(strategy != "shadow", name="strategy canary or bluegreen"):
                staged = configure(deploy_canary(**deploy, percent=0, resources=resources))
                staged.set_display_name("deploy at 0 %")
                checked = configure(smoke_test(**smoke, target="candidate")).after(staged)
                checked.set_display_name("smoke test candidate")
                with dsl.If(checked.outputs["Output"] == "passed", name="smoke passed"):
                    with dsl.If(strategy == "canary", name="canary"):
                        with dsl.If(prometheus_url != "", name="analysed steps"):
                            first = configure(
                                deploy_canary(**deploy, percent=steps[0], resources=resources)
                            )
                            first.set_display_name(f"canary {steps[0]} %")
                            analysed = configure(analyse_rollout(**analysis)).after(first)
                            analysed.set_display_name("analyse: step up, promote or roll back")
                        with dsl.If(prometheus_url == "", name="steps without analysis"):
                            previous = None
                            for percent in steps:
                                step = configure(
                                    deploy_canary(**deploy, percent=percent, resources=resources)
                                )
                                step.set_display_name(f"canary {percent} %")
                                if previous is not None:
                                    step.after(previous)
                                previous = step
                            configure(promote(**settle)).after(previous).set_display_name("promote")
                    with dsl.If(strategy == "bluegreen", name="bluegreen switch"):
                        switch = configure(
                            deploy_canary(**deploy, percent=100, resources=resources)
                        )
                        switch.set_display_name("switch 100 %")
                        # The old revision stays rolled out: a failing check rolls back instantly.
                        with dsl.If(prometheus_url != "", name="analysed switch"):
                            analysed = configure(analyse_rollout(**analysis)).after(switch)
                            analysed.set_display_name("analyse: promote or roll back")
                with dsl.If(checked.outputs["Output"] == "failed", name="smoke failed"):
                    configure(rollback(**settle)).set_display_name("roll back")

    return rollout_pipeline

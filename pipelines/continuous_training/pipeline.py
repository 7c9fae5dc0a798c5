"""The ``continuous_training`` pipeline: trigger check, then training, then (optionally) rollout.

import batch -> check_trigger (skip an unchanged re-run; else no champion, new data, drift of
the batch against the champion's logged profile (the champion scores it) or a champion older
than max_age_days; the drift check runs only when its answer can matter) -> under
``dsl.If(retrain)`` the ``training`` pipeline (tagged with the training key) -> when the
config names a rollout plan and the gate approved, the ``rollout`` pipeline for the new
``candidate``.

Scheduled with ``conveyor schedule`` (a KFP recurring run, max concurrency 1, no catch-up),
this is the retraining loop: most runs end after the trigger check, one small task.
"""

import json

from kfp import dsl

from conveyor.components.check_trigger.component import check_trigger
from conveyor.config import PipelineConfig
from conveyor.pipelines.platform import configure
from conveyor.pipelines.training.pipeline import build_pipeline as build_training
from conveyor.rollout.plan import RolloutPlan
from conveyor.trigger import key_inputs, pipeline_inputs


def build_pipeline(
    config: PipelineConfig,
    plan: RolloutPlan | None = None,
    data_uri: str = "",
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
    examples: list[dict] | None = None,
    namespace: str = "",
    prometheus_url: str = "",
):  # -> a kfp GraphComponent
    """Compose the continuous-training pipeline for ``config`` (and ``plan``, if given).

    Args:
        config: The pipeline config; its ``retrain`` block is the trigger policy.
        plan: The rollout plan; None leaves rollout to a person (or another pipeline).
        data_uri: Default batch location (given at submit time on a cluster).
        tracking_uri: MLflow tracking URI default; None uses the config's.
        artifact_root: MLflow artifact folder for a local store; None uses the config's.
        examples: Rows for the rollout's smoke test (the golden set).
        namespace: Default namespace of the rollout (empty: the pipeline pod's own).
        prometheus_url: Default Prometheus for the rollout's analysis (empty: no analysis).
    """
    training = build_training(
        config, data_uri=data_uri, tracking_uri=tracking_uri, artifact_root=artifact_root
    )
    keyed = key_inputs(pipeline_inputs(config))
    retrain_json = json.dumps(config.retrain.model_dump(mode="json"), sort_keys=True)
    default_uri = config.tracking.uri if tracking_uri is None else tracking_uri
    default_root = config.tracking.artifact_root if artifact_root is None else artifact_root
    rollout = None
    if plan is not None:
        from conveyor.pipelines.rollout.pipeline import build_pipeline as build_rollout

        rollout = build_rollout(plan, config.model_name, config.name, examples or [])

    @dsl.pipeline(
        name=f"{config.name}-continuous-training",
        description=f"Conveyor continuous training for {config.name}: drift and trigger check, "
        "then train, evaluate, gate and register only when a trigger fired and the inputs "
        "changed" + (", then roll the approved candidate out." if rollout else "."),
    )
    def continuous_training(
        data_uri: str = data_uri,
        retrain_policy: str = retrain_json,
        force: bool = False,
        model_name: str = config.model_name,
        git_commit: str = "",
        mlflow_tracking_uri: str = default_uri,
        mlflow_experiment: str = config.tracking.experiment,
        mlflow_artifact_root: str = default_root,
        namespace: str = namespace,
        prometheus_url: str = prometheus_url,
    ) -> str:
        batch = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=True)
        batch.set_display_name("import batch")
        trigger = configure(
            check_trigger(
                batch=batch.output,
                policy=retrain_policy,
                model_name=model_name,
                contract=keyed["contract"],
                features=keyed["features"],
                training=keyed["training"],
                evaluation=keyed["evaluation"],
                gate_policy=keyed["policy"],
                git_commit=git_commit,
                force=force,
                mlflow_tracking_uri=mlflow_tracking_uri,
            )
        ).set_display_name("check trigger")
        with dsl.If(trigger.outputs["Output"] == "retrain", name="retrain"):
            trained = training(
                data_uri=data_uri,
                model_name=model_name,
                git_commit=git_commit,
                mlflow_tracking_uri=mlflow_tracking_uri,
                mlflow_experiment=mlflow_experiment,
                mlflow_artifact_root=mlflow_artifact_root,
                training_key=trigger.outputs["training_key"],
            ).set_display_name("training")
            if rollout is not None:
                with dsl.If(trained.output == "approve", name="approved"):
                    rollout(
                        version="candidate",
                        model_name=model_name,
                        namespace=namespace,
                        mlflow_tracking_uri=mlflow_tracking_uri,
                        prometheus_url=prometheus_url,
                        reason="continuous training: approved candidate",
                    ).set_display_name("rollout")
        return trigger.outputs["Output"]

    return continuous_training

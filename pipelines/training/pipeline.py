"""The ``training`` pipeline: validate -> prepare -> train -> evaluate -> gate -> register.

Registration runs only under ``dsl.If`` on the gate's verdict (approve: alias ``candidate``;
hold: registered as held, not deployable); a rejected model never reaches the registry, and
no step here moves ``champion``: training and deployment stay separate on purpose.

``build_pipeline(config)`` is a factory: a platform team templates one pipeline per team from
a config file; every config value becomes a pipeline parameter default, so a compiled
``pipeline.yaml`` can still be run with other data, contract or tracking server.
"""

from kfp import dsl

from conveyor.components.evaluate.component import evaluate
from conveyor.components.prepare_features.component import prepare_features
from conveyor.components.quality_gate.component import quality_gate
from conveyor.components.register_model.component import register_model
from conveyor.components.train.component import train
from conveyor.components.validate_data.component import validate_data
from conveyor.config import PipelineConfig
from conveyor.pipelines.platform import configure
from conveyor.trigger import pipeline_inputs


def build_pipeline(
    config: PipelineConfig,
    data_uri: str = "",
    reference_profile_uri: str = "",
    tracking_uri: str | None = None,
    artifact_root: str | None = None,
):  # -> a kfp GraphComponent (kfp ships no public type for it)
    """Compose the training pipeline with ``config`` baked in as parameter defaults.

    Args:
        config: The pipeline config (examples/fraud/pipeline.yaml).
        data_uri: Default batch location, imported as a Dataset (a local path for kfp.local;
            s3://, gs://, minio:// on a cluster, downloaded by the KFP launcher).
        reference_profile_uri: Reference profile for drift checks. When given, the pipeline
            imports it (overridable at submit time); when empty, drift checks are left out.
        tracking_uri: MLflow tracking URI default; None uses the config's.
        artifact_root: MLflow artifact folder for a local store; None uses the config's.
    """
    inputs = pipeline_inputs(config)
    default_uri = config.tracking.uri if tracking_uri is None else tracking_uri
    default_root = config.tracking.artifact_root if artifact_root is None else artifact_root
    with_reference = bool(reference_profile_uri)

    @dsl.pipeline(
        name=f"{config.name}-training",
        description=f"Conveyor training line for {config.name}: validate, prepare, train, "
        "evaluate, gate, register. Nothing runs past a failed data contract; only an approved "
        "(or held) model is registered.",
    )
    def training_pipeline(
        data_uri: str = data_uri,
        contract: str = inputs["contract"],
        reference_profile_uri: str = reference_profile_uri,
        features: str = inputs["features"],
        training: str = inputs["training"],
        evaluation: str = inputs["evaluation"],
        golden_set: str = inputs["golden_set"],
        golden_set_version: str = inputs["golden_set_version"],
        policy: str = inputs["policy"],
        model_name: str = config.model_name,
        git_commit: str = "",
        mlflow_tracking_uri: str = default_uri,
        mlflow_experiment: str = config.tracking.experiment,
        mlflow_artifact_root: str = default_root,
        training_key: str = "",
    ) -> str:
        batch = dsl.importer(artifact_uri=data_uri, artifact_class=dsl.Dataset, reimport=True)
        batch.set_display_name("import batch")
        if with_reference:
            reference = dsl.importer(
                artifact_uri=reference_profile_uri, artifact_class=dsl.Artifact, reimport=True
            )
            reference.set_display_name("import reference profile")
            validated = configure(
                validate_data(
                    batch=batch.output, contract=contract, reference_profile=reference.output
                )
            )
        else:
            validated = configure(validate_data(batch=batch.output, contract=contract))
        validated.set_display_name("validate data")
        # The same tracking settings for every stage that talks to MLflow.
        mlflow = {
            "mlflow_tracking_uri": mlflow_tracking_uri,
            "mlflow_experiment": mlflow_experiment,
            "mlflow_artifact_root": mlflow_artifact_root,
        }
        prepared = configure(
            prepare_features(
                dataset=validated.outputs["dataset"], features=features, contract=contract
            )
        ).set_display_name("prepare features")
        trained = configure(
            train(
                train=prepared.outputs["train"],
                validation=prepared.outputs["validation"],
                preprocessing=prepared.outputs["preprocessing"],
                training=training,
                **mlflow,
                data_sha256=validated.outputs["data_sha256"],
                threshold=config.evaluation.threshold,
                training_key=training_key,
            )
        ).set_display_name("train")
        evaluated = configure(
            evaluate(
                model=trained.outputs["model"],
                holdout=prepared.outputs["holdout"],
                evaluation_spec=evaluation,
                golden_set=golden_set,
                golden_set_version=golden_set_version,
                registered_model_name=model_name,
                **mlflow,
                mlflow_run_id=trained.outputs["run_id"],
            )
        ).set_display_name("evaluate")
        gated = configure(
            quality_gate(
                evaluation=evaluated.outputs["evaluation"],
                policy=policy,
                **mlflow,
                mlflow_run_id=trained.outputs["run_id"],
            )
        ).set_display_name("quality gate")
        verdict = gated.outputs["Output"]
        for outcome in ("approve", "hold"):
            with dsl.If(verdict == outcome, name=f"verdict {outcome}"):
                configure(
                    register_model(
                        model_name=model_name,
                        mlflow_run_id=trained.outputs["run_id"],
                        gate=gated.outputs["gate"],
                        evaluation=evaluated.outputs["evaluation"],
                        mlflow_tracking_uri=mlflow_tracking_uri,
                        git_commit=git_commit,
                    )
                ).set_display_name(f"register ({outcome})")
        return verdict

    return training_pipeline

"""KFP component: register the model in MLflow per the gate verdict.

Logic: ``conveyor.stages.register_model``."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input

from conveyor import COMPONENT_IMAGE


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def register_model(
    model_name: str,
    mlflow_run_id: str,
    gate: Input[Artifact],
    evaluation: Input[Artifact],
    mlflow_tracking_uri: str = "",
    git_commit: str = "",
) -> NamedTuple("RegisterOutputs", [("version", str), ("status", str)]):  # type: ignore[valid-type]
    """Register the training run's model as a new version with its full lineage.

    On approve the version gets alias ``candidate``; on hold it is registered with no alias and
    tagged held (not deployable) until ``conveyor models approve``; on reject nothing is
    registered. ``champion`` is never moved here. A retried task reuses the run's version.

    Args:
        model_name: Registered model name in MLflow.
        mlflow_run_id: The training run (output of train).
        gate: gate.json from quality_gate (its verdict decides what happens).
        evaluation: evaluation.json from evaluate (headline metrics become version tags).
        mlflow_tracking_uri: MLflow tracking URI; empty uses MLFLOW_TRACKING_URI.
        git_commit: Commit of the code that trained the model, recorded as a tag.

    Returns:
        version: The registered version ("" when nothing was registered).
        status: ``approved``, ``held`` or ``not registered``.
    """
    from collections import namedtuple

    from conveyor.stages.register_model import run

    result = run(
        model_name, mlflow_run_id, gate.path, evaluation.path, mlflow_tracking_uri, git_commit
    )
    outputs = namedtuple("RegisterOutputs", ["version", "status"])
    return outputs(result.version, result.status)

"""Run a pipeline on the embedded default: kfp.local SubprocessRunner in this environment.

Lives beside the pipelines (not in the engine) because it drives kfp; ``conveyor run`` and
``conveyor retrain`` call it.
"""

import glob
import os
from pathlib import Path
from typing import Any

from kfp import local

from conveyor.config import PipelineConfig
from conveyor.errors import ConveyorError


class PipelineFailedError(ConveyorError):
    """A task of the local pipeline failed; its own error was printed in the task log above."""


def _init(pipeline_root: Path) -> None:
    pipeline_root.mkdir(parents=True, exist_ok=True)
    # use_venv=False: tasks run with this interpreter, where conveyor is installed, as the
    # component image does on a cluster (install_kfp_package=False, nothing fetched).
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )


def _run(pipeline: Any, pipeline_root: Path, **arguments: Any) -> tuple[Any, Path]:
    before = set(os.listdir(pipeline_root))
    try:
        task = pipeline(**arguments)
    except RuntimeError as exc:
        run_dir = _new_run_dir(pipeline_root, before)
        raise PipelineFailedError(f"pipeline failed: {exc} (outputs under {run_dir})") from exc
    run_dir = _new_run_dir(pipeline_root, before)
    assert run_dir is not None
    return task, run_dir


def run_training(
    config: PipelineConfig,
    data_uri: str,
    reference_profile_uri: str,
    pipeline_root: Path,
    tracking_uri: str,
    artifact_root: str,
    **arguments: Any,
) -> dict[str, Any]:
    """Run the training pipeline locally; returns the run id, verdict and the run folder."""
    from conveyor.pipelines.training.pipeline import build_pipeline

    _init(pipeline_root)
    pipeline = build_pipeline(
        config,
        data_uri=data_uri,
        reference_profile_uri=reference_profile_uri,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
    )
    task, run_dir = _run(pipeline, pipeline_root, **arguments)
    run_id = task_parameter(run_dir, "train", "run_id")
    if run_id is None:
        raise PipelineFailedError(f"pipeline finished without a train run id (under {run_dir})")
    return {"run_id": run_id, "verdict": task.output, "run_dir": run_dir}


def run_continuous(
    config: PipelineConfig,
    data_uri: str,
    pipeline_root: Path,
    tracking_uri: str,
    artifact_root: str,
    **arguments: Any,
) -> dict[str, Any]:
    """Run the continuous_training pipeline locally (no rollout: no cluster here).

    Returns the trigger decision, the run folder and, when it retrained, the train run id."""
    from conveyor.pipelines.continuous_training.pipeline import build_pipeline

    _init(pipeline_root)
    pipeline = build_pipeline(
        config, data_uri=data_uri, tracking_uri=tracking_uri, artifact_root=artifact_root
    )
    task, run_dir = _run(pipeline, pipeline_root, **arguments)
    return {
        "decision": task.output,
        "run_dir": run_dir,
        "run_id": task_parameter(run_dir, "train", "run_id"),
    }


def _new_run_dir(root: Path, before: set[str]) -> Path | None:
    new = sorted(set(os.listdir(root)) - before)
    return root / new[-1] if new else None


def task_parameter(run_dir: Path, task: str, name: str) -> str | None:
    """Output parameter ``name`` of ``task`` in a local run folder (None if it did not run)."""
    import json

    path = run_dir / task / "executor_output.json"
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get("parameterValues", {}).get(name)
    return None if value is None else str(value)


def find_output(run_dir: Path, task: str, name: str) -> Path | None:
    """Path of output ``name`` of ``task`` in a local run folder (None if it was not made)."""
    hits = sorted(glob.glob(str(run_dir / task / name)))
    return Path(hits[0]) if hits else None

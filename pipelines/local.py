"""Run a pipeline on the embedded default: kfp.local SubprocessRunner in this environment.

Lives beside the pipelines (not in the engine) because it drives kfp; ``conveyor run`` and
``conveyor retrain`` call it.
"""

import glob
import tempfile
import time
from pathlib import Path
from typing import Any

from kfp import local

__all__ = ["PipelineFailedError", "find_output", "run_continuous", "run_training", "task_parameter"]

from conveyor.config import PipelineConfig
from conveyor.errors import PipelineFailedError


def _init(pipeline_root: Path) -> Path:
    """Point kfp.local at a folder of this run's own under ``pipeline_root``, and return it.

    Runs started together on one store (two ``conveyor run --force``) must never read each
    other's outputs: kfp.local names its run folder itself, so "the newest new folder" under a
    shared root may be the other run's. A folder made here (``mkdtemp``: unique, created
    atomically) holds exactly one run."""
    pipeline_root.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=pipeline_root))
    # use_venv=False: tasks run with this interpreter, where conveyor is installed, as the
    # component image does on a cluster (install_kfp_package=False, nothing fetched).
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(own),
        raise_on_error=True,
    )
    return own


def _run(pipeline: Any, own_root: Path, **arguments: Any) -> tuple[Any, Path]:
    try:
        task = pipeline(**arguments)
    except RuntimeError as exc:
        run_dir = _run_dir(own_root)
        raise PipelineFailedError(
            f"pipeline failed: {exc} (outputs under {run_dir or own_root})", run_dir
        ) from exc
    run_dir = _run_dir(own_root)
    if run_dir is None:
        raise PipelineFailedError(f"pipeline finished but wrote no run folder under {own_root}")
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

    own_root = _init(pipeline_root)
    pipeline = build_pipeline(
        config,
        data_uri=data_uri,
        reference_profile_uri=reference_profile_uri,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
    )
    task, run_dir = _run(pipeline, own_root, **arguments)
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

    own_root = _init(pipeline_root)
    pipeline = build_pipeline(
        config, data_uri=data_uri, tracking_uri=tracking_uri, artifact_root=artifact_root
    )
    task, run_dir = _run(pipeline, own_root, **arguments)
    return {
        "decision": task.output,
        "run_dir": run_dir,
        "run_id": task_parameter(run_dir, "train", "run_id"),
    }


def _run_dir(own_root: Path) -> Path | None:
    """The one run folder kfp.local made in this run's own root (None before it made one)."""
    made = sorted(p for p in own_root.iterdir() if p.is_dir())
    return made[0] if len(made) == 1 else None


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

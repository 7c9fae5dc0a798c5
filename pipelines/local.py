"""Run a pipeline on the embedded default: kfp.local SubprocessRunner in this environment.

Lives beside the pipelines (not in the engine) because it drives kfp; ``conveyor run`` calls it.
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


def run_training(
    config: PipelineConfig,
    data_uri: str,
    reference_profile_uri: str,
    pipeline_root: Path,
    tracking_uri: str,
    artifact_root: str,
    **arguments: Any,
) -> dict[str, Any]:
    """Run the training pipeline locally; returns the run id and where its outputs are."""
    from conveyor.pipelines.training.pipeline import build_pipeline

    pipeline_root.mkdir(parents=True, exist_ok=True)
    # use_venv=False: tasks run with this interpreter, where conveyor is installed, as the
    # component image does on a cluster (install_kfp_package=False, nothing fetched).
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    pipeline = build_pipeline(
        config,
        data_uri=data_uri,
        reference_profile_uri=reference_profile_uri,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
    )
    before = set(os.listdir(pipeline_root))
    try:
        task = pipeline(**arguments)
    except RuntimeError as exc:
        run_dir = _new_run_dir(pipeline_root, before)
        raise PipelineFailedError(f"pipeline failed: {exc} (outputs under {run_dir})") from exc
    run_dir = _new_run_dir(pipeline_root, before)
    return {"run_id": task.output, "run_dir": run_dir}


def _new_run_dir(root: Path, before: set[str]) -> Path | None:
    new = sorted(set(os.listdir(root)) - before)
    return root / new[-1] if new else None


def find_output(run_dir: Path, task: str, name: str) -> Path | None:
    """Path of output ``name`` of ``task`` in a local run folder (None if it was not made)."""
    hits = sorted(glob.glob(str(run_dir / task / name)))
    return Path(hits[0]) if hits else None

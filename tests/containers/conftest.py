"""Fixtures for the container tests (`make test-containers`, after `make images`): the engine,
and the compiled training pipeline run twice on the same batch, in process and in the image."""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kfp import components, local

from conveyor import COMPONENT_IMAGE, SERVING_IMAGE
from conveyor.containers import Engine, find_engine
from conveyor.pipelines.containers import ContainerOptions, run_compiled
from conveyor.pipelines.local import find_output
from conveyor.sample import generate
from conveyor.tables import write_table
from tests.conftest import ROOT

TRAINING_YAML = ROOT / "pipelines" / "training" / "pipeline.yaml"
INPUTS = "inputs"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine `make images` built with; both images must exist (never a skip: CI builds
    them first)."""
    eng = find_engine()
    missing = [tag for tag in (COMPONENT_IMAGE, SERVING_IMAGE) if not eng.image_exists(tag)]
    if missing:
        pytest.fail(f"images {missing} not built on {eng.name}: run `make images` first")
    return eng


@dataclass
class PipelineRun:
    run_dir: Path
    verdict: str
    model_dir: Path
    model_sha256: str
    options: ContainerOptions | None = None


def _only_run(root: Path) -> Path:
    (run_dir,) = [p for p in root.iterdir() if p.is_dir() and p.name != INPUTS]
    return run_dir


def _summary(root: Path, options: ContainerOptions | None = None) -> PipelineRun:
    run_dir = _only_run(root)
    gate = find_output(run_dir, "quality-gate", "gate")
    model = find_output(run_dir, "train", "model")
    assert gate is not None and model is not None, f"no gate or model under {run_dir}"
    verdict = json.loads(gate.read_text())["verdict"]
    digest = (model / "model.sha256").read_text().split()[0]
    return PipelineRun(run_dir, verdict, model, digest, options)


@pytest.fixture(scope="session")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 sample rows, world-readable (the tasks read it as uid 10001)."""
    folder = tmp_path_factory.mktemp("batch")
    folder.chmod(0o755)
    return write_table(generate(4000, seed=7), folder / "batch.parquet")


def _arguments(batch: Path, mlflow_server: str, name: str) -> dict[str, Any]:
    return {
        "data_uri": str(batch),
        "mlflow_tracking_uri": mlflow_server,
        "mlflow_experiment": name,
        "model_name": name,
    }


@pytest.fixture(scope="session")
def in_process_run(
    tmp_path_factory: pytest.TempPathFactory, batch: Path, mlflow_server: str
) -> PipelineRun:
    """The same compiled YAML on kfp.local's SubprocessRunner (this environment)."""
    root = tmp_path_factory.mktemp("in-process")
    local.init(
        runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root),
        raise_on_error=True,
    )  # fmt: skip
    components.load_component_from_file(str(TRAINING_YAML))(
        **_arguments(batch, mlflow_server, "containers-in-process")
    )
    return _summary(root)


@pytest.fixture(scope="session")
def container_run(
    tmp_path_factory: pytest.TempPathFactory, batch: Path, mlflow_server: str, engine: Engine
) -> PipelineRun:
    """The compiled YAML with every task in the component image (host network: MLflow)."""
    root = tmp_path_factory.mktemp("containers")
    # Only the pipeline root is mounted into a task, as on a cluster only the task's artifact
    # paths are: the batch is staged under it, readable by the images' user.
    inputs = root / INPUTS
    inputs.mkdir()
    shutil.copy(batch, inputs / batch.name)
    (inputs / batch.name).chmod(0o644)  # written 0600 (atomically, via a temp file)
    inputs.chmod(0o755)
    options = run_compiled(
        TRAINING_YAML,
        _arguments(inputs / batch.name, mlflow_server, "containers-image"),
        root,
        engine=engine,
        network="host",
    )
    return _summary(root, options)

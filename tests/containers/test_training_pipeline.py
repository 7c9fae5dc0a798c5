"""The compiled training pipeline, as users submit it, with every task inside the component
image: same verdict and the same model bytes as the in-process run, written by the non-root
user, and nothing written outside the task's output paths."""

import pytest
from kfp import compiler, dsl
from kfp.dsl import Artifact, Output

from conveyor import COMPONENT_IMAGE
from conveyor.containers import IMAGE_USER, Engine
from conveyor.errors import ConveyorError
from conveyor.pipelines.containers import run_compiled

pytestmark = pytest.mark.containers


def test_every_task_ran_in_the_component_image(container_run):
    assert container_run.options is not None
    log = container_run.options.log
    # validate, prepare, train, evaluate, gate, register: each a container of the one image
    assert len(log) == 6, log
    assert all(line == f"{COMPONENT_IMAGE} exit 0" for line in log), log


def test_outputs_equal_the_in_process_run(container_run, in_process_run):
    assert container_run.verdict == in_process_run.verdict
    assert container_run.model_sha256 == in_process_run.model_sha256
    assert sorted(p.name for p in container_run.model_dir.iterdir()) == sorted(
        p.name for p in in_process_run.model_dir.iterdir()
    )


def test_outputs_are_written_by_the_non_root_user(container_run):
    uid = int(IMAGE_USER.split(":")[0])
    written = [p for p in container_run.run_dir.rglob("*") if p.is_file()]
    assert written, "the run wrote nothing"
    # executor_output.json files are the orchestrator's (this process); the rest the task's
    task_files = [p for p in written if p.name != "executor_output.json"]
    owners = {p.stat().st_uid for p in task_files}
    assert owners == {uid}, {p: p.stat().st_uid for p in task_files if p.stat().st_uid != uid}


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def scribble(where: str, out: Output[Artifact]):
    """Writes one file at ``where`` and then its own output."""
    from pathlib import Path

    if where:
        Path(where).write_text("scratch")
    Path(out.path).write_text("done")


@dsl.pipeline(name="scribble")
def scribble_pipeline(where: str = ""):
    scribble(where=where)


@pytest.fixture(scope="module")
def scribble_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("scribble") / "pipeline.yaml"
    compiler.Compiler().compile(scribble_pipeline, str(path))
    return path


@pytest.mark.parametrize("where", ["", "/tmp/scratch.txt"])
def test_a_task_may_write_its_outputs_and_scratch(scribble_yaml, tmp_path, engine: Engine, where):
    options = run_compiled(scribble_yaml, {"where": where}, tmp_path / "root", engine=engine)
    assert options.log == [f"{COMPONENT_IMAGE} exit 0"]


@pytest.mark.parametrize("where", ["/home/conveyor/cache.txt", "/opt/conveyor/x.txt", "/x.txt"])
def test_a_task_writing_outside_its_output_paths_fails(
    scribble_yaml, tmp_path, engine: Engine, where
):
    with pytest.raises(ConveyorError, match="failed in containers"):
        run_compiled(scribble_yaml, {"where": where}, tmp_path / "root", engine=engine)

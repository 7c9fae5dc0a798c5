"""pipelines/local.py: each local run owns its kfp.local root, so runs started together on one
store never report each other's outputs (issue 17, item 1)."""

import pytest
from kfp import dsl

from conveyor.pipelines import local as runner

pytestmark = pytest.mark.integration


@dsl.component(install_kfp_package=False)
def meddle(shared_root: str, text: str) -> str:
    """Stands for a second run started meanwhile: a newer run folder appears in the root."""
    import os

    os.makedirs(os.path.join(shared_root, "zzzz-another-run", "validate-data"), exist_ok=True)
    return text


@dsl.pipeline
def tiny(shared_root: str, text: str) -> str:
    return meddle(shared_root=shared_root, text=text).output


def test_a_run_reports_its_own_folder_while_another_run_writes_beside_it(tmp_path) -> None:
    root = tmp_path / "pipeline_root"
    own_a = runner._init(root)
    task, run_dir = runner._run(tiny, own_a, shared_root=str(root), text="a")
    assert task.output == "a"
    assert run_dir.parent == own_a and (run_dir / "meddle").is_dir()
    own_b = runner._init(root)
    task_b, run_dir_b = runner._run(tiny, own_b, shared_root=str(root), text="b")
    assert own_b != own_a and run_dir_b.parent == own_b and task_b.output == "b"
    # the other run's folder is still there, newest by name, and was never picked
    assert (root / "zzzz-another-run").is_dir()
    assert sorted(p.name for p in root.iterdir())[-1] == "zzzz-another-run"

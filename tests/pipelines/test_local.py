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


class _Screen:
    """A terminal (or a pipe) that keeps what was written to it."""

    def __init__(self, tty: bool) -> None:
        self.tty, self.text = tty, ""

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass


KFP_LINES = """\
01:47:49.703 - INFO - Executing task 'prepare-features'
01:47:49.704 - INFO - Streamed logs:
    [KFP Executor 2026-12-06 01:47:49,756 INFO]: Looking for component `prepare_features`
    conveyor: progress: fitting hist_gradient_boosting on 3,500 rows x 16 inputs
    conveyor: note: features.key is not set: each row is identified by its position
    conveyor: warning: fairness across 'age': 40 of 600 rows (7%) are in 2 group(s)
01:47:51.703 - INFO - Task 'prepare-features' finished with status SUCCESS
--------------------------------------------------------------------------------
"""


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "terminal"])
def test_a_stage_says_notes_and_warnings_always_and_progress_only_on_a_terminal(
    tmp_path, tty
) -> None:
    screen = _Screen(tty)
    with (tmp_path / "run.log").open("w") as file:
        sink = runner.TaskLog(runner.Output(tmp_path / "run.log"), file, screen)  # type: ignore[arg-type]
        sink.write(KFP_LINES)
        sink.finish()
    lines = screen.text.replace("\r\x1b[K", "\n").splitlines()
    said = [x for x in lines if x.strip()]
    assert said[-1].split()[0] == "prepare-features" and said[-1].endswith("s")  # its result
    assert "prepare-features   note: features.key is not set" in screen.text
    assert "prepare-features   warning: fairness across 'age': 40 of 600 rows" in screen.text
    drawn = "prepare-features   fitting hist_gradient_boosting on 3,500 rows" in screen.text
    assert drawn is tty  # redrawn in place on a terminal, left out of a pipe
    if tty:
        assert screen.text.count("\r\x1b[K") == 2  # drawn, then erased before the next line
    assert "conveyor: progress: fitting" in (tmp_path / "run.log").read_text()  # all in the log

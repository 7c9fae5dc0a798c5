"""Run a pipeline on the embedded default: kfp.local SubprocessRunner in this environment.

Lives beside the pipelines (not in the engine) because it drives kfp; ``conveyor run`` and
``conveyor retrain`` call it.
"""

import contextlib
import glob
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kfp import local

__all__ = [
    "Output",
    "PipelineFailedError",
    "TaskLog",
    "find_output",
    "run_continuous",
    "run_training",
    "task_parameter",
]

from conveyor import errors, progress
from conveyor.config import PipelineConfig
from conveyor.errors import PipelineFailedError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STARTED = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (\w+)")
OUTPUT = re.compile(r"^ {4}(\w+): (.+)$")  # one output parameter in kfp's "outputs:" block
RAISED = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit|Interrupt)): (.+)$")
HASH = re.compile(r"^'?[0-9a-f]{32,64}'?$")


@dataclass(frozen=True)
class Output:
    """Where a local run's chatter goes: the log file always (no ANSI codes); the terminal
    gets one line per task, and with ``verbose`` kfp's raw log as well."""

    log: Path
    verbose: bool = False


@dataclass
class TaskLog:
    """sys.stdout and sys.stderr while kfp.local runs a pipeline. kfp prints each task's
    streamed logs and its outputs; this keeps all of it in the log file and turns a task's
    start, outputs and end into one line (task, seconds, result), and remembers the error a
    failed task raised, so the command can end with it rather than kfp's ``Inner task
    failed``."""

    out: Output
    file: TextIO
    terminal: TextIO
    raised: dict[str, tuple[str, str]] = field(default_factory=dict)  # task -> (class, message)
    _partial: str = ""
    _task: str = ""
    _started: float = 0.0
    _finished: tuple[str, str, float] | None = None
    _results: list[str] = field(default_factory=list)
    _display: progress.Terminal = field(init=False)

    def __post_init__(self) -> None:
        self._display = progress.Terminal(self.terminal)

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        plain = ANSI.sub("", text)
        self.file.write(plain)
        if self.out.verbose:
            self.terminal.write(text if self.terminal.isatty() else plain)
        lines = (self._partial + plain).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.file.flush()
        self.terminal.flush()

    def _line(self, line: str) -> None:
        if (said := progress.LINE.match(line)) is not None and self._task:
            if not self.out.verbose:  # verbose shows the line as it is already
                self._display.label = f"{self._task:<18} "
                self._display(*said.groups())
        elif (started := STARTED.search(line)) is not None:
            self.close_task()
            self._task, self._started = started.group(1), time.monotonic()
        elif (finished := FINISHED.search(line)) is not None:
            self._finished = (finished.group(1), finished.group(2), time.monotonic())
        elif self._finished and (output := OUTPUT.match(line)) is not None:
            name, value = output.groups()
            value = value.strip()
            if len(value) <= 24 and not HASH.match(value) and "(" not in value:  # no artifacts
                value = value.strip("'")
                self._results.append(value if name == "Output" else f"{name} {value}")
        elif line.startswith("-" * 20) or "Pipeline '" in line:
            self.close_task()
        elif self._task and (raised := RAISED.match(line)) is not None:
            self.raised[self._task] = (raised.group(1), raised.group(2).strip())

    def close_task(self) -> None:
        """One progress line for the task that just finished (importers are not stages)."""
        if self._finished is None:
            return
        self._display.clear()
        task, status, ended = self._finished
        self._finished, self._task = None, ""
        results, self._results = ", ".join(self._results), []
        if task.startswith("importer"):
            return
        seconds = ended - self._started
        said = "" if status == "SUCCESS" else f"{status.lower()}  "
        self.terminal.write(f"      {task:<18} {seconds:6.1f}s  {said}{results}".rstrip() + "\n")
        self.terminal.flush()

    def finish(self) -> None:
        """The last line (kfp may end without a newline) and the last task's progress line."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        self.close_task()
        self.flush()

    def failure(self) -> tuple[str, str, str] | None:
        """(task, error class, message) of the task that failed, if it raised one."""
        return next(((task, *error) for task, error in self.raised.items()), None)


@contextlib.contextmanager
def _captured(out: Output | None) -> Iterator[TaskLog | None]:
    """kfp.local's prints and logging go to the log (kfp logs to sys.stdout as it is when a
    run starts, and prints task output through print())."""
    if out is None:
        yield None
        return
    out.log.parent.mkdir(parents=True, exist_ok=True)
    with out.log.open("a", encoding="utf-8") as file:
        sink = TaskLog(out, file, sys.stdout)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                yield sink
            finally:
                sink.finish()


def _error_class(name: str) -> type[errors.ConveyorError]:
    """The Conveyor error a task raised, by its class name (a task's exit code is always 1)."""
    found = getattr(errors, name, None)
    if isinstance(found, type) and issubclass(found, errors.ConveyorError):
        return found
    return PipelineFailedError


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


def _run(
    pipeline: Any, own_root: Path, output: Output | None = None, **arguments: Any
) -> tuple[Any, Path]:
    with _captured(output) as sink:
        try:
            task = pipeline(**arguments)
        except RuntimeError as exc:
            run_dir = _run_dir(own_root)
            failed = sink.failure() if sink else None
            if failed is None:
                raise PipelineFailedError(
                    f"pipeline failed: {exc} (outputs under {run_dir or own_root})", run_dir
                ) from exc
            task_name, error_class, message = failed  # the stage's own error and exit code
            raised = PipelineFailedError(f"{task_name}: {message}", run_dir)
            raised.exit_code = _error_class(error_class).exit_code
            raise raised from exc
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
    output: Output | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """Run the training pipeline locally; returns the run id, verdict and the run folder.
    With ``output`` kfp's log goes to its file and the terminal gets a line per task."""
    from conveyor.pipelines.training.pipeline import build_pipeline

    own_root = _init(pipeline_root)
    pipeline = build_pipeline(
        config,
        data_uri=data_uri,
        reference_profile_uri=reference_profile_uri,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
    )
    task, run_dir = _run(pipeline, own_root, output, **arguments)
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
    output: Output | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """Run the continuous_training pipeline locally (no rollout: no cluster here).

    Returns the trigger decision, the run folder and, when it retrained, the train run id."""
    from conveyor.pipelines.continuous_training.pipeline import build_pipeline

    own_root = _init(pipeline_root)
    pipeline = build_pipeline(
        config, data_uri=data_uri, tracking_uri=tracking_uri, artifact_root=artifact_root
    )
    task, run_dir = _run(pipeline, own_root, output, **arguments)
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

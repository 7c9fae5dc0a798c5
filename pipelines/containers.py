"""Run a compiled pipeline (``pipeline.yaml``) with every task inside its container image.

kfp.local's DAG orchestrator walks the compiled spec and builds each task's executor input and
command line from the YAML, as the cluster's launcher would; this module swaps its Docker task
handler for one that runs that command through the engine's CLI (docker or podman) in the
task's image, as the cluster runs it: the image's non-root user, a read-only root filesystem
(scratch only in /tmp), no network unless asked, and only the pipeline root mounted. The SDK's
own handler is not used: it auto-removes containers and, on podman, loses the exit code of a
short task ("no such container") and reports success.
"""

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp import components, local
from kfp.local import docker_task_handler, status, task_dispatcher

from conveyor.containers import IMAGE_USER, Engine, find_engine
from conveyor.errors import ConveyorError

__all__ = ["ContainerOptions", "ContainerTaskHandler", "run_compiled"]


@dataclass
class ContainerOptions:
    """How every task container is started (one run at a time in this process)."""

    engine: Engine
    network: str = "none"
    env: dict[str, str] = field(default_factory=dict)
    user: str = IMAGE_USER
    log: list[str] = field(default_factory=list)  # one line per task: image and exit code


_options: ContainerOptions | None = None


class ContainerTaskHandler:
    """kfp.local task handler (the ITaskHandler shape) running the task through the engine CLI."""

    def __init__(
        self,
        image: str,
        full_command: list[str],
        pipeline_root: str,
        runner: Any,
        env_vars: dict[str, str] | None = None,
    ) -> None:
        self.image, self.full_command = image, list(full_command)
        self.pipeline_root, self.env_vars = pipeline_root, dict(env_vars or {})

    def command(self) -> list[str]:
        assert _options is not None, "run_compiled() sets the container options"
        root = str(Path(self.pipeline_root).resolve())
        cmd = [
            "run", "--rm", "--user", _options.user, "--read-only", "--tmpfs", "/tmp",
            "--network", _options.network, "--volume", f"{root}:{root}:rw",
            "--entrypoint", self.full_command[0],
        ]  # fmt: skip
        for key, value in {**self.env_vars, **_options.env}.items():
            cmd += ["--env", f"{key}={value}"]
        return _options.engine.cmd(*cmd, self.image, *self.full_command[1:])

    def run(self) -> status.Status:
        assert _options is not None
        done = subprocess.run(self.command(), env=_options.engine.env, check=False)
        _options.log.append(f"{self.image} exit {done.returncode}")
        return status.Status.SUCCESS if done.returncode == 0 else status.Status.FAILURE


def run_compiled(
    pipeline_yaml: str | Path,
    arguments: dict[str, Any],
    pipeline_root: str | Path,
    *,
    engine: Engine | None = None,
    network: str = "none",
    env: dict[str, str] | None = None,
) -> ContainerOptions:
    """Run ``pipeline_yaml`` with each task in its image; raises ConveyorError on a failed task.

    The pipeline root is created writable by the images' user (10001), as a cluster's volume
    is for the pod's user; nothing else of this machine is visible to a task.
    """
    global _options
    root = Path(pipeline_root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    uid, gid = (int(x) for x in IMAGE_USER.split(":"))
    if os.geteuid() == 0:
        os.chown(root, uid, gid)
    else:
        root.chmod(0o777)
    _options = ContainerOptions(engine or find_engine(), network, dict(env or {}))
    saved = docker_task_handler.DockerTaskHandler, task_dispatcher._DOCKER_AVAILABLE
    docker_task_handler.DockerTaskHandler = ContainerTaskHandler  # type: ignore[misc,assignment]
    task_dispatcher._DOCKER_AVAILABLE = True
    try:
        local.init(runner=local.DockerRunner(), pipeline_root=str(root), raise_on_error=True)
        pipeline = components.load_component_from_file(str(pipeline_yaml))
        try:
            pipeline(**arguments)
        except RuntimeError as exc:
            raise ConveyorError(f"{pipeline_yaml} failed in containers: {exc}") from exc
        return _options
    finally:
        docker_task_handler.DockerTaskHandler, task_dispatcher._DOCKER_AVAILABLE = saved
        _options = None

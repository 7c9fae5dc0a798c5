"""``LocalServer``: one model server process (``python -m conveyor.serving.server``) on
127.0.0.1, started and always stopped, for ``conveyor run``/``serve``, the sim and the tests."""

import os
import sys
import urllib.request
from pathlib import Path

from conveyor.errors import ServingError
from conveyor.lifecycle import HOST, ProcessService, free_port, owns_listener
from conveyor.serving.server import MAX_BATCH_ROWS

__all__ = ["LocalServer"]


class LocalServer(ProcessService):
    """A model server process on 127.0.0.1, started and always stopped by this object."""

    def __init__(
        self,
        model_dir: str | Path,
        name: str,
        version: str,
        *,
        port: int | None = None,
        log: str | Path | None = None,
        max_batch: int = MAX_BATCH_ROWS,
        faults: dict[str, float] | None = None,
    ) -> None:
        self.model_dir, self.name, self.version = Path(model_dir), name, str(version)
        self.faults = faults or {}
        self.port = port or free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.log = Path(log) if log else None
        self.max_batch = max_batch

    def start(self, timeout: float = 60.0) -> "LocalServer":
        return self.launch().wait_ready(timeout)

    def launch(self) -> "LocalServer":
        """Spawn the process without waiting: servers launched together load their models at
        the same time (``wait_ready`` each after), and a stop() still ends each one."""
        cmd = [
            sys.executable, "-m", "conveyor.serving.server", "--dir", str(self.model_dir),
            "--name", self.name, "--version", self.version, "--port", str(self.port),
            "--max-batch", str(self.max_batch),
        ]  # fmt: skip
        # One OpenMP thread: a single-row predict gains nothing from threads, and spinning
        # OpenMP workers on a busy machine turned 12 ms calls into seconds (measured here).
        env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1"}
        for key in ("error_rate", "latency_ms", "score_shift"):
            env.pop(f"CONVEYOR_FAULT_{key.upper()}", None)
            if self.faults.get(key):
                env[f"CONVEYOR_FAULT_{key.upper()}"] = str(self.faults[key])
        self._spawn(cmd, log=self.log, env=env)
        return self

    def wait_ready(self, timeout: float = 60.0) -> "LocalServer":
        """Wait until the launched server answers ready; stopped and ServingError otherwise."""
        proc = self.proc
        if proc is None:
            raise ServingError(f"model server for {self.name} v{self.version} was not launched")
        ready = f"{self.url}/v2/models/{self.name}/ready"

        def is_ready() -> bool:
            with urllib.request.urlopen(ready, timeout=2) as resp:
                # Ready, and the listener is ours: another process that grabbed the port
                # between free_port() and our bind must never be mistaken for this model.
                return bool(resp.status == 200 and owns_listener(proc.pid, self.port))

        if self._await(is_ready, timeout, poll=0.2):
            return self
        code = self.exit_code
        self.stop()
        if code is not None:
            hint = f"; see {self.log}" if self.log else ""
            raise ServingError(
                f"model server for {self.name} v{self.version} exited with code {code} "
                f"before it was ready{hint}"
            )
        raise ServingError(f"model server for {self.name} not ready on {self.url} in {timeout}s")

    def stop(self) -> None:
        self._terminate()

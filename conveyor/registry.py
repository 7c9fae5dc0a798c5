"""Tracking and registry access: the only module that talks to MLflow.

``Tracker`` is the small interface every stage uses; ``MlflowTracker`` is the real one (a
sqlite file store for the embedded default, an ``http://`` tracking server on a cluster) and
``MemoryTracker`` is the test double. ``tracker_for`` picks one from the URI.
"""

import os
import time
from pathlib import Path
from typing import Any, ClassVar, Protocol

from conveyor.errors import TrackingError

MEMORY_URI = "memory://"


class Tracker(Protocol):
    """What a stage needs from experiment tracking."""

    uri: str

    def start_run(self, run_name: str, tags: dict[str, str]) -> str: ...

    def log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None: ...

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> None: ...

    def log_sklearn_model(
        self, run_id: str, model: Any, name: str, input_example: Any, pip_requirements: list[str]
    ) -> str: ...

    def end_run(self, run_id: str, status: str = "FINISHED") -> None: ...

    def run_info(self, run_id: str) -> dict[str, Any]: ...


def _probe(uri: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, on an unreachable server (MLflow retries with backoff)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered (maybe 401 behind a proxy): reachable
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"MLflow at {uri}: cannot connect ({reason}). Check the tracking URI and that the "
            "server is running and reachable from here."
        ) from exc


def _flat(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in sorted(params.items())}


class MlflowTracker:
    """MLflow over its client API (no global active-run state, so stages can resume a run)."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | None = None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri
        if uri.startswith(("http://", "https://")):
            _probe(uri)
        self._mlflow = mlflow
        mlflow.set_tracking_uri(uri)
        self.client = MlflowClient(tracking_uri=uri)
        try:
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                location = None
                if artifact_root and "://" not in artifact_root and not uri.startswith("http"):
                    Path(artifact_root).mkdir(parents=True, exist_ok=True)
                    location = Path(artifact_root).resolve().as_uri()
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=location
                )
            else:
                self.experiment_id = found.experiment_id
        except Exception as exc:
            raise TrackingError(
                f"MLflow at {uri}: cannot open experiment {experiment!r}: {exc}. "
                "Check the tracking URI and that the server is reachable."
            ) from exc

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        return str(run.info.run_id)

    def log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in sorted((metrics or {}).items())],
            params=[Param(k, v) for k, v in _flat(params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in sorted((tags or {}).items())],
        )

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> None:
        self.client.log_artifacts(run_id, str(local_dir), artifact_path)

    def log_sklearn_model(
        self, run_id: str, model: Any, name: str, input_example: Any, pip_requirements: list[str]
    ) -> str:
        import mlflow.sklearn

        with self._mlflow.start_run(run_id=run_id):
            info = mlflow.sklearn.log_model(
                model,
                name=name,
                input_example=input_example,
                pip_requirements=pip_requirements,
                serialization_format="cloudpickle",
            )
        return str(info.model_uri)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def run_info(self, run_id: str) -> dict[str, Any]:
        run = self.client.get_run(run_id)
        return {
            "run_id": run_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "params": dict(run.data.params),
            "metrics": dict(run.data.metrics),
            "tags": dict(run.data.tags),
        }


class MemoryTracker:
    """In-process test double with the same behaviour as the MLflow tracker."""

    # Shared by every instance in the process, as runs on a server are shared by its clients.
    runs: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, uri: str = MEMORY_URI, experiment: str = "default") -> None:
        self.uri = uri
        self.experiment = experiment

    def start_run(self, run_name: str, tags: dict[str, str]) -> str:
        run_id = f"mem-{len(self.runs) + 1:04d}"
        self.runs[run_id] = {
            "run_id": run_id,
            "name": run_name,
            "status": "RUNNING",
            "params": {},
            "metrics": {},
            "tags": dict(tags),
            "artifacts": {},
            "models": {},
        }
        return run_id

    def _run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self.runs:
            raise TrackingError(f"memory tracker: run {run_id!r} does not exist")
        return self.runs[run_id]

    def log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        run = self._run(run_id)
        run["params"].update(_flat(params or {}))
        run["metrics"].update({k: float(v) for k, v in (metrics or {}).items()})
        run["tags"].update({k: str(v) for k, v in (tags or {}).items()})

    def log_artifacts(self, run_id: str, local_dir: str | Path, artifact_path: str) -> None:
        files = sorted(p.name for p in Path(local_dir).iterdir() if p.is_file())
        self._run(run_id)["artifacts"][artifact_path] = files

    def log_sklearn_model(
        self, run_id: str, model: Any, name: str, input_example: Any, pip_requirements: list[str]
    ) -> str:
        self._run(run_id)["models"][name] = model
        return f"runs:/{run_id}/{name}"

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._run(run_id)["status"] = status

    def run_info(self, run_id: str) -> dict[str, Any]:
        return dict(self._run(run_id))


def tracker_for(uri: str, experiment: str, artifact_root: str | None = None) -> Tracker:
    """The tracker for a URI: ``memory://`` is the double, anything else is MLflow.

    An empty URI falls back to ``MLFLOW_TRACKING_URI`` (how a cluster injects it).
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise TrackingError(
            "no MLflow tracking URI: pass one, or set MLFLOW_TRACKING_URI in the environment"
        )
    if uri.startswith(MEMORY_URI):
        return MemoryTracker(uri, experiment)
    return MlflowTracker(uri, experiment, artifact_root)

"""Tracking and registry access: the only module that talks to MLflow.

``Tracker`` is the small interface every stage uses; ``MlflowTracker`` is the real one (a
sqlite file store for the embedded default, an ``http://`` tracking server on a cluster) and
``MemoryTracker`` is the test double. ``tracker_for`` picks one from the URI.
"""

import os
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from conveyor.config import redact_url
from conveyor.context import actor, tracking_uri
from conveyor.errors import BadInputError, TrackingError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = [
    "CANDIDATE",
    "CHAMPION",
    "PREVIOUS",
    "PROFILE_FILE",
    "REFERENCE_PATH",
    "SKLEARN_VERSION_TAG",
    "TRAINING_KEY_TAG",
    "UNVERIFIED_TAG",
    "MemoryTracker",
    "MlflowTracker",
    "ModelRegistry",
    "lineage_tags",
    "render_versions",
    "time",
    "tracker_for",
]


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


def _tame_client_retries() -> None:
    """MLflow's HTTP client retries 7 times with growing backoff (minutes on a dead server);
    Conveyor retries whole operations itself, so keep the client's own retries short unless the
    user has set them."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")


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


def resolve_uri(uri: str) -> str:
    """The tracking URI to use: the given one, else ``MLFLOW_TRACKING_URI`` (how a cluster
    injects it); neither is an error that says what to set (policy: conveyor.context)."""
    uri = tracking_uri(uri)
    if not uri:
        raise TrackingError(
            "no MLflow tracking URI: pass one, or set MLFLOW_TRACKING_URI in the environment"
        )
    return uri


def _connect(uri: str) -> str:
    """Everything a real MLflow client needs first: the URI, short client retries, and a
    reachability probe for a server."""
    uri = resolve_uri(uri)
    _check_scheme(uri)
    _tame_client_retries()
    if uri.startswith(("http://", "https://")):
        _probe(uri)
    return uri


# What MLflow can track to (its store registry); anything else was a typo or the wrong tool.
SCHEMES = ("http", "https", "sqlite", "postgresql", "mysql", "mssql", "file", "databricks")


def _check_scheme(uri: str) -> None:
    """A URI MLflow cannot use is refused by name; a sqlite store whose folder does not exist
    is a typo, not a new store: MLflow would create the folders and an empty registry that
    answers "no registered versions". (``conveyor run`` makes its own store's folder.)"""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if len(scheme) == 1 or not scheme:  # C:\path or a bare path: a local folder store
        scheme = "file"
    if scheme not in SCHEMES:
        raise TrackingError(
            f"tracking URI {redact_url(uri)!r}: MLflow cannot track to {scheme}:// (use "
            "http(s)://, sqlite:///, postgresql://, mysql://, mssql://, file: or databricks)"
        )
    if scheme == "sqlite" and uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        folder = Path(path).parent if path not in ("", ":memory:") else None
        if folder is not None and not folder.is_dir():
            raise TrackingError(
                f"tracking URI {uri}: the folder {folder} does not exist, so this is not an "
                "MLflow store (MLflow would create an empty one). Check the path; a new store "
                "is made by `conveyor run`, or create the folder first"
            )


def _flat(params: dict[str, Any]) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in sorted(params.items())}


class MlflowTracker:
    """MLflow over its client API (no global active-run state, so stages can resume a run)."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | None = None) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        self.uri = uri = _connect(uri)
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
    uri = resolve_uri(uri)
    if uri.startswith(MEMORY_URI):
        return MemoryTracker(uri, experiment)
    return MlflowTracker(uri, experiment, artifact_root)


# ----------------------------------------------------------------------------- model registry

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"
STATUS = "conveyor.status"  # approved | held | rolled_back ; a held version is not deployable
SERVING_PATH = "serving"  # run artifact folder holding model.joblib + model.sha256
REFERENCE_PATH = "reference"  # run artifact folder holding the drift reference profile
PROFILE_FILE = "profile.json"
TRAINING_KEY_TAG = "conveyor.training_key"  # data, code, config and seed of a training run
# "true" on a version whose run was stopped before its smoke test: never verified, so a re-run
# with the same inputs trains again instead of skipping onto it.
UNVERIFIED_TAG = "conveyor.unverified"
# The scikit-learn that pickled the model (run and version tag): deploy compares it with the
# serving runtime's conveyor.io/sklearn-version annotation.
SKLEARN_VERSION_TAG = "model.sklearn_version"
RETRIES = 3


def _with_retry(what: str, fn: Any, attempts: int = RETRIES, base_delay: float = 0.5) -> Any:
    """Retry transient registry failures with exponential backoff, then fail clearly."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except MlflowException as exc:
            code = str(getattr(exc, "error_code", ""))
            transient = code in (
                "TEMPORARILY_UNAVAILABLE",
                "INTERNAL_ERROR",
                "REQUEST_LIMIT_EXCEEDED",
            )
            if not transient or attempt == attempts:
                raise TrackingError(f"MLflow registry: {what} failed: {exc.message}") from exc
        except (ConnectionError, TimeoutError, OSError) as exc:
            if attempt == attempts:
                raise TrackingError(
                    f"MLflow registry: {what} failed after {attempts} attempts: {exc}. "
                    "Check that the tracking server is up; nothing was changed."
                ) from exc
        time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def _actor() -> str:
    return actor("unknown")


def _sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store when it exists (None for any other store)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri[len("sqlite:///") :])
    return path.resolve() if str(path) not in ("", ":memory:") and path.is_file() else None


# MLflow's model-registry tables (schema of MLflow 3, checked against a store it made): its
# search excludes versions in this internal stage (deleted) and models tagged as prompts.
_DELETED_STAGE = "Deleted_Internal"
_PROMPT_TAG = "mlflow.prompt.is_prompt"
_WORKSPACE = "default"
_TAGGED_VERSIONS = """
SELECT v.version, v.run_id, v.creation_time
FROM model_versions v
JOIN model_version_tags t
  ON t.workspace = v.workspace AND t.name = v.name AND t.version = v.version
WHERE v.workspace = :workspace AND v.name = :name AND t.key = :key AND t.value = :value
  AND (v.current_stage IS NULL OR v.current_stage != :deleted)
  AND NOT EXISTS (
    SELECT 1 FROM model_version_tags p
    WHERE p.workspace = v.workspace AND p.name = v.name AND p.key = :prompt AND p.value = 'true'
  )
ORDER BY v.version DESC
"""


def _tagged_rows(db: Any, name: str, key: str, value: str) -> list[dict[str, Any]]:
    """``versions_tagged`` on an open sqlite connection (raises sqlite3.Error on a schema it
    does not know)."""
    found = db.execute(
        _TAGGED_VERSIONS,
        {"workspace": _WORKSPACE, "name": name, "key": key, "value": value,
         "deleted": _DELETED_STAGE, "prompt": _PROMPT_TAG},
    ).fetchall()  # fmt: skip
    if not found:
        return []
    marks = ",".join("?" * len(found))
    tags: dict[int, dict[str, str]] = {int(v): {} for v, _, _ in found}
    for version, tag, text in db.execute(
        "SELECT version, key, value FROM model_version_tags "
        f"WHERE workspace = ? AND name = ? AND version IN ({marks})",  # only ? marks added
        [_WORKSPACE, name, *(v for v, _, _ in found)],
    ):
        tags[int(version)][tag] = text
    aliases: dict[int, list[str]] = {}
    for alias, version in db.execute(
        "SELECT alias, version FROM registered_model_aliases WHERE workspace = ? AND name = ?",
        [_WORKSPACE, name],
    ):
        aliases.setdefault(int(version), []).append(alias)
    return [
        {
            "name": name,
            "version": str(version),
            "run_id": run_id,
            "aliases": sorted(aliases.get(int(version), [])),
            "tags": tags[int(version)],
            "status": tags[int(version)].get(STATUS, ""),
            "created": created,
        }
        for version, run_id, created in found
    ]


class ModelRegistry:
    """Registered models, versions and aliases in MLflow (aliases, not deprecated stages)."""

    def __init__(self, uri: str) -> None:
        self.uri = _connect(uri)

    @cached_property
    def client(self) -> "MlflowClient":
        """The MLflow client, made on first use: importing mlflow and opening its store costs
        seconds, and a question ``versions_tagged`` answers from a sqlite file needs neither."""
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    # ---- reads

    def versions_tagged(self, name: str, key: str, value: str) -> list[dict[str, Any]] | None:
        """The versions of ``name`` whose tag ``key`` is ``value``, as ``versions`` rows (newest
        first), read straight from a sqlite store's file (read-only, no MLflow import); None
        when this store cannot be read that way (not sqlite, no file, another schema): ask
        ``versions``. The same rows MLflow's own search returns: no deleted versions, no
        prompts, the default workspace (the one a plain sqlite store serves)."""
        path = _sqlite_file(self.uri)
        workspaces = os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").lower() in ("1", "true")
        if path is None or workspaces:  # a workspace-aware store serves another workspace
            return None
        import sqlite3

        try:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        except sqlite3.Error:
            return None
        try:
            return _tagged_rows(db, name, key, value)
        except sqlite3.Error:
            return None  # another schema (an older or newer MLflow): MLflow's own search
        finally:
            db.close()

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name`` (newest first) with its aliases and tags."""
        found = _with_retry(
            f"list versions of {name!r}",
            lambda: self.client.search_model_versions(f"name='{name}'"),
        )
        aliases: dict[str, list[str]] = {}
        try:
            model = self.client.get_registered_model(name)
            for alias, version in model.aliases.items():
                aliases.setdefault(str(version), []).append(alias)
        except Exception:  # no such model: no aliases
            pass
        out = [
            {
                "name": name,
                "version": str(v.version),
                "run_id": v.run_id,
                "aliases": sorted(aliases.get(str(v.version), [])),
                "tags": dict(v.tags),
                "status": v.tags.get(STATUS, ""),
                "created": v.creation_timestamp,
            }
            for v in found
        ]
        return sorted(out, key=lambda v: -int(v["version"]))

    def by_alias(self, name: str, alias: str) -> dict[str, Any] | None:
        return next((v for v in self.versions(name) if alias in v["aliases"]), None)

    def get(self, name: str, version: str) -> dict[str, Any]:
        hit = next((v for v in self.versions(name) if v["version"] == str(version)), None)
        if hit is None:
            raise BadInputError(f"model {name!r} has no version {version!r}")
        return hit

    def resolve(self, name: str, ref: str) -> dict[str, Any]:
        """A version by number or alias (``7``, ``candidate``, ``champion``)."""
        if str(ref).isdigit():
            return self.get(name, str(ref))
        row = self.by_alias(name, str(ref))
        if row is None:
            raise BadInputError(f"model {name!r} has no alias {ref!r}")
        return row

    # ---- writes

    def version_of_run(self, name: str, run_id: str) -> dict[str, Any] | None:
        """The version of ``name`` registered from training run ``run_id`` (None: none)."""
        return next((v for v in self.versions(name) if v["run_id"] == run_id), None)

    def register(
        self, name: str, run_id: str, verdict: str, tags: dict[str, str]
    ) -> dict[str, Any] | None:
        """Register the run's model per the gate verdict; idempotent per (name, run).

        approve: new version + alias ``candidate``; hold: new version, no alias, tagged held;
        reject: nothing. A failure part-way deletes the half-made version.
        """
        if verdict not in ("approve", "hold"):
            return None
        existing = self.version_of_run(name, run_id)
        if existing is not None:
            return existing  # a retried step must not create a second version
        status = "approved" if verdict == "approve" else "held"
        all_tags = {**tags, STATUS: status, "conveyor.deployable": str(verdict == "approve")}
        _with_retry(f"create registered model {name!r}", lambda: self._ensure_model(name))

        def create() -> Any:
            # A retry after a timeout must not create a second version for the same run.
            done = self.client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
            if done:
                return done[0]
            return self.client.create_model_version(
                name, f"runs:/{run_id}/model", run_id=run_id, tags=all_tags
            )

        version = _with_retry(f"register run {run_id} as {name!r}", create)
        try:
            if verdict == "approve":
                self._set_alias(name, CANDIDATE, str(version.version))
        except BaseException:
            self.client.delete_model_version(name, str(version.version))
            raise
        return self.get(name, str(version.version))

    def _ensure_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name, tags={"conveyor.managed": "true"})

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        _with_retry(
            f"set alias {alias!r} of {name!r} to v{version}",
            lambda: self.client.set_registered_model_alias(name, alias, version),
        )

    def _event(self, name: str, version: str, event: str, reason: str) -> None:
        from datetime import UTC, datetime

        # Tag keys allow no '+': a compact UTC stamp with microseconds keeps events distinct.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        self.client.set_model_version_tag(
            name, version, f"conveyor.event.{stamp}", f"{event} by {_actor()}: {reason}"
        )

    def approve(self, name: str, version: str, reason: str) -> dict[str, Any]:
        """A person releases a held version: it becomes deployable and takes ``candidate``."""
        if not reason.strip():
            raise BadInputError("--reason is required: say why this held version may ship")
        v = self.get(name, version)
        if v["status"] not in ("held", "approved", "rolled_back"):
            raise BadInputError(
                f"{name} v{version} has status {v['status'] or 'none'!r}; only a held, "
                "approved or rolled-back version can be (re-)approved"
            )
        for key, value in {
            STATUS: "approved",
            "conveyor.deployable": "True",
            "conveyor.approved_by": _actor(),
            "conveyor.approved_reason": reason,
            "conveyor.approved_at": _now(),
        }.items():
            self.client.set_model_version_tag(name, version, key, value)
        self._set_alias(name, CANDIDATE, version)
        self._event(name, version, "approve", reason)
        return self.get(name, version)

    def promote(self, name: str, version: str, reason: str = "") -> dict[str, Any]:
        """Move ``champion`` to ``version``, keeping the old one as ``previous-champion``."""
        v = self.get(name, version)
        if v["status"] != "approved":
            raise BadInputError(
                f"{name} v{version} is {v['status'] or 'not approved'}: only an approved "
                f"version can become champion (run `conveyor models approve {name} {version}`)"
            )
        current = self.by_alias(name, CHAMPION)
        if current is not None and current["version"] == str(version):
            return v
        if current is not None:
            self._set_alias(name, PREVIOUS, current["version"])
        self._set_alias(name, CHAMPION, str(version))
        self._event(name, str(version), "promote to champion", reason or "no reason given")
        return self.get(name, version)

    def alias_snapshot(self, name: str) -> dict[str, str]:
        """Where ``champion`` and ``previous-champion`` point now (absent: not in the dict)."""
        out = {}
        for alias in (CHAMPION, PREVIOUS):
            v = self.by_alias(name, alias)
            if v is not None:
                out[alias] = v["version"]
        return out

    def restore_aliases(self, name: str, snapshot: dict[str, str], reason: str) -> None:
        """Put ``champion`` and ``previous-champion`` back where ``snapshot`` had them: the
        compensating step when a traffic change fails after the registry moved first."""
        moved = self.by_alias(name, CHAMPION)
        for alias in (CHAMPION, PREVIOUS):
            if alias in snapshot:
                self._set_alias(name, alias, snapshot[alias])
            elif self.by_alias(name, alias) is not None:
                _with_retry(
                    f"delete alias {alias!r}",
                    lambda a=alias: self.client.delete_registered_model_alias(name, a),
                )
        if moved is not None and moved["version"] != snapshot.get(CHAMPION):
            self._event(name, moved["version"], "promotion undone", reason)

    def rollback(self, name: str, reason: str = "") -> dict[str, Any]:
        """Move ``champion`` back to ``previous-champion``."""
        previous = self.by_alias(name, PREVIOUS)
        current = self.by_alias(name, CHAMPION)
        if previous is None:
            raise BadInputError(f"{name} has no {PREVIOUS!r} alias: nothing to roll back to")
        self._set_alias(name, CHAMPION, previous["version"])
        _with_retry(
            f"delete alias {PREVIOUS!r}",
            lambda: self.client.delete_registered_model_alias(name, PREVIOUS),
        )
        if current is not None:
            self._mark_rolled_back(name, current["version"], "rolled back", reason)
        self._event(name, previous["version"], "restored as champion", reason or "rollback")
        return self.get(name, previous["version"])

    def _mark_rolled_back(self, name: str, version: str, event: str, reason: str) -> None:
        self.client.set_model_version_tag(name, version, STATUS, "rolled_back")
        self.client.set_model_version_tag(name, version, "conveyor.deployable", "False")
        self._event(name, version, event, reason or "no reason given")

    def reject_candidate(
        self, name: str, version: str, reason: str, *, unverified: bool = False
    ) -> dict[str, Any]:
        """A canary or shadow of ``version`` failed online: it is no longer deployable and
        loses ``candidate``; ``champion`` is untouched (it never moved). ``unverified``: it
        was stopped before any test could judge it (``UNVERIFIED_TAG``)."""
        v = self.get(name, version)
        if CHAMPION in v["aliases"]:
            raise BadInputError(
                f"{name} v{version} is the champion; use `conveyor models rollback {name}` to "
                "restore the previous champion"
            )
        if CANDIDATE in v["aliases"]:
            _with_retry(
                f"delete alias {CANDIDATE!r}",
                lambda: self.client.delete_registered_model_alias(name, CANDIDATE),
            )
        if unverified:
            self.client.set_model_version_tag(name, str(version), UNVERIFIED_TAG, "true")
        self._mark_rolled_back(name, str(version), "canary rolled back", reason)
        return self.get(name, version)

    def fetch(self, name: str, alias: str, dest: str | Path) -> Path | None:
        """Download the serving files of ``name@alias`` and verify their sha256 against the tag.

        Returns None when the alias does not exist (e.g. no champion yet).
        """
        v = self.by_alias(name, alias)
        return None if v is None else self.download(v, dest)

    def reference_profile(self, v: dict[str, Any], dest: str | Path) -> Path | None:
        """The drift reference profile the version's training run logged (None for a version
        trained before profiles were logged)."""
        import mlflow.artifacts

        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=v["run_id"], artifact_path=f"{REFERENCE_PATH}/{PROFILE_FILE}",
                dst_path=str(dest), tracking_uri=self.uri,
            )  # fmt: skip
        except Exception as exc:  # mlflow raises its own types for a missing artifact
            if "does not exist" in str(exc) or "No such file" in str(exc):
                return None
            raise TrackingError(
                f"{v['name']} v{v['version']}: cannot download the reference profile: {exc}"
            ) from exc
        return Path(local)

    def download(self, v: dict[str, Any], dest: str | Path) -> Path:
        """Download the serving files of version row ``v``; refuse a sha256 mismatch."""
        import mlflow.artifacts

        from conveyor.tables import sha256_file

        label = f"{v['name']} v{v['version']}"
        local = Path(
            _with_retry(
                f"download {label}",
                lambda: mlflow.artifacts.download_artifacts(
                    run_id=v["run_id"], artifact_path=SERVING_PATH, dst_path=str(dest),
                    tracking_uri=self.uri,
                ),
            )
        )  # fmt: skip
        expected = v["tags"].get("model.sha256", "")
        actual = sha256_file(local / "model.joblib")
        if not expected or actual != expected:
            raise TrackingError(
                f"{label}: model.joblib sha256 {actual} does not match the registry tag "
                f"model.sha256 {expected or '(missing)'}; refusing to use it"
            )
        return local


HEADLINE = ("roc_auc", "pr_auc", "recall", "precision", "f1", "log_loss")


def lineage_tags(
    registry: ModelRegistry,
    run_id: str,
    verdict: str,
    metrics: dict[str, Any],
    git_commit: str = "",
) -> dict[str, str]:
    """The tags a registered version carries: the training run's lineage (data, features,
    model sha256, params, training key, scikit-learn), the gate's verdict and report, and the
    headline test metrics. Refuses a run that train did not make (no model.sha256)."""
    import json

    run = registry.client.get_run(run_id)
    items = dict(sorted(run.data.params.items()))
    params = json.dumps(items, separators=(",", ":"))
    while len(params) > 5000 and items:  # a tag holds 5000 chars: drop params, keep valid JSON
        items.pop(next(reversed(items)))
        params = json.dumps({**items, "_truncated": True}, separators=(",", ":"))
    tags = {
        "conveyor.run_id": run_id,
        "git.commit": git_commit or "unknown",
        "data.sha256": run.data.tags.get("data.sha256", ""),
        "features.spec.sha256": run.data.tags.get("features.spec.sha256", ""),
        "model.sha256": run.data.tags.get("model.sha256", ""),
        "params": params,
        "gate.verdict": verdict,
        "gate.report": f"runs:/{run_id}/gate/gate.md",
        "serving.uri": f"{run.info.artifact_uri}/{SERVING_PATH}",
    }
    if run.data.tags.get(TRAINING_KEY_TAG):  # only runs started with a key (no empty tags)
        tags[TRAINING_KEY_TAG] = run.data.tags[TRAINING_KEY_TAG]
    if run.data.tags.get(SKLEARN_VERSION_TAG):  # runs trained before it was recorded lack it
        tags[SKLEARN_VERSION_TAG] = run.data.tags[SKLEARN_VERSION_TAG]
    for key in HEADLINE:
        value = metrics.get(key)
        if value is not None:
            tags[f"metric.{key}"] = f"{float(value):.6g}"
    if not tags["model.sha256"]:
        raise TrackingError(f"run {run_id} has no model.sha256 tag: was it made by train?")
    return tags


def render_versions(name: str, versions: list[dict[str, Any]]) -> str:
    """``conveyor models list``: one line per version, newest first as given."""
    if not versions:
        return f"{name}: no registered versions"
    lines = [f"{'version':>7}  {'aliases':<30} {'status':<12} {'roc_auc':>8}  run"]
    for v in versions:
        lines.append(
            f"{v['version']:>7}  {','.join(v['aliases']) or '-':<30} {v['status'] or '-':<12} "
            f"{v['tags'].get('metric.roc_auc', '-'):>8}  {v['run_id']}"
        )
    return "\n".join(lines)

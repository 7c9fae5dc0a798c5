"""The environment a Conveyor process acts in, resolved in one place: which MLflow, and who.

Tracking URI, one policy for every caller: an explicit URI (a flag or a component parameter)
wins; else ``MLFLOW_TRACKING_URI`` (how a cluster injects it into pods); else the caller's
``fallback``, which is the only thing callers differ in, on purpose:

- the ``conveyor`` CLI on a developer's machine falls back to the embedded store
  (``EMBEDDED_TRACKING``, what ``make run`` writes);
- cluster-facing paths (the kubectl plugin, the rollout stages) fall back to nothing: where the
  registry is optional (moving aliases after a traffic change) they go on without it and say
  so; where it is needed (looking up the version to deploy) ``require_tracking_uri`` refuses.

A local sqlite store is pinned to an absolute path (``pinned``: kfp.local tasks run in other
folders), and only a run creates its folder (``own_store``); every other caller refuses a store
folder that does not exist (``registry``).

Git commit, for the registry's lineage tags: ``git_commit()`` ("" outside a checkout).

Actor, recorded in MLflow tags, Kubernetes Events and ``conveyor.io/last-change``:
``CONVEYOR_ACTOR`` when set; else, for tools a person runs, the login name (``USER``); else the
tool's own name (a pipeline step acts as ``kfp-rollout-pipeline`` whoever started the run).
"""

import os
from pathlib import Path

from conveyor.errors import BadInputError

__all__ = [
    "EMBEDDED_TRACKING",
    "actor",
    "git_commit",
    "own_store",
    "pinned",
    "require_tracking_uri",
    "tracking_uri",
]

SQLITE = "sqlite:///"

EMBEDDED_TRACKING = "sqlite:///.conveyor/mlflow.db"


def tracking_uri(explicit: str | None = "", fallback: str = "") -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else ``fallback`` (may be empty)."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI", "") or fallback


def require_tracking_uri(explicit: str | None, purpose: str, flag: str = "--tracking-uri") -> str:
    """As ``tracking_uri`` with no fallback, refusing (exit 2) when neither is set."""
    uri = tracking_uri(explicit)
    if not uri:
        raise BadInputError(f"{flag} (or MLFLOW_TRACKING_URI) is required to {purpose}")
    return uri


def actor(tool: str, *, person: bool = True) -> str:
    """Who acts: ``CONVEYOR_ACTOR``, else ``USER`` when a person runs the tool, else ``tool``."""
    login = os.environ.get("USER", "") if person else ""
    return os.environ.get("CONVEYOR_ACTOR") or login or tool


def pinned(uri: str) -> str:
    """A relative sqlite store pinned to the current folder (kfp.local tasks run elsewhere)."""
    if uri.startswith(SQLITE) and not uri[len(SQLITE) :].startswith("/"):
        return SQLITE + str(Path(uri[len(SQLITE) :]).resolve())
    return uri


def own_store(uri: str) -> str:
    """The run's tracking URI, pinned, with its sqlite store's folder made on purpose: a run
    is what creates a store (everything else refuses a store folder that does not exist)."""
    uri = pinned(uri)
    if uri.startswith(SQLITE):
        Path(uri[len(SQLITE) :]).parent.mkdir(parents=True, exist_ok=True)
    return uri


def git_commit() -> str:
    """The commit of the code being run, for the registry's lineage tags ("" outside git)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()

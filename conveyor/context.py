"""The environment a Conveyor process acts in, resolved in one place: which MLflow, and who.

Tracking URI, one policy for every caller: an explicit URI (a flag or a component parameter)
wins; else ``MLFLOW_TRACKING_URI`` (how a cluster injects it into pods); else the caller's
``fallback``, which is the only thing callers differ in, on purpose:

- the ``conveyor`` CLI on a developer's machine falls back to the embedded store
  (``EMBEDDED_TRACKING``, what ``make run`` writes);
- cluster-facing paths (the kubectl plugin, the rollout stages) fall back to nothing: where the
  registry is optional (moving aliases after a traffic change) they go on without it and say
  so; where it is needed (looking up the version to deploy) ``require_tracking_uri`` refuses.

Actor, recorded in MLflow tags, Kubernetes Events and ``conveyor.io/last-change``:
``CONVEYOR_ACTOR`` when set; else, for tools a person runs, the login name (``USER``); else the
tool's own name (a pipeline step acts as ``kfp-rollout-pipeline`` whoever started the run).
"""

import os

from conveyor.errors import BadInputError

__all__ = ["EMBEDDED_TRACKING", "actor", "require_tracking_uri", "tracking_uri"]

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

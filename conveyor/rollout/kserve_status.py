"""KServe's traffic rules for one predictor component (Serverless mode, Knative underneath).

The pure part of KServe's controller: which revisions get which share (``route``) and how the
rolled-out revisions move (``propagate``, KServe's PropagateStatus), settled to a fixed point
(``settle``). Shared by the fake Kubernetes API server in the tests and by ``rollout-sim``'s
in-process cluster, so both follow one reading of KServe's documented canary semantics:
``canaryTrafficPercent`` splits traffic between the latest ready revision and the rolled-out
one, removing it promotes, 0 rolls back.
"""

import copy
from collections import Counter
from typing import Any

__all__ = ["settle"]


def route(
    namespace: str,
    name: str,
    rolled_out: str,
    canary: int | None,
    latest_ready: str,
    tag_routing: bool,
) -> list[dict[str, Any]]:
    """The Knative route KServe asks for, resolved to revision names (as ``status.traffic`` reads).

    Mirrors KServe's ksvc reconciler: with ``canaryTrafficPercent`` and a rolled-out revision the
    latest ready revision gets P % and the rolled-out one the rest under tag ``prev`` (tagged
    always); otherwise the latest ready revision gets 100 %. ``latest`` is tagged only with the
    tag-routing annotation. Knative gives every tagged target a URL.
    """
    if not latest_ready:
        return []  # nothing routable yet: Knative's route is not ready
    latest_tag = "latest" if tag_routing else None
    targets: list[tuple[str, int, bool, str | None]] = []
    if canary is not None and rolled_out:
        targets.append((latest_ready, canary, True, latest_tag))
        if canary < 100:
            targets.append((rolled_out, 100 - canary, False, "prev"))
    else:
        targets.append((latest_ready, 100, True, latest_tag))
    traffic = []
    for revision, percent, is_latest, tag in targets:
        entry: dict[str, Any] = {
            "revisionName": revision,
            "percent": percent,
            "latestRevision": is_latest,
        }
        if tag:
            entry["tag"] = tag
            entry["url"] = f"http://{tag}-{name}-predictor.{namespace}.example.com"
        traffic.append(entry)
    return traffic


def propagate(
    component: dict[str, Any],
    traffic: list[dict[str, Any]],
    latest_ready: str,
    latest_created: str,
) -> dict[str, Any]:
    """KServe's PropagateStatus for one component: track the rolled-out revisions.

    A latest ready revision that holds 100 % becomes latestRolledoutRevision (the old one moves to
    previousRolledoutRevision). When the rolled-out revision is itself the latest and a canary
    percentage < 100 splits traffic over that same revision, KServe rolls back to the previous one.
    """
    new = copy.deepcopy(component)
    new["latestCreatedRevision"] = latest_created
    per_revision: Counter[str] = Counter()
    for entry in traffic:
        per_revision[entry["revisionName"]] += entry["percent"]
    for entry in traffic:
        if entry["revisionName"] != latest_ready or not entry["latestRevision"]:
            continue
        rolled_out = new.get("latestRolledoutRevision", "")
        if rolled_out != latest_ready:
            if entry["percent"] == 100:
                if rolled_out:
                    new["previousRolledoutRevision"] = rolled_out
                new["latestRolledoutRevision"] = latest_ready
        elif (
            latest_ready == latest_created
            and entry["percent"] < 100
            and per_revision[latest_ready] == 100
            and new.get("previousRolledoutRevision")
        ):
            new["latestRolledoutRevision"] = new["previousRolledoutRevision"]
    if latest_ready:
        new["latestReadyRevision"] = latest_ready
    if traffic:
        new["traffic"] = traffic
    else:
        new.pop("traffic", None)
    return new


def settle(
    component: dict[str, Any],
    namespace: str,
    name: str,
    canary: int | None,
    latest_ready: str,
    latest_created: str,
    tag_routing: bool,
) -> dict[str, Any]:
    """Route and propagate until nothing changes: the predictor component's status KServe
    converges to (two passes settle a rollback over the same revision)."""
    for _ in range(5):
        rolled_out = component.get("latestRolledoutRevision", "")
        traffic = route(namespace, name, rolled_out, canary, latest_ready, tag_routing)
        updated = propagate(component, traffic, latest_ready, latest_created)
        if updated == component:
            break
        component = updated
    return component

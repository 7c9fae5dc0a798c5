"""Rollout actions on an InferenceService: deploy / canary step, promote, roll back, shadow.

Used by the KFP components, the ``kubectl conveyor`` plugin and (issue 5) the analysis loop.
Each action is one guarded write (``cluster.update``) so traffic never sits half-changed, and
each records who/when/why in the ``conveyor.io/last-change`` annotation and a Kubernetes Event.
A refused or failed action changes nothing: traffic stays where it was. Every deploy path
resolves its version with ``resolve_version``, which refuses, before any write, a version that
is not approved, whose bytes differ from the registry's sha256, or that the serving runtime's
scikit-learn may not unpickle (``check_runtime``).

A rollback changes two systems, traffic first and MLflow second, which no single write can
cover. So it records its intent on the InferenceService (``conveyor.io/rollback-intent``) in
the same write as the traffic change (a shadow: just before removing it) and clears it only
once MLflow has the rejection. Every action on that InferenceService starts with
``finish_rollbacks``: an intent left by a call that crashed or met an unreachable MLflow is
finished first (its traffic change, then its idempotent registry write), and ``status`` shows
what is still pending.
"""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from conveyor.errors import BadInputError, ClusterError, IncompatibleRuntimeError
from conveyor.registry import CANDIDATE, CHAMPION, SKLEARN_VERSION_TAG
from conveyor.rollout.cluster import (
    CLUSTER_SERVING_RUNTIME,
    ISVC,
    SERVING_RUNTIME,
    VSVC,
    Cluster,
    Kind,
    get,
    update,
)
from conveyor.serving import isvc as inf
from conveyor.serving.isvc import Change, Resources, ServedModel

__all__ = [
    "ISVC",
    "ROLLBACK_INTENT",
    "RolledBack",
    "ServedModel",
    "check_runtime",
    "deploy",
    "deploy_shadow",
    "finish_rollbacks",
    "pending_rollbacks",
    "promote",
    "promote_release",
    "resolve_version",
    "rollback",
    "rollback_release",
    "set_traffic",
    "shadow_off",
    "status",
    "wait_ready",
]


# Annotation on an InferenceService: the rollbacks whose traffic change is made (a shadow's:
# about to be) and whose MLflow write is not done yet. A JSON list of {version, model_name,
# kind (canary | shadow), reason, actor, at} (a shadow's also names the uid of the shadow
# InferenceService it removes), one entry per version.
ROLLBACK_INTENT = inf.ANN + "rollback-intent"
INTENT_REASON_CHARS = 500  # annotations share 256 KiB per object; a reason is kept in Events


def _record(cluster: Cluster, obj: dict[str, Any], reason: str, change: Change, msg: str) -> None:
    cluster.event(obj, reason, f"{msg} (by {change.actor}: {change.reason})")


def deploy(
    cluster: Cluster,
    name: str,
    model: ServedModel,
    percent: int,
    change: Change,
    *,
    resources: Resources | None = None,
    service_account: str = "conveyor-model",
    tag_routing: bool = True,
    score_log: str | None = None,
) -> dict[str, Any]:
    """Serve ``model`` on ``name``: create it at 100 % when absent (a first release has no
    champion to protect), else start a canary at ``percent`` %, or move the running canary of
    the same version to ``percent`` %. Refuses a canary of another version while one runs."""
    inf.check_percent(percent)
    finish_rollbacks(cluster, name)
    if cluster.find(ISVC, name) is None:
        obj = inf.inference_service(
            name, cluster.namespace, model, change, resources=resources,
            service_account=service_account, tag_routing=tag_routing, score_log=score_log,
        )  # fmt: skip
        created = cluster.create(ISVC, obj)
        _record(cluster, created, "Deployed", change, f"v{model.version} serving 100 %")
        return created
    started = {"canary": False}

    def step(cur: dict[str, Any]) -> dict[str, Any] | None:
        champion = inf.champion_of(cur)
        serving = inf.current_model(cur)
        if champion is not None:  # a canary is running
            if serving["version"] != model.version:
                raise BadInputError(
                    f"{name}: a canary of v{serving['version']} is already in progress at "
                    f"{inf.canary_percent(cur)} % (champion v{champion['version']}); promote or "
                    f"roll it back before deploying v{model.version}. Nothing changed."
                )
            if serving["sha256"] != model.sha256:
                raise BadInputError(
                    f"{name}: v{model.version} in the cluster has sha256 {serving['sha256']} but "
                    f"the registry says {model.sha256}; roll back and deploy again"
                )
            if model.runtime and inf.runtime_of(cur) != model.runtime:  # checked != serving
                raise BadInputError(
                    f"{name}: the canary of v{model.version} runs on runtime "
                    f"{inf.runtime_of(cur)!r}, not {model.runtime!r}; step it without naming "
                    "another runtime, or roll it back and deploy again. Nothing changed."
                )
            started["canary"] = False
            if inf.canary_percent(cur) == percent:
                return None
            return inf.traffic_patch(percent, change)
        if serving["version"] == model.version and serving["sha256"] == model.sha256:
            raise BadInputError(
                f"{name} already serves v{model.version} at 100 %; nothing to deploy"
            )
        started["canary"] = True
        return inf.canary_patch(cur, model, percent, change)

    out = update(cluster, ISVC, name, step)
    what = "canary started" if started["canary"] else "canary traffic set"
    _record(cluster, out, "CanaryStarted" if started["canary"] else "CanaryStep", change,
            f"{what}: v{model.version} at {percent} %")  # fmt: skip
    return out


def set_traffic(cluster: Cluster, name: str, percent: int, change: Change) -> dict[str, Any]:
    """Move the running canary of ``name`` to ``percent`` %."""
    inf.check_percent(percent)
    finish_rollbacks(cluster, name)

    def step(cur: dict[str, Any]) -> dict[str, Any]:
        if inf.champion_of(cur) is None:
            raise BadInputError(f"{name}: no canary in progress; start one with `canary --version`")
        return inf.traffic_patch(percent, change)

    out = update(cluster, ISVC, name, step)
    version = inf.current_model(out)["version"]
    _record(cluster, out, "CanaryStep", change, f"canary v{version} at {percent} %")
    return out


def promote(cluster: Cluster, name: str, change: Change) -> dict[str, Any]:
    """The canary takes 100 % (``canaryTrafficPercent`` removed); it is the new champion."""
    finish_rollbacks(cluster, name)
    return _promote(cluster, name, change)


def _promote(cluster: Cluster, name: str, change: Change) -> dict[str, Any]:
    def step(cur: dict[str, Any]) -> dict[str, Any]:
        if inf.champion_of(cur) is None:
            raise BadInputError(
                f"{name}: no canary in progress; v{inf.current_model(cur)['version']} already "
                "serves 100 %"
            )
        return inf.promote_patch(change)

    out = update(cluster, ISVC, name, step)
    version = inf.current_model(out)["version"]
    _record(cluster, out, "Promoted", change, f"v{version} promoted to 100 %")
    return out


def promote_release(
    cluster: Cluster,
    name: str,
    change: Change,
    registry: Any = None,
    model_name: str = "",
    *,
    first_release_ok: bool = False,
) -> dict[str, Any]:
    """Promote in both systems, registry first: moving an alias is reversible and refuses an
    unapproved version (or an unreachable MLflow) before any traffic moves; if the traffic
    change then fails, the aliases are put back, so the two never disagree.

    ``first_release_ok``: a service with no canary (a first release at 100 %) only moves the
    alias; otherwise that is refused as "no canary in progress".

    A rollback left pending on ``name`` is finished first (with ``registry``): a version it
    rejected is then refused here as not approved."""
    finish_rollbacks(cluster, name, registry)
    isvc = get(cluster, ISVC, name)
    version = inf.current_model(isvc)["version"]
    canary = inf.champion_of(isvc) is not None
    if not canary and not first_release_ok:
        raise BadInputError(f"{name}: no canary in progress; v{version} already serves 100 %")
    snapshot = None
    if registry is not None:
        snapshot = registry.alias_snapshot(model_name)
        registry.promote(model_name, version, change.reason)
    if not canary:
        return isvc
    try:
        return _promote(cluster, name, change)
    except BaseException as exc:
        if registry is not None and snapshot is not None:
            registry.restore_aliases(
                model_name, snapshot, f"traffic change failed: {str(exc)[:200]}"
            )
        raise


def rollback(cluster: Cluster, name: str, change: Change) -> dict[str, Any]:
    """All traffic back on the champion's revision and its spec restored, in one write."""
    finish_rollbacks(cluster, name)
    return _rollback(cluster, name, change)[0]


def _rollback(
    cluster: Cluster, name: str, change: Change, model_name: str = ""
) -> tuple[dict[str, Any], str]:
    """``rollback``'s one write, returning the object and the version taken off. With a
    ``model_name`` the same write records the rollback intent for that version (so the API
    server stores traffic change and intent together, or neither)."""
    failed: dict[str, str] = {}

    def step(cur: dict[str, Any]) -> dict[str, Any]:
        failed["version"] = str(inf.current_model(cur)["version"])
        patch = inf.rollback_patch(cur, change)
        if model_name:
            intent = _intent("canary", failed["version"], model_name, change)
            patch["metadata"]["annotations"][ROLLBACK_INTENT] = _intents_value(cur, add=[intent])
        return patch

    out = update(cluster, ISVC, name, step)
    champion = inf.current_model(out)["version"]
    cluster.event(
        out, "RolledBack",
        f"canary v{failed['version']} rolled back; v{champion} serves 100 % "
        f"(by {change.actor}: {change.reason})",
        warning=True,
    )  # fmt: skip
    return out, failed["version"]


@dataclasses.dataclass
class RolledBack:
    """What ``rollback_release`` undid: the ``version`` taken off, whether it was a ``canary``
    or a ``shadow``, and ``registry_error`` (empty when MLflow was updated, or not asked)."""

    version: str
    undone: str
    registry_error: str = ""
    error: Exception | None = dataclasses.field(default=None, repr=False)


# ---------------------------------------------------------------- rollback intents


def _intent(
    kind: str, version: str, model_name: str, change: Change, uid: str = ""
) -> dict[str, str]:
    doc = {
        "version": str(version),
        "model_name": model_name,
        "kind": kind,
        "reason": change.reason[:INTENT_REASON_CHARS],
        "actor": change.actor,
        "at": change.at,
    }
    return {**doc, "uid": uid} if uid else doc


def _read_intents(isvc: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """The intents ``isvc`` carries ([] none); None when the annotation cannot be read."""
    raw = ((isvc or {}).get("metadata", {}).get("annotations") or {}).get(ROLLBACK_INTENT)
    if not raw:
        return []
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    items = doc if isinstance(doc, list) else [doc]  # one object, as a person may write it
    if not all(isinstance(i, dict) and i.get("version") and i.get("model_name") for i in items):
        return None
    return items


def pending_rollbacks(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rollbacks recorded on ``isvc`` whose MLflow write is not done yet (a shadow's
    removal may not be done either); [] when none, or when the annotation is unreadable."""
    return _read_intents(isvc) or []


def _ident(intent: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(intent.get("model_name")), str(intent.get("version")),
        str(intent.get("kind")), str(intent.get("at")),
    )  # fmt: skip


def _intents_value(
    cur: dict[str, Any],
    *,
    add: Sequence[dict[str, Any]] = (),
    remove: Sequence[dict[str, Any]] = (),
) -> str | None:
    """The annotation's next value (None: remove it): ``cur``'s intents without ``remove``,
    and ``add`` replacing any earlier intent for the same version. An unreadable value is
    replaced by what is added, else left as it is (a person has to look at it)."""
    found = _read_intents(cur)
    if found is None:
        if not add:
            return str(cur["metadata"]["annotations"][ROLLBACK_INTENT])
        found = []
    gone = {_ident(i) for i in remove}
    versions = {(str(i["model_name"]), str(i["version"])) for i in add}
    keep = [
        i for i in found
        if _ident(i) not in gone and (str(i["model_name"]), str(i["version"])) not in versions
    ]  # fmt: skip
    out = keep + list(add)
    return json.dumps(out, sort_keys=True, separators=(",", ":")) if out else None


def _record_intent(cluster: Cluster, name: str, intent: dict[str, Any]) -> None:
    update(
        cluster, ISVC, name,
        lambda cur: {"metadata": {"annotations": {
            ROLLBACK_INTENT: _intents_value(cur, add=[intent])}}},
    )  # fmt: skip


def _shadow_running(cluster: Cluster, name: str, intent: dict[str, Any]) -> bool:
    """Whether the shadow a shadow ``intent`` removes still exists (the very object: a shadow
    deployed again since has another uid and is left alone)."""
    if intent.get("kind") != "shadow" or not intent.get("uid"):
        return False
    shadow = cluster.find(ISVC, inf.shadow_name(name))
    return shadow is not None and (shadow["metadata"].get("uid") == intent["uid"])


def _finish_traffic(cluster: Cluster, name: str) -> tuple[list[dict[str, Any]], bool]:
    """The traffic part of ``name``'s pending intents: a shadow rollback interrupted before
    the shadow was gone removes it now. (A canary's intent is written in the traffic change
    itself, so its traffic part is always done.) Returns the intents and whether a shadow was
    removed."""
    intents = _read_intents(cluster.find(ISVC, name)) or []
    removed = False
    for intent in intents:
        if _shadow_running(cluster, name, intent):
            why = f"finishing the rollback begun at {intent['at']}: {intent['reason']}"
            details = {"version": intent["version"]}
            _shadow_off(
                cluster, name, Change("rollback", why, str(intent["actor"]), details=details)
            )
            removed = True
    return intents, removed


def _registry_error(name: str, intent: dict[str, Any], exc: BaseException) -> str:
    model, version = intent["model_name"], intent["version"]
    return (
        f"MLflow not updated ({str(exc)[:300]}): run `conveyor models reject {model} "
        f"{version} --reason ...` once it is reachable (or let the next rollback or promote of "
        f"{name} do it: its {ROLLBACK_INTENT} annotation keeps the rejection pending)"
    )


def _reject(registry: Any, intent: dict[str, Any]) -> None:
    """Reject the intent's version in the registry, once: a version already rolled back and
    without ``candidate`` is left as it is (no second event), and the champion, whose alias
    never moved, is never rejected."""
    model, version = str(intent["model_name"]), str(intent["version"])
    v = registry.get(model, version)
    if CHAMPION in v["aliases"]:
        return
    if v["status"] == "rolled_back" and CANDIDATE not in v["aliases"]:
        return
    registry.reject_candidate(model, version, str(intent["reason"]))


def _finish_registry(
    cluster: Cluster, name: str, registry: Any, fresh: dict[str, Any] | None = None
) -> list[tuple[dict[str, Any], RolledBack]]:
    """The registry part of ``name``'s pending intents, each with its outcome; the ones done
    are cleared in one write. ``registry`` may be a zero-argument function that opens it
    (called only when an intent is pending). ``fresh``: the intent this very call wrote (the
    others get a RollbackFinished Event once done)."""
    isvc = cluster.find(ISVC, name)
    intents = _read_intents(isvc) or []
    if isvc is None or not intents:
        return []
    out = [(i, RolledBack(str(i["version"]), str(i["kind"]))) for i in intents]
    try:
        opened = registry() if callable(registry) else registry
    except Exception as exc:  # MLflow unreachable: every intent stays pending
        for intent, result in out:
            result.error, result.registry_error = exc, _registry_error(name, intent, exc)
        return out
    done: list[dict[str, Any]] = []
    for intent, result in out:
        if _shadow_running(cluster, name, intent):  # its traffic part first, always
            result.registry_error = f"{inf.shadow_name(name)} is still there: not rejected yet"
            result.error = ClusterError(result.registry_error)
            continue
        try:
            _reject(opened, intent)
        except Exception as exc:  # MLflow down, or a refusal: stays pending, say what to run
            result.error, result.registry_error = exc, _registry_error(name, intent, exc)
        else:
            done.append(intent)
    if done:
        update(
            cluster, ISVC, name,
            lambda cur: {"metadata": {"annotations": {
                ROLLBACK_INTENT: _intents_value(cur, remove=done)}}},
        )  # fmt: skip
    for i in done:
        if fresh is None or _ident(i) != _ident(fresh):
            cluster.event(
                isvc, "RollbackFinished",
                f"{i['kind']} v{i['version']} rejected in MLflow, finishing the rollback "
                f"{i['actor']} began at {i['at']}: {i['reason']}",
            )  # fmt: skip
    return out


def finish_rollbacks(cluster: Cluster, name: str, registry: Any = None) -> list[RolledBack]:
    """Finish what rollbacks of ``name`` left pending (a crash, or an unreachable MLflow,
    between their traffic change and their registry write): the traffic part (a shadow not
    yet removed), then, with a ``registry``, the rejection in MLflow (idempotent), then the
    intent is cleared. Every action on ``name`` calls it first. Returns one result per
    pending intent, ``registry_error`` set on those still pending ([] when none was); never
    raises for the registry: what stays pending stays on the InferenceService."""
    intents, _ = _finish_traffic(cluster, name)
    if registry is None or not intents:
        return [RolledBack(str(i["version"]), str(i["kind"])) for i in intents]
    return [result for _, result in _finish_registry(cluster, name, registry)]


def rollback_release(
    cluster: Cluster,
    name: str,
    change: Change,
    registry: Any = None,
    model_name: str = "",
) -> RolledBack:
    """Undo the rollout in progress in both systems, traffic first: a canary goes back to the
    champion (one write), else a shadow is removed (mirror off, then the shadow). Then, with
    a ``registry``, the version taken off is rejected (``candidate`` alias removed, marked
    rolled back) unless it is the champion, whose alias never moved. Traffic is already safe
    when MLflow is updated, so a registry failure never undoes the rollback: it is returned
    in ``registry_error`` with the command to run once MLflow is reachable. ``registry`` may
    be a zero-argument function that opens it, called after the traffic change.

    With a ``registry`` and ``model_name``, the rejection is first recorded as an intent on
    the InferenceService (``ROLLBACK_INTENT``, in the canary's traffic write itself) and
    cleared once MLflow has it, so a call that dies in between is finished by the next one
    (``finish_rollbacks``). A second rollback with nothing left to take off finishes the
    pending one and returns it.

    The one composition of "move traffic back, then reject in the registry", used by the
    kubectl plugin, the rollout pipeline's stages and the analysis alike."""
    _finish_traffic(cluster, name)  # traffic first: a shadow a crash left behind goes now
    isvc = get(cluster, ISVC, name)
    shadow = cluster.find(ISVC, inf.shadow_name(name))
    record = model_name if registry is not None else ""
    fresh: dict[str, Any] | None = None
    done: RolledBack | None = None
    if inf.champion_of(isvc) is not None:
        change.details.setdefault("version", str(inf.current_model(isvc)["version"]))
        out, version = _rollback(cluster, name, change, record)
        fresh = next((i for i in pending_rollbacks(out) if i["version"] == version), None)
        done = RolledBack(version, "canary")
    elif shadow is not None:
        version = str(inf.current_model(shadow)["version"])
        change.details.setdefault("version", version)
        if record:
            uid = str(shadow["metadata"].get("uid", ""))
            fresh = _intent("shadow", version, record, change, uid=uid)
            _record_intent(cluster, name, fresh)
        _shadow_off(cluster, name, change)
        done = RolledBack(version, "shadow")
    pending = pending_rollbacks(isvc)  # left by earlier calls
    if done is None and (registry is None or not pending):
        waiting = ", ".join(f"v{i['version']}" for i in pending)
        raise BadInputError(
            f"{name}: no canary to roll back and no shadow in progress (a first release has no "
            "champion to return to: deploy a fixed version or delete the InferenceService); "
            "traffic is unchanged"
            + (f"; MLflow has yet to reject {waiting}: run it again with MLflow" if waiting else "")
        )
    if registry is None and done is not None:
        return done
    finished = _finish_registry(cluster, name, registry, fresh)
    mine = [r for i, r in finished if fresh is not None and _ident(i) == _ident(fresh)]
    others = [r for i, r in finished if fresh is None or _ident(i) != _ident(fresh)]
    if done is None:  # nothing left to take off: this call finished the pending rollbacks
        last = pending[-1]
        done = others.pop() if others else RolledBack(str(last["version"]), str(last["kind"]))
    elif mine and mine[0].registry_error:
        done.error, done.registry_error = mine[0].error, mine[0].registry_error
        cluster.event(isvc, "RollbackPending", done.registry_error, warning=True)
    failed = [r for r in others if r.registry_error]
    if failed:  # earlier rollbacks MLflow still lacks: the caller has to know
        done.error = done.error or failed[0].error
        said = [done.registry_error] if done.registry_error else []
        done.registry_error = "; ".join(
            said + [f"v{r.version}: {r.registry_error}" for r in failed]
        )
    return done


def deploy_shadow(
    cluster: Cluster,
    name: str,
    model: ServedModel,
    percent: float,
    change: Change,
    *,
    resources: Resources | None = None,
    service_account: str = "conveyor-model",
    score_log: str | None = None,
) -> dict[str, Any]:
    """``<name>-shadow`` serves ``model``; a VirtualService mirrors ``percent`` % of ``name``'s
    requests to it. The champion and its traffic are untouched."""
    finish_rollbacks(cluster, name)
    champion = get(cluster, ISVC, name)  # a shadow needs a champion to mirror
    vs = inf.virtual_service(name, cluster.namespace, percent, change)
    shadow = inf.shadow_name(name)
    desired = inf.inference_service(
        shadow, cluster.namespace, model, change, resources=resources,
        service_account=service_account, tag_routing=False, role="shadow", score_log=score_log,
    )  # fmt: skip
    if cluster.find(ISVC, shadow) is None:
        cluster.create(ISVC, desired)
    else:
        update(
            cluster, ISVC, shadow,
            lambda cur: {"metadata": {"annotations": desired["metadata"]["annotations"]},
                         "spec": inf.merge_diff(cur["spec"], desired["spec"])},
        )  # fmt: skip
    if cluster.find(VSVC, vs["metadata"]["name"]) is None:
        cluster.create(VSVC, vs)
    else:
        update(
            cluster, VSVC, vs["metadata"]["name"],
            lambda cur: {"metadata": {"annotations": vs["metadata"]["annotations"]},
                         "spec": inf.merge_diff(cur["spec"], vs["spec"])},
        )  # fmt: skip
    _record(cluster, champion, "ShadowStarted", change,
            f"v{model.version} shadows {name} on {percent:g} % of requests")  # fmt: skip
    return get(cluster, ISVC, shadow)


def shadow_off(cluster: Cluster, name: str, change: Change) -> None:
    """Stop mirroring first (the VirtualService), then remove the shadow InferenceService.
    (A rollback of the shadow that was interrupted is finished instead, when that removed it.)"""
    if _finish_traffic(cluster, name)[1] and cluster.find(ISVC, inf.shadow_name(name)) is None:
        return
    _shadow_off(cluster, name, change)


def _shadow_off(cluster: Cluster, name: str, change: Change) -> None:
    champion = get(cluster, ISVC, name)
    removed = []
    for kind, obj in ((VSVC, inf.mirror_name(name)), (ISVC, inf.shadow_name(name))):
        if cluster.find(kind, obj) is not None:
            cluster.delete(kind, obj)
            removed.append(f"{kind.kind} {obj}")
    if not removed:
        raise BadInputError(f"{name}: no shadow is running; nothing changed")
    _record(cluster, champion, "ShadowStopped", change, f"removed {', '.join(removed)}")


def status(cluster: Cluster, name: str, events: int = 5) -> dict[str, Any]:
    """What an on-call engineer needs: revisions, traffic, versions, readiness, last events,
    and the rollbacks still pending (``pendingRollbacks``). Reads only: a pending rollback is
    finished by the next action that changes the rollout."""
    isvc = get(cluster, ISVC, name)
    ann = isvc["metadata"].get("annotations") or {}
    pred = (isvc.get("status") or {}).get("components", {}).get("predictor", {})
    conditions = {c["type"]: c for c in (isvc.get("status") or {}).get("conditions", [])}
    champion = inf.champion_of(isvc)
    serving = inf.current_model(isvc)
    rolled_out = pred.get("latestRolledoutRevision")
    traffic = []
    for t in pred.get("traffic", []):
        is_latest = bool(t.get("latestRevision"))
        if champion is not None:
            version = serving["version"] if is_latest else champion["version"]
        else:
            version = (
                serving["version"] if t.get("revisionName") == rolled_out or is_latest else "?"
            )
        traffic.append({**t, "modelVersion": version})
    shadow = cluster.find(ISVC, inf.shadow_name(name))
    mirror = cluster.find(VSVC, inf.mirror_name(name))
    recent: list[dict[str, Any]] = sorted(
        cluster.events(name),
        key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "",
    )[-events:]
    return {
        "name": name,
        "namespace": cluster.namespace,
        "model": (isvc["metadata"].get("labels") or {}).get(inf.MODEL, ""),
        "phase": ann.get(inf.PHASE, "Stable"),
        "ready": conditions.get("Ready", {}).get("status") == "True",
        "conditions": list(conditions.values()),
        "url": (isvc.get("status") or {}).get("url", ""),
        "champion": champion["version"] if champion else serving["version"],
        "candidate": serving["version"] if champion else None,
        "canaryTrafficPercent": inf.canary_percent(isvc),
        "revisions": {
            k: pred.get(k)
            for k in (
                "latestCreatedRevision",
                "latestReadyRevision",
                "latestRolledoutRevision",
                "previousRolledoutRevision",
            )
        },
        "traffic": traffic,
        "analysis": _last_analysis(isvc),
        "shadow": None
        if shadow is None
        else {
            "name": shadow["metadata"]["name"],
            "version": inf.current_model(shadow)["version"],
            "mirrorPercent": _mirror_percent(mirror),
            "phase": (shadow["metadata"].get("annotations") or {}).get(inf.PHASE, "Stable"),
            "analysis": _last_analysis(shadow),
        },
        "lastChange": json.loads(ann[inf.LAST_CHANGE]) if ann.get(inf.LAST_CHANGE) else None,
        "pendingRollbacks": _pending_for_status(cluster, name, isvc, shadow),
        "events": [
            {
                "type": e.get("type"),
                "reason": e.get("reason"),
                "message": e.get("message"),
                "time": e.get("lastTimestamp") or e.get("eventTime"),
            }
            for e in recent
        ],
    }


def _pending_for_status(
    cluster: Cluster, name: str, isvc: dict[str, Any], shadow: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """``status``'s view of the rollback intents: each with what it still waits for and how
    to finish it."""
    found = _read_intents(isvc)
    if found is None:
        raw = str(isvc["metadata"]["annotations"][ROLLBACK_INTENT])
        drop = f"kubectl annotate inferenceservice {name} -n {cluster.namespace} {ROLLBACK_INTENT}-"
        return [{"unreadable": raw[:300], "finish": f"read it, reject by hand, then `{drop}`"}]
    out: list[dict[str, Any]] = []
    fields = ("version", "model_name", "kind", "reason", "actor", "at")
    for i in found:
        running = shadow is not None and bool(i.get("uid")) and i.get("kind") == "shadow"
        running = running and (shadow or {}).get("metadata", {}).get("uid") == i["uid"]
        finish = (
            f"the next `kubectl conveyor rollback {name}` or promote with MLflow reachable "
            f"finishes it; or `conveyor models reject {i['model_name']} {i['version']} "
            "--reason ...`"
        )
        waiting = "the shadow's removal, then MLflow" if running else "MLflow"
        out.append({**{k: i[k] for k in fields if k in i}, "waitingFor": waiting, "finish": finish})
    return out


def _last_analysis(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The analysis' last decision on ``obj`` (``conveyor.io/analysis``), for on-call eyes."""
    raw = (obj["metadata"].get("annotations") or {}).get(inf.ANALYSIS)
    if not raw:
        return None
    try:
        last = json.loads(raw).get("last") or {}
    except (ValueError, AttributeError):
        return {"decision": "?", "reason": f"unreadable {inf.ANALYSIS} annotation"}
    keys = ("decision", "interval", "percent", "reason", "at", "alerts", "registry_error")
    return {k: last[k] for k in keys if last.get(k) not in (None, "", [])}


def _mirror_percent(vs: dict[str, Any] | None) -> float | None:
    if vs is None:
        return None
    for route in vs.get("spec", {}).get("http", []):
        if "mirror" in route:
            return float((route.get("mirrorPercentage") or {}).get("value", 100.0))
    return None


def resolve_version(
    tracking_uri: str,
    model_name: str,
    version: str,
    *,
    cluster: Cluster,
    inference_service: str,
    runtime: str = "",
    require_approval: bool = False,
) -> ServedModel:
    """The registered version to serve on ``inference_service`` (or its shadow), refused
    before any object changes unless it is approved, its artifact's sha256 equals the registry
    tag and the runtime it will run on has the scikit-learn that pickled it.

    ``runtime``: the runtime to serve it on; empty keeps the InferenceService's own (a shadow
    its champion's), else ``conveyor-sklearn``. The returned model names the checked runtime,
    which is what ``deploy`` / ``deploy_shadow`` then write."""
    import tempfile

    from conveyor.registry import ModelRegistry

    registry = ModelRegistry(tracking_uri)
    row = registry.resolve(model_name, str(version))  # a number, or an alias like candidate
    model = ServedModel.from_version(row, require_approval=require_approval)
    model = check_runtime(cluster, model, runtime_for(cluster, inference_service, runtime))
    with tempfile.TemporaryDirectory(prefix="conveyor-verify-") as tmp:
        registry.download(row, tmp)
    return model


def runtime_for(cluster: Cluster, name: str, requested: str = "") -> str:
    """The runtime a new revision of ``name`` runs on: ``requested``, else the one the
    InferenceService already names, else ``conveyor-sklearn``."""
    if requested:
        return requested
    current = cluster.find(ISVC, name)
    return (inf.runtime_of(current) if current is not None else "") or inf.RUNTIME


def serving_runtime(cluster: Cluster, runtime: str) -> tuple[Kind, dict[str, Any] | None]:
    """Resolve ``runtime`` as KServe does: the ServingRuntime of that name in the namespace
    first, else the ClusterServingRuntime. Returns the kind found (or last looked at) and the
    object, None when neither exists."""
    found = cluster.find(SERVING_RUNTIME, runtime)
    if found is not None:
        return SERVING_RUNTIME, found
    return CLUSTER_SERVING_RUNTIME, cluster.find_cluster_scoped(CLUSTER_SERVING_RUNTIME, runtime)


def check_runtime(cluster: Cluster, model: ServedModel, runtime: str) -> ServedModel:
    """``model`` bound to ``runtime`` once the runtime's ``conveyor.io/sklearn-version``
    annotation equals the model's ``model.sklearn_version`` tag, exactly: scikit-learn only
    promises to unpickle a model within the release that pickled it. Reads only; every refusal
    (IncompatibleRuntimeError, exit 2) says that nothing was changed and what to do next."""
    label = f"{model.model_name} v{model.version}"
    kind, obj = serving_runtime(cluster, runtime)
    where = f"{kind.kind} {runtime!r}"
    ref = f"{kind.kind.lower()} {runtime}"  # what kubectl calls it
    if kind is SERVING_RUNTIME:
        where += f" in namespace {cluster.namespace!r}"
        ref += f" -n {cluster.namespace}"
    if obj is None:
        raise IncompatibleRuntimeError(
            f"{label}: serving runtime {runtime!r} exists neither as a ServingRuntime in "
            f"namespace {cluster.namespace!r} nor as a ClusterServingRuntime, so KServe could "
            "not serve it; refused, nothing was changed. Install Conveyor's runtime once per "
            f"cluster (`kubectl apply -k manifests/runtime`, ClusterServingRuntime {inf.RUNTIME})"
            " or name an installed runtime (the rollout plan's `runtime:`, `--runtime`)"
        )
    spec = obj.get("spec") or {}
    if spec.get("disabled"):
        raise IncompatibleRuntimeError(
            f"{label}: {where} is disabled (spec.disabled: true), KServe would not serve on "
            "it; refused, nothing was changed. Enable it or name another runtime"
        )
    pinned = str((obj["metadata"].get("annotations") or {}).get(inf.SKLEARN_VERSION, "")).strip()
    if not model.sklearn_version:
        serves = f"scikit-learn {pinned}" if pinned else "an unrecorded scikit-learn"
        raise IncompatibleRuntimeError(
            f"{label} has no {SKLEARN_VERSION_TAG} tag (registered before Conveyor recorded the "
            f"scikit-learn that pickled a model), so it cannot be checked against {where}, "
            f"which serves {serves}; refused, nothing was changed. Retrain and register it "
            "again, or, if you know the scikit-learn that pickled it (its training run's MLflow "
            "model lists it in requirements.txt), tag the version: MlflowClient()."
            f"set_model_version_tag({model.model_name!r}, {model.version!r}, "
            f"{SKLEARN_VERSION_TAG!r}, '<version>')"
        )
    if not pinned:
        raise IncompatibleRuntimeError(
            f"{label}: {where} has no {inf.SKLEARN_VERSION} annotation, so nobody knows "
            f"whether its scikit-learn can unpickle a model pickled by scikit-learn "
            f"{model.sklearn_version}; refused, nothing was changed. Check the scikit-learn its "
            f"image pins (`kubectl get {ref} -o "
            "jsonpath='{.spec.containers[0].image}'`, then `python -c 'import sklearn; "
            "print(sklearn.__version__)'` in that image), then annotate it: `kubectl annotate "
            f"{ref} {inf.SKLEARN_VERSION}=<that version>`; or deploy on "
            f"{inf.RUNTIME} (`kubectl apply -k manifests/runtime`)"
        )
    if pinned != model.sklearn_version:
        raise IncompatibleRuntimeError(
            f"{label} was pickled by scikit-learn {model.sklearn_version} but {where} serves "
            f"scikit-learn {pinned} ({inf.SKLEARN_VERSION}); scikit-learn only unpickles within "
            "one release, so it is refused and nothing was changed. Retrain it with "
            f"scikit-learn {pinned}, deploy it on a runtime whose image pins "
            f"{model.sklearn_version} (the rollout plan's `runtime:`, `--runtime`), or, if "
            f"{runtime}'s image really pins {model.sklearn_version}, correct the annotation: "
            f"`kubectl annotate {ref} {inf.SKLEARN_VERSION}={model.sklearn_version} "
            "--overwrite`"
        )
    return dataclasses.replace(model, runtime=runtime)


def wait_ready(
    cluster: Cluster, name: str, timeout: float = 600.0, poll: float = 2.0
) -> dict[str, Any]:
    """Wait until KServe reports the newest revision ready for the current generation.

    Raises ClusterError when the revision fails (its condition's reason and message) or the
    timeout passes; traffic is then still where KServe keeps it: on the rolled-out revision.
    """
    import time

    from conveyor.errors import ClusterError

    deadline = time.monotonic() + timeout
    while True:
        isvc = get(cluster, ISVC, name)
        st = isvc.get("status") or {}
        pred = st.get("components", {}).get("predictor", {})
        conditions = {c["type"]: c for c in st.get("conditions", [])}
        current = st.get("observedGeneration") == isvc["metadata"].get("generation")
        latest = pred.get("latestCreatedRevision")
        if current and latest and pred.get("latestReadyRevision") == latest:
            return isvc
        failed = conditions.get("PredictorReady") or conditions.get("Ready") or {}
        if current and failed.get("status") == "False" and failed.get("reason"):
            raise ClusterError(
                f"{name}: revision {latest} is not ready: {failed.get('reason')}: "
                f"{failed.get('message', '')}; traffic stays on the rolled-out revision"
            )
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{name}: revision {latest} not ready after {timeout:.0f}s; traffic stays on "
                "the rolled-out revision (check `kubectl conveyor status` and the pod logs)"
            )
        time.sleep(poll)

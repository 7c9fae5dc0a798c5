"""Cluster access: the one place that talks to the Kubernetes API.

``Cluster`` is the interface the rollout actions use; ``KubeCluster`` implements it with the
official ``kubernetes`` client (in-cluster config inside a pipeline pod, kubeconfig and context
on a laptop). Writes are merge patches that carry the resourceVersion they were computed from,
so a concurrent change answers 409 and the change is recomputed on a fresh read. Every error
says what failed and what to do next.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from conveyor.context import actor as context_actor
from conveyor.errors import ClusterError, ConflictError, NotFoundError

__all__ = [
    "CLUSTER_SERVING_RUNTIME",
    "ISVC",
    "RUNTIME_READER",
    "SERVING_RUNTIME",
    "VSVC",
    "Cluster",
    "Kind",
    "KubeCluster",
    "get",
    "update",
]


SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
CONFLICT_ATTEMPTS = 5


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


ISVC = Kind("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService")
VSVC = Kind("networking.istio.io", "v1beta1", "virtualservices", "VirtualService")
SERVING_RUNTIME = Kind("serving.kserve.io", "v1alpha1", "servingruntimes", "ServingRuntime")
CLUSTER_SERVING_RUNTIME = Kind(
    "serving.kserve.io", "v1alpha1", "clusterservingruntimes", "ClusterServingRuntime"
)
# The ClusterRole (manifests/runtime) that lets a rollout read cluster-scoped runtimes.
RUNTIME_READER = "conveyor-runtime-reader"


class Cluster(Protocol):
    """What the rollout actions need from Kubernetes, in one namespace (plus reading
    cluster-scoped objects such as ClusterServingRuntimes)."""

    namespace: str

    def find(self, kind: Kind, name: str) -> dict[str, Any] | None: ...
    def find_cluster_scoped(self, kind: Kind, name: str) -> dict[str, Any] | None: ...
    def find_all(self, kind: Kind, label_selector: str = "") -> list[dict[str, Any]]: ...
    def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]: ...
    def patch(self, kind: Kind, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...
    def delete(self, kind: Kind, name: str) -> None: ...
    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None: ...
    def events(self, name: str) -> list[dict[str, Any]]: ...


def get(cluster: Cluster, kind: Kind, name: str) -> dict[str, Any]:
    obj = cluster.find(kind, name)
    if obj is None:
        raise NotFoundError(
            f"{kind.kind} {name!r} not found in namespace {cluster.namespace!r}; check the name "
            f"and --namespace (list them with `kubectl get {kind.plural} -n {cluster.namespace}`)"
        )
    return obj


def update(
    cluster: Cluster,
    kind: Kind,
    name: str,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
    attempts: int = CONFLICT_ATTEMPTS,
) -> dict[str, Any]:
    """Read, compute a merge patch from what was read, write it guarded by resourceVersion.

    ``change`` returns the patch (or None for "nothing to do"); on 409 it runs again on a
    fresh read, so the patch is never computed from a stale object.
    """
    for _ in range(attempts):
        current = get(cluster, kind, name)
        patch = change(current)
        if patch is None:
            return current
        meta = dict(patch.get("metadata") or {})
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        try:
            return cluster.patch(kind, name, {**patch, "metadata": meta})
        except ConflictError:
            continue
    raise ClusterError(
        f"{kind.kind} {name!r}: still conflicting after {attempts} fresh reads (something else "
        "keeps changing it); nothing was changed by this attempt, try again"
    )


def _message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except Exception:
        return str(getattr(exc, "reason", exc))


class KubeCluster:
    """``Cluster`` on the official client. In a pod it uses the service account; elsewhere the
    kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) and ``context``."""

    def __init__(
        self,
        namespace: str | None = None,
        *,
        context: str | None = None,
        kubeconfig: str | None = None,
        actor: str | None = None,
    ) -> None:
        from kubernetes import client, config

        ns_from_config = None
        cfg = client.Configuration()
        # KUBECONFIG is read now, not when the client library was imported.
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        try:
            if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=cfg)
                self.where = "in-cluster service account"
                if SA_NAMESPACE.is_file():
                    ns_from_config = SA_NAMESPACE.read_text().strip()
            else:
                config.load_kube_config(
                    config_file=kubeconfig, context=context, client_configuration=cfg
                )
                contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
                if context:
                    active = next(c for c in contexts if c["name"] == context)
                ns_from_config = active["context"].get("namespace")
                self.where = f"context {active['name']!r}"
        except (config.ConfigException, OSError, StopIteration) as exc:
            raise ClusterError(
                f"no Kubernetes credentials: {exc}; set KUBECONFIG or --context, or run inside "
                "a pod with a service account"
            ) from exc
        cfg.retries = 1  # fail fast when the API is down; the caller decides what to retry
        self.api = client.ApiClient(cfg)
        self.host = cfg.host
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = namespace or ns_from_config or "default"
        self.actor = actor or context_actor("conveyor")

    def _call(self, what: str, fn: Callable[[], Any], needs: str = "") -> Any:
        """``fn()`` with its errors in Conveyor's family; ``needs`` names the RBAC a 403 lacks
        (default: the namespace's conveyor-rollout Role)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as exc:
            msg = _message(exc)
            if exc.status == 404:
                raise NotFoundError(f"{what}: not found ({msg})") from exc
            if exc.status == 409:
                raise ConflictError(f"{what}: conflict ({msg})") from exc
            if exc.status in (401, 403):
                needs = needs or (
                    f"the conveyor-rollout Role in namespace {self.namespace!r} (manifests/rbac)"
                )
                raise ClusterError(
                    f"{what}: forbidden ({msg}); the caller needs {needs}. Nothing was changed."
                ) from exc
            raise ClusterError(f"{what}: HTTP {exc.status} ({msg})") from exc
        except (HTTPError, OSError) as exc:
            raise ClusterError(
                f"{what}: Kubernetes API at {self.host} unreachable ({type(exc).__name__}); "
                f"check the cluster and --context ({self.where}). Nothing was changed."
            ) from exc

    def find(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            return self._call(
                f"get {kind.kind} {name!r}",
                lambda: self.custom.get_namespaced_custom_object(
                    kind.group, kind.version, self.namespace, kind.plural, name
                ),
            )
        except NotFoundError as exc:
            if f'namespaces "{self.namespace}" not found' in str(exc):
                raise
            return None

    def find_cluster_scoped(self, kind: Kind, name: str) -> dict[str, Any] | None:
        """A cluster-scoped object, or None when it (or its kind) does not exist."""
        try:
            return self._call(
                f"get {kind.kind} {name!r}",
                lambda: self.custom.get_cluster_custom_object(
                    kind.group, kind.version, kind.plural, name
                ),
                needs=f"a ClusterRoleBinding allowing get on {kind.plural} (for runtimes: "
                f"ClusterRole {RUNTIME_READER}, manifests/runtime)",
            )
        except NotFoundError:
            return None

    def find_all(self, kind: Kind, label_selector: str = "") -> list[dict[str, Any]]:
        found = self._call(
            f"list {kind.plural}",
            lambda: self.custom.list_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, label_selector=label_selector
            ),
        )
        return list(found.get("items", []))

    def create(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            f"create {kind.kind} {obj['metadata']['name']!r}",
            lambda: self.custom.create_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, obj
            ),
        )

    def patch(self, kind: Kind, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._call(
            f"patch {kind.kind} {name!r}",
            lambda: self.custom.patch_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, name, patch
            ),
        )

    def delete(self, kind: Kind, name: str) -> None:
        self._call(
            f"delete {kind.kind} {name!r}",
            lambda: self.custom.delete_namespaced_custom_object(
                kind.group, kind.version, self.namespace, kind.plural, name
            ),
        )

    def event(
        self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> None:
        """A core/v1 Event on ``obj``, as `kubectl describe` and `kubectl events` show them."""
        from kubernetes import client

        meta, ns = obj["metadata"], self.namespace
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=ns),
            involved_object=client.V1ObjectReference(
                api_version=obj.get("apiVersion"), kind=obj.get("kind"), name=meta["name"],
                namespace=self.namespace, uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason, message=message[:1024], type="Warning" if warning else "Normal",
            first_timestamp=now, last_timestamp=now, event_time=None, count=1,
            source=client.V1EventSource(component="conveyor"),
            reporting_component="conveyor", reporting_instance=self.actor,
        )  # fmt: skip
        self._call(
            f"record event {reason}",
            lambda: self.core.create_namespaced_event(self.namespace, event),
        )

    def events(self, name: str) -> list[dict[str, Any]]:
        found = self._call(
            f"list events of {name!r}",
            lambda: self.core.list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name}"
            ),
        )
        return [self.api.sanitize_for_serialization(e) for e in found.items]

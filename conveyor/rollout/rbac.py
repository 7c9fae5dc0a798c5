"""The least-privilege Role a rollout needs in its namespace, for named InferenceServices.

Kubernetes RBAC cannot limit ``create``, ``list`` or ``watch`` by name, but it can limit
``patch`` and ``delete``: the rollout may patch only its own services and their shadows,
delete only the shadows (``<name>-shadow``) and the mirrors (``<name>-mirror``), read the
namespace's ServingRuntimes, and nothing else. ``manifests/rbac/role.yaml`` is this Role for
``fraud`` (a test keeps them equal) and ``conveyor new TEAM`` writes the team's own.

Deploy also reads the cluster-scoped ClusterServingRuntime a model will run on (its
scikit-learn annotation), which no Role can grant: the read-only ClusterRole
``conveyor-runtime-reader`` and its ClusterRoleBinding live in ``manifests/runtime``, applied
once per cluster (``cluster_manifests``; a test keeps those equal too).
"""

from typing import Any

from conveyor.rollout.cluster import RUNTIME_READER
from conveyor.serving import isvc as inf

__all__ = ["cluster_manifests", "cluster_rules", "manifests", "rules"]


KSERVE, ISTIO = "serving.kserve.io", "networking.istio.io"
ROLE = "conveyor-rollout"
RBAC_API = "rbac.authorization.k8s.io/v1"
LABELS = {"app.kubernetes.io/part-of": "conveyor"}
READ = ["get", "list"]


def rules(services: list[str]) -> list[dict[str, Any]]:
    """RBAC rules for rolling out ``services`` (InferenceService names) in one namespace."""
    if not services:
        raise ValueError("at least one InferenceService name is needed")
    shadows = [inf.shadow_name(s) for s in services]
    mirrors = [inf.mirror_name(s) for s in services]
    unnamed = ["get", "list", "watch", "create"]  # RBAC cannot name these
    return [
        {"apiGroups": [KSERVE], "resources": ["inferenceservices"], "verbs": unnamed},
        {"apiGroups": [KSERVE], "resources": ["inferenceservices"],
         "resourceNames": [*services, *shadows], "verbs": ["patch"]},
        {"apiGroups": [KSERVE], "resources": ["inferenceservices"], "resourceNames": shadows,
         "verbs": ["delete"]},
        {"apiGroups": [ISTIO], "resources": ["virtualservices"], "verbs": unnamed},
        {"apiGroups": [ISTIO], "resources": ["virtualservices"], "resourceNames": mirrors,
         "verbs": ["patch", "delete"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list", "get"]},
        # deploy checks the runtime's scikit-learn; a namespaced runtime wins over a cluster one
        {"apiGroups": [KSERVE], "resources": ["servingruntimes"], "verbs": [*READ]},
    ]  # fmt: skip


def cluster_rules() -> list[dict[str, Any]]:
    """The one cluster-scoped grant: reading ClusterServingRuntimes (their annotations)."""
    return [{"apiGroups": [KSERVE], "resources": ["clusterservingruntimes"], "verbs": [*READ]}]


def manifests(services: list[str], service_account: str = "pipeline-runner") -> list[dict]:
    """The Role and its RoleBinding to ``service_account`` (Kubeflow Pipelines' runner; in
    multi-user Kubeflow the profile's ``default-editor``) in the binding's own namespace."""
    role = {
        "apiVersion": RBAC_API,
        "kind": "Role",
        "metadata": {"name": ROLE, "labels": LABELS},
        "rules": rules(services),
    }
    binding = {
        "apiVersion": RBAC_API,
        "kind": "RoleBinding",
        "metadata": {"name": ROLE, "labels": LABELS},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": service_account}],
    }
    return [role, binding]


def cluster_manifests(
    namespaces: list[str], service_account: str = "pipeline-runner"
) -> list[dict]:
    """The read-only ClusterRole for ClusterServingRuntimes and its ClusterRoleBinding to
    ``service_account`` in each of ``namespaces`` (a cluster-scoped binding must name them)."""
    if not namespaces:
        raise ValueError("at least one namespace is needed")
    role = {
        "apiVersion": RBAC_API,
        "kind": "ClusterRole",
        "metadata": {"name": RUNTIME_READER, "labels": LABELS},
        "rules": cluster_rules(),
    }
    binding = {
        "apiVersion": RBAC_API,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": RUNTIME_READER, "labels": LABELS},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": RUNTIME_READER,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": service_account, "namespace": ns}
            for ns in namespaces
        ],
    }  # fmt: skip
    return [role, binding]

"""The least-privilege Role a rollout needs in its namespace, for named InferenceServices.

Kubernetes RBAC cannot limit ``create``, ``list`` or ``watch`` by name, but it can limit
``patch`` and ``delete``: the rollout may patch only its own services and their shadows,
delete only the shadows (``<name>-shadow``) and the mirrors (``<name>-mirror``), and nothing
else. ``manifests/rbac/role.yaml`` is this Role for ``fraud`` (a test keeps them equal) and
``conveyor new TEAM`` writes the team's own.
"""

from typing import Any

from conveyor.serving import inference as inf

KSERVE, ISTIO = "serving.kserve.io", "networking.istio.io"
ROLE = "conveyor-rollout"


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
    ]  # fmt: skip


def manifests(services: list[str], service_account: str = "pipeline-runner") -> list[dict]:
    """The Role and its RoleBinding to ``service_account`` (Kubeflow Pipelines' runner; in
    multi-user Kubeflow the profile's ``default-editor``) in the binding's own namespace."""
    labels = {"app.kubernetes.io/part-of": "conveyor"}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ROLE, "labels": labels},
        "rules": rules(services),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ROLE, "labels": labels},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": service_account}],
    }
    return [role, binding]
